"""Local event history: what reports are made from, with no InfluxDB needed.

Events (tracker.events) in their own table of the shared SQLite file (paths.database_file()). `History`
answers reports and never writes; `HistoryWriter` is the runner's: it merges records into events
(tracker.events.heartbeat_merge), prunes by retention, and keeps today's totals for the live view.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import astuple, dataclass, replace
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from tracker.events import Event, EventData, heartbeat_merge, pulse_of
from tracker.model import AWAY, STATE_ACTIVE, UNCATEGORIZED, Record
from tracker.store import open_database, transaction, unavailable_as
from tracker.timespec import local_day_starts, local_midnight

GROUPINGS = ("category", "activity", "app", "hour", "day")
_PRUNE_EVERY = 24 * 3600.0  # seconds between retention runs while the runner is up
# Seconds an event may grow in memory before its duration is written: one commit a second cost more CPU
# than reading the desktop. A crash loses at most this much of the history (the outbox keeps every sample).
WRITE_EVERY = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    timestamp INTEGER NOT NULL,  -- start, ms since the epoch, UTC
    duration REAL NOT NULL,      -- seconds
    app TEXT NOT NULL,
    activity TEXT NOT NULL,
    category TEXT NOT NULL,
    score REAL NOT NULL,
    title TEXT,
    url TEXT,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_timestamp ON events (timestamp);
-- Lets a query find the longest event at once, and so how far before a period an overlapping event can start.
CREATE INDEX IF NOT EXISTS events_duration ON events (duration);
"""

# Time that counts in reports: active and not away. Away time is reported on its own.
_ACTIVE = f"state = '{STATE_ACTIVE}' AND category != '{AWAY}'"
# Each event's part inside [:since, :until), in seconds.
_CLIPPED = "(MIN(timestamp + duration * 1000.0, :until) - MAX(timestamp, :since)) / 1000.0"
_COLUMNS = "timestamp, duration, app, activity, category, score, title, url, state"


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


@dataclass(slots=True)
class _TodayTotals:
    """Today's seconds per category and the pulse's running sums, kept in memory by the HistoryWriter."""

    day: date
    seconds: dict[str, float]
    weighted_score: float = 0.0  # sum of seconds × score
    active_seconds: float = 0.0

    def add(self, data: EventData, seconds: float) -> None:
        if not data.active or seconds <= 0:
            return
        self.seconds[data.category] = self.seconds.get(data.category, 0.0) + seconds
        self.weighted_score += seconds * data.score
        self.active_seconds += seconds


