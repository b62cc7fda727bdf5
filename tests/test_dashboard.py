"""The Grafana dashboard: its JSON is importable and laid out, and every query it holds answers, on a real
InfluxDB 1.x, the figures computed in Python from the very records written there."""

from __future__ import annotations

import colorsys
import importlib.util
import json
import re
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from helpers.grafana_macros import PanelRequest, Raw, VariableValue, fill_variables
from helpers.servers import InfluxDB1, http, require_program

from tracker.categories.files import bundled_categories_path, load_categories
from tracker.events import score_of_pulse
from tracker.goals.model import Goal
from tracker.goals.progress import Tally
from tracker.lineprotocol import to_line
from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, UNCATEGORIZED, Record
from tracker.recording.goalwatch import goal_point
from tracker.recording.sources.demo import CATEGORY_SCORES
from tracker.recording.vitals import Vitals, to_point
from tracker.tasks.demo import DEMO_HOST, demo_line, week_records

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_FILE = ROOT / "grafana" / "tracker.json"
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
# The activity panels; below them the collapsed rows "goals", over the run's `goals` points, and "tracker health",
# over the tracker's own `tracker` points.
PANELS: list[dict[str, Any]] = [panel for panel in DASHBOARD["panels"] if panel["type"] != "row"]
ROWS: list[dict[str, Any]] = [panel for panel in DASHBOARD["panels"] if panel["type"] == "row"]
GOALS_PANELS: list[dict[str, Any]] = next(row["panels"] for row in ROWS if row["title"] == "goals")
HEALTH_PANELS: list[dict[str, Any]] = next(row["panels"] for row in ROWS if row["title"] == "tracker health")
EVERY_PANEL = [*DASHBOARD["panels"], *GOALS_PANELS, *HEALTH_PANELS]
VARIABLES: dict[str, dict[str, Any]] = {variable["name"]: variable for variable in DASHBOARD["templating"]["list"]}
IMPORT_DATASOURCE = {"type": "influxdb", "uid": "${DS_INFLUXDB}"}
FILTER = '"host" =~ /^$host$/ AND "category" =~ /^$category$/'


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object anywhere in a document, the document included."""
    if isinstance(node, dict):
        yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from objects(child)


def targets(panels: list[dict[str, Any]] = PANELS) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in panels:
        for target in panel["targets"]:
            yield panel, target


# ---------------------------------------------------------------- the JSON: importable, laid out, consistent


def test_it_imports_into_grafana_11_with_one_influxdb_input() -> None:
    assert DASHBOARD["schemaVersion"] >= 39
    assert DASHBOARD["__inputs"] == [{
        "name": "DS_INFLUXDB", "label": "InfluxDB", "description": DASHBOARD["__inputs"][0]["description"],
        "type": "datasource", "pluginId": "influxdb", "pluginName": "InfluxDB"}]
    required = {(item["type"], item["id"]) for item in DASHBOARD["__requires"]}
    assert {("grafana", "grafana"), ("datasource", "influxdb")} <= required
    assert {("panel", panel["type"]) for panel in [*PANELS, *GOALS_PANELS, *HEALTH_PANELS]} <= required
    grafana = next(item for item in DASHBOARD["__requires"] if item["id"] == "grafana")
    assert int(grafana["version"].split(".")[0]) >= 11


def test_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in EVERY_PANEL]
    assert len(ids) == len(set(ids))


def test_panels_fit_24_columns_without_overlapping() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in EVERY_PANEL:  # a collapsed row's panels are laid out below it, as when it is opened
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["w"] > 0 and box["h"] > 0 and box["x"] + box["w"] <= 24, panel["title"]
        for row in range(box["y"], box["y"] + box["h"]):
            for column in range(box["x"], box["x"] + box["w"]):
                assert (row, column) not in taken, f"{panel['title']} overlaps {taken[(row, column)]}"
                taken[(row, column)] = panel["title"]


def test_panels_read_top_down() -> None:
    for panels in (DASHBOARD["panels"], GOALS_PANELS, HEALTH_PANELS):
        positions = [(panel["gridPos"]["y"], panel["gridPos"]["x"]) for panel in panels]
        assert positions == sorted(positions)
    assert PANELS[0]["title"] == "Productivity pulse"


def test_every_datasource_reference_is_the_import_input() -> None:
    references = [value for key, value in walk(DASHBOARD) if key == "datasource"]
    built_in_annotations = {"type": "grafana", "uid": "-- Grafana --"}
    assert references and all(ref in (IMPORT_DATASOURCE, built_in_annotations) for ref in references), references
    for panel, target in targets([*PANELS, *GOALS_PANELS, *HEALTH_PANELS]):
        assert panel["datasource"] == target["datasource"] == IMPORT_DATASOURCE, panel["title"]


def test_every_panel_queries_raw_influxql_filtered_by_time_host_and_category() -> None:
    for panel in PANELS:
        assert panel["targets"], panel["title"]
    for panel, target in targets():
        assert target["rawQuery"] is True and target["query"].startswith("SELECT "), panel["title"]
        assert "$timeFilter" in target["query"] and FILTER in target["query"], panel["title"]


def test_the_health_row_is_collapsed_below_and_reads_the_tracker_points_by_time_and_host() -> None:
    assert [(row["title"], row["collapsed"]) for row in ROWS] == [("goals", True), ("tracker health", True)]
    assert DASHBOARD["panels"][-2:] == ROWS
    assert [panel["title"] for panel in HEALTH_PANELS] == sorted(HEALTH_CHECKS, key=list(HEALTH_CHECKS).index)
    for panel in HEALTH_PANELS:
        assert panel["targets"], panel["title"]
    for panel, target in targets(HEALTH_PANELS):
        assert target["rawQuery"] is True and target["query"].startswith("SELECT "), panel["title"]
        assert 'FROM "tracker" WHERE $timeFilter AND "host" =~ /^$host$/' in target["query"], panel["title"]


def test_no_grafana_4_interval_variable_is_left() -> None:
    text = DASHBOARD_FILE.read_text(encoding="utf-8")
    assert not re.search(r"\$interval\b|\[\[interval\]\]", text)


def test_host_and_category_are_multi_select_with_all_from_tag_values() -> None:
    for name in ("host", "category"):
        variable = VARIABLES[name]
        assert variable["type"] == "query" and variable["multi"] and variable["includeAll"], name
        assert variable["datasource"] == IMPORT_DATASOURCE
        assert variable["query"].startswith(f'SHOW TAG VALUES FROM "activity" WITH KEY = "{name}"')
        # Blank: All then means every listed value, which is what the queries below are proven with.
        assert not variable.get("allValue")
    assert "/^$host$/" in VARIABLES["category"]["query"]


def test_it_opens_on_today() -> None:
    assert DASHBOARD["time"] == {"from": "now/d", "to": "now/d"}


def test_time_is_shown_as_human_durations() -> None:
    units = {panel["title"]: panel["fieldConfig"]["defaults"].get("unit") for panel in PANELS}
    for title in ("Active time", "Productive time", "Distracting time", "Uncategorized time", "Away"):
        assert units[title] == "dtdurations", title
    assert units["Time per category"] == "dthms"
    assert units["Active hours per day, last 4 weeks"] == "h"


# Hues (degrees) by score: red very distracting, orange, yellow neutral, green productive.
HUES: dict[float, tuple[float, float]] = {-2.0: (340, 372), -1.0: (15, 40), 0.0: (42, 62), 1.0: (75, 160),
                                          2.0: (75, 160)}


def hue_and_lightness(colour: str) -> tuple[float, float]:
    red, green, blue = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    hue, lightness, _ = colorsys.rgb_to_hls(red, green, blue)
    degrees = hue * 360
    return degrees + 360 if degrees < 12 else degrees, lightness  # reds either side of 0 in one band


def category_colours(node: Any) -> Iterator[dict[str, str]]:
    """Each category-to-colour table in part of the dashboard: overrides by name and value mappings."""
    overrides = {override["matcher"]["options"]: prop["value"]["fixedColor"]
                 for key, value in walk(node) if key == "overrides"
                 for override in value if override["matcher"]["id"] == "byName"
                 for prop in override["properties"] if prop["id"] == "color" and prop["value"]["mode"] == "fixed"}
    if overrides:
        yield overrides
    # Mappings stand in a panel's defaults, or in an override's properties.
    mapping_lists = [item["mappings"] for item in objects(node) if "mappings" in item]
    mapping_lists += [item["value"] for item in objects(node) if item.get("id") == "mappings"]
    for mappings in mapping_lists:
        for mapping in mappings:
            yield {name: result["color"] for name, result in mapping["options"].items()}


def test_category_colours_agree_everywhere_and_follow_the_bundled_scores() -> None:
    tables = [(panel["title"], colours) for panel in PANELS for colours in category_colours(panel)]
    assert {title for title, _ in tables} >= {"Time per category", "Your day, category by category",
                                               "Top activities", "Active hours per day, last 4 weeks"}
    reference = tables[0][1]
    for title, colours in tables:
        assert colours == reference, title
    scores = {category.name: category.score for category in load_categories(bundled_categories_path()).categories}
    scores[UNCATEGORIZED] = 0.0
    assert set(reference) == set(scores) | {AWAY}, "every default category has its colour"
    lightness: dict[float, list[float]] = defaultdict(list)
    for category, score in scores.items():
        hue, light = hue_and_lightness(reference[category])
        low, high = HUES[score]
        assert low <= hue <= high, f"{category} ({score:+}) is {reference[category]}"
        lightness[score].append(light)
    assert max(lightness[2.0]) < min(lightness[1.0]), "very productive is the darker green"
    grey = reference[AWAY]
    assert grey[1:3] == grey[3:5] == grey[5:7], "Away is grey, apart from the score colours"
    assert "red" in DASHBOARD["description"] and "green" in DASHBOARD["description"]


def test_score_colours_run_from_red_to_green() -> None:
    scored = {"Productivity score over time": (-2, 2), "Pulse per day": (0, 100)}
    for panel in PANELS:
        if panel["title"] in scored:
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults["color"]["mode"] == "continuous-RdYlGr", panel["title"]
            assert (defaults["min"], defaults["max"]) == scored[panel["title"]]
    pulse = next(panel for panel in PANELS if panel["title"] == "Productivity pulse")
    steps = pulse["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["color"] for step in steps] == ["red", "yellow", "green"]


def load_provisioning_script() -> Any:
    spec = importlib.util.spec_from_file_location("make_provisioned", ROOT / "grafana" / "make_provisioned.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_provisioned_twin_is_the_dashboard_with_the_provisioned_datasource() -> None:
    script = load_provisioning_script()
    assert script.TARGET.read_text(encoding="utf-8") == script.provisioned_text(), (
        "grafana/provisioning/dashboards/tracker.json is stale: run python3 grafana/make_provisioned.py")
    twin = json.loads(script.TARGET.read_text(encoding="utf-8"))
    assert "${DS_" not in script.TARGET.read_text(encoding="utf-8") and "__inputs" not in twin
    provisioned_source = yaml.safe_load((ROOT / "grafana/provisioning/datasources/tracker.yaml").read_text())
    source = provisioned_source["datasources"][0]
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "InfluxQL"
    twin_references = [value for key, value in walk(twin) if key == "datasource" and value["type"] == "influxdb"]
    assert twin_references and all(ref == {"type": "influxdb", "uid": source["uid"]} for ref in twin_references)


def test_dashboard_provider_reads_the_folder_compose_mounts() -> None:
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/tracker.yaml").read_text())["providers"][0]
    assert provider["type"] == "file"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/provisioning"] + "/dashboards" == provider["options"]["path"]


def test_docker_compose_file_is_valid() -> None:
    program = require_program("docker-compose", "docker-compose")
    done = subprocess.run([program, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    influxdb = compose["services"]["influxdb"]["environment"]
    assert influxdb["DOCKER_INFLUXDB_INIT_MODE"] == "setup" and influxdb["DOCKER_INFLUXDB_INIT_BUCKET"] == "tracker"
    assert compose["services"]["grafana"]["image"].startswith("grafana/grafana:11.")


# ---------------------------------------------------------------- the queries, on a real InfluxDB 1.x

ZONE = ZoneInfo("Europe/Berlin")
DAY = date(2024, 6, 12)  # a Wednesday, four weeks from any daylight saving change
DAY_START = datetime.combine(DAY, time(), ZONE)
# Grafana's "today" (now/d to now/d) ends at the day's last millisecond; "now" is then too.
TODAY = (round(DAY_START.timestamp() * 1000), round((DAY_START + timedelta(days=1)).timestamp() * 1000) - 1)
NOW_MS = TODAY[1]


def stretch(host: str, start: str, end: str, app: str, category: str, *, activity: str | None = None,
            url: str | None = None, title: str | None = None, step: int = 60, day: date = DAY,
            away: bool = False) -> list[Record]:
    """Points every `step` seconds from start to end (local HH:MM), each standing for `step` seconds."""
    first = datetime.combine(day, time.fromisoformat(start), ZONE)
    last = datetime.combine(day, time.fromisoformat(end), ZONE)
    moments = range(round(first.timestamp()), round(last.timestamp()), step)
    return [Record(time_ms=moment * 1000, duration=float(step), host=host, app=app, activity=activity or app,
                   category=AWAY if away else category, score=0.0 if away else CATEGORY_SCORES[category],
                   state=STATE_AWAY if away else STATE_ACTIVE, title=title, url=url)
            for moment in moments]


HOME, STUDIO = "home.lan", "studio/mac"  # a dot and a slash: both need escaping in a regex
KNOWN_DAY = [
    *stretch(HOME, "09:00", "11:00", "Code", "Development", title="model.py — tracker — Visual Studio Code"),
    *stretch(HOME, "11:00", "11:30", "Firefox", "Social", activity="reddit.com", url="https://www.reddit.com/"),
    *stretch(HOME, "11:30", "12:00", "Firefox", "Social", activity="reddit.com", away=True),
    *stretch(HOME, "12:00", "12:45", "Firefox", "Reference & Learning", activity="en.wikipedia.org",
             url="https://en.wikipedia.org/wiki/InfluxDB"),
    *stretch(HOME, "12:45", "13:00", "VirtualBox", UNCATEGORIZED, title="Oracle VM VirtualBox Manager"),
    *stretch(STUDIO, "14:00", "15:00", "Slack", "Communication", title="#team | Acme - Slack"),
    # Fewer, longer points: a count-weighted mean would get this host's pulse wrong.
    *stretch(STUDIO, "15:00", "15:20", "Firefox", "Entertainment", activity="youtube.com", step=120),
    *stretch(STUDIO, "15:20", "15:30", "Transmission", UNCATEGORIZED, title="Transmission"),
]
# Just before and just after the day: inside no "today" figure.
OTHER_DAYS = [
    *stretch(HOME, "23:50", "23:59", "Code", "Development", day=DAY - timedelta(days=1)),
    *stretch(HOME, "00:05", "00:15", "Firefox", "Social", activity="x.com", day=DAY + timedelta(days=1)),
]
RECORDS = [*KNOWN_DAY, *OTHER_DAYS, *week_records(7, host=DEMO_HOST, end=DAY_START + timedelta(days=1), step=60)]


def write_records(server: InfluxDB1, database: str) -> None:
    # Demo points as `tracker demo` writes them, with the demo tag: the queries must not mind it.
    body = "\n".join(demo_line(record) if record.host == DEMO_HOST else to_line(record) for record in RECORDS).encode()
    status, reply = http("POST", f"{server.url}/write?db={database}&precision=ms", body)
    assert status == 204, reply


def weighted_mean_score(records: Sequence[Record]) -> float:
    return sum(r.score * r.duration for r in records) / sum(r.duration for r in records)


def pulse(records: Sequence[Record]) -> float:
    """RescueTime's productivity pulse of active records: 0 to 100, all neutral = 50."""
    return (weighted_mean_score(records) + 2) / 4 * 100


