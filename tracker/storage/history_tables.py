"""The event history's tables in the shared SQLite file, and what its writer (tracker.storage.history) and its
reader (tracker.storage.queries) both need of them: the schema, an event's columns, the UTC buckets of the rollups.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from tracker.events import Event, EventData

SCHEMA = """
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
    active INTEGER NOT NULL, -- 1 for time that counts in reports (see queries._ACTIVE), 0 for away time
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
COLUMNS = "timestamp, duration, app, activity, category, score, title, url, state"


def event_of_row(row: tuple) -> Event:
    """An event from a row of its id and COLUMNS."""
    event_id, timestamp, duration, *data = row
    return Event(timestamp, duration, EventData(*data), event_id)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


_Key = TypeVar("_Key")


def add_to_sums(sums: dict[_Key, list[float]], key: _Key, seconds: float, weighted_score: float) -> None:
    """Add to the [seconds, weighted score] of `key`."""
    totals = sums.get(key)
    if totals is None:
        sums[key] = [seconds, weighted_score]
    else:
        totals[0] += seconds
        totals[1] += weighted_score


def round_up(moment_ms: float, size_ms: int) -> int:
    """The start of the first bucket of `size_ms` at or after `moment_ms`."""
    return int(-(-moment_ms // size_ms) * size_ms)
