"""Recategorise the past: today's categories applied to what was recorded before.

Three places hold categories: the local history (events and their rollups), the outbox (rows not sent
yet), and the points already in InfluxDB. The local parts change in one transaction each. In InfluxDB the
category is a tag, so a point with a new category is another series: it is written anew and the old point
deleted. A batch of points at a time, in this order, so that a kill at any moment loses nothing:

1. the rewritten points are committed to the outbox (durable: from here on the time cannot be lost);
2. the old points are deleted (InfluxQL DELETE, by series and time range: 1.x deletes no single point);
3. the outbox is sent (as `tracker sync` does), and so the new points arrive.

No sender sends from 1 to the end of 2 (send.lock). Killed after 1, a rerun finds the old points again and
commits the same rows again (the same series and time: InfluxDB keeps one); if a `tracker run` or `tracker
sync` sends the rows before the rerun, that batch's moved time shows twice until then. Killed after 2, the
outbox still holds the rows; a rerun, `tracker sync` or a running `tracker run` sends them. Between 2 and 3
the batch's moved time is missing from the dashboard.

Only InfluxDB 1.x is corrected: InfluxQL's DELETE is the only deletion tracker speaks. On 2.x (its
/api/v2/delete) and VictoriaMetrics the local parts change and the command says the points do not.
When InfluxDB cannot be reached, the correction is kept in the outbox file (`defer_influx`) with the
categories' text, and the next sender that finds nothing waiting makes it (`correct_deferred`).

The same machinery moves points back in time (`move_sent_points`): after the clock was set back, the points
sent while it was ahead are read, committed to the outbox at their corrected times, and deleted; the sender
does this, under send.lock, before it sends anything more.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from tracker.classify import Categories, CategoriesError, parse_categories, read_categories_text
from tracker.config import InfluxSettings
from tracker.events import EventData
from tracker.history import HistoryWriter, Moved
from tracker.lineprotocol import MEASUREMENT, clean_tag
from tracker.model import AWAY, STATE_ACTIVE, UNCATEGORIZED, Record, Sample
from tracker.outbox import ClockFix, DeferredRecategorization, Outbox, samples

# Points read and corrected at a time: with the longest titles and URLs (2 KB each) still under ANSWER_CAP.
BATCH_POINTS = 2000
# Seconds to wait for a query or a DELETE at least: a DELETE rewrites files, and takes long on a busy server.
SLOW_REQUEST_TIMEOUT = 60.0
ANSWER_CAP = 32 * 1024 * 1024
DELETES_PER_REQUEST = 200
_KNOWN_COLUMNS = frozenset({"time", "activity", "app", "category", "host", "state", "duration", "score",
                            "title", "url"})
# (from category, to category) -> seconds
Moves = dict[tuple[str, str], float]
Progress = Callable[[int, int], None]
_Recorded = TypeVar("_Recorded", Record, EventData)


@dataclass
class InfluxPart:
    """What happened, or would happen, to the points in InfluxDB."""

    moves: Moves = field(default_factory=dict)
    points: int = 0  # points given another category (or score)
    skipped: int = 0  # points with tags tracker does not write (e.g. demo=true): left alone


@dataclass
class Outcome:
    history: Moves
    outbox_rows: int  # waiting rows given another category (or score)
    influx: InfluxPart | None  # None: InfluxDB was not touched (see `influx_note`)
    influx_note: str | None = None  # why not, one plain sentence


class NotSupported(Exception):
    """The server offers no deletion tracker speaks: `str()` says so in one sentence."""


# -- classification -------------------------------------------------------------------------------

def new_category(categories: Categories, app: str, title: str | None, url: str | None) -> tuple[str, float]:
    """The category and score today's rules give a recorded sample, from what was kept of it."""
    match = categories.classify(Sample(time=datetime.now(timezone.utc), app=app, title=title, url=url))
    return clean_tag(match.category) or UNCATEGORIZED, float(match.score)


def is_away(category: str, state: str) -> bool:
    """Away time stays away: it was decided by input, not by rules."""
    return state != STATE_ACTIVE or category == AWAY


