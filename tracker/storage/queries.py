"""The local history's reader: `History` and its report queries, and `tracker report` and `tracker categories
uncategorized` made of them: time from the local history, no InfluxDB needed. Whole UTC days and quarter hours come
from the rollups the writer (tracker.storage.history) keeps, the parts at a period's ends from the events."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple, TypeVar

from tracker.events import Event, pulse_of
from tracker.model import AWAY, STATE_ACTIVE, UNCATEGORIZED
from tracker.paths import database_file
from tracker.storage.db import open_database, transaction, unavailable_as
from tracker.storage.history_tables import (
    COLUMNS,
    DAY_MS,
    QUARTER_HOUR_MS,
    SCHEMA,
    add_to_sums,
    event_of_row,
    round_up,
    to_ms,
)
from tracker.timespec import local_day_starts, local_hour_starts, local_midnight

GROUPINGS = ("category", "activity", "app", "hour", "day")

# Time that counts in reports: active and not away. Away time is reported on its own.
_ACTIVE = f"state = '{STATE_ACTIVE}' AND category != '{AWAY}'"
# Each event's part inside [:since, :until), in seconds.
_CLIPPED = "(MIN(timestamp + duration * 1000.0, :until) - MAX(timestamp, :since)) / 1000.0"
# A local hour or day of a report: its start and end (ms since the epoch) and its label ("09", "2024-05-01").
Piece = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Total:
    """One row of a report: a category, activity, app, hour ("09") or day ("2024-05-01") and its time."""

    name: str
    seconds: float
    score: float | None  # time-weighted mean score, -2..+2
    detail: str | None = None  # the app, for activities


@dataclass(frozen=True, slots=True)
class Summary:
    active_seconds: float
    away_seconds: float
    uncategorized_seconds: float
    pulse: float | None  # 0..100 over active time; None when there is none


class Group(NamedTuple):
    """Time of one category, activity and app in a period, active or away."""

    active: bool
    category: str
    activity: str
    app: str
    seconds: float
    weighted_score: float  # sum of seconds × score


@dataclass(frozen=True)
class Breakdown:
    """The time in a period per category, activity and app: the summary and the totals by category, activity
    and app are sums of it."""

    groups: list[Group]

    def summary(self) -> Summary:
        active = away = uncategorized = weighted = 0.0
        for group in self.groups:
            if not group.active:
                away += group.seconds
                continue
            active += group.seconds
            weighted += group.weighted_score
            if group.category == UNCATEGORIZED:
                uncategorized += group.seconds
        return Summary(active, away, uncategorized, pulse_of(weighted / active) if active > 0 else None)

    def totals(self, by: str) -> list[Total]:
        """Active time by category, activity or app, longest first; an activity's detail is its app (the last
        in alphabetical order if it had several)."""
        if by not in ("category", "activity", "app"):
            raise ValueError(f"cannot group by {by!r} here: use category, activity or app")
        sums: dict[str, list[float]] = {}
        apps: dict[str, str] = {}
        for group in self.groups:
            if group.active and group.seconds > 0:  # an app with no time in the period is not an activity's
                name = getattr(group, by)
                add_to_sums(sums, name, group.seconds, group.weighted_score)
                apps[name] = max(apps.get(name, group.app), group.app)
        totals = [Total(name, seconds, weighted / seconds, apps[name] if by == "activity" else None)
                  for name, (seconds, weighted) in sums.items() if seconds > 0]
        return sorted(totals, key=lambda total: (-total.seconds, total.name))


class History:
    """The event history in `path`, for reports: queries only, nothing is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with unavailable_as(f"open the history in {path}", path=path):
            # With WAL, NORMAL cannot corrupt the file; a power cut may lose the last second or so.
            self._db = open_database(path, "NORMAL")
            try:
                self._db.executescript(SCHEMA)
            except BaseException:
                self._db.close()
                raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def is_empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None

    def events(self, since: datetime, until: datetime) -> list[Event]:
        """The events overlapping [since, until), unclipped, in time order."""
        rows = self._db.execute(
            f"SELECT id, {COLUMNS} FROM events WHERE {self._overlapping()} ORDER BY timestamp, id",
            self._period(to_ms(since), to_ms(until)),
        )
        return [event_of_row(row) for row in rows]

    def summary(self, since: datetime, until: datetime) -> Summary:
        """Active, away and uncategorized time in [since, until), and the pulse over the active time."""
        return self.breakdown(since, until).summary()

    def totals(self, since: datetime, until: datetime, by: str, category: str | None = None) -> list[Total]:
        """Active time in [since, until) by category, activity, app, hour of day or day, longest first
        (hours and days in time order); events crossing the boundaries count only their part inside.
        `category` keeps only that category's events."""
        if by not in GROUPINGS:
            raise ValueError(f"cannot group by {by!r}: use one of {', '.join(GROUPINGS)}")
        if by in ("hour", "day"):
            return self._bucket_totals(since, until, by, category)
        return self.breakdown(since, until, category).totals(by)

    def breakdown(self, since: datetime, until: datetime, category: str | None = None) -> Breakdown:
        """The time in [since, until) per category, activity and app, active or away: one pass answers the
        summary and the totals by category, activity and app. Whole UTC days come from the day rollup, the
        partial days at both ends from the events."""
        since_ms, until_ms = to_ms(since), to_ms(until)
        first_day, end_day = round_up(since_ms, DAY_MS), until_ms // DAY_MS * DAY_MS
        with self._reading():
            if first_day < end_day and self._rollups_in_step():
                groups = (self._rolled_up_groups(first_day, end_day, category)
                          + self._event_groups(since_ms, first_day, category)
                          + self._event_groups(end_day, until_ms, category))
            else:
                groups = self._event_groups(since_ms, until_ms, category)
        return Breakdown(groups)

    def _event_groups(self, since_ms: int, until_ms: int, category: str | None) -> list[Group]:
        if since_ms >= until_ms:
            return []
        rows = self._db.execute(
            f"""SELECT {_ACTIVE} AS active, category, activity, app, TOTAL({_CLIPPED}), TOTAL({_CLIPPED} * score)
                FROM events WHERE {self._overlapping()} {self._only(category)}
                GROUP BY active, category, activity, app""",
            {**self._period(since_ms, until_ms), "category": category},
        )
        return [Group(bool(active), *rest) for active, *rest in rows]

    def _rolled_up_groups(self, first_day: int, end_day: int, category: str | None) -> list[Group]:
        rows = self._db.execute(
            f"""SELECT active, category, activity, app, TOTAL(seconds), TOTAL(weighted_score) FROM day_totals
                WHERE day >= :first_day AND day < :end_day {self._only(category)}
                GROUP BY active, category, activity, app""",
            {"first_day": first_day, "end_day": end_day, "category": category},
        )
        return [Group(bool(active), *rest) for active, *rest in rows]

    def _bucket_totals(self, since: datetime, until: datetime, by: str, category: str | None) -> list[Total]:
        """Hours of the day or days: the period is cut at each local hour or midnight. Whole UTC quarter hours
        come from their rollup (each lies within one piece: local hours and midnights fall on quarter hours);
        the parts at both ends, and any period the rollup cannot answer, from the events."""
        pieces = _local_pieces(since, until, by)
        since_ms, until_ms = to_ms(since), to_ms(until)
        first_quarter = round_up(since_ms, QUARTER_HOUR_MS)
        end_quarter = until_ms // QUARTER_HOUR_MS * QUARTER_HOUR_MS
        sums: dict[str, list[float]] = {}
        with self._reading():
            if (category is None and first_quarter < end_quarter
                    and all(start % QUARTER_HOUR_MS == 0 for start, _, _ in pieces
                            if first_quarter < start < end_quarter)
                    and self._rollups_in_step()):
                self._add_event_buckets(sums, _clip_pieces(pieces, since_ms, first_quarter), category)
                self._add_event_buckets(sums, _clip_pieces(pieces, end_quarter, until_ms), category)
                starts = [start for start, _, _ in pieces]
                rows = self._db.execute(
                    """SELECT quarter_hour, seconds, weighted_score FROM quarter_hour_totals
                       WHERE quarter_hour >= ? AND quarter_hour < ?""", (first_quarter, end_quarter))
                for quarter_hour, seconds, weighted in rows:
                    add_to_sums(sums, pieces[bisect_right(starts, quarter_hour) - 1][2], seconds, weighted)
            else:
                self._add_event_buckets(sums, pieces, category)
        return [Total(label, seconds, weighted / seconds)
                for label, (seconds, weighted) in sorted(sums.items()) if seconds > 0]

    def _add_event_buckets(self, sums: dict[str, list[float]], pieces: list[Piece], category: str | None) -> None:
        """Add each event's part in each piece to the sums of the piece's label (a join on a temporary table
        of the pieces)."""
        if not pieces:
            return
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS pieces (start INTEGER PRIMARY KEY, end INTEGER, label TEXT)")
        self._db.execute("DELETE FROM pieces")
        self._db.executemany("INSERT INTO pieces VALUES (?, ?, ?)", pieces)
        longest_piece = max(end_ms - start_ms for start_ms, end_ms, _ in pieces)
        part = "(MIN(timestamp + duration * 1000.0, pieces.end) - MAX(timestamp, pieces.start)) / 1000.0"
        rows = self._db.execute(
            f"""SELECT label, TOTAL({part}), TOTAL({part} * score)
                FROM events CROSS JOIN pieces  -- CROSS: events outside, so each finds its pieces by index
                    ON pieces.start > timestamp - :longest_piece AND pieces.start < timestamp + duration * 1000.0
                    AND pieces.end > timestamp
                WHERE {self._overlapping()} AND {_ACTIVE} {self._only(category)}
                GROUP BY label""",
            {**self._period(pieces[0][0], pieces[-1][1]), "category": category, "longest_piece": longest_piece},
        )
        for label, seconds, weighted in rows:
            add_to_sums(sums, label, seconds, weighted)

    def _reading(self) -> AbstractContextManager[None]:
        """One read transaction: rollups and events seen as of the same moment, whatever a writer commits."""
        return transaction(self._db, immediate=False)

    def _rollups_in_step(self) -> bool:
        return self._db.execute("SELECT 1 FROM rollups_in_step").fetchone() is not None

    def _period(self, since_ms: int, until_ms: int) -> dict[str, float]:
        # Only the timestamp index narrows the scan, so start it as early as the longest event could reach.
        longest = self._db.execute("SELECT MAX(duration) FROM events").fetchone()[0] or 0.0
        return {"since": since_ms, "until": until_ms, "earliest": since_ms - longest * 1000.0}

    @staticmethod
    def _overlapping() -> str:
        return "timestamp >= :earliest AND timestamp < :until AND timestamp + duration * 1000.0 > :since"

    @staticmethod
    def _only(category: str | None) -> str:
        return "AND category = :category" if category is not None else ""


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