def seconds(records: Sequence[Record]) -> float:
    return sum(record.duration for record in records)


@dataclass
class Figures:
    """What a panel must show, computed in Python from the records in its range and selection."""

    records: list[Record]
    zone: ZoneInfo
    interval_ms: int

    @property
    def active(self) -> list[Record]:
        return [record for record in self.records if record.state == STATE_ACTIVE]

    def grouped(self, key: Callable[[Record], Any], records: Sequence[Record] | None = None
                ) -> dict[Any, list[Record]]:
        groups: dict[Any, list[Record]] = defaultdict(list)
        for record in self.active if records is None else records:
            groups[key(record)].append(record)
        return groups

    def bucket(self, record: Record) -> int:
        return record.time_ms - record.time_ms % self.interval_ms

    def local_midnight(self, record: Record) -> int:
        day = datetime.fromtimestamp(record.time_ms / 1000, self.zone).date()
        return round(datetime.combine(day, time(), self.zone).timestamp() * 1000)


def value_of(row: dict[str, Any], column: str | None = None) -> Any:
    """The row's value column: the named one, or the only one besides time and tags."""
    if column:
        return row[column]
    (value,) = [value for key, value in row.items() if key != "time" and not isinstance(value, str)]
    return value


def expect_total(total: Callable[[Figures], float | None]) -> Callable[[list[dict[str, Any]], Figures], None]:
    """A stat: one value, or no row at all when nothing counts (Grafana then shows 'No data')."""

    def check(rows: list[dict[str, Any]], figures: Figures) -> None:
        expected = total(figures)
        if expected is None:
            assert rows == []
        else:
            assert len(rows) == 1 and value_of(rows[0]) == pytest.approx(expected)

    return check


