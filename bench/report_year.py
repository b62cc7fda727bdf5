"""How fast reports are over a year of local history.

Generates a year of realistic history (300-600 events a workday, fewer at weekends, a long away event each
night) into a temporary database through HistoryWriter.add, then times each `tracker report` variant end to end
(query and output, in this process) and prints the numbers. Goal: the slowest variant ≤ 0.15 s.

    .venv/bin/python bench/report_year.py [--days 365] [--seed 1]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from rich.console import Console

from tracker.events import default_pulsetime
from tracker.model import AWAY, STATE_AWAY, UNCATEGORIZED, Record
from tracker.storage.history import HistoryWriter
from tracker.storage.queries import History, build_report, uncategorized_activities
from tracker.timespec import local_now, parse_since
from tracker.ui.present import render_report, report_csv, report_json

ACTIVITIES = [  # activity, app, category, score
    ("code", "code", "Code", 2.0), ("github.com", "firefox", "Code", 2.0), ("terminal", "kitty", "Code", 2.0),
    ("docs.python.org", "firefox", "Reference", 1.0), ("slack", "slack", "Communication", 0.0),
    ("mail.google.com", "firefox", "Communication", 0.0), ("youtube.com", "firefox", "Entertainment", -2.0),
    ("news.ycombinator.com", "firefox", "News", -1.0), ("zoom", "zoom", "Meetings", 0.0),
    ("obscure-tool", "obscure-tool", UNCATEGORIZED, 0.0), ("example.org", "firefox", UNCATEGORIZED, 0.0),
]


GOAL_SECONDS = 0.15  # for the slowest variant over a year


def generate(history: HistoryWriter, days: int, rng: random.Random) -> int:
    """Write `days` days of history before today, and today until now; the number of events written."""
    events = 0
    now = local_now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for days_ago in range(days, -1, -1):
        day = today - timedelta(days=days_ago)
        weekend = day.weekday() >= 5
        count = rng.randint(60, 150) if weekend else rng.randint(300, 600)
        moment = day + timedelta(hours=rng.uniform(7.5, 9.5))
        for _ in range(count):
            if moment >= now:
                return events
            activity, app, category, score = rng.choice(ACTIVITIES)
            seconds = rng.expovariate(1 / 75)  # most activities last a minute or two, a few much longer
            title = f"{activity} {rng.randint(1, 40)}"
            history.add(_record(moment, seconds, app, activity, category, score, title))
            moment += timedelta(seconds=seconds)
            events += 1
        # The night: one long away event until the next morning.
        night = (day + timedelta(days=1, hours=7) - moment).total_seconds()
        if night > 0:
            history.add(_record(moment, night, AWAY, AWAY, AWAY, 0.0, None, STATE_AWAY))
            events += 1
    return events


def _record(moment: datetime, seconds: float, app: str, activity: str, category: str, score: float,
            title: str | None, state: str = "active") -> Record:
    return Record(time_ms=int(moment.timestamp() * 1000), duration=round(seconds, 3), host="bench", app=app,
                  activity=activity, category=category, score=score, state=state, title=title)


def usable_cores() -> int:
    """The cores this process may run on (fewer than the machine's in a container or with taskset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def timed(label: str, work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    print(f"  {label:<44} {elapsed * 1000:8.1f} ms")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "tracker.db"
        with HistoryWriter(path, default_pulsetime(1.0)) as history:
            started = time.perf_counter()
            events = generate(history, arguments.days, random.Random(arguments.seed))
            print(f"{events:,} events over {arguments.days} days written in {time.perf_counter() - started:.1f} s"
                  f" ({os.path.getsize(path) / 1e6:.1f} MB)")
        now = local_now()
        console = Console(file=io.StringIO(), width=100)
        slowest = 0.0
        with History(path) as history:
            for since in ("today", "yesterday", "7d", "30d", f"{arguments.days}d"):
                start = parse_since(since, now)
                for by in ("category", "activity", "app", "hour", "day"):
                    def table(start: datetime = start, by: str = by) -> None:
                        render_report(build_report(history, start, now, by, top_activities=by == "category"),
                                      console)
                    slowest = max(slowest, timed(f"report --since {since} --by {by}", table))
                slowest = max(slowest, timed(f"report --since {since} --json", lambda start=start: report_json(
                    build_report(history, start, now, "category", top_activities=True))))
                slowest = max(slowest, timed(f"report --since {since} --by day --csv", lambda start=start: report_csv(
                    build_report(history, start, now, "day"))))
                slowest = max(slowest, timed(f"categories uncategorized --since {since}",
                                             lambda start=start: uncategorized_activities(history, start, now)))
        with HistoryWriter(path, default_pulsetime(1.0)) as writer:
            slowest = max(slowest, timed("today totals for the live view (first call)", writer.today_by_category))
        print(f"slowest: {slowest * 1000:.1f} ms")
    print(f"report over {arguments.days} days of history: slowest {slowest:.2f} s (goal ≤ {GOAL_SECONDS} s),"
          f" {date.today().isoformat()}, {usable_cores()} cores")


if __name__ == "__main__":
    main()
