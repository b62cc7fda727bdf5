"""Every wait is bounded: a server that sends its answer a byte at a time (headers first, so no per-read timeout
ever trips) costs each command at most its stated bound, and says so in one sentence; absurd exports end in one
sentence too, never in a traceback or hours of work."""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.fault_server import FaultServer, Step, catching_all, make_records
from helpers.running import RunningTracker, configure_influx, stopped_once
from helpers.servers import free_port, timed, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker import paths
from tracker.commands import cli
from tracker.config import InfluxSettings
from tracker.interchange import importing
from tracker.sending.points_v1 import V1Points
from tracker.sending.points_v2 import V2Points
from tracker.sending.sinks import RetryLater
from tracker.sending.sinks.connect import open_sink
from tracker.storage.outbox import Outbox

TIMEOUT = 1.0
MARGIN = 4.0  # a busy 2-core machine: the bound plus this
DRIP = Step(204, drip=0.5)


@pytest.fixture
def dripping():
    yield from catching_all(DRIP)


@pytest.mark.parametrize("api", ["v1", "v2", "auto"])
def test_a_write_to_a_server_dripping_its_headers_ends_by_the_timeout(dripping, api):
    sink = open_sink(InfluxSettings(url=dripping.url, api=api, org="home", timeout=TIMEOUT))
    outcome, seconds = timed(lambda: sink.write(["m v=1 1"]))
    assert isinstance(outcome, RetryLater)
    assert str(outcome) == f"InfluxDB at {dripping.url} is unreachable (no answer within 1 s)"
    assert seconds < TIMEOUT + MARGIN
    wait_until(dripping.hung_up.is_set, what="tracker to hang up")