class Reclassifier:
    """Today's category and score for recorded time, from what was kept of each sample."""

    def __init__(self, categories: Categories) -> None:
        self.categories = categories
        # Categories that a title or domain rule can decide: time in one with neither title nor URL kept may
        # have been decided by details that privacy settings dropped (a private window on github.com).
        self._decided_by_details = {category.name for category in categories.categories
                                    if any(rule.kind != "app" for rule in category.rules)}

    def __call__(self, recorded: _Recorded) -> _Recorded | None:
        """The record or event with today's category and score; None when it stays as it is: away time, and
        time with no title or URL kept whose category a title or domain rule can decide, which its app
        alone cannot tell again."""
        if is_away(recorded.category, recorded.state):
            return None
        category, score = new_category(self.categories, recorded.app, recorded.title, recorded.url)
        if (recorded.title is None and recorded.url is None and category != recorded.category
                and recorded.category in self._decided_by_details):
            return None
        return replace(recorded, category=category, score=score)


# -- the local parts ------------------------------------------------------------------------------

def recategorize_local(database: Path, categories: Categories, since_ms: int | None, pulsetime: float,
                       apply: bool) -> tuple[Moves, int]:
    """The history's events (and rollups) and the outbox's waiting rows from `since_ms` on: the history's
    moves, and how many outbox rows changed (0 with `apply` False: they are not counted then)."""
    reclassify = Reclassifier(categories)
    with HistoryWriter(database, pulsetime) as history:
        moved = history.recategorize(since_ms, reclassify, apply)
    rows = 0
    if apply:
        with Outbox(database) as outbox:
            rows = outbox.recategorize(since_ms, reclassify)
    return history_moves(moved), rows


def history_moves(moved: Iterable[Moved]) -> Moves:
    moves: Moves = defaultdict(float)
    for event, now in moved:
        if now.category != event.data.category:
            moves[event.data.category, now.category] += event.duration
    return dict(moves)


# -- InfluxDB 1.x ---------------------------------------------------------------------------------

def influx_database(settings: InfluxSettings, what_stays: str = "the points already sent keep their old"
                    " categories") -> str:
    """The 1.x database to correct; NotSupported, saying `what_stays`, when the server does not speak
    InfluxQL's DELETE."""
    from tracker.sinks import ConfigurationError
    from tracker.sinks.influx_v1 import speaks_v1

    if settings.api == "v2" or (settings.api == "auto" and not speaks_v1(settings)):
        raise NotSupported(f"tracker corrects points in InfluxDB 1.x only (InfluxQL DELETE); on this server "
                           f"{what_stays}")
    database = settings.bucket.partition("/")[0]
    if not database:
        raise ConfigurationError("influx.bucket is empty: name the database tracker writes to.")
    return database


def recategorize_influx(settings: InfluxSettings, database_file: Path, host: str, categories: Categories,
                        since_ms: int | None, until_ms: int, apply: bool, progress: Progress | None = None
                        ) -> InfluxPart:
    """Correct this host's points from `since_ms` (None: all) to `until_ms`, BATCH_POINTS at a time (see the
    module's docstring for the order). SendError when the server fails; what was committed to the outbox
    by then is sent later, and a rerun finishes the job."""
    database = influx_database(settings)
    settings = replace(settings, timeout=max(settings.timeout, SLOW_REQUEST_TIMEOUT))
    part = InfluxPart()
    if apply:
        _send_outbox(settings, database_file)  # what an interrupted run left, before reading the points
    reclassify = Reclassifier(categories)
    origin = since_ms
    for records, cursor in _batches(settings, database, host, since_ms or 0, until_ms):
        rewritten: list[Record] = []
        old_by_series: dict[tuple[str, ...], list[tuple[int, bool]]] = defaultdict(list)
        for record, foreign in records:
            new = None if foreign else reclassify(record)
            moved = new is not None and (new.category, new.score) != (record.category, record.score)
            # A foreign point (one more tag) is kept like any other: a DELETE by these tags would take it too.
            old_by_series[_series(record)].append((record.time_ms, moved))
            part.skipped += foreign
            if new is not None and moved:
                rewritten.append(new)
                part.points += 1
                if new.category != record.category:
                    key = (record.category, new.category)
                    part.moves[key] = part.moves.get(key, 0.0) + record.duration
        if apply and rewritten:
            _rewrite(settings, database, database_file, host, rewritten, old_by_series)
        if origin is None and records:
            origin = records[0][0].time_ms  # with --all, progress counts from the first point
        if progress is not None and origin is not None:
            progress(cursor - origin, until_ms - origin)
    return part


