"""The local event history's writer: what reports are made from, with no InfluxDB needed.

Events (tracker.events) in their own tables of the shared SQLite file (paths.database_file(); the schema is
tracker.storage.history_tables). `HistoryWriter` is the runner's (and `tracker recategorize`'s): it merges records
into events (tracker.events.heartbeat_merge), keeps the rollups in step, prunes by retention, and keeps today's
totals for the live view. Reports read it through tracker.storage.queries.History.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import astuple, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from tracker.events import Event, EventData, heartbeat_merge, pulse_of
from tracker.model import Record, Restamp, moved_span
from tracker.storage.db import list_in_slices, set_lock_wait, transaction, unavailable_as
from tracker.storage.history_tables import (
    COLUMNS,
    DAY_MS,
    QUARTER_HOUR_MS,
    add_to_sums,
    event_of_row,
    round_up,
)
from tracker.storage.queries import History
from tracker.timespec import local_midnight

_PRUNE_EVERY = 24 * 3600.0  # seconds between retention runs while the runner is up
# Seconds an event may grow in memory before its duration is written: one commit a second cost more CPU
# than reading the desktop. A crash loses at most this much of the history (the outbox keeps every sample).
WRITE_EVERY = 10.0

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
        with self._changing_events() as changes:
            self._write_last_duration(changes)
        self._written_duration = self._last.duration
        self._unwritten = False
        self._written_at = time.monotonic()

    def _write_last_duration(self, changes: RollupChanges) -> None:
        """Inside a transaction: the last event's duration, if it grew since it was last written."""
        last = self._last
        if self._unwritten and last is not None:
            self._db.execute("UPDATE events SET duration = ? WHERE id = ?", (last.duration, last.id))
            changes.add(last.data, last.timestamp_ms + self._written_duration * 1000.0, last.end_ms)

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
            # The last event's growth and the new event in one transaction: a change of activity is one commit.
            with self._changing_events() as changes:
                self._write_last_duration(changes)
                cursor = self._db.execute(
                    f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (heartbeat.timestamp_ms, heartbeat.duration, *astuple(heartbeat.data)),
                )
                changes.add(heartbeat.data, heartbeat.timestamp_ms, heartbeat.end_ms)
            self._last = replace(heartbeat, id=cursor.lastrowid)
            self._written_duration = heartbeat.duration
            self._unwritten = False
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
        the rollups kept in step; returns what changed (with `apply` False, what would).

        What moves is found from the file as it is, without its write lock; then it is written a slice per
        transaction (see db.in_slices), so a running `tracker run` never waits for the file more than a moment.
        A slice changes only the events still as they were read (another writer may have changed one meanwhile),
        and a recategorisation stopped part-way is finished by running it again.

        When the last event changes, the rollups are left out of step: a running `tracker run` holds that
        event in memory with its old category and would add its growth to the old category's rollups, so its
        next write rebuilds them instead (reports read the events until then)."""
        self.flush()
        with unavailable_as(f"read the history in {self.path}", path=self.path):
            rows = self._db.execute(
                f"SELECT id, {COLUMNS} FROM events WHERE timestamp >= ? ORDER BY timestamp, id",
                (since_ms if since_ms is not None else -(2**62),)).fetchall()
        moved: list[Moved] = []
        for event in map(event_of_row, rows):
            new = reclassify(event.data)
            if new is not None and (new.category, new.score) != (event.data.category, event.data.score):
                moved.append(Moved(event, new))
        del rows
        if apply and moved:
            list_in_slices(moved, self._move)
            self._reload()
        return moved

    def _move(self, moved: Sequence[Moved]) -> int:
        """One slice of `recategorize`, in one transaction: the events still as they were read get their new
        category and score; returns how many did."""
        with self._writing(), transaction(self._db):
            in_step = self.reports._rollups_in_step()
            ids = [m.event.id for m in moved]
            now = {row[0]: event_of_row(row) for row in self._db.execute(
                f"SELECT id, {COLUMNS} FROM events WHERE id IN ({', '.join('?' * len(ids))})", ids)}
            changes = RollupChanges()
            updates: list[tuple[str, float, int]] = []
            for m in moved:
                event = now.get(m.event.id)  # None: pruned meanwhile
                if event is None or event.data != m.event.data or m.event.id is None:
                    continue
                updates.append((m.now.category, m.now.score, m.event.id))
                changes.add(event.data, event.timestamp_ms, event.end_ms, sign=-1.0)
                changes.add(m.now, event.timestamp_ms, event.end_ms)
            self._db.executemany("UPDATE events SET category = ?, score = ? WHERE id = ?", updates)
            last = self._load_last()
            last_kept = last is None or last.id not in {event_id for _, _, event_id in updates}
            if in_step:
                changes.write(self._db)
                # What a category lost entirely is left as rounding dust: such rows are no category's time.
                self._db.execute("DELETE FROM day_totals WHERE abs(seconds) < 1e-6")
                if last_kept:
                    self._db.execute("INSERT OR IGNORE INTO rollups_in_step VALUES (1)")
            elif last_kept:
                self._rebuild_rollups()
        return len(updates)

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
            f"SELECT id, {COLUMNS} FROM events ORDER BY timestamp DESC, id DESC LIMIT 1"
        ).fetchone()
        return event_of_row(row) if row else None

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
            self._rebuild_rollups(round_up(cutoff, DAY_MS) if in_step else math.inf)
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
    db.executemany(f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(event.timestamp_ms, event.duration, event.data.app, event.data.activity, event.data.category,
                     event.data.score, event.data.title, event.data.url, event.data.state) for event in events])
    if in_step:
        changes = RollupChanges()
        for event in events:
            changes.add(event.data, event.timestamp_ms, event.end_ms)
        changes.write(db)
        db.execute("INSERT OR IGNORE INTO rollups_in_step VALUES (1)")


@dataclass
class RollupChanges:
    """Time to add to the rollups, gathered per row before it is written in one go."""

    days: dict[tuple[int, bool, str, str, str], list[float]] = field(default_factory=dict)
    quarter_hours: dict[int, list[float]] = field(default_factory=dict)

    def add(self, data: EventData, start_ms: float, end_ms: float, sign: float = 1.0) -> None:
        """An event's part from start_ms to end_ms (taken away with `sign` -1)."""
        for day, seconds in _parts(start_ms, end_ms, DAY_MS):
            key = (day, data.active, data.category, data.activity, data.app)
            add_to_sums(self.days, key, sign * seconds, sign * seconds * data.score)
        if data.active:
            for quarter_hour, seconds in _parts(start_ms, end_ms, QUARTER_HOUR_MS):
                add_to_sums(self.quarter_hours, quarter_hour, sign * seconds, sign * seconds * data.score)

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
