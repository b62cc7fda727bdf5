"""ActivityWatch's data, read into spans of time (pure: no I/O).

An ActivityWatch export (aw-server's `/api/0/export`, or its web UI's "Export all buckets") is
`{"buckets": {id: {"id", "type", "client", "hostname", "created", "events": [{"timestamp", "duration",
"data"}]}}}`. The buckets are combined per host the way ActivityWatch's own summary query does: window,
AFK and tab events are flooded (gaps of up to 5 s filled, as aw-transform's `flood`; not those of tracker's own
export, whose gaps are time nothing was recorded, so that a round trip through `tracker export` gives back
exactly what was recorded), window time inside not-AFK time is active and inside AFK time is away, and while a
browser is in front, the browser extension's tab events (`web.tab.current`) give the URL and title (and a tab
playing sound counts as not AFK, as in ActivityWatch's summary).
"""

from __future__ import annotations

import bisect
import codecs
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Protocol

from tracker import PlainError

WINDOW = "currentwindow"
AFK = "afkstatus"
WEB = "web.tab.current"
# aw-transform's default: gaps up to this long between events are filled (the watchers poll every few s).
FLOOD_PULSETIME_MS = 5_000
# The `client` of the buckets `tracker export` writes.
TRACKER_CLIENT = "tracker"
# The app names a browser's window has on each platform, by the name its extension's bucket carries
# (aw-watcher-web-<browser>), as in aw-webui's queries.
BROWSER_APPS = {
    "chrome": ("google chrome", "google-chrome", "chrome.exe", "google-chrome-stable", "chromium",
               "chromium-browser", "chromium.exe", "chromium-browser-chromium"),
    "firefox": ("firefox", "firefox.exe", "firefox developer edition", "firefoxdeveloperedition",
                "firefox-developer-edition", "firefox beta", "nightly", "firefox-esr", "librewolf"),
    "opera": ("opera", "opera.exe"),
    "brave": ("brave", "brave-browser", "brave.exe", "brave browser"),
    "edge": ("microsoft edge", "msedge", "msedge.exe", "microsoft-edge"),
    "vivaldi": ("vivaldi", "vivaldi-stable", "vivaldi.exe"),
    "safari": ("safari",),
    "arc": ("arc",),
}
ALL_BROWSER_APPS = frozenset(app for apps in BROWSER_APPS.values() for app in apps)
_WEB_BUCKET = re.compile(r"aw-watcher-web-([a-z]+)", re.IGNORECASE)
_ISO_PARTS = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(\.\d+)?([Zz]|[+-]\d\d:?\d\d)?$")


# The times an event may have: from 1970 to the end of 2199 (as `tracker report` takes them), lasting at most a
# year. Others cannot be what a watcher recorded (a clock at year 1, a duration of 1e11 s, NaN): they are left out
# and counted, and never walked through a day at a time.
EARLIEST_MS = 0
LATEST_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z
LONGEST_EVENT_MS = 366 * 86_400_000
# An event's data is a flat object (app, title, url, status); nested deeper than this it is no watcher's.
DATA_DEPTH = 32


class ExportError(PlainError, ValueError):
    """An export that cannot be read; `str()` is one plain sentence naming the bucket and event."""


class ImpossibleTime(Exception):
    """An event's time is outside what a watcher can record (see LATEST_MS); `str()` says how, in a few words."""


@dataclass(frozen=True, slots=True)
class AwEvent:
    start_ms: int
    end_ms: int
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Bucket:
    id: str
    type: str
    hostname: str
    events: list[AwEvent]
    client: str = ""  # what wrote it: aw-watcher-window, aw-watcher-afk, ..., or TRACKER_CLIENT
    left_out: int = 0  # events with impossible times (see ImpossibleTime), not among `events`
    first_left_out: str = ""  # the first of them, for a message: "event 3: it starts in year 1"


@dataclass(frozen=True, slots=True)
class Span:
    """Time on one host with one app (and title and URL), active or away: what becomes one history event."""

    host: str
    start_ms: int
    end_ms: int
    app: str
    title: str | None
    url: str | None
    away: bool
    private: bool = False  # an incognito tab: the title and URL are dropped before anything is kept

    def retimed(self, start_ms: int, end_ms: int) -> Span:
        """The same time's kind between other moments."""
        return Span(self.host, start_ms, end_ms, self.app, self.title, self.url, self.away, self.private)


