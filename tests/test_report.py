"""`tracker report` and `tracker categories uncategorized` as a user runs them, on history recorded per sample."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracker import paths
from tracker.commands import cli
from tracker.events import default_pulsetime
from tracker.model import AWAY, STATE_AWAY, UNCATEGORIZED, Record
from tracker.storage.history import HistoryWriter
from tracker.timespec import local_midnight

DAY = date(2024, 5, 6)
ON_DAY = ["--since", "2024-05-06", "--until", "2024-05-06"]


def record_samples(start: datetime, samples: list[tuple[int, str, str, str, float]]) -> None:
    """Record 1-second samples the way `tracker run` does: (count, activity, app, category, score) runs."""
    moment = start
    with HistoryWriter(paths.database_file(), default_pulsetime(1.0)) as history:
        for count, activity, app, category, score in samples:
            state = STATE_AWAY if category == AWAY else "active"
            for _ in range(count):
                history.add(Record(time_ms=int(moment.timestamp() * 1000), duration=1.0, host="laptop", app=app,
                                   activity=activity, category=category, score=score, state=state))
                moment += timedelta(seconds=1)


@pytest.fixture
def workday() -> None:
    """09:00-09:05 local on DAY: 2m coding in two places, 1m chat, 1m away, 1m on an uncategorized site."""
    record_samples(local_midnight(DAY) + timedelta(hours=9), [
        (60, "editor", "code", "Code", 2.0),
        (30, "chat", "slack", "Communication", -1.0),
        (60, AWAY, AWAY, AWAY, 0.0),
        (60, "github.com", "firefox", "Code", 2.0),
        (30, "chat", "slack", "Communication", -1.0),
        (45, "mystery.example", "firefox", UNCATEGORIZED, 0.0),
        (15, "odd-tool", "odd-tool", UNCATEGORIZED, 0.0),
    ])


def tracker(*args: str) -> tuple[int, str]:
    """Exit code and output, without the spaces tables pad lines with."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, "".join(line.rstrip() + "\n" for line in result.output.splitlines())


def test_json_totals_equal_the_recorded_samples(workday):
    code, output = tracker("report", *ON_DAY, "--json")
    assert code == 0
    report = json.loads(output)
    assert [(row["name"], row["seconds"], row["share"]) for row in report["rows"]] == [
        ("Code", 120.0, 50.0), ("Communication", 60.0, 25.0), (UNCATEGORIZED, 60.0, 25.0)]
    assert (report["total_seconds"], report["away_seconds"], report["uncategorized_seconds"]) == (240, 60, 60)
    assert report["pulse"] == round((120 * 100 + 60 * 25 + 60 * 50) / 240, 1)
    assert report["top_activities"][:2] == [
        {"name": "chat", "seconds": 60.0, "share": 25.0, "score": -1.0, "app": "slack"},
        {"name": "editor", "seconds": 60.0, "share": 25.0, "score": 2.0, "app": "code"}]


@pytest.mark.parametrize(("by", "names"), [
    ("activity", ["chat", "editor", "github.com", "mystery.example", "odd-tool"]),
    ("app", ["firefox", "code", "slack", "odd-tool"]),
    ("hour", ["09"]),
    ("day", ["2024-05-06"]),
])
def test_by_variants_split_the_same_total(workday, by, names):
    report = json.loads(tracker("report", *ON_DAY, "--by", by, "--json")[1])
    assert [row["name"] for row in report["rows"]] == names
    assert sum(row["seconds"] for row in report["rows"]) == 240.0


def test_csv(workday):
    code, output = tracker("report", *ON_DAY, "--by", "app", "--csv")
    assert code == 0
    assert output == ("app,seconds,share_percent,score\n"
                      "firefox,105.000,43.75,1.143\n"
                      "code,60.000,25.00,2.000\n"
                      "slack,60.000,25.00,-1.000\n"
                      "odd-tool,15.000,6.25,0.000\n")


def test_the_table_shows_time_share_bars_totals_pulse_and_the_uncategorized_hint(workday):
    code, output = tracker("report", *ON_DAY)
    assert code == 0
    lines = output.splitlines()
    assert lines[0] == "Mon 06 May 2024"
    code_row = next(line for line in lines if line.startswith("Code "))
    assert code_row.split()[1:4] == ["2m", "50%", "█" * 24]
    assert next(line for line in lines if line.startswith("Total")).split()[1:3] == ["4m", "100%"]
    assert "Top activities" in lines
    assert "Pulse 69 / 100   Away 1m" in lines
    # 1 minute is a quarter of the time but not yet worth a hint: under 10 minutes.
    assert "tracker categories uncategorized" not in output


def test_notable_uncategorized_time_gets_a_hint(workday):
    record_samples(local_midnight(DAY) + timedelta(hours=10), [(900, "odd-tool", "odd-tool", UNCATEGORIZED, 0.0)])
    output = tracker("report", *ON_DAY)[1]
    assert "16m had no category: `tracker categories uncategorized` shows what to add." in output


def test_report_alone_is_today_by_category_with_top_activities(monkeypatch):
    now = datetime.now().astimezone()
    # Recorded in the last minute before now, or from midnight when today has only just begun.
    start = max(now - timedelta(seconds=60), local_midnight(now.date()))
    record_samples(start, [(int((now - start).total_seconds()), "editor", "code", "Code", 2.0)])
    code, output = tracker("report")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == "Today"
    assert lines[1].split() == ["Category", "Time", "Share"]
    assert lines[2].startswith("Code ")
    assert "Top activities" in lines
    assert any(line.startswith("editor ") for line in lines)


