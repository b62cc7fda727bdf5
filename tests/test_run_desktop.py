"""`tracker run` on a real X desktop: categories changed under it, time away from the keyboard, excluded
windows. What reaches a real InfluxDB 1.x is read back through InfluxQL."""

from __future__ import annotations

import time
from pathlib import Path

from helpers.desktop_run import TrackerOnDesktop, points, points_after_input, visited_by_app
from helpers.servers import Desktop, InfluxDB1, wait_until

from tracker import paths


def categories(name: str, score: int) -> str:
    return f"categories:\n  {name}:\n    score: {score}\n    apps: [ReloadApp]\n"


def test_a_changed_categories_file_is_used_within_seconds_and_a_broken_one_is_not(
        desktop: Desktop, influxdb1: InfluxDB1, influx_database: str, tracker_home: Path):
    window = desktop.open_window("ReloadApp", "reload me")
    desktop.activate(window)
    desktop.touch()
    rules = paths.user_categories_file()
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(categories("Before", -1))
    tracker = TrackerOnDesktop(desktop, influxdb1, influx_database, "--away-after", "1h")
    try:
        wait_until(lambda: tracker.logged_after(0, "ReloadApp", "Before -1"), 20, "samples in Before")
        changed_at = int(time.time() * 1000)
        rules.write_text(categories("After", 2))
        picked_up = wait_until(lambda: tracker.logged_after(0, "ReloadApp", "After +2"), 10, "the new rules")
        seen = len(tracker.lines)
        rules.write_text("categories:\n  Broken:\n    score: 7\n    apps: [ReloadApp]\n")
        refused = wait_until(lambda: tracker.logged_after(seen, "!", "categories.yaml"), 10, "the broken file")
        broken_at = int(time.time() * 1000)
        wait_until(lambda: any(p["time"] > broken_at + 1000
                               for p in points_after_input(desktop, influxdb1, influx_database)), 20,
                   "points after the broken change")
    finally:
        code, err = tracker.stop()
    assert code == 0, err
    assert picked_up and "line 3" in refused and "score" in refused
    categories_in_order = [(p["time"], p["category"], p["score"]) for p in points(influxdb1, influx_database)]
    names = [category for _, category, _ in categories_in_order]
    # Before, then After for good: the switch happens once, within a few seconds of the edit.
    switch = names.index("After")
    assert set(names[:switch]) == {"Before"} and set(names[switch:]) == {"After"}, names
    assert categories_in_order[switch][0] - changed_at < 5000
    assert all(score == (2.0 if name == "After" else -1.0) for _, name, score in categories_in_order)
    assert sum(time_ms > broken_at for time_ms, _, _ in categories_in_order) >= 4  # the last good rules stayed


def test_time_without_input_is_away_from_the_last_input_on_and_active_again_after(
        desktop: Desktop, influxdb1: InfluxDB1, influx_database: str):
    window = desktop.open_window("IdleApp", "reading, not typing")
    desktop.activate(window)
    desktop.touch()
    tracker = TrackerOnDesktop(desktop, influxdb1, influx_database, "--away-after", "2s")
    try:
        wait_until(lambda: tracker.logged_after(0, "IdleApp"), 30, "the first sample")
        # The input that is timed comes once the run samples: a busy machine may take longer than the 2 s
        # threshold to start it, and its first sample is away then.
        active_line = len(tracker.lines)
        desktop.touch()
        last_input = int(time.time() * 1000)
        wait_until(lambda: tracker.logged_after(active_line, "IdleApp", "Away +0"), 10, "away after 2 s")
        seen = len(tracker.lines)
        time.sleep(1.0)  # stay away a little longer: this time without input is what is being recorded
        desktop.touch()
        back = int(time.time() * 1000)
        wait_until(lambda: tracker.logged_after(seen, "IdleApp", "Uncategorized +0"), 10, "active again")
        wait_until(lambda: sum(p["time"] > back + 500
                               for p in points_after_input(desktop, influxdb1, influx_database)) >= 4, 20,
                   "active points after the input")
    finally:
        code, err = tracker.stop()
    assert code == 0, err
    rows = points(influxdb1, influx_database)
    away = [row for row in rows if last_input + 300 < row["time"] < back - 300]
    active = [row for row in rows if row["time"] > back + 300]
    # The whole stretch since the last input is away, not only what came after the 2 s threshold.
    # As many rows as samples were taken: a starved machine takes fewer than the 4 a second asked for.
    assert away and {(row["category"], row["state"], row["score"]) for row in away} == {("Away", "away", 0.0)}
    assert any(row["time"] < last_input + 2000 for row in away)  # before the 2 s threshold was crossed
    assert any(row["time"] > last_input + 2300 for row in away)  # and after it
    assert len(active) >= 4 and {(row["category"], row["state"]) for row in active} == {
        ("Uncategorized", "active")}
    assert all(row["app"] == "IdleApp" for row in away + active)
    # IdleApp has no category: the tracker says once where to go from here.
    hints = [line for line in tracker.lines if "tracker categories uncategorized" in line]
    assert len(hints) == 1 and "IdleApp has no category yet" in hints[0]


