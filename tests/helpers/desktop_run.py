"""`tracker run` on the real X desktop, sending to InfluxDB 1.x, and the points it sent."""

from __future__ import annotations

import os
import signal
from typing import Any

from helpers.running import RunningTracker
from helpers.servers import Desktop, InfluxDB1, wait_until


class TrackerOn(RunningTracker):
    """`tracker run --source SOURCE --quiet` in a desktop session (`session_env`: its variables), sampling every
    0.25 s and sending to InfluxDB 1.x."""

    def __init__(self, source: str, session_env: dict[str, str], server: InfluxDB1, database: str,
                 *args: str) -> None:
        env = session_env | {"TRACKER_INFLUX_URL": server.url, "TRACKER_INFLUX_BUCKET": database,
                             "TRACKER_HOME": os.environ["TRACKER_HOME"]}
        super().__init__("--source", source, "--interval", "0.25", "--quiet", *args, env=env)


class TrackerOnDesktop(TrackerOn):
    """`tracker run --quiet` reading the X desktop, sending to InfluxDB 1.x."""

    def __init__(self, desktop: Desktop, server: InfluxDB1, database: str, *args: str) -> None:
        super().__init__("x11", desktop.env, server, database, *args)

    def visit(self, desktop: Desktop, windows: dict[str, str], server: InfluxDB1, database: str,
              points_each: int) -> None:
        """Focus each window in turn (app name -> window), until the run logged its app (its sample is in the
        outbox then, and a clean stop sends it) and, unless `points_each` is 0, sent that many more points."""
        for app, window in windows.items():
            seen = len(self.lines)  # before the focus moves: the one line for the change may come at once
            desktop.activate(window)
            wait_until(lambda app=app, seen=seen: self.logged_after(seen, app), 10, f"samples of {app}")
            if not points_each:
                continue
            first = len(points_after_input(desktop, server, database))
            wait_until(lambda first=first: len(points_after_input(desktop, server, database))
                       >= first + points_each, 20, f"points of {app}")


def visited_by_app(desktop: Desktop, windows: dict[str, str], server: InfluxDB1, database: str,
                   points_each: int) -> tuple[TrackerOnDesktop, dict[str, list[dict[str, Any]]]]:
    """A run (never away) that visits each window (see `visit`) and stops on SIGTERM, sending what it recorded
    on its way out; the run, for its log, and the points that reached InfluxDB, by app."""
    desktop.touch()
    tracker = TrackerOnDesktop(desktop, server, database, "--away-after", "1h")
    try:
        tracker.visit(desktop, windows, server, database, points_each)
    finally:
        code, err = tracker.stop(signal.SIGTERM)
    assert code == 0, err
    rows = points(server, database)
    return tracker, {app: [row for row in rows if row["app"] == app] for app in windows}


def points(server: InfluxDB1, database: str) -> list[dict[str, Any]]:
    return server.rows('SELECT * FROM "activity"', database)


def points_after_input(desktop: Desktop, server: InfluxDB1, database: str) -> list[dict[str, Any]]:
    """Input first: without it the samples since the last input may still turn out to be away time,
    so the tracker holds them back."""
    desktop.touch()
    return points(server, database)
