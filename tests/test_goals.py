"""Goals: goals.yaml checked line by line, progress per local day and week (against a sample-by-sample count with
hypothesis, across midnights and DST changes), `tracker goals`, the goals in `tracker report`, and the nudges of a
run: once per goal per period, held through quiet hours, never for away time."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from helpers.dbus_bus import PrivateBus
from helpers.notification_server import NotificationServer
from helpers.running import RunningTracker
from helpers.servers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from test_run_loop import START, Harness, make_harness

from tracker import paths
from tracker.commands import cli
from tracker.events import Event, EventData, default_pulsetime
from tracker.goals.files import GoalsWatcher, load_goals
from tracker.goals.model import Goal, Hours
from tracker.goals.progress import counted, local_date, period_of
from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, Record
from tracker.recording.goalwatch import GoalWatcher
from tracker.recording.sources.demo import CATEGORY_SCORES
from tracker.storage.history import HistoryWriter
from tracker.storage.queries import History
from tracker.timespec import local_midnight

BERLIN = ZoneInfo("Europe/Berlin")


def write_goals(text: str) -> Path:
    path = paths.config_dir() / "goals.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tracker(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, "".join(line.rstrip() + "\n" for line in result.output.splitlines())


# -- the file -------------------------------------------------------------------------------------------------

EXAMPLE = """\
quiet_hours: 22:00-08:00
week_starts: monday
goals:
  - category: Social
    at_most: 30m
  - name: Deep work
    categories: [Development, Writing]
    at_least: 4h
    days: weekdays
  - pulse: true
    at_least: 60
    hours: 09:00-17:00
  - category: Entertainment
    at_most: 3h
    per: week
    days: [sat, sun]
