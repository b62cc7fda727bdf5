"""What `tracker goals` prints, and the goals part of `tracker report`."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

from tracker.goals.model import WEEKDAYS, Goal, Goals
from tracker.goals.progress import MET, MISSED, NO_TIME, OFF, Progress, describe_goal, period_word, shown_amount
from tracker.paths import display_path

if TYPE_CHECKING:
    from rich.console import Console

    from tracker.tasks.goals import GoalNow

NO_GOALS = ("No goals yet: write them in {path} (the README's Goals section has an example), then "
            "`tracker goals validate`.")
_STYLES = {MET: "green", MISSED: "red", OFF: "dim"}


def no_goals(goals: Goals) -> str:
    return NO_GOALS.format(path=display_path(goals.file) if goals.file else "goals.yaml")


def goal_text(goal: Goal) -> str:
    """The goal's name, and what it asks when the name does not say it all."""
    asks = describe_goal(goal)
    return goal.name if goal.name == f"{goal.what} {asks}" else f"{goal.name} ({asks})"


def render_goals(found: list[GoalNow], today: date, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Goals", title_justify="left")
    for header in ("Goal", "Now", "Status", "This week"):
        table.add_column(header, no_wrap=header != "Goal")
    for item in found:
        current = item.current
        now = f"{shown_amount(item.goal, current.value)} {period_word(item.goal, current.period.first_day, today)}"
        table.add_row(goal_text(item.goal), now, Text(current.status, style=_STYLES.get(current.status, "")),
                      _week_text(item.week_days))
    console.print(table)


def _week_text(days: list[Progress]) -> str:
    if not days:
        return ""
    met = sum(day.status == MET for day in days)
    missed = sum(day.status == MISSED for day in days)
    return f"{met} met, {missed} missed"


def goals_json(found: list[GoalNow]) -> str:
    return json.dumps({"goals": [{**_goal_json(item.goal), "current": _progress_json(item.current),
                                  "this_week": [_progress_json(day) for day in item.week_days]}
                                 for item in found]}, indent=2, ensure_ascii=False)


def _goal_json(goal: Goal) -> dict[str, object]:
    return {"name": goal.name, "kind": "pulse" if goal.pulse else "time", "categories": list(goal.categories),
            "limit": "at_most" if goal.at_most else "at_least", "target": goal.target, "per": goal.per,
            "days": [WEEKDAYS[day] for day in sorted(goal.days)],
            "hours": str(goal.hours) if goal.hours is not None else None}


def _progress_json(progress: Progress) -> dict[str, object]:
    value = progress.value
    return {"first_day": progress.period.first_day.isoformat(), "since": progress.period.since.isoformat(),
            "until": progress.period.until.isoformat(),
            "value": None if value is None else round(value, 3), "status": progress.status}


def report_goals_json(found: list[tuple[Goal, list[Progress]]]) -> list[dict[str, object]]:
    return [{**_goal_json(goal), "periods": [_progress_json(item) for item in periods]} for goal, periods in found]


def render_report_goals(found: list[tuple[Goal, list[Progress]]], today: date, console: Console) -> None:
    """One row per goal: its days or weeks in the report's period, met and missed."""
    from rich.table import Table
    from rich.text import Text

    if not found:
        return
    table = Table(title="Goals", title_justify="left")
    for header in ("Goal", "Met", "Missed", "Each day or week"):
        table.add_column(header, no_wrap=header in ("Met", "Missed"))
    for goal, periods in found:
        judged = [item for item in periods if item.status not in (OFF, NO_TIME)]
        line = Text()
        for item in judged:
            if line:
                line.append(" ")
            line.append(f"{period_word(goal, item.period.first_day, today)} {shown_amount(goal, item.value)}",
                        style=_STYLES.get(item.status, ""))
        table.add_row(goal_text(goal), str(sum(item.status == MET for item in judged)),
                      str(sum(item.status == MISSED for item in judged)), line)
    console.print(table)
