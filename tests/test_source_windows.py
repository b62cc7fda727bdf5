"""The Windows source, run for real under Wine on the Xvfb desktop by the Windows embeddable CPython: Win32
windows of the tests' own with hostile titles, focus moved between them, idle time, and a `tracker run --source
windows` that sends to the real InfluxDB 1.x on loopback and keeps its local history."""

from __future__ import annotations

import itertools
import json
import os
import signal
from pathlib import Path
from typing import Any

from helpers.running import command
from helpers.servers import Desktop, InfluxDB1, wait_until
from helpers.wine import ROOT, WineSession, windows_path

from tracker.recording.sources.windows import clean_utf16, idle_milliseconds

HELPERS = ROOT / "tests" / "helpers"
_numbers = itertools.count()
LONG = "Long title " + "x" * 3000
EMOJI_AND_RTL = "Plan 📅 ✓ — مرحبا بالعالم · שלום"
CONTROL = "tab\there\u0007bell\u001bescape\u202eevil"


class Windows:
    """The tests' Win32 windows (tests/helpers/win32_windows.py), one per title. Each is made with a plain title
    first, by which its X window is found: focus moves as a user's click moves it, through the window manager
    (SetForegroundWindow from the program itself is overruled by openbox when it focuses another window)."""

    def __init__(self, wine: WineSession, desktop: Desktop, *titles: str) -> None:
        self.desktop = desktop
        marker = f"tracker-test-{os.getpid()}-{next(_numbers)}"
        plain = [f"{marker}-{index}" for index in range(len(titles))]
        self.program = wine.start(HELPERS / "win32_windows.py", json.dumps(plain))
        self.handles = json.loads(self.program.line(30))["windows"]
        self.x_windows = [wait_until(lambda name=name: desktop._run("search", "--name", f"^{name}$", check=False),
                                     15, f"the X window of {name}").split()[0] for name in plain]
        for index, title in enumerate(titles):
            self.program.send(json.dumps({"title": [index, title]}))
            assert json.loads(self.program.line())["done"], f"SetWindowTextW refused {title[:20]!r}"

    def focus(self, index: int) -> None:
        self.desktop.activate(self.x_windows[index])

    def touch(self, index: int) -> None:
        """The pointer moved over window `index`: input as Wine counts it (input reaching its own windows)."""
        self.desktop._run("mousemove", "--window", self.x_windows[index], str(20 + next(_numbers) % 50), "30")

    def close(self) -> None:
        self.program.finish()


class Sampler:
    """tracker's source chosen as `tracker run` chooses it, read on demand (tests/helpers/win32_sampler.py)."""

    def __init__(self, wine: WineSession, source: str = "auto") -> None:
        self.program = wine.start(HELPERS / "win32_sampler.py", windows_path(ROOT), source)
        self.opened = json.loads(self.program.line(30))
        self.last: dict[str, Any] | None = None

    def read(self) -> dict[str, Any] | None:
        self.program.send("")
        self.last = json.loads(self.program.line())["sample"]
        return self.last

    def read_until(self, title: str) -> dict[str, Any] | None:
        sample = self.read()
        return sample if sample and sample["title"] == title else None

    def close(self) -> str:
        assert self.program.finish() == 0, self.program.said()
        return self.program.said()


def test_auto_chooses_the_windows_source_and_it_follows_focus_across_hostile_titles(
        wine: WineSession, desktop: Desktop) -> None:
    windows = Windows(wine, desktop, LONG, EMOJI_AND_RTL, CONTROL)
    sampler = Sampler(wine)
    try:
        assert sampler.opened == {"source": "windows", "why": "this is Windows"}
        for index, title in ((0, LONG), (1, EMOJI_AND_RTL), (2, CONTROL), (1, EMOJI_AND_RTL)):
            windows.focus(index)
            sample = wait_until(lambda title=title: sampler.read_until(title), 10,
                                f"the window titled {title[:20]!r} in front (last read: {sampler.last})")
            # python.exe's version resource names it "Python" (its file is python.exe): the description it is.
            assert sample["app"] == "Python" and sample["locked"] is False
    finally:
        windows.close()
        notices = sampler.close()
    assert notices == ""  # nothing failed, so nothing was said


def test_idle_time_grows_without_input_and_input_starts_it_again(wine: WineSession, desktop: Desktop) -> None:
    windows = Windows(wine, desktop, "Idle window")
    sampler = Sampler(wine, "windows")
    try:
        windows.focus(0)
        windows.touch(0)
        just_after = wait_until(lambda: (s := sampler.read()) and s["idle_seconds"] < 1 and s, 10, "idle reset")
        later = wait_until(lambda: (s := sampler.read()) and s["idle_seconds"] >= 1.5 and s, 10, "idle growing")
        assert later["idle_seconds"] > just_after["idle_seconds"]
        windows.touch(0)
        wait_until(lambda: (s := sampler.read()) and s["idle_seconds"] < 1, 10, "idle reset by input")
    finally:
        windows.close()
        sampler.close()


