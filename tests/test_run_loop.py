"""The loop of `tracker run` in-process: a fake clock and source, the real recorder, store and SQLite file."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from tracker import paths
from tracker.display import ActivityLog, RunView
from tracker.events import default_pulsetime
from tracker.history import History, HistoryWriter
from tracker.localstore import LocalStore, settle_leftovers
from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, Record, Sample
from tracker.outbox import Outbox
from tracker.recorder import Classified, Recorder
from tracker.runner import Parts, Run
from tracker.sender import SenderState
from tracker.status import StatusSnapshot, acquire_run_lock

START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
EVERYTHING = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))


class FakeClock:
    """Time passes only when the loop waits; `stop_after` waits end the run as Ctrl-C would."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self.stop_after = stop_after
        self.on_wait: Callable[[FakeClock], None] = lambda clock: None

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += max(0.0, seconds)
        self.on_wait(self)
        return self.stop_after is not None and len(self.waits) >= self.stop_after


class ScriptedSource:
    """The foreground as a function of the fake clock's time since the start."""

    name = "scripted"

    def __init__(self, clock: FakeClock, script: Callable[[float], tuple[str, float | None]]) -> None:
        self.clock = clock
        self.script = script
        self.start = clock.now
        self.closed = False

    def read(self) -> Sample | None:
        elapsed = self.clock.now - self.start
        app, idle = self.script(elapsed)
        return Sample(time=START + timedelta(seconds=elapsed), app=app, title=f"{app} window", idle_seconds=idle)

    def close(self) -> None:
        self.closed = True


def classify(sample: Sample) -> tuple[Sample, Classified]:
    if sample.app == "code":
        return sample, Classified("Development", 2.0, "app code")
    return sample, Classified("Uncategorized", 0.0, None)


@dataclass
class RecordingView:
    shown: list[RunView] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def show(self, view: RunView) -> None:
        self.shown.append(view)

    def notice(self, text: str) -> None:
        self.notices.append(text)

    def __enter__(self) -> RecordingView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


@dataclass
class FakeSender:
    """Stands where the sender thread would; what it could send is read from the outbox by the test."""

    url: str = "http://127.0.0.1:8086"
    wakes: int = 0
    stopped_with: tuple[bool, float] | None = None

    @property
    def state(self) -> SenderState:
        return SenderState("connected", START, None)

    def wake(self) -> None:
        self.wakes += 1

    def stop(self, flush: bool = True, timeout: float = 10.0) -> None:
        self.stopped_with = (flush, timeout)


@dataclass
class Harness:
    clock: FakeClock
    source: ScriptedSource
    view: RecordingView
    sender: FakeSender
    run: Run
    statuses: list[StatusSnapshot]

    def sendable(self) -> list[Record]:
        """What a sender (the runner's, or `tracker sync` from another process) would send now."""
        with Outbox(paths.database_file()) as outbox:
            return [record for _, record in outbox.pending(10_000)]


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    opened: list[Parts] = []

    def make(script: Callable[[float], tuple[str, float | None]], stop_after: int | None = None,
             away_after: float | None = 5.0, run_for: float | None = None) -> Harness:
        clock = FakeClock(stop_after)
        source = ScriptedSource(clock, script)
        view = RecordingView()
        sender = FakeSender()
        database = paths.database_file()
        paths.private_dir(database.parent)
        store = LocalStore(Outbox(database), HistoryWriter(database, default_pulsetime(1.0), write_every=0),
                           view.notice)
        parts = Parts(source, classify, Recorder("laptop", 1.0, away_after), store, sender, view)
        opened.append(parts)
        statuses: list[StatusSnapshot] = []
        return Harness(clock, source, view, sender, Run(parts, clock, 1.0, run_for, statuses.append), statuses)

    yield make
    for parts in opened:
        parts.close()


def seconds_of(records: list[Record]) -> list[int]:
    return [round((record.time_ms - START.timestamp() * 1000) / 1000) for record in records]


def test_each_tick_is_committed_once_a_second_and_a_clean_stop_sends_everything(harness):
    run = harness(lambda t: ("code" if t < 3 else "slack", None), stop_after=5)
    run.run.run()
    assert run.clock.waits == [1.0] * 5  # paced by the interval: the fake clock never slept longer
    records = run.sendable()
    assert seconds_of(records) == [0, 1, 2, 3, 4]  # stopped during the fifth wait
    assert [record.category for record in records] == ["Development"] * 3 + ["Uncategorized"] * 2
    assert run.sender.wakes == 5
    assert run.sender.stopped_with == (True, 10.0)
    assert [status.samples_taken for status in run.statuses] == [1, 5]  # at the start, then every 10 s
    assert run.statuses[-1].stopped_at is not None and run.statuses[-1].activity == "slack"
    with History(paths.database_file()) as history:
        events = history.events(*EVERYTHING)
    assert [(event.data.app, event.duration) for event in events] == [("code", 3.0), ("slack", 2.0)]


def test_run_for_ends_the_loop_at_its_deadline(harness):
    run = harness(lambda t: ("code", None), run_for=3.5)
    run.run.run()
    assert len(run.sendable()) == 4  # t = 0, 1, 2, 3; the last wait is cut to the deadline
    assert run.clock.waits == [1.0, 1.0, 1.0, 0.5]


