"""The sender against a server that fails in every way it can: nothing lost, nothing doubled, nothing leaked."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner
from fault_server import FaultServer, Step, make_records
from servers import wait_until

from tracker import paths
from tracker.cli import cli
from tracker.config import InfluxSettings
from tracker.lineprotocol import to_line
from tracker.model import Record
from tracker.outbox import Outbox
from tracker.recorder import mark_away
from tracker.sender import Sender

RIGHT_TOKEN = "tracker:Right-Pa55"


def lines_of(records: list[Record]) -> list[str]:
    return [to_line(record) for record in records]


def settings_for(server: FaultServer, **changes: object) -> InfluxSettings:
    return replace(InfluxSettings(url=server.url, token=RIGHT_TOKEN, bucket="tracker", api="v1", timeout=0.5),
                   **changes)


def recorded(records: list[Record]) -> None:
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(records)


def fast_sender(settings: InfluxSettings, statuses: list[str], **options: float) -> Sender:
    timing = {"first_retry": 0.2, "max_retry": 2.0, "min_interval": 0.05} | options
    return Sender(paths.database_file(), settings, statuses.append, **timing)


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
                Step(delay=1.5)).start()  # then 413 for big batches, 400 for batches with a bad row
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

    result = Sender(paths.database_file(), settings_for(server), statuses.append).send_all()
    assert (result.ok, result.sent, result.waiting) == (True, 20, 0)
    assert server.accepted == lines_of(records)


def test_sync_while_running_never_sends_a_row_twice(servers):
    server = FaultServer(latency=0.02).start()
    servers.append(server)
    records = make_records(600)
    statuses: list[str] = []
    running = fast_sender(settings_for(server, token=None), statuses, batch_size=40, min_interval=0.0)
    running.start()
    syncing = threading.Thread(target=lambda: [Sender(paths.database_file(), settings_for(server, token=None),
                                                      statuses.append, batch_size=40).send_all()
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


def test_stop_flushes_what_is_waiting_within_its_timeout(servers):
    server = FaultServer().start()
    servers.append(server)
    statuses: list[str] = []
    sender = fast_sender(settings_for(server, token=None), statuses, min_interval=60.0, poll_interval=60.0)
    sender.start()
    records = make_records(30)
    recorded(records)  # no wake(): only the flush on stop sends these
    sender.stop(flush=True, timeout=5.0)
    assert server.accepted == lines_of(records)

    server.latency = 5.0  # a server too slow for the flush: stop() still returns on time
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

    server.start()
    shown = runner.invoke(cli, ["sync"])
    assert (shown.exit_code, shown.output) == (0, f"sent 30 samples to {server.url}\n")
    assert server.accepted == lines_of(records)


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
