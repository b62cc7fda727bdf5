"""Local event history: what reports are made from, with no InfluxDB needed.

Events (tracker.events) in their own table of the shared SQLite file (paths.database_file()). `History`
answers reports and never writes; `HistoryWriter` is the runner's: it merges records into events
(tracker.events.heartbeat_merge), prunes by retention, and keeps today's totals for the live view.
"""

from __future__ import annotations

import math
import sqlite3
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import astuple, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, TypeVar

from tracker.events import Event, EventData, heartbeat_merge, pulse_of
from tracker.model import AWAY, STATE_ACTIVE, UNCATEGORIZED, Record, Restamp, moved_span
from tracker.storage.db import open_database, set_lock_wait, transaction, unavailable_as
from tracker.timespec import local_day_starts, local_hour_starts, local_midnight

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

-- Rollups, so that a report over months reads a few thousand rows instead of every event. Keyed by UTC, so a
-- change of the machine's timezone or DST never invalidates them; only partial days or quarter hours at a
-- period's ends are read from the events.
CREATE TABLE IF NOT EXISTS day_totals (
    day INTEGER NOT NULL,    -- start of the UTC day, ms since the epoch
    active INTEGER NOT NULL, -- 1 for time that counts in reports (see _ACTIVE), 0 for away time
    category TEXT NOT NULL,
    activity TEXT NOT NULL,
    app TEXT NOT NULL,
    seconds REAL NOT NULL,
    weighted_score REAL NOT NULL,  -- sum of seconds × score
    PRIMARY KEY (day, active, category, activity, app)
) WITHOUT ROWID;
-- Active time per UTC quarter hour: every timezone's local hours and midnights fall on one.
CREATE TABLE IF NOT EXISTS quarter_hour_totals (
    quarter_hour INTEGER PRIMARY KEY,  -- its start, ms since the epoch
    seconds REAL NOT NULL,
    weighted_score REAL NOT NULL
);
-- One row while the rollups agree with the events. Any change of the events deletes it (so a writer that does
-- not know the rollups, e.g. an older version, makes reports read the events); HistoryWriter puts it back in
-- the same transaction as it updates the rollups, or rebuilds them.
CREATE TABLE IF NOT EXISTS rollups_in_step (in_step INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS events_insert_outdates_rollups AFTER INSERT ON events
    BEGIN DELETE FROM rollups_in_step; END;
CREATE TRIGGER IF NOT EXISTS events_update_outdates_rollups AFTER UPDATE ON events
    BEGIN DELETE FROM rollups_in_step; END;
CREATE TRIGGER IF NOT EXISTS events_delete_outdates_rollups AFTER DELETE ON events
    BEGIN DELETE FROM rollups_in_step; END;
"""
DAY_MS = 86_400_000
QUARTER_HOUR_MS = 900_000

# Time that counts in reports: active and not away. Away time is reported on its own.
_ACTIVE = f"state = '{STATE_ACTIVE}' AND category != '{AWAY}'"
# Each event's part inside [:since, :until), in seconds.
_CLIPPED = "(MIN(timestamp + duration * 1000.0, :until) - MAX(timestamp, :since)) / 1000.0"
_COLUMNS = "timestamp, duration, app, activity, category, score, title, url, state"
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
                _add(sums, name, group.seconds, group.weighted_score)
                apps[name] = max(apps.get(name, group.app), group.app)
        totals = [Total(name, seconds, weighted / seconds, apps[name] if by == "activity" else None)
                  for name, (seconds, weighted) in sums.items() if seconds > 0]
        return sorted(totals, key=lambda total: (-total.seconds, total.name))


# What an event's data becomes under today's categories; None: it stays as it is.
Reclassify = Callable[[EventData], EventData | None]


class Moved(NamedTuple):
    """An event given another category or score."""

    event: Event
    now: EventData


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
        with unavailable_as(f"open the history in {path}", path=path):
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
            self._period(_ms(since), _ms(until)),
        )
        return [_event(row) for row in rows]

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
        since_ms, until_ms = _ms(since), _ms(until)
        first_day, end_day = _round_up(since_ms, DAY_MS), until_ms // DAY_MS * DAY_MS
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
        since_ms, until_ms = _ms(since), _ms(until)
        first_quarter = _round_up(since_ms, QUARTER_HOUR_MS)
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
                    _add(sums, pieces[bisect_right(starts, quarter_hour) - 1][2], seconds, weighted)
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
            _add(sums, label, seconds, weighted)

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
        self._last: Event | None = None
        self._written_duration = 0.0
        self._today: _TodayTotals | None = None
        self._reload()
        self._next_prune = 0.0
        self._bring_rollups_in_step()
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
        last = self._last
        with self._changing_events() as changes:
            self._db.execute("UPDATE events SET duration = ? WHERE id = ?", (last.duration, last.id))
            changes.add(last.data, last.timestamp_ms + self._written_duration * 1000.0, last.end_ms)
        self._written_duration = last.duration
        self._unwritten = False
        self._written_at = time.monotonic()

    def add(self, record: Record) -> None:
        """Record one final sample: it extends the last event or starts a new one (heartbeat_merge). A negative
        (or not finite) duration counts as none: stored, it would subtract from every total it falls in."""
        if not (math.isfinite(record.duration) and record.duration >= 0):
            record = replace(record, duration=0.0)
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
            with self._changing_events() as changes:
                cursor = self._db.execute(
                    f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (heartbeat.timestamp_ms, heartbeat.duration, *astuple(heartbeat.data)),
                )
                changes.add(heartbeat.data, heartbeat.timestamp_ms, heartbeat.end_ms)
            self._last = replace(heartbeat, id=cursor.lastrowid)
            self._written_duration = heartbeat.duration
            self._written_at = time.monotonic()
            covered = heartbeat.duration
        self._count_today(heartbeat.timestamp_ms, heartbeat.data, covered)
        self._prune_if_due()

    def restamp(self, restamps: Sequence[Restamp]) -> None:
        """Move the events in the ranges (the clock was set back): each starts where the range it starts in
        moves it and ends where its last record moved (see `moved_span`); the rollups are rebuilt, as the time
        moves between quarter hours and days."""
        if not restamps:
            return
        self.flush()
        first_ms = min(restamp.first_ms for restamp in restamps)
        last_ms = max(restamp.last_ms for restamp in restamps)
        slack_ms = int(2 * self.pulsetime * 1000)  # a record stands for two intervals at most
        with self._writing(), transaction(self._db):
            touched = self._db.execute(
                "SELECT id, timestamp, duration FROM events WHERE timestamp <= ? AND timestamp + duration * 1000 > ?",
                (last_ms, first_ms)).fetchall()
            moves = []
            for event_id, start_ms, duration in touched:
                start, end = moved_span(start_ms, start_ms + round(duration * 1000), restamps, slack_ms)
                if (start, end) != (start_ms, start_ms + round(duration * 1000)):
                    moves.append((start, (end - start) / 1000, event_id))
            self._db.executemany("UPDATE events SET timestamp = ?, duration = ? WHERE id = ?", moves)
            self._rebuild_rollups()
        self._reload()

    def recategorize(self, since_ms: int | None, reclassify: Reclassify, apply: bool = True) -> list[Moved]:
        """Give the events starting at or after `since_ms` (None: all) the category and score `reclassify` says,
        in one transaction, the rollups kept in step; returns what changed (with `apply` False, what would).

        When the last event changes, the rollups are left out of step: a running `tracker run` holds that
        event in memory with its old category and would add its growth to the old category's rollups, so its
        next write rebuilds them instead (reports read the events until then)."""
        self.flush()
        with self._writing(), transaction(self._db):
            rows = self._db.execute(
                f"SELECT id, {_COLUMNS} FROM events WHERE timestamp >= ? ORDER BY timestamp, id",
                (since_ms if since_ms is not None else -(2**62),)).fetchall()
            moved: list[Moved] = []
            for event in map(_event, rows):
                new = reclassify(event.data)
                if new is not None and (new.category, new.score) != (event.data.category, event.data.score):
                    moved.append(Moved(event, new))
            if not apply or not moved:
                return moved
            in_step = self.reports._rollups_in_step()
            self._db.executemany("UPDATE events SET category = ?, score = ? WHERE id = ?",
                                 [(m.now.category, m.now.score, m.event.id) for m in moved])
            last = self._load_last()
            last_kept = last is None or last.id not in {m.event.id for m in moved}  # the running event unchanged
            if in_step:
                changes = RollupChanges()
                for m in moved:
                    changes.add(m.event.data, m.event.timestamp_ms, m.event.end_ms, sign=-1.0)
                    changes.add(m.now, m.event.timestamp_ms, m.event.end_ms)
                changes.write(self._db)
                # What a category lost entirely is left as rounding dust: such rows are no category's time.
                self._db.execute("DELETE FROM day_totals WHERE abs(seconds) < 1e-6")
                if last_kept:
                    self._db.execute("INSERT INTO rollups_in_step VALUES (1)")
            elif last_kept:
                self._rebuild_rollups()
        self._reload()
        return moved

    def set_lock_wait(self, seconds: float) -> None:
        """How long a write waits for another process's lock from now on (see db.set_lock_wait)."""
        with self._writing():
            set_lock_wait(self._db, seconds)

    def last_end_ms(self) -> int | None:
        """Where the last event ends: a new run's records start after it."""
        return math.ceil(self._last.end_ms) if self._last is not None else None

    def _writing(self) -> AbstractContextManager[None]:
        """StoreUnavailable, saying why in plain words, when the history cannot be written (disk full...)."""
        return unavailable_as(f"write to the history in {self.path}", path=self.path)

    @contextmanager
    def _changing_events(self) -> Iterator[RollupChanges]:
        """A write transaction on the events that keeps the rollups in step: the block adds the time it
        wrote to the changes. Rollups that were out of step before (another writer) are rebuilt instead."""
        with self._writing(), transaction(self._db):
            in_step = self.reports._rollups_in_step()
            changes = RollupChanges()
            yield changes
            if in_step:
                changes.write(self._db)
                self._db.execute("INSERT INTO rollups_in_step VALUES (1)")
            else:
                self._rebuild_rollups()

    def _bring_rollups_in_step(self) -> None:
        """Rebuild the rollups if the events changed without them: a history from before they existed, or
        written by an older version."""
        if self.reports._rollups_in_step():
            return
        with self._writing(), transaction(self._db):
            if not self.reports._rollups_in_step():
                self._rebuild_rollups()

    def _rebuild_rollups(self, before_ms: float = math.inf) -> None:
        """Recompute the rollups from the events, all of them or only before `before_ms` (a UTC midnight),
        within the caller's transaction."""
        limit = {"before": before_ms}
        self._db.execute("DELETE FROM day_totals WHERE day < :before", limit)
        self._db.execute("DELETE FROM quarter_hour_totals WHERE quarter_hour < :before", limit)
        changes = RollupChanges()
        rows = self._db.execute(
            "SELECT timestamp, duration, app, activity, category, score, state FROM events WHERE timestamp < :before",
            limit,
        )
        for timestamp, duration, app, activity, category, score, state in rows:
            data = EventData(app, activity, category, score, None, None, state)
            changes.add(data, timestamp, min(timestamp + duration * 1000.0, before_ms))
        changes.write(self._db)
        self._db.execute("INSERT OR IGNORE INTO rollups_in_step VALUES (1)")

    def _reload(self) -> None:
        """The last event as the file has it, and today's totals read again when next asked: after a change
        to events already written (restamp, recategorize), or at the start."""
        self._last = self._load_last()
        self._written_duration = self._last.duration if self._last is not None else 0.0
        self._today = None

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
            in_step = self.reports._rollups_in_step()
            self._db.execute(
                "DELETE FROM events WHERE timestamp < :cutoff AND timestamp + duration * 1000.0 < :cutoff",
                {"cutoff": cutoff},
            )
            # Only days up to the cutoff's lost events: the rollups of later days still hold.
            self._rebuild_rollups(_round_up(cutoff, DAY_MS) if in_step else math.inf)
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


def covered_periods(db: sqlite3.Connection, since_ms: int, until_ms: int) -> list[tuple[float, float]]:
    """(start, end) in ms of every event overlapping [since_ms, until_ms), in time order: the time the history
    already holds there."""
    longest = db.execute("SELECT MAX(duration) FROM events").fetchone()[0] or 0.0
    return db.execute(
        "SELECT timestamp, timestamp + duration * 1000.0 FROM events WHERE timestamp >= :earliest"
        " AND timestamp < :until AND timestamp + duration * 1000.0 > :since ORDER BY timestamp",
        {"since": since_ms, "until": until_ms, "earliest": since_ms - longest * 1000.0}).fetchall()


def insert_events(db: sqlite3.Connection, events: Sequence[Event]) -> None:
    """Add whole events (imported from elsewhere) within the caller's transaction on the history's file,
    keeping the rollups in step when they were (otherwise the next HistoryWriter rebuilds them)."""
    in_step = db.execute("SELECT 1 FROM rollups_in_step").fetchone() is not None
    db.executemany(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(event.timestamp_ms, event.duration, event.data.app, event.data.activity, event.data.category,
                     event.data.score, event.data.title, event.data.url, event.data.state) for event in events])
    if in_step:
        changes = RollupChanges()
        for event in events:
            changes.add(event.data, event.timestamp_ms, event.end_ms)
        changes.write(db)
        db.execute("INSERT OR IGNORE INTO rollups_in_step VALUES (1)")


