"""Local event history: what reports are made from, with no InfluxDB needed.

ActivityWatch's event model: an event is a start (UTC ms), a duration (s) and data. Samples with the same
data that follow each other within `pulse` seconds are merged into one event (aw-core's heartbeat merge),
so a day of work is a few hundred rows rather than tens of thousands.

Stored in its own table of the shared SQLite file (paths.database_file()), through its own connection.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import astuple, dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from tracker.model import AWAY, STATE_ACTIVE, UNCATEGORIZED, Record
from tracker.store import connect_private, unavailable_as
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


def default_pulse(interval: float) -> float:
    """How far apart two samples may be and still merge: ActivityWatch's max(1.5 × poll, poll + 1).

    The margin absorbs a late sample (a slow platform read, a busy machine) without splitting an event.
    """
    return max(1.5 * interval, interval + 1.0)


def pulse_of(score: float) -> float:
    """A score from -2 to +2 as a productivity pulse from 0 to 100."""
    return (score + 2.0) / 4.0 * 100.0


@dataclass(frozen=True, slots=True)
class EventData:
    """What must be identical for two samples to merge into one event."""

    app: str
    activity: str
    category: str
    score: float
    title: str | None
    url: str | None
    state: str

    @classmethod
    def of(cls, record: Record) -> EventData:
        return cls(record.app, record.activity, record.category, float(record.score), record.title,
                   record.url, record.state)

    @property
    def active(self) -> bool:
        return self.state == STATE_ACTIVE and self.category != AWAY


@dataclass(slots=True)
class Event:
    id: int
    timestamp_ms: int
    duration: float
    data: EventData

    @property
    def end_ms(self) -> float:
        return self.timestamp_ms + self.duration * 1000.0


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
    """Today's seconds per category and the pulse's running sums, kept in memory by the runner's History."""

    day: date
    seconds: dict[str, float]
    pulse_weighted: float = 0.0  # sum of seconds × pulse
    pulse_seconds: float = 0.0

    def add(self, data: EventData, seconds: float) -> None:
        if not data.active or seconds <= 0:
            return
        self.seconds[data.category] = self.seconds.get(data.category, 0.0) + seconds
        self.pulse_weighted += seconds * pulse_of(data.score)
        self.pulse_seconds += seconds


class History:
    """The event history in `path`; `add` is for the runner, the queries for reports."""

    def __init__(self, path: Path, retention_days: int | None = None, write_every: float = WRITE_EVERY) -> None:
        self.path = path
        self.retention_days = retention_days
        self.write_every = write_every
        self._unwritten = False  # the last event lasts longer than the file says yet
        self._written_at = time.monotonic()
        # The runner, the outbox and `tracker report` may use the file at once: wait for locks, don't fail.
        self._db = connect_private(path, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL cannot corrupt the file; a power cut may lose the last second or so.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._last = self._load_last()
        self._today: _TodayTotals | None = None
        self._next_prune = 0.0
        self._prune_if_due()

    def close(self) -> None:
        """Write what is pending and close; StoreUnavailable (after closing) if it could not be written."""
        try:
            self.flush()
        finally:
            self._db.close()

    def flush(self) -> None:
        """Write the last event's duration if it grew since it was last written."""
        if not self._unwritten or self._last is None:
            return
        with self._writing(), self._db:
            self._db.execute("UPDATE events SET duration = ? WHERE id = ?", (self._last.duration, self._last.id))
        self._unwritten = False
        self._written_at = time.monotonic()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------------------

    def add(self, record: Record, pulse: float) -> None:
        """Record one sample: extend the last event when it has the same data and the sample starts within
        `pulse` seconds of its end (keeping the event's start), otherwise start a new event."""
        data = EventData.of(record)
        start = record.time_ms
        last = self._last
        continues = last is not None and last.timestamp_ms <= start <= last.end_ms + pulse * 1000
        if last is not None and continues and last.data == data:
            new_duration = max(last.duration, (start - last.timestamp_ms) / 1000.0 + record.duration)
            covered = new_duration - last.duration  # includes a gap within the pulse, as the event does
            last.duration = new_duration
            self._unwritten = True
            if time.monotonic() - self._written_at >= self.write_every:
                self.flush()
        else:
            self.flush()
            with self._writing(), self._db:
                cursor = self._db.execute(
                    f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (start, record.duration, *astuple(data)),
                )
            self._last = Event(int(cursor.lastrowid or 0), start, record.duration, data)
            self._written_at = time.monotonic()
            covered = record.duration
        self._count_today(start, data, covered)
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
        with self._writing(), self._db:
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
        return today.pulse_weighted / today.pulse_seconds if today.pulse_seconds else None

    def _today_totals(self) -> _TodayTotals:
        today = date.today()
        if self._today is None or self._today.day != today:
            since, until = local_midnight(today), local_midnight(today + timedelta(days=1))
            totals = self.totals(since, until, "category")
            self._today = _TodayTotals(today, {total.name: total.seconds for total in totals})
            for total in totals:
                self._today.pulse_weighted += total.seconds * pulse_of(total.score or 0.0)
                self._today.pulse_seconds += total.seconds
        return self._today

    # --- reports -------------------------------------------------------------------------------------

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
                    TOTAL(CASE WHEN {_ACTIVE} THEN {_CLIPPED} * (score + 2) * 25.0 END)
                FROM events WHERE {self._overlapping()}""",
            {**self._period(since, until), "uncategorized": UNCATEGORIZED},
        ).fetchone()
        active, away, uncategorized, pulse_weighted = row
        return Summary(active, away, uncategorized, pulse_weighted / active if active > 0 else None)

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
        with self._db:
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
        self.flush()  # a query sees the last event as long as it really is
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


def _event(row: tuple) -> Event:
    event_id, timestamp, duration, *data = row
    return Event(event_id, timestamp, duration, EventData(*data))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
