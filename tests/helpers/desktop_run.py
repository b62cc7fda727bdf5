"""`tracker run` on the real X desktop, sending to InfluxDB 1.x, and the points it sent."""

from __future__ import annotations

import os
from typing import Any

from helpers.running import RunningTracker
from helpers.servers import Desktop, InfluxDB1


class TrackerOnDesktop(RunningTracker):
    """`tracker run --quiet` reading the X desktop, sending to InfluxDB 1.x."""

    def __init__(self, desktop: Desktop, server: InfluxDB1, database: str, *args: str) -> None:
        env = desktop.env | {"TRACKER_INFLUX_URL": server.url, "TRACKER_INFLUX_BUCKET": database,
                             "TRACKER_HOME": os.environ["TRACKER_HOME"]}
        super().__init__("--source", "x11", "--interval", "0.25", "--quiet", *args, env=env)

    def logged_after(self, start: int, *texts: str) -> str | None:
        """The first log line from line `start` on that holds all `texts`."""
        return next((line for line in self.lines[start:] if all(text in line for text in texts)), None)


def points(server: InfluxDB1, database: str) -> list[dict[str, Any]]:
    return server.rows('SELECT * FROM "activity"', database)


def points_after_input(desktop: Desktop, server: InfluxDB1, database: str) -> list[dict[str, Any]]:
    """Input first: without it the samples since the last input may still turn out to be away time,
    so the tracker holds them back."""
    desktop.touch()
    return points(server, database)
