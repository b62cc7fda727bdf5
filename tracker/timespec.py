"""Times and durations as people type them: `30s`, `5m`, `2h`, `7d`, `today`, `yesterday`, `2024-05-01`.

Errors are ValueError with a message fit to show as is (click turns them into usage errors).
Day boundaries are local midnights, computed per date so that days around a DST change have the
right length.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone

_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# One or more number+unit parts, e.g. "90s", "1.5h", "1h30m".
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")
_DAYS_BACK = re.compile(r"(\d+)d")


def parse_duration(text: str) -> float:
    """Seconds in `30s`, `5m`, `2h`, `1d`, `1h30m` or a bare number of seconds (`90`)."""
    cleaned = text.strip().lower().replace(" ", "")
    try:
        seconds = float(cleaned)
    except ValueError:
        if not _DURATION.fullmatch(cleaned):
            raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 5m, 2h") from None
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(cleaned))
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{text!r} is not a duration: it must be more than zero, e.g. 30s, 5m, 2h")
    return seconds


def local_midnight(day: date) -> datetime:
    """The moment `day` starts in the local timezone, timezone-aware."""
    return datetime.combine(day, time()).astimezone()


def local_now() -> datetime:
    return datetime.now().astimezone()


# Report periods lie within these years: beyond them dates overflow, and nothing was recorded there anyway.
FIRST_YEAR, LAST_YEAR = 1970, 2199


def _in_range(parse: Callable[[str, datetime | None], datetime]) -> Callable[[str, datetime | None], datetime]:
    """`parse`, refusing with ValueError moments outside FIRST_YEAR..LAST_YEAR (and the overflows on the way)."""
    @functools.wraps(parse)
    def parse_in_range(text: str, now: datetime | None = None) -> datetime:
        try:
            moment = parse(text, now)
        except OverflowError:
            moment = None
        # A day's slack either side: local midnight of Jan 1 is Dec 31 in UTC east of Greenwich, and an
        # --until date ends at the next midnight.
        if moment is None or not _EARLIEST <= moment <= _LATEST:
            raise ValueError(f"{text!r} is outside the years {FIRST_YEAR} to {LAST_YEAR}: use e.g. 30d or 2024-05-01")
        return moment

    return parse_in_range


_EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=timezone.utc) - timedelta(days=1)
_LATEST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=timezone.utc) + timedelta(days=1)


@_in_range
def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The start of a report period.

    `today`, `yesterday`; `7d` = today and the 6 days before it (from local midnight, so days are whole);
    `30s`, `5m`, `2h` = that long before now; a date `2024-05-01` = its local midnight; a date and time
    `2024-05-01T09:00` (or with a space) = that local moment.
    """
    now = now or local_now()
    cleaned = text.strip().lower()
    today = now.date()
    if cleaned == "today":
        return local_midnight(today)
    if cleaned == "yesterday":
        return local_midnight(today - timedelta(days=1))
    days = _DAYS_BACK.fullmatch(cleaned)
    if days:
        if int(days.group(1)) < 1:
            raise ValueError(f"{text!r} is not a period: use at least 1d")
        return local_midnight(today - timedelta(days=int(days.group(1)) - 1))
    if _DURATION.fullmatch(cleaned):
        return now - timedelta(seconds=parse_duration(cleaned))
    return _parse_date_or_moment(text, end_of_day=False)


@_in_range
def parse_until(text: str, now: datetime | None = None) -> datetime:
    """The end of a report period: `today`, `yesterday` or a date include that whole day; `now` is now;
    a date and time is that moment."""
    now = now or local_now()
    cleaned = text.strip().lower()
    if cleaned == "now":
        return now
    if cleaned == "today":
        return local_midnight(now.date() + timedelta(days=1))
    if cleaned == "yesterday":
        return local_midnight(now.date())
    return _parse_date_or_moment(text, end_of_day=True)


def _parse_date_or_moment(text: str, end_of_day: bool) -> datetime:
    cleaned = text.strip()
    try:
        day = date.fromisoformat(cleaned)
    except ValueError:
        pass
    else:
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise OverflowError(day)  # before it overflows in the local timezone: _in_range says what to do
        return local_midnight(day + timedelta(days=1)) if end_of_day else local_midnight(day)
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use today, yesterday, 7d, 2h, a date like 2024-05-01 "
            "or a date and time like 2024-05-01T09:00"
        ) from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise OverflowError(moment)
    # A moment without an offset is local time, like the dates.
    return moment.astimezone() if moment.tzinfo is None else moment


def local_day_starts(since: datetime, until: datetime) -> list[datetime]:
    """The local midnights starting each day that overlaps [since, until); the first is at or before since."""
    starts: list[datetime] = []
    day = since.astimezone().date()
    while True:
        start = local_midnight(day)
        if start >= until:
            return starts
        starts.append(start)
        day += timedelta(days=1)


# Every timezone's offset, and so every clock change, is a whole number of quarter hours.
_QUARTER_HOUR = timedelta(minutes=15)


def local_hour_starts(day_start: datetime) -> list[tuple[datetime, int]]:
    """When each local hour of the day that starts at `day_start` (a local midnight) begins, with that hour.

    The day's quarter hours are walked in real time and each is asked its local hour: an hour the clock enters
    part way begins where it does (02:30 on Lord Howe Island's spring day, whose clock moves from 02:00 to
    02:30), an hour it skips has none, and an hour it repeats begins once."""
    end = local_midnight(day_start.date() + timedelta(days=1))
    starts = [(day_start, day_start.hour)]
    moment = day_start + _QUARTER_HOUR  # aware: the arithmetic is in real time, whatever the clock does
    while moment < end:
        hour = moment.astimezone().hour
        if hour != starts[-1][1]:
            starts.append((moment, hour))
        moment += _QUARTER_HOUR
    return starts


def human_duration(seconds: float) -> str:
    """`1h 23m`, `45m`, `12s`: as precise as a glance needs."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def human_ago(seconds: float) -> str:
    """`just now`, `12s ago`, `5m ago`, `1h 05m ago`."""
    if seconds < 1:
        return "just now"
    return f"{human_duration(seconds)} ago"
