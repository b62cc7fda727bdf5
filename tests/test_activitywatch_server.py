"""ActivityWatch import and export against a real aw-server (PyPI's), fed with aw-client heartbeats.

The per-category totals tracker imports are checked against ActivityWatch's own query engine (flood, AFK
filtering, the browser's tab events) classified with the same categories; tracker's export goes back into the
same aw-server through its import API; the imported points reach a real InfluxDB 1.x once, with the bucket's
host."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers.servers import ActivityWatch, InfluxDB1

from tracker import paths
from tracker.categories.files import load_categories
from tracker.commands import cli
from tracker.model import Sample

AW_HOST = "aw-desk"
START = datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc)
POLL = 5  # seconds between heartbeats, as a watcher polling every 5 s
WINDOW, AFK, WEB = f"aw-watcher-window_{AW_HOST}", f"aw-watcher-afk_{AW_HOST}", f"aw-watcher-web-firefox_{AW_HOST}"
# What a user would be doing: an editor, a chat, and a browser on two sites.
APPS = [("Code", "main.py - tracker"), ("Slack", "general"), ("Firefox", "Mozilla Firefox")]
TABS = [("https://github.com/tracker/issues", "Issues"), ("https://news.ycombinator.com/", "Hacker News")]
ON_DAY = ["--since", "2024-05-06", "--until", "2024-05-06"]


def tracker(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def feed(server: ActivityWatch, minutes: int = 40, seed: int = 7) -> None:
    """Heartbeats as aw-watcher-window, aw-watcher-afk and aw-watcher-web send them, one per POLL seconds."""
    from aw_client import ActivityWatchClient
    from aw_core.models import Event

    client = ActivityWatchClient("tracker-test", testing=True, host="127.0.0.1", port=server.port)
    client.client_hostname = AW_HOST
    client.create_bucket(WINDOW, "currentwindow")
    client.create_bucket(AFK, "afkstatus")
    client.create_bucket(WEB, "web.tab.current")
    rng = random.Random(seed)
    app, tab, afk, audible = APPS[0], TABS[0], False, False
    for step in range(minutes * 60 // POLL):
        moment = START + timedelta(seconds=step * POLL)
        if rng.random() < 0.15:
            app = rng.choice(APPS)
        if rng.random() < 0.2:
            tab = rng.choice(TABS)
        if rng.random() < 0.04:
            afk = not afk
        if rng.random() < 0.1:
            audible = not audible  # a video playing, which ActivityWatch counts as not AFK
        client.heartbeat(WINDOW, Event(timestamp=moment, data={"app": app[0], "title": app[1]}),
                         pulsetime=POLL + 1)
        client.heartbeat(AFK, Event(timestamp=moment, data={"status": "afk" if afk else "not-afk"}),
                         pulsetime=POLL + 1)
        if app[0] == "Firefox":
            client.heartbeat(WEB, Event(timestamp=moment, data={"url": tab[0], "title": tab[1], "audible": audible,
                                                                "incognito": False}), pulsetime=POLL + 1)


def activitywatch_totals(server: ActivityWatch) -> dict[str, float]:
    """Seconds per category by ActivityWatch's own query engine: window time in not-AFK time (flooded, as its
    summary does), the browser's share by its tab events, each event classified with tracker's categories;
    AFK time as Away."""
    query = [  # as aw-webui's canonical query, with audible tabs in a browser in front counting as not AFK
        f'window = flood(query_bucket("{WINDOW}"));',
        f'afk = flood(query_bucket("{AFK}"));',
        f'web = flood(query_bucket("{WEB}"));',
        'in_front = filter_keyvals(window, "app", ["Firefox"]);',
        'web_in_front = filter_period_intersect(web, in_front);',
        'audible = filter_keyvals(web_in_front, "audible", [true]);',
        'not_afk = period_union(filter_keyvals(afk, "status", ["not-afk"]), audible);',
        'active = filter_period_intersect(window, not_afk);',
        'afk_window = filter_period_intersect(window, filter_keyvals(afk, "status", ["afk"]));',
        'afk_but_audible = filter_period_intersect(afk_window, audible);',
        'browser = filter_keyvals(active, "app", ["Firefox"]);',
        'tabs = filter_period_intersect(web, browser);',
    ]
    result = {name: aw_query(server, [*query, f"RETURN = {name};"])
              for name in ("active", "browser", "tabs", "afk_window", "afk_but_audible", "audible")}
    assert result["afk_but_audible"], "the data has time a tab played sound while the user was AFK"
    categories = load_categories()
    totals: dict[str, float] = {}

    def add(data: dict[str, Any], seconds: float, app: str | None = None) -> None:
        sample = Sample(START, app or data["app"], data.get("title"), data.get("url"))
        category = categories.classify(sample).category
        totals[category] = totals.get(category, 0.0) + seconds

    for event in result["active"]:
        if event["data"]["app"] != "Firefox":
            add(event["data"], event["duration"])
    for event in result["tabs"]:
        add(event["data"], event["duration"], "Firefox")
    # The browser's time no tab event covers (its edges, flooded) counts as the browser window.
    uncovered = sum(e["duration"] for e in result["browser"]) - sum(e["duration"] for e in result["tabs"])
    add({"app": "Firefox", "title": "Mozilla Firefox"}, uncovered)
    totals["Away"] = (sum(event["duration"] for event in result["afk_window"])
                      - sum(event["duration"] for event in result["afk_but_audible"]))
    return {name: seconds for name, seconds in totals.items() if seconds > 0}


def aw_query(server: ActivityWatch, query: list[str]) -> Any:
    """The result of an ActivityWatch query over the day of START."""
    period = f"{START.isoformat()}/{(START + timedelta(days=1)).isoformat()}"
    return server.post("/api/0/query/", {"query": query, "timeperiods": [period]})[0]


def tracker_totals() -> dict[str, float]:
    report = json.loads(tracker("report", *ON_DAY, "--json", "--by", "category").output)
    totals = {row["name"]: row["seconds"] for row in report["rows"]}
    totals["Away"] = report["away_seconds"]
    return {name: seconds for name, seconds in totals.items() if seconds > 0}


def assert_close(found: dict[str, float], expected: dict[str, float]) -> None:
    assert found.keys() == expected.keys()
    for name in expected:
        assert found[name] == pytest.approx(expected[name], abs=0.5), name


def test_an_import_from_aw_server_gives_activitywatch_s_own_totals_per_category(aw_server: ActivityWatch):
    feed(aw_server)
    expected = activitywatch_totals(aw_server)
    assert len(expected) >= 4, expected  # the browser's sites, the editor, the chat and away time all show

    done = tracker("import", "activitywatch", "--server", aw_server.url)

    assert f"of {AW_HOST} from {aw_server.url}" in done.output
    assert_close(tracker_totals(), expected)
    again = tracker("import", "activitywatch", "--server", aw_server.url)
    assert "Nothing new" in again.output
    assert_close(tracker_totals(), expected)


def test_tracker_s_export_goes_into_aw_server_and_reads_back_the_same(aw_server: ActivityWatch, tmp_path: Path):
    feed(aw_server, minutes=20)
    tracker("import", "activitywatch", "--server", aw_server.url)
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("host: exported-box\n")
    exported = tmp_path / "tracker-export.json"
    tracker("export", "--format", "activitywatch", "-o", str(exported))

    aw_server.post("/api/0/import", json.loads(exported.read_text()))

    buckets = aw_server.get("/api/0/buckets/")
    assert buckets["aw-watcher-window_exported-box"]["type"] == "currentwindow"
    assert buckets["aw-watcher-afk_exported-box"]["hostname"] == "exported-box"
    events = aw_server.get("/api/0/buckets/aw-watcher-window_exported-box/events?limit=-1")
    rows = [json.loads(line) for line in tracker("export", "--format", "jsonl").output.splitlines()]
    assert len(events) == len(rows)
    assert sorted((e["data"]["app"], e["data"]["title"], round(e["duration"], 3)) for e in events) == sorted(
        (row["app"], row["title"] or "", round(row["duration"], 3)) for row in rows)
    # ActivityWatch's own view of the exported buckets: the same active and away time as tracker reports.
    query = ['window = query_bucket("aw-watcher-window_exported-box");',
             'afk = query_bucket("aw-watcher-afk_exported-box");',
             'active = filter_period_intersect(window, filter_keyvals(afk, "status", ["not-afk"]));',
             'away = filter_period_intersect(window, filter_keyvals(afk, "status", ["afk"]));',
             ]
    seen = {name: sum(e["duration"] for e in aw_query(aw_server, [*query, f"RETURN = {name};"]))
            for name in ("active", "away")}
    report = json.loads(tracker("report", *ON_DAY, "--json").output)
    assert seen["active"] == pytest.approx(report["total_seconds"], abs=0.01)
    assert seen["away"] == pytest.approx(report["away_seconds"], abs=0.01)


def test_imported_points_reach_influxdb_once_with_the_bucket_s_host(aw_server: ActivityWatch, influxdb1: InfluxDB1,
                                                                     influx_database: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    feed(aw_server, minutes=20)
    export = tmp_path / "aw-buckets-export.json"
    export.write_bytes(json.dumps(aw_server.get("/api/0/export")).encode())
    monkeypatch.setenv("TRACKER_INFLUX_URL", influxdb1.url)
    monkeypatch.setenv("TRACKER_INFLUX_BUCKET", influx_database)
    tracker("import", "activitywatch", str(export))
    tracker("sync")
    report = json.loads(tracker("report", *ON_DAY, "--json").output)
    recorded = report["total_seconds"] + report["away_seconds"]

    def in_influxdb() -> dict[str, float]:
        rows = influxdb1.rows('SELECT sum("duration") AS seconds FROM "activity" GROUP BY "host"', influx_database)
        return {row["host"]: row["seconds"] for row in rows}

    assert in_influxdb() == {AW_HOST: pytest.approx(recorded, abs=0.01)}
    tracker("import", "activitywatch", str(export))
    tracker("sync")
    assert in_influxdb() == {AW_HOST: pytest.approx(recorded, abs=0.01)}
    # Even a fresh local history imports the same points again: InfluxDB overwrites them, nothing doubles.
    for leftover in paths.database_file().parent.glob(paths.database_file().name + "*"):
        leftover.unlink()
    tracker("import", "activitywatch", str(export))
    tracker("sync")
    assert in_influxdb() == {AW_HOST: pytest.approx(recorded, abs=0.01)}


def run_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run `tracker ARGS` with a pseudo-terminal as stdin, stdout and stderr; its exit code and all it wrote."""
    import os
    import pty
    import subprocess
    import sys

    main, side = pty.openpty()
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    process = subprocess.Popen([str(Path(sys.executable).with_name("tracker")), *args], stdin=side, stdout=side,
                               stderr=side, env=environment, close_fds=True)
    os.close(side)
    written = bytearray()
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the terminal's other side closed with the process
            break
        if not chunk:
            break
        written += chunk
    os.close(main)
    return process.wait(60), written.decode("utf-8", "replace")


@pytest.mark.slow
def test_a_progress_bar_shows_on_a_terminal_only(tmp_path: Path):
    document = {"buckets": {"aw-watcher-window_desk": {
        "id": "aw-watcher-window_desk", "type": "currentwindow", "client": "x", "hostname": "desk",
        "created": START.isoformat(),
        "events": [{"timestamp": (START + timedelta(seconds=10 * n)).isoformat(), "duration": 10,
                    "data": {"app": "Code", "title": f"file {n}"}} for n in range(20_000)]}}}
    export = tmp_path / "aw-buckets-export.json"
    export.write_text(json.dumps(document))

    code, shown = run_on_a_terminal("import", "activitywatch", str(export))

    assert code == 0, shown
    assert "Reading " in shown  # a bar of the bytes read of the file's size
    assert "Importing from ActivityWatch" in shown and "100%" in shown
    assert "Imported 20,000 events" in shown
    paths.database_file().unlink()
    piped = CliRunner().invoke(cli, ["import", "activitywatch", str(export)])
    assert piped.exit_code == 0 and "Importing from" not in piped.output
    assert piped.output.count("\n") == 1
