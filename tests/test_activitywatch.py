"""ActivityWatch import and export as a user runs them on export files (no server): what lands in the local
history and the outbox, what an import twice or a bad file leaves, and what the exports write."""

from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker import paths
from tracker.commands import cli
from tracker.events import default_pulsetime
from tracker.interchange.activitywatch import AwEvent, Bucket, combine, flood, read_export
from tracker.model import Record
from tracker.storage.history import HistoryWriter

START = datetime(2024, 5, 6, 9, 0, tzinfo=timezone.utc)
ON_DAY = ["--since", "2024-05-06", "--until", "2024-05-06"]


def at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


def event(start: float, duration: float, **data: Any) -> dict[str, Any]:
    return {"timestamp": at(start), "duration": duration, "data": data}


def bucket(bucket_id: str, kind: str, host: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": bucket_id, "type": kind, "client": "aw-watcher", "hostname": host,
            "created": START.isoformat(), "events": events}


def export(host: str = "desk", window: list | None = None, afk: list | None = None, web: list | None = None) -> dict:
    """An export of one host: 10 min of Code, 10 min of Firefox (two tabs), the last 5 min of Code away."""
    buckets = {
        f"aw-watcher-window_{host}": bucket(f"aw-watcher-window_{host}", "currentwindow", host, window or [
            event(0, 600, app="Code", title="main.py"), event(600, 600, app="Firefox", title="Mozilla Firefox"),
            event(1200, 600, app="Code", title="x.py")]),
        f"aw-watcher-afk_{host}": bucket(f"aw-watcher-afk_{host}", "afkstatus", host, afk or [
            event(0, 1500, status="not-afk"), event(1500, 300, status="afk")]),
        f"aw-watcher-web-firefox_{host}": bucket(f"aw-watcher-web-firefox_{host}", "web.tab.current", host, web or [
            event(600, 300, url="https://github.com/x", title="GitHub", incognito=False),
            event(900, 300, url="https://news.ycombinator.com/", title="HN", incognito=False)]),
    }
    return {"buckets": buckets}