def read_export(text: str | bytes, source: str) -> list[Bucket]:
    """The buckets of an export's JSON text, with their events, all in memory (for a small export: a large one
    goes through `iter_export`). ExportError as `iter_export`'s."""
    buckets: list[Bucket] = []
    events: list[AwEvent] = []
    for item in iter_export([text], source):
        if isinstance(item, AwEvent):
            events.append(item)
        else:
            buckets.append(Bucket(item.id, item.type, item.hostname, events, item.client, item.left_out,
                                  item.first_left_out))
            events = []
    return buckets


def iter_export(chunks: Iterable[str | bytes], source: str) -> Iterator[AwEvent | Bucket]:
    """An export's events as its JSON text arrives in chunks, never holding the whole: each bucket's events in
    the export's order, then the bucket itself (with no events: its id, type and hostname may come after them).
    ExportError (naming `source`, the bucket and the event) when it is not an ActivityWatch export, is not
    JSON, or is cut short; some events may have been given before it."""
    return _ExportReader(chunks, source).read()


_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A JSON error this close to the end of the text read so far may only mean the value goes on in the next chunk.
_NEAR_END = 64
# A single value longer than this (other than a bucket's events, which are read one by one) is not waited for.
_LONGEST_VALUE = 64 << 20


class _EndOfText(Exception):
    """The text ended where the export's structure needs more."""