def seconds_or_none(records: Sequence[Record]) -> float | None:
    return seconds(records) or None


def check_score_over_time(rows: list[dict[str, Any]], figures: Figures) -> None:
    expected = {bucket: weighted_mean_score(group) for bucket, group in figures.grouped(figures.bucket).items()}
    shown = {row["time"]: row["score"] for row in rows if row["score"] is not None}
    assert shown == pytest.approx(expected)


def check_time_per_category(rows: list[dict[str, Any]], figures: Figures) -> None:
    expected = {category: seconds(group) for category, group in figures.grouped(lambda r: r.category).items()}
    assert {row["category"]: value_of(row) for row in rows} == pytest.approx(expected)


def check_category_timeline(rows: list[dict[str, Any]], figures: Figures) -> None:
    shown = {row["time"]: (row["seconds"], row["category"]) for row in rows if row["category"] is not None}
    everything = figures.grouped(figures.bucket, figures.records)  # away time included
    assert set(shown) == set(everything)
    for bucket, group in everything.items():
        per_category = {category: seconds(part) for category, part in
                        figures.grouped(lambda r: r.category, group).items()}
        most = max(per_category.values())
        shown_seconds, shown_category = shown[bucket]
        assert shown_seconds == pytest.approx(most)
        assert per_category[shown_category] == pytest.approx(most)