def _event(row: tuple) -> Event:
    event_id, timestamp, duration, *data = row
    return Event(timestamp, duration, EventData(*data), event_id)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class RollupChanges:
    """Time to add to the rollups, gathered per row before it is written in one go."""

    days: dict[tuple[int, bool, str, str, str], list[float]] = field(default_factory=dict)
    quarter_hours: dict[int, list[float]] = field(default_factory=dict)

    def add(self, data: EventData, start_ms: float, end_ms: float, sign: float = 1.0) -> None:
        """An event's part from start_ms to end_ms (taken away with `sign` -1)."""
        for day, seconds in _parts(start_ms, end_ms, DAY_MS):
            key = (day, data.active, data.category, data.activity, data.app)
            _add(self.days, key, sign * seconds, sign * seconds * data.score)
        if data.active:
            for quarter_hour, seconds in _parts(start_ms, end_ms, QUARTER_HOUR_MS):
                _add(self.quarter_hours, quarter_hour, sign * seconds, sign * seconds * data.score)

    def write(self, db: sqlite3.Connection) -> None:
        add_to_existing = ("seconds = seconds + excluded.seconds, "
                           "weighted_score = weighted_score + excluded.weighted_score")
        db.executemany(
            f"""INSERT INTO day_totals VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (day, active, category, activity, app) DO UPDATE SET {add_to_existing}""",
            [(*key, seconds, weighted) for key, (seconds, weighted) in self.days.items()],
        )
        db.executemany(
            f"""INSERT INTO quarter_hour_totals VALUES (?, ?, ?)
                ON CONFLICT (quarter_hour) DO UPDATE SET {add_to_existing}""",
            [(key, seconds, weighted) for key, (seconds, weighted) in self.quarter_hours.items()],
        )