def _local_pieces(since: datetime, until: datetime, by: str) -> list[Piece]:
    """[since, until) cut at each local hour or midnight, each piece labelled with its hour or day."""
    since_ms, until_ms = to_ms(since), to_ms(until)
    starts = local_day_starts(since, until)
    if by == "hour":
        labelled_cuts = _local_hour_starts(starts)
    else:
        labelled_cuts = [(to_ms(start), start.date().isoformat()) for start in starts]
    first_label = f"{since.astimezone().hour:02d}" if by == "hour" else since.astimezone().date().isoformat()
    cuts = [(since_ms, first_label)]
    cuts += [(cut_ms, label) for cut_ms, label in labelled_cuts if since_ms < cut_ms < until_ms]
    ends = [cut_ms for cut_ms, _ in cuts[1:]] + [until_ms]
    return [(start_ms, end_ms, label) for (start_ms, label), end_ms in zip(cuts, ends, strict=True)]


def _local_hour_starts(day_starts: list[datetime]) -> list[tuple[int, str]]:
    """(ms, "HH") of every local hour start in the days; DST days have 23 or 25 of them."""
    hour_starts: dict[int, str] = {}
    for start in day_starts:
        next_start = local_midnight(start.date() + timedelta(days=1))
        start_ms = to_ms(start)
        if to_ms(next_start) - start_ms == DAY_MS and start.utcoffset() == next_start.utcoffset():
            # No clock change that day: its hours follow from its midnight (asking the zone for each of a
            # year's 8,760 hours took longer than the rest of the report).
            hour_starts.update((start_ms + hour * 3_600_000, f"{hour:02d}") for hour in range(24))
        else:
            hour_starts.update((to_ms(moment), f"{hour:02d}") for moment, hour in local_hour_starts(start))
    return sorted(hour_starts.items())


def _clip_pieces(pieces: Iterable[Piece], start_ms: int, end_ms: int) -> list[Piece]:
    """The pieces' parts within [start_ms, end_ms)."""
    return [(max(start, start_ms), min(end, end_ms), label) for start, end, label in pieces
            if start < end_ms and end > start_ms]
