"""The event history: heartbeat merging, clipped totals, local hours and days, today's running totals."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.events import Event, default_pulsetime
from tracker.model import AWAY, STATE_AWAY, UNCATEGORIZED, Record
from tracker.storage.history import HistoryWriter
from tracker.storage.queries import History
from tracker.timespec import parse_duration, parse_since, parse_until

START = datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc)
PULSE = 2.0
EVERYTHING = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))


def record(at: float, activity: str = "editor", category: str = "Code", score: float = 2.0,
           duration: float = 1.0, **changes: object) -> Record:
    """A sample `at` seconds after START."""
    base = Record(time_ms=int((START.timestamp() + at) * 1000), duration=duration, host="laptop",
                  app=activity, activity=activity, category=category, score=score)
    return replace(base, **changes)


@pytest.fixture
def history(tmp_path: Path) -> Iterator[HistoryWriter]:
    """A writer that writes every sample at once, so that its reports see each one."""
    with HistoryWriter(tmp_path / "tracker.db", PULSE, write_every=0) as opened:
        yield opened


@pytest.fixture
def kolkata() -> Iterator[None]:
    """Local time UTC+5:30, so that hours and days that were UTC by mistake would show."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Asia/Kolkata")
        time.tzset()
        yield
    time.tzset()


def spans(history: History) -> list[tuple[float, float, str]]:
    """(start offset from START, duration, activity) of each stored event."""
    return [((event.timestamp_ms / 1000) - START.timestamp(), event.duration, event.data.activity)
            for event in history.events(*EVERYTHING)]


def test_default_pulsetime_is_activitywatchs():
    assert default_pulsetime(1.0) == 2.0
    assert default_pulsetime(5.0) == 7.5


def test_samples_with_the_same_data_within_the_pulse_become_one_event(history):
    for second in range(5):
        history.add(record(second))
    assert spans(history.reports) == [(0.0, 5.0, "editor")]


def test_a_gap_within_the_pulse_is_covered_and_a_longer_gap_starts_a_new_event(history):
    history.add(record(0))
    history.add(record(2.5))  # 1.5 s after the end at 1 s: within the pulse of 2 s
    history.add(record(6.0))  # 2.5 s after the end at 3.5 s: beyond it
    assert spans(history.reports) == [(0.0, 3.5, "editor"), (6.0, 1.0, "editor")]


def test_a_change_of_data_starts_a_new_event_even_within_the_pulse(history):
    history.add(record(0))
    history.add(record(1, "browser", "Communication", 0.0))
    history.add(record(2, "browser", "Communication", 0.0, title="Inbox"))
    history.add(record(3))
    assert spans(history.reports) == [(0.0, 1.0, "editor"), (1.0, 1.0, "browser"), (2.0, 1.0, "browser"),
                              (3.0, 1.0, "editor")]


def test_a_sample_from_before_the_last_event_does_not_stretch_it(history):
    history.add(record(10))
    history.add(record(5))  # the clock went back
    assert spans(history.reports) == [(5.0, 1.0, "editor"), (10.0, 1.0, "editor")]


def test_merging_continues_across_reopening(tmp_path):
    path = tmp_path / "tracker.db"
    with HistoryWriter(path, PULSE) as first:
        first.add(record(0))
    with HistoryWriter(path, PULSE) as second:
        second.add(record(1))
    with History(path) as reader:
        assert spans(reader) == [(0.0, 2.0, "editor")]


def test_totals_clip_events_at_the_period_boundaries(history):
    history.add(record(0, duration=600.0))  # 09:00 to 09:10
    history.add(record(600, "chat", "Communication", -1.0, duration=600.0))  # 09:10 to 09:20
    since, until = START + timedelta(minutes=5), START + timedelta(minutes=12)
    totals = history.reports.totals(since, until, "category")
    assert [(total.name, total.seconds, total.score) for total in totals] == [
        ("Code", 300.0, 2.0), ("Communication", 120.0, -1.0)]
    assert history.reports.summary(since, until).pulse == pytest.approx((300 * 100 + 120 * 25) / 420)


def test_away_time_is_left_out_of_totals_and_counted_apart(history):
    history.add(record(0, duration=60.0))
    history.add(record(60, AWAY, AWAY, 0.0, duration=120.0, state=STATE_AWAY))
    history.add(record(180, "mystery", UNCATEGORIZED, 0.0, duration=30.0))
    assert [total.name for total in history.reports.totals(*EVERYTHING, "category")] == ["Code", UNCATEGORIZED]
    summary = history.reports.summary(*EVERYTHING)
    assert (summary.active_seconds, summary.away_seconds, summary.uncategorized_seconds) == (90.0, 120.0, 30.0)