"""


def test_the_readme_example_is_valid_and_means_what_it_says():
    write_goals(EXAMPLE)
    assert tracker("goals", "validate") == (0, f"{paths.config_dir() / 'goals.yaml'} is valid: 4 goals.\n")
    goals = load_goals()
    assert goals.quiet_hours == Hours(22 * 60, 8 * 60) and goals.week_start == 0
    social, deep, pulse, games = goals.goals
    assert (social.name, social.categories, social.at_most, social.target, social.per) == (
        "Social at most 30m a day", ("Social",), True, 1800.0, "day")
    assert (deep.name, deep.at_most, deep.target, deep.days) == ("Deep work", False, 4 * 3600.0, frozenset(range(5)))
    assert (pulse.name, pulse.pulse, pulse.target, pulse.hours) == (
        "pulse at least 60 a day, 09:00-17:00", True, 60.0, Hours(9 * 60, 17 * 60))
    assert (games.per, games.days) == ("week", frozenset({5, 6}))


@pytest.mark.parametrize(("text", "error"), [
    ("goals:\n  - category: Social\n    at_most: 3 parsecs\n",
     "line 3: at_most '3 parsecs' is not a duration; write e.g. 30m, 4h or 1h30m"),
    ("goals:\n  - category: Social\n    at_mots: 30m\n",
     "line 3: unknown key 'at_mots' in a goal (did you mean 'at_most'?)"),
    ("goals:\n  - category: Social\n    at_most: 30m\n    at_least: 10m\n",
     "line 2: a goal takes at_most or at_least, not both"),
    ("goals:\n  - category: Social\n", "line 2: a goal needs at_most or at_least, like 'at_most: 30m'"),
    ("goals:\n  - at_most: 30m\n", "line 2: a goal needs one of category, categories or pulse: true"),
    ("goals:\n  - pulse: true\n    at_least: 160\n", "line 3: a pulse goal takes a number from 0 to 100, not '160'"),
    ("goals:\n  - category: A\n    at_most: 1h\n    hours: 22-02\n",
     "line 4: hours '22-02' crosses midnight; a goal's hours lie within one day"),
    ("goals:\n  - category: A\n    at_most: 1h\n    days: [mon, funday]\n",
     "line 4: 'funday' is not a day; write weekdays, weekends or days like mon, tue"),
    ("goals:\n  - category: A\n    at_most: 1h\n  - category: A\n    at_most: 1h\n",
     "line 4: goal 'A at most 1h a day' is there twice (first on line 2); give one a name:"),
    ("goals:\n  - category: A\n    at_most: 1h\n    per: month\n", "line 4: per 'month' should be day or week"),
    ("goals: [\n", "line 2: YAML syntax error"),
])
def test_a_mistake_is_one_sentence_with_its_line(text, error):
    path = write_goals(text)
    code, output = tracker("goals", "validate")
    assert code == 1
    assert output.startswith(f"Error: {path}, {error}")
    assert "Traceback" not in output and output.count("\n") == 1


def test_a_category_the_rules_do_not_have_is_a_mistake_with_its_line():
    path = write_goals("goals:\n  - category: Social\n    at_most: 30m\n  - category: Devlopment\n    at_least: 4h\n")
    code, output = tracker("goals", "validate")
    assert code == 1
    assert output.startswith(f"Error: {path}, line 4: there is no category named 'Devlopment' in ")
    assert "the categories are Development, Writing," in output and output.count("\n") == 1


def test_no_file_is_no_goals():
    assert tracker("goals") == (0, f"No goals yet: write them in {paths.config_dir() / 'goals.yaml'} (the README's "
                                   "Goals section has an example), then `tracker goals validate`.\n")


# -- the arithmetic -----------------------------------------------------------------------------------------

def event(start: datetime, seconds: float, category: str = "Social", score: float = -2.0,
          state: str = STATE_ACTIVE) -> Event:
    return Event(int(start.timestamp() * 1000), seconds, EventData("app", "app", category, score, None, None, state))


def goal(**changes: object) -> Goal:
    base = {"name": "g", "categories": ("Social",), "pulse": False, "at_most": True, "target": 1800.0, "per": "day"}
    return Goal(**{**base, **changes})  # type: ignore[arg-type]


def test_an_event_across_midnight_counts_on_both_days_and_a_dst_day_has_23_hours():
    evening = datetime(2025, 3, 29, 23, 30, tzinfo=BERLIN)
    events = [event(evening, 3600.0), event(datetime(2025, 3, 30, 0, 30, tzinfo=BERLIN), 30 * 3600.0)]
    daily = goal()
    saturday, sunday = period_of(daily, date(2025, 3, 29), BERLIN), period_of(daily, date(2025, 3, 30), BERLIN)
    assert counted(events, daily, saturday.since, saturday.until, BERLIN).seconds == 1800.0
    assert (sunday.until - sunday.since) == timedelta(hours=23)
    assert counted(events, daily, sunday.since, sunday.until, BERLIN).seconds == 23 * 3600.0
    # The week of Monday 24 March: Saturday's half hour and Sunday's 23 hours; the rest is the next week's.
    week = period_of(goal(per="week"), date(2025, 3, 29), BERLIN)
    assert week.first_day == date(2025, 3, 24)
    assert counted(events, goal(per="week"), week.since, week.until, BERLIN).seconds == 23.5 * 3600.0


def test_away_and_other_categories_never_count_and_the_pulse_is_the_dashboards():
    morning = datetime(2025, 6, 2, 9, 0, tzinfo=BERLIN)
    events = [event(morning, 600.0, "Development", 2.0), event(morning + timedelta(minutes=10), 300.0, AWAY, 0.0,
                                                               STATE_AWAY),
              event(morning + timedelta(minutes=15), 600.0, "Social", -1.0)]
    day = period_of(goal(), date(2025, 6, 2), BERLIN)
    assert counted(events, goal(), day.since, day.until, BERLIN).seconds == 600.0
    pulse = counted(events, goal(pulse=True, categories=()), day.since, day.until, BERLIN)
    assert pulse.seconds == 1200.0 and pulse.pulse == 50 + 25 * (600 * 2 - 600) / 1200  # 62.5


ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
# Around clock changes of these zones in 2025 (UTC): spring and autumn in Europe, the US and Lord Howe.
ANCHORS = [datetime(2025, 3, 30, 1, tzinfo=timezone.utc), datetime(2025, 10, 26, 1, tzinfo=timezone.utc),
           datetime(2025, 3, 9, 7, tzinfo=timezone.utc), datetime(2025, 11, 2, 6, tzinfo=timezone.utc),
           datetime(2025, 4, 5, 15, tzinfo=timezone.utc), datetime(2025, 10, 4, 16, tzinfo=timezone.utc)]
QUARTER_MS = 15 * 60 * 1000


def reference_by_period(events: list[Event], goal: Goal, zone: ZoneInfo, week_start: int) -> dict[date, float]:
    """Seconds per first day of the goal's period, sample by sample: each event cut at every UTC quarter hour (no
    local midnight, hour or clock change falls inside one), each piece judged by the local time it starts at."""
    sums: dict[date, float] = {}
    for item in events:
        if not item.data.active or item.data.category not in goal.categories:
            continue
        moment, end = float(item.timestamp_ms), item.end_ms
        while moment < end:
            piece_end = min(end, (moment // QUARTER_MS + 1) * QUARTER_MS)
            local = datetime.fromtimestamp(moment / 1000, zone)
            minute = local.hour * 60 + local.minute
            if local.weekday() in goal.days and (goal.hours is None or goal.hours.start <= minute < goal.hours.end):
                day = local.date()
                first = day - timedelta(days=(day.weekday() - week_start) % 7) if goal.per == "week" else day
                sums[first] = sums.get(first, 0.0) + (piece_end - moment) / 1000
            moment = piece_end
    return sums


events_strategy = st.lists(st.tuples(
    st.sampled_from(ANCHORS), st.integers(-4 * 24 * 3600, 4 * 24 * 3600), st.floats(0.5, 40 * 3600),
    st.sampled_from(["Social", "Development", AWAY]), st.booleans()), max_size=12)


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.sampled_from(ZONES), st.sampled_from(["day", "week"]),
       st.frozensets(st.integers(0, 6), min_size=1), st.one_of(st.none(), st.tuples(st.integers(0, 23),
                                                                                      st.integers(1, 24))),
       st.integers(0, 6))
def test_progress_equals_a_sample_by_sample_count(raw, zone_name, per, days, hours, week_start):
    zone = ZoneInfo(zone_name)
    events = [event(anchor + timedelta(seconds=offset), seconds, category, 1.0,
                    STATE_ACTIVE if active and category != AWAY else STATE_AWAY)
              for anchor, offset, seconds, category, active in raw]
    window = Hours(min(hours) * 60, max(hours) * 60) if hours is not None and hours[0] != hours[1] else None
    checked = goal(per=per, days=days, hours=window)
    expected = reference_by_period(events, checked, zone, week_start)
    starts = {local_date(datetime.fromtimestamp(item.timestamp_ms / 1000, timezone.utc), zone) for item in events}
    firsts = {period_of(checked, day + timedelta(days=shift), zone, week_start).first_day
              for day in starts for shift in range(-1, 3)} | set(expected)
    for first in firsts:
        period = period_of(checked, first, zone, week_start)
        assert period.first_day == first
        assert counted(events, checked, period.since, period.until, zone).seconds == pytest.approx(
            expected.get(first, 0.0), abs=1e-3)


# -- the commands --------------------------------------------------------------------------------------------

def record(start: datetime, runs: list[tuple[int, str]]) -> None:
    """One-second samples from `start`: (count, category) runs, as `tracker run` writes them."""
    moment = start
    with HistoryWriter(paths.database_file(), default_pulsetime(1.0)) as history:
        for count, category in runs:
            for _ in range(count):
                history.add(Record(time_ms=int(moment.timestamp() * 1000), duration=1.0, host="laptop",
                                   app=category.lower(), activity=category.lower(), category=category,
                                   score=2.0 if category == "Development" else -2.0))
                moment += timedelta(seconds=1)


GOALS = """\
goals:
  - category: Social
    at_most: 1m
  - category: Development
    at_least: 2m
