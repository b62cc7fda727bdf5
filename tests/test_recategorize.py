"""`tracker recategorize`: today's categories applied to the local history, the outbox and this host's points in
InfluxDB, as a user runs it; totals never change, and a kill -9 at any moment and a rerun end the same."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers.grafana_macros import PanelRequest, Raw
from helpers.recategorizing import (
    AFTER,
    BEFORE,
    HOST,
    KINDS,
    OTHER_HOST,
    SCORES_BEFORE,
    START,
    STEP,
    after,
    day_of_records,
    killed_and_rerun,
    not_trackers_line,
    record_locally,
    recorded_and_sent,
    report_by_category,
    seconds_by,
    tracker,
    write_host,
    write_rules,
)
from helpers.servers import InfluxDB1, http, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker import paths
from tracker.config import InfluxSettings
from tracker.events import default_pulsetime
from tracker.lineprotocol import to_line
from tracker.model import AWAY, UNCATEGORIZED, Record
from tracker.sending.corrections import correcting_sender
from tracker.storage.history import HistoryWriter
from tracker.storage.outbox import Outbox
from tracker.storage.queries import History

ROOT = Path(__file__).resolve().parents[1]


def rollups(path: Path) -> tuple[dict[tuple, float], dict[int, tuple[float, float]]]:
    with sqlite3.connect(path) as db:
        days = {tuple(row[:5]): (row[5], row[6]) for row in db.execute("SELECT * FROM day_totals")}
        quarters = {row[0]: (row[1], row[2]) for row in db.execute("SELECT * FROM quarter_hour_totals")}
    return days, quarters


def rebuilt_rollups(path: Path, copy: Path) -> tuple[dict[tuple, float], dict[int, tuple[float, float]]]:
    """The rollups a rebuild from the events gives, on a copy of the file."""
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as db:
        db.execute("DELETE FROM rollups_in_step")
    with HistoryWriter(copy, default_pulsetime(STEP)):
        pass  # opening rebuilds out-of-step rollups
    return rollups(copy)


def assert_same_rollups(got: tuple[dict, dict], expected: tuple[dict, dict]) -> None:
    assert set(got[0]) == set(expected[0])
    for key, value in expected[0].items():
        assert got[0][key] == pytest.approx(value, abs=1e-6), key
    assert set(got[1]) == set(expected[1])
    for key, value in expected[1].items():
        assert got[1][key] == pytest.approx(value, abs=1e-6), key


def rollups_in_step(path: Path) -> bool:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT 1 FROM rollups_in_step").fetchone() is not None


# ---------------------------------------------------------------- the local history and the outbox


def test_local_history_moves_and_totals_stay(tmp_path: Path) -> None:
    write_rules(BEFORE)
    records = day_of_records()
    record_locally(records)
    before = report_by_category()
    assert before == pytest.approx(seconds_by(records))

    write_rules(AFTER)
    code, output = tracker("recategorize", "--all")
    assert code == 0, output
    after_report = report_by_category()
    assert after_report == pytest.approx(seconds_by(records, after))
    assert sum(after_report.values()) == pytest.approx(sum(before.values()))
    assert "Local history: moved" in output
    assert "Communication → Meetings: 0.33 h" in output  # 4 stretches × 30 × 10 s = 1200 s
    assert "Social → Learning: 0.33 h" in output
    assert "InfluxDB is not configured: only the local history was recategorised." in output
    # Away time stays away; the rollups agree with a rebuild from the events.
    code, output = tracker("report", "--since", "2024-05-01", "--until", "2024-06-30", "--json")
    assert json.loads(output)["away_seconds"] == pytest.approx(seconds_by(records, active_only=False)[AWAY])
    assert_same_rollups(rollups(paths.database_file()), rebuilt_rollups(paths.database_file(), tmp_path / "c.db"))


def test_waiting_outbox_rows_carry_the_new_category_in_their_line() -> None:
    write_rules(BEFORE)
    records = day_of_records(per_stretch=2)
    record_locally(records)
    write_rules(AFTER)
    code, output = tracker("recategorize", "--all")
    assert code == 0, output
    moved = sum(1 for record in records if after(record) != record.category)
    assert f"Outbox: {moved} samples waiting to be sent now carry today's categories." in output
    with Outbox(paths.database_file()) as outbox:
        lines = [line for _, line in outbox.pending_lines(10_000)]
    assert len(lines) == len(records)
    for record, line in zip(records, lines, strict=True):
        assert f",category={after(record)}," in line, line
    assert not any("category=Social" in line for line in lines)


def test_dry_run_prints_the_moves_in_hours_and_changes_nothing() -> None:
    write_rules(BEFORE)
    records = day_of_records()
    record_locally(records)
    before = report_by_category()
    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", "--dry-run")
    assert code == 0, output
    assert output.splitlines()[:3] == ["Local history: would move", "  Communication → Meetings: 0.33 h",
                                       "  Social → Learning: 0.33 h"]
    assert output.rstrip().endswith("Nothing was changed (--dry-run).")
    assert report_by_category() == before
    with Outbox(paths.database_file()) as outbox:
        assert not any("Learning" in line for _, line in outbox.pending_lines(10_000))


def test_since_leaves_older_history_alone() -> None:
    write_rules(BEFORE)
    old = day_of_records(start=START - timedelta(days=40))
    recent = day_of_records(start=datetime.now(timezone.utc) - timedelta(days=2))
    record_locally(old + recent)
    write_rules(AFTER)
    code, output = tracker("recategorize", "--since", "7d")
    assert code == 0, output
    assert report_by_category("2024-03-01", "2024-04-30") == pytest.approx(seconds_by(old))
    assert report_by_category("7d", "today") == pytest.approx(seconds_by(recent, after))


def test_nothing_to_move_says_so() -> None:
    write_rules(BEFORE)
    record_locally(day_of_records(per_stretch=3))
    code, output = tracker("recategorize")
    assert code == 0, output
    assert output.startswith("Local history: no time changed category.")


def test_time_whose_details_privacy_dropped_keeps_what_a_domain_rule_decided() -> None:
    """A private window on github.com was Development by its URL, which was never kept: its app alone cannot
    tell that again, so it stays. Time in a category only app rules decide follows its app."""
    write_rules(BEFORE)
    moment = int(START.timestamp() * 1000)
    private = [Record(moment + index * 10_000, STEP, HOST, "Firefox", "Firefox", "Development", 2.0)
               for index in range(30)]
    chat = [Record(moment + 400_000 + index * 10_000, STEP, HOST, "Slack", "Slack", "Communication", 0.0)
            for index in range(30)]
    record_locally(private + chat)
    write_rules(BEFORE.replace("Communication: {score: 0, apps: [Slack]}", "Chat: {score: 0, apps: [Slack]}"))
    code, output = tracker("recategorize", "--all")
    assert code == 0, output
    assert report_by_category() == pytest.approx({"Development": 300.0, "Chat": 300.0})
    code, output = tracker("recategorize", "--all")
    assert output.startswith("Local history: no time changed category."), output


def test_since_and_all_together_is_a_usage_error() -> None:
    code, output = tracker("recategorize", "--all", "--since", "7d")
    assert code == 2 and "choose one of --since and --all" in output


def test_a_changed_last_event_leaves_the_rollups_for_the_runner_to_rebuild(tmp_path: Path) -> None:
    """`tracker run` holds the last event in memory with its old category: its next write rebuilds the rollups."""
    write_rules(BEFORE)
    records = day_of_records(per_stretch=3)
    last = records[-1]
    tail = Record(last.time_ms + 10_000, STEP, HOST, "Firefox", "reddit.com", "Social", -2.0, title="r/python",
                  url="https://www.reddit.com/r/python")
    record_locally([*records, tail])
    write_rules(AFTER)
    assert tracker("recategorize", "--all")[0] == 0
    assert not rollups_in_step(paths.database_file())
    # The runner's writer goes on with the old event in memory, then rebuilds: the rollups are right again.
    with HistoryWriter(paths.database_file(), default_pulsetime(STEP), write_every=0.0) as history:
        history.add(Record(tail.time_ms + 10_000, STEP, HOST, "Firefox", "reddit.com", "Learning", 1.0,
                           title="r/python", url="https://www.reddit.com/r/python"))
    assert rollups_in_step(paths.database_file())
    assert_same_rollups(rollups(paths.database_file()), rebuilt_rollups(paths.database_file(), tmp_path / "c.db"))


EVENT_KINDS = st.sampled_from(KINDS)
DATABASE_NUMBERS = itertools.count()  # hypothesis seeds `random` alike in each example: a counter names each file


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stretches=st.lists(st.tuples(EVENT_KINDS, st.integers(1, 120), st.floats(0.5, 30.0)), min_size=1,
                          max_size=12),
       since_offset=st.integers(0, 3 * 86_400))
def test_rollups_after_recategorizing_equal_a_rebuild(tmp_path: Path, stretches: list, since_offset: int) -> None:
    """Events of any length, across quarter hours and days, from any --since: the incrementally updated
    rollups equal the ones rebuilt from the events."""
    database = tmp_path / f"history{next(DATABASE_NUMBERS)}.db"
    moment = int(START.timestamp() * 1000)
    with HistoryWriter(database, default_pulsetime(STEP)) as history:
        for (app, activity, title, url, category, _, _), count, gap in stretches:
            for _ in range(count):
                history.add(Record(moment, STEP, HOST, app, activity, category, SCORES_BEFORE[category],
                                   title=title, url=url))
                moment += int(STEP * 1000)
            moment += int(gap * 60_000)
        history.add(Record(moment, STEP, HOST, "Terminal", "Terminal", UNCATEGORIZED, 0.0))  # last, unmoved
    from tracker.categories.files import parse_categories
    from tracker.categories.reclassify import Reclassifier

    rules = parse_categories(AFTER, tmp_path / "categories.yaml")
    with HistoryWriter(database, default_pulsetime(STEP)) as history:
        history.recategorize(int(START.timestamp() * 1000) + since_offset * 1000,
                             Reclassifier(rules))
    assert rollups_in_step(database)
    assert_same_rollups(rollups(database), rebuilt_rollups(database, database.with_suffix(".copy")))
    with History(database) as history:
        assert not [row for row in rollups(database)[0].values() if abs(row[0]) < 1e-6]
        assert history.summary(START - timedelta(days=1), START + timedelta(days=30)).active_seconds == pytest.approx(
            sum(count * STEP for _, count, _ in stretches) + STEP)


# ---------------------------------------------------------------- InfluxDB 1.x


def influx_env(server: InfluxDB1, database: str) -> dict[str, str]:
    return {"TRACKER_INFLUX_URL": server.url, "TRACKER_INFLUX_BUCKET": database, "TRACKER_INFLUX_API": "v1"}


def dashboard_time_per_category(server: InfluxDB1, database: str, host: str, start_ms: int, end_ms: int
                                ) -> dict[str, float]:
    """The dashboard's "Time per category" panel, its query as Grafana sends it, for one host."""
    dashboard = json.loads((ROOT / "grafana" / "tracker.json").read_text(encoding="utf-8"))
    (panel,) = [panel for panel in dashboard["panels"] if panel.get("title") == "Time per category"]
    (target,) = panel["targets"]
    query = PanelRequest(start_ms, end_ms, 60_000, {"host": [host], "category": Raw(".*")}).render(target["query"])
    return {row["category"]: row["sum"] for row in server.rows(query, database)}