def check_top_activities(rows: list[dict[str, Any]], figures: Figures) -> None:
    expected = {key: (seconds(group), weighted_mean_score(group))
                for key, group in figures.grouped(lambda r: (r.activity, r.app, r.category)).items()}
    shown = {(row["activity"], row["app"], row["category"]): (row["active"], row["score"]) for row in rows}
    assert set(shown) == set(expected)
    for key, (active, score) in expected.items():
        assert shown[key] == (pytest.approx(active), pytest.approx(score)), key


def check_top_uncategorized(rows: list[dict[str, Any]], figures: Figures) -> None:
    uncategorized = [record for record in figures.active if record.category == UNCATEGORIZED]
    groups = figures.grouped(lambda r: (r.activity, r.app), uncategorized)
    shown = {(row["activity"], row["app"]): row for row in rows}
    assert set(shown) == set(groups)
    for key, group in groups.items():
        assert shown[key]["active"] == pytest.approx(seconds(group)), key
        latest = max(record.time_ms for record in group)
        assert shown[key]["title"] in {record.title for record in group if record.time_ms == latest}, key


def check_hours_per_day(rows: list[dict[str, Any]], figures: Figures) -> None:
    expected = {key: seconds(group) / 3600 for key, group in
                figures.grouped(lambda r: (figures.local_midnight(r), r.category)).items()}
    shown = {(row["time"], row["category"]): value_of(row) for row in rows}
    assert set(expected) <= set(shown)
    assert shown == pytest.approx({key: expected.get(key, 0.0) for key in shown})
    assert all((time_ms - TODAY[0]) % 3_600_000 == 0 for time_ms, _ in shown), "days start on the hour"