"""


def test_tracker_goals_shows_today_from_the_local_history():
    write_goals(GOALS)
    today = datetime.now().astimezone().date()
    record(local_midnight(today) + timedelta(minutes=1), [(90, "Social"), (60, "Development")])
    code, output = tracker("goals", "--json")
    assert code == 0
    social, development = json.loads(output)["goals"]
    assert (social["name"], social["current"]["value"], social["current"]["status"]) == (
        "Social at most 1m a day", 90.0, "missed")
    assert (development["current"]["value"], development["current"]["status"]) == (60.0, "to go")
    assert social["this_week"][-1]["first_day"] == today.isoformat()
    code, output = tracker("goals")
    assert code == 0 and "Social at most 1m a day" in output and "1m today" in output and "missed" in output


def test_the_report_shows_each_day_met_or_missed():
    write_goals(GOALS)
    day = date(2024, 5, 6)
    record(local_midnight(day) + timedelta(hours=9), [(30, "Social"), (150, "Development")])
    record(local_midnight(day + timedelta(days=1)) + timedelta(hours=9), [(120, "Social"), (10, "Development")])
    code, output = tracker("report", "--since", "2024-05-06", "--until", "2024-05-07", "--json")
    assert code == 0
    social, development = json.loads(output)["goals"]
    assert [(item["first_day"], item["value"], item["status"]) for item in social["periods"]] == [
        ("2024-05-06", 30.0, "met"), ("2024-05-07", 120.0, "missed")]
    assert [item["status"] for item in development["periods"]] == ["met", "missed"]
    code, output = tracker("report", "--since", "2024-05-06", "--until", "2024-05-07")
    assert code == 0 and "Goals" in output
    row = next(line for line in output.splitlines() if "Social at most 1m a day" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        "Social at most 1m a day", "1", "1", "2024-05-06 30s 2024-05-07 2m"]


# -- while running ----------------------------------------------------------------------------------------

class RecordingNotifier:
    """Stands for tracker.ui.notifications' Notifier: records what would reach the desktop."""

    def __init__(self, run: list[Harness]) -> None:
        self.calls: list[tuple[int, str, str]] = []  # (samples shown so far, title, body)
        self.run = run
        self.closed = False

    def notify(self, title: str, body: str) -> None:
        self.calls.append((len(self.run[0].view.shown), title, body))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def goal_run() -> Iterator:
    opened: list[Harness] = []

    def make(script, stop_after: int, goals_text: str) -> tuple[Harness, RecordingNotifier]:
        write_goals(goals_text)
        made = make_harness(script, stop_after=stop_after)
        opened.append(made)
        notifier = RecordingNotifier(opened)

        def history_events(since: datetime, until: datetime) -> list[Event]:
            with History(paths.database_file()) as history:
                return history.events(since, until)

        made.run.parts.observers.append(GoalWatcher(GoalsWatcher(None, made.view.notice, check_every=0),
                                                    history_events, made.view.notice, notifier, BERLIN))
        return made, notifier

    yield make
    for made in opened:
        made.run.parts.close()