def write(tmp_path: Path, document: dict | str, name: str = "aw-buckets-export.json") -> str:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def tracker(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def report() -> dict[str, Any]:
    code, output = tracker("report", *ON_DAY, "--json", "--by", "activity")
    assert code == 0, output
    return json.loads(output)


def stored() -> tuple[list[tuple], list[tuple]]:
    """The history's events and the outbox's rows, as they are in the file."""
    path = paths.database_file()
    if not path.exists():
        return [], []
    with closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        events = db.execute("SELECT * FROM events ORDER BY id").fetchall() if "events" in tables else []
        rows = db.execute("SELECT time_ms, duration, host, activity, category, state FROM outbox ORDER BY id"
                          ).fetchall() if "outbox" in tables else []
    return events, rows


def set_host(name: str) -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(f"host: {name}\n")


# -- import ---------------------------------------------------------------------------------------------------

def test_window_time_in_not_afk_time_is_active_with_the_tabs_urls_and_afk_time_is_away(tmp_path):
    code, output = tracker("import", "activitywatch", write(tmp_path, export()))
    assert code == 0, output
    assert "Imported 5 events (30m) of desk" in output
    found = report()
    assert {row["name"]: row["seconds"] for row in found["rows"]} == {
        "Code": 900.0, "github.com": 300.0, "news.ycombinator.com": 300.0}
    assert found["away_seconds"] == 300.0
    _, rows = stored()
    assert {row[2] for row in rows} == {"desk"}  # the bucket's hostname is the points' host
    assert sum(row[1] for row in rows) == 1800.0
    # Points are cut at each UTC minute: a dashboard's hour gets the time that fell in it.
    assert all(row[0] % 60_000 == 0 for row in rows) and max(row[1] for row in rows) == 60.0


def test_importing_the_same_export_twice_changes_nothing(tmp_path):
    file = write(tmp_path, export())
    tracker("import", "activitywatch", file)
    before = stored()
    code, output = tracker("import", "activitywatch", file)
    assert code == 0
    assert output.startswith("Nothing new in") and "Skipped 30m" in output
    assert stored() == before


def test_a_later_export_adds_only_what_is_new(tmp_path):
    tracker("import", "activitywatch", write(tmp_path, export()))
    longer = export(window=[event(0, 600, app="Code", title="main.py"),
                            event(600, 600, app="Firefox", title="Mozilla Firefox"),
                            event(1200, 1200, app="Code", title="x.py")],
                    afk=[event(0, 1500, status="not-afk"), event(1500, 300, status="afk"),
                         event(1800, 600, status="not-afk")])
    code, output = tracker("import", "activitywatch", write(tmp_path, longer, "later.json"))
    assert code == 0 and "(10m)" in output and "Skipped 30m" in output
    assert {row["name"]: row["seconds"] for row in report()["rows"]}["Code"] == 1500.0
    assert sum(row[1] for row in stored()[1]) == 2400.0


def test_time_tracker_recorded_itself_wins_for_its_own_host(tmp_path):
    set_host("desk")
    with HistoryWriter(paths.database_file(), default_pulsetime(1.0)) as history:
        for second in range(300, 360):  # a minute tracker recorded, in the middle of the export's Code time
            history.add(Record(int((START.timestamp() + second) * 1000), 1.0, "desk", "slack", "slack",
                               "Communication", -1.0))
    code, output = tracker("import", "activitywatch", write(tmp_path, export()))
    assert code == 0 and "Skipped 1m" in output
    rows = {row["name"]: row["seconds"] for row in report()["rows"]}
    assert rows["Code"] == 840.0 and rows["slack"] == 60.0
    assert report()["total_seconds"] + report()["away_seconds"] == 1800.0


def test_another_host_s_time_is_added_beside_this_machine_s(tmp_path):
    set_host("laptop")
    tracker("import", "activitywatch", write(tmp_path, export("desk")))
    code, output = tracker("import", "activitywatch", write(tmp_path, export("tower"), "tower.json"))
    assert code == 0 and "of tower" in output
    assert {row[2] for row in stored()[1]} == {"desk", "tower"}
    assert sum(row[1] for row in stored()[1]) == 3600.0


def test_another_host_s_imported_time_does_not_count_as_this_machine_s_own(tmp_path):
    set_host("desk")
    tracker("import", "activitywatch", write(tmp_path, export("tower"), "tower.json"))
    code, output = tracker("import", "activitywatch", write(tmp_path, export("desk")))
    assert code == 0 and "Skipped" not in output
    assert sum(row[1] for row in stored()[1] if row[2] == "desk") == 1800.0


@pytest.mark.parametrize(("document", "said"), [
    ({"buckets": {"aw-watcher-window_desk": bucket("aw-watcher-window_desk", "currentwindow", "desk", [
        event(0, 60, app="Code"), {"duration": 5, "data": {"app": "Code"}}])}},
     "event 2 of bucket aw-watcher-window_desk is malformed (it has no 'timestamp')"),
    ({"buckets": {"aw-watcher-afk_desk": bucket("aw-watcher-afk_desk", "afkstatus", "desk", [
        event(0, 60, status="afk"), event(60, 60, status="afk"),
        {"timestamp": "yesterday", "duration": 1, "data": {}}])}},
     "event 3 of bucket aw-watcher-afk_desk is malformed (timestamp 'yesterday' is not an ISO 8601"),
    ({"buckets": {"aw-watcher-window_desk": bucket("aw-watcher-window_desk", "currentwindow", "desk", [
        {"timestamp": at(0), "duration": "long", "data": {}}])}},
     "event 1 of bucket aw-watcher-window_desk is malformed (duration 'long' is not a number of seconds)"),
    ({"events": []}, 'is not an ActivityWatch export: it has no "buckets" object'),
])
def test_a_malformed_export_is_one_sentence_naming_bucket_and_event_and_imports_nothing(tmp_path, document, said):
    tracker("import", "activitywatch", write(tmp_path, export("other"), "first.json"))
    before = stored()
    # The bad bucket comes after good ones, which must not be imported either.
    whole = {"buckets": {**export()["buckets"], **document["buckets"]}} if "buckets" in document else document
    code, output = tracker("import", "activitywatch", write(tmp_path, whole))
    assert code == 1
    assert said in output and "nothing was imported" in output
    assert output.count("\n") == 1 and "Traceback" not in output
    assert stored() == before


def test_a_truncated_export_names_where_it_ends_and_imports_nothing(tmp_path):
    text = json.dumps(export())
    cut = text.index("aw-watcher-web-firefox_desk") + 400
    code, output = tracker("import", "activitywatch", write(tmp_path, text[:cut]))
    assert code == 1
    assert "ends early, in bucket aw-watcher-web-firefox_desk after event" in output
    assert "export it again" in output and output.count("\n") == 1
    assert stored() == ([], [])


def test_an_import_that_does_not_fit_in_the_outbox_is_refused_whole(tmp_path):
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("outbox_max_rows: 10\n")
    code, output = tracker("import", "activitywatch", write(tmp_path, export()))
    assert code == 1
    assert "makes 30 points for InfluxDB but the outbox has room for 10" in output
    assert "nothing was imported" in output
    assert stored()[0] == [] and stored()[1] == []


def test_an_unreachable_server_is_one_sentence():
    from helpers.servers import free_port

    code, output = tracker("import", "activitywatch", "--server", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and "Cannot reach the ActivityWatch server" in output and "nothing was imported" in output


@pytest.mark.parametrize(("server", "said"), [
    ("http://user:pa55word@127.0.0.1:5600", "aw-server takes no user name or password"),
    ("http://127.0.0.1:1/?token=pa55word", "Cannot reach the ActivityWatch server at http://127.0.0.1:1 ("),
    ("127.0.0.1:5600", "--server takes aw-server's address, such as http://127.0.0.1:5600"),
    ("ftp://pa55word@127.0.0.1", "--server takes aw-server's address"),
])
def test_a_server_address_is_never_repeated_with_its_secrets(server: str, said: str) -> None:
    code, output = tracker("import", "activitywatch", "--server", server)
    assert code == 1 and said in output and output.count("\n") == 1
    assert "pa55word" not in output and "nothing was imported" in output


def test_a_server_that_stops_part_way_is_one_sentence_and_imports_nothing():
    from helpers.fault_server import FaultServer, Step

    text = json.dumps(export())
    server = FaultServer().start()
    try:
        # The connection closes before the body it announced: the export ends early.
        server.catch_all = Step(200, text[:len(text) // 2], headers={"Content-Length": str(len(text))})
        code, output = tracker("import", "activitywatch", "--server", server.url)
        assert code == 1 and output.count("\n") == 1
        assert f"The ActivityWatch server at {server.url} stopped part-way through the export" in output
        assert "nothing was imported" in output
        # A body cut short that the server says is whole: the export's own end shows it.
        server.catch_all = Step(200, text[:-3])
        code, output = tracker("import", "activitywatch", "--server", server.url)
        assert code == 1 and "ends early, in bucket aw-watcher-web-firefox_desk after event 2" in output
    finally:
        server.stop()
    assert stored() == ([], []) and scratch_files() == []


def test_file_and_server_are_one_or_the_other(tmp_path):
    code, output = tracker("import", "activitywatch")
    assert code == 2 and "give an export FILE or --server URL" in output


def test_an_incognito_tab_keeps_the_app_only(tmp_path):
    document = export(web=[event(600, 600, url="https://secret.example/", title="Secret", incognito=True)])
    tracker("import", "activitywatch", write(tmp_path, document))
    code, output = tracker("export", "--format", "jsonl")
    assert code == 0
    firefox = [json.loads(line) for line in output.splitlines() if json.loads(line)["app"] == "Firefox"]
    assert [(row["title"], row["url"], row["duration"]) for row in firefox] == [(None, None, 600.0)]


# -- combining, against aw-core's own rules -------------------------------------------------------------------

DATA = st.sampled_from([{"app": "a"}, {"app": "b"}, {"app": "c"}])


@pytest.mark.slow
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20), DATA), max_size=12))
@settings(max_examples=300, deadline=None)
def test_flood_is_aw_transform_s(raw):
    """On whole seconds with even durations (so midpoints are whole ms), as aw-transform computes them."""
    from helpers.servers import require_module

    require_module("aw_transform", "aw-server (with peewee<4)")
    from aw_core.models import Event as AwCoreEvent
    from aw_transform import flood as aw_flood

    events = [AwEvent(int(START.timestamp() * 1000) + start * 1000, int(START.timestamp() * 1000) + start * 1000
                      + duration * 2000, data) for start, duration, data in raw]
    theirs = aw_flood([AwCoreEvent(timestamp=START + timedelta(seconds=start), duration=duration * 2,
                                   data=dict(data)) for start, duration, data in raw], pulsetime=5)
    ours = flood(events, 5_000)
    assert [(e.start_ms, e.end_ms, dict(e.data)) for e in ours] == [
        (round(e.timestamp.timestamp() * 1000), round((e.timestamp + e.duration).timestamp() * 1000), dict(e.data))
        for e in theirs]