class _ExportReader:
    """A recursive-descent reader of the export's outer structure (objects of buckets, lists of events) over
    text arriving in chunks; each event, and every other value, is decoded whole by the json module's scanner."""

    def __init__(self, chunks: Iterable[str | bytes], source: str) -> None:
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.source = source
        self.text = ""  # what is read and not yet let go of
        self.at = 0  # the position in `text` the reader is at
        self.ended = False  # no more chunks
        self._line, self._column = 1, 1  # where `text` starts in the whole export
        self.bucket: str | None = None  # the bucket being read, and how many of its events are read
        self.events = 0
        self.left_out = 0  # of its events, those with impossible times, and the first of them
        self.first_left_out = ""

    def read(self) -> Iterator[AwEvent | Bucket]:
        try:
            yield from self._document()
        except json.JSONDecodeError as error:
            if self.ended and (error.pos >= len(self.text.rstrip()) - 1
                               or error.msg.startswith("Unterminated string")):
                raise self._ends_early() from None
            line, column = self._line_and_column(error.pos)
            raise ExportError(f"{self.source} is not valid JSON{self._where()} (line {line}, column {column}: "
                              f"{error.msg}); nothing was imported.") from None
        except _EndOfText:
            raise self._ends_early() from None
        except UnicodeDecodeError:
            raise ExportError(f"{self.source} is not a text file: give an ActivityWatch export (JSON); nothing "
                              "was imported.") from None

    def _where(self) -> str:
        """Where in the export the reader is, for a message: ", in bucket X after event N", or ""."""
        return f", in bucket {self.bucket} after event {self.events:,}" if self.bucket is not None else ""

    def _ends_early(self) -> ExportError:
        return ExportError(f"{self.source} ends early{self._where()} (a truncated download?): export it again from "
                           "ActivityWatch; nothing was imported.")

    def _not_an_export(self) -> ExportError:
        return ExportError(f'{self.source} is not an ActivityWatch export: it has no "buckets" object; nothing was '
                           "imported.")

    # -- the export's structure ---------------------------------------------------------------------------

    def _document(self) -> Iterator[AwEvent | Bucket]:
        if self._next() != "{":
            raise self._not_an_export()
        self.at += 1
        found = False
        for key in self._members():
            if key == "buckets" and self._next() == "{":
                self.at += 1
                found = True
                yield from self._buckets()
            else:
                self._value()
        if self._peek() != "":
            raise json.JSONDecodeError("Extra data", self.text, self.at)
        if not found:
            raise self._not_an_export()

    def _buckets(self) -> Iterator[AwEvent | Bucket]:
        for key in self._members():
            self.bucket, self.events, self.left_out, self.first_left_out = key, 0, 0, ""
            if self._next() != "{":
                raise ExportError(f"In {self.source}, bucket {key} is not an object; nothing was imported.")
            self.at += 1
            fields: dict[str, object] = {}
            for field in self._members():
                if field == "events" and self._next() == "[":
                    self.at += 1
                    yield from self._events(key)
                else:
                    fields[field] = self._value()
            if "events" in fields:
                raise ExportError(f'In {self.source}, bucket {key} has no list of "events"; nothing was imported.')
            hostname, client = fields.get("hostname"), fields.get("client")
            yield Bucket(str(fields.get("id") or key), str(fields.get("type") or ""),
                         hostname if isinstance(hostname, str) and hostname else "unknown", [],
                         client if isinstance(client, str) else "", self.left_out, self.first_left_out)
            self.bucket = None

    def _events(self, bucket: str) -> Iterator[AwEvent]:
        """The events of a list just opened, read one by one."""
        if self._next() == "]":
            self.at += 1
            return
        while True:
            raw = self._value()
            self.events += 1
            event: AwEvent | None = None
            try:
                event = _event(raw)
            except ImpossibleTime as error:
                self.left_out += 1
                self.first_left_out = self.first_left_out or f"event {self.events:,}: {error}"
            except (TypeError, ValueError, KeyError, OverflowError) as error:
                raise ExportError(f"In {self.source}, event {self.events:,} of bucket {bucket} is malformed "
                                  f"({_plain(error)}); nothing was imported.") from None
            if event is not None:
                yield event
            if not self._another("]"):
                return

    def _members(self) -> Iterator[str]:
        """The keys of an object just opened, each given when the reader is at its value; at the end, past the
        object."""
        if self._next() == "}":
            self.at += 1
            return
        while True:
            at = self.at
            key = self._value()
            if not isinstance(key, str):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", self.text, at)
            if self._next() != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", self.text, self.at)
            self.at += 1
            yield key
            if not self._another("}"):
                return

    def _another(self, closing: str) -> bool:
        """After an item of a list or an object: True past a comma, False past the `closing` bracket."""
        after = self._next()
        self.at += 1
        if after == closing:
            return False
        if after != ",":
            raise json.JSONDecodeError("Expecting ',' delimiter", self.text, self.at - 1)
        return True

    # -- the text ---------------------------------------------------------------------------------------------

    def _value(self) -> Any:
        """The next JSON value, whole, reading more of the text while it may go on."""
        self._next()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.at)
            except json.JSONDecodeError as error:
                may_go_on = error.pos >= len(self.text) - _NEAR_END or error.msg.startswith("Unterminated string")
                if self.ended or not may_go_on or len(self.text) - self.at > _LONGEST_VALUE:
                    raise
            except RecursionError:  # the json module's scanner recurses once per level
                raise ExportError(f"{self.source} nests lists or objects too deeply{self._where()} (about a thousand "
                                  "levels or more; an ActivityWatch export has a few): nothing was imported.") from None
            except ValueError:  # not JSON's error: an integer longer than Python converts (4,300 digits)
                raise ExportError(f"{self.source} holds a number thousands of digits long{self._where()}, which no "
                                  "ActivityWatch export does: nothing was imported.") from None
            else:
                if end < len(self.text) or self.ended:  # a number at the very end may go on
                    self.at = end
                    return value
            self._more()

    def _next(self) -> str:
        """The next character that is not white space; _EndOfText when there is none."""
        char = self._peek()
        if not char:
            raise _EndOfText
        return char

    def _peek(self) -> str:
        """The next character that is not white space, or "" at the end of the text."""
        while True:
            match = _WHITESPACE.match(self.text, self.at)
            assert match is not None  # it matches the empty string
            self.at = match.end()
            if self.at < len(self.text):
                return self.text[self.at]
            if not self._more():
                return ""

    def _more(self) -> bool:
        """Read the next chunk, letting go of the text before the reader; False at the end."""
        piece = ""
        while not piece:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.ended = True
                try:
                    piece = self._decoder.decode(b"", final=True)
                except UnicodeDecodeError:  # cut inside a character: the text ends early
                    piece = ""
                break
            piece = chunk if isinstance(chunk, str) else self._decoder.decode(chunk)
        gone = self.text[:self.at]
        newlines = gone.count("\n")
        if newlines:
            self._line, self._column = self._line + newlines, len(gone) - gone.rfind("\n")
        else:
            self._column += len(gone)
        self.text = self.text[self.at:] + piece
        self.at = 0
        return bool(piece)

    def _line_and_column(self, position: int) -> tuple[int, int]:
        before = self.text[:position]
        newlines = before.count("\n")
        if newlines:
            return self._line + newlines, position - before.rfind("\n")
        return self._line, self._column + position


