"""The loop of `tracker run` in-process: a fake clock and source, the real recorder, store and SQLite file."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers.disk import fill
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracker import paths
from tracker.commands import cli
from tracker.config import InfluxSettings
from tracker.events import default_pulsetime
from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, Record, Sample
from tracker.recording import localstore
from tracker.recording.localstore import UNSAVED_LIMIT, LocalStore, settle_leftovers
from tracker.recording.recorder import Classified, Recorder
from tracker.recording.runlock import acquire_run_lock
from tracker.recording.runner import Parts, Run, RunView
from tracker.recording.runstate import RunnerState, StatusSnapshot, write_status
from tracker.recording.sources import Permission
from tracker.sending.corrections import correcting_sender
from tracker.sending.sender import SenderState
from tracker.storage.history import HistoryWriter
from tracker.storage.outbox import Outbox
from tracker.storage.queries import History
from tracker.ui.live import ActivityLog
from tracker.ui.present import status_text

START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
EVERYTHING = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))


class FakeClock:
    """Time passes only when the loop waits; `stop_after` waits end the run as Ctrl-C would."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.now = 1000.0
        self.wall_ahead = 0.0  # seconds the wall clock is set ahead of the real time (behind when negative)
        self.late_reads: dict[int, float] = {}  # read number -> seconds the process stalls before reading
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
    unreadable_titles = 0

    def permissions(self) -> list[Permission]:
        return []  # nothing to allow

    def __init__(self, clock: FakeClock, script: Callable[[float], tuple[str, float | None]]) -> None:
        self.clock = clock
        self.script = script
        self.start = clock.now
        self.closed = False

    def read(self) -> Sample | None:
        self.reads = getattr(self, "reads", 0) + 1
        self.clock.now += self.clock.late_reads.get(self.reads, 0.0)  # stalled after the loop read its clock
        elapsed = self.clock.now - self.start
        app, idle = self.script(elapsed)
        wall = START + timedelta(seconds=elapsed + self.clock.wall_ahead)
        return Sample(time=wall, app=app, title=f"{app} window", idle_seconds=idle)

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


def make_harness(script: Callable[[float], tuple[str, float | None]], stop_after: int | None = None,
                 away_after: float | None = 5.0, run_for: float | None = None,
                 unsaved_limit: int = UNSAVED_LIMIT) -> Harness:
    """A run over the data directory of TRACKER_HOME; its parts are the caller's to close."""
    clock = FakeClock(stop_after)
    source = ScriptedSource(clock, script)
    view = RecordingView()
    sender = FakeSender()
    database = paths.database_file()
    paths.private_dir(database.parent)
    store = LocalStore(Outbox(database), HistoryWriter(database, default_pulsetime(1.0), write_every=0),
                       view.notice, unsaved_limit)
    parts = Parts(source, classify, Recorder("laptop", 1.0, away_after), store, sender, view)
    statuses: list[StatusSnapshot] = []
    return Harness(clock, source, view, sender, Run(parts, clock, 1.0, run_for, statuses.append), statuses)


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    opened: list[Parts] = []

    def make(*args: Any, **kwargs: Any) -> Harness:
        made = make_harness(*args, **kwargs)
        opened.append(made.run.parts)
        return made

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

        def tick(self, now: float, samples_taken: int) -> None:
            self.ticks.append((samples_taken, now))

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


# -- a wall clock that is set while the run goes on ------------------------------------------------------


def set_wall_clock(clock: FakeClock, settings: dict[int, float]) -> None:
    """After the n-th wait the wall clock reads `settings[n]` seconds ahead of the real time."""
    clock.on_wait = lambda clock: setattr(clock, "wall_ahead", settings.get(len(clock.waits), clock.wall_ahead))


def assert_honest_time(records: list[Record], events: list, real_seconds: float) -> None:
    """Timestamps increase, no duration is negative, no record overlaps the one before (each stands for the
    time since the previous one), no time is invented, and the history holds the same time without overlaps."""
    for before, record in pairwise(records):
        assert record.time_ms > before.time_ms
        assert record.time_ms - before.time_ms >= record.duration * 1000
    assert all(record.duration >= 0 for record in records)
    assert sum(record.duration for record in records) <= real_seconds + 1.0  # the first stands for one interval
    for before, event in pairwise(events):
        assert event.timestamp_ms >= before.end_ms
    assert sum(event.duration for event in events) == pytest.approx(sum(record.duration for record in records))