def move_sent_points(settings: InfluxSettings, database_file: Path, fix: ClockFix) -> int:
    """Move the host's points in the fix's range back by its shift, as the outbox's rows moved: each batch is
    committed to the outbox at the corrected times, then deleted where it was (points with tags tracker does
    not write stay). Returns how many points moved. Only the caller's sender may send meanwhile, and only
    after this: a point sent at a time in the range would be taken for one sent with the clock ahead.
    Killed part-way, it is run again (the fix is forgotten only after): points read twice are committed
    twice, and InfluxDB keeps one point per series and time."""
    database = influx_database(settings, "the samples sent while the clock was ahead keep those times")
    settings = replace(settings, timeout=max(settings.timeout, SLOW_REQUEST_TIMEOUT))
    restamp = fix.restamp
    moved = 0
    for records, _ in _batches(settings, database, fix.host, restamp.first_ms, restamp.last_ms + 1):
        old_by_series: dict[tuple[str, ...], list[tuple[int, bool]]] = defaultdict(list)
        for record, foreign in records:
            old_by_series[_series(record)].append((record.time_ms, not foreign))
        shifted = [replace(record, time_ms=restamp.apply(record.time_ms)) for record, foreign in records
                   if not foreign]
        if shifted:
            with Outbox(database_file) as outbox:
                outbox.append_many(shifted)
            _delete_runs(settings, database, fix.host, old_by_series)
            moved += len(shifted)
    return moved


# -- when InfluxDB cannot be reached: later, by the sender ------------------------------------------

def defer_influx(database_file: Path, host: str, categories: Categories, since_ms: int | None,
                 until_ms: int) -> None:
    """InfluxDB could not be reached: keep the correction of its points, with today's categories as they are
    now, for the next sender that reaches it (`tracker run`'s or `tracker sync`). What this run committed to
    the outbox already goes out with the outbox."""
    text = read_categories_text(categories.file)
    with Outbox(database_file) as outbox:
        outbox.defer_recategorization(host, since_ms, until_ms, text, str(categories.file))


def forget_covered(database_file: Path, host: str, since_ms: int | None) -> None:
    """A correction of InfluxDB from `since_ms` on just succeeded: those deferred earlier that it covered are
    done (it used today's categories, theirs are older)."""
    with Outbox(database_file) as outbox:
        outbox.forget_recategorizations([
            deferred.id for deferred in outbox.deferred_recategorizations() if deferred.host == host and (
                since_ms is None or (deferred.since_ms is not None and deferred.since_ms >= since_ms))])


def correct_deferred(settings: InfluxSettings, database_file: Path) -> Iterator[tuple[DeferredRecategorization,
                                                                                     InfluxPart | str]]:
    """Make the deferred corrections, oldest first, each forgotten once made: what each came to, or why it
    was dropped (one sentence). SendError when the server fails: the rest wait for the next try."""
    with Outbox(database_file) as outbox:
        waiting = outbox.deferred_recategorizations()
    for deferred in waiting:
        outcome: InfluxPart | str
        try:
            categories = parse_categories(deferred.categories, Path(deferred.file))
            outcome = recategorize_influx(settings, database_file, deferred.host, categories, deferred.since_ms,
                                          deferred.until_ms, apply=True)
        except NotSupported as error:
            outcome = f"{error}"
        except CategoriesError as error:  # written by another version of tracker, whose rules this one refuses
            outcome = f"its categories no longer load ({error}); run `tracker recategorize` again"
        with Outbox(database_file) as outbox:
            outbox.forget_recategorizations([deferred.id])
        yield deferred, outcome


def _batches(settings: InfluxSettings, database: str, host: str, start_ms: int, until_ms: int
             ) -> Iterator[tuple[list[tuple[Record, bool]], int]]:
    """The host's points in [start_ms, until_ms) in time order, a batch at a time, each batch every point of
    the times it covers (a point of a series is never split from its neighbours), and where the next starts."""
    from tracker.sinks.influx_v1 import execute

    retention_policy = settings.bucket.partition("/")[2]
    # Points are written to the bucket's retention policy, when it names one: read them there.
    source = f'"{retention_policy}"."{MEASUREMENT}"' if retention_policy else f'"{MEASUREMENT}"'
    cursor = start_ms
    while cursor < until_ms:
        statement = (f'SELECT * FROM {source} WHERE "host" = {quote(host)} AND time >= {cursor}ms'
                     f' AND time < {until_ms}ms ORDER BY time LIMIT {BATCH_POINTS}')
        points = list(_points(execute(settings, database, statement, epoch="ms", body_cap=ANSWER_CAP)))
        if len(points) < BATCH_POINTS:
            yield points, until_ms
            return
        last_ms = points[-1][0].time_ms
        whole = [point for point in points if point[0].time_ms < last_ms]  # the last moment may go on
        if not whole:  # a whole batch at one moment: it cannot go on further than this
            whole, last_ms = points, last_ms + 1
        yield whole, last_ms
        cursor = last_ms