@pytest.mark.slow
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(-5, 400), DATA), max_size=30),
       st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 400), st.booleans()), max_size=10))
@settings(max_examples=200, deadline=None)
def test_spans_never_overlap_and_never_exceed_the_window_time(windows, afk):
    start_ms = int(START.timestamp() * 1000)
    buckets = [Bucket("aw-watcher-window_h", "currentwindow", "h",
                      [AwEvent(start_ms + s * 1000, start_ms + (s + max(d, 0)) * 1000, data)
                       for s, d, data in windows]),
               Bucket("aw-watcher-afk_h", "afkstatus", "h",
                      [AwEvent(start_ms + s * 1000, start_ms + (s + d) * 1000, {"status": "afk" if a else "not-afk"})
                       for s, d, a in afk])]
    spans = combine(buckets)
    for earlier, later in itertools.pairwise(spans):
        assert earlier.end_ms <= later.start_ms
    assert all(span.end_ms > span.start_ms for span in spans)
    flooded = flood([e for e in buckets[0].events])
    assert sum(s.end_ms - s.start_ms for s in spans) <= sum(e.end_ms - e.start_ms for e in flooded)


def test_a_host_without_an_afk_bucket_is_all_active_and_unnamed_tab_buckets_join_the_only_host():
    document = export()
    del document["buckets"]["aw-watcher-afk_desk"]
    document["buckets"]["aw-watcher-web-firefox_desk"]["hostname"] = "unknown"
    spans = combine(read_export(json.dumps(document), "export"))
    assert sum(span.end_ms - span.start_ms for span in spans) == 1_800_000
    assert not any(span.away for span in spans)
    assert {span.url for span in spans} == {None, "https://github.com/x", "https://news.ycombinator.com/"}


