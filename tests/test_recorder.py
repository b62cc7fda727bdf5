"""Honest time: durations, sleep, clock jumps and away time, as the records come out of the recorder."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, Restamp, Sample, restamped
from tracker.recording.recorder import Classified, Recorder, settle

START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
DEV = Classified("Development", 2.0, "app Code (categories.yaml, line 10)")


def sample(seconds: float, idle: float | None = None, locked: bool = False, app: str = "Code") -> Sample:
    return Sample(time=START + timedelta(seconds=seconds), app=app, title="main.py", idle_seconds=idle,
                  locked=locked)


def test_each_sample_stands_for_the_time_since_the_previous_one():
    recorder = Recorder("laptop", interval=1.0, away_after=None)
    durations = [recorder.step(sample(t), t, DEV).record.duration for t in (0, 1, 2.5, 3)]
    assert durations == [1.0, 1.0, 1.5, 0.5]


def test_a_laptop_that_slept_an_hour_records_no_hour():
    recorder = Recorder("laptop", interval=1.0, away_after=None)
    recorder.step(sample(0), 0, DEV)
    after_sleep = recorder.step(sample(3600), 3600, DEV).record
    assert after_sleep.duration == 2.0


def test_a_clock_set_back_moves_the_records_it_stamped_ahead_and_is_followed_at_once():
    recorder = Recorder("laptop", interval=1.0, away_after=None)
    times: list[int] = []
    # Wall clock: 0, 1, then an hour ahead for two samples, then set right; the monotonic clock goes on steadily.
    for wall, mono in ((0, 0), (1, 1), (3602, 2), (3603, 3), (4, 4), (5, 5)):
        step = recorder.step(sample(wall), mono, DEV)
        times = [restamped(time_ms, step.restamps) for time_ms in times] + [step.record.time_ms]
        assert step.record.duration >= 0
    start_ms = int(START.timestamp() * 1000)
    assert times == [start_ms + second * 1000 for second in range(6)]


def test_a_clock_set_back_never_moves_records_before_where_the_kept_ones_end():
    start_ms = int(START.timestamp() * 1000)
    recorder = Recorder("laptop", interval=1.0, away_after=None, not_before_ms=start_ms - 1500)
    first = recorder.step(sample(0), 0, DEV)
    back = recorder.step(sample(-3600), 1, DEV)  # set back an hour: the first record may move back 0.5 s only
    assert back.restamps == (Restamp(start_ms, start_ms, -500),)
    assert back.record.time_ms == start_ms + 500
    assert restamped(first.record.time_ms, back.restamps) == start_ms - 500  # one interval after the floor
    assert recorder.step(sample(-3599), 2, DEV).record.time_ms == start_ms + 1500  # carries on while behind


def test_a_late_read_moves_nothing():
    # The process stalled for 3 s between the loop's monotonic reading and the source's wall clock reading:
    # the sample is stamped when it was read, and the next one, on time again, moves nothing back.
    recorder = Recorder("laptop", interval=1.0, away_after=None)
    steps = [recorder.step(sample(wall), mono, DEV) for wall, mono in ((0, 0), (1, 1), (5, 2), (6, 6), (7, 7))]
    assert all(step.restamps == () for step in steps)
    start_ms = int(START.timestamp() * 1000)
    assert [step.record.time_ms - start_ms for step in steps] == [0, 1000, 5000, 6000, 7000]


def test_records_carry_the_classification_and_host():
    record = Recorder("my laptop", 1.0, None).step(sample(0), 0, DEV).record
    assert (record.host, record.app, record.activity, record.category, record.score, record.state) == (
        "my laptop", "Code", "Code", "Development", 2.0, STATE_ACTIVE)
    assert record.time_ms == int(START.timestamp() * 1000)


def test_the_site_is_the_activity_of_a_browser_tab():
    browser = Sample(time=START, app="Firefox", title="Pull requests", url="https://www.github.com/pulls")
    assert Recorder("h", 1.0, None).step(browser, 0, DEV).record.activity == "github.com"


def test_hostile_text_is_made_storable_once_when_recorded():
    hostile = Sample(time=START, app="ev\nil\\", title="a\tb\x00c")
    record = Recorder("h", 1.0, None).step(hostile, 0, DEV).record
    assert (record.app, record.title) == ("ev il/", "a b c")


def test_without_idle_information_every_record_is_final_at_once():
    recorder = Recorder("h", 1.0, away_after=180)
    step = recorder.step(sample(0), 0, DEV)
    assert settle([], step) == ([step.record], [])


def test_going_away_marks_the_time_since_the_last_input_as_away():
    recorder = Recorder("h", 1.0, away_after=5)
    finals, provisional = [], []
    # Input at t=0..2 (idle 0), then no input: idle grows 1, 2, 3, 4, 5 (threshold) at t=3..7.
    for t in range(0, 8):
        idle = 0 if t <= 2 else t - 2
        step = recorder.step(sample(t, idle=idle), t, DEV)
        final, provisional = settle(provisional, step)
        finals.extend(final)
    assert provisional == []
    assert step.away_since_ms == int((START + timedelta(seconds=2)).timestamp() * 1000)
    states = [(r.time_ms - int(START.timestamp() * 1000)) // 1000 for r in finals if r.state == STATE_AWAY]
    assert states == [3, 4, 5, 6, 7]  # the last input was at t=2; everything after it is away
    assert all(r.category == AWAY and r.score == 0 for r in finals if r.state == STATE_AWAY)
    assert [r.state for r in finals[:3]] == [STATE_ACTIVE] * 3


def test_reading_without_touching_stays_active_when_input_comes_back_in_time():
    recorder = Recorder("h", 1.0, away_after=5)
    finals, provisional = [], []
    for t, idle in ((0, 0), (1, 1), (2, 2), (3, 3), (4, 0)):  # input again at t=4, before the threshold
        final, provisional = settle(provisional, recorder.step(sample(t, idle=idle), t, DEV))
        finals.extend(final)
    assert provisional == []  # the input at t=4 showed every earlier record was active time
    assert [r.state for r in finals] == [STATE_ACTIVE] * 5
    assert len(finals) == 5


def test_a_locked_screen_is_away():
    recorder = Recorder("h", 1.0, away_after=180)
    record = recorder.step(sample(0, idle=1, locked=True), 0, DEV).record
    assert (record.category, record.state, record.score) == (AWAY, STATE_AWAY, 0.0)
