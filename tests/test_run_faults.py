"""`tracker run` as a process, under faults: its InfluxDB stopped and started again, signals, a second runner.

Each test ends by comparing, sample by sample, what the tracker recorded (its local history) with what the
real InfluxDB 1.x holds.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from helpers.disk import fill
from helpers.fault_server import FaultServer, Step
from helpers.running import TRACKER, RunningTracker, command
from helpers.servers import InfluxDB1, wait_until

from tracker import paths
from tracker.storage.history import WRITE_EVERY
from tracker.storage.queries import History


def latest_point(server: InfluxDB1, database: str) -> int:
    """The time (ms) of the newest point the server holds; 0 when it holds none."""
    rows = server.rows('SELECT last("score") FROM "activity"', database)
    return rows[0]["time"] if rows else 0


def waiting() -> int:
    return json.loads(command("outbox", "--json").stdout)["waiting"]


def samples_taken() -> int:
    return json.loads(command("status", "--json").stdout)["status"]["samples_taken"]


def assert_server_holds_exactly_the_history(server: InfluxDB1, database: str, taken: int,
                                            interval: float) -> None:
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
    # Each event lasts as long as its points together. Timestamps come from the wall clock and durations from
    # the monotonic one, so an event's length may differ from its points' by how far the two clocks' readings
    # drifted between its first and last sample: milliseconds, more when a busy machine preempts the run
    # between the two readings (0.1 s was seen under load), but never a whole sample.
    seconds_in: dict[int, float] = {}
    for point in points:
        event = next(e for e in events if e.timestamp_ms <= point["time"] < e.end_ms)
        seconds_in[event.timestamp_ms] = seconds_in.get(event.timestamp_ms, 0.0) + point["duration"]
    for event in events:
        assert seconds_in.get(event.timestamp_ms, 0.0) == pytest.approx(event.duration, abs=0.75 * interval), event



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
        restarted_at = int(time.time() * 1000)
        back = wait_until(lambda: tracker.said("reachable again"), 60, "the tracker sending again by itself")
        assert own_influxdb1.url in back
        wait_until(lambda: latest_point(own_influxdb1, "tracker") > restarted_at, 30, "the backlog to be sent")
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
    assert_server_holds_exactly_the_history(own_influxdb1, "tracker", taken, interval=0.2)


def test_a_second_tracker_run_is_refused_and_ctrl_c_stops_the_first_cleanly(influxdb1: InfluxDB1,
                                                                           influx_database: str):
    env = os.environ | {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}
    first = RunningTracker("--source", "demo", "--interval", "0.25", "--quiet", env=env)
    try:
        wait_until(lambda: command("status").returncode == 0, 20, "the first tracker to run")
        second = subprocess.run([TRACKER, "run", "--source", "demo", "--for", "2s", "--quiet"], env=env,
                                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert second.returncode == 1
        assert second.stderr == (f"Error: tracker run is already running for {paths.data_dir()} "
                                 f"(pid {first.process.pid})\n")
        assert second.stdout == ""
        wait_until(lambda: samples_taken() >= 20, 60, "samples from the first tracker")
    finally:
        code, err = first.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    taken = json.loads(command("status", "--json").stdout)["status"]["samples_taken"]
    assert waiting() == 0
    assert_server_holds_exactly_the_history(influxdb1, influx_database, taken, interval=0.25)


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
    # The history writes an event's growing duration every WRITE_EVERY seconds, so a kill can cut the tail
    # of the last event short there (InfluxDB has those samples: the outbox keeps every one). A kill between
    # the outbox and the history can also leave one sample of a new activity: one per kill at most.
    def in_an_unwritten_tail(point: dict) -> bool:
        before = [e for e in events if e.timestamp_ms <= point["time"]]
        return bool(before) and before[-1].data.app == point["app"] and \
            point["time"] - before[-1].end_ms <= (WRITE_EVERY + pulse) * 1000
    outside = [p for p in points if not any(e.timestamp_ms <= p["time"] < e.end_ms for e in events)]
    strays = [p for p in outside if not in_an_unwritten_tail(p)]
    assert len(strays) <= KILLS, f"{len(strays)} points outside the history (seed {seed})"
    assert len(points) >= KILLS * 4
    # The kills did catch samples committed but not yet sent: recovery was exercised.
    assert sum(1 for count in waiting_after_kill if count > 0) >= 2, waiting_after_kill


def test_a_full_disk_pauses_recording_plainly_and_nothing_is_lost_when_space_returns(
        influxdb1: InfluxDB1, influx_database: str, tracker_home: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs as the data directory")
    data = paths.data_dir()
    data.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(data)], check=True)
    try:
        env = os.environ | {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}
        tracker = RunningTracker("--source", "demo", "--interval", "0.05", "--quiet", env=env)
        try:
            wait_until(lambda: tracker.said("Sending to InfluxDB"), 20, "the first send")
            filler = fill(data)
            full = wait_until(lambda: tracker.said("the disk is full"), 20, "the tracker noticing the full disk")
            assert "nothing is lost yet" in full
            full_at = int(time.time() * 1000)
            time.sleep(1.0)  # a second of samples taken while nothing can be written: what is being tested
            freed_at = int(time.time() * 1000)
            filler.unlink()
            wait_until(lambda: tracker.said("can be written again"), 20, "the tracker writing again")
            wait_until(lambda: latest_point(influxdb1, influx_database) > freed_at, 30, "the backlog to be sent")
        finally:
            code, err = tracker.stop(signal.SIGTERM)
        assert code == 0, err
        assert "Traceback" not in err
        assert sum("the disk is full" in line for line in tracker.lines) == 1, "\n".join(tracker.lines)
        taken = json.loads(command("status", "--json").stdout)["status"]["samples_taken"]
        points = influxdb1.rows('SELECT "score" FROM "activity"', influx_database)
        times = [point["time"] for point in points]
        assert len(times) == len(set(times)) == taken
        # The samples taken while the disk was full were kept in memory and sent once it had room.
        assert sum(full_at < t < freed_at for t in times) >= 15
        with sqlite3.connect(paths.database_file()) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)



def test_a_full_outbox_drops_the_oldest_and_says_so_once():
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("outbox_max_rows: 20\n")
    done = subprocess.run([TRACKER, "run", "--source", "demo", "--interval", "0.02", "--for", "1.5s", "--quiet"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    told = [line for line in done.stdout.splitlines() if "The outbox is full" in line]
    assert len(told) == 1 and "(20 samples waiting)" in told[0]
    outbox = json.loads(command("outbox", "--json").stdout)
    taken = json.loads(command("status", "--json").stdout)["status"]["samples_taken"]
    assert outbox["waiting"] == 20
    assert outbox["dropped"] == taken - 20 > 0
    assert "dropped" in command("outbox").stdout


@pytest.mark.parametrize(("refusal", "said"), [
    (Step(400, '{"error":"request refused by policy"}'), "refused every sample it was sent, even one at a time"
                                                         " (request refused by policy): check the server"),
    (Step(413, "<html><head><title>413 Request Entity Too Large</title></head></html>"),
     "refused even a single sample as too large (413): raise the request size limit"),
])
def test_a_server_refusing_everything_gets_no_sample_quarantined_and_the_run_says_why(refusal: Step, said: str):
    server = FaultServer(refuse_all=refusal).start()
    try:
        env = os.environ | {"TRACKER_INFLUX_URL": server.url, "TRACKER_INFLUX_BUCKET": "tracker"}
        tracker = RunningTracker("--source", "demo", "--interval", "0.1", "--quiet", env=env)
        try:
            told = wait_until(lambda: tracker.said(said), 30, "the tracker saying the server refuses everything")
            assert told.endswith("samples waiting") and "; retrying, " in told
            # status.json is written every 10 s: `tracker status` says it too, soon after.
            last_error = re.compile(rf"^  last error +InfluxDB at {re.escape(server.url)} {re.escape(said)}", re.M)
            wait_until(lambda: last_error.search(command("status").stdout), 30,
                       "tracker status showing why nothing is sent")
            outbox = json.loads(command("outbox", "--json").stdout)
            assert (outbox["quarantined_count"], outbox["quarantined_vitals"]) == (0, 0)
            assert outbox["waiting"] > 0
        finally:
            code, err = tracker.stop(signal.SIGTERM)
    finally:
        server.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert not tracker.said("Sending to InfluxDB") and not tracker.said("reachable again")
    assert sum(said in line for line in tracker.lines) == 1, tracker.lines  # once, not once per attempt
    outbox = json.loads(command("outbox", "--json").stdout)
    taken = json.loads(command("status", "--json").stdout)["status"]["samples_taken"]
    assert (outbox["waiting_samples"], outbox["quarantined_count"], outbox["quarantined_vitals"]) == (taken, 0, 0)
    assert server.accepted == []


def test_another_command_holding_the_database_costs_the_run_no_second(influxdb1: InfluxDB1, influx_database: str):
    """An import or a recategorisation holds the file's write lock for seconds: the loop keeps sampling into
    memory, writes what waited once the lock is free, and every second reaches the history and InfluxDB."""
    env = os.environ | {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}
    tracker = RunningTracker("--source", "demo", "--interval", "1", "--log-format", "json", env=env)
    held_for = 5.0
    try:
        wait_until(lambda: tracker.said("Sending to InfluxDB"), 30, "the first send")
        other_command = sqlite3.connect(paths.database_file(), isolation_level=None)
        other_command.execute("BEGIN IMMEDIATE")  # the write lock, as a long transaction of another command holds it
        locked_at = time.time()
        time.sleep(held_for)  # the lock held for a while: what is being tested
        other_command.execute("COMMIT")
        released_at = time.time()
        other_command.close()
        wait_until(lambda: latest_point(influxdb1, influx_database) > released_at * 1000 + 2000, 30,
                   "the seconds after the lock to be sent")
    finally:
        code, err = tracker.stop(signal.SIGTERM)
    assert code == 0, err
    points = influxdb1.rows('SELECT "duration" FROM "activity"', influx_database)
    # The recorder bounds a sample at twice the interval: a loop that had waited for the lock would have
    # recorded at most 2 s for the 5 s it stood still.
    window = [point["duration"] for point in points if locked_at * 1000 <= point["time"] <= released_at * 1000]
    assert sum(window) >= held_for - 1.5, window
    times = sorted(point["time"] for point in points)
    assert max(b - a for a, b in itertools.pairwise(times)) < 2500, "a gap in the recorded seconds"
    assert not [line for line in tracker.lines if '"notice"' in line and "database" in line], tracker.lines
    assert_server_holds_exactly_the_history(influxdb1, influx_database, samples_taken(), interval=1.0)