# -- export ---------------------------------------------------------------------------------------------------

def test_jsonl_and_csv_have_one_row_per_event_and_no_titles_leaves_titles_and_urls_out(tmp_path):
    tracker("import", "activitywatch", write(tmp_path, export()))
    code, output = tracker("export", "--format", "jsonl")
    assert code == 0
    rows = [json.loads(line) for line in output.splitlines()]
    assert list(rows[0]) == ["time", "duration", "app", "activity", "category", "score", "state", "title", "url"]
    assert [(row["time"], row["duration"], row["activity"], row["state"]) for row in rows] == [
        (at(0), 600.0, "Code", "active"), (at(600), 300.0, "github.com", "active"),
        (at(900), 300.0, "news.ycombinator.com", "active"), (at(1200), 300.0, "Code", "active"),
        (at(1500), 300.0, "Code", "away")]
    assert rows[1]["url"] == "https://github.com/x" and rows[1]["title"] == "GitHub"
    out = tmp_path / "history.csv"
    code, _ = tracker("export", "--format", "csv", "--no-titles", "-o", str(out))
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(table) == 5 and {row["title"] for row in table} == {""} and {row["url"] for row in table} == {""}
    assert sum(float(row["duration"]) for row in table) == 1800.0


def test_since_and_until_clip_the_events(tmp_path):
    tracker("import", "activitywatch", write(tmp_path, export()))
    since = (START + timedelta(minutes=5)).astimezone().strftime("%Y-%m-%dT%H:%M")
    until = (START + timedelta(minutes=15)).astimezone().strftime("%Y-%m-%dT%H:%M")
    code, output = tracker("export", "--format", "jsonl", "--since", since, "--until", until)
    assert code == 0
    rows = [json.loads(line) for line in output.splitlines()]
    assert [(row["time"], row["duration"]) for row in rows] == [(at(300), 300.0), (at(600), 300.0)]


def test_the_activitywatch_export_reimports_to_the_same_history(tmp_path):
    tracker("import", "activitywatch", write(tmp_path, export()))
    set_host("roundtrip")
    out = tmp_path / "tracker.json"
    assert tracker("export", "--format", "activitywatch", "-o", str(out))[0] == 0
    document = json.loads(out.read_text())
    assert set(document["buckets"]) == {"aw-watcher-window_roundtrip", "aw-watcher-afk_roundtrip"}
    assert [e["data"]["status"] for e in document["buckets"]["aw-watcher-afk_roundtrip"]["events"]] == [
        "not-afk", "afk"]
    first = report()
    paths.database_file().unlink()
    tracker("import", "activitywatch", str(out))
    assert report() == first


# Windows of different categories under the bundled categories.yaml: Development, Communication, News, none.
ROUND_TRIP_WINDOWS = [("code", "main.py - project", None), ("firefox", "GitHub", "https://github.com/x"),
                      ("slack", "general", None), ("firefox", "Hacker News", "https://news.ycombinator.com/"),
                      ("mystery-tool", None, None)]
# (gap before it in ms, duration in ms, window, away): gaps of nothing, of less than the 5 s ActivityWatch's
# import floods, and longer; whole and fractional seconds; runs of one window, as a heartbeat merges them.
recorded_stretches = st.lists(
    st.tuples(st.one_of(st.just(0), st.integers(1, 12_000)), st.integers(1, 90_000),
              st.sampled_from(range(len(ROUND_TRIP_WINDOWS))), st.booleans()),
    min_size=1, max_size=25)


def record_stretches(stretches: list[tuple[int, int, int, bool]]) -> None:
    """Record the stretches as `tracker run` does: classified by the categories in force, away time keeping its
    window, merged into events by the history's heartbeat."""
    from tracker.categories.files import load_categories
    from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, Sample

    categories = load_categories()
    moment = int(START.timestamp() * 1000)
    with HistoryWriter(paths.database_file(), default_pulsetime(1.0)) as history:
        for gap, duration, window, away in stretches:
            moment += gap
            app, title, url = ROUND_TRIP_WINDOWS[window]
            sample = Sample(START, app, title, url)
            match = categories.classify(sample)
            history.add(Record(time_ms=moment, duration=duration / 1000, host="roundtrip", app=app,
                               activity=sample.activity, category=AWAY if away else match.category,
                               score=0.0 if away else float(match.score), state=STATE_AWAY if away else STATE_ACTIVE,
                               title=title, url=url))
            moment += duration


