"""The demo: a believable week of history for the dashboard, and a live made-up desktop."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from helpers.servers import InfluxDB1, http

from tracker import paths
from tracker.categories.files import bundled_categories_path, load_categories
from tracker.lineprotocol import to_line
from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, UNCATEGORIZED, Record, Sample, url_host
from tracker.recording.sources.choose import open_source
from tracker.recording.sources.demo import CATALOGUE, CATEGORY_SCORES, DemoSource
from tracker.tasks.demo import DEMO_HOST, demo_line, drop_demo_query, is_demo_series, week_records

BERLIN = ZoneInfo("Europe/Berlin")
# The end of Sunday 16 June 2024: the two weeks before hold ten working days and four weekend days.
END = datetime(2024, 6, 17, tzinfo=BERLIN)
TWO_WEEKS = list(week_records(14, end=END, step=60))


def local(record: Record) -> datetime:
    return record.time.astimezone(BERLIN)


def by_day(records: Iterable[Record]) -> dict[date, list[Record]]:
    days: dict[date, list[Record]] = defaultdict(list)
    for record in records:
        days[local(record).date()].append(record)
    return days


def hours(records: Iterable[Record], state: str = STATE_ACTIVE) -> float:
    return sum(record.duration for record in records if record.state == state) / 3600


def test_weekdays_start_around_nine_and_last_a_working_day() -> None:
    days = by_day(TWO_WEEKS)
    weekdays = [day for day in days if day.weekday() < 5]
    assert len(weekdays) == 10
    for day in weekdays:
        first = local(days[day][0])
        assert 7.7 <= first.hour + first.minute / 60 <= 10.6, day
        assert 5 <= hours(days[day]) <= 11, day


def test_lunch_is_time_away_around_midday() -> None:
    for day, records in by_day(TWO_WEEKS).items():
        if day.weekday() < 5:
            midday_away = [r for r in records if r.state == STATE_AWAY and 11 <= local(r).hour < 15]
            assert hours(midday_away, STATE_AWAY) >= 0.45, day


def test_weekends_are_light() -> None:
    days = by_day(TWO_WEEKS)
    weekend = [hours(records) for day, records in days.items() if day.weekday() >= 5]
    weekday = [hours(records) for day, records in days.items() if day.weekday() < 5]
    assert max(weekend, default=0) < 4 < min(weekday)


def test_mostly_productive_with_distraction_bursts() -> None:
    active = [record for record in TWO_WEEKS if record.state == STATE_ACTIVE]
    seconds_by_score: dict[float, float] = defaultdict(float)
    for record in active:
        seconds_by_score[record.score] += record.duration
    total = sum(seconds_by_score.values())
    productive = (seconds_by_score[1.0] + seconds_by_score[2.0]) / total
    distracting = (seconds_by_score[-1.0] + seconds_by_score[-2.0]) / total
    assert productive > 0.6 and 0.05 < distracting < 0.35
    pulse = (sum(r.score * r.duration for r in active) / total + 2) / 4 * 100
    assert 60 < pulse < 90
    # A burst: one distracting site or app straight after another.
    assert any(a.score < 0 and b.score < 0 and a.activity != b.activity for a, b in pairwise(active))


def test_every_category_of_the_catalogue_shows_up_with_its_score() -> None:
    seen = {record.category for record in TWO_WEEKS}
    assert seen == set(CATEGORY_SCORES) | {AWAY}
    for record in TWO_WEEKS:
        if record.state == STATE_AWAY:
            assert (record.category, record.score) == (AWAY, 0.0)
        else:
            assert record.score == CATEGORY_SCORES[record.category]
    assert CATEGORY_SCORES[UNCATEGORIZED] == 0.0


def test_the_default_categories_put_every_demo_window_where_the_demo_says() -> None:
    rules = load_categories(bundled_categories_path())
    for entry in CATALOGUE:
        for page in entry.pages:
            match = rules.classify(Sample(time=END, app=entry.app, title=page.title, url=page.url))
            assert (match.category, match.score, match.activity) == (entry.category, entry.score, entry.activity)


def test_away_keeps_the_window_that_was_in_front() -> None:
    away = [record for record in TWO_WEEKS if record.state == STATE_AWAY]
    known = {(entry.app, entry.activity) for entry in CATALOGUE}
    assert away and all((record.app, record.activity) in known for record in away)


def test_browser_tabs_are_sites_and_apps_are_apps() -> None:
    tabs = [record for record in TWO_WEEKS if record.url]
    assert {record.app for record in tabs} == {"Firefox", "Google Chrome"}
    assert all(record.activity == url_host(record.url) != record.app for record in tabs)
    apps = [record for record in TWO_WEEKS if not record.url]
    assert apps and all(record.activity == record.app and record.title for record in apps)


def test_points_sit_on_the_step_grid_inside_the_range() -> None:
    times = [record.time_ms for record in TWO_WEEKS]
    assert times == sorted(set(times)), "one point per tick, oldest first"
    assert all(time_ms % 60_000 == 0 for time_ms in times)
    assert (END - timedelta(days=14)).timestamp() * 1000 <= times[0] and times[-1] < END.timestamp() * 1000
    assert {record.duration for record in TWO_WEEKS} == {60.0}
    assert {record.host for record in TWO_WEEKS} == {DEMO_HOST}
    assert all(to_line(record).startswith("activity,") for record in TWO_WEEKS)


def test_a_smaller_step_gives_more_points_for_the_same_time() -> None:
    end = datetime(2024, 6, 13, tzinfo=BERLIN)
    coarse = list(week_records(1, end=end, step=60))
    fine = list(week_records(1, end=end, step=1))
    assert len(fine) == pytest.approx(60 * len(coarse), rel=0.01)
    for state in (STATE_ACTIVE, STATE_AWAY):
        assert hours(fine, state) == pytest.approx(hours(coarse, state), abs=0.2)


def test_a_seed_gives_one_history_and_a_day_looks_the_same_whatever_the_range() -> None:
    assert list(week_records(3, end=END, seed=7, step=60)) == list(week_records(3, end=END, seed=7, step=60))
    assert list(week_records(3, end=END, seed=8, step=60)) != list(week_records(3, end=END, seed=7, step=60))
    tuesday = date(2024, 6, 11)
    short = by_day(week_records(7, end=END, step=60))[tuesday]
    long = by_day(week_records(10, end=END + timedelta(days=2), step=60))[tuesday]
    assert short == long


def test_history_follows_the_time_zone_of_its_end() -> None:
    new_york = ZoneInfo("America/New_York")
    records = list(week_records(1, end=datetime(2024, 6, 13, tzinfo=new_york), step=60))
    first = records[0].time.astimezone(new_york)
    assert first.date() == date(2024, 6, 12) and 7 <= first.hour <= 10


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        list(week_records(-1))
    with pytest.raises(ValueError):
        list(week_records(1, step=0))


def test_demo_points_are_dropped_again_and_nothing_else(influxdb1: InfluxDB1, influx_database: str) -> None:
    mine = Record(time_ms=int(END.timestamp() * 1000), duration=1.0, host="laptop", app="Code",
                  activity="Code", category="Development", score=2.0)
    # A real machine called demo: its points carry the host, not the demo tag.
    machine_called_demo = Record(time_ms=int(END.timestamp() * 1000), duration=1.0, host=DEMO_HOST, app="Code",
                                 activity="Code", category="Development", score=2.0)
    lines = [demo_line(record) for record in week_records(2, end=END, step=60)]
    lines += [to_line(mine), to_line(machine_called_demo)]
    status, body = http("POST", f"{influxdb1.url}/write?db={influx_database}&precision=ms", "\n".join(lines).encode())
    assert status == 204, body

    assert drop_demo_query() == "DROP SERIES FROM \"activity\" WHERE \"host\" = 'demo' AND \"demo\" = 'true'"
    influxdb1.query(drop_demo_query(), influx_database, method="POST")

    counts = influxdb1.rows('SELECT count("score") FROM "activity" GROUP BY "host"', influx_database)
    assert [(row["host"], row["count"]) for row in counts] == [("demo", 1), ("laptop", 1)]


def test_only_demo_points_carry_the_demo_tag() -> None:
    record = TWO_WEEKS[0]
    assert demo_line(record).startswith(f"activity,activity={record.activity},app=")
    assert ",demo=true,host=demo," in demo_line(record)
    assert "demo=" not in to_line(record)
    assert is_demo_series(demo_line(record).split(" ")[0])
    assert not is_demo_series("activity,activity=Code,app=Code,category=Development,host=demo,state=active")
    # A tag value that only looks like the demo tag is not it.
    assert not is_demo_series(r"activity,activity=x\,demo=true,app=Code,host=demo,state=active")


class FakeClock:
    """Monotonic seconds that only move when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stream(source: DemoSource, clock: FakeClock, seconds: int) -> list[tuple[float, Sample]]:
    """What the source shows once a second for `seconds`, with the moment it was read."""
    samples = []
    for tick in range(seconds):
        clock.now = float(tick)
        samples.append((clock.now, source.read()))
    return samples