def test_a_run_sends_the_focused_window_and_a_private_one_by_app_only_and_keeps_its_history(
        wine: WineSession, desktop: Desktop, influxdb1: InfluxDB1, influx_database: str, tracker_home: Path) -> None:
    private = "Bank statement - Microsoft Edge InPrivate"
    windows = Windows(wine, desktop, "Quarterly report", private)
    windows.focus(0)
    windows.touch(0)  # Wine's last input would otherwise be its start: hours of idle, all of it away
    env = {"TRACKER_HOME": windows_path(tracker_home), "TRACKER_INFLUX_URL": influxdb1.url,
           "TRACKER_INFLUX_BUCKET": influx_database}
    run = wine.start(HELPERS / "win32_tracker.py", windows_path(ROOT), "run", "--source", "windows", "--for", "6s",
                     "--interval", "0.5", "--quiet", "--away-after", "1h", env=env)
    try:
        first = run.line(60)
        windows.focus(1)
        windows.touch(1)
        code = run.process.wait(60)
    finally:
        run.finish()
        windows.close()
    assert "Python" in first and code == 0, run.said()
    rows = influxdb1.rows('SELECT * FROM "activity"', influx_database)
    titles = {row.get("title") for row in rows}
    assert {row["app"] for row in rows} == {"Python"} and {row["host"] for row in rows} == {os.uname().nodename}
    assert "Quarterly report" in titles and None in titles and private not in titles, titles
    # The local history the Windows run wrote is the same file `tracker report` reads here.
    report = command("report", "--since", "today", "--by", "app", "--json")
    assert report.returncode == 0, report.stderr
    history = json.loads(report.stdout)
    assert [row["name"] for row in history["rows"]] == ["Python"] and history["total_seconds"] >= 4, history
    assert {row["state"] for row in rows} == {"active"}


def test_one_run_per_data_directory_on_windows_too_and_ctrl_c_stops_it_cleanly(
        wine: WineSession, desktop: Desktop, tracker_home: Path) -> None:
    """The run lock (LockFileEx) between two Windows processes, `tracker status` reading the pid beside it, and
    Ctrl-C (Wine turns SIGINT into the console's Ctrl-C event) ending the run with what it recorded kept."""
    windows = Windows(wine, desktop, "Locked in")
    windows.focus(0)
    windows.touch(0)
    env = {"TRACKER_HOME": windows_path(tracker_home)}
    first = wine.start(HELPERS / "win32_tracker.py", windows_path(ROOT), "run", "--source", "windows", "--for",
                       "60s", "--quiet", "--interval", "0.5", env=env)
    try:
        first.line(60)
        second = wine.start(HELPERS / "win32_tracker.py", windows_path(ROOT), "run", "--source", "windows",
                            "--for", "5s", "--quiet", env=env)
        assert second.finish(60) == 1
        assert "tracker run is already running for" in second.said(), second.said()
        status = wine.start(HELPERS / "win32_tracker.py", windows_path(ROOT), "status", env=env)
        assert status.finish(60) == 0, status.said()
        said = status.line()
        assert said.startswith("tracker run is running for Z:") and "(pid " in said, said
        # Read from the run's process through the Win32 API (GetProcessTimes, K32GetProcessMemoryInfo), not "?".
        figures = [line.split() for line in list(status.lines.queue) if line]
        assert [words for words in figures if words[0] in ("uptime", "CPU", "memory") and len(words) == 2
                and words[1] != "?"] and not [words for words in figures if words[1:] == ["?"]], figures
        first.process.send_signal(signal.SIGINT)
        code = first.process.wait(30)
    finally:
        first.finish()
        windows.close()
    assert code == 0, first.said()
    report = json.loads(command("report", "--since", "today", "--json").stdout)
    assert report["total_seconds"] + report["away_seconds"] >= 0.5, report


def test_idle_time_is_right_across_the_tick_counters_wrap_and_a_cut_emoji_is_replaced() -> None:
    # GetTickCount wraps to 0 every 49.7 days: input 16 ms before the wrap, read 5 ms after it.
    assert idle_milliseconds(5, 0xFFFFFFF0) == 21
    assert idle_milliseconds(10_000, 4_000) == 6_000
    assert clean_utf16("cut \ud83d") == "cut \ufffd"


def test_the_native_windows_tests_of_the_workflow_pass_under_wine(wine: WineSession) -> None:
    """tests/test_windows_native.py, which windows.yml runs on a real Windows, run by the Windows pytest."""
    run = wine.start("import os, sys, pytest; os.chdir(sys.argv[1]); sys.exit(pytest.main(sys.argv[2:]))",
                     windows_path(ROOT), "-p", "no:cacheprovider", "-q", "-rs", "tests/test_windows_native.py",
                     env={"CI": "true"})
    code = run.finish(120)
    said = "\n".join(line for line in list(run.lines.queue) if line)
    assert code == 0 and "2 passed" in said, said + run.said()