def history_as_recorded() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every event (as `tracker export --format jsonl` writes them) and the per-category report of the day."""
    code, lines = tracker("export", "--format", "jsonl")
    assert code == 0, lines
    code, totals = tracker("report", "--since", "2024-05-06", "--until", "2024-05-07", "--json")
    assert code == 0, totals
    return [json.loads(line) for line in lines.splitlines()], json.loads(totals)


@settings(max_examples=60, deadline=None)
@given(recorded_stretches)
def test_tracker_s_own_activitywatch_export_imports_to_exactly_what_was_recorded(
        tmp_path_factory: pytest.TempPathFactory, stretches: list[tuple[int, int, int, bool]]) -> None:
    """Exported, then imported into an empty data directory: the same events, to the millisecond, and the same
    time per category; no gap of the history filled (an import that flooded them gave 18.3 s for 12.0 s)."""
    exported = tmp_path_factory.mktemp("export") / "tracker.json"
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("TRACKER_HOME", str(tmp_path_factory.mktemp("recorded")))
        set_host("roundtrip")
        record_stretches(stretches)
        recorded = history_as_recorded()
        code, said = tracker("export", "--format", "activitywatch", "-o", str(exported))
        assert code == 0, said
        environment.setenv("TRACKER_HOME", str(tmp_path_factory.mktemp("imported")))
        code, said = tracker("import", "activitywatch", str(exported))
        assert code == 0, said
        assert history_as_recorded() == recorded


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)),
       st.sampled_from(["Z", "+00:00", ""]), st.integers(0, 999))
def test_timestamps_as_aw_server_rust_writes_them_read_on_every_python(moment, zone, nanoseconds):
    """Python 3.10's fromisoformat reads no Z and no nanoseconds; the fallback reads what 3.11's does."""
    from tracker.interchange.activitywatch import _older_fromisoformat

    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond:06d}{nanoseconds:03d}{zone}"
    assert _older_fromisoformat(text) == moment
    assert _older_fromisoformat(moment.strftime("%Y-%m-%dT%H:%M:%S") + zone) == moment.replace(microsecond=0)


def test_a_tab_playing_sound_in_a_browser_in_front_is_not_afk_time(tmp_path):
    """As ActivityWatch's summary: a video watched without touching the mouse is not time away."""
    document = export(window=[event(0, 600, app="Firefox", title="Mozilla Firefox"), event(600, 600, app="Code")],
                      afk=[event(0, 1200, status="afk")],
                      web=[event(0, 300, url="https://www.youtube.com/watch?v=x", title="Talk", audible=True),
                           event(300, 900, url="https://news.ycombinator.com/", title="HN", audible=True)])
    tracker("import", "activitywatch", write(tmp_path, document))
    found = report()
    # Audible tabs count only while the browser is in front: the Code window stays away.
    assert {row["name"]: row["seconds"] for row in found["rows"]} == {"youtube.com": 300.0,
                                                                        "news.ycombinator.com": 300.0}
    assert found["away_seconds"] == 600.0


SPANS = st.lists(st.tuples(st.sampled_from(["desk", "tower"]), st.integers(0, 3600), st.integers(1, 600),
                           st.sampled_from(["Code", "Slack"]), st.booleans()), max_size=15)