def test_demo_source_holds_an_activity_for_a_while_then_switches() -> None:
    clock = FakeClock()
    samples = stream(DemoSource(seed=3, clock=clock), clock, 3 * 3600)
    switches = [moment for (_, before), (moment, after) in pairwise(samples)
                if (before.app, before.title, before.url) != (after.app, after.title, after.url)]
    gaps = [later - earlier for earlier, later in pairwise([0.0, *switches])]
    assert 20 <= len(switches) <= 3 * 3600 / 12
    assert min(gaps) >= 12, "an activity stays at least a dozen seconds"
    assert 20 <= statistics.median(gaps) <= 180, "typically tens of seconds to a few minutes"
    assert max(gaps) <= 15 * 60, "a stay and a break at the most"
    assert len({sample.activity for _, sample in samples}) >= 8


def test_demo_source_shows_browser_tabs_as_sites() -> None:
    clock = FakeClock()
    samples = [sample for _, sample in stream(DemoSource(seed=5, clock=clock), clock, 3600)]
    tabs = [sample for sample in samples if sample.url]
    assert tabs and all(tab.activity == url_host(tab.url) != tab.app for tab in tabs)
    assert all(sample.title and sample.time.tzinfo is not None for sample in samples)


def test_demo_source_takes_breaks_long_enough_to_count_as_away() -> None:
    clock = FakeClock()
    samples = [sample for _, sample in stream(DemoSource(seed=11, clock=clock), clock, 8 * 3600)]
    idle = [sample.idle_seconds or 0.0 for sample in samples]
    assert max(idle) > 180, "longer than the default away threshold"
    assert sum(1 for value in idle if value == 0) > len(idle) / 2, "mostly someone is there"