@pytest.mark.slow
@given(st.lists(st.one_of(st.floats(max_value=0.0, exclude_max=True), st.just(float("nan")), st.just(float("-inf")),
                         st.just(float("inf")), st.floats(0.0, 5.0)), min_size=1, max_size=20))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_negative_or_endless_duration_counts_as_none_and_never_subtracts(tmp_path, durations):
    with HistoryWriter(tmp_path / f"negative-{time.monotonic_ns()}.db", PULSE, write_every=0) as history:
        history.add(record(0, "chat", "Communication", -1.0, duration=60.0))
        at = 60.0
        for number, duration in enumerate(durations):
            history.add(record(at, f"app{number % 3}", duration=duration))
            at += 1.0
        summary = history.reports.summary(*EVERYTHING)
        totals = {total.name: total.seconds for total in history.reports.totals(*EVERYTHING, "category")}
        stored = [event.duration for event in history.reports.events(*EVERYTHING)]
    assert all(duration >= 0 and duration < float("inf") for duration in stored)
    assert totals["Communication"] == 60.0
    assert all(seconds >= 0.0 for seconds in totals.values())
    assert summary.active_seconds >= 60.0


def test_a_negative_duration_is_stored_as_none(history):
    history.add(record(0, "chat", "Communication", -1.0, duration=60.0))
    history.add(record(60, duration=-50.0))
    history.add(record(61, "browser", "Browsing", 0.0, duration=float("nan")))
    assert spans(history.reports) == [(0.0, 60.0, "chat"), (60.0, 0.0, "editor"), (61.0, 0.0, "browser")]
    assert history.reports.summary(*EVERYTHING).active_seconds == 60.0


def test_activities_and_apps(history):
    history.add(record(0, "github.com", app="Firefox", duration=100.0))
    history.add(record(100, "editor", duration=50.0))
    history.add(record(150, "docs.python.org", app="Firefox", duration=30.0))
    by_activity = history.reports.totals(*EVERYTHING, "activity")
    assert [(total.name, total.seconds, total.detail) for total in by_activity] == [
        ("github.com", 100.0, "Firefox"), ("editor", 50.0, "editor"), ("docs.python.org", 30.0, "Firefox")]
    assert [(total.name, total.seconds) for total in history.reports.totals(*EVERYTHING, "app")] == [
        ("Firefox", 130.0), ("editor", 50.0)]


def test_hours_and_days_are_local_and_split_events_that_cross_them(history, kolkata):
    # 18:00 UTC is 23:30 in Kolkata: a 40-minute event spans 23:30-00:10 local, across hour and day.
    late = datetime(2024, 5, 6, 18, 0, tzinfo=timezone.utc)
    history.add(record(late.timestamp() - START.timestamp(), duration=2400.0))
    since, until = parse_since("2024-05-06"), parse_until("2024-05-07")
    assert [(total.name, total.seconds) for total in history.reports.totals(since, until, "hour")] == [
        ("00", 600.0), ("23", 1800.0)]
    assert [(total.name, total.seconds) for total in history.reports.totals(since, until, "day")] == [
        ("2024-05-06", 1800.0), ("2024-05-07", 600.0)]


def test_today_totals_start_from_the_table_and_follow_each_sample(tmp_path):
    path = tmp_path / "tracker.db"
    noon_today = parse_since("today") + timedelta(hours=12)  # may be in the future: still today
    sample = Record(time_ms=int(noon_today.timestamp() * 1000), duration=1.0, host="laptop", app="editor",
                    activity="editor", category="Code", score=2.0)
    with HistoryWriter(path, PULSE) as first:
        first.add(replace(sample, duration=60.0))
    with HistoryWriter(path, PULSE) as runner:
        assert runner.today_by_category() == {"Code": 60.0}
        runner.add(replace(sample, time_ms=sample.time_ms + 60_000))  # merges: one more second
        runner.add(replace(sample, time_ms=sample.time_ms + 61_500, category="Chat", score=-2.0))
        assert runner.today_by_category() == {"Code": 61.0, "Chat": 1.0}
        assert runner.today_pulse() == pytest.approx(61 * 100 / 62)
        # What the runner kept in memory is what a fresh query says.
        with HistoryWriter(path, PULSE) as fresh:
            assert runner.today_by_category() == fresh.today_by_category()


