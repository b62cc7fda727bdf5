"""Goals while tracker runs: each sample added to the goals' sums, a nudge when a goal is crossed or met.

`GoalWatcher`, a runner Observer, starts each goal's sum from the local history, adds every sample as it is
recorded (and takes back those the recorder later finds were away), and tells once per goal per day or week:
when an "at most" goal is crossed and when an "at least" goal is met, through the view (the live view or the
log) and the Notifier. During quiet hours a nudge waits until they end, and is dropped if its day or week ended
meanwhile. Pulse goals have no nudges: a pulse moves both ways all day, so they are judged when the period is
over (`tracker goals`, `tracker report`). With InfluxDB configured, it also writes each goal's progress as a
point of measurement `goals` every `points_every` seconds, through the outbox like the vitals.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Protocol

from tracker.events import Event
from tracker.goals.files import GoalsWatcher
from tracker.goals.model import Goal, Goals
from tracker.goals.progress import Period, Tally, counted, local_date, period_of, period_word, shown_amount
from tracker.lineprotocol import clean_tag, escape_tag, format_float
from tracker.storage.db import StoreUnavailable
from tracker.storage.outbox import Point

if TYPE_CHECKING:
    from tracker.recording.localstore import LocalStore
    from tracker.recording.recorder import Step

GOALS_MEASUREMENT = "goals"
RECENT_SAMPLES = 7200  # samples kept to take back when the recorder finds they were away (2 h at 1 s)


class Notifier(Protocol):
    """Desktop notifications (tracker.ui.notifications); notify never raises."""

    def notify(self, title: str, body: str) -> None: ...

    def close(self) -> None: ...


class Waking(Protocol):
    def wake(self) -> None: ...


@dataclass
class _GoalSum:
    period: Period
    tally: Tally


class GoalWatcher:
    def __init__(self, goals: GoalsWatcher, read_events: Callable[[datetime, datetime], list[Event]],
                 tell: Callable[[str], None], notifier: Notifier | None, zone: tzinfo | None = None,
                 points: tuple[LocalStore, Waking, str] | None = None, points_every: float = 60.0) -> None:
        self.goals = goals
        self.read_events = read_events
        self.tell = tell
        self.notifier = notifier
        self.zone = zone
        self.points = points  # the store, the sender and the host, when progress goes to InfluxDB
        self.points_every = points_every
        self._version = -1
        self._sums: dict[Goal, _GoalSum] = {}
        self._told: set[tuple[Goal, date]] = set()
        self._waiting: dict[tuple[Goal, date], tuple[str, str]] = {}  # nudges held through quiet hours
        self._recent: deque[tuple[int, dict[Goal, Tally]]] = deque(maxlen=RECENT_SAMPLES)
        self._failed = False
        self._last_points: float | None = None
        self._last_day: date | None = None

    def observe(self, step: Step) -> None:
        try:
            self._observe(step)
        except Exception as error:  # a bug here must cost the nudges, never the recording
            self._fail(error)

    def tick(self, now: float, samples_taken: int) -> None:
        if self.points is None or (self._last_points is not None and now - self._last_points < self.points_every):
            return
        self._last_points = now
        try:
            self._write_points()
        except Exception as error:
            self._fail(error)

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()

    def _fail(self, error: Exception) -> None:
        if not self._failed:
            self._failed = True
            self.tell(f"Goals are not followed in this run any more ({error.__class__.__name__}: {error}); "
                      "recording goes on.")

    def _observe(self, step: Step) -> None:
        goals = self.goals.current
        record = step.record
        if self.goals.version != self._version:  # at start and after each change: sums from the history
            self._version = self.goals.version
            self._start_sums(goals, record.time_ms)
        if step.away_since_ms is not None:
            self._take_back(step.away_since_ms)
        if not goals.goals:  # no goals (most runs): nothing more to do each second
            return
        event = Event.of(record)
        today = local_date(record.time, self.zone)
        self._last_day = today
        added: dict[Goal, Tally] = {}
        for goal in goals.goals:
            current = self._sum_of(goal, today, goals.week_start)
            if not event.data.active or not goal.counts_category(record.category):
                continue
            tally = counted([event], goal, current.period.since, current.period.until, self.zone)
            if tally.seconds <= 0:
                continue
            before = current.tally.seconds
            current.tally += tally
            added[goal] = tally
            self._check(goal, current, before, today)
        if added:
            self._recent.append((record.time_ms, added))
        self._tell_waiting(goals, record.time)

    def _start_sums(self, goals: Goals, before_ms: int) -> None:
        """Each goal's sum from the history, up to the sample being observed (which the history may hold
        already, and which is added after). After a change mid-run, the few seconds the history does not hold
        yet (still provisional) are missing from the sums: seconds of a day."""
        now = datetime.fromtimestamp(before_ms / 1000, timezone.utc)
        today = local_date(now, self.zone)
        self._sums.clear()
        self._recent.clear()
        for goal in goals.goals:
            period = period_of(goal, today, self.zone, goals.week_start)
            until = min(period.until, now)
            tally = counted(self.read_events(period.since, until), goal, period.since, until, self.zone)
            self._sums[goal] = _GoalSum(period, tally)
            if self._reached(goal, tally.seconds):  # crossed or met before this run: told then, or not at all
                self._told.add((goal, period.first_day))

    def _sum_of(self, goal: Goal, today: date, week_start: int) -> _GoalSum:
        current = self._sums.get(goal)
        if current is None or not current.period.first_day <= today < current.period.until.astimezone(
                self.zone).date():
            current = self._sums[goal] = _GoalSum(period_of(goal, today, self.zone, week_start), Tally())
            # What was told in earlier periods matters no more: a run of months keeps a few keys, not thousands.
            self._told = {key for key in self._told if key[0] != goal or key[1] == current.period.first_day}
        return current

    def _take_back(self, away_since_ms: int) -> None:
        """The samples from `away_since_ms` on were away after all: their time no longer counts."""
        while self._recent and self._recent[-1][0] > away_since_ms:  # as the recorder marks them
            _, added = self._recent.pop()
            for goal, tally in added.items():
                current = self._sums.get(goal)
                if current is not None:
                    current.tally = Tally(current.tally.seconds - tally.seconds,
                                          current.tally.weighted_score - tally.weighted_score)

    @staticmethod
    def _reached(goal: Goal, seconds: float) -> bool:
        if goal.pulse:
            return False
        return seconds > goal.target if goal.at_most else seconds >= goal.target

    def _check(self, goal: Goal, current: _GoalSum, before: float, today: date) -> None:
        key = (goal, current.period.first_day)
        if key in self._told or self._reached(goal, before) or not self._reached(goal, current.tally.seconds):
            return
        if goal.per == "day" and today.weekday() not in goal.days:
            return
        self._told.add(key)
        when = period_word(goal, current.period.first_day, today)
        target = shown_amount(goal, goal.target)  # the sum itself, rounded, could read as the target or less
        if goal.at_most:
            title, body = f"Goal crossed: {goal.name}", f"More than the {target} you allowed {when}."
        else:
            title, body = f"Goal met: {goal.name}", f"{target} {when}, as you aimed for."
        self._waiting[key] = (title, body)

    def _tell_waiting(self, goals: Goals, now: datetime) -> None:
        if not self._waiting:
            return
        if goals.quiet_hours is not None:
            local = now.astimezone(self.zone)
            if goals.quiet_hours.holds(local.hour * 60 + local.minute):
                return
        for (goal, first_day), (title, body) in list(self._waiting.items()):
            del self._waiting[(goal, first_day)]
            current = self._sums.get(goal)
            if current is None or current.period.first_day != first_day:
                continue  # its day or week is over: too late to be of use
            self.tell(f"{title}: {body}")
            if self.notifier is not None:
                self.notifier.notify(title, body)

    def _write_points(self) -> None:
        assert self.points is not None
        store, sender, host = self.points
        if not self._sums:
            return
        time_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
        day = self._last_day
        lines = [Point(GOALS_MEASUREMENT, time_ms, host, goal_point(goal, current.tally, host, time_ms))
                 for goal, current in self._sums.items()
                 if not (goal.per == "day" and day is not None and day.weekday() not in goal.days)]
        if not lines:
            return
        try:
            store.outbox.append_points(lines)
        except StoreUnavailable:
            return  # the runner tells about the local file; the next point says it all again
        sender.wake()


def goal_point(goal: Goal, tally: Tally, host: str, time_ms: int) -> str:
    """One line of measurement `goals`: the goal's value (seconds or pulse), target and percent of it."""
    value = tally.pulse if goal.pulse else tally.seconds
    tags = {"host": host, "goal": goal.name, "per": goal.per, "limit": "at_most" if goal.at_most else "at_least",
            "kind": "pulse" if goal.pulse else "time"}
    tag_text = "".join(f",{key}={escape_tag(clean_tag(text))}" for key, text in sorted(tags.items()) if clean_tag(text))
    fields = [f"target={format_float(goal.target)}"]
    if value is not None:
        fields += [f"value={format_float(value)}", f"percent={format_float(100.0 * value / goal.target)}"
                   if goal.target > 0 else "percent=0.0"]
    return f"{GOALS_MEASUREMENT}{tag_text} {','.join(sorted(fields))} {time_ms}"
