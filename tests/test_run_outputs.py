"""`tracker run` whose output cannot be written: a closed pipe, a terminal that cannot show a character, a
terminal closed under it (SIGHUP). Recording goes on, and everything recorded is kept and settled."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import yaml
from helpers.running import TRACKER, RunningTracker, command
from helpers.servers import wait_until

from tracker import paths
from tracker.recording.sources.demo import CATALOGUE
from tracker.storage.history import History

# Every app of the demo source in one category whose name no Latin-1 terminal can show.
GREEK = "Ανάπτυξη"
ALL_IN_GREEK = {"categories": {GREEK: {"score": 2, "apps": sorted({entry.app for entry in CATALOGUE})}}}


def recorded_seconds() -> float:
    with History(paths.database_file()) as history:
        return sum(event.duration for event in history.events(*ALL_TIME))


ALL_TIME = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))


def samples_taken() -> int:
    return json.loads(command("status", "--json").stdout)["status"]["samples_taken"]


def test_a_pipe_closed_by_its_reader_stops_the_lines_not_the_recording():
    # `tracker run --quiet | head -1`: the reader takes one line and goes.
    process = subprocess.Popen([TRACKER, "run", "--source", "demo", "--interval", "0.2", "--quiet", "--for", "4s"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, err
    assert first and err == ""
    assert samples_taken() >= 10  # at 5 Hz for 4 s: a run that had died at the first line took one or two
    assert recorded_seconds() >= 3.0


def test_a_terminal_in_latin_1_gets_replacement_characters_and_every_line(tracker_home: Path):
    (tracker_home / "config").mkdir(parents=True, exist_ok=True)
    (tracker_home / "config" / "categories.yaml").write_text(yaml.safe_dump(ALL_IN_GREEK, allow_unicode=True))
    env = os.environ | {"PYTHONIOENCODING": "latin-1", "LC_ALL": "C"}
    done = subprocess.run([TRACKER, "run", "--source", "demo", "--interval", "0.2", "--quiet", "--for", "3s"],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode("latin-1")
    lines = done.stdout.decode("latin-1").splitlines()
    activities = [line for line in lines if " ! " not in line]
    assert activities and all(f"{'?' * len(GREEK)} +2" in line for line in activities), lines
    assert samples_taken() >= 10
    report = subprocess.run([TRACKER, "report"], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert report.returncode == 0, report.stderr.decode("latin-1")
    assert "?" * len(GREEK) in report.stdout.decode("latin-1")


def test_sighup_from_a_closed_terminal_stops_like_sigterm_and_keeps_everything():
    tracker = RunningTracker("--source", "demo", "--interval", "0.2", "--quiet")
    wait_until(lambda: len(tracker.lines) >= 2, 30, "the run to record")
    code, err = tracker.stop(signal.SIGHUP)
    assert code == 0, err
    status = json.loads(command("status", "--json").stdout)
    assert status["running"] is False and status["status"]["stopped_at"]
    # Settled and kept: every sample taken is in the history, and nothing is left provisional in the outbox.
    assert recorded_seconds() >= 0.2 * (status["status"]["samples_taken"] - 1) - 0.05
    outbox = json.loads(command("outbox", "--json").stdout)
    assert outbox["waiting"] == status["status"]["samples_taken"], outbox


def test_a_terminal_that_goes_away_ends_the_live_view_not_the_recording():
    controller, terminal = pty.openpty()  # stdout a terminal: the live view, drawn with rich
    process = subprocess.Popen([TRACKER, "run", "--source", "demo", "--interval", "0.2", "--for", "4s"],
                               stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    assert os.read(controller, 1024)  # the first frame is drawn
    os.close(controller)  # the terminal window is closed: every later write fails with EIO
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert samples_taken() >= 10
    assert recorded_seconds() >= 3.0
