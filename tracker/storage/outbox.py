"""The outbox: every record, and every point of the tracker's own vitals, is committed to a local SQLite file
before anything tries to send it.

Rows leave the queue only when the server confirmed them (`mark_sent`), when the server will never
accept them as they are (`quarantine`: kept aside with the reason for the user to see, until
`retry_quarantined` puts them back), or when the size bound is hit: quarantined rows count against it too,
and the oldest quarantined rows are dropped first, then the oldest waiting ones, all counted. WAL mode lets
`tracker outbox` and `tracker sync` read and send while `tracker run` appends.

Points of another measurement than `activity` (the `tracker` vitals) are rows too, so the sender drains
one queue in one order and a down server loses none of them: their `line` is the whole truth, `measurement`
says they are not samples, and their record columns are placeholders that nothing reads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

from tracker.lineprotocol import to_line
from tracker.model import AWAY, STATE_AWAY, Record, Restamp
from tracker.storage.db import (
    StoreUnavailable,
    list_in_slices,
    open_database,
    set_lock_wait,
    transaction,
    unavailable_as,
)
from tracker.storage.pending_corrections import (
    NO_CLOCK_FIX_WAITS,
    PendingCorrections,
    note_clock_fixes,
    waiting_counts,
)
from tracker.storage.pending_corrections import SCHEMA as CORRECTIONS_SCHEMA

# Shown in `tracker outbox`; the rest are counted only.
QUARANTINE_SHOWN = 100
# Each statement is safe to run again: the file may be new, or shared with the event history.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,
        duration REAL NOT NULL,
        host TEXT NOT NULL,
        app TEXT NOT NULL,
        activity TEXT NOT NULL,
        category TEXT NOT NULL,
        score REAL NOT NULL,
        state TEXT NOT NULL,
        title TEXT,
        url TEXT,
        -- NULL while waiting to be sent; the server's reason once it refused the row for good.
        quarantined TEXT,
        quarantined_ms INTEGER,
        -- 0 while the runner may still rewrite the row as away time; only final rows are sent.
        final INTEGER NOT NULL DEFAULT 1,
        -- The row as line protocol, encoded once when committed; NULL once rewritten (encoded when sent).
        line TEXT,
        -- 'activity' for samples; another measurement's row (the tracker's vitals) is its line alone.
        measurement TEXT NOT NULL DEFAULT 'activity'
    )""",
    # One row of counters kept by triggers, so the size bound costs no COUNT(*) over a month of rows.
    """CREATE TABLE IF NOT EXISTS outbox_counters (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        waiting INTEGER NOT NULL,
        dropped INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO outbox_counters VALUES (1, 0, 0)",
    """CREATE TRIGGER IF NOT EXISTS outbox_insert AFTER INSERT ON outbox WHEN NEW.quarantined IS NULL
    BEGIN UPDATE outbox_counters SET waiting = waiting + 1; END""",
    # Deleting waiting rows counts them in the same statement's transaction (`_forget`): a trigger per row
    # cost a tenth of what sending a large backlog costs.
    "DROP TRIGGER IF EXISTS outbox_delete",
    """CREATE TRIGGER IF NOT EXISTS outbox_quarantine AFTER UPDATE OF quarantined ON outbox
    WHEN OLD.quarantined IS NULL AND NEW.quarantined IS NOT NULL
    BEGIN UPDATE outbox_counters SET waiting = waiting - 1; END""",
    """CREATE TABLE IF NOT EXISTS outbox_sends (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        attempt_ms INTEGER,
        result TEXT,
        success_ms INTEGER
    )""",
    "INSERT OR IGNORE INTO outbox_sends VALUES (1, NULL, NULL, NULL)",
    # Samples the runner lost because the file could not be written for longer than it could keep them in memory.
    """CREATE TABLE IF NOT EXISTS outbox_lost (
        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
        samples INTEGER NOT NULL,
        seconds REAL NOT NULL
    )""",
    "INSERT OR IGNORE INTO outbox_lost VALUES (1, 0, 0.0)",
    # The few rows not final yet, by time: settling them costs nothing however many rows wait.
    "CREATE INDEX IF NOT EXISTS outbox_provisional ON outbox (time_ms) WHERE final = 0",
    # Rows waiting to be sent, in order: the sender's query skips the provisional and quarantined ones.
    "CREATE INDEX IF NOT EXISTS outbox_sendable ON outbox (id) WHERE final = 1 AND quarantined IS NULL",
    "DROP INDEX IF EXISTS outbox_time",  # an earlier version's, replaced by the two above
    # The few rows that are not samples: `tracker outbox` counts them apart without reading every row.
    "CREATE INDEX IF NOT EXISTS outbox_not_samples ON outbox (id) WHERE measurement != 'activity'",
    # The few quarantined rows, oldest first: counted against the size bound, and dropped first.
    "CREATE INDEX IF NOT EXISTS outbox_quarantined ON outbox (id) WHERE quarantined IS NOT NULL",
)
# Columns an outbox written by an earlier version lacks: its rows were all final, and their lines are encoded when
# the column is added.
_ADDED_COLUMNS = {"final": "final INTEGER NOT NULL DEFAULT 1", "line": "line TEXT",
                  "measurement": "measurement TEXT NOT NULL DEFAULT 'activity'"}
_FIELDS = "time_ms, duration, host, app, activity, category, score, state, title, url"
_COLUMNS = "id, " + _FIELDS
# The fields where a row has no line, else NULLs (which SQLite then never reads from the row).
_FIELDS_WITHOUT_LINE = ", ".join(f"CASE WHEN line IS NULL THEN {name} END" for name in _FIELDS.split(", "))
_COMMIT_BATCH = 10_000  # records of an import added per statement
_INSERT = f"INSERT INTO outbox ({_FIELDS}, final, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# A point of another measurement: its line, and placeholders where a sample has its fields.
_INSERT_POINT = (f"INSERT INTO outbox ({_FIELDS}, final, line, measurement)"
                 " VALUES (?, 0.0, ?, '', '', '', 0.0, '', NULL, NULL, 1, ?, ?)")
_SAMPLES_ONLY = "measurement = 'activity'"


class OutboxUnavailable(StoreUnavailable):
    """The outbox cannot be written (disk full, read-only, I/O error); `str()` says which, plainly."""


class OutboxFull(Exception):
    """More rows to add at once than the outbox's size bound leaves room for."""

    def __init__(self, adding: int, room: int) -> None:
        super().__init__(f"{adding} rows do not fit in the room for {room}")
        self.adding = adding
        self.room = room


