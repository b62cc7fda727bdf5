"""Importing time recorded elsewhere (ActivityWatch) into the local history and the outbox, a slice at a time.

Each span is classified with the current categories (after the privacy rules), becomes one history event,
and goes to InfluxDB through the outbox as points of the usual shape, cut at every UTC minute so that a
dashboard's time buckets get their share of a long event. What was imported is remembered per host, so the
same export imported again adds nothing; for this machine's own host, the time tracker recorded itself wins
(it is in InfluxDB already, sampled every second with tracker's own away detection): imported time only
fills the gaps.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import sqlite3
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import astuple, dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any

from tracker import PlainError
from tracker.callbacks import Progress
from tracker.categories.privacy import Privacy, seen_private
from tracker.categories.rules import Categories
from tracker.events import Event, EventData
from tracker.interchange.activitywatch import AwEvent, Bucket, ExportError, Span, combine_by_day, iter_export
from tracker.lineprotocol import clean_tag, clean_text
from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, Record, Sample
from tracker.paths import private_dir
from tracker.portable import process_exists
from tracker.sending.sendlock import lock_exclusively
from tracker.sending.sinks.deadline import Exchange
from tracker.sending.sinks.plainhttp import WatchedHTTPConnection, WatchedHTTPSConnection
from tracker.sending.sinks.resolving import NotResolvedInTime
from tracker.storage.db import StoreUnavailable, in_slices, open_database, unavailable_as
from tracker.storage.history import HistoryWriter, covered_periods, insert_events
from tracker.storage.outbox import Outbox, OutboxFull

# Imported events are cut into points at each UTC minute: a dashboard's hour gets the time that fell in it.
POINT_MS = 60_000
_CHUNK = 10_000  # spans written per statement
_STAGED_BATCH = 10_000  # events staged per statement
_CLASSIFIED_KEPT = 20_000  # distinct windows whose classification is remembered
_SCHEMA = """
CREATE TABLE IF NOT EXISTS imported (
    host TEXT NOT NULL,      -- the host tag the imported time was written with
    start INTEGER NOT NULL,  -- ms since the epoch, UTC: the start of a history event it became
    end INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS imported_host_start ON imported (host, start);
CREATE INDEX IF NOT EXISTS imported_start ON imported (start);
"""



@dataclass
class ImportResult:
    spans: int = 0  # read from the export
    events: int = 0  # added to the history
    points: int = 0  # added to the outbox
    seconds: float = 0.0  # added
    skipped_seconds: float = 0.0  # there already: imported before, or recorded by tracker itself
    hosts: set[str] = field(default_factory=set)
    left_out: int = 0  # events of the export with impossible times (activitywatch.ImpossibleTime), not imported
    first_left_out: str = ""  # the first of them: "bucket B, event N: why"


def import_spans(database: Path, spans: Iterable[Span], categories: Categories, privacy: Privacy, own_host: str,
                 max_rows: int, recording: bool = False) -> ImportResult:
    """Add the spans' time not there yet to the history and the outbox. The spans come in time order within each
    host, never overlapping within a host, and are taken as they come (a large import is never all in memory).
    `recording`: a `tracker run` records into this file now, so nothing of its own host is imported from its
    current event on (the event grows in its memory before it is written). The caller holds
    `one_import_at_a_time`.

    First what is new is worked out, reading the file only, into a scratch file beside it; then it is written in
    slices of a moment each, so a running `tracker run` never waits for the file more than that (a single
    transaction took 17 s of 28 for 100,000 events). OutboxFull, before anything is kept, when the points do not
    fit in the outbox's bound; StoreUnavailable (nothing kept) or ImportStopped (part kept, the rest added by
    importing again) when the file cannot be written."""
    # The history's tables, if this file has none yet, and its rollups in step: then each slice keeps them so
    # (rebuilding them afterwards would hold the file as long as the import once did).
    HistoryWriter(database, pulsetime=1.0).close()
    with closing(open_database(database, "NORMAL")) as db:
        db.executescript(_SCHEMA)
    with _NewTime(database.parent) as new:
        with closing(open_database(database, "NORMAL")) as db:
            result = new.find(db, spans, _Classifier(categories, privacy), clean_tag(own_host) or "unknown",
                              _current_event_start(db) if recording else None)
        with Outbox(database, max_rows=max_rows) as outbox:
            room = outbox.room()
            if new.points > room:
                raise OutboxFull(new.points, room)
            for written in new.write_in_slices(outbox):
                result.points += written
    return result


class AnotherImport(PlainError):
    def __init__(self, directory: Path) -> None:
        super().__init__(f"Another `tracker import` is writing to the history in {directory} now: import again "
                         "when it has finished; nothing was imported.")


class ImportStopped(PlainError):
    """Part of an import was written, then the file could not take more: what is kept stays (it is whole, each
    slice with its points), and the same import run again adds the rest, nothing twice."""

    def __init__(self, kept: int, total: int, reason: str) -> None:
        super().__init__(f"The import stopped part-way: {reason}. {kept:,} of its {total:,} events are in the local "
                         "history and their points in the outbox; import the same export again to add the rest "
                         "(nothing is added twice).")


@contextmanager
def one_import_at_a_time(database: Path) -> Iterator[None]:
    """Two imports at once could each find the same time new: the second is refused at once, before it reads its
    export (AnotherImport; import.lock, released by the system if this process dies)."""
    with unavailable_as(f"lock the history in {database.parent}", path=database):
        descriptor = os.open(private_dir(database.parent) / "import.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not lock_exclusively(descriptor, 0.0):
            raise AnotherImport(database.parent)
        yield
    finally:
        os.close(descriptor)


_NEW_COLUMNS = "host, start, end, app, activity, category, score, title, url, state"


class _NewTime:
    """The events an import adds, worked out from the file as it is before any is written, kept in a scratch
    file beside it (removed on close; see StagedExport), then written to the file a slice at a time."""

    def __init__(self, directory: Path) -> None:
        self.path, self._db = _scratch_database(directory)
        self._db.execute(f"CREATE TABLE new ({_NEW_COLUMNS})")
        self.events = 0
        self.points = 0  # the outbox rows they make

    def find(self, db: sqlite3.Connection, spans: Iterable[Span], classify: _Classifier, own: str,
             current: int | None) -> ImportResult:
        """Keep the spans' parts the file does not hold yet (see `_covered`) as classified events."""
        result = ImportResult()
        # The longest span imported: a chunk looks back that far for what it overlaps, not to the beginning.
        longest = db.execute("SELECT COALESCE(MAX(end - start), 0) FROM imported").fetchone()[0]
        remaining = iter(spans)
        for chunk in iter(lambda: list(islice(remaining, _CHUNK)), []):
            result.spans += len(chunk)
            for host, host_spans in _by_host(chunk).items():
                new = list(_uncovered(host_spans, _covered(db, host, own, host_spans, current, longest)))
                total_before = sum(span.end_ms - span.start_ms for span in host_spans)
                added = sum(span.end_ms - span.start_ms for span in new)
                result.skipped_seconds += (total_before - added) / 1000
                result.seconds += added / 1000
                with self._db:
                    self._db.executemany(f"INSERT INTO new ({_NEW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                         [(host, span.start_ms, span.end_ms, *astuple(classify(span)))
                                          for span in new])
                self.points += sum(_point_count(span.start_ms, span.end_ms) for span in new)
                result.events += len(new)
                if new:
                    result.hosts.add(host)
        self.events = result.events
        return result

    def write_in_slices(self, outbox: Outbox) -> Iterator[int]:
        """Write the events, their `imported` rows and their points, a slice per transaction; yields the points
        each slice added. ImportStopped when a slice cannot be written after others were."""
        kept, after = 0, 0  # events written; the last row of the scratch file taken

        def take(limit: int) -> list[Any]:
            nonlocal after
            batch = self._db.execute(f"SELECT rowid, {_NEW_COLUMNS} FROM new WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                     (after, limit)).fetchall()
            after = batch[-1][0] if batch else after
            return batch

        def write(batch: Sequence[Any]) -> int:
            nonlocal kept
            hosts_events = [(host, Event(start, (end - start) / 1000, EventData(*data)))
                            for _, host, start, end, *data in batch]

            def in_transaction(db: sqlite3.Connection) -> Iterator[Record]:
                insert_events(db, [event for _, event in hosts_events])
                db.executemany("INSERT INTO imported VALUES (?, ?, ?)",
                               [(host, event.timestamp_ms, round(event.end_ms)) for host, event in hosts_events])
                for host, event in hosts_events:
                    yield from _points(event, host)

            try:
                points = outbox.commit_with(in_transaction)
            except (OutboxFull, StoreUnavailable) as error:
                if not kept:
                    raise
                reason = (f"the outbox filled up meanwhile (outbox_max_rows {outbox.max_rows:,})"
                          if isinstance(error, OutboxFull) else _mid_sentence(str(error)))
                raise ImportStopped(kept, self.events, reason) from None
            kept += len(batch)
            return points

        return in_slices(take, write)

    def __enter__(self) -> _NewTime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._db.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def _mid_sentence(sentence: str) -> str:
    """A sentence to go inside another: no capital first, no full stop."""
    return sentence[:1].lower() + sentence[1:].rstrip(".")


def _point_count(start_ms: int, end_ms: int) -> int:
    """How many points `_points` cuts [start_ms, end_ms) into: one per UTC minute it touches."""
    return (end_ms - 1) // POINT_MS - start_ms // POINT_MS + 1 if end_ms > start_ms else 0


def import_staged(database: Path, staged: StagedExport, categories: Categories, privacy: Privacy, own_host: str,
                  max_rows: int, progress: Progress | None = None, recording: bool = False) -> ImportResult:
    """Import a staged export, combined a day at a time: `import_spans`, with `progress(days done, days)`."""
    result = import_spans(database, combine_by_day(staged.buckets, staged, progress), categories, privacy, own_host,
                          max_rows, recording)
    result.left_out, result.first_left_out = staged.left_out, staged.first_left_out
    return result


def _current_event_start(db: sqlite3.Connection) -> int | None:
    """When the last event tracker recorded itself (not imported) starts: the one a running tracker extends."""
    current = db.execute("SELECT timestamp FROM events WHERE NOT EXISTS (SELECT 1 FROM imported"
                         " WHERE imported.start = events.timestamp) ORDER BY timestamp DESC LIMIT 1").fetchone()
    return None if current is None else current[0]


def _by_host(spans: Iterable[Span]) -> dict[str, list[Span]]:
    """The spans per host tag, each host's in time order."""
    hosts: dict[str, list[Span]] = {}
    for span in spans:
        if span.end_ms > span.start_ms:
            hosts.setdefault(clean_tag(span.host) or "unknown", []).append(span)
    for host_spans in hosts.values():
        host_spans.sort(key=lambda span: span.start_ms)
    return hosts


def _covered(db: sqlite3.Connection, host: str, own: str, spans: list[Span], current: int | None,
             longest: int) -> list[tuple[float, float]]:
    """The time of `host` that the file holds already, merged, in time order: imported for it before, and for
    this machine's own host every event tracker recorded itself (those not imported for another host), and
    while it records, all time from the start of its `current` event on. `longest`: the longest span imported."""
    since, until = spans[0].start_ms, max(span.end_ms for span in spans)
    periods: list[tuple[float, float]] = db.execute(
        "SELECT start, end FROM imported WHERE host = ? AND start >= ? AND start < ? AND end > ?",
        (host, since - longest, until, since)).fetchall()
    if host == own:
        history = covered_periods(db, since, until)
        if history:
            imported_elsewhere = {start for (start,) in db.execute(
                "SELECT start FROM imported WHERE host != ? AND start >= ? AND start < ?",
                (host, history[0][0], until))}
            periods += [(start, end) for start, end in history if start not in imported_elsewhere]
        if current is not None:
            periods.append((current, math.inf))
    merged: list[tuple[float, float]] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _uncovered(spans: list[Span], covered: list[tuple[float, float]]) -> Iterable[Span]:
    """The parts of the (ordered, disjoint) spans outside the covered periods."""
    index = 0
    for span in spans:
        while index < len(covered) and covered[index][1] <= span.start_ms:
            index += 1
        at: float = span.start_ms
        look = index
        while look < len(covered) and covered[look][0] < span.end_ms:
            start, end = covered[look]
            if math.floor(start) > math.ceil(at):
                yield span.retimed(math.ceil(at), math.floor(start))
            at = max(at, end)
            look += 1
        if at < span.end_ms and math.ceil(at) < span.end_ms:
            yield span.retimed(math.ceil(at), span.end_ms)


class _Classifier:
    """A span's event data under the current categories and privacy rules; each distinct window looked up once."""

    def __init__(self, categories: Categories, privacy: Privacy) -> None:
        self.categories = categories
        self.privacy = privacy
        self._known: dict[tuple[str, str | None, str | None, bool, bool], EventData] = {}

    def __call__(self, span: Span) -> EventData:
        key = (span.app, span.title, span.url, span.private, span.away)
        data = self._known.get(key)
        if data is None:
            if len(self._known) >= _CLASSIFIED_KEPT:  # a year's distinct titles would otherwise all stay
                self._known.clear()
            data = self._known[key] = self._classify(span)
        return data

    def _classify(self, span: Span) -> EventData:
        moment = datetime.fromtimestamp(span.start_ms / 1000, tz=timezone.utc)
        # As `tracker run` does: classify the window as it was, then drop what must not be kept, so an excluded
        # site or a title left out keeps the category its title or URL gives it.
        read = seen_private(Sample(moment, span.app, span.title, span.url, private=span.private))
        match = self.categories.classify(read)
        sample = self.privacy.apply(read)
        app = clean_tag(sample.app) or "unknown"
        activity = clean_tag(sample.activity) or app
        if span.away:
            return EventData(app, activity, AWAY, 0.0, clean_text(sample.title), clean_text(sample.url), STATE_AWAY)
        return EventData(app, activity, clean_tag(match.category) or "Uncategorized", float(match.score),
                         clean_text(sample.title), clean_text(sample.url), STATE_ACTIVE)


def _points(event: Event, host: str) -> Iterable[Record]:
    """The event as points, cut at each UTC minute."""
    data = event.data
    start, end = event.timestamp_ms, round(event.end_ms)
    while start < end:
        cut = min(end, (start // POINT_MS + 1) * POINT_MS)
        yield Record(start, (cut - start) / 1000, host, data.app, data.activity, data.category, data.score,
                     data.state, data.title, data.url)
        start = cut


# -- reading an export, and keeping its events on disk while it is combined -----------------------------------

READ_BYTES = 1 << 20  # read from a file at a time


# aw-server has this long to start its answer (it builds the whole export first), then as long again for each
# SERVER_PIECE of it: a server that trickles is given up, a slow network (8 kB/s and more) is not.
SERVER_WAIT = 120.0
SERVER_PIECE = 1 << 20


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    """urllib's, with sockets the current exchange's deadline watches (see tracker.sending.sinks.deadline)."""

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(WatchedHTTPConnection, req)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self) -> None:
        super().__init__()
        self._tls = ssl.create_default_context()

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(WatchedHTTPSConnection, req, context=self._tls)


@contextmanager
def server_export(url: str) -> Iterator[tuple[Iterator[bytes], int | None]]:
    """Every bucket of the aw-server at `url` (its `/api/0/export`): the export's JSON text as it arrives, in
    chunks, and its length when the server says it. ExportError saying what to check when it cannot be read: not
    reached, no answer within SERVER_WAIT, or less than SERVER_PIECE in SERVER_WAIT after that."""
    from urllib.parse import urlsplit

    from tracker.redact import display_url

    parts = urlsplit(url) if "://" in url else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExportError("--server takes aw-server's address, such as http://127.0.0.1:5600; nothing was imported.")
    if "@" in parts.netloc:  # never repeated: it may hold a password
        raise ExportError("aw-server takes no user name or password: give --server as http://HOST:PORT, without"
                          " them; nothing was imported.")
    address = url.rstrip("/") + "/api/0/export"
    url = display_url(url)  # what messages show: no query, nothing unprintable
    wait = SERVER_WAIT

    def unreachable(reason: object) -> ExportError:
        return ExportError(f"Cannot reach the ActivityWatch server at {url} ({reason}): check that aw-server is "
                           "running and the URL is right; nothing was imported.")

    def stopped(reason: object) -> ExportError:
        return ExportError(f"The ActivityWatch server at {url} stopped part-way through the export ({reason}): "
                           "import again; nothing was imported.")

    def chunks(response: http.client.HTTPResponse, exchange: Exchange) -> Iterator[bytes]:
        try:
            while True:
                exchange.renew(wait)  # the time between reads is the reader's own
                chunk = response.read(SERVER_PIECE)
                exchange.renew(None)
                if not chunk:
                    break
                yield chunk
        except (OSError, http.client.HTTPException) as error:
            raise stopped(getattr(error, "reason", None) or type(error).__name__) from None
        if response.length:  # the connection closed before the body it announced was whole
            raise stopped(f"{response.length:,} bytes short")

    answered = False
    try:
        with Exchange(wait) as exchange:
            try:
                response = urllib.request.build_opener(_WatchedHTTPHandler, _WatchedHTTPSHandler).open(
                    address, timeout=wait)
            except urllib.error.HTTPError as error:
                raise ExportError(f"The ActivityWatch server at {url} answered {address} with HTTP {error.code}: "
                                  "check that the URL is aw-server's (e.g. http://127.0.0.1:5600); nothing was "
                                  "imported.") from None
            except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
                reason = getattr(error, "reason", error)
                if isinstance(reason, NotResolvedInTime):
                    raise reason from None  # a TimeoutError, said below
                raise unreachable(reason) from None
            exchange.check()  # headers cut at the deadline are no answer
            answered = True
            with response:
                length = response.headers.get("Content-Length")
                yield chunks(response, exchange), int(length) if length and length.isdigit() else None
    except NotResolvedInTime as error:
        raise unreachable(error.within(wait)) from None
    except TimeoutError:  # the deadline passed: whatever the cut connection raised meanwhile
        if not answered:
            raise ExportError(f"The ActivityWatch server at {url} did not answer within {wait:g} s (aw-server builds "
                              "a large export for a while; a stuck or overloaded one never answers): try again, or "
                              "import a file exported from its web UI; nothing was imported.") from None
        raise ExportError(f"The ActivityWatch server at {url} sent the export too slowly (less than "
                          f"{SERVER_PIECE >> 20} MiB in {wait:g} s): check the server and the network, and import "
                          "again; nothing was imported.") from None


@contextmanager
def file_export(file: str) -> Iterator[tuple[Iterator[bytes], int]]:
    """An export file's text in chunks, and its size; ExportError when it cannot be read."""
    def cannot_read(error: OSError) -> ExportError:
        return ExportError(f"Cannot read {file}: {(error.strerror or str(error)).lower()}.")

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := handle.read(READ_BYTES):
                yield chunk
        except OSError as error:
            raise cannot_read(error) from None

    try:
        handle = open(file, "rb")  # noqa: SIM115 (closed by the `with` below, once the caller is done)
        size = os.fstat(handle.fileno()).st_size
    except OSError as error:
        raise cannot_read(error) from None
    with handle:
        yield chunks(), size


_SCRATCH_PREFIX = ".activitywatch-import-"  # then the importing process's id
# A staged bucket's events overlapping [since, until): parameters from StagedExport._overlapping.
_OVERLAPPING = "bucket = ? AND start >= ? AND start < ? AND end > ?"


def _remove_abandoned_scratch(directory: Path) -> None:
    """An import killed part-way leaves its scratch file behind: the next import removes each one whose
    process is gone (a running import's file is kept)."""
    for path in directory.glob(f"{_SCRATCH_PREFIX}*.db"):
        pid = path.name.removeprefix(_SCRATCH_PREFIX).partition("-")[0]
        if pid.isascii() and pid.isdigit() and len(pid) <= 9 and not process_exists(int(pid)):
            with contextlib.suppress(OSError):
                path.unlink()


def _scratch_database(directory: Path) -> tuple[Path, sqlite3.Connection]:
    """A new scratch SQLite file beside the database, named for this process (see _remove_abandoned_scratch)."""
    _remove_abandoned_scratch(private_dir(directory))
    handle, name = tempfile.mkstemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", suffix=".db", dir=directory)
    os.close(handle)
    connection = sqlite3.connect(name)
    # Only a scratch copy: a crash loses nothing, so no journal and no syncing.
    connection.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-16000;")
    return Path(name), connection




class StagedExport:
    """An export's events kept in a temporary SQLite file beside the database (removed on close), so that
    it can be combined a day at a time: an `EventSource`. Its buckets (with no events) are in `buckets`."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        with self._unavailable():
            self.path, self._db = _scratch_database(directory)
            self._db.execute("CREATE TABLE staged (bucket INTEGER NOT NULL, start INTEGER NOT NULL,"
                             " end INTEGER NOT NULL, data TEXT NOT NULL)")
        self.buckets: list[Bucket] = []
        self.events = 0
        self.left_out = 0  # events with impossible times, left out, and the first of them (see ImportResult)
        self.first_left_out = ""
        self._longest: dict[int, int] = {}  # the longest event of each bucket, in ms
        self._extent: dict[int, tuple[int, int]] = {}

    def read(self, chunks: Iterable[bytes], source: str) -> None:
        """Stage every event of the export's JSON text; ExportError (see `iter_export`) when it is not whole."""
        rows: list[tuple[int, int, int, str]] = []
        number = 0
        dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
        for item in iter_export(chunks, source):
            if isinstance(item, AwEvent):
                rows.append((number, item.start_ms, item.end_ms, dumps(item.data)))
                if len(rows) >= _STAGED_BATCH:
                    self._stage(rows)
                    rows = []
            else:
                self._stage(rows)
                rows = []
                self.buckets.append(item)
                number += 1
                self.left_out += item.left_out
                if item.left_out and not self.first_left_out:
                    self.first_left_out = f"bucket {item.id}, {item.first_left_out}"
        self._stage(rows)
        if self.left_out and not self.events:
            raise ExportError(f"Every event of {source} has an impossible time (before 1970, after 2199, longer than a "
                              f"year, or not a number; the first, in {self.first_left_out}): nothing was imported.")
        with self._unavailable(), self._db:
            self._db.execute("CREATE INDEX staged_bucket_start ON staged (bucket, start)")

    def _stage(self, rows: list[tuple[int, int, int, str]]) -> None:
        if not rows:
            return
        with self._unavailable(), self._db:
            self._db.executemany("INSERT INTO staged VALUES (?, ?, ?, ?)", rows)
        self.events += len(rows)
        bucket = rows[0][0]  # one bucket's rows: staged before the next bucket's
        first, last = self._extent.get(bucket, (rows[0][1], rows[0][2]))
        self._extent[bucket] = (min(first, min(row[1] for row in rows)), max(last, max(row[2] for row in rows)))
        self._longest[bucket] = max(self._longest.get(bucket, 0), max(row[2] - row[1] for row in rows))

    def _unavailable(self) -> AbstractContextManager[None]:
        return unavailable_as(f"keep the export's events in a scratch file in {self._directory}",
                              path=self._directory / "scratch")

    def between(self, bucket: int, since_ms: int, until_ms: int) -> list[AwEvent]:
        known: dict[str, Any] = {}  # equal data decoded once (events of a bucket repeat theirs a lot)
        events = []
        for start, end, data in self._db.execute(f"SELECT start, end, data FROM staged WHERE {_OVERLAPPING}"
                                                 " ORDER BY rowid", self._overlapping(bucket, since_ms, until_ms)):
            decoded = known.get(data)
            if decoded is None:
                decoded = known[data] = json.loads(data)
            events.append(AwEvent(start, end, decoded))
        return events

    def extent(self, buckets: Sequence[int]) -> tuple[int, int] | None:
        extents = [self._extent[bucket] for bucket in buckets if bucket in self._extent]
        if not extents:
            return None
        return min(first for first, _ in extents), max(last for _, last in extents)

    def first_start(self, buckets: Sequence[int], since_ms: int, until_ms: int) -> int | None:
        starts = [row[0] for bucket in buckets for row in self._db.execute(
            f"SELECT MIN(start) FROM staged WHERE {_OVERLAPPING}", self._overlapping(bucket, since_ms, until_ms))
            if row[0] is not None]
        return min(starts, default=None)

    def _overlapping(self, bucket: int, since_ms: int, until_ms: int) -> tuple[int, int, int, int]:
        """The parameters of _OVERLAPPING: an event overlapping the range starts at most the bucket's longest
        event before it (so the index on start bounds the search)."""
        return bucket, since_ms - self._longest.get(bucket, 0), until_ms, since_ms

    def close(self) -> None:
        self._db.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> StagedExport:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