def influx_totals(server: InfluxDB1, database: str, host: str) -> tuple[float, int]:
    rows = server.rows(f"SELECT sum(\"duration\"), count(\"duration\") FROM activity WHERE host = '{host}'", database)
    return (rows[0]["sum"], rows[0]["count"]) if rows else (0.0, 0)


def write_points(server: InfluxDB1, database: str, lines: list[str]) -> None:
    """Points written straight to InfluxDB, as another machine or `tracker demo` writes them."""
    status, reply = http("POST", f"{server.url}/write?db={database}&precision=ms", "\n".join(lines).encode())
    assert status == 204, reply


WHOLE_RANGE = (int((START - timedelta(days=60)).timestamp() * 1000), int(time.time() * 1000))


def test_influxdb_points_move_and_the_dashboard_follows(influxdb1: InfluxDB1, influx_database: str) -> None:
    env = influx_env(influxdb1, influx_database)
    write_host(HOST)
    write_rules(BEFORE)
    records = day_of_records(days=3)
    record_locally(records)
    other = day_of_records(host=OTHER_HOST, per_stretch=5)  # another machine's points: never touched
    write_points(influxdb1, influx_database, [to_line(record) for record in other])
    code, output = tracker("sync", **env)
    assert code == 0, output
    other_before = dashboard_time_per_category(influxdb1, influx_database, OTHER_HOST, *WHOLE_RANGE)
    before = dashboard_time_per_category(influxdb1, influx_database, HOST, *WHOLE_RANGE)
    assert before == pytest.approx(seconds_by(records))
    totals_before = influx_totals(influxdb1, influx_database, HOST)

    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", "--dry-run", **env)
    assert code == 0, output
    assert f"InfluxDB at {influxdb1.url}: would move\n  Communication → Meetings: 1.00 h\n" in output
    assert dashboard_time_per_category(influxdb1, influx_database, HOST, *WHOLE_RANGE) == before

    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert (f"InfluxDB at {influxdb1.url}: moved\n  Communication → Meetings: 1.00 h\n"
            "  Social → Learning: 1.00 h") in output
    assert dashboard_time_per_category(influxdb1, influx_database, HOST, *WHOLE_RANGE) == pytest.approx(
        seconds_by(records, after))
    assert influx_totals(influxdb1, influx_database, HOST) == (pytest.approx(totals_before[0]), totals_before[1])
    assert report_by_category() == pytest.approx(seconds_by(records, after))
    assert dashboard_time_per_category(influxdb1, influx_database, OTHER_HOST, *WHOLE_RANGE) == other_before
    # Points keep their fields: each moved point has its title, URL and new score.
    stored = influxdb1.rows(f"SELECT * FROM activity WHERE host = '{HOST}' AND category = 'Learning'",
                            influx_database)
    assert {(row["title"], row["url"], row["score"], row["app"]) for row in stored} == {
        ("r/python", "https://www.reddit.com/r/python", 1.0, "Firefox")}
    # A second run finds nothing left to move.
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0 and f"InfluxDB at {influxdb1.url}: no time changed category." in output, output


