"""InfluxDB line protocol for records, escaped as the reference says.

Values are made safe when a record is built (`clean_tag`, `clean_text`), so what is stored locally is
exactly what InfluxDB will return: the documented replacements happen once, before anything is kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from tracker.model import Record

MEASUREMENT = "activity"
# Longest title or URL kept, in characters; the rest is cut (InfluxDB 1.x caps strings at 64 KB).
TEXT_CAP = 2048
# Longest tag value kept, in characters: tags are indexed, so they stay short.
TAG_CAP = 256

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A lone surrogate (a title read from a broken UTF-16 or undecodable bytes) cannot be encoded: SQLite, the
# terminal and the HTTP body would all raise. It becomes the replacement character.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Line protocol cannot carry a backslash right before a separator or at the end of a tag value:
# the parser reads it as an escape. Such backslashes become '/'.
_TAG_BACKSLASH = re.compile(r"\\+(?=[ ,=]|$)")
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def has_control(text: str) -> bool:
    """Whether `text` holds a character that `clean_text`/`clean_tag` would replace (a C0 or C1 control)."""
    return _CONTROL.search(text) is not None


def clean_text(value: str | None, cap: int = TEXT_CAP) -> str | None:
    """A title or URL as it will be stored: control characters become spaces, cut at `cap`."""
    if value is None:
        return None
    value = _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", value))[:cap]
    return value or None


def clean_tag(value: str | None) -> str:
    """A tag value as it will be stored: no control characters, no unrepresentable backslash, trimmed."""
    if not value:
        return ""
    value = _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", value))[:TAG_CAP].strip()
    return _TAG_BACKSLASH.sub(lambda m: "/" * len(m.group()), value)


def escape_tag(value: str) -> str:
    return value.translate(_TAG_ESCAPES)


def quote_string(value: str) -> str:
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def format_float(value: float) -> str:
    text = repr(float(value))
    return text if text not in ("nan", "inf", "-inf") else "0.0"


@functools.lru_cache(maxsize=1024)
def _tag_text(activity: str, app: str, category: str, host: str, state: str) -> str:
    """A record's tag set, in key order: the same few recur in every point of an event, and in a backlog."""
    items = (("activity", activity), ("app", app), ("category", category), ("host", host), ("state", state))
    return "".join(f",{key}={escape_tag(value)}" for key, value in items if value)


def to_line(record: Record, extra_tags: Mapping[str, str] | None = None) -> str:
    """One point: measurement, sorted non-empty tags (the record's, and `extra_tags`), fields, millisecond
    timestamp."""
    if extra_tags:
        tags = {"activity": record.activity, "app": record.app, "category": record.category, "host": record.host,
                "state": record.state, **extra_tags}
        tag_text = "".join(f",{key}={escape_tag(value)}" for key, value in sorted(tags.items()) if value)
    else:
        tag_text = _tag_text(record.activity, record.app, record.category, record.host, record.state)
    fields = [f"duration={format_float(record.duration)}", f"score={format_float(record.score)}"]
    if record.title:
        fields.append(f"title={quote_string(record.title)}")
    if record.url:
        fields.append(f"url={quote_string(record.url)}")
    return f"{MEASUREMENT}{tag_text} {','.join(fields)} {record.time_ms}"