def test_a_machine_that_slept_skips_the_missed_ticks_and_records_no_hour(harness):
    run = harness(lambda t: ("code", None), stop_after=3)

    def sleep_once(clock: FakeClock) -> None:
        if len(clock.waits) == 1:
            clock.now += 3600  # the laptop slept through the second tick

    run.clock.on_wait = sleep_once
    run.run.run()
    records = run.sendable()
    assert seconds_of(records) == [0, 3601, 3602]  # no burst of catch-up ticks after waking
    assert [record.duration for record in records] == [1.0, 2.0, 1.0]


def test_time_away_is_never_sendable_as_active_and_settles_once_input_comes_back(harness):
    # Input until t=2, none from t=3 (idle grows), away declared at t=7 (idle 5), input again at t=10.
    def script(t: float) -> tuple[str, float]:
        return "code", (0.0 if t <= 2 or t >= 10 else t - 2)

    run = harness(script, stop_after=11)
    seen: list[list[Record]] = []
    run.clock.on_wait = lambda clock: seen.append(run.sendable())
    run.run.run()
    for sendable in seen:  # at no moment could a sender have sent an active version of the away time
        assert all(record.state == STATE_ACTIVE for record in sendable if seconds_of([record])[0] <= 2)
        assert all(record.state == STATE_AWAY for record in sendable if 2 < seconds_of([record])[0] < 10)
    assert seconds_of(seen[3]) == [0, 1, 2]  # t=3 waited: the input since may have been the last
    final = run.sendable()
    assert seconds_of(final) == list(range(11))
    assert [record.category for record in final] == ["Development"] * 3 + [AWAY] * 7 + ["Development"]
    with History(paths.database_file()) as history:
        events = history.events(*EVERYTHING)
    assert [(event.data.category, event.duration) for event in events] == [
        ("Development", 3.0), (AWAY, 7.0), ("Development", 1.0)]


def test_both_views_are_told_the_same_changes_of_activity(harness):
    run = harness(lambda t: ("code" if t < 2 or t >= 4 else "slack", None), stop_after=5)
    log_stream = io.StringIO()
    log = ActivityLog(log_stream, "text")
    run.view.show = lambda view: (run.view.shown.append(view), log.show(view))  # type: ignore[method-assign]
    run.run.run()
    shown = run.view.shown
    assert [view.changed for view in shown[:6]] == [True, False, True, False, True, False]
    assert [view.since for view in shown[:6]] == [START, START] + [START + timedelta(seconds=2)] * 2 + [
        START + timedelta(seconds=4)] * 2
    lines = [line.split("  ", 1)[1] for line in log_stream.getvalue().splitlines()]
    assert lines == ["code  Development +2  rule: app code", "slack  Uncategorized +0",
                     "code  Development +2  rule: app code"]
    details = shown[-1].details()
    assert (details.sender, details.waiting) == (run.sender.state, 5)


def test_the_first_activity_without_a_rule_is_pointed_out_once(harness):
    run = harness(lambda t: ("slack" if t < 2 else "mail", None), stop_after=3)
    run.run.run()
    pointers = [notice for notice in run.view.notices if "has no category yet" in notice]
    assert pointers == ["slack has no category yet: `tracker categories uncategorized` lists what took your time "
                        "without one, `tracker categories edit` adds rules."]


def test_rows_a_killed_run_left_provisional_are_final_at_the_next_start(harness):
    run = harness(lambda t: ("code", 0.5), stop_after=2)  # idle 0.5 s: each newest record waits for input
    run.run.tick(run.clock.monotonic())
    assert run.sendable() == []  # as a SIGKILL would leave it
    with Outbox(paths.database_file()) as outbox:
        store = LocalStore(outbox, HistoryWriter(paths.database_file(), 2.0), lambda text: None)
        assert store.recover() == 1
        store.history.close()
    assert len(run.sendable()) == 1


def test_tracker_sync_settles_what_a_killed_run_left_but_not_what_a_running_one_holds(harness):
    run = harness(lambda t: ("code", 0.5), stop_after=2)
    run.run.tick(run.clock.monotonic())
    with acquire_run_lock():  # a `tracker run` holds this data directory
        settle_leftovers(paths.database_file())
        assert run.sendable() == []
    settle_leftovers(paths.database_file())  # the run is gone: its last record is final as it stands
    assert seconds_of(run.sendable()) == [0]


def test_observers_see_every_committed_step_and_a_tick_per_loop_and_are_closed(harness):
    @dataclass
    class Watcher:
        steps: list[int] = field(default_factory=list)
        ticks: list[tuple[int, float]] = field(default_factory=list)
        closed: bool = False

        def observe(self, step) -> None:
            self.steps.append(step.record.time_ms)

        def tick(self, run, now: float) -> None:
            self.ticks.append((run.samples_taken, now))

        def close(self) -> None:
            self.closed = True

    run = harness(lambda t: ("code", None), stop_after=3)
    watcher = Watcher()
    run.run.parts.observers.append(watcher)
    run.run.run()
    assert seconds_of([Record(time_ms, 1.0, "h", "a", "a", "c", 0.0) for time_ms in watcher.steps]) == [0, 1, 2]
    assert watcher.ticks == [(1, 1000.0), (2, 1001.0), (3, 1002.0)]
    run.run.parts.close()
    assert watcher.closed
