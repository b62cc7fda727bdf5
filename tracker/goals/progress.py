"""How far each goal is, from events: pure functions, in a time zone given (None: the system's local zone).

A day is from local midnight to the next (23 or 25 hours across a DST change); a week starts on the goals file's
week_starts day (Monday, as ISO weeks). An event is cut where days, weeks and a goal's hours begin and end, so one
spanning midnight counts on both days. Away time never counts. The pulse is the time-weighted mean score of the
active time that counts, on 0..100 as the dashboard and `tracker report` show it (tracker.events.pulse_of).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from tracker.events import Event, pulse_of
from tracker.goals.model import DAY_MINUTES, WEEKDAYS, Goal
from tracker.timespec import human_duration

MET, MISSED, ON_TRACK, TO_GO, BEHIND, OFF, NO_TIME = (
    "met", "missed", "on track", "to go", "behind", "not counted", "no time")


@dataclass(frozen=True, slots=True)
class Tally:
    seconds: float = 0.0  # active time that counts
    weighted_score: float = 0.0  # its seconds × score, for the pulse

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.seconds + other.seconds, self.weighted_score + other.weighted_score)

    @property
    def pulse(self) -> float | None:
        return pulse_of(self.weighted_score / self.seconds) if self.seconds > 0 else None


@dataclass(frozen=True, slots=True)
class Period:
    """One day or week of a goal: its first local date, and its start and end as moments."""

    first_day: date
    days: int  # 1 or 7
    since: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class Progress:
    goal: Goal
    period: Period
    tally: Tally
    status: str  # MET, MISSED, ON_TRACK, TO_GO, BEHIND, OFF or NO_TIME

    @property
    def value(self) -> float | None:
        """Seconds, or the pulse."""
        return self.tally.pulse if self.goal.pulse else self.tally.seconds


def local_start(day: date, minute: int, zone: tzinfo | None) -> datetime:
    """The moment a local time of day (minutes since midnight, up to 24:00) is reached on `day`, in UTC. A time
    skipped by a DST change is the moment of the change; a time that happens twice, its first time (so in the
    few zones that set clocks back at midnight, the repeated hour belongs to the new day)."""
    if minute >= DAY_MINUTES:
        day, minute = day + timedelta(days=minute // DAY_MINUTES), minute % DAY_MINUTES
    wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return datetime.fromtimestamp(wall.timestamp(), timezone.utc)


def local_date(moment: datetime, zone: tzinfo | None) -> date:
    return moment.astimezone(zone).date()


def period_of(goal: Goal, day: date, zone: tzinfo | None, week_start: int = 0) -> Period:
    """The day, or the week, of `goal` that holds the local date `day`."""
    return week_of(day, zone, week_start) if goal.per == "week" else _days(day, 1, zone)


def week_of(day: date, zone: tzinfo | None, week_start: int = 0) -> Period:
    """The week that holds the local date `day`, starting on `week_start` (Monday 0)."""
    return _days(day - timedelta(days=(day.weekday() - week_start) % 7), 7, zone)


def _days(first: date, length: int, zone: tzinfo | None) -> Period:
    return Period(first, length, local_start(first, 0, zone), local_start(first + timedelta(days=length), 0, zone))


def counted(events: Iterable[Event], goal: Goal, since: datetime, until: datetime, zone: tzinfo | None) -> Tally:
    """The active time of `events` in [since, until) that counts for `goal`: of its categories (any, for the
    pulse), on its days, within its hours."""
    since_ms, until_ms = since.timestamp() * 1000, until.timestamp() * 1000
    total = Tally()
    for event in events:
        if not event.data.active or not goal.counts_category(event.data.category):
            continue
        start, end = max(float(event.timestamp_ms), since_ms), min(event.end_ms, until_ms)
        if start >= end:
            continue
        seconds = sum(_counted_ms(goal, start, end, zone)) / 1000
        total += Tally(seconds, seconds * event.data.score)
    return total


def _counted_ms(goal: Goal, start_ms: float, end_ms: float, zone: tzinfo | None) -> Iterable[float]:
    """The milliseconds of [start_ms, end_ms) on each local day that fall on the goal's days and hours."""
    day = local_date(datetime.fromtimestamp(start_ms / 1000, timezone.utc), zone) - timedelta(days=1)
    window = (goal.hours.start, goal.hours.end) if goal.hours is not None else (0, DAY_MINUTES)
    while True:
        # From the day before: a window of the previous local day can reach past its own midnight.
        day_start_ms = local_start(day, 0, zone).timestamp() * 1000
        if day_start_ms >= end_ms:
            return
        if day.weekday() in goal.days:
            open_ms = local_start(day, window[0], zone).timestamp() * 1000
            close_ms = min(local_start(day, window[1], zone).timestamp() * 1000,
                           local_start(day + timedelta(days=1), 0, zone).timestamp() * 1000)
            overlap = min(end_ms, close_ms) - max(start_ms, open_ms)
            if overlap > 0:
                yield overlap
        day += timedelta(days=1)


