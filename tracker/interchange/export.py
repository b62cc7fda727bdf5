"""The local history as files other tools read (pure: events in, text or JSON-ready data out).

- ActivityWatch: the buckets aw-server's `/api/0/import` accepts, a window bucket (`currentwindow`) with every
  event and an AFK bucket (`afkstatus`) saying which time was away, as ActivityWatch's own watchers record it.
- JSON lines and CSV: one row per event, for spreadsheets and pandas.

With titles off, titles and URLs are left out everywhere.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from tracker.events import Event
from tracker.interchange.activitywatch import TRACKER_CLIENT

EXPORT_FORMATS = ("activitywatch", "jsonl", "csv")  # `tracker export --format`
COLUMNS = ("time", "duration", "app", "activity", "category", "score", "state", "title", "url")
_FORMULA_STARTS = frozenset("=+-@\t\r")
# AFK events closer than this merge into one: tracker's events meet end to start, give or take rounding.
_AFK_JOIN_MS = 1_000


def clipped(events: Iterable[Event], since_ms: int, until_ms: int) -> Iterator[Event]:
    """The events' parts inside [since_ms, until_ms), the empty ones left out."""
    for event in events:
        start, end = max(event.timestamp_ms, since_ms), min(event.end_ms, until_ms)
        if end > start:
            yield Event(start, round((end - start) / 1000, 3), event.data)


def rows(events: Iterable[Event], titles: bool = True) -> Iterator[dict[str, Any]]:
    """One row per event: its start (ISO 8601, UTC), seconds, and what it was."""
    for event in events:
        data = event.data
        yield {"time": _iso(event.timestamp_ms), "duration": event.duration, "app": data.app,
               "activity": data.activity, "category": data.category, "score": data.score, "state": data.state,
               "title": data.title if titles else None, "url": data.url if titles else None}


def jsonl(events: Iterable[Event], titles: bool = True) -> Iterator[str]:
    """JSON lines, one event a line (each ending in a newline)."""
    for row in rows(events, titles):
        yield json.dumps(row, ensure_ascii=False) + "\n"


def csv_lines(events: Iterable[Event], titles: bool = True) -> Iterator[str]:
    """CSV with a header row, lines ending in CRLF as RFC 4180 has it (a CR in a title is then quoted, not read
    as a line break); a missing title or URL is an empty cell, and text a spreadsheet would take for a
    formula starts with an apostrophe (see `spreadsheet_safe`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows(events, titles):
        writer.writerow(["" if row[column] is None else spreadsheet_safe(row[column]) for column in COLUMNS])
        if buffer.tell() > 65_536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def spreadsheet_safe(value: object) -> object:
    """Text as a spreadsheet shows it, not runs it: a window title is chosen by whoever made the page, and one
    starting with =, +, -, @ (or a tab or carriage return before them) is a formula to Excel, LibreOffice and
    Google Sheets (=HYPERLINK, =WEBSERVICE, DDE). Such text gets a leading apostrophe, which they hide; numbers
    stay numbers."""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def activitywatch(events: Iterable[Event], host: str, created: datetime, titles: bool = True) -> dict[str, Any]:
    """The events as an ActivityWatch export of a window and an AFK bucket for `host`."""
    window_events: list[dict[str, Any]] = []
    afk: list[list[Any]] = []  # [start ms, end ms, status]
    for event in events:
        data = event.data
        window: dict[str, Any] = {"app": data.app, "title": (data.title or "") if titles else ""}
        if titles and data.url:
            window["url"] = data.url
        window_events.append({"timestamp": _iso(event.timestamp_ms), "duration": event.duration, "data": window})
        status = "not-afk" if data.active else "afk"
        end = event.end_ms
        if afk and afk[-1][2] == status and event.timestamp_ms <= afk[-1][1] + _AFK_JOIN_MS:
            afk[-1][1] = max(afk[-1][1], end)
        else:
            afk.append([event.timestamp_ms, end, status])
    stamp = created.astimezone(timezone.utc).isoformat()
    window_id, afk_id = f"aw-watcher-window_{host}", f"aw-watcher-afk_{host}"
    return {"buckets": {
        window_id: {"id": window_id, "created": stamp, "name": None, "type": "currentwindow", "client": TRACKER_CLIENT,
                    "hostname": host, "events": window_events},
        afk_id: {"id": afk_id, "created": stamp, "name": None, "type": "afkstatus", "client": TRACKER_CLIENT,
                 "hostname": host,
                 "events": [{"timestamp": _iso(start), "duration": round((end - start) / 1000, 3),
                             "data": {"status": status}} for start, end, status in afk]},
    }}


def _iso(moment_ms: float) -> str:
    return datetime.fromtimestamp(moment_ms / 1000, tz=timezone.utc).isoformat()