def test_since_bounds_the_points_corrected(influxdb1: InfluxDB1, influx_database: str) -> None:
    env = influx_env(influxdb1, influx_database)
    write_host(HOST)
    write_rules(BEFORE)
    now = datetime.now(timezone.utc)
    old = day_of_records(start=now - timedelta(days=20), per_stretch=5)
    recent = day_of_records(start=now - timedelta(days=1, hours=2), per_stretch=5)
    record_locally(old + recent)
    assert tracker("sync", **env)[0] == 0
    write_rules(AFTER)
    code, output = tracker("recategorize", "--since", "7d", **env)
    assert code == 0, output
    old_range = (old[0].time_ms, old[-1].time_ms + 10_000)
    recent_range = (recent[0].time_ms, recent[-1].time_ms + 10_000)
    assert dashboard_time_per_category(influxdb1, influx_database, HOST, *old_range) == pytest.approx(seconds_by(old))
    assert dashboard_time_per_category(influxdb1, influx_database, HOST, *recent_range) == pytest.approx(
        seconds_by(recent, after))


def recategorized_while_down(server: InfluxDB1) -> tuple[list[Record], tuple[int, str]]:
    """Records sent under BEFORE, then `tracker recategorize --all` under AFTER while `server` is stopped."""
    server.create_database("tracker")
    env = influx_env(server, "tracker")
    records = day_of_records(per_stretch=5)
    recorded_and_sent(records, env)
    write_rules(AFTER)
    server.stop()
    return records, tracker("recategorize", "--all", **env)


