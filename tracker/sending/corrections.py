"""Corrections of the points already in InfluxDB: today's categories applied to them, and points sent while the clock
was ahead moved back.

Three places hold categories: the local history (events and their rollups), the outbox (rows not sent
yet), and the points already in InfluxDB. The local parts change in tracker.tasks.recategorize. In InfluxDB the
category is a tag, so a point with a new category is another series: it is written anew and the old point
deleted. A batch of points at a time, in this order, so that a kill at any moment loses nothing:

1. the rewritten points are committed to the outbox (durable: from here on the time cannot be lost);
2. the old points are deleted (by series and time range: InfluxDB deletes no single point);
3. the outbox is sent (as `tracker sync` does), and so the new points arrive.

No sender sends from 1 to the end of 2 (send.lock). Killed after 1, a rerun finds the old points again and
commits the same rows again (the same series and time: InfluxDB keeps one); if a `tracker run` or `tracker
sync` sends the rows before the rerun, that batch's moved time shows twice until then. Killed after 2, the
outbox still holds the rows; a rerun, `tracker sync` or a running `tracker run` sends them. Between 2 and 3
the batch's moved time is missing from the dashboard.

InfluxDB 1.x is corrected through InfluxQL (tracker.sending.points_v1), 2.x through Flux and /api/v2/delete
(tracker.sending.points_v2), behind the small `Points` interface; the rules here are the same for both. On
servers that offer neither (VictoriaMetrics, InfluxDB 3.x) the local parts change and the command says the
points do not.
When InfluxDB cannot be reached, the correction is kept in the outbox file (recategorize.defer_influx) with the
categories' text, and the next sender that finds nothing waiting makes it (`correct_deferred`).

The same machinery moves points back in time (`move_sent_points`): after the clock was set back, the points
sent while it was ahead are read, committed to the outbox at their corrected times, and deleted; the sender
does this, under send.lock, before it sends anything more.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tracker.callbacks import Progress
from tracker.categories.files import parse_categories
from tracker.categories.reclassify import Moves, Reclassifier
from tracker.categories.rules import Categories, CategoriesError
from tracker.config import InfluxSettings
from tracker.model import Record
from tracker.redact import display_url
from tracker.sending.sendlock import SYNC_LOCK_WAIT, sending_held
from tracker.storage.outbox import Outbox, OutboxUnavailable
from tracker.storage.pending_corrections import ClockFix, DeferredRecategorization
from tracker.wording import samples

if TYPE_CHECKING:
    from tracker.sending.points_v1 import Series
    from tracker.sending.sender import Sender, SyncResult

# Points read and corrected at a time: with the longest titles and URLs (2 KB each) still under READ_ANSWER_CAP.
BATCH_POINTS = 2000
# Seconds to wait for a query or a DELETE at least: a DELETE rewrites files, and takes long on a busy server.
SLOW_REQUEST_TIMEOUT = 60.0
# Bytes of one answer to a query of points (the sinks' own answers are capped far lower: sinks.answers).
READ_ANSWER_CAP = 32 * 1024 * 1024
# Sends everything waiting in the outbox, as `tracker sync` does (see outbox_sender).
Send = Callable[[], "SyncResult"]


@dataclass
class InfluxPart:
    """What happened, or would happen, to the points in InfluxDB."""

    moves: Moves = field(default_factory=dict)
    points: int = 0  # points given another category (or score)
    skipped: int = 0  # points tracker did not write (a tag more, e.g. demo=true, or one less): left alone


class NotSupported(Exception):
    """The server offers no deletion tracker speaks: `str()` says so in one sentence."""


class Points(Protocol):
    """A host's points in one kind of server (tracker.sending.points_v1, points_v2). SendError when it fails."""

    def read(self, host: str, start_ms: int, stop_ms: int, limit: int) -> list[tuple[Record, bool]]:
        """The host's first `limit` points in [start_ms, stop_ms), in time order; each with whether tracker did
        not write it (points_v1.not_trackers: left alone)."""
        ...

    def delete(self, host: str, runs: Sequence[tuple[Series, int, int]]) -> None:
        """Delete the points of each (series, first_ms, last_ms): the series' points in [first_ms, last_ms]."""
        ...


# -- InfluxDB ------------------------------------------------------------------------------------