def check_pulse_per_day(rows: list[dict[str, Any]], figures: Figures) -> None:
    expected = {day: pulse(group) for day, group in figures.grouped(figures.local_midnight).items()}
    assert {row["time"]: row["pulse"] for row in rows} == pytest.approx(expected)


CHECKS: dict[str, Callable[[list[dict[str, Any]], Figures], None]] = {
    "Productivity pulse": expect_total(lambda f: pulse(f.active) if f.active else None),
    "Active time": expect_total(lambda f: seconds_or_none(f.active)),
    "Productive time": expect_total(lambda f: seconds_or_none([r for r in f.active if r.score > 0])),
    "Distracting time": expect_total(lambda f: seconds_or_none([r for r in f.active if r.score < 0])),
    "Uncategorized time": expect_total(
        lambda f: seconds_or_none([r for r in f.active if r.category == UNCATEGORIZED])),
    "Away": expect_total(lambda f: seconds_or_none([r for r in f.records if r.state == STATE_AWAY])),
    "Productivity score over time": check_score_over_time,
    "Time per category": check_time_per_category,
    "Your day, category by category": check_category_timeline,
    "Top activities": check_top_activities,
    "Top Uncategorized: add rules for these": check_top_uncategorized,
    "Active hours per day, last 4 weeks": check_hours_per_day,
    "Pulse per day": check_pulse_per_day,
}


def test_every_panel_has_a_check() -> None:
    assert sorted(CHECKS) == sorted(panel["title"] for panel in PANELS)


@dataclass(frozen=True)
class Selection:
    """What is picked in the dashboard's variables, and the records that picks."""

    name: str
    host: VariableValue | None  # None: All, Grafana's default (every value the variable lists)
    category: VariableValue | None
    hosts: frozenset[str] | None = None  # None: every host
    categories: frozenset[str] | None = None
    tz: str = "Europe/Berlin"
    interval_ms: int = 60_000

    def keeps(self, record: Record) -> bool:
        return ((self.hosts is None or record.host in self.hosts)
                and (self.categories is None or record.category in self.categories))


SELECTIONS = [
    Selection("all, Grafana's default", None, None),
    Selection("custom all value .*, UTC days, 5m interval", Raw(".*"), Raw(".*"), tz="UTC", interval_ms=300_000),
    Selection("one computer", [HOME], None, hosts=frozenset({HOME})),
    Selection("one computer, a single-value variable", STUDIO, None, hosts=frozenset({STUDIO})),
    Selection("two computers, three categories", [HOME, STUDIO], [
        "Development", "Reference & Learning", AWAY], hosts=frozenset({HOME, STUDIO}),
        categories=frozenset({"Development", "Reference & Learning", AWAY})),
]


def variable_values(server: InfluxDB1, database: str, name: str, variables: dict[str, VariableValue]) -> list[str]:
    """The values a query variable lists, asked as Grafana asks."""
    query = PanelRequest(*TODAY, 60_000, variables).render(VARIABLES[name]["query"])
    return [row["value"] for row in server.rows(query, database)]


def dashboard_variables(server: InfluxDB1, database: str, selection: Selection) -> dict[str, VariableValue]:
    variables: dict[str, VariableValue] = {"tz": selection.tz}
    variables["host"] = selection.host or variable_values(server, database, "host", variables)
    variables["category"] = selection.category or variable_values(server, database, "category", variables)
    return variables


def panel_range(panel: dict[str, Any]) -> tuple[int, int]:
    """The panel's own relative range (timeFrom: '28d' is now-28d to now), else the dashboard's."""
    if "timeFrom" not in panel:
        return TODAY
    days = re.fullmatch(r"(\d+)d", panel["timeFrom"])
    assert days, f"{panel['title']}: a range in days, such as 28d"
    return NOW_MS - int(days.group(1)) * 86_400_000, NOW_MS