@dataclass(frozen=True)
class QuarantinedRow:
    id: int
    record: Record
    reason: str
    quarantined_at: datetime


@dataclass(frozen=True)
class Point:
    """A point of another measurement than `activity`, already line protocol (e.g. the tracker's vitals)."""

    measurement: str
    time_ms: int
    host: str
    line: str


@dataclass(frozen=True)
class OutboxStats:
    waiting: int  # samples and other points
    oldest_waiting: datetime | None
    last_attempt: datetime | None  # the last time a batch was sent or tried
    last_result: str | None  # what that attempt came to, one plain line
    last_success: datetime | None
    dropped: int  # rows dropped because the size bound was reached: the oldest quarantined, then the oldest waiting
    quarantined_count: int
    quarantined: tuple[QuarantinedRow, ...]  # the oldest QUARANTINE_SHOWN of them
    # Points that are not samples (the tracker's vitals): counted apart, never shown as samples.
    waiting_other: int = 0
    quarantined_other: int = 0
    # Samples lost, and the seconds they stood for, while the file could not be written for too long.
    lost: int = 0
    lost_seconds: float = 0.0
    # Corrections of points already in InfluxDB that wait for it: moves after the clock was set back, and
    # recategorisations `tracker recategorize` could not make.
    clock_fixes: int = 0
    recategorizations: int = 0

    @property
    def waiting_samples(self) -> int:
        return self.waiting - self.waiting_other


