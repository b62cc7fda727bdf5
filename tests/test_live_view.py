"""The live view in a real terminal (tmux), and the plain activity log for pipes and --quiet."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from helpers.servers import InfluxDB1, require_program, wait_until
from helpers.terminal import TRACKER, Pane, StartTracker, ended
from rich.console import Console

from tracker.model import Record
from tracker.recording.runner import Details, RunView
from tracker.ui.live import ActivityLog, LiveView

# Feeds a LiveView one RunView per line read from the control pipe, so the test decides when it redraws.
DRIVER = """
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from rich.console import Console
from tracker.recording.runner import Details, RunView
from tracker.ui.live import LiveView
from tracker.model import Record
from tracker.sending.sender import SenderState

record = Record(time_ms=1_714_986_000_000, duration=1.0, host="laptop", app="code", activity="code",
                category="Code", score=2.0, title="history.py - tracker - Visual Studio Code")
def connected():
    return SenderState("connected", datetime.now(timezone.utc) - timedelta(seconds=2), None)
first = RunView(record=record, rule="app code", since=record.time - timedelta(seconds=753), changed=True,
                details=lambda: Details(today={"Code": 9000.0, "Communication": 2700.0, "Entertainment": 600.0},
                                        pulse=72.0, sender=connected(), waiting=0))
browsing = replace(record, app="firefox", activity="youtube.com", category="Entertainment", score=-2.0,
                   title="A very long video title that goes on and on " * 4)
failing = SenderState("failing", None, "connection refused")
second = replace(first, record=browsing, rule="domain youtube.com", since=browsing.time,
                 details=lambda: Details(today={"Code": 9001.0, "Communication": 2700.0, "Entertainment": 601.0},
                                         pulse=70.0, sender=failing, waiting=12))
view = LiveView(Console(), min_interval=0)
view.start()
for command in open(sys.argv[1]):
    command = command.strip()
    if command == "first":
        view.show(first)
    elif command == "second":
        view.show(second)
    elif command == "notice":
        view.notice("Grant Accessibility to your terminal to read window titles.")
    elif command == "stop":
        view.stop()
        print("stopped")
"""


@dataclass
class Terminal(Pane):
    control: io.TextIOWrapper

    def send(self, command: str) -> None:
        self.control.write(command + "\n")
        self.control.flush()


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    require_program("tmux", "tmux")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    control = tmp_path / "control"
    os.mkfifo(control)
    socket = tmp_path / "tmux.sock"
    environment = {**os.environ, "LANG": "C.UTF-8", "TERM": "xterm-256color"}
    subprocess.run(["tmux", "-S", str(socket), "-f", "/dev/null", "-u", "new-session", "-d", "-s", "live",
                    "-x", "100", "-y", "30", f"exec {os.sys.executable} {driver} {control}"],
                   env=environment, check=True)
    try:
        with open(control, "w", encoding="utf-8") as writer:  # blocks until the driver opens its end
            yield Terminal(socket, writer)
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True)


def test_the_live_view_shows_the_activity_today_and_influx_and_redraws_in_place(terminal):
    terminal.send("first")
    screen = wait_until(lambda: terminal.shows("Now", "code", "Pulse"), timeout=10, what="the first frame")
    text = "\n".join(screen)
    assert "history.py - tracker - Visual Studio Code" in text
    assert "Code  +2  for 12m 34s  rule: app code" in text
    assert "Pulse     72 / 100" in text
    assert "InfluxDB  connected · last send 2s ago · 0 waiting" in text
    today = [line for line in screen if "2h 30m" in line or "45m" in line or "10m" in line]
    assert [line.count("█") for line in today] == [24, 7, 1]  # bars in proportion to 2h 30m : 45m : 10m

    terminal.send("second")
    redrawn = wait_until(lambda: terminal.shows("youtube.com"), timeout=10, what="the second frame")
    text = "\n".join(redrawn)
    assert "Entertainment  -2  for 1s  rule: domain youtube.com" in text
    assert "InfluxDB  failing: connection refused · 12 waiting" in text
    assert "Visual Studio Code" not in text  # the old frame was overwritten, not scrolled up
    assert sum("╭" in line for line in redrawn) == 1
    assert len(redrawn) == len(screen)
    assert all(len(line) <= 100 for line in redrawn)  # the long title is cut, not wrapped
    assert "…" in next(line for line in redrawn if "youtube.com" in line)

    terminal.send("notice")
    noticed = wait_until(lambda: terminal.shows("! Grant Accessibility"), timeout=10, what="the notice")
    assert len(noticed) == len(redrawn) + 1

    terminal.send("stop")
    final = wait_until(lambda: terminal.shows("stopped"), timeout=10, what="the view to stop")
    assert final[:-1] == noticed  # the last frame stays on screen, and output goes on below it


# -- the real `tracker run` on a terminal ------------------------------------------------------------

RUN_DEMO = ("run", "--source", "demo", "--interval", "0.2", "--for", "6s")
# The demo source stays on one activity for at least 12 s, so in a 6 s run "for Ns" only counts up.
LASTED = re.compile(r"  for (\d+)s  ")
INFLUX_ROW = re.compile(r"│ InfluxDB  (.+) · (\d[\d,]*) waiting +│$")


def lasted_seconds(screen: list[str]) -> int:
    return int(next(match[1] for line in screen if (match := LASTED.search(line))))


def influx_row(screen: list[str]) -> tuple[str, int]:
    """The InfluxDB row's status and its count of samples waiting."""
    match = next(match for line in screen if (match := INFLUX_ROW.search(line)))
    return match[1], int(match[2].replace(",", ""))