def test_demo_source_opens_by_name_and_works_without_arguments() -> None:
    source = open_source("demo", notify=lambda message: None)
    assert isinstance(source, DemoSource) and source.name == "demo"
    sample = source.read()
    assert sample.app and sample.time.tzinfo is not None
    source.close()


def test_demo_source_is_repeatable_with_a_seed() -> None:
    runs = []
    for _ in range(2):
        clock = FakeClock()
        runs.append([sample for _, sample in stream(DemoSource(seed=2, clock=clock,
                                                                now=lambda: END), clock, 600)])
    assert runs[0] == runs[1]


def demo_command(*args: str, **environment: str):
    from click.testing import CliRunner

    from tracker.commands import cli

    return CliRunner().invoke(cli, ["demo", *args], env=environment)


def test_tracker_demo_writes_a_week_and_removes_it_again(influxdb1: InfluxDB1, influx_database: str) -> None:
    mine = Record(time_ms=int(END.timestamp() * 1000), duration=1.0, host="laptop", app="Code",
                  activity="Code", category="Development", score=2.0)
    http("POST", f"{influxdb1.url}/write?db={influx_database}&precision=ms", to_line(mine).encode())
    server = {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}

    wrote = demo_command("--days", "3", "--step", "30s", **server)
    assert wrote.exit_code == 0, wrote.output
    expected = len(list(week_records(3, step=30)))
    counted = influxdb1.rows('SELECT count("score") FROM "activity" WHERE "host" = \'demo\' AND "demo" = \'true\'',
                             influx_database)
    # The history ends now: a point or two may fall on either side of the minute it was counted in.
    assert abs(counted[0]["count"] - expected) <= 2
    assert f"demo points (host=demo) to {influxdb1.url}" in wrote.output
    assert "tracker demo --remove" in wrote.output
    categories = influxdb1.rows('SHOW TAG VALUES FROM "activity" WITH KEY = "category" WHERE "host" = \'demo\'',
                                influx_database)
    assert {"Development", AWAY} <= {row["value"] for row in categories}

    removed = demo_command("--remove", **server)
    assert removed.exit_code == 0, removed.output
    assert removed.output == f"Removed the demo points (host=demo, demo=true) from {influxdb1.url}.\n"
    # The points and series are gone. (InfluxDB 1.6's in-memory index may still list the tag value
    # under SHOW TAG VALUES when the series lived in another shard than the remaining ones.)
    counts = influxdb1.rows('SELECT count("score") FROM "activity" GROUP BY "host"', influx_database)
    assert [(row["host"], row["count"]) for row in counts] == [("laptop", 1)]
    series = influxdb1.rows("SHOW SERIES", influx_database)
    assert [row["key"] for row in series] == [
        "activity,activity=Code,app=Code,category=Development,host=laptop,state=active"]