class Outbox:
    """The local queue of records not yet confirmed by InfluxDB. Safe to share between threads."""

    def __init__(self, path: Path, max_rows: int = 30 * 24 * 3600, durable: bool = True) -> None:
        self.path = path
        self.max_rows = max_rows
        self._lock = threading.Lock()
        with self._unavailable_as("open"):
            # FULL: a committed sample survives a power cut too, at one fsync per second. The sender's
            # bookkeeping needs no fsync of its own: after a power cut a row may go out again, and InfluxDB
            # overwrites a point of the same series and time, so nothing is doubled.
            self._connection = open_database(path, "FULL" if durable else "NORMAL", threads=True)
            try:
                with self._transaction():
                    self._connection.execute(_SCHEMA[0])
                    columns = {row[1] for row in self._connection.execute("PRAGMA table_info(outbox)")}
                    for column, definition in _ADDED_COLUMNS.items():
                        if column not in columns:
                            self._connection.execute(f"ALTER TABLE outbox ADD COLUMN {definition}")
                    for statement in (*_SCHEMA[1:], *CORRECTIONS_SCHEMA):
                        self._connection.execute(statement)
                    if "line" not in columns:  # once: then the sender sends every row as it is kept
                        self._encode_lines(_SAMPLES_ONLY, ())
                    # Only this process adds rows; others (the sender, `tracker sync`, `tracker outbox`) only take
                    # them away or move them between waiting and quarantined, so this count plus what was appended
                    # since is an upper bound of the rows kept, read again only past max_rows.
                    self._kept_at_most = self._kept()
            except BaseException:
                self._connection.close()
                raise
        # The corrections of InfluxDB that wait for it: their own tables, on this connection (see restamp).
        self.corrections = PendingCorrections(self._connection, self._lock, self._unavailable_as)

    # -- the recording side ---------------------------------------------------------------------

    def append(self, record: Record) -> int:
        """Keep one final record; it is on disk when this returns. Returns how many old rows the bound dropped."""
        return self.append_many((record,))

    def append_many(self, records: Iterable[Record]) -> int:
        """Keep final records, in one transaction; returns how many old rows the bound dropped."""
        return self.commit(records)

    def commit(self, records: Iterable[Record], final_until_ms: int | None = None,
               away_since_ms: int | None = None) -> int:
        """The runner's step, in one transaction: rows not final yet after `away_since_ms` become away, the
        `records` are added, and rows up to `final_until_ms` become final (None: the records are final).

        Only final rows are ever sent, so no active version of a row that turns out away leaves the machine.
        Returns how many old rows the size bound dropped.
        """
        rows = [_row(r, final_until_ms is None or r.time_ms <= final_until_ms) for r in records]
        with self._unavailable_as("write to"), self._lock:
            with self._transaction():
                if away_since_ms is not None:
                    self._connection.execute(
                        "UPDATE outbox SET category = ?, score = 0.0, state = ?, line = NULL"
                        " WHERE final = 0 AND time_ms > ?",
                        (AWAY, STATE_AWAY, away_since_ms))
                    self._encode_lines("final = 0 AND time_ms > ?", (away_since_ms,))
                self._connection.executemany(_INSERT, rows)
                if final_until_ms is not None:
                    self._connection.execute("UPDATE outbox SET final = 1 WHERE final = 0 AND time_ms <= ?",
                                             (final_until_ms,))
            return self._added(len(rows))

    def commit_with(self, write: Callable[[sqlite3.Connection], Iterable[Record]]) -> int:
        """One transaction for another part of the shared file and the records it gives: `write(connection)`
        writes its part (an import's history events) and gives final records, which are added with it as they
        come (a large import is never all in memory), or nothing is kept. OutboxFull, before anything is kept,
        when they do not fit in the size bound (an import must not push out samples that wait); it counts them
        all first, to say how many there are. Returns how many records were added."""
        with self._unavailable_as("write to"), self._lock:
            with self._transaction():
                room = self.max_rows - self._kept()
                records = iter(write(self._connection))
                added = 0
                while batch := list(islice(records, _COMMIT_BATCH)):
                    if added + len(batch) <= room:
                        self._connection.executemany(_INSERT, (_row(r, True) for r in batch))
                    added += len(batch)
                if added > room:
                    raise OutboxFull(added, room)
            self._added(added)
        return added

    def room(self) -> int:
        """Rows that may be added before the size bound pushes out the oldest."""
        with self._unavailable_as("read"), self._lock:
            return max(0, self.max_rows - self._kept())

    def append_points(self, points: Iterable[Point]) -> int:
        """Keep points of another measurement, final, in one transaction, in the queue with the samples: the
        sender sends them in the same order. Returns how many old rows the size bound dropped."""
        rows = [(p.time_ms, p.host, p.line, p.measurement) for p in points]
        with self._unavailable_as("write to"), self._lock:
            with self._transaction():
                self._connection.executemany(_INSERT_POINT, rows)
            return self._added(len(rows))

    def _added(self, count: int) -> int:
        """After `count` rows were added (the lock held): enforce the size bound when it may be reached."""
        self._kept_at_most += count
        if self._kept_at_most <= self.max_rows:
            return 0
        with self._transaction():
            return self._enforce_bound()

    def _kept(self) -> int:
        """Rows kept: waiting (a counter) and quarantined (counted on their own small index)."""
        waiting = self._connection.execute("SELECT waiting FROM outbox_counters").fetchone()[0]
        return waiting + self._connection.execute(
            "SELECT COUNT(*) FROM outbox WHERE quarantined IS NOT NULL").fetchone()[0]

    def _enforce_bound(self) -> int:
        kept = self._kept()
        excess = kept - self.max_rows
        self._kept_at_most = min(kept, self.max_rows)
        if excess <= 0:
            return 0
        # Quarantined rows go first: the server refused them, and they are sent only if the user asks again.
        quarantined = self._connection.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE quarantined IS NOT NULL ORDER BY id"
            " LIMIT ?)", (excess,)).rowcount
        if excess > quarantined:
            self._forget("id IN (SELECT id FROM outbox WHERE quarantined IS NULL ORDER BY id LIMIT ?)",
                         (excess - quarantined,))
        self._connection.execute("UPDATE outbox_counters SET dropped = dropped + ?", (excess,))
        return excess

    def count_lost(self, count: int, seconds: float) -> None:
        """Add to the samples lost before they could be written (kept for `tracker outbox`)."""
        with self._unavailable_as("write to"), self._lock, self._transaction():
            self._connection.execute("UPDATE outbox_lost SET samples = samples + ?, seconds = seconds + ?",
                                     (count, seconds))

    def restamp(self, restamps: Sequence[Restamp], host: str) -> None:
        """Move the samples in each range by its shift (the clock was set back), and note the same move for the
        points of `host` already sent (a ClockFix each), in one transaction."""
        with self._unavailable_as("write to"), self._lock, self._transaction():
            for restamp in restamps:  # oldest range first: a moved row lands below every later range
                self._connection.execute(
                    f"UPDATE outbox SET time_ms = time_ms + ?, line = NULL WHERE {_SAMPLES_ONLY}"
                    " AND time_ms BETWEEN ? AND ?", (restamp.shift_ms, restamp.first_ms, restamp.last_ms))
            self._encode_lines(_SAMPLES_ONLY, ())
            note_clock_fixes(self._connection, host, restamps)

    def _encode_lines(self, condition: str, parameters: Sequence[object]) -> None:
        """Encode again, within the caller's transaction, the lines of the samples matching `condition` that
        lost theirs: the sender then sends them as they are, rather than encoding them in its way."""
        rows = self._connection.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE line IS NULL AND {condition}", parameters).fetchall()
        self._connection.executemany("UPDATE outbox SET line = ? WHERE id = ?",
                                     [(to_line(_record(row)), row[0]) for row in rows])

    def recategorize(self, since_ms: int | None, reclassify: Callable[[Record], Record | None]) -> int:
        """Give the samples waiting (or quarantined) from `since_ms` on (None: all) the category and score
        `reclassify` says, their line encoded again; returns how many rows changed. Found without the file's
        write lock, then written a slice per transaction (see db.in_slices); a row sent or changed meanwhile is
        left as it is (what was sent, `tracker recategorize` corrects in InfluxDB next)."""
        with self._unavailable_as("read"), self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS}, line FROM outbox WHERE {_SAMPLES_ONLY} AND time_ms >= ?",
                (since_ms if since_ms is not None else -(2**62),)).fetchall()
        changed = []
        for row in rows:
            record = _record(row)
            new = reclassify(record)
            if new is not None and (new.category, new.score) != (record.category, record.score):
                changed.append((row[0], new.category, new.score, to_line(new), row[-1]))
        del rows

        def write(batch: Sequence[tuple[int, str, float, str, str | None]]) -> int:
            with self._unavailable_as("write to"), self._lock, self._transaction():
                return self._connection.executemany(
                    "UPDATE outbox SET category = ?, score = ?, line = ? WHERE id = ? AND line IS ?",
                    [(category, score, line, row_id, old_line) for row_id, category, score, line, old_line in batch]
                ).rowcount

        return list_in_slices(changed, write)

    def make_final(self) -> int:
        """Every row is final as it stands: at a clean stop, or for what a run that died left behind.
        Returns how many rows were not final."""
        with self._unavailable_as("write to"), self._lock, self._transaction():
            return self._connection.execute("UPDATE outbox SET final = 1 WHERE final = 0").rowcount

    # -- the sending side -----------------------------------------------------------------------

    def pending(self, limit: int) -> list[tuple[int, Record]]:
        """Up to `limit` final samples waiting to be sent, oldest first, with their ids (other points left out)."""
        with self._unavailable_as("read"), self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE final = 1 AND quarantined IS NULL AND {_SAMPLES_ONLY}"
                " ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [(row[0], _record(row)) for row in rows]

    def pending_lines(self, limit: int, after_id: int = 0) -> list[tuple[int, str]]:
        """`pending` as line protocol, for sending: the lines encoded when the rows were committed; only rows
        after `after_id` (those up to it are on their way already).

        None while a clock fix waits: a row sent before the points sent with the clock ahead have moved could
        be taken for one of them (its time falls in their range) and moved, or deleted, with them. One read
        transaction, so a fix committed meanwhile is either seen or not yet made."""
        with self._unavailable_as("read"), self._lock, self._transaction(immediate=False):
            # The fields come along only for rows without a line (rewritten as away, or from before lines were
            # kept): one query, rather than a second one for those, and no fields read for the others.
            rows = self._connection.execute(
                f"SELECT id, {_FIELDS_WITHOUT_LINE}, line FROM outbox WHERE final = 1 AND quarantined IS NULL"
                f" AND id > ? AND {NO_CLOCK_FIX_WAITS} ORDER BY id LIMIT ?",
                (after_id, limit)).fetchall()
        return [(row[0], row[-1] if row[-1] is not None else to_line(_record(row))) for row in rows]

    def mark_sent(self, ids: Sequence[int]) -> None:
        """The server confirmed these rows: forget them."""
        with self._unavailable_as("write to"), self._lock, self._transaction():
            for chunk in _chunks(ids):
                self._forget(f"id IN ({','.join('?' * len(chunk))})", chunk)

    def _forget(self, condition: str, parameters: Sequence[object]) -> None:
        """Delete the waiting rows matching `condition`, and count them off, inside the caller's transaction."""
        deleted = self._connection.execute(
            f"DELETE FROM outbox WHERE quarantined IS NULL AND {condition}", parameters).rowcount
        self._connection.execute("UPDATE outbox_counters SET waiting = waiting - ?", (deleted,))

    def quarantine(self, ids: Sequence[int], reason: str) -> None:
        """The server will never accept these rows as they are: keep them aside, with its reason."""
        now = _now_ms()
        with self._unavailable_as("write to"), self._lock, self._transaction():
            for chunk in _chunks(ids):
                self._connection.execute(
                    f"UPDATE outbox SET quarantined = ?, quarantined_ms = ? WHERE quarantined IS NULL"
                    f" AND id IN ({','.join('?' * len(chunk))})", (reason, now, *chunk))

    def retry_quarantined(self) -> tuple[int, int]:
        """Put every quarantined row back in the queue, to be sent again; returns how many samples, and how
        many other points."""
        with self._unavailable_as("write to"), self._lock, self._transaction():
            released, others = self._connection.execute(
                f"SELECT COUNT(*), COUNT(*) FILTER (WHERE NOT {_SAMPLES_ONLY}) FROM outbox"
                " WHERE quarantined IS NOT NULL").fetchone()
            self._connection.execute(
                "UPDATE outbox SET quarantined = NULL, quarantined_ms = NULL WHERE quarantined IS NOT NULL")
            self._connection.execute("UPDATE outbox_counters SET waiting = waiting + ?", (released,))
        return released - others, others

    def note_send(self, result: str, success: bool) -> None:
        """Remember the last send attempt and what it came to, for `tracker outbox`."""
        now = _now_ms()
        with self._unavailable_as("write to"), self._lock, self._transaction():
            self._connection.execute(
                "UPDATE outbox_sends SET attempt_ms = ?, result = ?,"
                " success_ms = CASE WHEN ? THEN ? ELSE success_ms END", (now, result, success, now))

    def set_lock_wait(self, seconds: float) -> None:
        """How long a write waits for another process's lock from now on (see db.set_lock_wait)."""
        with self._unavailable_as("write to"), self._lock:
            set_lock_wait(self._connection, seconds)

    def waiting(self) -> int:
        with self._unavailable_as("read"), self._lock:
            return self._connection.execute("SELECT waiting FROM outbox_counters").fetchone()[0]

    def waiting_other(self) -> int:
        """Points waiting that are not samples (the tracker's vitals), counted on their own small index."""
        with self._unavailable_as("read"), self._lock:
            return self._connection.execute(
                "SELECT COUNT(*) FROM outbox WHERE measurement != 'activity' AND quarantined IS NULL").fetchone()[0]

    def oldest_waiting_ms(self) -> int | None:
        """The time (ms) of the oldest row waiting to be sent, final or not; two index lookups, so cheap enough
        to ask every few seconds however many rows wait."""
        with self._unavailable_as("read"), self._lock:
            sendable = self._connection.execute(
                "SELECT time_ms FROM outbox WHERE final = 1 AND quarantined IS NULL ORDER BY id LIMIT 1").fetchone()
            provisional = self._connection.execute(
                "SELECT min(time_ms) FROM outbox WHERE final = 0").fetchone()
        times = [row[0] for row in (sendable, provisional) if row is not None and row[0] is not None]
        return min(times) if times else None

    def stats(self) -> OutboxStats:
        with self._unavailable_as("read"), self._lock, self._transaction():
            waiting, dropped = self._connection.execute(
                "SELECT waiting, dropped FROM outbox_counters").fetchone()
            oldest = self._connection.execute(
                "SELECT time_ms FROM outbox WHERE quarantined IS NULL ORDER BY id LIMIT 1").fetchone()
            attempt_ms, result, success_ms = self._connection.execute(
                "SELECT attempt_ms, result, success_ms FROM outbox_sends").fetchone()
            quarantined_count = self._connection.execute(
                f"SELECT COUNT(*) FROM outbox WHERE quarantined IS NOT NULL AND {_SAMPLES_ONLY}").fetchone()[0]
            quarantined = self._connection.execute(
                f"SELECT {_COLUMNS}, quarantined, quarantined_ms FROM outbox WHERE quarantined IS NOT NULL"
                f" AND {_SAMPLES_ONLY} ORDER BY id LIMIT ?", (QUARANTINE_SHOWN,)).fetchall()
            lost, lost_seconds = self._connection.execute("SELECT samples, seconds FROM outbox_lost").fetchone()
            waiting_other, quarantined_other = self._connection.execute(
                "SELECT COUNT(*) FILTER (WHERE quarantined IS NULL), COUNT(*) FILTER (WHERE quarantined IS NOT NULL)"
                " FROM outbox WHERE measurement != 'activity'").fetchone()
            clock_fixes, recategorizations = waiting_counts(self._connection)
        return OutboxStats(
            waiting=waiting,
            oldest_waiting=_time(oldest[0]) if oldest else None,
            last_attempt=_time(attempt_ms),
            last_result=result,
            last_success=_time(success_ms),
            dropped=dropped,
            quarantined_count=quarantined_count,
            quarantined=tuple(QuarantinedRow(row[0], _record(row), row[-2], _moment(row[-1]))
                              for row in quarantined),
            waiting_other=waiting_other,
            quarantined_other=quarantined_other,
            lost=lost,
            lost_seconds=lost_seconds,
            clock_fixes=clock_fixes,
            recategorizations=recategorizations,
        )

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------------

    def _transaction(self, immediate: bool = True) -> AbstractContextManager[None]:
        return transaction(self._connection, immediate)

    def _unavailable_as(self, verb: str) -> AbstractContextManager[None]:
        return unavailable_as(f"{verb} the outbox {self.path}", OutboxUnavailable, self.path)