def _rewrite(settings: InfluxSettings, database: str, database_file: Path, host: str, rewritten: list[Record],
             old_by_series: dict[tuple[str, ...], list[tuple[int, bool]]]) -> None:
    """Commit the rewritten points to the outbox, delete the old ones, send the outbox.

    send.lock is held from the commit to the last DELETE: a sender of a running `tracker run` that sent the
    new rows in between could see them deleted with the old ones (a changed score keeps the series; swapped
    categories interleave), and then they would be gone from InfluxDB and from the outbox."""
    with _sending_held(database_file):
        with Outbox(database_file) as outbox:
            outbox.append_many(rewritten)
        _delete_runs(settings, database, host, old_by_series)
    _send_outbox(settings, database_file)


def _delete_runs(settings: InfluxSettings, database: str, host: str,
                 old_by_series: dict[tuple[str, ...], list[tuple[int, bool]]]) -> None:
    """Delete the runs of moved points of each series (see `_moved_runs`)."""
    from tracker.sinks.influx_v1 import execute

    deletes = [_delete(host, series, first, last)
               for series, points in old_by_series.items() for first, last in _moved_runs(points)]
    for index in range(0, len(deletes), DELETES_PER_REQUEST):
        execute(settings, database, ";".join(deletes[index:index + DELETES_PER_REQUEST]))


@contextmanager
def _sending_held(database_file: Path) -> Iterator[None]:
    """No sender sends meanwhile: send.lock held (released by the system, too, if this process dies)."""
    from tracker.sender import LOCK_FILE, SYNC_LOCK_WAIT
    from tracker.sinks import RetryLater
    from tracker.status import lock_exclusively

    descriptor = os.open(database_file.parent / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not lock_exclusively(descriptor, SYNC_LOCK_WAIT):
            raise RetryLater("another tracker kept sending for too long")
        yield
    finally:
        os.close(descriptor)


def _send_outbox(settings: InfluxSettings, database_file: Path) -> None:
    """Send everything waiting, as `tracker sync` does; SendError when it could not."""
    from tracker.sender import Sender
    from tracker.sinks import RetryLater

    result = Sender(database_file, settings, lambda _notice: None, makes_deferred=False).send_all()
    if not result.ok:
        raise RetryLater(f"{(result.error or '').rstrip('.')}; {samples(result.waiting)} wait in the outbox"
                         " (the rewritten points among them), sent by `tracker sync` or `tracker run`")


def _points(results: list[dict[str, Any]]) -> Iterator[tuple[Record, bool]]:
    """Each point as a record, and whether it carries a tag or field tracker does not write (left alone)."""
    for result in results:
        for series in result.get("series") or ():
            columns = series["columns"]
            for values in series["values"]:
                row = dict(zip(columns, values, strict=True))
                foreign = any(value is not None for key, value in row.items() if key not in _KNOWN_COLUMNS)
                yield Record(time_ms=int(row["time"]), duration=float(row.get("duration") or 0.0),
                             host=row.get("host") or "", app=row.get("app") or "",
                             activity=row.get("activity") or "", category=row.get("category") or "",
                             score=float(row.get("score") or 0.0), state=row.get("state") or "",
                             title=row.get("title"), url=row.get("url")), foreign


def _series(record: Record) -> tuple[str, ...]:
    """The tags that, with the host, name the point's series."""
    return record.activity, record.app, record.category, record.state


def _moved_runs(points: list[tuple[int, bool]]) -> Iterator[tuple[int, int]]:
    """(first, last) time of each run of moved points in one series with no kept point between: a DELETE by
    time range takes exactly those."""
    first: int | None = None
    last = 0
    for time_ms, moved in sorted(points):
        if moved:
            first = time_ms if first is None else first
            last = time_ms
        elif first is not None:
            yield first, last
            first = None
    if first is not None:
        yield first, last


def _delete(host: str, series: tuple[str, ...], first_ms: int, last_ms: int) -> str:
    activity, app, category, state = series
    tags = {"activity": activity, "app": app, "category": category, "host": host, "state": state}
    where = " AND ".join(f'"{key}" = {quote(value)}' for key, value in tags.items())
    return f'DELETE FROM "{MEASUREMENT}" WHERE {where} AND time >= {first_ms}ms AND time <= {last_ms}ms'


def quote(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