def test_with_influxdb_down_the_local_part_happens_and_tracker_sync_corrects_influxdb_once_it_answers(
        own_influxdb1: InfluxDB1) -> None:
    env = influx_env(own_influxdb1, "tracker")
    records, (code, output) = recategorized_while_down(own_influxdb1)
    assert code == 0, output
    assert "Local history: moved" in output
    assert "unreachable" in output
    assert ("The local history was recategorised; the points in InfluxDB will be when it answers again (`tracker run`"
            " or `tracker sync` does it on its own).") in output
    assert "Traceback" not in output
    assert report_by_category() == pytest.approx(seconds_by(records, after))
    # The rules change again before the server is back: InfluxDB still gets those the command applied, as
    # the local history did, so both agree.
    write_rules(BEFORE)
    own_influxdb1.start()
    code, output = tracker("sync", **env)
    assert code == 0, output
    assert "InfluxDB answers again: the recategorisation asked for at " in output
    assert dashboard_time_per_category(own_influxdb1, "tracker", HOST, *WHOLE_RANGE) == pytest.approx(
        seconds_by(records, after))
    assert report_by_category() == pytest.approx(seconds_by(records, after))
    code, output = tracker("sync", **env)  # done once, not again
    assert code == 0 and "recategorisation" not in output, output