def _event(event: Any) -> AwEvent:
    """The event; ImpossibleTime when its time cannot be a watcher's, TypeError, ValueError or KeyError when it
    is no event."""
    if not isinstance(event, dict):
        raise TypeError("not an object")
    start = _timestamp_ms(event["timestamp"])
    duration = event.get("duration", 0)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise ValueError(f"duration {duration!r} is not a number of seconds")
    data = event.get("data", {})
    if not isinstance(data, dict):
        raise TypeError("its data is not an object")
    if _nests_deeper(data, DATA_DEPTH):  # comparing, storing or reading it again would recurse as deep
        raise ValueError(f"its data nests more than {DATA_DEPTH} levels deep")
    try:
        seconds = float(duration)
    except OverflowError:  # an integer of hundreds of digits
        seconds = math.inf if duration > 0 else -math.inf
    if not math.isfinite(seconds):  # also JSON's NaN and Infinity
        raise ImpossibleTime(f"it lasts {seconds!r} seconds")
    if seconds > LONGEST_EVENT_MS / 1000:
        raise ImpossibleTime(f"it lasts {seconds:.3g} seconds, more than a year")
    # A negative duration stands for no time (aw-core trims such events too); it never subtracts.
    length_ms = round(seconds * 1000) if seconds > 0 else 0
    if start + length_ms > LATEST_MS:
        raise ImpossibleTime(f"it ends after 2199 ({event['timestamp']!r} and {seconds:.3g} seconds)")
    return AwEvent(start, start + length_ms, data)


def _nests_deeper(value: object, levels: int) -> bool:
    """Whether lists and objects nest more than `levels` deep in `value` (looked at without recursing)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        inner = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if inner is None:
            continue
        if depth > levels:
            return True
        stack.extend((child, depth + 1) for child in inner if isinstance(child, (dict, list)))
    return False


def _timestamp_ms(value: object) -> int:
    if not isinstance(value, str):
        raise TypeError(f"timestamp {value!r} is not a date and time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = _older_fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # aw-server writes UTC
    try:
        milliseconds = round(moment.timestamp() * 1000)
    except (OverflowError, ValueError):  # beyond what a datetime holds, once its offset is applied
        milliseconds = -1
    if milliseconds < EARLIEST_MS:
        raise ImpossibleTime(f"it starts before 1970 ({value!r})")
    return milliseconds


def _older_fromisoformat(value: str) -> datetime:
    """What Python 3.11's fromisoformat reads and 3.10's does not: a Z, and other than 3 or 6 digits of fraction
    (aw-server-rust writes nanoseconds)."""
    match = _ISO_PARTS.match(value)
    if match is None:
        raise ValueError(f"timestamp {value!r} is not an ISO 8601 date and time")
    whole, fraction, zone = match.groups()
    fraction = (fraction or ".")[1:7].ljust(6, "0")
    try:
        return datetime.fromisoformat(f"{whole}.{fraction}{'+00:00' if zone in (None, 'Z', 'z') else zone}")
    except ValueError:
        raise ValueError(f"timestamp {value!r} is not an ISO 8601 date and time") from None


def _plain(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"it has no {error.args[0]!r}"
    return str(error)


# -- combining buckets into spans ---------------------------------------------------------------------------

def combine(buckets: Iterable[Bucket]) -> list[Span]:
    """Every host's window time as spans, in time order per host: active inside not-AFK time, away inside AFK
    time (all active when a host has no AFK bucket), with the tab's URL and title while a browser is in front.
    """
    listed = list(buckets)
    spans: list[Span] = []
    for host, kinds in _hosts(listed).items():
        spans.extend(_host_spans(host, {kind: [listed[number] for number in numbers]
                                        for kind, numbers in kinds.items()}))
    return spans


def _hosts(buckets: Sequence[Bucket]) -> dict[str, dict[str, list[int]]]:
    """The hosts with window buckets, each with the positions of its buckets of each kind in `buckets`."""
    by_host: dict[str, dict[str, list[int]]] = {}
    for number, bucket in enumerate(buckets):
        if bucket.type in (WINDOW, AFK, WEB):
            by_host.setdefault(bucket.hostname, {}).setdefault(bucket.type, []).append(number)
    window_hosts = [host for host, kinds in by_host.items() if WINDOW in kinds]
    # Older browser extensions name no host: their tabs belong to the only host with windows, if there is one.
    if len(window_hosts) == 1:
        for host, kinds in list(by_host.items()):
            if host == "unknown" and WINDOW not in kinds and WEB in kinds:
                by_host[window_hosts[0]].setdefault(WEB, []).extend(kinds.pop(WEB))
    return {host: by_host[host] for host in window_hosts}


# -- combining a day at a time --------------------------------------------------------------------------------

DAY_MS = 86_400_000
# Each day is combined from the events within this much of it (and any event overlapping that): flooding
# and overlaps reach at most a few seconds beyond an event, so the day's part comes out as from all events.
MARGIN_MS = 3_600_000
# How far back a day looks for events that cut short a long event overlapping it. Only a bucket whose events
# overlap each other has any (a watcher's do not), and a broken one could have a year-long event: memory stays
# bounded by this, at the cost of exactness for an event that long cut short that far back.
LOOK_BACK_MS = 7 * DAY_MS
_NEVER = 2 ** 62


class EventSource(Protocol):
    """The events of an export's buckets (by their position in its list), kept elsewhere than in memory."""

    def between(self, bucket: int, since_ms: int, until_ms: int) -> list[AwEvent]:
        """The bucket's events overlapping [since_ms, until_ms), in the export's order."""

    def extent(self, buckets: Sequence[int]) -> tuple[int, int] | None:
        """The first start and the last end of the buckets' events; None when they have none."""

    def first_start(self, buckets: Sequence[int], since_ms: int, until_ms: int) -> int | None:
        """The earliest start of the buckets' events overlapping [since_ms, until_ms); None when none does."""