def test_a_clock_set_an_hour_ahead_and_corrected_is_followed_again_and_the_hour_ahead_moves_back(harness):
    run = harness(lambda t: ("code" if t < 4 else "slack", None), stop_after=10)
    set_wall_clock(run.clock, {3: 3600.0, 6: 0.0})  # an hour ahead for t = 3, 4, 5; NTP sets it right at t = 6
    seen: list[list[int]] = []
    run.clock.on_wait = lambda clock, on_wait=run.clock.on_wait: (on_wait(clock), seen.append(
        seconds_of(run.sendable())))
    run.run.run()
    assert seen[5] == [0, 1, 2, 3603, 3604, 3605]  # while it was ahead, its time was all there was to go by
    records = run.sendable()
    assert seconds_of(records) == list(range(10))  # the hour ahead moved back; from t = 6 on, the wall clock
    assert [record.duration for record in records] == [1.0] * 10
    # Slack came to the front at t = 4, while the clock was ahead: the live view's "for ..." moved back too.
    assert run.view.shown[-1].since == START + timedelta(seconds=4)
    assert [notice for notice in run.view.notices if "clock" in notice] == [
        "The system clock was set back by 1h 00m: what was recorded while it was ahead moves back with it, so times "
        "follow the clock again (in InfluxDB too, before anything more is sent)."]
    with History(paths.database_file()) as history:
        events = history.events(*EVERYTHING)
        assert history.summary(START, START + timedelta(hours=2)).active_seconds == 10.0
    assert_honest_time(records, events, real_seconds=9.0)
    assert [(event.timestamp_ms, event.end_ms) for event in events][-1][1] == START.timestamp() * 1000 + 10_000


def run_sending_while_ahead(run: Harness, settings: InfluxSettings) -> list[str]:
    """Run `run` with a real sender that sends all it can after the 5th wait (an hour ahead, from the 3rd to
    the 6th) and the 8th (set right), and once more at the end; returns what the sender said."""
    said: list[str] = []
    sender = correcting_sender(paths.database_file(), settings, said.append)

    def send_now(clock: FakeClock, on_wait: Callable[[FakeClock], None] = run.clock.on_wait) -> None:
        on_wait(clock)
        if len(clock.waits) in (5, 8):
            assert sender.send_all().ok
    run.clock.on_wait = send_now
    run.run.run()
    assert sender.send_all().ok
    return said


def test_points_sent_while_the_clock_was_ahead_move_back_in_influxdb_too(harness, influxdb1, influx_database):
    run = harness(lambda t: ("code" if t < 4 else "slack", None), stop_after=10)
    set_wall_clock(run.clock, {3: 3600.0, 6: 0.0})
    said = run_sending_while_ahead(run, InfluxSettings(url=influxdb1.url, bucket=influx_database, api="auto"))
    points = influxdb1.rows('SELECT "duration", "app" FROM "activity"', influx_database)
    start_ms = START.timestamp() * 1000
    # Two seconds of the hour ahead reached InfluxDB (sent at the 5th wait), and moved back there as it did locally: one
    # point a second, none in the future, no second counted twice.
    assert [((point["time"] - start_ms) / 1000, point["app"]) for point in points] == [
        (t, "code" if t < 4 else "slack") for t in range(10)]
    assert sum(point["duration"] for point in points) == 10.0
    assert [line for line in said if "clock" in line] == [
        f"The clock was set back: 2 samples sent while it was ahead moved back in InfluxDB at {influxdb1.url} too"]
    with Outbox(paths.database_file()) as outbox:
        assert (outbox.waiting(), outbox.corrections.clock_fixes()) == (0, [])


def test_points_sent_while_the_clock_was_ahead_move_back_in_influxdb2_too(harness, influxdb2):
    """On InfluxDB 2.x (a loopback fake of it: there is no real 2.x here), through Flux and /api/v2/delete."""
    run = harness(lambda t: ("code" if t < 4 else "slack", None), stop_after=10)
    set_wall_clock(run.clock, {3: 3600.0, 6: 0.0})
    said = run_sending_while_ahead(run, InfluxSettings(url=influxdb2.url, bucket=influxdb2.bucket, org=influxdb2.org,
                                                       token=influxdb2.token, api="auto"))
    start_ns = int(START.timestamp()) * 1_000_000_000
    assert [((point.time_ns - start_ns) / 1e9, point.tags["app"]) for point in influxdb2.points()] == [
        (t, "code" if t < 4 else "slack") for t in range(10)]
    assert sum(point.fields["duration"] for point in influxdb2.points()) == 10.0
    assert [line for line in said if "clock" in line] == [
        f"The clock was set back: 2 samples sent while it was ahead moved back in InfluxDB at {influxdb2.url} too"]
    assert len(influxdb2.deletes) >= 1
    with Outbox(paths.database_file()) as outbox:
        assert (outbox.waiting(), outbox.corrections.clock_fixes()) == (0, [])


