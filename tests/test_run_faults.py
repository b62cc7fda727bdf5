"""`tracker run` as a process, under faults: its InfluxDB stopped and started again, signals, a second runner.

Each test ends by comparing, sample by sample, what the tracker recorded (its local history) with what the
real InfluxDB 1.x holds.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from servers import InfluxDB1, wait_until

from tracker import paths
from tracker.history import History

TRACKER = str(Path(sys.executable).with_name("tracker"))


class RunningTracker:
    """`tracker run` in the background, its output lines collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen([TRACKER, "run", *args], env=env or os.environ.copy(), text=True,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> str | None:
        return next((line for line in self.lines if text in line), None)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str]:
        self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=timeout)
        self._reader.join(5)
        return self.process.returncode, err


def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRACKER, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def waiting() -> int:
    return json.loads(command("outbox", "--json").stdout)["waiting"]


def samples_taken() -> int:
    return json.loads(command("status", "--json").stdout)["status"]["samples_taken"]


def assert_server_holds_exactly_the_history(server: InfluxDB1, database: str, taken: int) -> None:
    """Every sample taken is in InfluxDB once, in its event of the local history, with the same data."""
    points = server.rows('SELECT * FROM "activity"', database)
    assert len(points) == taken
    times = [point["time"] for point in points]
    assert times == sorted(set(times)), "a point stored twice"
    with History(paths.database_file()) as history:
        events = history.events(datetime.fromtimestamp(0, timezone.utc), datetime.now(timezone.utc))
    assert events
    for point in points:
        event = next((e for e in events if e.timestamp_ms <= point["time"] < e.end_ms), None)
        assert event is not None, f"point at {point['time']} is in no event of the history"
        data = event.data
        assert (point["app"], point["activity"], point["category"], point["score"], point["state"]) == (
            data.app, data.activity, data.category, data.score, data.state)
        assert point.get("title") == data.title and point.get("url") == data.url
    recorded = sum(event.duration for event in events)
    assert sum(point["duration"] for point in points) == pytest.approx(recorded, abs=0.01 * len(events))


@pytest.fixture
def own_influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """An InfluxDB 1.x of this test's own, which it may stop and start again."""
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb1-own")).start()
    server.create_database("tracker")
    yield server
    server.stop()


def test_influxdb_stopped_and_started_again_gets_every_sample_once(own_influxdb1: InfluxDB1):
    env = os.environ | {"TRACKER_INFLUX_URL": own_influxdb1.url, "TRACKER_INFLUX_BUCKET": "tracker"}
    tracker = RunningTracker("--source", "demo", "--interval", "0.2", "--quiet", env=env)
    try:
        wait_until(lambda: tracker.said("Sending to InfluxDB"), 20, "the first send")
        own_influxdb1.stop()
        down = wait_until(lambda: tracker.said("is unreachable"), 20, "the tracker noticing the server is down")
        assert "connection refused" in down and "retrying" in down
        wait_until(lambda: waiting() >= 15, 20, "samples recorded while the server is down")
        own_influxdb1.start()
        back = wait_until(lambda: tracker.said("reachable again"), 60, "the tracker sending again by itself")
        assert own_influxdb1.url in back
        wait_until(lambda: waiting() == 0, 20, "the backlog to be sent")
        taken_before_stop = samples_taken()
    finally:
        code, err = tracker.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err
    # Said once when it went down and once when it came back, not once per retry.
    assert sum("is unreachable" in line for line in tracker.lines) == 1, tracker.lines
    taken = json.loads(command("status", "--json").stdout)["status"]["samples_taken"]
    assert taken >= taken_before_stop
    # SIGTERM is a clean stop: what was recorded up to the end was sent before the process exited.
    assert waiting() == 0
    assert_server_holds_exactly_the_history(own_influxdb1, "tracker", taken)


def test_a_second_tracker_run_is_refused_and_ctrl_c_stops_the_first_cleanly(influxdb1: InfluxDB1,
                                                                           influx_database: str):
    env = os.environ | {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}
    first = RunningTracker("--source", "demo", "--interval", "0.1", "--quiet", env=env)
    try:
        wait_until(lambda: command("status").returncode == 0, 20, "the first tracker to run")
        second = subprocess.run([TRACKER, "run", "--source", "demo", "--for", "2s", "--quiet"], env=env,
                                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert second.returncode == 1
        assert second.stderr == (f"Error: tracker run is already running for {paths.data_dir()} "
                                 f"(pid {first.process.pid})\n")
        assert second.stdout == ""
        wait_until(lambda: samples_taken() >= 20, 20, "samples from the first tracker")
    finally:
        code, err = first.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    taken = json.loads(command("status", "--json").stdout)["status"]["samples_taken"]
    assert waiting() == 0
    assert_server_holds_exactly_the_history(influxdb1, influx_database, taken)


KILLS = 8
INTERVAL = 0.05


def test_kill_9_at_random_moments_then_a_restart_loses_and_doubles_nothing(influxdb1: InfluxDB1,
                                                                           influx_database: str):
    env = os.environ | {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    waiting_after_kill = []
    for _ in range(KILLS):
        tracker = RunningTracker("--source", "demo", "--interval", str(INTERVAL), "--quiet", env=env)
        wait_until(lambda tracker=tracker: tracker.lines, 20, "the tracker to record")
        time.sleep(chance.uniform(0.2, 1.5))  # the random moment of the kill: recording, sending, or both
        code, _ = tracker.stop(signal.SIGKILL)
        assert code == -signal.SIGKILL
        waiting_after_kill.append(waiting())
    synced = subprocess.run([TRACKER, "sync"], env=env, capture_output=True, text=True, timeout=60)
    assert synced.returncode == 0, synced.stderr
    assert waiting() == 0
    with sqlite3.connect(paths.database_file()) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    points = influxdb1.rows('SELECT * FROM "activity"', influx_database)
    times = [point["time"] for point in points]
    assert len(times) == len(set(times)), f"a sample stored twice (seed {seed})"
    with History(paths.database_file()) as history:
        events = history.events(datetime.fromtimestamp(0, timezone.utc), datetime.now(timezone.utc))
    # Each event starts with a sample that was committed to the outbox first: the server must have it.
    missing = [event.timestamp_ms for event in events if event.timestamp_ms not in set(times)]
    assert not missing, f"recorded but never sent: {missing[:5]} (seed {seed})"
    # Within an event the samples follow each other closely: a hole would be committed samples lost.
    pulse = max(1.5 * INTERVAL, INTERVAL + 1.0)
    for event in events:
        inside = [t for t in times if event.timestamp_ms <= t < event.end_ms]
        gaps = [later - earlier for earlier, later in itertools.pairwise(inside)]
        assert max(gaps, default=0) <= pulse * 1000 + 50, f"a hole in {event} (seed {seed})"
    # A kill between the outbox and the history leaves a sample in InfluxDB that the history lacks: one per
    # kill at most. Anything else in InfluxDB belongs to an event with the same data.
    outside = [p for p in points if not any(e.timestamp_ms <= p["time"] < e.end_ms for e in events)]
    assert len(outside) <= KILLS, f"{len(outside)} points outside the history (seed {seed})"
    assert len(points) >= KILLS * 4
    # The kills did catch samples committed but not yet sent: recovery was exercised.
    assert sum(1 for count in waiting_after_kill if count > 0) >= 2, waiting_after_kill