def influx_points(settings: InfluxSettings, what_stays: str = "the points already sent keep their old"
                  " categories") -> Points:
    """The host's points on the server `settings` name: InfluxDB 1.x (influx.api v1, or auto and /ping names
    1.x) or 2.x (/ping names 2.x); NotSupported, saying `what_stays`, on any other server."""
    from tracker.redact import outward
    from tracker.sending.points_v1 import V1Points
    from tracker.sending.points_v2 import V2Points
    from tracker.sending.sinks.influx_v1 import detect_version, major_version

    settings = replace(settings, timeout=max(settings.timeout, SLOW_REQUEST_TIMEOUT))
    if settings.api == "v1":
        return V1Points(settings, READ_ANSWER_CAP)
    version, build, _ = detect_version(settings)
    major = major_version(version)
    if major == "1" and settings.api == "auto":
        return V1Points(settings, READ_ANSWER_CAP)
    if major == "2":
        return V2Points(settings, READ_ANSWER_CAP)
    if version is None and (build or "").lower() == "cloud":  # InfluxDB Cloud names no version: ask it
        points = V2Points(settings, READ_ANSWER_CAP)
        refusal = points.delete_refused()
        if refusal is None:
            return points
        described = f"is InfluxDB Cloud without /api/v2/delete (it answers {refusal})"
    elif version:
        described = f"names itself InfluxDB {outward(version, settings, 40)}"
    else:
        described = "names no InfluxDB version"
    raise NotSupported(f"tracker corrects points only in InfluxDB 1.x (InfluxQL DELETE) and 2.x (/api/v2/delete);"
                       f" this server {described}, so {what_stays}")


def recategorize_influx(settings: InfluxSettings, database_file: Path, host: str, categories: Categories,
                        since_ms: int | None, until_ms: int, apply: bool, send: Send,
                        progress: Progress | None = None) -> InfluxPart:
    """Correct this host's points from `since_ms` (None: all) to `until_ms`, BATCH_POINTS at a time (see the
    module's docstring for the order); `send` sends the outbox, as `tracker sync` does (outbox_sender). SendError
    when the server fails; what was committed to the outbox by then is sent later, and a rerun finishes the
    job."""
    points = influx_points(settings)
    settings = replace(settings, timeout=max(settings.timeout, SLOW_REQUEST_TIMEOUT))
    part = InfluxPart()
    if apply:
        _sent(send)  # what an interrupted run left, before reading the points
    reclassify = Reclassifier(categories)
    origin = since_ms
    for records, cursor in _batches(points, host, since_ms or 0, until_ms):
        rewritten: list[Record] = []
        old_by_series: dict[tuple[str, ...], list[tuple[int, bool]]] = defaultdict(list)
        for record, foreign in records:
            new = None if foreign else reclassify(record)
            moved = new is not None and (new.category, new.score) != (record.category, record.score)
            # A foreign point is kept like any other: a DELETE by these tags would take it too.
            old_by_series[_series(record)].append((record.time_ms, moved))
            part.skipped += foreign
            if new is not None and moved:
                rewritten.append(new)
                part.points += 1
                if new.category != record.category:
                    key = (record.category, new.category)
                    part.moves[key] = part.moves.get(key, 0.0) + record.duration
        if apply and rewritten:
            _rewrite(points, database_file, host, rewritten, old_by_series, send)
        if origin is None and records:
            origin = records[0][0].time_ms  # with --all, progress counts from the first point
        if progress is not None and origin is not None:
            progress(cursor - origin, until_ms - origin)
    return part


def move_sent_points(settings: InfluxSettings, database_file: Path, fix: ClockFix) -> int:
    """Move the host's points in the fix's range back by its shift, as the outbox's rows moved: each batch is
    committed to the outbox at the corrected times, then deleted where it was (points tracker did not
    write stay). Returns how many points moved. Only the caller's sender may send meanwhile, and only
    after this: a point sent at a time in the range would be taken for one sent with the clock ahead.
    Killed part-way, it is run again (the fix is forgotten only after): points read twice are committed
    twice, and InfluxDB keeps one point per series and time."""
    points = influx_points(settings, "the samples sent while the clock was ahead keep those times")
    restamp = fix.restamp
    moved = 0
    for records, _ in _batches(points, fix.host, restamp.first_ms, restamp.last_ms + 1):
        old_by_series: dict[tuple[str, ...], list[tuple[int, bool]]] = defaultdict(list)
        for record, foreign in records:
            old_by_series[_series(record)].append((record.time_ms, not foreign))
        shifted = [replace(record, time_ms=restamp.apply(record.time_ms)) for record, foreign in records
                   if not foreign]
        if shifted:
            with Outbox(database_file) as outbox:
                outbox.append_many(shifted)
            _delete_runs(points, fix.host, old_by_series)
            moved += len(shifted)
    return moved