def test_a_running_tracker_corrects_influxdb_when_it_answers_again(own_influxdb1: InfluxDB1) -> None:
    records, (code, _) = recategorized_while_down(own_influxdb1)
    assert code == 0
    said: list[str] = []
    influx = InfluxSettings(url=own_influxdb1.url, bucket="tracker", api="v1")
    sender = correcting_sender(paths.database_file(), influx, said.append, min_interval=0.2, poll_interval=0.2,
                               first_retry=0.2, max_retry=0.5, deferred_every=0.5)
    sender.start()  # as `tracker run` does
    try:
        own_influxdb1.start()
        wait_until(lambda: any("the recategorisation asked for" in line for line in said), timeout=60,
                   what="the running sender to make the deferred recategorisation")
    finally:
        sender.stop()
    assert dashboard_time_per_category(own_influxdb1, "tracker", HOST, *WHOLE_RANGE) == pytest.approx(
        seconds_by(records, after))


def test_victoriametrics_is_not_corrected_and_it_says_so(victoria: Any) -> None:
    write_host(HOST)
    write_rules(BEFORE)
    records = day_of_records(per_stretch=2)
    record_locally(records)
    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", TRACKER_INFLUX_URL=victoria.url, TRACKER_INFLUX_BUCKET="x")
    assert code == 0, output
    assert ("tracker corrects points only in InfluxDB 1.x (InfluxQL DELETE) and 2.x (/api/v2/delete); this server"
            " names no InfluxDB version, so the points already sent keep their old categories.") in output
    assert report_by_category() == pytest.approx(seconds_by(records, after))


# ---------------------------------------------------------------- kill -9 part-way, then run again

def test_killed_at_random_moments_a_rerun_ends_the_same(influxdb1: InfluxDB1, influx_database: str) -> None:
    env = influx_env(influxdb1, influx_database)
    records = day_of_records(days=10, per_stretch=40)  # 10,400 points in 6 batches, 3,200 of them to move
    recorded_and_sent(records, env)
    killed_and_rerun(records, env, lambda: influx_totals(influxdb1, influx_database, HOST),
                     lambda: dashboard_time_per_category(influxdb1, influx_database, HOST, *WHOLE_RANGE))


# ---------------------------------------------------------------- beside a running `tracker run`

