"""Corrections of points already in InfluxDB that wait for the server, kept in the outbox's file: moves of the
points sent while the clock was ahead (ClockFix), and recategorisations `tracker recategorize` could not make
(DeferredRecategorization). The sender's jobs make them (tracker.sending.corrections).

The tables keep the outbox's names (`outbox_clock_fixes`, `outbox_recategorizations`): files of earlier
versions open as they are. They share the outbox's connection and lock (Outbox.corrections), as a clock fix is
noted in the same transaction that moves the outbox's rows, and the outbox sends nothing while one waits.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone

from tracker.model import Restamp
from tracker.storage.db import transaction

# Each statement is safe to run again; the outbox runs them with its own when it opens the file.
SCHEMA = (
    # The clock was set back: the host's points sent with times in [first_ms, last_ms] are to move by shift_ms
    # in InfluxDB too. Until that is done nothing more is sent (see Outbox.pending_lines).
    """CREATE TABLE IF NOT EXISTS outbox_clock_fixes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        first_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        shift_ms INTEGER NOT NULL
    )""",
    # `tracker recategorize` could not reach InfluxDB: the host's points from since_ms (NULL: all) to until_ms
    # are to be given the categories of `categories` (the file's text then), once a sender reaches it.
    """CREATE TABLE IF NOT EXISTS outbox_recategorizations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        since_ms INTEGER,
        until_ms INTEGER NOT NULL,
        categories TEXT NOT NULL,
        file TEXT NOT NULL,
        asked_ms INTEGER NOT NULL
    )""",
)
# A condition of the outbox's query for rows to send: true while no clock fix waits.
NO_CLOCK_FIX_WAITS = "NOT EXISTS (SELECT 1 FROM outbox_clock_fixes)"


@dataclass(frozen=True)
class ClockFix:
    """Points of `host` that were sent while the clock was ahead, to move back in InfluxDB as they did here."""

    id: int
    host: str
    restamp: Restamp


@dataclass(frozen=True)
class DeferredRecategorization:
    """A `tracker recategorize` whose correction of InfluxDB waits for the server."""

    id: int
    host: str
    since_ms: int | None
    until_ms: int
    categories: str  # the categories file's text when it was asked for
    file: str  # and its name, for messages
    asked_at: datetime


def note_clock_fixes(connection: sqlite3.Connection, host: str, restamps: Sequence[Restamp]) -> None:
    """A ClockFix for each of `restamps`, inside the caller's transaction (the one that moves the outbox's rows)."""
    connection.executemany(
        "INSERT INTO outbox_clock_fixes (host, first_ms, last_ms, shift_ms) VALUES (?, ?, ?, ?)",
        [(host, restamp.first_ms, restamp.last_ms, restamp.shift_ms) for restamp in restamps])


def waiting_counts(connection: sqlite3.Connection) -> tuple[int, int]:
    """How many clock fixes, and how many recategorisations, wait (for `tracker outbox`)."""
    clock_fixes, recategorizations = connection.execute(
        "SELECT (SELECT COUNT(*) FROM outbox_clock_fixes), (SELECT COUNT(*) FROM outbox_recategorizations)"
    ).fetchone()
    return clock_fixes, recategorizations


class PendingCorrections:
    """The corrections waiting for InfluxDB, on the outbox's connection and lock (see Outbox.corrections);
    `unavailable_as(verb)` turns a failure of the file into the outbox's plain error."""

    def __init__(self, connection: sqlite3.Connection, lock: threading.Lock,
                 unavailable_as: Callable[[str], AbstractContextManager[None]]) -> None:
        self._connection = connection
        self._lock = lock
        self._unavailable_as = unavailable_as

    def clock_fixes(self) -> list[ClockFix]:
        """The moves of points already sent that wait to be made in InfluxDB, oldest first."""
        with self._unavailable_as("read"), self._lock:
            rows = self._connection.execute(
                "SELECT id, host, first_ms, last_ms, shift_ms FROM outbox_clock_fixes ORDER BY id").fetchall()
        return [ClockFix(row[0], row[1], Restamp(row[2], row[3], row[4])) for row in rows]

    def forget_clock_fix(self, fix_id: int) -> None:
        with self._unavailable_as("write to"), self._lock, transaction(self._connection):
            self._connection.execute("DELETE FROM outbox_clock_fixes WHERE id = ?", (fix_id,))

    def defer_recategorization(self, host: str, since_ms: int | None, until_ms: int, categories: str,
                               file: str) -> None:
        asked_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
        with self._unavailable_as("write to"), self._lock, transaction(self._connection):
            self._connection.execute(
                "INSERT INTO outbox_recategorizations (host, since_ms, until_ms, categories, file, asked_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)", (host, since_ms, until_ms, categories, file, asked_ms))

    def deferred_recategorizations(self) -> list[DeferredRecategorization]:
        """Oldest first."""
        with self._unavailable_as("read"), self._lock:
            rows = self._connection.execute(
                "SELECT id, host, since_ms, until_ms, categories, file, asked_ms FROM outbox_recategorizations"
                " ORDER BY id").fetchall()
        return [DeferredRecategorization(row[0], row[1], row[2], row[3], row[4], row[5],
                                         datetime.fromtimestamp(row[6] / 1000, tz=timezone.utc)) for row in rows]

    def forget_recategorizations(self, ids: Sequence[int]) -> None:
        with self._unavailable_as("write to"), self._lock, transaction(self._connection):
            self._connection.executemany("DELETE FROM outbox_recategorizations WHERE id = ?",
                                         [(row_id,) for row_id in ids])
