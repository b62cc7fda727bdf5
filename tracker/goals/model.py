"""Goals as tracker understands them: what counts, at most or at least how much, per day or per week, when."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracker.yamlfile import FileLineError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = frozenset(range(7))
DAY_MINUTES = 24 * 60
PERIODS = ("day", "week")


class GoalsError(FileLineError):
    """A goals file that cannot be used; the message names the file, the line and the problem."""


@dataclass(frozen=True, slots=True)
class Hours:
    """Local minutes since midnight, [start, end): within one day for a goal, across midnight for quiet hours."""

    start: int
    end: int

    def holds(self, minute: int) -> bool:
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    categories: tuple[str, ...]  # the categories whose time counts; empty for a pulse goal
    pulse: bool  # the productivity pulse (0..100) of all active time, not a duration
    at_most: bool  # at most `target`; otherwise at least
    target: float  # seconds, or a pulse
    per: str  # "day" or "week"
    days: frozenset[int] = EVERY_DAY  # weekdays that count, Monday 0
    hours: Hours | None = None  # local hours that count; None for the whole day
    line: int = 0

    @property
    def what(self) -> str:
        """What counts, in words: `pulse`, `Development + Writing`."""
        return "pulse" if self.pulse else " + ".join(self.categories)

    def counts_category(self, category: str) -> bool:
        return self.pulse or category.casefold() in {name.casefold() for name in self.categories}


@dataclass(frozen=True)
class Goals:
    goals: tuple[Goal, ...]
    quiet_hours: Hours | None = None  # no nudges then
    week_start: int = 0  # Monday, as ISO weeks
    file: Path | None = None