def combine_by_day(buckets: Sequence[Bucket], source: EventSource,
                   progress: Callable[[int, int], None] | None = None) -> Iterator[Span]:
    """`combine`'s spans, computed a UTC day per host at a time from events kept in `source` (the buckets'
    own `events` are not used), so that memory holds one day's events. A span crossing midnight comes out
    whole, as from `combine`. `progress(days done, days)`."""
    hosts = _hosts(buckets)
    extents = {host: source.extent(kinds[WINDOW]) for host, kinds in hosts.items()}
    days = sum(-(-extent[1] // DAY_MS) - extent[0] // DAY_MS for extent in extents.values() if extent)
    done = 0
    for host, kinds in hosts.items():
        extent = extents[host]
        if extent is None:
            continue
        day, last_day = extent[0] // DAY_MS * DAY_MS, -(-extent[1] // DAY_MS) * DAY_MS
        held: Span | None = None  # the day's last span: the next day's first may continue it
        while day < last_day:
            in_reach = {kind: _in_reach(buckets, numbers, source, day) for kind, numbers in kinds.items()}
            for span in _host_spans(host, in_reach):
                start, end = max(span.start_ms, day), min(span.end_ms, day + DAY_MS)
                if end <= start:
                    continue
                if held is not None and held.end_ms == start == day and _same_but_time(held, span):
                    held = held.retimed(held.start_ms, end)
                    continue
                if held is not None:
                    yield held
                held = span if (start, end) == (span.start_ms, span.end_ms) else span.retimed(start, end)
            following = day + DAY_MS
            if not any(event.end_ms > following for bucket in in_reach[WINDOW] for event in bucket.events):
                # No window time goes on into the next day: go on at the day of the next window event.
                upcoming = source.first_start(kinds[WINDOW], following, _NEVER)
                following = last_day if upcoming is None else max(following, upcoming // DAY_MS * DAY_MS)
            following = min(following, last_day)
            done += (following - day) // DAY_MS
            if progress is not None:
                progress(done, days)
            day = following
        if held is not None:
            yield held


def _in_reach(buckets: Sequence[Bucket], numbers: list[int], source: EventSource, day: int) -> list[Bucket]:
    """The buckets (of one kind) with their events that can shape the day's part of their flooded events: those
    within MARGIN_MS of the day, and those since the start of an event that overlaps it from earlier on (a later
    event that overlaps it cuts it short: the rest is lost, as with aw-transform), up to LOOK_BACK_MS back."""
    since, until = day - MARGIN_MS, day + DAY_MS + MARGIN_MS
    earliest = source.first_start(numbers, since, until)
    if earliest is not None and earliest < since:
        since = max(earliest, day - LOOK_BACK_MS) - MARGIN_MS
    return [replace(buckets[number], events=source.between(number, since, until)) for number in numbers]


def _same_but_time(first: Span, second: Span) -> bool:
    return (first.host, first.app, first.title, first.url, first.away, first.private) == (
        second.host, second.app, second.title, second.url, second.away, second.private)


def _host_spans(host: str, kinds: dict[str, list[Bucket]]) -> list[Span]:
    windows = _flooded(kinds[WINDOW])
    tabs = {_browser_of(bucket.id): _flooded([bucket]) for bucket in kinds.get(WEB, [])}
    if AFK in kinds:
        afk = _flooded(kinds[AFK])
        # As ActivityWatch's summary: time a browser in front plays sound in its tab counts as not AFK.
        audible = _audible_in_front(windows, tabs)
        active = _union(_periods(event for event in afk if event.data.get("status") == "not-afk"), audible)
        away = _minus(_periods(event for event in afk if event.data.get("status") == "afk"), audible)
    else:
        active, away = _periods(windows), []
    spans = []
    for event, start, end in _intersect(windows, active):
        app = str(event.data.get("app") or "unknown")
        title = _text(event.data.get("title"))
        browser = _browser_for(app, tabs)
        if browser is None:
            spans.append(Span(host, start, end, app, title, _text(event.data.get("url")), False))
            continue
        spans.extend(_with_tabs(host, app, title, start, end, tabs[browser]))
    for event, start, end in _intersect(windows, away):  # a URL only in tracker's own export: kept, as recorded
        spans.append(Span(host, start, end, str(event.data.get("app") or "unknown"),
                          _text(event.data.get("title")), _text(event.data.get("url")), True))
    spans.sort(key=lambda span: span.start_ms)
    return spans


def _flooded(buckets: list[Bucket]) -> list[AwEvent]:
    """The buckets' events flooded: ActivityWatch's watchers poll every few seconds, so a gap that short is time
    they missed; tracker's own export is its history as recorded, and a gap in it is time that was not."""
    own = all(bucket.client == TRACKER_CLIENT for bucket in buckets)
    return flood([event for bucket in buckets for event in bucket.events], 0 if own else FLOOD_PULSETIME_MS)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _browser_of(bucket_id: str) -> str:
    match = _WEB_BUCKET.match(bucket_id)
    return match.group(1).lower() if match else ""


def _browser_for(app: str, tabs: dict[str, list[AwEvent]]) -> str | None:
    """Which browser's tab events belong to the window of `app`; None when it is no browser (or its extension
    left no bucket)."""
    name = app.lower()
    if name not in ALL_BROWSER_APPS:
        return None
    for browser in tabs:
        if name in BROWSER_APPS.get(browser, ALL_BROWSER_APPS):
            return browser
    return None


def _audible_in_front(windows: list[AwEvent], tabs: dict[str, list[AwEvent]]) -> list[tuple[int, int]]:
    """The periods a tab played sound while its browser's window was in front."""
    parts = []
    for browser, events in tabs.items():
        in_front = [window for window in windows if _browser_for(str(window.data.get("app") or ""), tabs) == browser]
        sounding = _periods(event for event in events if event.data.get("audible") is True)
        parts += [AwEvent(start, end, {}) for _, start, end in _intersect(in_front, sounding)]
    return _periods(parts)


def _union(first: list[tuple[int, int]], second: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return _periods(AwEvent(start, end, {}) for start, end in [*first, *second])


def _minus(periods: list[tuple[int, int]], taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the (sorted, disjoint) periods outside the (sorted, disjoint) taken ones."""
    left = []
    index = 0
    for start, end in periods:
        while index < len(taken) and taken[index][1] <= start:
            index += 1
        at, look = start, index
        while look < len(taken) and taken[look][0] < end:
            if taken[look][0] > at:
                left.append((at, taken[look][0]))
            at = max(at, taken[look][1])
            look += 1
        if at < end:
            left.append((at, end))
    return left


def _with_tabs(host: str, app: str, title: str | None, start: int, end: int, tabs: list[AwEvent]) -> list[Span]:
    """[start, end) of a browser window: the parts its tab events cover carry their URL and title."""
    spans = []
    at = start
    # The first tab that ends after `start` (the tabs are flooded: in time order, not overlapping, so their ends rise).
    first = bisect.bisect_right(tabs, start, key=lambda tab: tab.end_ms)
    for index in range(first, len(tabs)):  # no slice: a copy of the rest for each window made this quadratic
        tab = tabs[index]
        if tab.start_ms >= end:
            break
        tab_start, tab_end = max(tab.start_ms, at), min(tab.end_ms, end)
        if tab_start > at:
            spans.append(Span(host, at, tab_start, app, title, None, False))
        if tab_end > tab_start:
            spans.append(Span(host, tab_start, tab_end, app, _text(tab.data.get("title")),
                              _text(tab.data.get("url")), False, tab.data.get("incognito") is True))
            at = tab_end
    if at < end:
        spans.append(Span(host, at, end, app, title, None, False))
    return spans


def flood(events: list[AwEvent], pulsetime_ms: int = FLOOD_PULSETIME_MS) -> list[AwEvent]:
    """aw-transform's flood: gaps up to `pulsetime_ms` are filled (equal data merges across them, differing data
    meets at the midpoint); overlaps end with the later event winning. Non-overlapping, in time order."""
    ordered = sorted(events, key=lambda e: (e.start_ms, e.end_ms - e.start_ms))
    starts: list[float] = [e.start_ms for e in ordered]
    ends: list[float] = [e.end_ms for e in ordered]
    for i in range(len(ordered) - 1):
        gap = starts[i + 1] - ends[i]
        if gap == 0:
            continue
        same = ordered[i].data == ordered[i + 1].data
        if gap < 0 and same:
            start, end = min(starts[i], starts[i + 1]), max(ends[i], ends[i + 1])
            starts[i], ends[i] = start, end
            starts[i + 1] = ends[i + 1] = end
        elif -100 < gap <= pulsetime_ms:
            if same:
                if ends[i] - starts[i] >= ends[i + 1] - starts[i + 1]:
                    ends[i] = ends[i + 1]
                    starts[i + 1] = ends[i + 1]
                else:
                    starts[i + 1] = starts[i]
                    ends[i] = starts[i]
            else:
                middle = ends[i] + gap / 2
                ends[i] = starts[i + 1] = middle
    floods = [AwEvent(round(start), round(end), e.data) for e, start, end in zip(ordered, starts, ends, strict=True)]
    return _non_overlapping([e for e in floods if e.end_ms > e.start_ms])


def _non_overlapping(events: list[AwEvent]) -> list[AwEvent]:
    """Events in time order with overlaps removed: equal data merges, otherwise the later event wins."""
    kept: list[AwEvent] = []
    for event in events:
        while kept and kept[-1].end_ms > event.start_ms:
            previous = kept[-1]
            if previous.data == event.data:
                kept[-1] = AwEvent(previous.start_ms, max(previous.end_ms, event.end_ms), previous.data)
                break
            if event.start_ms <= previous.start_ms:
                kept.pop()
                continue
            kept[-1] = AwEvent(previous.start_ms, event.start_ms, previous.data)
            kept.append(event)
            break
        else:
            kept.append(event)
    return kept


def _periods(events: Iterable[AwEvent]) -> list[tuple[int, int]]:
    """The union of the events' times, as sorted, disjoint [start, end) periods."""
    merged: list[tuple[int, int]] = []
    for event in sorted(events, key=lambda e: e.start_ms):
        if event.end_ms <= event.start_ms:
            continue
        if merged and event.start_ms <= merged[-1][1]:
            if event.end_ms > merged[-1][1]:
                merged[-1] = (merged[-1][0], event.end_ms)
        else:
            merged.append((event.start_ms, event.end_ms))
    return merged


def _intersect(events: list[AwEvent], periods: list[tuple[int, int]]) -> list[tuple[AwEvent, int, int]]:
    """Each part of the (non-overlapping, ordered) events inside the periods: (event, start, end)."""
    parts = []
    index = 0
    for event in events:
        while index < len(periods) and periods[index][1] <= event.start_ms:
            index += 1
        look = index
        while look < len(periods) and periods[look][0] < event.end_ms:
            start, end = max(event.start_ms, periods[look][0]), min(event.end_ms, periods[look][1])
            if end > start:
                parts.append((event, start, end))
            look += 1
    return parts