def test_hours_and_days_in_the_table(workday):
    output = tracker("report", *ON_DAY, "--by", "hour")[1]
    assert any(line.split()[:3] == ["09:00", "4m", "100%"] for line in output.splitlines())
    output = tracker("report", *ON_DAY, "--by", "day")[1]
    assert any(line.split()[:4] == ["Mon", "2024-05-06", "4m", "100%"] for line in output.splitlines())


def test_an_empty_period_and_no_history_at_all_say_so():
    code, output = tracker("report")
    assert (code, output) == (0, "No history yet: start recording with `tracker run`, then ask again.\n")
    record_samples(local_midnight(DAY), [(5, "editor", "code", "Code", 2.0)])
    code, output = tracker("report", "--since", "2024-06-01", "--until", "2024-06-02")
    assert output.splitlines() == ["Sat 01 Jun 2024 – Sun 02 Jun 2024", "Nothing was recorded in this period."]


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "lately"], "Invalid value for --since: 'lately' is not a time"),
    (["--since", "2024-05-02", "--until", "2024-05-01"], "Invalid value for --until: must be after --since"),
    (["--json", "--csv"], "choose one of --json and --csv"),
])
def test_bad_options_are_usage_errors(args, message):
    code, output = tracker("report", *args)
    assert code == 2
    assert message in output


def test_uncategorized_lists_activities_by_time_with_how_to_add_them(workday):
    code, output = tracker("categories", "uncategorized", *ON_DAY)
    assert code == 0
    lines = output.splitlines()
    assert lines[0] == "Mon 06 May 2024: 1m without a category"
    assert [line.split() for line in lines[2:4]] == [["mystery.example", "firefox", "45s"],
                                                     ["odd-tool", "odd-tool", "15s"]]
    assert lines[-1] == "Add rules for them with `tracker categories edit` (e.g. for mystery.example)."


def test_uncategorized_when_everything_has_a_category():
    record_samples(local_midnight(DAY), [(5, "editor", "code", "Code", 2.0)])
    output = tracker("categories", "uncategorized", *ON_DAY)[1]
    assert output == "Mon 06 May 2024: every activity had a category. Nothing to add.\n"


@pytest.mark.parametrize("hostile", ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3",
                                     "@SUM(1)", "\t=1", "\r=1"])
def test_csv_never_hands_a_spreadsheet_a_formula(hostile: str, tmp_path) -> None:
    # A page or an app names itself: in CSV its name is text to a spreadsheet, not a formula to run.
    record_samples(local_midnight(DAY) + timedelta(hours=9), [(30, hostile, hostile, "Code", -1.0)])
    shown = CliRunner().invoke(cli, ["report", *ON_DAY, "--by", "activity", "--csv"])  # as printed, untrimmed
    assert shown.exit_code == 0
    (row,) = list(csv.DictReader(io.StringIO(shown.output, newline="")))
    assert (row["activity"], row["app"], row["score"]) == ("'" + hostile, "'" + hostile, "-1.000")
    out = tmp_path / "history.csv"
    assert tracker("export", "--format", "csv", "-o", str(out))[0] == 0
    (event,) = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert (event["app"], event["activity"], event["score"]) == ("'" + hostile, "'" + hostile, "-1.0")
    assert json.loads(CliRunner().invoke(cli, ["export", "--format", "jsonl"]).output)["app"] == hostile  # as it was


# Days whose clock changes, recorded from local midnight for 4 hours of real time: (zone, day, offset at
# midnight, [(hour of the day, seconds)]).
CLOCK_CHANGE_DAYS = [
    # Lord Howe Island, spring: 02:00 becomes 02:30, so hour 02 is the half hour from 02:30 to 03:00.
    ("Australia/Lord_Howe", "2024-10-06", "+10:30", [("00", 3600), ("01", 3600), ("02", 1800), ("03", 3600),
                                                     ("04", 1800)]),
    # Lord Howe Island, autumn: 02:00 becomes 01:30, so hour 01 lasts an hour and a half.
    ("Australia/Lord_Howe", "2024-04-07", "+11:00", [("00", 3600), ("01", 5400), ("02", 3600), ("03", 1800)]),
    # Berlin, spring: 02:00 becomes 03:00, and there is no hour 02.
    ("Europe/Berlin", "2024-03-31", "+01:00", [("00", 3600), ("01", 3600), ("03", 3600), ("04", 3600)]),
    # Berlin, autumn: 03:00 becomes 02:00, so hour 02 lasts two hours.
    ("Europe/Berlin", "2024-10-27", "+02:00", [("00", 3600), ("01", 3600), ("02", 7200)]),
]


@pytest.mark.slow
@pytest.mark.parametrize(("zone", "day", "offset", "hours"), CLOCK_CHANGE_DAYS, ids=lambda value: str(value)[:19])
def test_report_by_hour_on_a_day_the_clock_changes_puts_each_moment_in_its_own_hour(
        zone: str, day: str, offset: str, hours: list[tuple[str, int]]) -> None:
    record_samples(datetime.fromisoformat(f"{day}T00:00:00{offset}"), [(4 * 3600, "editor", "code", "Code", 2.0)])
    tracker_command = [str(Path(sys.executable).with_name("tracker")), "report", "--since", day, "--until", day,
                       "--by", "hour"]
    environment = dict(os.environ, TZ=zone)
    shown = subprocess.run([*tracker_command, "--json"], env=environment, capture_output=True, text=True,
                           timeout=60, check=True).stdout
    assert [(row["name"], row["seconds"]) for row in json.loads(shown)["rows"]] == hours
    table = subprocess.run(tracker_command, env=environment, capture_output=True, text=True, timeout=60,
                           check=True).stdout
    assert [line.split()[0] for line in table.splitlines() if line[:2].isdigit()] == [
        f"{hour}:00" for hour, _ in hours]
