"""Importing time recorded elsewhere (ActivityWatch) into the local history and the outbox, in one transaction.

Each span is classified with the current categories (after the privacy rules), becomes one history event,
and goes to InfluxDB through the outbox as points of the usual shape, cut at every UTC minute so that a
dashboard's time buckets get their share of a long event. What was imported is remembered per host, so the
same export imported again adds nothing; for this machine's own host, the time tracker recorded itself wins
(it is in InfluxDB already, sampled every second with tracker's own away detection): imported time only
fills the gaps.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tracker.activitywatch import Span
from tracker.classify import Categories
from tracker.events import Event, EventData
from tracker.history import History, covered_periods, insert_events
from tracker.lineprotocol import clean_tag, clean_text
from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, Record, Sample
from tracker.outbox import Outbox
from tracker.privacy import Privacy
from tracker.store import open_database

# Imported events are cut into points at each UTC minute: a dashboard's hour gets the time that fell in it.
POINT_MS = 60_000
_CHUNK = 10_000  # spans written per statement, and between two progress updates
_SCHEMA = """
CREATE TABLE IF NOT EXISTS imported (
    host TEXT NOT NULL,      -- the host tag the imported time was written with
    start INTEGER NOT NULL,  -- ms since the epoch, UTC: the start of a history event it became
    end INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS imported_host_start ON imported (host, start);
CREATE INDEX IF NOT EXISTS imported_start ON imported (start);
"""

Progress = Callable[[int, int], None]


@dataclass
class ImportResult:
    spans: int = 0  # read from the export
    events: int = 0  # added to the history
    points: int = 0  # added to the outbox
    seconds: float = 0.0  # added
    skipped_seconds: float = 0.0  # there already: imported before, or recorded by tracker itself
    hosts: set[str] = field(default_factory=set)


def import_spans(database: Path, spans: Sequence[Span], categories: Categories, privacy: Privacy, own_host: str,
                 max_rows: int, progress: Progress | None = None, recording: bool = False) -> ImportResult:
    """Add the spans' time not there yet to the history and the outbox, all or nothing. `recording`: a `tracker
    run` records into this file now, so nothing of its own host is imported from its current event on (the event
    grows in its memory before it is written).

    OutboxFull when their points do not fit in the outbox's bound; StoreUnavailable when the file cannot be
    written. Either way nothing is kept."""
    History(database).close()  # the history's tables, if this file has none yet
    with closing(open_database(database, "NORMAL")) as db:
        db.executescript(_SCHEMA)
    result = ImportResult(spans=len(spans))
    own = clean_tag(own_host) or "unknown"

    def write(db: sqlite3.Connection) -> list[Record]:
        records: list[Record] = []
        classify = _Classifier(categories, privacy)
        done = 0
        for host, host_spans in _by_host(spans).items():
            covered = _covered(db, host, own, host_spans, recording)
            new = list(_uncovered(host_spans, covered))
            total_before = sum(span.end_ms - span.start_ms for span in host_spans)
            added = sum(span.end_ms - span.start_ms for span in new)
            result.skipped_seconds += (total_before - added) / 1000
            result.seconds += added / 1000
            for start in range(0, len(new), _CHUNK):
                chunk = new[start:start + _CHUNK]
                events = [Event(span.start_ms, (span.end_ms - span.start_ms) / 1000, classify(span))
                          for span in chunk]
                insert_events(db, events)
                db.executemany("INSERT INTO imported VALUES (?, ?, ?)",
                               [(host, span.start_ms, span.end_ms) for span in chunk])
                records.extend(record for event in events for record in _points(event, host))
                if progress is not None:
                    progress(done + start + len(chunk), len(spans))
            result.events += len(new)
            if new:
                result.hosts.add(host)
            done += len(host_spans)
        if progress is not None:
            progress(len(spans), len(spans))
        return records

    with Outbox(database, max_rows=max_rows) as outbox:
        result.points = outbox.commit_with(write)
    return result


def _by_host(spans: Iterable[Span]) -> dict[str, list[Span]]:
    """The spans per host tag, each host's in time order."""
    hosts: dict[str, list[Span]] = {}
    for span in spans:
        if span.end_ms > span.start_ms:
            hosts.setdefault(clean_tag(span.host) or "unknown", []).append(span)
    for host_spans in hosts.values():
        host_spans.sort(key=lambda span: span.start_ms)
    return hosts


def _covered(db: sqlite3.Connection, host: str, own: str, spans: list[Span],
             recording: bool) -> list[tuple[float, float]]:
    """The time of `host` that the file holds already, merged, in time order: imported for it before, and for
    this machine's own host every event tracker recorded itself (those not imported for another host), and
    while it records, all time from its current event on."""
    since, until = spans[0].start_ms, max(span.end_ms for span in spans)
    periods: list[tuple[float, float]] = db.execute(
        "SELECT start, end FROM imported WHERE host = ? AND start < ? AND end > ?", (host, until, since)).fetchall()
    if host == own:
        history = covered_periods(db, since, until)
        if history:
            imported_elsewhere = {start for (start,) in db.execute(
                "SELECT start FROM imported WHERE host != ? AND start >= ? AND start < ?",
                (host, history[0][0], until))}
            periods += [(start, end) for start, end in history if start not in imported_elsewhere]
        if recording:
            current = db.execute("SELECT timestamp FROM events WHERE NOT EXISTS (SELECT 1 FROM imported"
                                 " WHERE imported.start = events.timestamp) ORDER BY timestamp DESC LIMIT 1").fetchone()
            if current is not None:
                periods.append((current[0], math.inf))
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
                yield _part(span, math.ceil(at), math.floor(start))
            at = max(at, end)
            look += 1
        if at < span.end_ms and math.ceil(at) < span.end_ms:
            yield _part(span, math.ceil(at), span.end_ms)


def _part(span: Span, start: int, end: int) -> Span:
    return Span(span.host, start, end, span.app, span.title, span.url, span.away, span.private)


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
            data = self._known[key] = self._classify(span)
        return data

    def _classify(self, span: Span) -> EventData:
        moment = datetime.fromtimestamp(span.start_ms / 1000, tz=timezone.utc)
        sample = self.privacy.apply(Sample(moment, span.app, span.title, span.url, private=span.private))
        match = self.categories.classify(sample)
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


def fetch_export(url: str, timeout: float = 120.0) -> bytes:
    """Every bucket of the aw-server at `url` (its `/api/0/export`), as the export's JSON text; ExportError
    saying what to check when it cannot be read."""
    import urllib.error
    import urllib.request

    from tracker.activitywatch import ExportError

    address = url.rstrip("/") + "/api/0/export"
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        raise ExportError(f"The ActivityWatch server at {url} answered {address} with HTTP {error.code}: check "
                          "that the URL is aw-server's (e.g. http://127.0.0.1:5600); nothing was imported.") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise ExportError(f"Cannot reach the ActivityWatch server at {url} ({reason}): check that aw-server is "
                          "running and the URL is right; nothing was imported.") from None