def test_a_server_that_cannot_delete_keeps_the_points_sent_ahead_and_the_user_is_told(harness, victoria):
    run = harness(lambda t: ("code", None), stop_after=10)
    run.run.parts.recorder.host = "clock-ahead-vm"
    set_wall_clock(run.clock, {3: 3600.0, 6: 0.0})
    said = run_sending_while_ahead(run, InfluxSettings(url=victoria.url, bucket="b", api="v2", org="o",
                                                       token="v2-token"))
    assert [line for line in said if "clock" in line] == [
        "The clock was set back: tracker corrects points only in InfluxDB 1.x (InfluxQL DELETE) and 2.x"
        " (/api/v2/delete); this server names no InfluxDB version, so the samples sent while the clock was ahead"
        " keep those times."]
    series = victoria.export('activity_duration{host="clock-ahead-vm"}')
    seconds = sorted(round(stamp / 1000 - START.timestamp()) for one in series for stamp in one["timestamps"])
    # Nothing waits for ever behind the fix it cannot make: all ten arrived, the three sent ahead as they were.
    assert seconds == [0, 1, 2, 5, 6, 7, 8, 9, 3603, 3604]


def test_a_clock_set_back_follows_the_wall_clock_and_moves_the_run_back_with_it(harness):
    # Set an hour behind at t = 3 (wrongly, or it was ahead since before the run): nothing of this run may lie
    # after "now", so the run moves back an hour; set right at t = 6, the wall clock is followed forward.
    run = harness(lambda t: ("code", None), stop_after=9)
    set_wall_clock(run.clock, {3: -3600.0, 6: 0.0})
    run.run.run()
    records = run.sendable()
    assert seconds_of(records) == [-3600, -3599, -3598, -3597, -3596, -3595, 6, 7, 8]
    with History(paths.database_file()) as history:
        assert_honest_time(records, history.events(*EVERYTHING), real_seconds=8.0)


def test_a_clock_set_back_never_moves_a_run_onto_the_records_of_an_earlier_one(harness):
    earlier = harness(lambda t: ("code", None), stop_after=3)
    earlier.run.run()
    earlier.run.parts.close()
    run = make_harness(lambda t: ("slack", None), stop_after=6)
    try:
        run.clock.now += 10  # ten seconds after the earlier run ended
        run.source.start = earlier.source.start
        # As open_parts does: this run starts after what is kept.
        set_wall_clock(run.clock, {2: -3600.0})
        run.run.parts.recorder.not_before_ms = run.run.parts.store.history.last_end_ms()
        run.run.run()
    finally:
        run.run.parts.close()
    records = run.sendable()
    # The later run (t = 10, 11, then set back at t = 12) moves back only as far as right after the earlier
    # run's last second, and carries on from there while the wall clock reads earlier still.
    assert seconds_of(records) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert [record.app for record in records] == ["code"] * 3 + ["slack"] * 6
    with History(paths.database_file()) as history:
        assert_honest_time(records, history.events(*EVERYTHING), real_seconds=2.0 + 5.0 + 1.0)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(settings_of_the_clock=[(1, 3), (2, 4)])  # a step smaller than a jump, inside one ahead of it
@given(settings_of_the_clock=st.lists(
    st.tuples(st.integers(1, 12), st.one_of(st.integers(-7200, -3), st.integers(3, 7200))), max_size=5))
def test_whatever_the_clock_does_time_stays_honest_and_follows_the_wall_clock_once_it_is_right(
        settings_of_the_clock: list[tuple[int, int]], tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path_factory.mktemp("home")))
    wall_ahead = {wait: float(ahead) for wait, ahead in settings_of_the_clock}
    wall_ahead[13] = 0.0  # set right at last
    run = make_harness(lambda t: ("code" if t % 7 < 4 else "slack", None), stop_after=16)
    try:
        set_wall_clock(run.clock, wall_ahead)
        run.run.run()
        records = run.sendable()
        with History(paths.database_file()) as history:
            assert_honest_time(records, history.events(*EVERYTHING), real_seconds=15.0)
    finally:
        run.run.parts.close()
    assert seconds_of(records)[-3:] == [13, 14, 15]  # the wall clock is right again: its time is the records'


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(late_reads=st.dictionaries(st.integers(2, 13), st.sampled_from([0.5, 1.5, 3.0, 10.0]), min_size=1,
                                  max_size=3))
def test_reads_that_come_late_move_nothing(
        late_reads: dict[int, float], tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The process stalls between the loop's reading of the monotonic clock and the source's of the wall clock
    # (a busy machine): that looks like a clock set forward and back by the stall, but no clock was set.
    # (Such a record stands for the time since the previous tick began, so it may overlap the next by the
    # stall, as it always did.)
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path_factory.mktemp("home")))
    run = make_harness(lambda t: ("code", None), stop_after=16)
    try:
        run.clock.late_reads = late_reads
        run.run.run()
        records = run.sendable()
    finally:
        run.run.parts.close()
    assert not any("clock" in notice for notice in run.view.notices)
    reads = [START + timedelta(seconds=t) for t in read_times(run.clock.waits, late_reads)]
    assert [record.time for record in records] == reads  # each stamped when it was read, none moved
    assert sum(record.duration for record in records) <= run.clock.now - run.source.start + 1.0


