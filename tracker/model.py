"""The event model: what a source reads (Sample) and what is stored and sent (Record).

Kept small and exact, like ActivityWatch's aw-core: every other module speaks these two types.
`Restamp` (with `restamped` and `moved_span`) moves the records stamped while the clock was ahead back to their
real time: the recorder makes it, the outbox and the history apply it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache
from urllib.parse import urlsplit

# A scheme with no authority part (about:blank, mailto:x, data:...): such URLs name no site.
# "host:8080/path" is not one: digits follow its colon.
_OPAQUE_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:(?![0-9/])")
_WEB_SCHEMES = ("", "http", "https")

UNCATEGORIZED = "Uncategorized"
AWAY = "Away"
STATE_ACTIVE = "active"
STATE_AWAY = "away"


@dataclass(frozen=True, slots=True)
class Sample:
    """What one platform read says about the foreground, at one moment."""

    time: datetime  # UTC, timezone-aware, taken when the sample was read
    app: str
    title: str | None = None
    url: str | None = None
    # True for private/incognito windows: the source has already dropped title and url.
    private: bool = False
    # Seconds since the last keyboard/mouse input, when the platform can tell cheaply.
    idle_seconds: float | None = None
    # True when the screen is locked (counts as away).
    locked: bool = False

    @property
    def activity(self) -> str:
        """The site for a browser tab, otherwise the app."""
        return url_host(self.url) or self.app

    def without_details(self) -> Sample:
        """The app only: what privacy rules leave of a sample."""
        return replace(self, title=None, url=None)


@dataclass(frozen=True, slots=True)
class Record:
    """One classified sample: a row of the outbox and one point in InfluxDB."""

    time_ms: int  # milliseconds since the epoch, UTC
    duration: float  # seconds this sample stands for
    host: str
    app: str
    activity: str
    category: str
    score: float
    state: str = STATE_ACTIVE
    title: str | None = None
    url: str | None = None

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.time_ms / 1000, tz=timezone.utc)


@lru_cache(maxsize=64)  # asked up to four times per sample (activity, classification, privacy) for one URL
def url_host(url: str | None) -> str | None:
    """The host of a URL, lower-case and without a leading 'www.'; None when there is none."""
    if not url or ("//" not in url and _OPAQUE_URL.match(url)):
        return None
    try:
        parts = urlsplit(url if "//" in url else "//" + url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in _WEB_SCHEMES:  # chrome://settings, file://, extensions: not a site
        return None
    if not host:
        return None
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# -- the clock set back: records moved back to their real time (see tracker.recording.recorder) ------------------

@dataclass(frozen=True)
class Restamp:
    """Records of this run stamped from `first_ms` to `last_ms` (inclusive) move by `shift_ms` (never > 0)."""

    first_ms: int
    last_ms: int
    shift_ms: int

    def apply(self, time_ms: int) -> int:
        return time_ms + self.shift_ms if self.first_ms <= time_ms <= self.last_ms else time_ms


def restamped(time_ms: int, restamps: Sequence[Restamp]) -> int:
    """`time_ms` after the restamps, applied in order (oldest range first: a moved record never moves twice,
    as each range moves below its own start and the later ranges lie above it)."""
    for restamp in restamps:
        time_ms = restamp.apply(time_ms)
    return time_ms


def moved_span(start_ms: int, end_ms: int, restamps: Sequence[Restamp], slack_ms: int) -> tuple[int, int]:
    """Where a span of contiguous records (an event of the history) lies after the restamps: its start moves
    with the range it starts in, its end with the range its last record is in, which is the last range that
    starts before the end, unless the end lies more than `slack_ms` (the longest record) past that range.
    An event that began before a step of the clock smaller than a jump goes on after it, so its two ends may
    move by different amounts."""
    start = restamped(start_ms, restamps)
    tail = [restamp for restamp in restamps if restamp.first_ms < end_ms]
    end_shift = 0
    if tail:
        last_range = max(tail, key=lambda restamp: restamp.first_ms)
        if end_ms - last_range.last_ms <= slack_ms:
            end_shift = last_range.shift_ms
    return start, max(start, end_ms + end_shift)