class History:
    """The event history in `path`, for reports: queries only, nothing is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # With WAL, NORMAL cannot corrupt the file; a power cut may lose the last second or so.
        self._db = open_database(path, "NORMAL")
        try:
            self._db.executescript(_SCHEMA)
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
            f"SELECT id, {_COLUMNS} FROM events WHERE {self._overlapping()} ORDER BY timestamp, id",
            self._period(since, until),
        )
        return [_event(row) for row in rows]

    def summary(self, since: datetime, until: datetime) -> Summary:
        """Active, away and uncategorized time in [since, until), and the pulse over the active time."""
        row = self._db.execute(
            f"""SELECT
                    TOTAL(CASE WHEN {_ACTIVE} THEN {_CLIPPED} END),
                    TOTAL(CASE WHEN {_ACTIVE} THEN 0 ELSE {_CLIPPED} END),
                    TOTAL(CASE WHEN {_ACTIVE} AND category = :uncategorized THEN {_CLIPPED} END),
                    TOTAL(CASE WHEN {_ACTIVE} THEN {_CLIPPED} * score END)
                FROM events WHERE {self._overlapping()}""",
            {**self._period(since, until), "uncategorized": UNCATEGORIZED},
        ).fetchone()
        active, away, uncategorized, weighted_score = row
        return Summary(active, away, uncategorized, pulse_of(weighted_score / active) if active > 0 else None)

    def totals(self, since: datetime, until: datetime, by: str, category: str | None = None) -> list[Total]:
        """Active time in [since, until) by category, activity, app, hour of day or day, longest first
        (hours and days in time order); events crossing the boundaries count only their part inside.
        `category` keeps only that category's events."""
        if by not in GROUPINGS:
            raise ValueError(f"cannot group by {by!r}: use one of {', '.join(GROUPINGS)}")
        if by in ("hour", "day"):
            return self._bucket_totals(since, until, by, category)
        detail = "MAX(app)" if by == "activity" else "NULL"
        rows = self._db.execute(
            f"""SELECT {by}, TOTAL({_CLIPPED}) AS seconds, TOTAL({_CLIPPED} * score), {detail}
                FROM events WHERE {self._overlapping()} AND {_ACTIVE} {self._only(category)}
                GROUP BY {by} ORDER BY seconds DESC, {by}""",
            {**self._period(since, until), "category": category},
        ).fetchall()
        return [Total(name, seconds, weighted / seconds if seconds else None, detail)
                for name, seconds, weighted, detail in rows if seconds > 0]

    def _bucket_totals(self, since: datetime, until: datetime, by: str, category: str | None) -> list[Total]:
        """Hours of the day or days: the period is cut at each local hour or midnight, and SQLite adds up
        each event's part in each piece (a join on a temporary table of the pieces)."""
        starts = local_day_starts(since, until)
        if by == "hour":
            # Every local hour start in the period; DST days have 23 or 25 of them.
            moments = sorted({datetime.combine(day.date(), clock_time(hour)).astimezone()
                              for day in starts for hour in range(24)})
        else:
            moments = starts
        since_ms, until_ms = _ms(since), _ms(until)
        cuts = [(since_ms, since.astimezone())]
        cuts += [(moment_ms, moment) for moment in moments if since_ms < (moment_ms := _ms(moment)) < until_ms]
        ends = [moment_ms for moment_ms, _ in cuts[1:]] + [until_ms]
        pieces = [(start_ms, end_ms, f"{moment.hour:02d}" if by == "hour" else moment.date().isoformat())
                  for (start_ms, moment), end_ms in zip(cuts, ends, strict=True)]
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS pieces (start INTEGER PRIMARY KEY, end INTEGER, label TEXT)")
        with transaction(self._db, immediate=False):  # a temporary table: no lock on the file
            self._db.execute("DELETE FROM pieces")
            self._db.executemany("INSERT INTO pieces VALUES (?, ?, ?)", pieces)
        longest_piece = max(end_ms - start_ms for start_ms, end_ms, _ in pieces)
        part = "(MIN(timestamp + duration * 1000.0, pieces.end) - MAX(timestamp, pieces.start)) / 1000.0"
        rows = self._db.execute(
            f"""SELECT label, TOTAL({part}) AS seconds, TOTAL({part} * score)
                FROM events CROSS JOIN pieces  -- CROSS: events outside, so each finds its pieces by index
                    ON pieces.start > timestamp - :longest_piece AND pieces.start < timestamp + duration * 1000.0
                    AND pieces.end > timestamp
                WHERE {self._overlapping()} AND {_ACTIVE} {self._only(category)}
                GROUP BY label ORDER BY label""",
            {**self._period(since, until), "category": category, "longest_piece": longest_piece},
        ).fetchall()
        return [Total(label, seconds, weighted / seconds) for label, seconds, weighted in rows if seconds > 0]

    def _period(self, since: datetime, until: datetime) -> dict[str, float]:
        since_ms = _ms(since)
        # Only the timestamp index narrows the scan, so start it as early as the longest event could reach.
        longest = self._db.execute("SELECT MAX(duration) FROM events").fetchone()[0] or 0.0
        return {"since": since_ms, "until": _ms(until), "earliest": since_ms - longest * 1000.0}

    @staticmethod
    def _overlapping() -> str:
        return "timestamp >= :earliest AND timestamp < :until AND timestamp + duration * 1000.0 > :since"

    @staticmethod
    def _only(category: str | None) -> str:
        return "AND category = :category" if category is not None else ""