class DrippingTLS:
    """A TCP server that starts a TLS record and then sends its body a byte every half second: a handshake that
    never ends, though a byte always arrives within any per-read timeout."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(client,), daemon=True).start()

    def _drip(self, client: socket.socket) -> None:
        with client:
            try:
                client.recv(4096)  # the ClientHello
                client.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record of 16 KiB is coming
                while not self.stopped.wait(0.5):
                    client.sendall(b"\x00")
            except OSError:
                return

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_tls_handshake_dripped_a_byte_at_a_time_ends_by_the_timeout(api):
    server = DrippingTLS()
    try:
        sink = open_sink(InfluxSettings(url=server.url, api=api, org="home", timeout=TIMEOUT))
        outcome, seconds = timed(lambda: sink.write(["m v=1 1"]))
    finally:
        server.stop()
    assert isinstance(outcome, RetryLater) and "is unreachable (no " in str(outcome), outcome
    assert seconds < TIMEOUT + MARGIN


@pytest.mark.parametrize("points", [V1Points, V2Points])
def test_reading_points_back_from_a_dripping_server_ends_by_the_timeout(dripping, points):
    reader = points(InfluxSettings(url=dripping.url, bucket="tracker", org="home", timeout=TIMEOUT), 1 << 16)
    outcome, seconds = timed(lambda: reader.read("host", 0, 10_000, 100))
    assert isinstance(outcome, RetryLater) and "no answer within 1 s" in str(outcome)
    assert seconds < TIMEOUT + MARGIN


def test_doctor_against_a_dripping_server_ends_by_the_timeout(tracker_home, dripping, monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)
    configure_influx(tracker_home, dripping.url)
    result, seconds = timed(lambda: CliRunner().invoke(cli, ["doctor"], catch_exceptions=False))
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "InfluxDB reachable" in line)
    assert line.endswith(f"InfluxDB at {dripping.url} is unreachable (no answer within 1 s)")
    assert seconds < TIMEOUT + MARGIN


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_sync_to_a_dripping_server_ends_by_the_timeout_and_keeps_the_samples(tracker_home, dripping, api):
    configure_influx(tracker_home, dripping.url, api=api)
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(make_records(5))
    result, seconds = timed(lambda: CliRunner().invoke(cli, ["sync"]))
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: InfluxDB at {dripping.url} is unreachable (no answer within 1 s). 5 samples still waiting."]
    assert seconds < TIMEOUT + MARGIN
    assert json.loads(CliRunner().invoke(cli, ["outbox", "--json"]).output)["waiting"] == 5


def test_sigterm_ends_a_run_within_its_bound_while_a_request_drips_for_an_hour(tracker_home, dripping):
    # influx.timeout of an hour: only the stop's own bound (10 s of sending) can end the request on the wire.
    configure_influx(tracker_home, dripping.url, timeout="1h", api="v1")
    run = RunningTracker("--source", "demo", "--quiet", env={**os.environ, "TRACKER_HOME": str(tracker_home)})
    code, errors, seconds = stopped_once(run, dripping.writes, "a write on the wire")
    assert code == 0, errors
    assert seconds < 10 + MARGIN, seconds  # STOP_SENDING, and the margin
    assert "Traceback" not in errors
    assert json.loads(CliRunner().invoke(cli, ["outbox", "--json"]).output)["waiting"] > 0  # nothing lost


# -- ActivityWatch: a slow aw-server, absurd times, deep nesting ---------------------------------------------------

ONE_EVENT = ('{"buckets": {"w": {"id": "w", "type": "currentwindow", "hostname": "h", "events": ['
             '{"timestamp": "2024-01-01T00:00:00Z", "duration": 5, "data": {"app": "x"}}')


@pytest.mark.parametrize("step, says", [
    (Step(200, ONE_EVENT + "]}}}", drip=0.5), "did not answer within 2 s"),
    (Step(200, ONE_EVENT, stream=1 << 30, trickle=0.5), "sent the export too slowly (less than 1 MiB in 2 s)"),
])
def test_import_from_an_aw_server_that_trickles_ends_in_one_sentence(tracker_home, monkeypatch, step, says):
    monkeypatch.setattr(importing, "SERVER_WAIT", 2.0)
    server = FaultServer()
    server.catch_all = step
    server.start()
    try:
        result, seconds = timed(lambda: CliRunner().invoke(cli, ["import", "activitywatch", "--server", server.url]))
    finally:
        server.stop()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert says in result.output and result.output.endswith("nothing was imported.\n")
    assert len(result.output.strip().splitlines()) == 1
    assert seconds < 2 + MARGIN


def export_with(events: str) -> str:
    return ('{"buckets": {"w": {"id": "w", "type": "currentwindow", "hostname": "h", "events": [' + events
            + ', {"timestamp": "2024-01-01T00:00:00Z", "duration": 5, "data": {"app": "y"}}]}}}')


def import_text(tmp_path: Path, text: str):
    file = tmp_path / "export.json"
    file.write_text(text)
    return CliRunner().invoke(cli, ["import", "activitywatch", str(file)])


offsets = st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60 - 59, 23 * 60 + 59))
timestamps = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=offsets)
    .map(datetime.isoformat),
    st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1969-12-31T23:59:59Z",
                     "2199-12-31T23:59:59Z", "0001-01-01T00:00:00.123456789Z"]))
# Durations up to a day, or absurd ones: a legitimate year-long event takes its time to import, as it should.
def not_a_long_legitimate_event(seconds: float) -> bool:
    return not 86_400 < seconds <= 366 * 86_400


durations = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).filter(not_a_long_legitimate_event).map(json.dumps),
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400).filter(not_a_long_legitimate_event).map(str),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e11", "1e400", "-1e400", "1" * 5000]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(st.tuples(timestamps, durations), min_size=1, max_size=4))
def test_absurd_times_end_in_one_sentence_or_are_left_out_and_counted_quickly(tracker_home, tmp_path, events):
    text = export_with(", ".join(f'{{"timestamp": "{moment}", "duration": {duration}, "data": {{"app": "x"}}}}'
                                 for moment, duration in events))
    result, seconds = timed(lambda: import_text(tmp_path, text))
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert seconds < 15, seconds


def test_an_event_lasting_1e11_seconds_is_left_out_and_counted_at_once(tracker_home, tmp_path):
    result, seconds = timed(lambda: import_text(tmp_path, export_with(
        '{"timestamp": "2024-01-01T00:00:00Z", "duration": 1e11, "data": {"app": "x"}}')))
    assert result.exit_code == 0, result.output
    assert ("Left out 1 event with impossible times (before 1970, after 2199, longer than a year, or not a number;"
            " the first, in bucket w, event 1: it lasts 1e+11 seconds, more than a year).") in result.output
    assert seconds < 5


@pytest.mark.parametrize("nested", [
    "[" * 100_000 + "]" * 100_000,
    '{"a": ' * 100_000 + "1" + "}" * 100_000,
])
@pytest.mark.parametrize("where", ["event", "data", "bucket field", "top"])
def test_an_export_nested_100000_deep_ends_in_one_sentence(tracker_home, tmp_path, nested, where):
    text = {"event": export_with(nested),
            "data": export_with(f'{{"timestamp": "2024-01-01T00:00:00Z", "duration": 1, "data": {{"x": {nested}}}}}'),
            "bucket field": '{"buckets": {"w": {"id": "w", "meta": ' + nested + ', "events": []}}}',
            "top": '{"meta": ' + nested + ', "buckets": {}}'}[where]
    result = import_text(tmp_path, text)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)
    assert "nests lists or objects too deeply" in result.output and len(result.output.strip().splitlines()) == 1
