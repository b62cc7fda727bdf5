"""`tracker report` and `tracker categories uncategorized`: time from the local history, no InfluxDB needed."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from tracker.events import Event
from tracker.model import UNCATEGORIZED
from tracker.paths import database_file
from tracker.storage.db import unavailable_as
from tracker.storage.history import History, Summary, Total

TOP_ACTIVITIES = 10
# Uncategorized time worth a hint: enough minutes and enough of the whole to be worth a rule.
NOTABLE_UNCATEGORIZED_SECONDS = 10 * 60
NOTABLE_UNCATEGORIZED_SHARE = 0.05

_Read = TypeVar("_Read")  # what a reader of the history returns


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    by: str
    rows: list[Total]
    summary: Summary
    top_activities: list[Total]  # only for the default report, by category

    @property
    def total_seconds(self) -> float:
        return self.summary.active_seconds

    def share(self, total: Total) -> float:
        """Percent of the active time."""
        return 100.0 * total.seconds / self.total_seconds if self.total_seconds else 0.0

    @property
    def uncategorized_is_notable(self) -> bool:
        uncategorized = self.summary.uncategorized_seconds
        return (uncategorized >= NOTABLE_UNCATEGORIZED_SECONDS
                and uncategorized >= NOTABLE_UNCATEGORIZED_SHARE * self.total_seconds)


def build_report(history: History, since: datetime, until: datetime, by: str = "category",
                 top_activities: bool = False) -> Report:
    breakdown = history.breakdown(since, until)  # one pass for the summary, top activities and most groupings
    return Report(
        since=since, until=until, by=by,
        rows=history.totals(since, until, by) if by in ("hour", "day") else breakdown.totals(by),
        summary=breakdown.summary(),
        top_activities=breakdown.totals("activity")[:TOP_ACTIVITIES] if top_activities else [],
    )


def uncategorized_activities(history: History, since: datetime, until: datetime) -> list[Total]:
    """Activities in the Uncategorized category, the longest first."""
    return history.totals(since, until, "activity", category=UNCATEGORIZED)


# --- from the local history ---------------------------------------------------------------------------


def open_history() -> History | None:
    """The local history, or None when nothing was ever recorded (without creating the database)."""
    path = database_file()
    if not path.exists():
        return None
    history = History(path)
    if history.is_empty():
        history.close()
        return None
    return history


def read_report(since: datetime, until: datetime, by: str) -> Report | None:
    """The report of the local history, with the top activities when by category (the default report);
    None when nothing was ever recorded. StoreUnavailable when the file cannot be read."""
    return _with_history(lambda history: build_report(history, since, until, by, top_activities=by == "category"))


def empty_report(since: datetime, until: datetime, by: str) -> Report:
    """A report with nothing in it, for when nothing was ever recorded."""
    return Report(since, until, by, [], Summary(0.0, 0.0, 0.0, None), [])


def read_uncategorized(since: datetime, until: datetime) -> list[Total] | None:
    """uncategorized_activities of the local history; None when nothing was ever recorded."""
    return _with_history(lambda history: uncategorized_activities(history, since, until))


def read_events(since: datetime, until: datetime) -> list[Event] | None:
    """The local history's events overlapping [since, until), unclipped, in time order; None when nothing was
    ever recorded. StoreUnavailable when the file cannot be read."""
    return _with_history(lambda history: history.events(since, until))


def _with_history(read: Callable[[History], _Read]) -> _Read | None:
    """`read` of the local history, which is closed after; None when nothing was ever recorded.
    StoreUnavailable, saying why plainly, when the file cannot be read (a damaged file, say)."""
    with _reading_history():
        history = open_history()
        if history is None:
            return None
        with history:
            return read(history)


def _reading_history() -> AbstractContextManager[None]:
    """StoreUnavailable, saying why plainly, when the history cannot be read (a damaged file, say)."""
    path = database_file()
    return unavailable_as(f"read the history in {path}", path=path)