class HistoryWriter:
    """The runner's side of the history: records merge into events, old events are pruned, and today's
    totals are kept in memory for the live view.

    The last event grows in memory and is written every `write_every` seconds (and when it ends), not at
    every sample: a commit a second costs more CPU than reading the desktop.
    """

    def __init__(self, path: Path, pulsetime: float, retention_days: int | None = None,
                 write_every: float = WRITE_EVERY) -> None:
        self.reports = History(path)  # today's totals are loaded through the same queries as reports
        self.path = path
        self.pulsetime = pulsetime
        self.retention_days = retention_days
        self.write_every = write_every
        self._db = self.reports._db
        self._unwritten = False  # the last event lasts longer than the file says yet
        self._written_at = time.monotonic()
        self._last = self._load_last()
        self._today: _TodayTotals | None = None
        self._next_prune = 0.0
        self._prune_if_due()

    def close(self) -> None:
        """Write what is pending and close; StoreUnavailable (after closing) if it could not be written."""
        try:
            self.flush()
        finally:
            self.reports.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def flush(self) -> None:
        """Write the last event's duration if it grew since it was last written."""
        if not self._unwritten or self._last is None:
            return
        with self._writing(), transaction(self._db):
            self._db.execute("UPDATE events SET duration = ? WHERE id = ?", (self._last.duration, self._last.id))
        self._unwritten = False
        self._written_at = time.monotonic()

    def add(self, record: Record) -> None:
        """Record one final sample: it extends the last event or starts a new one (heartbeat_merge)."""
        heartbeat = Event.of(record)
        merged = heartbeat_merge(self._last, heartbeat, self.pulsetime) if self._last is not None else None
        if merged is not None and self._last is not None:
            covered = merged.duration - self._last.duration  # includes a gap within the pulsetime, as the event does
            self._last = merged
            self._unwritten = True
            if time.monotonic() - self._written_at >= self.write_every:
                self.flush()
        else:
            self.flush()
            with self._writing(), transaction(self._db):
                cursor = self._db.execute(
                    f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (heartbeat.timestamp_ms, heartbeat.duration, *astuple(heartbeat.data)),
                )
            self._last = replace(heartbeat, id=cursor.lastrowid)
            self._written_at = time.monotonic()
            covered = heartbeat.duration
        self._count_today(heartbeat.timestamp_ms, heartbeat.data, covered)
        self._prune_if_due()

    def _writing(self) -> AbstractContextManager[None]:
        """StoreUnavailable, saying why in plain words, when the history cannot be written (disk full...)."""
        return unavailable_as(f"write to the history in {self.path}")

    def _count_today(self, start_ms: int, data: EventData, seconds: float) -> None:
        if self._today is None:
            return  # nobody asked for today's totals yet: they are loaded from the table when asked
        day = datetime.fromtimestamp(start_ms / 1000).date()
        if day != self._today.day:
            self._today = _TodayTotals(day, {})  # past midnight: a new day starts empty
        self._today.add(data, seconds)

    def _load_last(self) -> Event | None:
        row = self._db.execute(
            f"SELECT id, {_COLUMNS} FROM events ORDER BY timestamp DESC, id DESC LIMIT 1"
        ).fetchone()
        return _event(row) if row else None

    def _prune_if_due(self) -> None:
        if self.retention_days is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + _PRUNE_EVERY
        self.flush()  # the reload below must not forget a pending duration
        cutoff = (time.time() - self.retention_days * 86400.0) * 1000
        with self._writing(), transaction(self._db):
            self._db.execute(
                "DELETE FROM events WHERE timestamp < :cutoff AND timestamp + duration * 1000.0 < :cutoff",
                {"cutoff": cutoff},
            )
        self._last = self._load_last()

    # --- today, for the live view --------------------------------------------------------------------

    def today_by_category(self) -> dict[str, float]:
        """Seconds per category today (local time), active time only; cheap after the first call."""
        return dict(self._today_totals().seconds)

    def today_pulse(self) -> float | None:
        today = self._today_totals()
        return pulse_of(today.weighted_score / today.active_seconds) if today.active_seconds else None

    def _today_totals(self) -> _TodayTotals:
        today = date.today()
        if self._today is None or self._today.day != today:
            self.flush()  # the query must see the last event as long as it really is
            since, until = local_midnight(today), local_midnight(today + timedelta(days=1))
            totals = self.reports.totals(since, until, "category")
            self._today = _TodayTotals(today, {total.name: total.seconds for total in totals})
            for total in totals:
                self._today.weighted_score += total.seconds * (total.score or 0.0)
                self._today.active_seconds += total.seconds
        return self._today


def _event(row: tuple) -> Event:
    event_id, timestamp, duration, *data = row
    return Event(timestamp, duration, EventData(*data), event_id)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