@pytest.mark.slow
@given(SPANS, SPANS)
@settings(max_examples=60, deadline=None)
def test_overlapping_imports_never_count_a_moment_of_a_host_twice(first, second):
    """Two exports that overlap in any way: each host's time afterwards is the union of both, locally and in the
    outbox, and importing both again adds nothing."""
    import tempfile

    from tracker.categories.files import load_categories
    from tracker.categories.privacy import Privacy
    from tracker.config import PrivacySettings
    from tracker.interchange.activitywatch import Span
    from tracker.interchange.importing import import_spans

    start_ms = int(START.timestamp() * 1000)

    def spans(raw: list) -> list[Span]:
        # One export never overlaps itself within a host (combine's spans do not): later starts are cut.
        kept: dict[str, list[Span]] = {}
        for host, start, length, app, away in sorted(raw, key=lambda item: item[1]):
            previous = kept.get(host, [])
            begin = max(start_ms + start * 1000, previous[-1].end_ms if previous else 0)
            end = start_ms + (start + length) * 1000
            if end > begin:
                kept.setdefault(host, []).append(Span(host, begin, end, app, None, None, away))
        return [span for host_spans in kept.values() for span in host_spans]

    def union_seconds(host: str) -> float:
        moments = set()
        for span in spans(first) + spans(second):
            if span.host == host:
                moments.update(range(span.start_ms // 1000, span.end_ms // 1000))
        return float(len(moments))

    with tempfile.TemporaryDirectory() as directory:
        database = Path(directory) / "tracker.db"
        arguments = (load_categories(), Privacy(PrivacySettings()), "laptop", 10 ** 6)
        for raw in (first, second, first, second):
            import_spans(database, spans(raw), *arguments)
        with closing(sqlite3.connect(database)) as db:
            for host in ("desk", "tower"):
                in_outbox = db.execute("SELECT TOTAL(duration) FROM outbox WHERE host = ?", (host,)).fetchone()[0]
                assert in_outbox == union_seconds(host)
            in_history = db.execute("SELECT TOTAL(duration) FROM events").fetchone()[0]
    assert in_history == union_seconds("desk") + union_seconds("tower")


def test_while_tracker_records_nothing_of_its_host_is_imported_from_its_current_event_on(tmp_path):
    """Its current event grows in memory before it is written: imported time there would be counted twice."""
    from tracker.categories.files import load_categories
    from tracker.categories.privacy import Privacy
    from tracker.config import PrivacySettings
    from tracker.interchange.activitywatch import Span
    from tracker.interchange.importing import import_spans

    with HistoryWriter(paths.database_file(), default_pulsetime(1.0)) as history:
        history.add(Record(int((START.timestamp() + 300) * 1000), 1.0, "desk", "slack", "slack", "Communication",
                           -1.0))
    start_ms = int(START.timestamp() * 1000)
    spans = [Span("desk", start_ms, start_ms + 1_800_000, "Code", None, None, False),
             Span("tower", start_ms, start_ms + 1_800_000, "Code", None, None, False)]
    result = import_spans(paths.database_file(), spans, load_categories(), Privacy(PrivacySettings()), "desk",
                          10 ** 6, recording=True)
    assert result.seconds == 300 + 1800  # desk until tracker's current event; all of another host
    assert result.skipped_seconds == 1500


def test_imported_time_is_classified_before_privacy_drops_details_as_recorded_time_is(tmp_path):
    """As `tracker run` does: the window as it was is classified, then privacy leaves out what it must. So with
    titles off, an excluded site or a private window, the time keeps the category its title or URL gives it."""
    from tracker.categories.files import parse_categories
    from tracker.categories.privacy import Privacy
    from tracker.config import PrivacySettings
    from tracker.interchange.activitywatch import Span
    from tracker.interchange.importing import import_spans

    categories = parse_categories("categories:\n"
                                  "  Work:\n    score: 2\n    titles:\n      - 'secret-project'\n"
                                  "  Finance:\n    score: 0\n    domains:\n      - example.com\n"
                                  "  Shopping:\n    score: -1\n    domains:\n      - example.org\n",
                                  Path("categories.yaml"))
    privacy = Privacy(PrivacySettings(titles=False, exclude_domains=("bank.example.com",)))
    start_ms = int(START.timestamp() * 1000)
    spans = [Span("desk", start_ms, start_ms + 60_000, "Code", "secret-project - main.py", None, False),
             Span("desk", start_ms + 60_000, start_ms + 120_000, "Firefox", "Statement",
                  "https://bank.example.com/accounts", False),
             Span("desk", start_ms + 120_000, start_ms + 180_000, "Firefox", "Cart", "https://shop.example.org/",
                  False, private=True)]
    import_spans(paths.database_file(), spans, categories, privacy, "laptop", 10 ** 6)
    with closing(sqlite3.connect(paths.database_file())) as db:
        events = db.execute("SELECT app, activity, category, score, title, url FROM events ORDER BY timestamp")
        assert events.fetchall() == [("Code", "Code", "Work", 2.0, None, None),
                                     ("Firefox", "Firefox", "Finance", 0.0, None, None),
                                     ("Firefox", "Firefox", "Shopping", -1.0, None, None)]
        points = db.execute("SELECT DISTINCT app, activity, category, score, title, url FROM outbox ORDER BY time_ms")
        assert points.fetchall() == [("Code", "Code", "Work", 2.0, None, None),
                                     ("Firefox", "Firefox", "Finance", 0.0, None, None),
                                     ("Firefox", "Firefox", "Shopping", -1.0, None, None)]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=40), min_size=4, max_size=4))