def assert_one_frame_drawn_in_place(pane: Pane, screen: list[str]) -> None:
    """A single panel, at the top of the pane, and nothing scrolled off: each frame overwrote the last."""
    assert screen[0].startswith("╭─ tracker ")
    assert sum("╭" in line for line in screen) == 1
    assert sum("╰" in line for line in screen) == 1
    assert pane.screen(scrollback=True)[: len(screen)] == screen
    assert sum("╭" in line for line in pane.screen(scrollback=True)) == 1
    assert all(len(line) <= 100 for line in screen)


def samples_taken() -> int:
    done = subprocess.run([str(TRACKER), "status", "--json"], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    document = json.loads(done.stdout)
    assert document["running"] is False, document
    return document["status"]["samples_taken"]


def test_tracker_run_on_a_terminal_without_influxdb(tracker_terminal: StartTracker):
    pane = tracker_terminal(*RUN_DEMO)
    first = wait_until(lambda: pane.shows("Now", "Today", "Pulse", "InfluxDB"), timeout=10,
                       what="the first frame with a sample")
    text = "\n".join(first)
    assert "EXIT=" not in text
    assert re.search(r"│ Today     .+  \d+s  █+", text), text
    assert re.search(r"│ Pulse     \d+ / 100 ", text), text
    status, waiting = influx_row(first)
    assert status == "not configured: recording locally only"
    assert waiting >= 1
    notice = [line for line in first if "! InfluxDB is not configured: recording locally only." in line]
    assert len(notice) == 1, text
    assert_one_frame_drawn_in_place(pane, first)

    started = lasted_seconds(first)
    later = wait_until(lambda: (screen := pane.shows("Pulse")) and lasted_seconds(screen) > started and screen,
                       timeout=5, what="'for Ns' to count up")
    assert_one_frame_drawn_in_place(pane, later)
    assert len(later) == len(first)  # the same rows, redrawn
    assert influx_row(later)[1] > waiting
    assert sum("! InfluxDB is not configured" in line for line in later) == 1

    final = ended(pane)
    assert final[-1] == "EXIT=0"
    frame = final[:-1]  # the last frame stays on screen, the shell's output below it
    assert frame[-1].startswith("╰")
    assert_one_frame_drawn_in_place(pane, frame)
    assert len(frame) == len(first)
    assert lasted_seconds(frame) >= lasted_seconds(later)
    assert sum("! InfluxDB is not configured" in line for line in frame) == 1
    assert influx_row(frame) == ("not configured: recording locally only", samples_taken())


def test_tracker_run_on_a_terminal_sending_to_influxdb(tracker_terminal: StartTracker, influxdb1: InfluxDB1,
                                                        influx_database: str):
    pane = tracker_terminal(*RUN_DEMO, TRACKER_INFLUX_URL=influxdb1.url, TRACKER_INFLUX_BUCKET=influx_database)
    sent = wait_until(lambda: pane.shows("Now", "Pulse", "connected · last send"), timeout=10,
                      what="the first batch to go out")
    assert "EXIT=" not in "\n".join(sent)
    assert influx_row(sent)[0].startswith("connected · last send ")
    assert not any("not configured" in line for line in sent)
    assert_one_frame_drawn_in_place(pane, sent)

    final = ended(pane)
    assert final[-1] == "EXIT=0"
    frame = final[:-1]
    assert_one_frame_drawn_in_place(pane, frame)
    status, waiting = influx_row(frame)
    assert status.startswith("connected · last send ")
    assert waiting == 0  # the last frame tells how the run ended: everything was sent
    taken = samples_taken()
    assert taken >= 20  # 6 s at 5 Hz
    assert influxdb1.rows('SELECT count("score") FROM "activity"', influx_database)[0]["count"] == taken


RECORD = Record(time_ms=1_714_986_000_000, duration=1.0, host="laptop", app="firefox", activity="github.com",
                category="Code", score=2.0, title="Pull requests")


def view_in_memory() -> tuple[io.StringIO, LiveView, RunView]:
    """A live view drawing into a string as a 100-column terminal would, and a sample to show."""
    screen = io.StringIO()
    view = LiveView(Console(file=screen, force_terminal=True, width=100))
    sample = RunView(record=RECORD, rule=None, since=RECORD.time, changed=True,
                     details=lambda: Details(today={}, pulse=None, sender=None, waiting=0))
    return screen, view, sample


def test_the_live_view_redraws_at_most_about_once_a_second():
    screen, view, sample = view_in_memory()
    with view:
        for second in range(5):  # five samples in quick succession: only the first is drawn
            view.show(replace(sample, record=replace(RECORD, time_ms=RECORD.time_ms + second * 1000)))
    drawn = screen.getvalue()
    assert drawn.count("for 1s") == 1
    assert drawn.count("for 5s") == 1  # the last state is drawn when the view stops


def test_a_notice_does_not_hold_back_the_next_sample():
    screen, view, sample = view_in_memory()
    with view:
        view.notice("InfluxDB is not configured.")  # as `tracker run` says before its first sample
        view.show(sample)
        drawn = screen.getvalue()
    assert "for 1s" in drawn  # not "waiting for the first sample…" until the next one, seconds later


def shown(record: Record, rule: str | None, changed: bool) -> RunView:
    def no_details() -> Details:
        raise AssertionError("the log shows no totals: it must not pay for them")

    return RunView(record=record, rule=rule, since=record.time, changed=changed, details=no_details)


def test_the_log_prints_a_line_when_the_runner_says_the_activity_changed():
    stream = io.StringIO()
    log = ActivityLog(stream, "text")
    for second in range(3):
        log.show(shown(replace(RECORD, time_ms=RECORD.time_ms + second * 1000, title=f"page {second}"),
                       "domain github.com", changed=second == 0))
    log.show(shown(replace(RECORD, app="slack", activity="slack", category="Communication", score=0.0), None, True))
    log.notice("InfluxDB is not configured: recording locally only.")
    lines = [line.split("  ", 1)[1] for line in stream.getvalue().splitlines()]  # without the local time
    assert lines == ["github.com (firefox)  Code +2  rule: domain github.com",
                     "slack  Communication +0",
                     "! InfluxDB is not configured: recording locally only."]


def test_the_log_in_json_lines():
    stream = io.StringIO()
    log = ActivityLog(stream, "json")
    log.show(shown(RECORD, "domain github.com", True))
    log.show(shown(replace(RECORD, time_ms=RECORD.time_ms + 1000), "domain github.com", False))
    log.notice("Sending again.")
    first, notice = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first == {"time": "2024-05-06T09:00:00+00:00", "event": "activity", "activity": "github.com",
                     "app": "firefox", "category": "Code", "score": 2.0, "state": "active",
                     "rule": "domain github.com", "title": "Pull requests", "url": None}
    assert (notice["event"], notice["message"]) == ("notice", "Sending again.")