def nudges(run: Harness) -> list[str]:
    return [notice for notice in run.view.notices if notice.startswith("Goal")]


def test_a_goal_crossed_during_a_run_is_told_once_in_the_log_and_on_the_desktop(goal_run):
    run, notifier = goal_run(lambda t: ("code", 0.0), 150, "goals:\n  - category: Development\n    at_most: 1m\n"
                                                           "  - category: Development\n    at_least: 90s\n")
    run.run.run()
    assert nudges(run) == ["Goal crossed: Development at most 1m a day: More than the 1m you allowed today.",
                           "Goal met: Development at least 1m 30s a day: 1m 30s today, as you aimed for."]
    # Told while the 61st and the 90th sample are recorded, before they are shown.
    assert [(shown, title) for shown, title, _ in notifier.calls] == [
        (60, "Goal crossed: Development at most 1m a day"), (89, "Goal met: Development at least 1m 30s a day")]


def test_quiet_hours_hold_a_nudge_until_they_end(goal_run):
    # The run starts at 10:00 in Berlin; quiet until 10:01.
    run, notifier = goal_run(lambda t: ("code", 0.0), 90,
                             "quiet_hours: 22:00-10:01\ngoals:\n  - category: Development\n    at_least: 10s\n")
    run.run.run()
    # Met at 10:00:09, told with the sample of 10:01:00.
    assert [(shown, title) for shown, title, _ in notifier.calls] == [(60, "Goal met: Development at least 10s a day")]
    assert len(nudges(run)) == 1


def test_time_found_away_is_taken_back_and_time_before_the_run_counts(goal_run):
    record(START - timedelta(hours=1), [(10, "Development")])  # 10 s earlier today, before this run

    def script(t: float) -> tuple[str, float]:
        # Input until 15 s, then none until 30 s: away after 15 s, declared at 20 s (away_after 5 s).
        return "code", (t - 15 if 15 <= t < 30 else 0.0)

    run, notifier = goal_run(script, 60, "goals:\n  - category: Development\n    at_least: 35s\n")
    run.run.run()
    # 10 s before, 0-15 s (input at 15 s) and 30-38 s: met at the sample of 38 s. Counting the away time would
    # have met it at 24 s.
    assert [shown for shown, _, _ in notifier.calls] == [38]


def test_goals_changed_while_running_are_followed_and_a_bad_edit_is_said_once(goal_run):
    run, notifier = goal_run(lambda t: ("code", 0.0), 60, "goals:\n  - category: Development\n    at_least: 1h\n")

    def edit(clock) -> None:
        if len(clock.waits) == 10:
            write_goals("goals:\n  - category: Development\n    at_least: 1h\n    hours: 9-\n")
        if len(clock.waits) == 20:
            write_goals("goals:\n  - category: Development\n    at_least: 30s\n")

    run.clock.on_wait = edit
    run.run.run()
    errors = [notice for notice in run.view.notices if "goals.yaml" in notice]
    assert len(errors) == 1 and "line 4: hours '9-' should be two times of day" in errors[0]
    assert [title for _, title, _ in notifier.calls] == ["Goal met: Development at least 30s a day"]