def test_queries_are_filled_in_as_grafana_11_fills_them() -> None:
    query = """SELECT "x" FROM "a" WHERE "host" =~ /^$host$/ AND "app" = '$app' tz('${tz:raw}')"""
    filled = fill_variables(query, {"host": ["a|bc", "de.f"], "app": "x.y", "tz": "Europe/Berlin"})
    assert filled == """SELECT "x" FROM "a" WHERE "host" =~ /^(a\\|bc|de\\.f)$/ AND "app" = 'x.y' tz('Europe/Berlin')"""
    # A single value is escaped inside a regex only; a custom all value goes in as it is.
    assert fill_variables('"h" =~ /^$h$/', {"h": "studio/mac"}) == '"h" =~ /^studio\\/mac$/'
    assert fill_variables('"h" =~ /^$h$/', {"h": Raw(".*")}) == '"h" =~ /^.*$/'
    request = PanelRequest(1000, 2000, 90_000, {})
    assert request.render("WHERE $timeFilter GROUP BY time($__interval) LIMIT $__interval_ms") == (
        "WHERE time >= 1000ms and time <= 2000ms GROUP BY time(1m) LIMIT 90000")


def test_variables_list_the_computers_and_their_categories(influxdb1: InfluxDB1, influx_database: str) -> None:
    write_records(influxdb1, influx_database)
    assert set(variable_values(influxdb1, influx_database, "host", {})) == {HOME, STUDIO, DEMO_HOST}
    for hosts in ([HOME], [HOME, STUDIO]):
        listed = variable_values(influxdb1, influx_database, "category", {"host": hosts})
        assert set(listed) == {record.category for record in RECORDS if record.host in hosts}


@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda selection: selection.name)
def test_every_query_of_every_panel_shows_what_the_records_say(
        influxdb1: InfluxDB1, influx_database: str, selection: Selection) -> None:
    write_records(influxdb1, influx_database)
    variables = dashboard_variables(influxdb1, influx_database, selection)
    for panel in PANELS:
        start, end = panel_range(panel)
        request = PanelRequest(start, end, selection.interval_ms, variables)
        kept = [record for record in RECORDS if start <= record.time_ms <= end and selection.keeps(record)]
        figures = Figures(kept, ZoneInfo(selection.tz), selection.interval_ms)
        for target in panel["targets"]:
            query = request.render(target["query"])
            rows = influxdb1.rows(query, influx_database)
            # Buckets start at most a day before the range (days at midnight); nothing runs past its end.
            assert all(start - 86_400_000 < row["time"] <= end for row in rows if row["time"]), (
                f"{panel['title']}: points outside the panel's range")
            try:
                CHECKS[panel["title"]](rows, figures)
            except AssertionError as error:
                raise AssertionError(f"{panel['title']} ({selection.name}): {error}\n{query}") from error


def test_the_default_view_has_data_in_every_panel(influxdb1: InfluxDB1, influx_database: str) -> None:
    write_records(influxdb1, influx_database)
    variables = dashboard_variables(influxdb1, influx_database, SELECTIONS[0])
    for panel, target in targets():
        rows = influxdb1.rows(PanelRequest(*panel_range(panel), 60_000, variables).render(target["query"]),
                              influx_database)
        assert rows, f"{panel['title']} shows no data"


def stat_values(server: InfluxDB1, database: str, variables: dict[str, VariableValue]) -> dict[str, float | None]:
    """Each stat panel's value today; None where it shows 'No data'."""
    request = PanelRequest(*TODAY, 60_000, variables)
    values: dict[str, float | None] = {}
    for panel in PANELS:
        if panel["type"] == "stat":
            rows = server.rows(request.render(panel["targets"][0]["query"]), database)
            values[panel["title"]] = value_of(rows[0]) if rows else None
    return values


def test_the_known_day_shows_the_figures_worked_out_by_hand(influxdb1: InfluxDB1, influx_database: str) -> None:
    write_records(influxdb1, influx_database)

    def stats_of(hosts: list[str]) -> dict[str, float | None]:
        variables = dashboard_variables(influxdb1, influx_database, Selection("by hand", hosts, None))
        return stat_values(influxdb1, influx_database, variables)

    both = stats_of([HOME, STUDIO])
    # Active minutes x score: 120x2 - 30x2 + 45x1 + 15x0 at home, 60x1 - 20x2 + 10x0 in the studio.
    assert both == pytest.approx({
        "Productivity pulse": ((240 - 60 + 45 + 60 - 40) / 300 + 2) * 25,  # 70.4
        "Active time": 300 * 60,
        "Productive time": (120 + 45 + 60) * 60,
        "Distracting time": (30 + 20) * 60,
        "Uncategorized time": (15 + 10) * 60,
        "Away": 30 * 60,
    })
    home = stats_of([HOME])
    assert home["Productivity pulse"] == pytest.approx((225 / 210 + 2) * 25)  # 76.8
    studio = stats_of([STUDIO])
    # Time-weighted, not per point: 20 minutes of YouTube are 10 points of 120 s.
    assert studio["Productivity pulse"] == pytest.approx((20 / 90 + 2) * 25)  # 55.6, not 62.5
    assert studio["Away"] is None