def judge(goal: Goal, period: Period, tally: Tally, now: datetime, recorded: bool = True) -> Progress:
    """The goal's status in `period`, as of `now`: at most is met until crossed, at least missed only once the
    period is over; a pulse is on track or behind until then. A period over with nothing `recorded` in it (no
    tracker running) is neither met nor missed."""
    over = now >= period.until
    if goal.per == "day" and period.first_day.weekday() not in goal.days:
        return Progress(goal, period, tally, OFF)
    if over and not recorded:
        return Progress(goal, period, tally, NO_TIME)
    if goal.pulse:
        pulse = tally.pulse
        if pulse is None:
            status = NO_TIME
        else:
            good = pulse <= goal.target if goal.at_most else pulse >= goal.target
            status = (MET if good else MISSED) if over else (ON_TRACK if good else BEHIND)
    elif goal.at_most:
        status = MISSED if tally.seconds > goal.target else (MET if over else ON_TRACK)
    else:
        status = MET if tally.seconds >= goal.target else (MISSED if over else TO_GO)
    return Progress(goal, period, tally, status)


def progress(events: list[Event], goal: Goal, period: Period, now: datetime, zone: tzinfo | None) -> Progress:
    """The goal's progress in `period`, from `events`."""
    recorded = any(event.data.active and event.timestamp_ms < period.until.timestamp() * 1000
                   and event.end_ms > period.since.timestamp() * 1000 for event in events)
    return judge(goal, period, counted(events, goal, period.since, period.until, zone), now, recorded)


def periods_between(goal: Goal, since: datetime, until: datetime, zone: tzinfo | None,
                    week_start: int = 0) -> list[Period]:
    """The goal's days or weeks that overlap [since, until), in time order."""
    found: list[Period] = []
    day = local_date(since, zone)
    while True:
        period = period_of(goal, day, zone, week_start)
        if period.since >= until:
            return found
        if period.until > since:
            found.append(period)
        day = period.first_day + timedelta(days=period.days)


def shown_amount(goal: Goal, value: float | None) -> str:
    """A goal's value or target as people read it: `1h 05m`, or a pulse `62`."""
    if value is None:
        return "–"
    if goal.pulse:
        return f"{value:.0f}"
    if value >= 3600:
        return human_duration(value).replace(" 00m", "")  # 4h, 1h 30m: minutes are precise enough
    minutes, seconds = divmod(round(value), 60)
    return " ".join(part for part in (f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else "") if part) \
        or "0s"


def period_word(goal: Goal, day: date, today: date) -> str:
    """`today`, `this week`, or the period's first date."""
    if goal.per == "day":
        return "today" if day == today else day.isoformat()
    return "this week" if day <= today < day + timedelta(days=7) else f"week of {day.isoformat()}"


def describe_goal(goal: Goal) -> str:
    """What the goal asks, in words: `at most 30m a day, weekdays, 09:00-17:00`."""
    limit = "at most" if goal.at_most else "at least"
    parts = [f"{limit} {shown_amount(goal, goal.target).replace(' 00m', '')} a {goal.per}"]
    if len(goal.days) < 7:
        weekdays = frozenset(range(5))
        parts.append("weekdays" if goal.days == weekdays else "weekends" if goal.days == frozenset({5, 6})
                     else " ".join(WEEKDAYS[day] for day in sorted(goal.days)))
    if goal.hours is not None:
        parts.append(str(goal.hours))
    return ", ".join(parts)