def read_times(waits: list[float], late_reads: dict[int, float]) -> list[float]:
    """Seconds since the start at which each sample was read, from the loop's waits and the stalls."""
    times, now = [], 0.0
    for read, wait in enumerate([0.0, *waits[:-1]], start=1):
        now += wait + late_reads.get(read, 0.0)
        times.append(now)
    return times


# -- a full disk for longer than memory holds ---------------------------------------------------------------


@pytest.fixture
def data_on_a_small_disk(tracker_home: Path) -> Iterator[Path]:
    """The data directory on a tmpfs of its own (as root), so that it can really be filled."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs as the data directory")
    data = paths.data_dir()
    data.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(data)], check=True)
    yield data
    subprocess.run(["umount", "-l", str(data)], check=False)


def test_a_full_disk_longer_than_memory_holds_loses_the_oldest_counted_said_once_and_shown(data_on_a_small_disk):
    run = make_harness(lambda t: ("code", None), stop_after=1000, unsaved_limit=5)
    store = run.run.parts.store
    phase = {"filler": None, "failing_at": None}

    def disk(clock: FakeClock) -> None:
        waits = len(clock.waits)
        if waits == 3:
            phase["filler"] = fill(data_on_a_small_disk)
        elif phase["failing_at"] is None and store.failing is not None:
            phase["failing_at"] = waits - 1  # the tick before this wait was the first not written
        elif phase["failing_at"] is not None and waits == phase["failing_at"] + 10 and phase["filler"] is not None:
            phase["filler"].unlink()  # ten samples taken while full: five kept in memory, five lost
            phase["filler"] = None
        elif phase["failing_at"] is not None and waits == phase["failing_at"] + 13:
            clock.stop_after = waits
        assert waits < 900, "the disk never filled up"

    try:
        run.clock.on_wait = disk
        run.run.run()
    finally:
        run.run.parts.close()
    failing_at = phase["failing_at"]
    assert failing_at is not None
    assert [notice for notice in run.view.notices if "lost" in notice and "Cannot" not in notice] == [
        "The local database still cannot be written and 5 samples wait in memory, all it holds: from now on the "
        "oldest are lost (counted in `tracker outbox` and `tracker status`); free space on the disk to keep "
        "recording.",
        "The local database can be written again; recording goes on; 5 samples (5s) were lost while it could not "
        "be written."]
    assert not any("nothing was lost" in notice for notice in run.view.notices)
    # The five oldest of those taken while the disk was full are missing, and nothing else.
    taken = run.run.samples_taken
    assert seconds_of(run.sendable()) == [t for t in range(taken) if not failing_at <= t < failing_at + 5]
    status = run.statuses[-1]
    assert (status.lost, status.lost_seconds) == (5, 5.0)
    write_status(status)
    shown = CliRunner().invoke(cli, ["status", "--json"])
    assert json.loads(shown.output)["status"]["lost"] == 5
    assert "5 samples (5s) this run, while the local database could not be written" in status_text(
        RunnerState(data_on_a_small_disk, status.pid, status, None))
    assert status_text(RunnerState(data_on_a_small_disk, None, status, None)).endswith(
        "samples). It lost 5 samples (5s) while the local database could not be written.")
    shown = CliRunner().invoke(cli, ["outbox"])
    assert ("Lost:          5 samples (5s) while the local database could not be written (the disk was full or "
            "read-only)") in shown.output
    assert json.loads(CliRunner().invoke(cli, ["outbox", "--json"]).output)["lost"] == 5


def test_a_lock_held_for_long_by_another_command_is_said_once_and_every_sample_is_written_after(
        harness, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(localstore, "TELL_LOCKED_AFTER", 0.0)  # said at once here, after 30 s in a real run
    run = harness(lambda t: ("code", None), stop_after=1000)
    run.run.parts.store.recover()  # as the runner does: from here on the loop's writes wait a moment only
    other_command = sqlite3.connect(paths.database_file(), isolation_level=None)

    def another_command(clock: FakeClock) -> None:
        waits = len(clock.waits)
        if waits == 2:
            other_command.execute("BEGIN IMMEDIATE")
        elif waits == 6:
            other_command.execute("COMMIT")
        elif waits == 9:
            clock.stop_after = waits

    run.clock.on_wait = another_command
    run.run.run()
    other_command.close()
    assert run.view.notices == [
        "Another tracker command has held the local database for 0s: the samples wait in memory and are written "
        "when it is done.",
        "The local database is free again: the samples that waited are written, nothing was lost."]
    assert seconds_of(run.sendable()) == list(range(9))