# ---------------------------------------------------------------- the health row, over known `tracker` points

HEALTH_START = datetime.combine(DAY, time(9), ZONE)
HEALTH_POINTS = 360  # one every 10 s for an hour
OUTAGE = range(120, 180)  # 09:20 to 09:30 at home: every request fails, the outbox grows
CPU_PER_SAMPLE_MS = {HOME: 2.0, STUDIO: 3.0}


def health_vitals(host: str, index: int) -> Vitals:
    samples = 10 * index
    down = host == HOME and index in OUTAGE
    failed = sum(1 for i in OUTAGE if i <= index) if host == HOME else 0
    return Vitals(
        cpu_seconds=0.5 + CPU_PER_SAMPLE_MS[host] / 1000 * samples,
        # The studio is a Mac: only the peak resident size is known there.
        memory_bytes=30_000_000 + 1000 * index if host == HOME else None,
        memory_peak_bytes=None if host == HOME else 40_000_000,
        gc_collections=index, gc_tracked_objects=30_000, threads=3, open_fds=12, samples_taken=samples,
        outbox_waiting=10 * (index - OUTAGE.start + 1) if down else 0,
        database_bytes=1_000_000, database_wal_bytes=4_000_000,
        seconds_behind=10.0 * (index - OUTAGE.start + 1) if down else 0.0,
        last_send_seconds=0.01, last_send_lines=10,
        requests={"ok": index - failed, "retry": failed})


def health_moment(index: int) -> int:
    return round(HEALTH_START.timestamp() * 1000) + 10_000 * index


def write_health_points(server: InfluxDB1, database: str) -> None:
    lines = [to_point(health_vitals(host, index), health_moment(index),
                      {"host": host, "version": "0.1.0", "source": "demo", "api": "auto"})
             for host in (HOME, STUDIO) for index in range(HEALTH_POINTS)]
    status, reply = http("POST", f"{server.url}/write?db={database}&precision=ms", "\n".join(lines).encode())
    assert status == 204, reply


def by_host(rows: list[dict[str, Any]], column: str) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    for row in rows:
        if row.get(column) is not None:
            values.setdefault(row["host"], []).append(row[column])
    return values


def check_memory(rows: list[dict[str, Any]], interval_ms: int) -> None:
    resident, peak = by_host(rows, "resident"), by_host(rows, "peak resident")
    if HOME in resident:
        assert max(resident[HOME]) == health_vitals(HOME, HEALTH_POINTS - 1).memory_bytes
        assert len(resident[HOME]) == HEALTH_POINTS * 10_000 // interval_ms
    assert STUDIO not in resident
    assert set(peak.get(STUDIO, [40_000_000])) == {40_000_000} and HOME not in peak


def check_cpu_per_sample(rows: list[dict[str, Any]], interval_ms: int) -> None:
    for host, values in by_host(rows, "CPU per sample").items():
        assert values == pytest.approx([CPU_PER_SAMPLE_MS[host]] * len(values)), host
        assert len(values) == HEALTH_POINTS * 10_000 // interval_ms - 1  # the first interval has no difference


def check_waiting(rows: list[dict[str, Any]], interval_ms: int) -> None:
    waiting, behind = by_host(rows, "waiting"), by_host(rows, "seconds behind")
    if HOME in waiting:
        # The last of each interval: the outbox is empty again by the interval after the outage.
        assert 0 < max(waiting[HOME]) <= 10 * len(OUTAGE) and waiting[HOME][-1] == 0
        assert max(behind[HOME]) == 10.0 * len(OUTAGE)  # the worst of each interval
    if STUDIO in waiting:
        assert set(waiting[STUDIO]) == {0} and set(behind[STUDIO]) == {0.0}


def check_send_failures(rows: list[dict[str, Any]], interval_ms: int) -> None:
    failed = by_host(rows, "failed requests")
    if HOME in failed:
        assert sum(failed[HOME]) == len(OUTAGE)
    if STUDIO in failed:
        assert sum(failed[STUDIO]) == 0


HEALTH_CHECKS: dict[str, Callable[[list[dict[str, Any]], int], None]] = {
    "Tracker memory": check_memory,
    "Tracker CPU per sample": check_cpu_per_sample,
    "Waiting to be sent": check_waiting,
    "Send failures": check_send_failures,
}


@pytest.mark.parametrize("selection", [SELECTIONS[0], SELECTIONS[1], SELECTIONS[2], SELECTIONS[3]],
                         ids=lambda selection: selection.name)
