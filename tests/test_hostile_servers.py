"""Servers that are not InfluxDB, or that answer with hostile text: nothing is deleted unconfirmed, no credential
comes back out in any form, no escape sequence reaches the terminal, and no body is read whole."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pytest
from click.testing import CliRunner
from helpers.fault_server import FaultServer, Step, catching_all, make_records, stored_records
from helpers.plain import ESCAPES, assert_plain
from helpers.servers import InfluxDB1, http, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker import paths
from tracker.commands import cli
from tracker.config import InfluxSettings
from tracker.lineprotocol import to_line
from tracker.sending.corrections import correcting_sender
from tracker.sending.sinks import InfluxSettingsError, RetryLater, SendError
from tracker.sending.sinks.answers import ANSWER_CAP
from tracker.sending.sinks.connect import open_sink
from tracker.storage.outbox import Outbox

TRACKER = str(Path(sys.executable).with_name("tracker"))
LOGIN_PAGE = ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Hotel WiFi login</title></head>"
              "<body><form action='/login'>Room number <input name='room'></form></body></html>")
PORTAL = Step(200, LOGIN_PAGE, content_type="text/html; charset=utf-8")
PORTAL_SAYS = ("Something other than InfluxDB answered at {url} (200 OK, text/html; charset=utf-8: an HTML page"
               " titled 'Hotel WiFi login'): the samples are kept until InfluxDB itself answers; log in to the"
               " network if it asks you to, or check influx.url")


def recorded(count: int) -> list:
    records = make_records(count)
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(records)
    return records


def waiting() -> int:
    return json.loads(CliRunner().invoke(cli, ["outbox", "--json"]).output)["waiting"]


@pytest.fixture
def portal():
    yield from catching_all(PORTAL)


# -- something that is not InfluxDB answers ------------------------------------------------------------------

@pytest.mark.parametrize("api", ["auto", "v1", "v2"])
def test_a_login_page_keeps_every_sample_then_influxdb_gets_them_all(portal, influxdb1, victoria, monkeypatch, api):
    records = recorded(30)
    monkeypatch.setenv("TRACKER_INFLUX_URL", portal.url)
    monkeypatch.setenv("TRACKER_INFLUX_API", api)
    monkeypatch.setenv("TRACKER_INFLUX_BUCKET", f"portal_{api}")
    shown = CliRunner().invoke(cli, ["sync"])
    assert (shown.exit_code, shown.output) == (
        1, f"Error: {PORTAL_SAYS.format(url=portal.url)}. 30 samples still waiting.\n")
    assert waiting() == 30
    assert portal.requests  # it was asked, and said 200

    if api == "v2":  # InfluxDB 1.6 has no /api/v2/write; VictoriaMetrics has both
        monkeypatch.setenv("TRACKER_INFLUX_URL", victoria.url)
        shown = CliRunner().invoke(cli, ["sync"])
        assert (shown.exit_code, shown.output) == (0, f"sent 30 samples to {victoria.url}\n")
        exported = victoria.export('{__name__="activity_score", host="test-host"}')
        assert sorted(itertools.chain.from_iterable(series["timestamps"] for series in exported)) == \
            [record.time_ms for record in records]
    else:
        influxdb1.create_database(f"portal_{api}")
        monkeypatch.setenv("TRACKER_INFLUX_URL", influxdb1.url)
        shown = CliRunner().invoke(cli, ["sync"])
        assert (shown.exit_code, shown.output) == (0, f"sent 30 samples to {influxdb1.url}\n")
        assert stored_records(influxdb1, f"portal_{api}") == records
    assert waiting() == 0


@pytest.mark.parametrize("answer", [
    Step(200, "", content_type="text/plain"),
    Step(200, '{"status":"ok"}'),
    Step(201, "created", content_type="text/plain"),
    Step(202, ""),
    Step(200, LOGIN_PAGE, headers={"X-Influxdb-Version": "1.8.10"}, content_type="text/html"),
])
@pytest.mark.parametrize("api", ["v1", "v2"])
def test_only_influxdbs_answer_confirms_a_write(api, answer):
    server = FaultServer().then(answer).start()
    try:
        sink = open_sink(InfluxSettings(url=server.url, api=api, org="home"))
        with pytest.raises(InfluxSettingsError, match=r"^Something other than InfluxDB answered at"):
            sink.write([to_line(make_records(1)[0])])
        sink.write([to_line(make_records(1)[0])])  # and a 204 does
        assert len(server.accepted) == 1
    finally:
        server.stop()


def test_a_login_page_during_a_run_keeps_what_it_records_and_says_so_once(portal, influxdb1, tmp_path):
    env = {**os.environ, "TRACKER_INFLUX_URL": portal.url, "TRACKER_INFLUX_BUCKET": "portal_run"}
    done = subprocess.run([TRACKER, "run", "--source", "demo", "--interval", "0.2", "--for", "4s", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    said = PORTAL_SAYS.format(url=portal.url)
    assert [line for line in done.stdout.splitlines() + done.stderr.splitlines() if said in line] != []
    assert (done.stdout + done.stderr).count(said) == 1
    assert portal.accepted == [] and portal.requests
    with Outbox(paths.database_file()) as outbox:
        kept = outbox.stats().waiting_samples
    assert kept > 0

    influxdb1.create_database("portal_run")
    env["TRACKER_INFLUX_URL"] = influxdb1.url
    synced = subprocess.run([TRACKER, "sync"], env=env, capture_output=True, text=True, timeout=60)
    assert synced.returncode == 0, synced.stderr
    assert len(stored_records(influxdb1, "portal_run")) == kept


def test_auto_detection_is_not_decided_by_a_login_page(portal, influxdb1):
    influxdb1.create_database("auto_after_portal")
    settings = InfluxSettings(url=portal.url, bucket="auto_after_portal", api="auto")
    sink = open_sink(settings)
    with pytest.raises(InfluxSettingsError, match="Hotel WiFi login"):
        sink.write([to_line(make_records(1)[0])])
    assert [request.path for request in portal.requests] == ["/ping"]  # nothing written to a login page
    sink.settings = InfluxSettings(url=influxdb1.url, bucket="auto_after_portal", api="auto")  # the portal is gone
    sink.write([to_line(record) for record in make_records(3)])
    assert len(stored_records(influxdb1, "auto_after_portal")) == 3


def test_a_server_that_moved_to_https_is_followed_by_the_advice(portal):
    portal.catch_all = Step(301, "", headers={"Location": f"https://127.0.0.1:{portal.port}/ping"})
    with pytest.raises(InfluxSettingsError) as caught:
        open_sink(InfluxSettings(url=portal.url)).write([to_line(make_records(1)[0])])
    assert str(caught.value).endswith(f"set influx.url to https://127.0.0.1:{portal.port}")


def test_a_redirect_to_a_login_page_is_no_address_to_follow(portal):
    portal.catch_all = Step(302, "", headers={"Location": "http://login.hotel.example/portal?from=tracker"})
    with pytest.raises(InfluxSettingsError) as caught:
        open_sink(InfluxSettings(url=portal.url, api="v1")).write([to_line(make_records(1)[0])])
    assert str(caught.value) == (
        f"The server at {portal.url} redirects to http://login.hotel.example/portal, which is not an InfluxDB"
        " write address (a Wi-Fi login page or a proxy?): the samples are kept; log in to the network if it asks"
        " you to, or check influx.url")


# -- bodies too big to read, or too slow -----------------------------------------------------------------------

GIGABYTE = 1 << 30


@pytest.mark.parametrize("api", ["auto", "v1", "v2"])
@pytest.mark.parametrize("status", [200, 500])
def test_a_huge_body_is_not_read_whole(api, status):
    server = FaultServer()
    server.catch_all = Step(status, "<html><title>big</title>", content_type="text/html", stream=GIGABYTE)
    server.start()
    try:
        with pytest.raises(SendError) as caught:
            open_sink(InfluxSettings(url=server.url, api=api, org="home")).write([to_line(make_records(1)[0])])
        wait_until(server.hung_up.is_set, what="tracker to hang up")
        assert server.streamed < 64 * ANSWER_CAP * 16  # 64 MB of the 1 GB at most, socket buffers included
        assert len(str(caught.value)) < 1000
    finally:
        server.stop()


def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzipped: about a thousandth of that on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    megabyte = bytes(1 << 20)
    return b"".join(compressor.compress(megabyte) for _ in range(size >> 20)) + compressor.flush()


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_compressed_bomb_is_not_unpacked_whole(api):
    bomb = gzip_bomb(GIGABYTE // 4)
    server = FaultServer()
    server.catch_all = Step(500, raw=bomb, headers={"Content-Encoding": "gzip"}, content_type="text/plain")
    server.start()
    try:
        tracemalloc.start()
        with pytest.raises(RetryLater, match=r"failed \(500: "):
            open_sink(InfluxSettings(url=server.url, api=api, org="home")).write(["m v=1 1"])
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 20 * (1 << 20)  # what tracker held at most, 256 MB unpacked
    finally:
        tracemalloc.stop()
        server.stop()


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_an_endless_trickle_is_given_up_after_the_timeout(api):
    server = FaultServer().then(Step(500, "slow", content_type="text/plain", stream=GIGABYTE, trickle=0.02)).start()
    outcome: list[BaseException] = []

    def write() -> None:
        try:
            open_sink(InfluxSettings(url=server.url, api=api, org="home", timeout=1.0)).write(["m v=1 1"])
        except BaseException as error:
            outcome.append(error)

    try:
        writing = threading.Thread(target=write, daemon=True)
        writing.start()
        wait_until(lambda: not writing.is_alive(), timeout=60, what="the write to give up")
        assert isinstance(outcome[0], RetryLater) and "failed (500: slow" in str(outcome[0])
        wait_until(server.hung_up.is_set, what="tracker to hang up")
    finally:
        server.stop()


# -- what a server says reaches the terminal only as plain text ------------------------------------------------


def test_escape_sequences_from_a_server_never_reach_the_terminal(monkeypatch):
    refusal = Step(400, json.dumps({"error": "\x1b]0;owned\x07\x1b[2Jbad \u202eline\x1b[31m"}))
    server = FaultServer().then(
        refusal,  # the only row, refused: it keeps waiting (nothing was accepted beside it), and sync says why
        Step(503, "\x1b[?1049h\x9b2Jdown", headers={"Retry-After": "0"}, content_type="text/plain")).start()
    try:
        recorded(1)
        monkeypatch.setenv("TRACKER_INFLUX_URL", server.url)
        monkeypatch.setenv("TRACKER_INFLUX_API", "v1")
        first = CliRunner().invoke(cli, ["sync"])
        shown = CliRunner().invoke(cli, ["outbox"]).output
        recorded(1)
        second = CliRunner().invoke(cli, ["sync"])
        everything = first.output + shown + second.output
        assert "bad line" in first.output and "Waiting:       1 sample" in shown and "down" in second.output
        assert_plain(everything.replace("\n", " "))
    finally:
        server.stop()


# -- credentials never come back out -----------------------------------------------------------------------------

ODD = ["%", "@", ":", "/", "?", "#", "&", "=", "+", " ", '"', "'", "\\", "<", ">", "é", "ß", "😀", "\u00a0", ";"]
credential = st.lists(st.sampled_from(ODD) | st.characters(min_codepoint=33, max_codepoint=0x2FFF,
                                                           blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp")),
                      min_size=8, max_size=24).map("".join).filter(lambda text: len(set(text)) >= 4)

ECHOES = [
    Step(401, '{"error":"authorization failed for {authorization} at {path}"}'),
    Step(400, '{"error":"unable to parse {authorization} {path}"}'),
    Step(500, "{authorization} {path}", content_type="text/plain"),
    Step(200, "<html><title>Welcome {authorization}</title>{path}</html>", content_type="text/html"),
    Step(302, "", headers={"Location": "http://someone:{authorization}@elsewhere/write"}),
]


def forms_of(*secrets: str) -> set[str]:
    """What a leak of these would look like: in clear, percent-encoded, as Basic credentials."""
    found: set[str] = set()
    for secret in secrets:
        for form in (secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(secret.encode()).decode()):
            found |= {form, re.sub(r"%[0-9A-F]{2}", lambda match: match[0].lower(), form)}
    return found


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=credential, password=credential, query_secret=credential, in_url=st.booleans(),
       api=st.sampled_from(["auto", "v1", "v2"]), echo=st.sampled_from(ECHOES))
def test_credentials_never_come_back_out_in_any_form(tracker_home, monkeypatch, user, password, query_secret,
                                                     in_url, api, echo):
    server = FaultServer()
    server.catch_all = Step(echo.status, echo.body, {name: value.replace("{authorization}", quote(password))
                                                      for name, value in echo.headers.items()},
                            content_type=echo.content_type)
    server.start()
    try:
        userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@" if in_url else ""
        url = f"http://{userinfo}127.0.0.1:{server.port}/?u={quote(user)}&p={quote_plus(query_secret)}"
        monkeypatch.setenv("TRACKER_INFLUX_URL", url)
        monkeypatch.setenv("TRACKER_INFLUX_API", api)
        if not in_url:
            monkeypatch.setenv("TRACKER_INFLUX_TOKEN", f"{user}:{password}")
        recorded(2)
        runner = CliRunner()
        outputs = [runner.invoke(cli, command) for command in
                   (["sync"], ["outbox"], ["outbox", "--json"], ["config", "show"], ["status"], ["status", "--json"])]
        assert outputs[3].exit_code == 0
        assert all(output.exception is None or isinstance(output.exception, SystemExit) for output in outputs)
        shown = "".join(output.output for output in outputs)
        files = b"".join(path.read_bytes() for path in tracker_home.rglob("*") if path.is_file())
        for form in forms_of(password, f"{user}:{password}", query_secret):
            assert form not in shown, form
            assert form.encode() not in files, form
    finally:
        server.stop()


def test_a_run_shows_no_credentials_in_its_log_status_or_files(tracker_home):
    password, query_secret = "S3cret/p@ss:wörd%", "T0ken?&=value"
    server = FaultServer()
    server.catch_all = Step(401, '{"error":"bad credentials {authorization}"}')
    server.start()
    try:
        url = f"http://admin:{quote(password, safe='')}@127.0.0.1:{server.port}?token={quote_plus(query_secret)}"
        env = {**os.environ, "TRACKER_INFLUX_URL": url, "TRACKER_INFLUX_API": "v1"}
        process = subprocess.Popen([TRACKER, "run", "--source", "demo", "--interval", "0.2", "--for", "30s"],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        try:
            wait_until(lambda: len(server.requests) >= 2, timeout=60, what="refused writes")
            status = subprocess.run([TRACKER, "status"], env=env, capture_output=True, text=True, timeout=60)
            status_json = subprocess.run([TRACKER, "status", "--json"], env=env, capture_output=True, text=True,
                                         timeout=60)
        finally:
            process.terminate()
            out, err = process.communicate(timeout=60)
        assert "refused the token/credentials" in out + err
        assert json.loads(status_json.stdout)["status"]["influx_url"] == f"http://127.0.0.1:{server.port}"
        shown = out + err + status.stdout + status.stderr + status_json.stdout
        files = b"".join(path.read_bytes() for path in tracker_home.rglob("*") if path.is_file())
        for form in forms_of(password, f"admin:{password}", query_secret):
            assert form not in shown and form.encode() not in files, form
    finally:
        server.stop()


def test_config_show_masks_credentials_in_the_url_and_refuses_an_ambiguous_one(monkeypatch):
    monkeypatch.setenv("TRACKER_INFLUX_URL", "http://admin:pa%2Fss@influx.example:8086/?u=admin&p=pa55")
    shown = CliRunner().invoke(cli, ["config", "show"])
    assert shown.exit_code == 0
    assert "influx.url" in shown.output and "pa%2Fss" not in shown.output and "pa55" not in shown.output
    assert "http://(hidden)@influx.example:8086/?u=(hidden)&p=(hidden)" in shown.output

    monkeypatch.setenv("TRACKER_INFLUX_URL", "http://admin:pa/ss@influx.example:8086")  # the / is not encoded
    shown = CliRunner().invoke(cli, ["config", "show"])
    assert shown.exit_code != 0 and "pa/ss" not in shown.output and "Traceback" not in shown.output
    assert shown.output.startswith("Error: influx.url from environment variable TRACKER_INFLUX_URL: the URL ")
    assert len(shown.output.strip().splitlines()) == 1


# -- Retry-After 0 is not a tight loop ---------------------------------------------------------------------------

def test_a_server_always_asking_to_retry_now_gets_requests_ever_more_slowly():
    server = FaultServer()
    server.catch_all = Step(429, "", headers={"Retry-After": "0"})
    server.start()
    try:
        recorded(3)
        sender = correcting_sender(paths.database_file(), InfluxSettings(url=server.url, api="v1"), lambda line: None,
                                   deferred=False, first_retry=0.2, max_retry=5.0, min_interval=0.0)
        started = time.monotonic()
        sender.start()
        wait_until(lambda: len(server.writes()) >= 5, timeout=60, what="five attempts")
        took = time.monotonic() - started
        sender.stop(flush=False, timeout=1.0)
        # Backoff 0.2, 0.4, 0.8, 1.6 s between the five, whatever the server said: at least 3 s (a tight
        # loop would have sent hundreds).
        assert took >= 2.9
        assert len(server.writes()) <= 6
    finally:
        server.stop()


def test_credentials_in_the_url_authenticate_and_never_show(tmp_path, monkeypatch):
    server = InfluxDB1(tmp_path, auth=True).start()
    try:
        user, password = "admin", "p@ss/w:rd?#%é"
        escaped = password.replace("'", "\\'")
        server.query(f"CREATE USER {user} WITH PASSWORD '{escaped}' WITH ALL PRIVILEGES", method="POST")
        status, body = http("POST", f"{server.url}/query?" + urlencode(
            {"q": 'CREATE DATABASE "secured"', "u": user, "p": password}))
        assert status == 200, body
        records = make_records(5)
        monkeypatch.setenv("TRACKER_INFLUX_BUCKET", "secured")
        for url in (f"http://{user}:{quote(password, safe='')}@127.0.0.1:{server.port}",
                    f"http://127.0.0.1:{server.port}/?u={user}&p={quote_plus(password)}"):
            monkeypatch.setenv("TRACKER_INFLUX_URL", url)
            recorded(5)  # the same five each time: InfluxDB keeps one point per time
            shown = CliRunner().invoke(cli, ["sync"])
            assert (shown.exit_code, shown.output) == (0, f"sent 5 samples to http://127.0.0.1:{server.port}\n")
            shown = CliRunner().invoke(cli, ["config", "show"])
            assert all(form not in shown.output for form in forms_of(password))
        result = server.query("SELECT score FROM activity", "secured", auth=(user, password))
        times = [row[0] for row in result["results"][0]["series"][0]["values"]]
        assert times == [record.time_ms for record in records]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def answering_server():
    server = FaultServer().start()
    yield server
    server.stop()


raw_body = st.lists(st.binary(max_size=12) | st.sampled_from([escape.encode("utf-8", "surrogatepass")
                                                               for escape in ESCAPES]), max_size=20).map(b"".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_body, status=st.sampled_from([200, 400, 401, 404, 413, 429, 500, 503]),
       content_type=st.sampled_from(["application/json", "text/html", "text/plain; charset=latin-1"]),
       api=st.sampled_from(["v1", "v2"]))
def test_any_bytes_a_server_answers_become_one_plain_sentence(answering_server, raw, status, content_type, api):
    answering_server.then(Step(status, raw=raw, content_type=content_type))
    with pytest.raises(SendError) as caught:
        open_sink(InfluxSettings(url=answering_server.url, api=api, org="home")).write(["m v=1 1"])
    assert_plain(str(caught.value))
    assert len(str(caught.value)) < 1000