# -- a real `tracker run` ---------------------------------------------------------------------------------------

def test_a_real_run_tells_a_crossed_goal_once_on_the_desktop_and_sends_its_progress_to_influxdb(
        tracker_home, influxdb1, influx_database, tmp_path: Path):
    bus = PrivateBus(tmp_path, activation=False)
    server = NotificationServer(bus.address)
    every_demo_category = ", ".join(f'"{name}"' for name in CATEGORY_SCORES)
    write_goals(f"goals:\n  - name: Screen time\n    categories: [{every_demo_category}]\n    at_most: 3s\n")
    run = RunningTracker("--source", "demo", "--quiet", env={
        **os.environ, "TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database,
        "DBUS_SESSION_BUS_ADDRESS": bus.address})
    try:
        wait_until(lambda: run.said("Goal crossed"), timeout=30, what="the goal crossed")
        points = wait_until(lambda: influxdb1.rows('SELECT * FROM "goals"', influx_database), timeout=30,
                            what="goals points in InfluxDB")
        # Samples well past the crossing reached InfluxDB: the goal was told once all the same.
        def samples_sent() -> int:
            rows = influxdb1.rows('SELECT count("duration") FROM "activity"', influx_database)
            return rows[0]["count"] if rows else 0

        wait_until(lambda: samples_sent() >= 10, timeout=30, what="ten samples in InfluxDB")
    finally:
        code, _ = run.stop()
        server.stop()
        bus.stop()
    assert code == 0
    told = [line for line in run.lines if "Goal crossed" in line]
    assert len(told) == 1 and told[0].endswith("Goal crossed: Screen time: More than the 3s you allowed today.")
    assert [(call.app_name, call.summary, call.body) for call in server.calls] == [
        ("tracker", "Goal crossed: Screen time", "More than the 3s you allowed today.")]
    assert points[0]["goal"] == "Screen time" and points[0]["limit"] == "at_most" and points[0]["target"] == 3.0


def test_a_real_run_without_a_notification_server_says_so_once_and_tells_the_goal_in_the_log(
        tracker_home, tmp_path: Path):
    bus = PrivateBus(tmp_path, activation=False)
    write_goals("goals:\n  - name: Any time\n    categories: [" +
                ", ".join(f'"{name}"' for name in CATEGORY_SCORES) + "]\n    at_most: 1s\n")
    run = RunningTracker("--source", "demo", "--quiet", env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus.address})
    try:
        wait_until(lambda: run.said("notification"), timeout=30, what="the sentence about notifications")
    finally:
        code, _ = run.stop()
        bus.stop()
    assert code == 0
    assert len([line for line in run.lines if "Goal crossed: Any time" in line]) == 1
    said = [line for line in run.lines if "notification" in line.lower()]
    assert len(said) == 1 and said[0].endswith(
        "No notification server answers on the session bus, so goal nudges are shown in the log only."), said


def test_a_new_day_starts_each_goal_again(goal_run):
    # From 23:59:00 in Berlin: a minute before midnight, then the next day.
    def script(t: float) -> tuple[str, float]:
        return "code", 0.0

    run, notifier = goal_run(script, 100, "goals:\n  - category: Development\n    at_least: 30s\n")
    watcher = run.run.parts.observers[-1]
    assert isinstance(watcher, GoalWatcher)
    run.clock.wall_ahead = (datetime(2026, 11, 2, 23, 59, tzinfo=BERLIN) - START).total_seconds()
    run.run.run()
    # Met at 23:59:29 and again at 00:00:29, once each day.
    assert [(shown, body) for shown, _, body in notifier.calls] == [
        (29, "30s today, as you aimed for."), (89, "30s today, as you aimed for.")]


def test_a_broken_goals_file_leaves_the_report_whole_and_says_why():
    path = write_goals("goals:\n  - category: Social\n    at_most: soon\n")
    record(local_midnight(date(2024, 5, 6)) + timedelta(hours=9), [(30, "Social")])
    result = CliRunner().invoke(cli, ["report", "--since", "2024-05-06", "--until", "2024-05-06"])
    assert result.exit_code == 0 and "Social" in result.stdout and "Goals" not in result.stdout
    assert result.stderr == (f"Goals left out: {path}, line 3: at_most 'soon' is not a duration; write e.g. 30m, "
                             "4h or 1h30m\n")
    assert tracker("goals")[0] == 1
