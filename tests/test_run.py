"""`tracker run` end to end: real windows, real focus changes, points read back from real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.servers import Desktop, InfluxDB1, VictoriaMetrics, wait_until

TRACKER = str(Path(sys.executable).with_name("tracker"))

CATEGORIES = """\
categories:
  Deep Work:
    score: 2
    apps: [WorkApp]
  Fun:
    score: -2
    apps: [FunApp]
  Reading:
    score: 1
    titles: ['\\bmanual\\b']
"""


def tracker(*args: str, env: dict[str, str] | None = None, timeout: float = 60
            ) -> subprocess.CompletedProcess:
    return subprocess.run([TRACKER, *args], env=env or os.environ.copy(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_version_and_help_list_every_command_with_one_line():
    assert tracker("--version").stdout.strip().startswith("tracker, version ")
    help_text = tracker("--help").stdout
    commands = help_text.split("Commands:")[1].strip().splitlines()
    names = [line.split()[0] for line in commands]
    for expected in ("run", "config", "categories", "outbox", "sync", "report", "status", "demo"):
        assert expected in names, help_text
    assert all(len(line.split(None, 1)) == 2 for line in commands), "every command has a one-line summary"


def test_auto_without_a_desktop_explains_in_one_sentence_and_suggests_demo():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = tracker("run", "--for", "1s", env=env)
    assert done.returncode == 2
    assert "DISPLAY" in done.stderr and "--source demo" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


def test_without_influxdb_it_records_locally_and_says_once_how_to_configure():
    done = tracker("run", "--source", "demo", "--interval", "0.05", "--for", "1s", "--quiet")
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert output.count("InfluxDB is not configured") == 1
    outbox = json.loads(tracker("outbox", "--json").stdout)
    assert outbox["waiting"] >= 10


def test_bad_duration_is_a_plain_usage_error():
    done = tracker("run", "--source", "demo", "--for", "soon")
    assert done.returncode == 2
    assert "'soon' is not a duration" in done.stderr and "Traceback" not in done.stderr


def _switch_focus(desktop: Desktop, plan: list[tuple[str, float]]) -> list[tuple[int, str]]:
    """Activate each window for its seconds; returns (wall ms when it became active, window) pairs."""
    switches = []
    for window, seconds in plan:
        desktop.activate(window)
        switches.append((int(time.time() * 1000), window))
        time.sleep(seconds)  # the focus must stay put for this long: that is what is being recorded
    return switches


def _expected_app(switches: list[tuple[int, str]], names: dict[str, str], time_ms: int) -> str | None:
    """The app that had the focus at `time_ms`, or None within 300 ms of a switch (either is right)."""
    current = None
    for switched_at, window in switches:
        if abs(time_ms - switched_at) < 300:
            return None
        if switched_at <= time_ms:
            current = names[window]
    return current


@pytest.fixture
def two_windows(desktop: Desktop) -> Iterator[dict[str, str]]:
    work = desktop.open_window("WorkApp", "main.py — project")
    fun = desktop.open_window("FunApp", 'Funny "cats", part=2 \\ 🐈')
    manual = desktop.open_window("ReaderApp", "The user manual, chapter 3")
    yield {work: "WorkApp", fun: "FunApp", manual: "ReaderApp"}
    for window in (work, fun, manual):  # the next test opens windows of the same names
        desktop.close_window(window)


def _run_with_focus_plan(desktop: Desktop, windows: dict[str, str], tracker_home: Path,
                         env_extra: dict[str, str]) -> tuple[list[tuple[int, str]], dict]:
    (tracker_home / "config").mkdir(parents=True, exist_ok=True)
    (tracker_home / "config" / "categories.yaml").write_text(CATEGORIES)
    work, fun, manual = list(windows)
    desktop.activate(work)
    desktop.touch()  # the desktop may have been idle for minutes: this is someone at work, not away
    env = desktop.env | env_extra
    process = subprocess.Popen(
        [TRACKER, "run", "--source", "auto", "--interval", "0.25", "--for", "10s", "--quiet"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    switches = _switch_focus(desktop, [(work, 2.5), (fun, 2.5), (manual, 2.0), (work, 2.0)])
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    status = json.loads(tracker("status", "--json", env=env).stdout)
    assert status["running"] is False and status["status"]["stopped_at"]
    return switches, status["status"]


def test_points_in_influxdb1_follow_the_focus(desktop, two_windows, influxdb1: InfluxDB1, influx_database,
                                              tracker_home):
    switches, status = _run_with_focus_plan(desktop, two_windows, tracker_home, {
        "TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database})
    rows = influxdb1.rows('SELECT * FROM "activity"', influx_database)
    # 10 s at 4 Hz: one point per sample taken, none lost, none doubled.
    assert len(rows) == status["samples_taken"]
    assert 36 <= len(rows) <= 41
    categories = {"WorkApp": ("Deep Work", 2.0), "FunApp": ("Fun", -2.0), "ReaderApp": ("Reading", 1.0)}
    titles = {"WorkApp": "main.py — project", "FunApp": 'Funny "cats", part=2 \\ 🐈',
              "ReaderApp": "The user manual, chapter 3"}
    checked = 0
    for row in rows:
        expected = _expected_app(switches, two_windows, row["time"])
        if expected is None:
            continue
        checked += 1
        assert row["app"] == expected
        assert (row["category"], row["score"]) == categories[expected]
        assert row["title"] == titles[expected]
        assert row["host"] and row["state"] == "active"
        assert 0 < row["duration"] <= 0.5
    assert checked >= 30
    mean = influxdb1.rows('SELECT mean("score") FROM "activity"', influx_database)[0]["mean"]
    assert mean == pytest.approx(sum(r["score"] for r in rows) / len(rows))
    # The score is a field Grafana can average per interval.
    per_interval = influxdb1.rows('SELECT mean("score") FROM "activity" WHERE time > now() - 1h '
                                  'GROUP BY time(2s) fill(none)', influx_database)
    assert len(per_interval) >= 5


def test_points_reach_victoriametrics_through_the_v2_api(desktop, two_windows, victoria: VictoriaMetrics,
                                                         tracker_home):
    host = f"run-{time.time_ns()}"
    (tracker_home / "config").mkdir(parents=True, exist_ok=True)
    (tracker_home / "config" / "config.yaml").write_text(f"host: {host}\n")
    switches, status = _run_with_focus_plan(desktop, two_windows, tracker_home, {
        "TRACKER_INFLUX_URL": victoria.url, "TRACKER_INFLUX_API": "v2", "TRACKER_INFLUX_TOKEN": "secret",
        "TRACKER_INFLUX_ORG": "me", "TRACKER_INFLUX_BUCKET": "tracker"})

    def exported() -> list[tuple[int, str, str, float]]:
        series = victoria.export(f'activity_score{{host="{host}"}}')
        return sorted((t, s["metric"]["app"], s["metric"]["category"], v)
                      for s in series for t, v in zip(s["timestamps"], s["values"], strict=True))

    # VictoriaMetrics makes the newest rows searchable a moment after it confirmed them.
    wait_until(lambda: len(exported()) >= status["samples_taken"], 10, "every point in VictoriaMetrics")
    points = exported()
    assert len(points) == status["samples_taken"]
    checked = 0
    for time_ms, app, category, score in points:
        expected = _expected_app(switches, two_windows, time_ms)
        if expected is None:
            continue
        checked += 1
        assert app == expected
        assert (category, score) == {"WorkApp": ("Deep Work", 2), "FunApp": ("Fun", -2),
                                     "ReaderApp": ("Reading", 1)}[expected]
    assert checked >= 30
