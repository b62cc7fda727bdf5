"""Goals against the local history: today's and this week's progress (`tracker goals`), and each day or week of a
report's period (`tracker report`). No InfluxDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from tracker.categories.rules import Categories
from tracker.events import Event
from tracker.goals.model import Goal, Goals, GoalsError
from tracker.goals.progress import Progress, local_date, period_of, periods_between, progress, week_of
from tracker.model import UNCATEGORIZED
from tracker.paths import display_path
from tracker.storage.queries import read_events


def check_categories_named(goals: Goals, categories: Categories) -> None:
    """GoalsError for the first goal on a category the rules do not have: a typo would never count a second."""
    known = {category.name.casefold(): category.name for category in categories.categories}
    known[UNCATEGORIZED.casefold()] = UNCATEGORIZED
    for goal in goals.goals:
        for name in goal.categories:
            if name.casefold() not in known:
                assert goals.file is not None  # goals with categories come from a file
                raise GoalsError(goals.file, goal.line or None,
                                 f"there is no category named {name!r} in {display_path(categories.file)}; the "
                                 f"categories are {', '.join(known.values())}")


@dataclass(frozen=True)
class GoalNow:
    """A goal today: its current day or week, and for a daily goal each day of this week so far."""

    goal: Goal
    current: Progress
    week_days: list[Progress]


def goals_now(goals: Goals, now: datetime, zone: tzinfo | None = None,
              events: list[Event] | None = None) -> list[GoalNow]:
    """Each goal's progress in its current day or week, from the local history (or `events`)."""
    today = local_date(now, zone)
    found: list[GoalNow] = []
    for goal in goals.goals:
        week = week_of(today, zone, goals.week_start)
        period = period_of(goal, today, zone, goals.week_start)
        shown = events if events is not None else read_events(min(week.since, period.since),
                                                               max(week.until, period.until)) or []
        current = progress(shown, goal, period, now, zone)
        days: list[Progress] = []
        if goal.per == "day":
            for offset in range((today - week.first_day).days + 1):
                day = period_of(goal, week.first_day + timedelta(days=offset), zone)
                days.append(progress(shown, goal, day, now, zone))
        found.append(GoalNow(goal, current, days))
    return found


def goals_between(goals: Goals, since: datetime, until: datetime, now: datetime, zone: tzinfo | None = None,
                  events: list[Event] | None = None) -> list[tuple[Goal, list[Progress]]]:
    """Each goal's days or weeks that overlap [since, until), judged as of `now`."""
    found: list[tuple[Goal, list[Progress]]] = []
    for goal in goals.goals:
        periods = periods_between(goal, since, until, zone, goals.week_start)
        if not periods:
            found.append((goal, []))
            continue
        shown = events if events is not None else read_events(periods[0].since, periods[-1].until) or []
        found.append((goal, [progress(shown, goal, period, now, zone)
                             for period in periods]))
    return found