def test_retention_deletes_events_older_than_the_limit(tmp_path):
    path = tmp_path / "tracker.db"
    now = time.time()
    with HistoryWriter(path, PULSE) as writer:
        for days_ago in (40, 10, 0):
            at = now - days_ago * 86400 - START.timestamp()
            writer.add(record(at, f"app{days_ago}"))
    with HistoryWriter(path, PULSE, retention_days=30) as pruned:
        assert [activity for _, _, activity in spans(pruned.reports)] == ["app10", "app0"]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("1h30m", 5400),
                                               ("90", 90), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "", "0s", "-3", "m5"])
def test_durations_that_are_not(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_periods_start_and_end_at_local_midnights(kolkata):
    now = datetime(2024, 5, 6, 15, 30).astimezone()
    assert parse_since("today", now).isoformat() == "2024-05-06T00:00:00+05:30"
    assert parse_since("yesterday", now).isoformat() == "2024-05-05T00:00:00+05:30"
    assert parse_since("7d", now).isoformat() == "2024-04-30T00:00:00+05:30"
    assert parse_since("2h", now).isoformat() == "2024-05-06T13:30:00+05:30"
    assert parse_until("2024-05-01", now).isoformat() == "2024-05-02T00:00:00+05:30"
    with pytest.raises(ValueError, match="'soon' is not a time"):
        parse_since("soon", now)


def test_a_growing_event_is_written_every_few_seconds_and_at_close(tmp_path):
    path = tmp_path / "tracker.db"
    writer = HistoryWriter(path, PULSE, write_every=3600)
    for second in range(5):
        writer.add(record(second))
    with History(path) as reader:  # another process, e.g. `tracker report` while `tracker run` records
        assert spans(reader) == [(0.0, 1.0, "editor")]  # the extension is not written yet
    writer.add(record(5))
    writer.add(record(6, "browser"))  # a new event writes the old one's duration first
    with History(path) as reader:
        assert spans(reader) == [(0.0, 6.0, "editor"), (6.0, 1.0, "browser")]
    writer.add(record(7, "browser"))
    writer.close()
    with History(path) as reader:
        assert spans(reader) == [(0.0, 6.0, "editor"), (6.0, 2.0, "browser")]


def test_with_write_every_0_each_sample_is_written_at_once(tmp_path):
    path = tmp_path / "tracker.db"
    writer = HistoryWriter(path, PULSE, write_every=0)
    for second in range(3):
        writer.add(record(second))
    with History(path) as reader:
        assert spans(reader) == [(0.0, 3.0, "editor")]
    writer.close()


# --- rollups: reports over whole days read them, and must say what the events say -------------------------

ZONES = ["Europe/Berlin", "Asia/Kolkata", "America/New_York"]
# Days around clock changes: Europe 31 Mar and 27 Oct 2024, New York 10 Mar and 3 Nov 2024.
AROUND_CLOCK_CHANGES = [datetime(2024, 3, 8, tzinfo=timezone.utc), datetime(2024, 3, 29, tzinfo=timezone.utc),
                        datetime(2024, 10, 25, tzinfo=timezone.utc), datetime(2024, 11, 1, tzinfo=timezone.utc)]
QUARTER_HOUR = 900_000  # ms; every local hour and midnight of these zones falls on one


@contextmanager
def local_zone(zone: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", zone)
        time.tzset()
        try:
            yield
        finally:
            patch.undo()
            time.tzset()


def expected_totals(events: list[Event], since: datetime, until: datetime, by: str) -> dict[str, tuple[float, float]]:
    """Event by event, in Python: each active event's part in [since, until) under its name, hour or day
    (cut at quarter hours, each part named by the local time it starts at). (seconds, mean score) per name."""
    sums: dict[str, list[float]] = {}
    since_ms, until_ms = since.timestamp() * 1000, until.timestamp() * 1000
    for event in events:
        start, end = max(event.timestamp_ms, since_ms), min(event.end_ms, until_ms)
        while event.data.active and start < end:
            part_end = min(end, (start // QUARTER_HOUR + 1) * QUARTER_HOUR) if by in ("hour", "day") else end
            local = datetime.fromtimestamp(start / 1000).astimezone()
            name = {"hour": f"{local.hour:02d}", "day": local.date().isoformat()}.get(by) or getattr(event.data, by)
            seconds = (part_end - start) / 1000
            totals = sums.setdefault(name, [0.0, 0.0])
            totals[0] += seconds
            totals[1] += seconds * event.data.score
            start = part_end
    return {name: (seconds, weighted / seconds) for name, (seconds, weighted) in sums.items() if seconds > 0}


def assert_reports_follow_the_events(path: Path, since: datetime, until: datetime) -> None:
    with History(path) as reader:
        events = reader.events(*EVERYTHING)
        for by in ("category", "activity", "app", "hour", "day"):
            reported = {total.name: (total.seconds, total.score) for total in reader.totals(since, until, by)}
            expected = expected_totals(events, since, until, by)
            assert sorted(reported) == sorted(expected), by
            for name, seconds_and_score in expected.items():
                assert reported[name] == pytest.approx(seconds_and_score, abs=1e-6), (by, name)
        summary = reader.summary(since, until)
    since_ms, until_ms = since.timestamp() * 1000, until.timestamp() * 1000
    parts = [(event, max(0.0, min(event.end_ms, until_ms) - max(event.timestamp_ms, since_ms)) / 1000)
             for event in events]
    assert summary.active_seconds == pytest.approx(sum(part for event, part in parts if event.data.active))
    assert summary.away_seconds == pytest.approx(sum(part for event, part in parts if not event.data.active))
    assert summary.uncategorized_seconds == pytest.approx(
        sum(part for event, part in parts if event.data.active and event.data.category == UNCATEGORIZED))


SAMPLE_KINDS = [("editor", "Code", 2.0, "active"), ("chat", "Communication", -1.0, "active"),
                ("mystery", UNCATEGORIZED, 0.0, "active"), (AWAY, AWAY, 0.0, STATE_AWAY),
                ("video", "Entertainment", -2.0, STATE_AWAY)]


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.sampled_from(AROUND_CLOCK_CHANGES),
    recorded_in=st.sampled_from(ZONES),
    reported_in=st.sampled_from(ZONES),
    samples=st.lists(st.tuples(st.integers(0, 4),  # kind
                               st.floats(0, 2 * 86400),  # seconds since the last sample began
                               st.sampled_from([1.0, 61.0, 3600.5, 30_000.0, 2.5 * 86400])),  # duration
                     min_size=1, max_size=25),
    write_every=st.sampled_from([0.0, 3600.0]),
    period=st.tuples(st.integers(-86_400_000, 6 * 86_400_000), st.integers(0, 6 * 86_400_000), st.booleans()),  # ms
)
def test_reports_from_rollups_say_what_the_events_say(tmp_path_factory, base, recorded_in, reported_in, samples,
                                                       write_every, period):
    """Any events, recorded in one zone and reported in another (the machine moved), any period, whole local
    days or not, across clock changes: the totals are those of the events, event by event."""
    path = tmp_path_factory.mktemp("rollups") / "tracker.db"
    moment = base.timestamp()
    with local_zone(recorded_in), HistoryWriter(path, PULSE, write_every=write_every) as writer:
        for kind, gap, duration in samples:
            activity, category, score, state = SAMPLE_KINDS[kind]
            moment += gap
            writer.add(Record(time_ms=int(moment * 1000), duration=duration, host="laptop", app=activity,
                              activity=activity, category=category, score=score, state=state))
    start_after, length, whole_days = period
    with local_zone(reported_in):
        since = (base + timedelta(milliseconds=start_after)).astimezone()
        until = since + timedelta(milliseconds=length)
        if whole_days:
            since, until = parse_since(f"{since.date()}"), parse_until(f"{until.date()}")
        assert_reports_follow_the_events(path, since, until)


def test_rollups_follow_retention_and_writers_that_do_not_know_them(tmp_path):
    path = tmp_path / "tracker.db"
    now = time.time()
    with HistoryWriter(path, PULSE) as writer:
        for hours_ago in range(24 * 40, 0, -7):  # every 7 hours for 40 days, some across the retention limit
            at = now - hours_ago * 3600 - START.timestamp()
            writer.add(record(at, f"app{hours_ago % 3}", duration=5 * 3600.0))
    # In whole seconds: reports count from whole milliseconds.
    year = (datetime.fromtimestamp(int(now) - 366 * 86400).astimezone(),
            datetime.fromtimestamp(int(now)).astimezone())
    with HistoryWriter(path, PULSE, retention_days=30):
        pass
    assert_reports_follow_the_events(path, *year)
    # An older version of tracker, which knows nothing of rollups, adds and lengthens events.
    with closing(sqlite3.connect(path)) as older, older:
        older.execute("INSERT INTO events (timestamp, duration, app, activity, category, score, state) "
                      "VALUES (?, 7200, 'old', 'old', 'Code', 1, 'active')", (int((now - 20 * 86400) * 1000),))
        older.execute("UPDATE events SET duration = duration + 3600 WHERE id = (SELECT MIN(id) FROM events)")
    assert_reports_follow_the_events(path, *year)  # from the events, until a writer rebuilds the rollups
    with HistoryWriter(path, PULSE):
        pass
    assert_reports_follow_the_events(path, *year)
