"""The sinks against real servers, and every HTTP answer mapped to what the sender should do about it."""

from __future__ import annotations

import time
import traceback
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import pytest
from helpers.fault_server import FaultServer, Step, make_records, self_signed_certificate, stored_records
from helpers.servers import InfluxDB1, http
from helpers.slow_resolver import SlowResolver

from tracker import paths
from tracker.config import InfluxSettings
from tracker.lineprotocol import to_line
from tracker.model import STATE_AWAY, Record
from tracker.sending.corrections import correcting_sender
from tracker.sending.sinks import AuthFailed, InfluxSettingsError, Rejected, RetryLater, SendError, TooLarge
from tracker.sending.sinks.connect import open_sink
from tracker.storage.outbox import Outbox


def lines_of(records: list[Record]) -> list[str]:
    return [to_line(record) for record in records]


def varied_records(count: int, host: str = "test-host") -> list[Record]:
    """Records with and without title and url, active and away."""
    records = make_records(count, host=host)
    records[1] = replace(records[1], title=None, url=None)
    records[2] = replace(records[2], state=STATE_AWAY, category="Away", score=0.0, title=None)
    return records


def test_v1_sink_stores_every_field_as_recorded(influxdb1, influx_database):
    records = varied_records(40)
    sink = open_sink(InfluxSettings(url=influxdb1.url, bucket=influx_database, api="v1"))
    sink.write(lines_of(records))
    sink.close()
    assert stored_records(influxdb1, influx_database) == records


def test_v1_sink_writes_into_the_retention_policy_named_in_the_bucket(influxdb1, influx_database):
    influxdb1.query(f'CREATE RETENTION POLICY "week" ON "{influx_database}" DURATION 7d REPLICATION 1',
                    method="POST")
    now_ms = int(time.time() * 1000)
    records = make_records(5, start_ms=now_ms - 60_000)
    open_sink(InfluxSettings(url=influxdb1.url, bucket=f"{influx_database}/week", api="v1")).write(
        lines_of(records))
    in_week = influxdb1.rows('SELECT score FROM "week".activity', influx_database)
    assert [row["time"] for row in in_week] == [record.time_ms for record in records]
    assert stored_records(influxdb1, influx_database) == []  # nothing went to the default policy


def test_auto_detects_influxdb_1_and_writes_through_v1(influxdb1, influx_database):
    # InfluxDB 1.6 has no /api/v2/write: only the v1 API can have stored these.
    records = make_records(10)
    open_sink(InfluxSettings(url=influxdb1.url + "/", bucket=influx_database)).write(lines_of(records))
    assert stored_records(influxdb1, influx_database) == records


def test_v2_sink_writes_to_victoria_metrics(victoria):
    records = varied_records(30, host="sinks-v2-test")
    sink = open_sink(InfluxSettings(url=victoria.url, token="any-token", org="home", bucket="tracker", api="v2"))
    sink.write(lines_of(records))
    sink.close()
    stored: dict[tuple, dict[str, float]] = {}
    for series in victoria.export('{__name__=~"activity_(duration|score)", host="sinks-v2-test"}'):
        labels = series["metric"]
        field = labels["__name__"].removeprefix("activity_")
        for timestamp, value in zip(series["timestamps"], series["values"], strict=True):
            key = (timestamp, labels["app"], labels["activity"], labels["category"], labels["state"])
            stored.setdefault(key, {})[field] = value
    expected = {(r.time_ms, r.app, r.activity, r.category, r.state): {"duration": r.duration, "score": r.score}
                for r in records}
    assert stored == expected


@pytest.mark.slow
def test_wrong_credentials_fail_without_showing_the_password(tmp_path: Path):
    server = InfluxDB1(tmp_path, auth=True).start()
    try:
        admin = ("admin", "right-Pa55word")
        server.query(f"CREATE USER admin WITH PASSWORD '{admin[1]}' WITH ALL PRIVILEGES", method="POST")
        # InfluxDB 1.6 reads u and p from the URL only, not from a form body.
        status, body = http("POST", f"{server.url}/query?" + urlencode(
            {"q": 'CREATE DATABASE "secured"', "u": admin[0], "p": admin[1]}))
        assert status == 200, body
        password = "wr0ng-Pa55word-7d1"
        wrong = InfluxSettings(url=server.url, token=f"admin:{password}", bucket="secured", api="auto")
        sink = open_sink(wrong)
        with pytest.raises(AuthFailed) as caught:
            sink.write(lines_of(make_records(3)))
        message = str(caught.value)
        assert message == ("InfluxDB refused the token/credentials for secured: check TRACKER_INFLUX_TOKEN"
                           " or influx.token in config.yaml")
        shown = message + repr(sink) + repr(wrong) + "".join(traceback.format_exception(caught.value))
        assert password not in shown
        records = make_records(3)
        open_sink(replace(wrong, token=":".join(admin))).write(lines_of(records))
        result = server.query("SELECT score FROM activity", "secured", auth=admin)
        assert [row[0] for row in result["results"][0]["series"][0]["values"]] == [r.time_ms for r in records]
    finally:
        server.stop()