def test_csv_gives_back_every_title_and_name_a_spreadsheet_cannot_run(texts: list[str]) -> None:
    # Whatever a page puts in its title (commas, quotes, line breaks of any kind, formulas), each event is one
    # row, and each text comes back as it was, with an apostrophe before what a spreadsheet would run.
    from tracker.events import Event, EventData
    from tracker.interchange.export import csv_lines

    app, activity, title, url = texts
    events = [Event(1_700_000_000_000 + n * 1000, 1.0, EventData(app, activity, "Code", -1.0, title, url, "active"))
              for n in range(2)]
    table = list(csv.DictReader(io.StringIO("".join(csv_lines(events)), newline="")))
    assert len(table) == 2
    for column, text in zip(("app", "activity", "title", "url"), texts, strict=True):
        shown = table[0][column]
        assert shown == (("'" + text) if text[:1] in "=+-@\t\r" and text else text)
    assert table[1]["score"] == "-1.0"


# -- a day at a time: large exports ---------------------------------------------------------------------------

MIDNIGHT = datetime(2024, 5, 7, tzinfo=timezone.utc)
AROUND_MIDNIGHT = ["--since", "2024-05-05", "--until", "2024-05-08"]


def at_midnight(seconds: float) -> str:
    return (MIDNIGHT + timedelta(seconds=seconds)).isoformat()


def scratch_files() -> list[Path]:
    """The scratch files an import keeps the export's events in, left in the data directory."""
    folder = paths.database_file().parent
    return list(folder.glob(".activitywatch-import-*")) if folder.exists() else []


def test_window_afk_and_tab_events_crossing_midnight_count_once_and_stay_whole(tmp_path):
    """The import combines a UTC day at a time: events crossing midnight come out as they would all at once."""
    hour = 3600

    def crossing(start: float, length: float, **data: Any) -> dict[str, Any]:
        return {"timestamp": at_midnight(start), "duration": length, "data": data}

    document = export(window=[crossing(-1.5 * hour, hour, app="Code", title="main.py"),
                              crossing(-0.5 * hour, hour, app="Firefox", title="Mozilla Firefox"),
                              crossing(0.5 * hour, 0.5 * hour, app="Code", title="x.py")],
                      afk=[crossing(-1.5 * hour, 100 * 60, status="not-afk"),
                           crossing(10 * 60, 50 * 60, status="afk")],
                      web=[crossing(-20 * 60, 40 * 60, url="https://github.com/x", title="GitHub")])
    file = write(tmp_path, document)
    code, output = tracker("import", "activitywatch", file)
    assert code == 0, output
    assert "Imported 5 events (2h 30m) of desk" in output  # the tab's 30 m across midnight is one event
    code, shown = tracker("report", *AROUND_MIDNIGHT, "--json", "--by", "activity")
    found = json.loads(shown)
    assert {row["name"]: row["seconds"] for row in found["rows"]} == {"Code": 3600.0, "github.com": 1800.0,
                                                                      "Firefox": 600.0}
    assert found["away_seconds"] == 3000.0  # Firefox from 00:10, then Code
    unwindowed = combine(read_export(json.dumps(document), "export"))
    assert sum(span.end_ms - span.start_ms for span in unwindowed) == 9_000_000
    assert tracker("import", "activitywatch", file)[1].startswith("Nothing new in")
    assert scratch_files() == []


def test_an_export_cut_off_at_its_very_end_leaves_nothing_behind(tmp_path):
    """Every event is read before the end shows the export is cut short: still nothing is imported."""
    tracker("import", "activitywatch", write(tmp_path, export("other"), "first.json"))
    before = stored()
    text = json.dumps(export())
    code, output = tracker("import", "activitywatch", write(tmp_path, text[:-1]))
    assert code == 1
    assert "ends early" in output and "nothing was imported" in output and output.count("\n") == 1
    assert stored() == before
    assert scratch_files() == []


@pytest.mark.slow
def test_an_import_killed_part_way_leaves_no_scratch_file_once_run_again_and_the_same_totals(tmp_path):
    """SIGKILL gives an import no chance to remove its scratch file: the next import removes it (and only the
    files of imports that are gone), and ends with the time a whole import gives, none of it twice."""
    events, length = 20_000, 10  # two days of 10 s window events: seconds of import
    apps = ["Code", "Firefox", "Slack", "Terminal"]
    window = [event(n * length, length, app=apps[n % 4], title=f"t{n % 7}") for n in range(events)]
    file = write(tmp_path, {"buckets": {"aw-watcher-window_desk": bucket("aw-watcher-window_desk", "currentwindow",
                                                                         "desk", window)}})
    whole_week = ["--since", "2024-05-06", "--until", "2024-05-14", "--json"]
    command = [str(Path(sys.executable).parent / "tracker"), "import", "activitywatch", file]
    importing = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not scratch_files() and importing.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert importing.poll() is None, "the import ended before it could be killed part-way"
    importing.kill()
    importing.wait()
    abandoned = scratch_files()
    assert [path.name.startswith(f".activitywatch-import-{importing.pid}-") for path in abandoned] == [True]
    running = subprocess.Popen(["sleep", "60"])  # an import still running keeps its file
    kept = abandoned[0].with_name(f".activitywatch-import-{running.pid}-x.db")
    kept.write_bytes(b"")
    try:
        code, output = tracker("import", "activitywatch", file)
        assert code == 0, output
        assert scratch_files() == [kept]
    finally:
        running.kill()
        running.wait()
        kept.unlink()
    code, shown = tracker("report", *whole_week)
    assert code == 0, shown
    assert json.loads(shown)["total_seconds"] == events * length
    assert tracker("import", "activitywatch", file)[1].startswith("Nothing new in")