def read_stats(path: Path) -> OutboxStats:
    """The stats of the outbox at `path`, without creating it when nothing was ever recorded."""
    if not path.exists():
        return OutboxStats(0, None, None, None, None, 0, 0, ())
    with Outbox(path) as outbox:
        return outbox.stats()


def retry_quarantined_rows(path: Path) -> tuple[int, int]:
    """`Outbox.retry_quarantined` for the outbox at `path`, without creating it when nothing was ever recorded."""
    if not path.exists():
        return 0, 0
    with Outbox(path) as outbox:
        return outbox.retry_quarantined()


def _row(record: Record, final: bool) -> tuple[object, ...]:
    """The values of `_INSERT` for a record: its fields, whether it is final, its line."""
    r = record
    return (r.time_ms, r.duration, r.host, r.app, r.activity, r.category, r.score, r.state, r.title, r.url, final,
            to_line(r))


def _record(row: Sequence) -> Record:
    return Record(time_ms=row[1], duration=row[2], host=row[3], app=row[4], activity=row[5], category=row[6],
                  score=row[7], state=row[8], title=row[9], url=row[10])


def _chunks(ids: Sequence[int], size: int = 500) -> Iterator[Sequence[int]]:
    # SQLite limits the number of ? in one statement.
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else _moment(ms)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
