"""ActivityWatch's data, read into spans of time (pure: no I/O).

An ActivityWatch export (aw-server's `/api/0/export`, or its web UI's "Export all buckets") is
`{"buckets": {id: {"id", "type", "client", "hostname", "created", "events": [{"timestamp", "duration",
"data"}]}}}`. The buckets are combined per host the way ActivityWatch's own summary query does:
window, AFK and tab events are flooded (gaps of up to 5 s filled, as
aw-transform's `flood`), window time inside not-AFK time is active and inside AFK time is away, and while a
browser is in front, the browser extension's tab events (`web.tab.current`) give the URL and title (and a tab
playing sound counts as not AFK, as in ActivityWatch's summary).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

WINDOW = "currentwindow"
AFK = "afkstatus"
WEB = "web.tab.current"
# aw-transform's default: gaps up to this long between events are filled (the watchers poll every few s).
FLOOD_PULSETIME_MS = 5_000
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


class ExportError(ValueError):
    """An export that cannot be read; `str()` is one plain sentence naming the bucket and event."""


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


def read_export(text: str | bytes, source: str) -> list[Bucket]:
    """The buckets of an export's JSON text; ExportError (naming `source`, the bucket and the event) when it
    is not an ActivityWatch export or is cut short."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        where = _where_in_text(raw, error.pos)
        if error.pos >= len(raw.rstrip()) - 1 or error.msg.startswith("Unterminated string"):
            raise ExportError(f"{source} ends early{where} (a truncated download?): export it again from "
                              "ActivityWatch; nothing was imported.") from None
        raise ExportError(f"{source} is not valid JSON{where} (line {error.lineno}, column {error.colno}: "
                          f"{error.msg}); nothing was imported.") from None
    except UnicodeDecodeError:
        raise ExportError(f"{source} is not a text file: give an ActivityWatch export (JSON); nothing was "
                          "imported.") from None
    return parse_export(document, source)


def parse_export(document: object, source: str) -> list[Bucket]:
    """The buckets of an export already parsed from JSON."""
    if not isinstance(document, dict) or not isinstance(document.get("buckets"), dict):
        raise ExportError(f'{source} is not an ActivityWatch export: it has no "buckets" object; nothing was '
                          "imported.")
    return [_bucket(bucket_id, bucket, source) for bucket_id, bucket in document["buckets"].items()]


def _bucket(bucket_id: str, bucket: object, source: str) -> Bucket:
    if not isinstance(bucket, dict):
        raise ExportError(f"In {source}, bucket {bucket_id} is not an object; nothing was imported.")
    events = bucket.get("events", [])
    if not isinstance(events, list):
        raise ExportError(f'In {source}, bucket {bucket_id} has no list of "events"; nothing was imported.')
    parsed = []
    for number, event in enumerate(events, 1):
        try:
            parsed.append(_event(event))
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise ExportError(f"In {source}, event {number:,} of bucket {bucket_id} is malformed "
                              f"({_plain(error)}); nothing was imported.") from None
    hostname = bucket.get("hostname")
    return Bucket(str(bucket.get("id") or bucket_id), str(bucket.get("type") or ""),
                  hostname if isinstance(hostname, str) and hostname else "unknown", parsed)


def _event(event: Any) -> AwEvent:
    if not isinstance(event, dict):
        raise TypeError("not an object")
    start = _timestamp_ms(event["timestamp"])
    duration = event.get("duration", 0)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration):
        raise ValueError(f"duration {duration!r} is not a number of seconds")
    data = event.get("data", {})
    if not isinstance(data, dict):
        raise TypeError("its data is not an object")
    # A negative duration stands for no time (aw-core trims such events too); it never subtracts.
    return AwEvent(start, start + max(0, round(duration * 1000)), data)


def _timestamp_ms(value: object) -> int:
    if not isinstance(value, str):
        raise TypeError(f"timestamp {value!r} is not a date and time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = _older_fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # aw-server writes UTC
    return round(moment.timestamp() * 1000)


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


def _where_in_text(text: str, position: int) -> str:
    """", in bucket X after event N": where in an export's text a position falls, found by the keys before it."""
    before = text[:position]
    bucket_at = max(before.rfind('"events"'), 0)
    found = re.findall(r'"id"\s*:\s*"([^"]*)"', before[:bucket_at]) if bucket_at else []
    if not found:
        return ""
    events = before.count('"timestamp"', bucket_at)
    return f", in bucket {found[-1]} after event {events:,}"


# -- combining buckets into spans ---------------------------------------------------------------------------

def combine(buckets: Iterable[Bucket]) -> list[Span]:
    """Every host's window time as spans, in time order per host: active inside not-AFK time, away inside AFK
    time (all active when a host has no AFK bucket), with the tab's URL and title while a browser is in front.
    """
    by_host: dict[str, dict[str, list[Bucket]]] = {}
    for bucket in buckets:
        if bucket.type in (WINDOW, AFK, WEB):
            by_host.setdefault(bucket.hostname, {}).setdefault(bucket.type, []).append(bucket)
    window_hosts = [host for host, kinds in by_host.items() if WINDOW in kinds]
    # Older browser extensions name no host: their tabs belong to the only host with windows, if there is one.
    if len(window_hosts) == 1:
        for host, kinds in list(by_host.items()):
            if host == "unknown" and WINDOW not in kinds and WEB in kinds:
                by_host[window_hosts[0]].setdefault(WEB, []).extend(kinds.pop(WEB))
    spans: list[Span] = []
    for host in window_hosts:
        spans.extend(_host_spans(host, by_host[host]))
    return spans


def _host_spans(host: str, kinds: dict[str, list[Bucket]]) -> list[Span]:
    windows = flood([event for bucket in kinds[WINDOW] for event in bucket.events])
    tabs = {_browser_of(bucket.id): flood(bucket.events) for bucket in kinds.get(WEB, [])}
    if AFK in kinds:
        afk = flood([event for bucket in kinds[AFK] for event in bucket.events])
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
    for event, start, end in _intersect(windows, away):
        spans.append(Span(host, start, end, str(event.data.get("app") or "unknown"),
                          _text(event.data.get("title")), None, True))
    spans.sort(key=lambda span: span.start_ms)
    return spans


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
    # Binary search: the first tab that ends after `start`.
    low, high = 0, len(tabs)
    while low < high:
        middle = (low + high) // 2
        if tabs[middle].end_ms <= start:
            low = middle + 1
        else:
            high = middle
    for index in range(low, len(tabs)):  # no slice: a copy of the rest for each window made this quadratic
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