def test_a_real_machine_called_demo_keeps_its_points_when_the_demo_is_removed(
        influxdb1: InfluxDB1, influx_database: str) -> None:
    server = {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}
    assert demo_command("--days", "2", "--step", "60s", **server).exit_code == 0
    # Then a machine whose host tag is demo starts recording into the same database, as `tracker run` writes.
    now_ms = int(datetime.now().timestamp() * 1000)
    real = [Record(time_ms=now_ms + second * 1000, duration=1.0, host=DEMO_HOST, app=app, activity=app,
                   category="Development", score=2.0) for second, app in enumerate(["Code", "Code", "Terminal"])]
    status, body = http("POST", f"{influxdb1.url}/write?db={influx_database}&precision=ms",
                        "\n".join(to_line(record) for record in real).encode())
    assert status == 204, body

    removed = demo_command("--remove", **server)
    assert removed.exit_code == 0, removed.output
    assert removed.output.splitlines() == [
        f"Removed the demo points (host=demo, demo=true) from {influxdb1.url}.",
        "Kept 2 series of host=demo without the demo=true tag: they are a real machine's (or demo points written "
        "before tracker tagged them), which only you can tell; if they are demo points, run DROP SERIES FROM "
        "\"activity\" WHERE \"host\" = 'demo' in the influx shell."]
    points = influxdb1.rows('SELECT "score", "app" FROM "activity" WHERE "host" = \'demo\'', influx_database)
    assert [(point["time"], point["app"]) for point in points] == [(r.time_ms, r.app) for r in real]

    # Writing the demo again would mix it into that machine's dashboard: refused, and nothing is written.
    again = demo_command("--days", "1", **server)
    assert again.exit_code == 1
    assert again.output == (f"Error: Refusing to write demo points: {influx_database} already holds points of a "
                            "machine called demo that are not demo points, and the dashboard would show both as one; "
                            "write the demo to another database with --influx-bucket.\n")
    assert len(influxdb1.rows('SELECT "score" FROM "activity"', influx_database)) == len(real)


def test_tracker_demo_refuses_to_write_from_a_machine_called_demo(influxdb1: InfluxDB1, influx_database: str,
                                                                   tracker_home) -> None:
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("host: demo\n")
    done = demo_command("--days", "1", TRACKER_INFLUX_URL=influxdb1.url, TRACKER_INFLUX_BUCKET=influx_database)
    assert done.exit_code == 1
    assert done.output == ("Error: Refusing to write demo points: this machine's own host tag is demo, so the "
                           "dashboard would show them as its time; set `host:` in config.yaml to another name "
                           "first.\n")
    assert influxdb1.rows('SELECT count("score") FROM "activity"', influx_database) == []


def test_tracker_demo_explains_an_unreachable_server_in_one_sentence() -> None:
    from helpers.servers import free_port

    done = demo_command("--days", "1", TRACKER_INFLUX_URL=f"http://127.0.0.1:{free_port()}",
                        TRACKER_INFLUX_API="v1")
    assert done.exit_code == 1
    assert done.output.startswith("Error: InfluxDB at http://127.0.0.1:") and "connection refused" in done.output
    assert len(done.output.strip().splitlines()) == 1


def test_tracker_demo_without_influxdb_says_how_to_configure_it() -> None:
    done = demo_command("--days", "1")
    assert done.exit_code == 1
    assert "InfluxDB is not configured" in done.output and "TRACKER_INFLUX_URL" in done.output


def test_on_victoriametrics_remove_deletes_nothing_and_its_advice_removes_only_the_demo(victoria) -> None:
    # A real machine called demo writes to the same VictoriaMetrics as the demo: tracker deletes nothing there
    # (it speaks no deletion of VictoriaMetrics), and the command it gives takes the demo points alone.
    server = {"TRACKER_INFLUX_URL": victoria.url, "TRACKER_INFLUX_API": "v2", "TRACKER_INFLUX_BUCKET": "b",
              "TRACKER_INFLUX_ORG": "o", "TRACKER_INFLUX_TOKEN": "v2-token"}
    # A whole week holds working days whatever today is (one day back from a Saturday evening has no point on
    # the hour grid).
    assert demo_command("--days", "7", "--step", "1h", **server).exit_code == 0
    # An hour ago: VictoriaMetrics shows the last half minute to no query.
    real_ms = int((datetime.now() - timedelta(hours=1)).timestamp() * 1000)
    real = Record(time_ms=real_ms, duration=1.0, host=DEMO_HOST, app="Code", activity="Code", category="Development",
                  score=2.0)
    status, body = http("POST", f"{victoria.url}/api/v2/write?org=o&bucket=b&precision=ms", to_line(real).encode())
    assert status == 204, body
    demo_series = 'activity_duration{host="demo",demo="true"}'
    assert victoria.export(demo_series)

    removed = demo_command("--remove", **server)
    assert removed.exit_code == 1
    advice = removed.output.split("On VictoriaMetrics: ")[1].split("'")[1]
    assert advice.startswith(f"{victoria.url}/api/v1/admin/tsdb/delete_series?match[]=")
    assert victoria.export(demo_series)  # nothing was deleted by the command itself

    status, body = http("GET", advice.replace("[", "%5B").replace("]", "%5D").replace("{", "%7B")
                        .replace("}", "%7D").replace('"', "%22"))  # as curl -g sends it, encoded
    assert status == 204, body
    assert victoria.export(demo_series) == []
    kept = victoria.export('activity_duration{host="demo"}')
    assert [series["timestamps"] for series in kept] == [[real_ms]]