def test_the_health_row_shows_what_the_tracker_points_say(influxdb1: InfluxDB1, influx_database: str,
                                                          selection: Selection) -> None:
    write_records(influxdb1, influx_database)  # the host variable lists the hosts of the activity points
    write_health_points(influxdb1, influx_database)
    variables = dashboard_variables(influxdb1, influx_database, selection)
    request = PanelRequest(*TODAY, selection.interval_ms, variables)
    for panel in HEALTH_PANELS:
        rows = [row for _, target in targets([panel])
                for row in influxdb1.rows(request.render(target["query"]), influx_database)]
        assert rows, f"{panel['title']} shows no data ({selection.name})"
        shown_hosts = {row["host"] for row in rows}
        assert shown_hosts == (selection.hosts or {HOME, STUDIO}), panel["title"]
        try:
            HEALTH_CHECKS[panel["title"]](rows, selection.interval_ms)
        except AssertionError as error:
            raise AssertionError(f"{panel['title']} ({selection.name}): {error}") from error


# ---------------------------------------------------------------- the goals row, over known `goals` points

GOAL_START = datetime.combine(DAY, time(9), ZONE)
SOCIAL = Goal("Social at most 30m a day", ("Social",), False, True, 1800.0, "day")
CODING = Goal("Coding at least 4h a day", ("Development",), False, False, 4 * 3600.0, "day")
PULSE = Goal("pulse at least 60 a day", (), True, False, 60.0, "day")


def goal_points() -> list[tuple[str, Goal, int, float]]:
    """(host, goal, time, value): a point a minute for an hour; at home Social passes its limit at 09:40."""
    points = []
    for minute in range(60):
        moment = round(GOAL_START.timestamp() * 1000) + 60_000 * minute
        points += [(HOME, SOCIAL, moment, 45.0 * minute), (HOME, CODING, moment, 120.0 * minute),
                   (HOME, PULSE, moment, 55.0 + minute / 10), (STUDIO, CODING, moment, 60.0 * minute)]
    return points


def write_goal_points(server: InfluxDB1, database: str) -> None:
    lines = [goal_point(goal, Tally(value, 0.0) if not goal.pulse else Tally(1.0, score_of_pulse(value)), host,
                        moment) for host, goal, moment, value in goal_points()]
    status, reply = http("POST", f"{server.url}/write?db={database}&precision=ms", "\n".join(lines).encode())
    assert status == 204, reply


def last_percent(host: str, goal: Goal) -> float:
    value = [value for point_host, point_goal, _, value in goal_points()
             if (point_host, point_goal) == (host, goal)][-1]
    return 100.0 * value / goal.target


def check_limits(rows: list[dict[str, Any]], hosts: set[str]) -> None:
    shown = {(row["goal"], row["host"]): row["percent"] for row in rows}
    assert shown == {(SOCIAL.name, HOME): pytest.approx(last_percent(HOME, SOCIAL))} if HOME in hosts else {}


def check_targets(rows: list[dict[str, Any]], hosts: set[str]) -> None:
    shown = {(row["goal"], row["host"]): row["percent"] for row in rows}
    expected = {(goal.name, host): pytest.approx(last_percent(host, goal))
                for host, goal in ((HOME, CODING), (HOME, PULSE), (STUDIO, CODING)) if host in hosts}
    assert shown == expected


def check_goal_progress(rows: list[dict[str, Any]], hosts: set[str]) -> None:
    social = [row["percent"] for row in rows if row["goal"] == SOCIAL.name and row["percent"] is not None]
    if HOME in hosts:
        assert len(social) == 60 and max(social) == pytest.approx(last_percent(HOME, SOCIAL))
        assert sum(percent > 100 for percent in social) == 19  # crossed at 09:41 (1845 s), shown above the line
    assert {row["host"] for row in rows} == hosts


GOAL_CHECKS: dict[str, Callable[[list[dict[str, Any]], set[str]], None]] = {
    "Limits used (at most)": check_limits,
    "Targets reached (at least)": check_targets,
    "Goal progress": check_goal_progress,
}


def test_the_goals_row_reads_the_goals_points_by_time_and_host() -> None:
    assert [panel["title"] for panel in GOALS_PANELS] == list(GOAL_CHECKS)
    for panel, target in targets(GOALS_PANELS):
        assert target["rawQuery"] is True and target["query"].startswith("SELECT "), panel["title"]
        assert 'FROM "goals" WHERE $timeFilter AND "host" =~ /^$host$/' in target["query"], panel["title"]


@pytest.mark.parametrize("selection", [SELECTIONS[0], SELECTIONS[2]], ids=lambda selection: selection.name)
def test_the_goals_row_shows_what_the_goals_points_say(influxdb1: InfluxDB1, influx_database: str,
                                                       selection: Selection) -> None:
    write_records(influxdb1, influx_database)  # the host variable lists the hosts of the activity points
    write_goal_points(influxdb1, influx_database)
    variables = dashboard_variables(influxdb1, influx_database, selection)
    request = PanelRequest(*TODAY, 60_000, variables)
    for panel in GOALS_PANELS:
        rows = [row for _, target in targets([panel])
                for row in influxdb1.rows(request.render(target["query"]), influx_database)]
        try:
            GOAL_CHECKS[panel["title"]](rows, set(selection.hosts or {HOME, STUDIO}))
        except AssertionError as error:
            raise AssertionError(f"{panel['title']} ({selection.name}): {error}") from error
