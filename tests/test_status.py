"""`tracker status` against a real process holding the run lock, one that stopped, and one that was killed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from tracker import paths
from tracker.commands import cli
from tracker.recording.runlock import AlreadyRunning, acquire_run_lock, is_running

# Stands in for `tracker run`: takes the lock, writes a status, and stops cleanly when its stdin says so.
DRIVER = """
import os, sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from tracker.recording.runstate import StatusSnapshot, write_status
from tracker.recording.runlock import acquire_run_lock
from tracker.recording.sources import Permission

lock = acquire_run_lock()
now = datetime.now(timezone.utc)
snapshot = StatusSnapshot(
    pid=os.getpid(), started_at=now - timedelta(minutes=5), samples_taken=1234, activity="github.com",
    app="firefox", category="Code", score=2.0, since=now - timedelta(minutes=3), waiting=7,
    last_send=now - timedelta(seconds=4), last_error="timed out after 10 s", source="demo",
    influx_url="http://me:secret@127.0.0.1:8086",
    permissions=(Permission("Automation", "System Events", "granted", now - timedelta(seconds=2)),
                 Permission("Accessibility", None, "denied", now - timedelta(seconds=2), -25211),
                 Permission("Automation", "Safari", "not asked yet")))
write_status(snapshot)
print("ready", flush=True)
sys.stdin.readline()
write_status(replace(snapshot, stopped_at=datetime.now(timezone.utc)))
lock.release()
"""


@pytest.fixture
def runner() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def stop(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=10) == 0


def status(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["status", *args])
    return result.exit_code, result.output


def test_a_running_tracker_shows_its_vitals(runner):
    code, output = status()
    assert code == 0
    lines = output.splitlines()
    assert lines[0] == f"tracker run is running for {paths.data_dir()} (pid {runner.pid})"
    rows = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines[1:] if not line.startswith("  last")}
    assert rows["samples"] == "1,234"
    assert rows["now"] == "github.com (firefox) · Code +2 · for 3m"
    assert rows["waiting"] == "7 samples to send"
    assert rows["memory"].endswith(" MB") and float(rows["memory"].split()[0]) > 1
    assert rows["CPU"].endswith("%")
    assert "  last send   4s ago" in lines
    assert "  last error  timed out after 10 s" in lines
    assert "  InfluxDB    http://127.0.0.1:8086" in lines
    assert "secret" not in paths.data_dir().joinpath("status.json").read_text()


def test_json_of_a_running_tracker(runner):
    code, output = status("--json")
    assert code == 0
    document = json.loads(output)
    assert (document["running"], document["pid"]) == (True, runner.pid)
    assert document["memory_bytes"] > 1_000_000
    assert document["status"]["samples_taken"] == 1234


def test_a_second_runner_is_refused_with_the_first_ones_pid(runner):
    with pytest.raises(AlreadyRunning) as refused:
        acquire_run_lock()
    assert str(refused.value) == f"tracker run is already running for {paths.data_dir()} (pid {runner.pid})"
    assert is_running() == runner.pid


def test_a_stopped_tracker_exits_3_with_its_last_status_on_one_line(runner):
    stop(runner)
    code, output = status()
    assert code == 3
    assert re.fullmatch(rf"tracker run is not running for {re.escape(str(paths.data_dir()))}\. "
                        rf"It stopped (just now|\ds ago) \(pid {runner.pid}, 1,234 samples\)\.\n", output)
    with acquire_run_lock():  # free again for the next runner
        pass


def test_a_killed_tracker_is_not_running_either(runner):
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    code, output = status()
    assert code == 3
    assert re.search(rf"\. It was last seen (just now|\d+s ago) \(pid {runner.pid}, 1,234 samples\)\.\n$", output)
    assert json.loads(status("--json")[1])["running"] is False


def test_never_started():
    assert status() == (3, f"tracker run is not running for {paths.data_dir()}. Start it with `tracker run`.\n")


def test_a_running_tracker_on_macos_shows_each_permission_on_a_line_of_its_own(runner):
    code, output = status()
    assert code == 0
    lines = re.sub(r"checked \d+s ago", "checked 2s ago", output).splitlines()  # however busy the machine
    start = lines.index("  granted to  the app that started it (your terminal app), not the service")
    assert lines[start + 1:start + 4] == ["  permission  Automation for System Events: granted (checked 2s ago)",
                                          "  permission  Accessibility: denied (error -25211, checked 2s ago)",
                                          "  permission  Automation for Safari: not asked yet"]
    assert not paths.data_dir().joinpath("service-permissions.json").exists()  # not the service's: not its file
    document = json.loads(status("--json")[1])
    assert [each["state"] for each in document["status"]["permissions"]] == ["granted", "denied", "not asked yet"]