def test_an_export_split_anywhere_into_chunks_reads_the_same():
    """Files and servers give the text in chunks: where they are cut never changes what is read."""
    from tracker.interchange.activitywatch import iter_export

    document = export()
    window = document["buckets"]["aw-watcher-window_desk"]
    # aw-server-rust may write a bucket's events before its type and hostname.
    document["buckets"]["aw-watcher-window_desk"] = {"events": window.pop("events"), **window}
    text = json.dumps(document, indent=1).replace('"duration": 600', '"duration": 6e2')
    whole = read_export(text, "export")
    encoded = text.encode()
    for size in (1, 2, 3, 7, 64, 1000):
        items = list(iter_export((encoded[at:at + size] for at in range(0, len(encoded), size)), "export"))
        assert [item for item in items if isinstance(item, Bucket)] == [
            Bucket(bucket.id, bucket.type, bucket.hostname, [], bucket.client) for bucket in whole]
        assert [item for item in items if isinstance(item, AwEvent)] == [
            event for bucket in whole for event in bucket.events]
    assert [(bucket.type, bucket.hostname, len(bucket.events)) for bucket in whole] == [
        ("currentwindow", "desk", 3), ("afkstatus", "desk", 2), ("web.tab.current", "desk", 2)]


def test_invalid_json_in_the_middle_names_the_bucket_line_and_column(tmp_path):
    text = json.dumps(export(), indent=1).replace('"title": "x.py"', '"title": x.py')
    code, output = tracker("import", "activitywatch", write(tmp_path, text))
    assert code == 1 and output.count("\n") == 1
    assert "is not valid JSON, in bucket aw-watcher-window_desk after event 2 (line" in output
    assert "nothing was imported" in output and stored() == ([], [])


MOMENT = st.one_of(st.integers(-300, 300), st.integers(-36 * 3600, 36 * 3600))  # seconds from midnight
LENGTH = st.one_of(st.integers(0, 20), st.integers(0, 3 * 3600), st.integers(0, 50 * 3600))


@pytest.mark.slow
@given(st.lists(st.tuples(MOMENT, LENGTH, st.sampled_from(["Code", "Firefox", "Slack"])), max_size=14),
       st.lists(st.tuples(MOMENT, LENGTH, st.booleans()), max_size=8),
       st.lists(st.tuples(MOMENT, LENGTH, st.sampled_from(["https://a.example/", "https://b.example/"]),
                          st.booleans()), max_size=8))
@settings(max_examples=300, deadline=None)
def test_combining_a_day_at_a_time_gives_what_combining_all_at_once_gives(windows, afk, tabs):
    """Events crossing the days' edges, or within flooding reach of them, or overlapping each other there: the
    spans (adjacent equal ones joined) are those of the whole export combined at once."""
    import tempfile

    from tracker.interchange.activitywatch import Span, combine_by_day
    from tracker.interchange.importing import StagedExport

    def crossing(start: int, length: int, **data: Any) -> dict[str, Any]:
        return {"timestamp": at_midnight(start), "duration": length, "data": data}

    document = export(window=[crossing(start, length, app=app) for start, length, app in windows] or [],
                      afk=[crossing(start, length, status="afk" if away else "not-afk") for start, length, away in afk],
                      web=[crossing(start, length, url=url, audible=audible) for start, length, url, audible in tabs])
    for kind, events in (("window", windows), ("afk", afk), ("web", tabs)):
        if not events:  # export() fills an empty list with its own events
            next(b for b in document["buckets"].values() if kind in b["id"])["events"] = []
    text = json.dumps(document)

    def joined(spans: list[Span]) -> list[Span]:
        kept: list[Span] = []
        for span in spans:
            if kept and kept[-1].end_ms == span.start_ms and kept[-1].retimed(0, 0) == span.retimed(0, 0):
                kept[-1] = kept[-1].retimed(kept[-1].start_ms, span.end_ms)
            else:
                kept.append(span)
        return kept

    with tempfile.TemporaryDirectory() as directory, StagedExport(Path(directory)) as staged:
        staged.read([text.encode()], "export")
        by_day = list(combine_by_day(staged.buckets, staged))
    assert joined(by_day) == joined(combine(read_export(text, "export")))