# -- when InfluxDB could not be reached: later, by the sender ------------------------------------------

def correct_deferred(settings: InfluxSettings, database_file: Path, waiting: Sequence[DeferredRecategorization],
                     send: Send) -> Iterator[tuple[DeferredRecategorization, InfluxPart | str]]:
    """Make the `waiting` deferred corrections (PendingCorrections.deferred_recategorizations), oldest first,
    each forgotten once made, sending the outbox with `send`: what each came to, or why it was dropped (one
    sentence).
    SendError when the server fails: the rest wait for the next try."""
    for deferred in waiting:
        outcome: InfluxPart | str
        try:
            categories = parse_categories(deferred.categories, Path(deferred.file))
            outcome = recategorize_influx(settings, database_file, deferred.host, categories, deferred.since_ms,
                                          deferred.until_ms, apply=True, send=send)
        except NotSupported as error:
            outcome = f"{error}"
        except CategoriesError as error:  # written by another version of tracker, whose rules this one refuses
            outcome = f"its categories no longer load ({error}); run `tracker recategorize` again"
        with Outbox(database_file) as outbox:
            outbox.corrections.forget_recategorizations([deferred.id])
        yield deferred, outcome


# -- the sender's jobs: wired into every sender of the outbox -----------------------------------------------

# Seconds between looks for recategorisations left for when InfluxDB answers.
DEFERRED_LOOK_EVERY = 60.0


def correcting_sender(database_file: Path, settings: InfluxSettings, on_status: Callable[[str], None], *,
                      deferred: bool = True, deferred_every: float = DEFERRED_LOOK_EVERY, **options: Any) -> Sender:
    """A Sender (`options` are its own) with the corrections of InfluxDB it makes between batches (sender.Job):
    before any, the points sent while the clock was ahead move back (always: Outbox.pending_lines hands out
    nothing while such a fix waits); with `deferred`, once nothing waits, the recategorisations `tracker
    recategorize` could not make (not for the sender that sends for one of them: see outbox_sender)."""
    from tracker.sending.sender import Sender

    correct = DeferredCorrections(settings, database_file, outbox_sender(settings, database_file), deferred_every)
    return Sender(database_file, settings, on_status, before_batches=SentPointsMover(settings, database_file),
                  when_drained=correct if deferred else None, **options)


def outbox_sender(settings: InfluxSettings, database_file: Path) -> Send:
    """Sends everything waiting, as `tracker sync` does, saying nothing; deferred recategorisations wait."""
    return lambda: correcting_sender(database_file, settings, lambda _notice: None, deferred=False).send_all()


class SentPointsMover:
    """Before the sender sends anything more (a sender.Job, inside send.lock): the clock was set back, so the
    points sent while it was ahead move back in InfluxDB too (see Outbox.pending_lines). A server that cannot
    delete keeps them, and the user is told."""

    def __init__(self, settings: InfluxSettings, database_file: Path) -> None:
        self.settings = settings
        self.database_file = database_file

    def __call__(self, outbox: Outbox, say: Callable[[str], None]) -> None:
        fixes = outbox.corrections.clock_fixes()
        if not fixes:
            return
        moved = 0
        unsupported: NotSupported | None = None
        for fix in fixes:
            if unsupported is None:
                try:
                    moved += move_sent_points(self.settings, self.database_file, fix)
                except NotSupported as error:
                    unsupported = error
            outbox.corrections.forget_clock_fix(fix.id)
        if unsupported is not None:
            say(f"The clock was set back: {unsupported}.")
        if moved:
            say(f"The clock was set back: {samples(moved)} sent while it was ahead moved back in "
                f"InfluxDB at {display_url(self.settings.url)} too")