def test_missing_database_keeps_the_samples_until_it_exists(influxdb1):
    database = paths.database_file()
    records = make_records(20)
    with Outbox(database) as outbox:
        outbox.append_many(records)
    settings = InfluxSettings(url=influxdb1.url, bucket="not_created_yet", api="v1")
    result = correcting_sender(database, settings, print, deferred=False).send_all()
    assert not result.ok and result.waiting == 20 and result.sent == 0
    assert 'database not found: "not_created_yet"' in result.error
    influxdb1.create_database("not_created_yet")
    result = correcting_sender(database, settings, print, deferred=False).send_all()
    assert (result.ok, result.sent, result.waiting) == (True, 20, 0)
    assert stored_records(influxdb1, "not_created_yet") == records


def test_field_type_conflict_quarantines_only_the_conflicting_rows(influxdb1, influx_database):
    # A title stored as an integer earlier makes every point with a title conflict: a real partial write.
    open_sink(InfluxSettings(url=influxdb1.url, bucket=influx_database, api="v1")).write(
        ["activity,host=elsewhere title=1i 1700000000000"])
    records = make_records(64)
    records = [record if number % 3 else replace(record, title=None) for number, record in enumerate(records)]
    database = paths.database_file()
    with Outbox(database) as outbox:
        outbox.append_many(records)
    result = correcting_sender(database, InfluxSettings(url=influxdb1.url, bucket=influx_database, api="v1"), print,
                               deferred=False, batch_size=64).send_all()
    without_title = [record for record in records if record.title is None]
    assert (result.sent, result.quarantined, result.waiting) == (len(without_title), 64 - len(without_title), 0)
    assert stored_records(influxdb1, influx_database, "host = 'test-host'") == without_title
    with Outbox(database) as outbox:
        stats = outbox.stats()
    assert [row.record for row in stats.quarantined] == [r for r in records if r.title is not None]
    assert all("field type conflict" in row.reason for row in stats.quarantined)


# -- every answer a write can get, for both APIs ------------------------------------------------------

ANSWERS = [
    (Step(401, '{"error":"authorization failed"}'), AuthFailed, "refused the token/credentials for home/tracker"),
    (Step(403, '{"code":"forbidden","message":"insufficient permissions"}'), AuthFailed, "check TRACKER_INFLUX"),
    (Step(400, '{"error":"partial write: max-values-per-tag limit exceeded (100000/100000) dropped=1"}'),
     Rejected, "max-values-per-tag limit exceeded"),
    (Step(422, '{"code":"unprocessable entity","message":"points beyond retention policy"}'), Rejected,
     "points beyond retention policy"),
    (Step(413, '{"code":"request too large","message":"too big"}'), TooLarge, "too large"),
    (Step(429, "", {"Retry-After": "7"}), RetryLater, "is busy (429"),
    (Step(503, "overloaded"), RetryLater, "failed (503: overloaded)"),
    (Step(404, '{"code":"not found","message":"bucket \\"tracker\\" not found"}'), InfluxSettingsError,
     'bucket "tracker" not found'),
    (Step(404, '{"error":"database not found: \\"tracker\\""}'), InfluxSettingsError, "database not found"),
    (Step(500, '{"error":"retention policy not found: week"}'), InfluxSettingsError, "retention policy"),
    (Step(308, "", {"Location": "https://influx.example:8086/api/v2/write"}), InfluxSettingsError,
     "redirects to https://influx.example:8086: set influx.url to https://influx.example:8086"),
]


@pytest.fixture(scope="module")
def answering_server():
    server = FaultServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize(("step", "error_class", "words"), ANSWERS)