def _parts(start_ms: float, end_ms: float, size_ms: int) -> Iterator[tuple[int, float]]:
    """(start, seconds inside) of each UTC bucket of `size_ms` that [start_ms, end_ms) overlaps."""
    bucket = int(start_ms // size_ms) * size_ms
    while bucket < end_ms:
        yield bucket, (min(end_ms, bucket + size_ms) - max(start_ms, bucket)) / 1000.0
        bucket += size_ms


_Key = TypeVar("_Key")


def _add(sums: dict[_Key, list[float]], key: _Key, seconds: float, weighted_score: float) -> None:
    """Add to the [seconds, weighted score] of `key`."""
    totals = sums.get(key)
    if totals is None:
        sums[key] = [seconds, weighted_score]
    else:
        totals[0] += seconds
        totals[1] += weighted_score


def _round_up(moment_ms: float, size_ms: int) -> int:
    return int(-(-moment_ms // size_ms) * size_ms)


def _local_pieces(since: datetime, until: datetime, by: str) -> list[Piece]:
    """[since, until) cut at each local hour or midnight, each piece labelled with its hour or day."""
    since_ms, until_ms = _ms(since), _ms(until)
    starts = local_day_starts(since, until)
    if by == "hour":
        labelled_cuts = _local_hour_starts(starts)
    else:
        labelled_cuts = [(_ms(start), start.date().isoformat()) for start in starts]
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
        start_ms = _ms(start)
        if _ms(next_start) - start_ms == DAY_MS and start.utcoffset() == next_start.utcoffset():
            # No clock change that day: its hours follow from its midnight (asking the zone for each of a
            # year's 8,760 hours took longer than the rest of the report).
            hour_starts.update((start_ms + hour * 3_600_000, f"{hour:02d}") for hour in range(24))
        else:
            hour_starts.update((_ms(moment), f"{hour:02d}") for moment, hour in local_hour_starts(start))
    return sorted(hour_starts.items())


def _clip_pieces(pieces: Iterable[Piece], start_ms: int, end_ms: int) -> list[Piece]:
    """The pieces' parts within [start_ms, end_ms)."""
    return [(max(start, start_ms), min(end, end_ms), label) for start, end, label in pieces
            if start < end_ms and end > start_ms]
