"""The tracker's own vitals: points of measurement `tracker` in InfluxDB while it runs, and in `tracker status`."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from click.testing import CliRunner
from helpers.running import TRACKER, RunningTracker, command
from helpers.servers import InfluxDB1, wait_until

from tracker import paths
from tracker.commands import cli
from tracker.recording.localstore import LocalStore
from tracker.recording.runstate import RunnerState, StatusSnapshot
from tracker.recording.vitals import read_vitals, to_point, vitals_document
from tracker.sending.sender import RequestCounts
from tracker.storage.history import HistoryWriter
from tracker.storage.outbox import Outbox
from tracker.ui.present import status_text

TAGS = {"host", "version", "source", "api"}
FIELDS = {"cpu_seconds", "memory_bytes", "gc_collections", "gc_tracked_objects", "threads", "open_fds",
          "samples_taken", "outbox_waiting", "database_bytes", "database_wal_bytes", "seconds_behind",
          "requests_ok", "requests_auth", "requests_rejected", "requests_retry", "requests_failed"}


def write_config(text: str) -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(text, encoding="utf-8")


def vitals_waiting() -> int:
    return json.loads(command("outbox", "--json").stdout)["waiting_vitals"]


def open_store() -> LocalStore:
    database = paths.database_file()
    paths.private_dir(database.parent)
    return LocalStore(Outbox(database), HistoryWriter(database, 2.0), print)


# -- the figures, without a run ------------------------------------------------------------------------


def test_the_figures_describe_this_process_and_its_outbox() -> None:
    store = open_store()
    try:
        requests = RequestCounts(by_result={"ok": 3, "retry": 2}, last_seconds=0.25, last_lines=40)
        vitals = read_vitals(7, store, requests)
    finally:
        store.close()
    assert vitals.cpu_seconds > 0
    assert vitals.memory_bytes is not None and vitals.memory_bytes > 1_000_000
    assert vitals.threads >= 1 and vitals.open_fds is not None and vitals.open_fds >= 3
    assert vitals.samples_taken == 7 and vitals.outbox_waiting == 0 and vitals.seconds_behind == 0.0
    assert vitals.database_bytes is not None and vitals.database_bytes > 0
    assert vitals.requests["ok"] == 3 and vitals.requests["auth"] == 0 and vitals.requests_failed == 2
    assert (vitals.last_send_seconds, vitals.last_send_lines) == (0.25, 40)


def test_a_point_is_line_protocol_with_integer_counts_and_without_unknown_figures() -> None:
    store = open_store()
    try:
        vitals = read_vitals(7, store, None)
    finally:
        store.close()
    line = to_point(vitals, 1_700_000_000_000, {"host": "my laptop", "version": "0.1.0", "source": "demo",
                                                "api": "auto"})
    assert line.startswith("tracker,api=auto,host=my\\ laptop,source=demo,version=0.1.0 ")
    assert line.endswith(" 1700000000000")
    assert "samples_taken=7i" in line and "requests_ok=0i" in line and "requests_failed=0i" in line
    assert "unreadable_titles=0i" in line  # a count from the start, so a Grafana query of it finds a 0
    assert "last_send_seconds" not in line  # nothing was sent: left out rather than written as a zero


def test_tracker_status_shows_the_runner_s_own_figures() -> None:
    store = open_store()
    try:
        vitals = read_vitals(42, store, RequestCounts(by_result={"ok": 3, "retry": 1}, last_seconds=0.05,
                                                      last_lines=12))
    finally:
        store.close()
    snapshot = StatusSnapshot(pid=os.getpid(), started_at=datetime.now(timezone.utc), samples_taken=42,
                              vitals=vitals_document(vitals), written_at=datetime.now(timezone.utc))
    shown = status_text(RunnerState(paths.data_dir(), os.getpid(), snapshot, None))
    assert "CPU used" in shown and " MB resident" in shown and "collections" in shown
    assert "3 ok, 1 retry" in shown and "12 lines in 0.050 s" in shown
    assert "titles unread" not in shown  # said only once a title could not be read


# -- a real run ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_sending_to_influxdb_writes_its_vitals_every_second_and_status_shows_them(
        influxdb1: InfluxDB1, influx_database: str) -> None:
    write_config("vitals_every: 1s\n")
    env = os.environ | {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}
    run = subprocess.run([TRACKER, "run", "--source", "demo", "--interval", "0.2", "--for", "6s", "--quiet"],
                         env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr

    points = influxdb1.rows('SELECT * FROM "tracker"', influx_database)
    assert len(points) >= 3  # one a second for 6 s, on a busy machine too
    for point in points:
        assert {name for name, value in point.items() if value is not None} >= FIELDS, point
        assert set(point) >= TAGS and (point["source"], point["api"], point["version"]) == ("demo", "auto", "0.1.0")
        assert point["host"]
        assert point["memory_bytes"] > 1_000_000
        assert point["cpu_seconds"] > 0 and point["threads"] >= 2 and point["open_fds"] >= 3
        assert point["database_bytes"] > 0 and point["seconds_behind"] >= 0
    taken = [point["samples_taken"] for point in points]
    assert taken == sorted(taken) and taken[-1] > taken[0]
    cpu = [point["cpu_seconds"] for point in points]
    assert cpu == sorted(cpu)
    assert points[-1]["requests_ok"] >= 1 and points[-1]["last_send_lines"] >= 1
    # Samples were sent beside them, untouched.
    assert influxdb1.rows('SELECT count("score") FROM "activity"', influx_database)[0]["count"] >= 20

    status = json.loads(command("status", "--json").stdout)["status"]
    vitals = status["vitals"]
    assert vitals["samples_taken"] == status["samples_taken"] >= taken[-1]
    assert vitals["memory_bytes"] > 1_000_000 and vitals["requests_ok"] >= 1
    assert set(vitals) >= FIELDS


@pytest.mark.slow
def test_without_influxdb_no_vitals_points_are_kept_but_status_shows_the_figures() -> None:
    write_config("vitals_every: 1s\n")
    run = subprocess.run([TRACKER, "run", "--source", "demo", "--interval", "0.2", "--for", "3s", "--quiet"],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    assert vitals_waiting() == 0
    assert json.loads(command("status", "--json").stdout)["status"]["vitals"]["memory_bytes"] > 1_000_000


@pytest.mark.slow
def test_vitals_every_0_turns_the_points_off(influxdb1: InfluxDB1, influx_database: str) -> None:
    write_config("vitals_every: 0\n")
    env = os.environ | {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}
    run = subprocess.run([TRACKER, "run", "--source", "demo", "--interval", "0.2", "--for", "3s", "--quiet"],
                         env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    assert influxdb1.rows('SELECT count("score") FROM "activity"', influx_database)
    assert influxdb1.rows('SELECT * FROM "tracker"', influx_database) == []



@pytest.mark.slow
def test_influxdb_stopped_and_started_again_loses_no_vitals_point(own_influxdb1: InfluxDB1) -> None:
    write_config("vitals_every: 1s\n")
    env = os.environ | {"TRACKER_INFLUX_URL": own_influxdb1.url, "TRACKER_INFLUX_BUCKET": "tracker"}
    tracker = RunningTracker("--source", "demo", "--interval", "0.2", "--quiet", env=env)
    try:
        wait_until(lambda: tracker.said("Sending to InfluxDB"), 20, "the first send")
        stopped_ms = int(time.time() * 1000)
        own_influxdb1.stop()
        wait_until(lambda: tracker.said("is unreachable"), 20, "the tracker noticing the server is down")
        wait_until(lambda: vitals_waiting() >= 4, 30, "vitals points kept while the server is down")
        restarted_ms = int(time.time() * 1000)
        own_influxdb1.start()
        wait_until(lambda: tracker.said("reachable again"), 60, "the tracker sending again by itself")

        def sent() -> list[dict[str, Any]]:
            return own_influxdb1.rows('SELECT * FROM "tracker"', "tracker")

        # Waited for in InfluxDB, not as an empty outbox: a new point waits every second, and on a busy
        # machine the outbox may never be seen empty between two of them.
        wait_until(lambda: sum(stopped_ms < point["time"] < restarted_ms for point in sent()) >= 4, 60,
                   "the vitals points made while the server was down to be sent")
        # And one made since, counting the failed request (the server may have come back within a second of
        # it, before any point was made).
        wait_until(lambda: any(point["requests_failed"] >= 1 for point in sent()), 30,
                   "a vitals point counting the failure")
    finally:
        code, err = tracker.stop(signal.SIGTERM)
    assert code == 0, err
    points = own_influxdb1.rows('SELECT * FROM "tracker"', "tracker")
    assert vitals_waiting() == 0  # what was committed up to the clean stop went out before exit
    times = [point["time"] for point in points]
    assert times == sorted(set(times))
    # One a second throughout, the outage included: a lost point would leave a gap of its own second.
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps) < 2_500, gaps
    assert sum(stopped_ms < moment < restarted_ms for moment in times) >= 4  # made while the server was down
    failed = [point["requests_failed"] for point in points]
    assert failed == sorted(failed) and failed[-1] >= 1, points


def test_tracker_outbox_counts_waiting_vitals_points_apart() -> None:
    from tracker.storage.outbox import Point

    with Outbox(paths.database_file()) as outbox:
        outbox.append_points([Point("tracker", 1_700_000_000_000, "laptop",
                                    "tracker,host=laptop samples_taken=1i 1700000000000")])
    shown = CliRunner().invoke(cli, ["outbox"])
    assert "Waiting:       0 samples and 1 vitals point" in shown.output