class DeferredCorrections:
    """Once nothing waits to be sent (a sender.Job, outside send.lock, which the corrections take themselves):
    make the corrections `tracker recategorize` could not, at most one look every `every` seconds, as a failing
    one is tried again."""

    def __init__(self, settings: InfluxSettings, database_file: Path, send: Send,
                 every: float = DEFERRED_LOOK_EVERY) -> None:
        self.settings = settings
        self.database_file = database_file
        self.send = send
        self.every = every
        self._next_look = 0.0
        self._failure: str | None = None

    def __call__(self, outbox: Outbox, say: Callable[[str], None]) -> None:
        if time.monotonic() < self._next_look:
            return
        self._next_look = time.monotonic() + self.every
        waiting = outbox.corrections.deferred_recategorizations()
        if not waiting:
            return
        try:
            for deferred, outcome in correct_deferred(self.settings, self.database_file, waiting, self.send):
                asked = deferred.asked_at.astimezone().strftime("%Y-%m-%d %H:%M")
                if isinstance(outcome, str):
                    say(f"The recategorisation asked for at {asked} was dropped: {outcome}")
                else:
                    say(f"InfluxDB answers again: the recategorisation asked for at {asked} is done"
                        f" there ({outcome.points:,} points given today's categories)")
            self._failure = None
        except Exception as error:  # SendError, or the local file: never the end of the sender
            from tracker.sending.sinks import SendError

            message = f"{error}" if isinstance(error, (SendError, OutboxUnavailable)) else repr(error)
            if message != self._failure:  # said once, not every minute
                self._failure = message
                say(f"Recategorising the points in InfluxDB failed ({message.rstrip('.')}); tried again later")


def _batches(points: Points, host: str, start_ms: int, until_ms: int
             ) -> Iterator[tuple[list[tuple[Record, bool]], int]]:
    """The host's points in [start_ms, until_ms) in time order, a batch at a time, each batch every point of
    the times it covers (a point of a series is never split from its neighbours), and where the next starts."""
    cursor = start_ms
    while cursor < until_ms:
        batch = points.read(host, cursor, until_ms, BATCH_POINTS)
        if len(batch) < BATCH_POINTS:
            yield batch, until_ms
            return
        last_ms = batch[-1][0].time_ms
        whole = [point for point in batch if point[0].time_ms < last_ms]  # the last moment may go on
        if not whole:  # a whole batch at one moment: it cannot go on further than this
            whole, last_ms = batch, last_ms + 1
        yield whole, last_ms
        cursor = last_ms


def _rewrite(points: Points, database_file: Path, host: str, rewritten: list[Record],
             old_by_series: dict[tuple[str, ...], list[tuple[int, bool]]], send: Send) -> None:
    """Commit the rewritten points to the outbox, delete the old ones, send the outbox.

    send.lock is held from the commit to the last DELETE: a sender of a running `tracker run` that sent the
    new rows in between could see them deleted with the old ones (a changed score keeps the series; swapped
    categories interleave), and then they would be gone from InfluxDB and from the outbox."""
    with _sending_held(database_file):
        with Outbox(database_file) as outbox:
            outbox.append_many(rewritten)
        _delete_runs(points, host, old_by_series)
    _sent(send)


def _delete_runs(points: Points, host: str, old_by_series: dict[tuple[str, ...], list[tuple[int, bool]]]) -> None:
    """Delete the runs of moved points of each series (see `_moved_runs`)."""
    points.delete(host, [(series, first, last) for series, moved in old_by_series.items()
                         for first, last in _moved_runs(moved)])


def _sending_held(database_file: Path) -> AbstractContextManager[None]:
    """No sender sends meanwhile (see sendlock.sending_held), waiting as `tracker sync` does."""
    from tracker.sending.sinks import RetryLater

    return sending_held(database_file, SYNC_LOCK_WAIT, lambda: RetryLater("another tracker kept sending for too long"))


def _sent(send: Send) -> None:
    """Send everything waiting with `send`; SendError when it could not."""
    from tracker.sending.sinks import RetryLater

    result = send()
    if not result.ok:
        raise RetryLater(f"{(result.error or '').rstrip('.')}; {samples(result.waiting)} wait in the outbox"
                         " (the rewritten points among them), sent by `tracker sync` or `tracker run`")


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