def test_each_answer_becomes_the_right_error(answering_server, api, step, error_class, words):
    answering_server.then(step)
    token = "user:Secret-Token-123"
    sink = open_sink(InfluxSettings(url=answering_server.url, token=token, org="home", api=api))
    with pytest.raises(error_class) as caught:
        sink.write(lines_of(make_records(2)))
    assert words in str(caught.value)
    assert "Secret-Token-123" not in str(caught.value) + repr(sink)
    if step.status == 429:
        assert caught.value.retry_after == 7


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_writes_are_gzipped_in_milliseconds_with_the_credentials_in_a_header(answering_server, api):
    records = make_records(100)
    token = "user:Secret-Token-123"
    open_sink(InfluxSettings(url=answering_server.url, token=token, org="home", bucket="tracker",
                             api=api)).write(lines_of(records))
    request = answering_server.writes()[-1]
    assert request.lines == lines_of(records)
    assert request.headers["Content-Encoding"] == "gzip"
    assert "precision=ms" in request.path and "Secret-Token-123" not in request.path
    assert request.path.startswith("/write?db=tracker" if api == "v1" else "/api/v2/write?org=home&bucket=tracker")


def test_a_few_lines_go_to_influxdb_1x_without_gzip(answering_server):
    # A running tracker's batch of a few seconds: compressing it would cost more CPU than it saves on the wire.
    records = make_records(3)
    open_sink(InfluxSettings(url=answering_server.url, bucket="tracker", api="v1")).write(lines_of(records))
    request = answering_server.writes()[-1]
    assert request.lines == lines_of(records)
    assert "Content-Encoding" not in request.headers


@pytest.mark.slow
@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize(("url", "words"), [
    ("closed", "is unreachable (connection refused)"),
    ("http://tracker-test.invalid:8086", "is unreachable (the name tracker-test.invalid does not resolve)"),
    ("https", "is unreachable (TLS failed:"),
    ("slow", "is unreachable (no answer within 0.3 s)"),
])
def test_failing_to_reach_the_server_means_retry_later(answering_server, monkeypatch, api, url, words):
    # A name that does not resolve, said so without asking this machine's resolver (tests talk to loopback only).
    monkeypatch.setattr("socket.getaddrinfo", SlowResolver(failing={"tracker-test.invalid"}).getaddrinfo)
    if url == "closed":
        url = f"http://127.0.0.1:{FaultServer().port}"
    elif url == "https":
        url = answering_server.url.replace("http:", "https:")
    elif url == "slow":
        answering_server.then(Step(delay=3.0))
        url = answering_server.url
    # A short timeout only where it is what is tried: a busy machine may take longer than 0.3 s for a handshake.
    timeout = 0.3 if words.endswith("0.3 s)") else 10.0
    sink = open_sink(InfluxSettings(url=url, token="user:Secret-Token-123", api=api, timeout=timeout))
    with pytest.raises(RetryLater) as caught:
        sink.write(lines_of(make_records(1)))
    assert words in str(caught.value) and "Secret-Token-123" not in str(caught.value)


def test_unconfigured_or_unknown_settings_say_what_to_do():
    with pytest.raises(InfluxSettingsError,
                       match=r"TRACKER_INFLUX_URL.*influx.url in config.yaml.*tracker config init"):
        open_sink(InfluxSettings())
    with pytest.raises(InfluxSettingsError, match="must start with http:// or https://"):
        open_sink(InfluxSettings(url="localhost:8086"))
    with pytest.raises(SendError, match="must be auto, v1 or v2"):
        open_sink(InfluxSettings(url="http://localhost:8086", api="v3"))


@pytest.mark.slow
@pytest.mark.parametrize("api", ["v1", "v2"])
def test_tls_is_verified_unless_told_otherwise(api, tmp_path):
    tls = self_signed_certificate(tmp_path)
    server = FaultServer(tls=tls, version="2.7.4").start()
    try:
        records = make_records(3)
        checked = InfluxSettings(url=server.url, token="Secret-Token-123", org="home", api=api)
        with pytest.raises(RetryLater, match=r"unreachable \(TLS failed: self.signed certificate\)"):
            open_sink(checked).write(lines_of(records))
        open_sink(replace(checked, ca_file=str(tls[0]))).write(lines_of(records))
        open_sink(replace(checked, verify_tls=False)).write(lines_of(records))
        assert server.accepted == lines_of(records) * 2
    finally:
        server.stop()