def test_excluded_windows_keep_their_app_only_locally_and_in_influxdb(
        desktop: Desktop, influxdb1: InfluxDB1, influx_database: str):
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("exclude:\n  apps: [SecretApp]\n  titles: ['online bank']\n")
    windows = {
        "SecretApp": desktop.open_window("SecretApp", "Secret plans for 2027"),
        "MailApp": desktop.open_window("MailApp", "Your Online Bank statement"),
        "PlainApp": desktop.open_window("PlainApp", "an ordinary title"),
    }
    _, by_app = visited_by_app(desktop, windows, influxdb1, influx_database, points_each=4)
    assert all(len(found) >= 3 for found in by_app.values()), {app: len(found) for app, found in by_app.items()}
    assert all(row.get("title") is None and row.get("url") is None for row in by_app["SecretApp"])
    assert all(row.get("title") is None for row in by_app["MailApp"])
    assert {row.get("title") for row in by_app["PlainApp"]} == {"an ordinary title"}
    # Nowhere in InfluxDB, nor in any byte of the local database files.
    everything = str(influxdb1.query('SELECT * FROM "activity"', influx_database))
    assert "Secret plans" not in everything and "Online Bank" not in everything
    for file in paths.data_dir().iterdir():
        if file.is_file():
            content = file.read_bytes()
            assert b"Secret plans" not in content and b"Online Bank" not in content, file


def test_private_windows_of_any_browser_keep_their_app_only_locally_and_in_influxdb(
        desktop: Desktop, influxdb1: InfluxDB1, influx_database: str):
    # A title rule that would match every window: a private one is classified by its app only.
    rules = paths.user_categories_file()
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text("categories:\n  Titled:\n    score: 1\n    titles: ['secret', 'ordinary']\n"
                     "  Browsing:\n    score: 0\n    apps: [Firefox]\n")
    windows = {
        "Firefox": desktop.open_window("Firefox", "Secret search — Mozilla Firefox Private Browsing"),
        "Google-chrome": desktop.open_window("Google-chrome", "Secret page - Google Chrome (Incognito)"),
        "Microsoft-edge": desktop.open_window("Microsoft-edge", "Secret page - [InPrivate] - Microsoft\u200b Edge"),
        "Firefox-esr": desktop.open_window("Firefox-esr", "Secret – Mozilla Firefox (Navigation privée)"),
        "Tor Browser": desktop.open_window("Tor Browser", "Secret onion — Tor Browser"),
        "NewBrowser": desktop.open_window("NewBrowser", "Secret page - NewBrowser (Incognito)"),
        "PlainApp": desktop.open_window("PlainApp", "an ordinary title"),
    }
    # Each window until its sample is taken; the stop then sends every one (no wait for a send each).
    tracker, by_app = visited_by_app(desktop, windows, influxdb1, influx_database, points_each=0)
    assert all(len(found) >= 1 for found in by_app.values()), {app: len(found) for app, found in by_app.items()}
    private = [row for app, found in by_app.items() if app != "PlainApp" for row in found]
    assert all(row.get("title") is None and row.get("url") is None for row in private)
    assert "Titled" not in {row["category"] for row in private}
    assert {row["category"] for row in by_app["Firefox"]} == {"Browsing"}
    assert {(row.get("title"), row["category"]) for row in by_app["PlainApp"]} == {("an ordinary title", "Titled")}
    # Nowhere in InfluxDB, in what the run printed, nor in any byte of the local database files.
    assert "Secret" not in str(influxdb1.query('SELECT * FROM "activity"', influx_database))
    assert not [line for line in tracker.lines if "Secret" in line]
    for file in paths.data_dir().iterdir():
        if file.is_file():
            assert b"Secret" not in file.read_bytes(), file
