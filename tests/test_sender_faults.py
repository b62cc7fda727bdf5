"""The sender against a server that fails in every way it can: nothing lost, nothing doubled, nothing leaked."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner
from helpers.fault_server import FaultServer, Step, make_records, stored_records
from helpers.servers import wait_until

from tracker import paths
from tracker.commands import cli
from tracker.config import InfluxSettings
from tracker.lineprotocol import to_line
from tracker.model import Record
from tracker.recording.recorder import mark_away
from tracker.sending.corrections import correcting_sender
from tracker.sending.deliver import refusal_budget
from tracker.sending.sender import Sender
from tracker.storage.outbox import Outbox

RIGHT_TOKEN = "tracker:Right-Pa55"


def lines_of(records: list[Record]) -> list[str]:
    return [to_line(record) for record in records]


def settings_for(server: FaultServer, **changes: object) -> InfluxSettings:
    # A timeout well above what a starved machine takes to answer: a request that outlived it after the fault
    # server stored its rows would be sent again, and counted twice here (InfluxDB would keep one).
    return replace(InfluxSettings(url=server.url, token=RIGHT_TOKEN, bucket="tracker", api="v1", timeout=3.0),
                   **changes)


def recorded(records: list[Record]) -> None:
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(records)


def fast_sender(settings: InfluxSettings, statuses: list[str], **options: float) -> Sender:
    timing = {"first_retry": 0.2, "max_retry": 2.0, "min_interval": 0.05} | options
    return correcting_sender(paths.database_file(), settings, statuses.append, deferred=False, **timing)


@pytest.fixture
def servers():
    started: list[FaultServer] = []
    yield started
    for server in started:
        server.stop()


def test_every_fault_in_turn_then_all_but_the_bad_rows_arrive_once(servers):
    server = FaultServer(token=RIGHT_TOKEN, bad_line_marker="BAD-TITLE", max_lines=30)
    servers.append(server)
    records = make_records(100)
    records[17] = replace(records[17], title="BAD-TITLE one")
    records[62] = replace(records[62], title="BAD-TITLE two")
    recorded(records)
    statuses: list[str] = []
    sender = fast_sender(settings_for(server), statuses, batch_size=100)
    sender.start()  # the server is not there yet: connection refused
    wait_until(lambda: statuses, what="the first failure")
    assert sender.state.status == "failing"
    server.then(Step(500, '{"error":"engine: cache maximum memory size exceeded"}'),
                Step(429, headers={"Retry-After": "2"}),
                Step(delay=3.5)).start()  # then 413 for big batches, 400 for batches with a bad row
    wait_until(lambda: len(statuses) == 2, timeout=30, what="recovery")
    sender.stop()

    good = [record for record in records if "BAD-TITLE" not in (record.title or "")]
    assert server.accepted == lines_of(good)
    assert statuses == [
        f"InfluxDB at {server.url} is unreachable (connection refused); retrying, 100 samples waiting",
        f"InfluxDB at {server.url} is reachable again; sent 98 samples",
    ]
    writes = server.writes()
    busy = next(number for number, request in enumerate(writes) if request.status == 429)
    assert 1.9 < writes[busy + 1].time - writes[busy].time < 5.0  # Retry-After: 2, not the 0.4 s backoff
    with Outbox(paths.database_file()) as outbox:
        stats = outbox.stats()
    assert [row.record for row in stats.quarantined] == [records[17], records[62]]
    assert all(row.reason.endswith("': bad field value") for row in stats.quarantined)
    shown = CliRunner().invoke(cli, ["outbox"]).output
    assert "Waiting:       nothing" in shown
    assert f"sent 98 samples to {server.url}" in shown
    assert "Quarantined:   2 samples the server refused for good:" in shown
    assert "Slack 'BAD-TITLE two': unable to parse 'activity,activity=Slack,app=Slack" in shown


def test_backoff_doubles_then_starts_over_after_a_success(servers):
    server = FaultServer().then(Step(500), Step(500), Step(500)).start()
    servers.append(server)
    first, second = make_records(5), make_records(5, start_ms=1_800_000_000_000)
    recorded(first)
    statuses: list[str] = []
    sender = fast_sender(settings_for(server, token=None), statuses, first_retry=0.3, max_retry=5.0)
    sender.start()
    wait_until(lambda: len(server.accepted) == 5, what="the first records")
    server.then(Step(500), Step(500))
    recorded(second)
    sender.wake()
    wait_until(lambda: len(server.accepted) == 10, what="the second records")
    sender.stop()

    assert server.accepted == lines_of(first + second)
    writes = server.writes()
    assert [request.status for request in writes] == [500, 500, 500, 204, 500, 500, 204]
    gaps = [later.time - earlier.time for earlier, later in itertools.pairwise(writes)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6 and gaps[2] >= 1.2  # 0.3 s, doubling
    assert 0.3 <= gaps[4] < 1.0  # after the success, 0.3 s again (2.4 s had it not started over)
    failed = f"InfluxDB at {server.url} failed (500: Internal Server Error); retrying, 5 samples waiting"
    recovered = f"InfluxDB at {server.url} is reachable again; sent 5 samples"
    assert statuses == [failed, recovered, failed, recovered]  # once per change, not once per retry


def test_a_refused_token_keeps_the_samples_until_the_settings_are_fixed(servers):
    server = FaultServer(token=RIGHT_TOKEN).start()
    servers.append(server)
    records = make_records(20)
    recorded(records)
    statuses: list[str] = []
    wrong = settings_for(server, token="tracker:Wr0ng-Pa55-9z")
    sender = fast_sender(wrong, statuses)
    sender.start()
    wait_until(lambda: len(server.writes()) >= 3, what="a few refused attempts")
    sender.stop(timeout=1.0)
    assert statuses == ["InfluxDB refused the token/credentials for tracker: check TRACKER_INFLUX_TOKEN or"
                        " influx.token in config.yaml; retrying, 20 samples waiting"]
    assert server.accepted == []
    outbox_text = CliRunner().invoke(cli, ["outbox", "--json"]).output
    assert '"waiting": 20' in outbox_text and "Wr0ng-Pa55-9z" not in outbox_text

    result = correcting_sender(paths.database_file(), settings_for(server), statuses.append, deferred=False).send_all()
    assert (result.ok, result.sent, result.waiting) == (True, 20, 0)
    assert server.accepted == lines_of(records)


def test_sync_while_running_never_sends_a_row_twice(servers):
    server = FaultServer(latency=0.02).start()
    servers.append(server)
    records = make_records(600)
    statuses: list[str] = []
    running = fast_sender(settings_for(server, token=None), statuses, batch_size=40, min_interval=0.0)
    running.start()
    syncing = threading.Thread(target=lambda: [
        correcting_sender(paths.database_file(), settings_for(server, token=None), statuses.append, deferred=False,
                          batch_size=40).send_all()
        for _ in range(6)])
    for number in range(0, 600, 50):
        recorded(records[number:number + 50])
        running.wake()
        if number == 100:
            syncing.start()
        time.sleep(0.02)
    syncing.join()
    wait_until(lambda: len(server.accepted) >= 600, what="every record")
    running.stop()
    assert server.accepted == lines_of(records)


@pytest.mark.parametrize(("version", "path"), [("1.8.10", "/write?db=tracker"), ("v2.7.4", "/api/v2/write")])
def test_auto_detection_waits_for_a_server_that_is_down_at_start(servers, version, path):
    server = FaultServer(version=version)
    servers.append(server)
    records = make_records(10)
    recorded(records)
    statuses: list[str] = []
    sender = fast_sender(settings_for(server, api="auto", token=None), statuses)
    sender.start()
    wait_until(lambda: statuses, what="the failure")
    server.start()
    wait_until(lambda: len(server.accepted) == 10, what="the records")
    sender.stop()
    assert server.accepted == lines_of(records)
    assert all(request.path.startswith(path) for request in server.writes())


def test_stop_flushes_what_is_waiting_within_its_timeout(servers, tmp_path, monkeypatch):
    server = FaultServer().start()
    servers.append(server)
    statuses: list[str] = []
    sender = fast_sender(settings_for(server, token=None), statuses, min_interval=60.0, poll_interval=60.0)
    sender.start()
    records = make_records(30)
    recorded(records)  # no wake(): only the flush on stop sends these
    sender.stop(flush=True, timeout=5.0)
    assert server.accepted == lines_of(records)

    # A server too slow for the flush: stop() still returns on time. Its own server and data directory, so
    # that nothing of the first sender (on a starved machine it may outlive its stop) can touch these rows.
    server = FaultServer(latency=5.0).start()
    servers.append(server)
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path / "second"))
    recorded(make_records(3, start_ms=1))
    sender = fast_sender(settings_for(server, token=None, timeout=10.0), statuses)
    started = time.monotonic()
    sender.start()
    sender.stop(flush=True, timeout=1.0)
    assert time.monotonic() - started < 2.0
    with Outbox(paths.database_file()) as outbox:
        assert outbox.stats().waiting == 3  # kept for the next run


def test_tracker_sync_reports_what_it_did(servers, monkeypatch):
    runner = CliRunner()
    shown = runner.invoke(cli, ["sync"])
    assert (shown.exit_code, shown.output) == (
        2, "Error: InfluxDB is not configured: set TRACKER_INFLUX_URL, or influx.url in config.yaml"
        " (`tracker config init` writes one to edit).\n")

    server = FaultServer()
    servers.append(server)
    monkeypatch.setenv("TRACKER_INFLUX_URL", server.url)
    monkeypatch.setenv("TRACKER_INFLUX_BUCKET", "tracker")
    shown = runner.invoke(cli, ["sync"])
    assert (shown.exit_code, shown.output) == (0, "Nothing to send: no samples are waiting.\n")

    records = make_records(30)
    recorded(records)
    shown = runner.invoke(cli, ["sync"])
    assert shown.exit_code == 1
    assert shown.output == (f"Error: InfluxDB at {server.url} is unreachable (connection refused)."
                            " 30 samples still waiting.\n")
    last_send = json.loads(runner.invoke(cli, ["outbox", "--json"]).output)
    assert last_send["last_result"] == f"InfluxDB at {server.url} is unreachable (connection refused)."
    assert last_send["last_attempt"] and last_send["last_success"] is None

    server.start()
    shown = runner.invoke(cli, ["sync"])
    assert (shown.exit_code, shown.output) == (0, f"sent 30 samples to {server.url}\n")
    assert server.accepted == lines_of(records)
    outbox = runner.invoke(cli, ["outbox"]).output
    assert "Last send:     never" not in outbox and f": sent 30 samples to {server.url}" in outbox, outbox


def test_rows_not_final_yet_wait_and_go_out_as_away(servers):
    server = FaultServer().start()
    servers.append(server)
    records = make_records(10)
    with Outbox(paths.database_file()) as outbox:
        outbox.commit(records, final_until_ms=records[5].time_ms)  # later rows may still turn out away
    statuses: list[str] = []
    sender = fast_sender(settings_for(server, token=None), statuses)
    sender.start()
    wait_until(lambda: len(server.accepted) == 6, what="the final rows")
    with Outbox(paths.database_file()) as outbox:
        outbox.commit([], final_until_ms=records[9].time_ms, away_since_ms=records[5].time_ms)
    sender.wake()
    wait_until(lambda: len(server.accepted) == 10, what="the rest")
    sender.stop()
    assert server.accepted == lines_of(records[:6] + [mark_away(record) for record in records[6:]])


def test_unchecked_tls_is_warned_about_once(servers):
    server = FaultServer().start()  # plain HTTP: the TLS handshake fails
    servers.append(server)
    recorded(make_records(3))
    statuses: list[str] = []
    url = server.url.replace("http:", "https:")
    sender = fast_sender(settings_for(server, url=url, token=None, verify_tls=False), statuses)
    sender.start()
    wait_until(lambda: len(statuses) == 2, what="the warning and the failure")
    sender.stop(timeout=1.0)  # one more attempt: neither line comes again
    assert statuses[0] == (f"Warning: TLS certificates are not checked for InfluxDB at {url} (influx.verify_tls"
                           " is false): anyone on the way could read or change the samples")
    assert statuses[1].startswith(f"InfluxDB at {url} is unreachable (TLS failed: ")
    assert len(statuses) == 2


def test_a_retry_after_of_zero_or_in_the_past_still_backs_off(servers):
    server = FaultServer()
    servers.append(server)
    recorded(make_records(3))
    server.then(Step(429, headers={"Retry-After": "0"}), Step(503, headers={"Retry-After": "0"}),
                Step(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})).start()
    statuses: list[str] = []
    sender = fast_sender(settings_for(server, token=None), statuses)
    sender.start()
    wait_until(lambda: len(server.accepted) == 3, timeout=30, what="the rows after three refusals")
    sender.stop()
    times = [request.time for request in server.writes()]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # first_retry 0.2 s, doubling: 0.2, 0.4, 0.8 s, whatever the server said.
    assert len(gaps) == 3 and all(gap >= floor * 0.95 for gap, floor in zip(gaps, (0.2, 0.4, 0.8), strict=True)), gaps


# -- a server or proxy that refuses everything, and rows refused for what they hold -----------------------

REFUSING = {
    400: Step(400, '{"error":"request refused by policy"}'),
    413: Step(413, "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center>"
                   "<h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
                   "</html>\r\n"),
}
REFUSED_SENTENCE = {
    400: "refused every sample it was sent, even one at a time (request refused by policy): check the server and"
         " any proxy in front of it",
    413: "refused even a single sample as too large (413): raise the request size limit of the server, or of a"
         " proxy in front of it",
}


def sync_to(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("TRACKER_INFLUX_URL", url)
    monkeypatch.setenv("TRACKER_INFLUX_BUCKET", "tracker")
    shown = CliRunner().invoke(cli, ["sync"])
    return shown.exit_code, shown.output


def outbox_figures() -> tuple[int, int]:
    """(waiting, quarantined) as `tracker outbox --json` shows them."""
    shown = json.loads(CliRunner().invoke(cli, ["outbox", "--json"]).output)
    return shown["waiting"], shown["quarantined_count"] + shown["quarantined_vitals"]


@pytest.mark.parametrize("status", [400, 413])
def test_sync_to_a_server_refusing_everything_keeps_every_sample_waiting_and_says_why(servers, monkeypatch, status):
    server = FaultServer(refuse_all=REFUSING[status]).start()
    servers.append(server)
    records = make_records(12_000)  # more than two batches of 5,000
    recorded(records)

    for attempt in (1, 2):
        code, output = sync_to(server.url, monkeypatch)
        assert (code, output) == (1, f"Error: InfluxDB at {server.url} {REFUSED_SENTENCE[status]}."
                                     " 12000 samples still waiting.\n")
        assert outbox_figures() == (12_000, 0)  # nothing quarantined, nothing lost
        # Bisecting 5,000 rows down to single rows would be ~10,000 requests: at most 20 per attempt.
        assert len(server.writes()) <= 20 * attempt, len(server.writes())
    assert server.accepted == []

    server.refuse_all = None  # the proxy is fixed: everything goes out, once, in order
    code, output = sync_to(server.url, monkeypatch)
    assert (code, output) == (0, f"sent 12000 samples to {server.url}\n")
    assert server.accepted == lines_of(records)
    assert outbox_figures() == (0, 0)


def test_a_running_sender_backs_off_from_a_server_refusing_everything_and_says_so_once(servers):
    server = FaultServer(refuse_all=REFUSING[400]).start()
    servers.append(server)
    recorded(make_records(50))
    statuses: list[str] = []
    sender = fast_sender(settings_for(server, token=None), statuses, first_retry=0.3, max_retry=5.0)
    sender.start()
    wait_until(lambda: sum(len(request.lines) == 50 for request in server.writes()) >= 4, what="four attempts")
    sender.stop(flush=False)
    assert statuses == [f"InfluxDB at {server.url} {REFUSED_SENTENCE[400]}; retrying, 50 samples waiting"]
    assert (sender.state.status, sender.state.last_error) == ("failing",
                                                              f"InfluxDB at {server.url} {REFUSED_SENTENCE[400]}")
    writes = server.writes()
    # Each attempt starts with the whole batch, costs at most refusal_budget(50) = 13 requests, and the pauses
    # between attempts double (0.3 s, 0.6 s, 1.2 s), like after any other failure.
    starts = [number for number, request in enumerate(writes) if len(request.lines) == 50]
    assert starts[0] == 0 and refusal_budget(50) == 13
    assert all(later - earlier <= 13 for earlier, later in itertools.pairwise([*starts, len(writes)])), starts
    pauses = [writes[later].time - writes[later - 1].time for later in starts[1:4]]
    assert all(pause >= floor * 0.95 for pause, floor in zip(pauses, (0.3, 0.6, 1.2), strict=True)), pauses
    assert outbox_figures() == (50, 0)


def test_a_run_of_bad_rows_at_the_start_is_quarantined_without_holding_back_the_rest(servers, monkeypatch):
    server = FaultServer(bad_line_marker="BAD-TITLE").start()
    servers.append(server)
    records = make_records(100)
    records[:8] = [replace(record, title=f"BAD-TITLE {number}") for number, record in enumerate(records[:8])]
    recorded(records)
    code, output = sync_to(server.url, monkeypatch)
    assert (code, output) == (0, f"sent 92 samples to {server.url}; 8 refused by the server (see `tracker outbox`)\n")
    assert sorted(server.accepted) == sorted(lines_of(records[8:]))
    with Outbox(paths.database_file()) as outbox:
        assert [row.record for row in outbox.stats().quarantined] == records[:8]


def conflicting_title(influxdb1, database: str) -> None:
    """A title stored as an integer: from now on every point of its shard with a title is refused (a field type
    conflict)."""
    from tracker.sending.sinks.connect import open_sink

    open_sink(InfluxSettings(url=influxdb1.url, bucket=database, api="v1")).write(
        ["activity,host=elsewhere title=1i 1700000000000"])  # in the same shard as the records


def test_real_influxdb_refusing_one_row_among_good_ones_quarantines_exactly_that_row(influxdb1, influx_database,
                                                                                      monkeypatch):
    conflicting_title(influxdb1, influx_database)
    records = [replace(record, title=None) for record in make_records(40)]
    records[23] = make_records(1, first=23)[0]  # the one row with a title
    recorded(records)
    monkeypatch.setenv("TRACKER_INFLUX_BUCKET", influx_database)
    monkeypatch.setenv("TRACKER_INFLUX_URL", influxdb1.url)
    shown = CliRunner().invoke(cli, ["sync"])
    assert (shown.exit_code, shown.output) == (
        0, f"sent 39 samples to {influxdb1.url}; 1 refused by the server (see `tracker outbox`)\n")
    assert stored_records(influxdb1, influx_database, "host = 'test-host'") == records[:23] + records[24:]
    with Outbox(paths.database_file()) as outbox:
        stats = outbox.stats()
    assert [row.record for row in stats.quarantined] == [records[23]] and stats.waiting == 0
    assert "field type conflict" in stats.quarantined[0].reason


def test_a_lone_row_real_influxdb_refuses_waits_until_it_is_sent_with_rows_it_accepts(influxdb1, influx_database,
                                                                                       monkeypatch):
    conflicting_title(influxdb1, influx_database)
    lone = make_records(1)[0]  # with a title
    recorded([lone])
    monkeypatch.setenv("TRACKER_INFLUX_BUCKET", influx_database)
    monkeypatch.setenv("TRACKER_INFLUX_URL", influxdb1.url)
    shown = CliRunner().invoke(cli, ["sync"])
    # Nothing else to send: InfluxDB accepted nothing, so the row is not judged; it waits, and sync says why.
    assert shown.exit_code == 1
    assert shown.output.startswith(f"Error: InfluxDB at {influxdb1.url} refused every sample it was sent, even one"
                                   " at a time (partial write: field type conflict:")
    assert shown.output.endswith(": check the server and any proxy in front of it. 1 sample still waiting.\n")
    assert outbox_figures() == (1, 0)

    good = [replace(record, title=None) for record in make_records(5, first=1)]
    recorded(good)
    shown = CliRunner().invoke(cli, ["sync"])
    assert (shown.exit_code, shown.output) == (
        0, f"sent 5 samples to {influxdb1.url}; 1 refused by the server (see `tracker outbox`)\n")
    assert stored_records(influxdb1, influx_database, "host = 'test-host'") == good
    with Outbox(paths.database_file()) as outbox:
        assert [row.record for row in outbox.stats().quarantined] == [lone]


def test_a_running_sender_quarantines_a_lone_refused_row_once_newer_rows_are_accepted(influxdb1, influx_database):
    conflicting_title(influxdb1, influx_database)
    lone = make_records(1)[0]  # with a title
    recorded([lone])
    statuses: list[str] = []
    settings = InfluxSettings(url=influxdb1.url, bucket=influx_database, api="v1")
    sender = fast_sender(settings, statuses, first_retry=0.3)
    sender.start()
    wait_until(lambda: statuses, what="the first attempt")
    assert statuses[0].startswith(f"InfluxDB at {influxdb1.url} refused every sample it was sent, even one at a"
                                  " time (partial write: field type conflict:")
    assert outbox_figures() == (1, 0)
    good = [replace(record, title=None) for record in make_records(5, first=1)]
    recorded(good)
    sender.wake()
    wait_until(lambda: len(statuses) == 2, what="the next attempt")
    sender.stop()
    assert statuses[1] == f"InfluxDB at {influxdb1.url} is reachable again; sent 5 samples"
    assert stored_records(influxdb1, influx_database, "host = 'test-host'") == good
    with Outbox(paths.database_file()) as outbox:
        assert [row.record for row in outbox.stats().quarantined] == [lone]


def test_quarantined_rows_put_back_in_the_queue_reach_a_real_influxdb(servers, influxdb1, influx_database,
                                                                      monkeypatch):
    server = FaultServer(bad_line_marker="BAD-TITLE").start()
    servers.append(server)
    records = make_records(20)
    for number in (4, 15):
        records[number] = replace(records[number], title=f"BAD-TITLE {number}")
    recorded(records)
    assert sync_to(server.url, monkeypatch) == (
        0, f"sent 18 samples to {server.url}; 2 refused by the server (see `tracker outbox`)\n")
    assert outbox_figures() == (0, 2)
    assert "`tracker outbox --retry-quarantined` puts them back in the queue" in CliRunner().invoke(
        cli, ["outbox"]).output

    shown = CliRunner().invoke(cli, ["outbox", "--retry-quarantined"])
    assert (shown.exit_code, shown.output) == (0, "Put 2 samples back in the queue: `tracker sync` sends them now,"
                                                  " a running tracker within seconds.\n")
    assert outbox_figures() == (2, 0)
    monkeypatch.setenv("TRACKER_INFLUX_BUCKET", influx_database)
    monkeypatch.setenv("TRACKER_INFLUX_URL", influxdb1.url)
    shown = CliRunner().invoke(cli, ["sync"])
    assert (shown.exit_code, shown.output) == (0, f"sent 2 samples to {influxdb1.url}\n")
    assert stored_records(influxdb1, influx_database) == [records[4], records[15]]
    assert outbox_figures() == (0, 0)
    shown = CliRunner().invoke(cli, ["outbox", "--retry-quarantined"])
    assert (shown.exit_code, shown.output) == (0, "Nothing is quarantined.\n")