def renamed_bundled_categories() -> str:
    """The bundled rules with every category renamed "New …": every categorised second moves."""
    from tracker.categories.files import bundled_categories_path

    lines = bundled_categories_path().read_text(encoding="utf-8").splitlines()
    return "\n".join(f"  New {line.strip()}" if line.startswith("  ") and not line.startswith("   ")
                     and line.rstrip().endswith(":") else line for line in lines) + "\n"


def events_where(condition: str) -> list[tuple]:
    with sqlite3.connect(paths.database_file()) as db:
        return db.execute(f"SELECT id, timestamp, duration, category FROM events WHERE {condition}").fetchall()


def test_beside_a_running_tracker_run_everything_ends_under_the_new_names(
        influxdb1: InfluxDB1, influx_database: str, tmp_path: Path) -> None:
    env = influx_env(influxdb1, influx_database)
    write_host(HOST)
    command = [str(Path(sys.executable).parent / "tracker"), "run", "--source", "demo", "--interval", "0.05",
               "--quiet"]
    runner = subprocess.Popen(command, env={**os.environ, **env, "PYTHONFAULTHANDLER": "1"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        wait_until(lambda: events_where(f"category NOT IN ('{AWAY}', '{UNCATEGORIZED}')"), 60,
                   "a categorised event in the history")
        wait_until(lambda: influx_totals(influxdb1, influx_database, HOST)[1] > 0, 60, "points in InfluxDB")
        write_rules(renamed_bundled_categories())
        # The runner reloads the rules within seconds; from then on it records the new names.
        wait_until(lambda: events_where("category LIKE 'New %'"), 60, "the runner to use the new rules")
        code, output = tracker("recategorize", "--all", **env)
        assert code == 0, output
        assert "Local history: moved" in output
        sent = influx_totals(influxdb1, influx_database, HOST)[1]
        wait_until(lambda: influx_totals(influxdb1, influx_database, HOST)[1] > sent + 40, 60,
                   "the runner to record and send on")
    finally:
        runner.terminate()
        try:
            runner.wait(30)
        except subprocess.TimeoutExpired:
            runner.send_signal(signal.SIGABRT)
            runner.wait(10)
            raise AssertionError(runner.stderr.read().decode()) from None
        assert runner.returncode == 0, runner.stderr.read() if runner.stderr else ""
    assert tracker("sync", **env)[0] == 0
    old_names = {name for name in report_by_category("2000-01-01", "today")
                 if not name.startswith("New ") and name != UNCATEGORIZED}
    assert old_names == set()
    shown = dashboard_time_per_category(influxdb1, influx_database, HOST, 0, int(time.time() * 1000) + 60_000)
    assert {name for name in shown if not name.startswith("New ") and name not in (UNCATEGORIZED, AWAY)} == set()
    assert rollups_in_step(paths.database_file())
    assert_same_rollups(rollups(paths.database_file()), rebuilt_rollups(paths.database_file(), tmp_path / "c.db"))


@given(st.lists(st.tuples(st.integers(0, 50), st.booleans()), unique_by=lambda point: point[0]))
def test_delete_ranges_take_every_moved_point_of_a_series_and_no_kept_one(points: list[tuple[int, bool]]) -> None:
    from tracker.sending.corrections import _moved_runs

    runs = list(_moved_runs(points))
    deleted = {time_ms for time_ms, _ in points if any(first <= time_ms <= last for first, last in runs)}
    assert deleted == {time_ms for time_ms, moved in points if moved}
    assert all(first <= last for first, last in runs)


def test_a_changed_score_alone_rewrites_the_scores_and_keeps_the_time(influxdb1: InfluxDB1,
                                                                       influx_database: str) -> None:
    env = influx_env(influxdb1, influx_database)
    records = day_of_records(per_stretch=10)
    recorded_and_sent(records, env)
    totals = influx_totals(influxdb1, influx_database, HOST)
    write_rules(BEFORE.replace("Development: {score: 2,", "Development: {score: 1.5,"))
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert f"InfluxDB at {influxdb1.url}: no time changed category." in output
    assert influx_totals(influxdb1, influx_database, HOST) == (pytest.approx(totals[0]), totals[1])
    scores = influxdb1.rows(f"SELECT score FROM activity WHERE host = '{HOST}' AND category = 'Development'",
                            influx_database)
    assert {row["score"] for row in scores} == {1.5}
    code, output = tracker("report", "--since", "2024-05-01", "--until", "2024-06-30", "--json")
    development = next(row for row in json.loads(output)["rows"] if row["name"] == "Development")
    assert development["score"] == pytest.approx(1.5)



def test_a_sender_at_the_worst_moment_waits_and_nothing_is_lost(influxdb1: InfluxDB1, influx_database: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender of a running `tracker run` tries to send right after the rewritten rows are committed, before
    the old points are deleted: with a changed score the new points share the old ones' series, so the DELETE
    would take them too, and they would be gone from InfluxDB and the outbox. It has to wait for send.lock."""
    from tracker.config import InfluxSettings
    from tracker.sending import sender as sender_module
    from tracker.sending.sinks import influx_v1

    env = influx_env(influxdb1, influx_database)
    records = day_of_records(days=2, per_stretch=20)
    recorded_and_sent(records, env)
    totals = influx_totals(influxdb1, influx_database, HOST)
    write_rules(BEFORE.replace("Development: {score: 2,", "Development: {score: 1.5,"))

    monkeypatch.setattr(sender_module, "SYNC_LOCK_WAIT", 0.5)
    settings = InfluxSettings(url=influxdb1.url, bucket=influx_database, api="v1")
    attempts: list[sender_module.SyncResult] = []
    execute = influx_v1.execute

    def send_first_then_execute(*args: Any, **kwargs: Any) -> Any:
        if args[2].startswith("DELETE"):
            attempts.append(correcting_sender(paths.database_file(), settings, lambda _: None,
                                              deferred=False).send_all())
        return execute(*args, **kwargs)

    monkeypatch.setattr(influx_v1, "execute", send_first_then_execute)
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert attempts and all(attempt.sent == 0 and "Another tracker" in (attempt.error or "") for attempt in attempts)
    assert influx_totals(influxdb1, influx_database, HOST) == (pytest.approx(totals[0]), totals[1])
    development = influxdb1.rows(f"SELECT score FROM activity WHERE host = '{HOST}' AND category = 'Development'",
                                 influx_database)
    assert {row["score"] for row in development} == {1.5}


def test_points_in_influxdb_without_a_local_history_are_corrected(influxdb1: InfluxDB1, influx_database: str) -> None:
    """A new machine, or a wiped data directory: the host's points are in InfluxDB only."""
    env = influx_env(influxdb1, influx_database)
    write_host(HOST)
    records = day_of_records(per_stretch=5)
    write_points(influxdb1, influx_database, [to_line(record) for record in records])
    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert output.startswith("Local history: no time changed category.\n")
    assert dashboard_time_per_category(influxdb1, influx_database, HOST, *WHOLE_RANGE) == pytest.approx(
        seconds_by(records, after))


def test_a_retention_policy_in_the_bucket_is_read_and_corrected(influxdb1: InfluxDB1, influx_database: str) -> None:
    influxdb1.query(f'CREATE RETENTION POLICY "year" ON "{influx_database}" DURATION 520w REPLICATION 1',
                    method="POST")
    env = {**influx_env(influxdb1, influx_database), "TRACKER_INFLUX_BUCKET": f"{influx_database}/year"}
    records = day_of_records(per_stretch=5)
    recorded_and_sent(records, env)
    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    rows = influxdb1.rows('SELECT sum("duration") FROM "year"."activity" WHERE "state" = \'active\''
                          ' GROUP BY "category"', influx_database)
    assert {row["category"]: row["sum"] for row in rows} == pytest.approx(seconds_by(records, after))


def test_a_query_answer_longer_than_read_is_refused_not_taken_as_empty(influxdb1: InfluxDB1,
                                                                        influx_database: str) -> None:
    """A cut answer is no JSON: read as "no points", recategorize would have found nothing to move."""
    from tracker.config import InfluxSettings
    from tracker.sending.sinks import TooLarge
    from tracker.sending.sinks.influx_v1 import execute

    records = day_of_records(per_stretch=5)
    write_points(influxdb1, influx_database, [to_line(record) for record in records])
    settings = InfluxSettings(url=influxdb1.url, bucket=influx_database, api="v1")
    with pytest.raises(TooLarge, match="answered a query with more than 10,000 bytes"):
        execute(settings, influx_database, "SELECT * FROM activity", body_cap=10_000)
    (result,) = execute(settings, influx_database, "SELECT * FROM activity", epoch="ms", body_cap=10_000_000)
    assert len(result["series"][0]["values"]) == len(records)


@given(app=st.sampled_from(["Code", "Firefox", "Slack", "Gimp", "firefox"]),
       title=st.sampled_from([None, "#standup | Acme", "model.py — Code", "r/python", "anything"]),
       url=st.sampled_from([None, "https://www.reddit.com/r/python", "https://github.com/x", "https://example.org"]),
       private=st.booleans(), rules=st.sampled_from([BEFORE, AFTER]))
def test_with_unchanged_rules_nothing_moves(app: str, title: str | None, url: str | None, private: bool,
                                            rules: str) -> None:
    """Recorded as `tracker run` records (classified, then details dropped for a private window), then
    reclassified with the same rules: the category stays."""
    from tracker.categories.files import parse_categories
    from tracker.categories.reclassify import Reclassifier
    from tracker.model import Sample

    categories = parse_categories(rules, Path("categories.yaml"))
    sample = Sample(START, app, title, url, private=private)
    match = categories.classify(sample)
    kept = sample.without_details() if private else sample
    record = Record(0, STEP, HOST, app, kept.activity, match.category, match.score, title=kept.title, url=kept.url)
    again = Reclassifier(categories)(record)
    assert again is None or (again.category, again.score) == (record.category, record.score)


# Points of this host that tracker did not write: how each is written, and the InfluxQL conditions that pick
# them out and leave them out (InfluxQL has no NOT).
NOT_TRACKERS = {"a tag more (demo=true, as tracker demo writes)": ("demo", "demo = 'true'", "demo != 'true'"),
                "without the app tag": ("appless", "app = ''", "app != ''")}


@pytest.mark.parametrize(("kind", "theirs", "ours"), NOT_TRACKERS.values(), ids=NOT_TRACKERS.keys())
def test_points_tracker_did_not_write_are_left_alone(influxdb1: InfluxDB1, influx_database: str, kind: str,
                                                     theirs: str, ours: str) -> None:
    """Among this host's points, some carry one more tag (a DELETE by the usual tags would take them too, so the
    ranges deleted go around them) or lack one (2.x's delete predicate cannot name a missing tag; 1.x does the
    same): they keep their category."""
    env = influx_env(influxdb1, influx_database)
    records = day_of_records(per_stretch=6)
    recorded_and_sent(records, env)
    foreign = [replace(record, time_ms=record.time_ms + 5_000) for record in records if record.category == "Social"]
    write_points(influxdb1, influx_database, [not_trackers_line(kind, record) for record in foreign])
    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert f"{len(foreign)} points with tags tracker does not write (such as demo=true), or without one" in output
    kept = influxdb1.rows(f"SELECT count(\"duration\") FROM activity WHERE host = '{HOST}' AND {theirs}"
                          " GROUP BY category", influx_database)
    assert {row["category"]: row["count"] for row in kept} == {"Social": len(foreign)}
    moved = influxdb1.rows(f"SELECT sum(\"duration\") FROM activity WHERE host = '{HOST}' AND {ours}"
                           " AND state = 'active' GROUP BY category", influx_database)
    assert {row["category"]: row["sum"] for row in moved} == pytest.approx(seconds_by(records, after))
