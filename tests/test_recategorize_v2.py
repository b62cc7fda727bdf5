"""`tracker recategorize` on InfluxDB 2.x (Flux to read, /api/v2/delete to delete), against the loopback fake in
tests/helpers/fake_influxdb2.py: there is no InfluxDB 2.x on the test machine, so this path was never run against a
real one. The fake parses the delete predicate with 2.x's grammar and answers Flux in 2.x's annotated CSV."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers.fake_influxdb2 import FakeInfluxDB2, Refusal, parse_predicate
from helpers.fault_server import FaultServer, Step
from helpers.recategorizing import (
    AFTER,
    BEFORE,
    HOST,
    OTHER_HOST,
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
from helpers.servers import http
from hypothesis import given
from hypothesis import strategies as st

from tracker import paths
from tracker.config import InfluxSettings
from tracker.lineprotocol import clean_tag, to_line
from tracker.model import Record
from tracker.storage.outbox import Outbox


def v2_env(server: FakeInfluxDB2, api: str = "auto") -> dict[str, str]:
    return {"TRACKER_INFLUX_URL": server.url, "TRACKER_INFLUX_BUCKET": server.bucket, "TRACKER_INFLUX_ORG": server.org,
            "TRACKER_INFLUX_TOKEN": server.token, "TRACKER_INFLUX_API": api}


def write_points(server: FakeInfluxDB2, lines: list[str]) -> None:
    """Points written straight to InfluxDB, as another machine or `tracker demo` writes them."""
    status, reply = http("POST", f"{server.url}/api/v2/write?org={server.org}&bucket={server.bucket}&precision=ms",
                         "\n".join(lines).encode(), {"Authorization": f"Token {server.token}"})
    assert status == 204, reply


@pytest.mark.slow
def test_influxdb2_points_move_the_dashboard_follows_and_totals_stay(influxdb2: FakeInfluxDB2) -> None:
    env = v2_env(influxdb2)
    write_host(HOST)
    write_rules(BEFORE)
    records = day_of_records(days=3)
    record_locally(records)
    other = day_of_records(host=OTHER_HOST, per_stretch=5)  # another machine's points: never touched
    write_points(influxdb2, [to_line(record) for record in other])
    code, output = tracker("sync", **env)
    assert code == 0, output
    other_before = influxdb2.points(OTHER_HOST)
    assert influxdb2.time_per_category(HOST) == pytest.approx(seconds_by(records))
    totals_before = influxdb2.totals(HOST)

    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", "--dry-run", **env)
    assert code == 0, output
    assert f"InfluxDB at {influxdb2.url}: would move\n  Communication → Meetings: 1.00 h\n" in output
    assert influxdb2.time_per_category(HOST) == pytest.approx(seconds_by(records))

    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert (f"InfluxDB at {influxdb2.url}: moved\n  Communication → Meetings: 1.00 h\n"
            "  Social → Learning: 1.00 h") in output
    assert influxdb2.time_per_category(HOST) == pytest.approx(seconds_by(records, after))
    assert influxdb2.totals(HOST) == (pytest.approx(totals_before[0]), totals_before[1])
    assert report_by_category() == pytest.approx(seconds_by(records, after))
    assert influxdb2.points(OTHER_HOST) == other_before
    # Points keep their fields: each moved point has its title, URL and new score.
    learning = [point for point in influxdb2.points(HOST) if point.tags["category"] == "Learning"]
    assert {(point.fields["title"], point.fields["url"], point.fields["score"], point.tags["app"])
            for point in learning} == {("r/python", "https://www.reddit.com/r/python", 1.0, "Firefox")}
    # Deleted by 2.x's predicate: the measurement, the host and the series' tags.
    assert influxdb2.deletes and all(
        delete["predicate"].startswith('"_measurement"="activity" AND "activity"=') and f'"host"="{HOST}"'
        in delete["predicate"] for delete in influxdb2.deletes)
    # A second run finds nothing left to move.
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0 and f"InfluxDB at {influxdb2.url}: no time changed category." in output, output
    # Read an hour at a time from the next point on: no query made the server sort more than an hour of points
    # (a point every STEP seconds), out of the 2,250 of three days.
    assert max(influxdb2.points_queried) <= 3600 / STEP < len(records) / 6


def test_a_changed_score_alone_rewrites_the_scores_on_influxdb2(influxdb2: FakeInfluxDB2) -> None:
    """The new points share the old ones' series: deleted by an inclusive range before they are sent."""
    env = v2_env(influxdb2, api="v2")
    records = day_of_records(per_stretch=10)
    recorded_and_sent(records, env)
    totals = influxdb2.totals(HOST)
    write_rules(BEFORE.replace("Development: {score: 2,", "Development: {score: 1.5,"))
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert influxdb2.totals(HOST) == (pytest.approx(totals[0]), totals[1])
    assert {point.fields["score"] for point in influxdb2.points(HOST) if point.tags["category"] == "Development"} == {
        1.5}


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "marker"), [("demo", "demo"), ("appless", "app")], ids=["a tag more", "no app tag"])
def test_points_tracker_did_not_write_are_left_alone_on_influxdb2(influxdb2: FakeInfluxDB2, kind: str,
                                                                  marker: str) -> None:
    """One tag more (demo=true) or one less (2.x's delete predicate cannot name a missing tag): left alone."""
    env = v2_env(influxdb2)
    records = day_of_records(per_stretch=6)
    recorded_and_sent(records, env)
    foreign = [replace(record, time_ms=record.time_ms + 5_000) for record in records if record.category == "Social"]
    write_points(influxdb2, [not_trackers_line(kind, record) for record in foreign])
    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert f"{len(foreign)} points with tags tracker does not write (such as demo=true), or without one" in output
    theirs = [point for point in influxdb2.points(HOST) if (marker in point.tags) == (kind == "demo")]
    assert len(theirs) == len(foreign) and {point.tags["category"] for point in theirs} == {"Social"}
    ours = [point for point in influxdb2.points(HOST) if point not in theirs]
    assert seconds_by([Record(0, float(point.fields["duration"]), HOST, "", "", point.tags["category"], 0.0,
                              point.tags["state"]) for point in ours]) == pytest.approx(seconds_by(records, after))


def test_tag_values_with_quotes_backslashes_and_interpolation_are_read_and_deleted_exactly(
        influxdb2: FakeInfluxDB2) -> None:
    """The host and the tags reach the Flux query and the delete predicate escaped, each in its own grammar."""
    env = v2_env(influxdb2)
    host = 'lap"top ${h} \\ one'
    write_host(host)
    write_rules(BEFORE)
    odd = [Record(1_714_982_400_000 + index * 10_000, 10.0, clean_tag(host), "Slack", activity,
                  "Communication", 0.0, title="#standup | Acme")
           for index, activity in enumerate(['Sl"ack', "${x}", "C:\\tools", "a=b,c d", "'quoted'"] * 4)]
    record_locally(odd)
    code, output = tracker("sync", **env)
    assert code == 0, output
    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert influxdb2.time_per_category(clean_tag(host)) == {"Meetings": 200.0}
    assert sorted(point.tags["activity"] for point in influxdb2.points(clean_tag(host))) == sorted(
        record.activity for record in odd)


def test_with_influxdb2_down_the_local_part_happens_and_tracker_sync_corrects_it_once_it_answers(
        influxdb2: FakeInfluxDB2) -> None:
    env = v2_env(influxdb2)
    records = day_of_records(per_stretch=5)
    recorded_and_sent(records, env)
    write_rules(AFTER)
    influxdb2.stop()
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    assert "unreachable" in output and "the points in InfluxDB will be when it answers again" in output
    assert report_by_category() == pytest.approx(seconds_by(records, after))
    write_rules(BEFORE)  # changed again before the server is back: it still gets the rules the command applied
    influxdb2.start()
    code, output = tracker("sync", **env)
    assert code == 0, output
    assert "InfluxDB answers again: the recategorisation asked for at " in output
    assert influxdb2.time_per_category(HOST) == pytest.approx(seconds_by(records, after))


def test_a_wrong_bucket_on_influxdb2_is_one_sentence_and_the_local_part_happens(influxdb2: FakeInfluxDB2) -> None:
    env = {**v2_env(influxdb2), "TRACKER_INFLUX_BUCKET": "nope"}
    write_host(HOST)
    write_rules(BEFORE)
    records = day_of_records(per_stretch=2)
    record_locally(records)
    write_rules(AFTER)
    code, output = tracker("recategorize", "--all", **env)
    assert code == 0, output
    # The outbox is sent first (what an interrupted run left): the write names the bucket.
    assert (f'InfluxDB at {influxdb2.url} says: bucket "nope" not found; create it, or fix influx.bucket (and'
            " influx.org) in config.yaml") in output
    assert report_by_category() == pytest.approx(seconds_by(records, after))
    # Flux's own words for a missing bucket say "could not find": still a setting to fix, not a missing endpoint.
    from tracker.sending.points_v2 import V2Points
    from tracker.sending.sinks import InfluxSettingsError

    settings = InfluxSettings(url=influxdb2.url, bucket="nope", org=influxdb2.org, token=influxdb2.token)
    with pytest.raises(InfluxSettingsError, match=r'could not find bucket "nope" \(not found\); create it, or fix'):
        V2Points(settings, 1_000_000).read(HOST, 0, 10_000, 10)


def test_influxdb_cloud_names_no_version_and_is_asked_whether_it_deletes() -> None:
    for deletes in (True, False):
        server = FakeInfluxDB2(cloud=True, deletes=deletes).start()
        try:
            env = v2_env(server)
            records = day_of_records(per_stretch=3)
            recorded_and_sent(records, env)
            write_rules(AFTER)
            code, output = tracker("recategorize", "--all", **env)
        finally:
            server.stop()
        assert code == 0, output
        if deletes:
            assert server.time_per_category(HOST) == pytest.approx(seconds_by(records, after))
            assert server.deletes[0]["predicate"] == '"_measurement"="activity" AND "tracker_probe"="none"'
        else:
            assert ("tracker corrects points only in InfluxDB 1.x (InfluxQL DELETE) and 2.x (/api/v2/delete); this"
                    " server is InfluxDB Cloud without /api/v2/delete (it answers 404 Not Found), so the points"
                    " already sent keep their old categories.") in output
            assert server.time_per_category(HOST) == pytest.approx(seconds_by(records))
            assert ("POST", "/api/v2/query", 200) not in server.requests  # nothing read, nothing committed
            with Outbox(paths.database_file()) as outbox:
                assert outbox.waiting() == 0
        write_rules(BEFORE)
        tracker("recategorize", "--all")  # the local history back as it was, for the next round


def test_influxdb3_is_not_corrected_and_it_says_so() -> None:
    server = FaultServer(version="3.0.1").start()
    try:
        write_host(HOST)
        write_rules(BEFORE)
        records = day_of_records(per_stretch=2)
        record_locally(records)
        write_rules(AFTER)
        code, output = tracker("recategorize", "--all", TRACKER_INFLUX_URL=server.url, TRACKER_INFLUX_BUCKET="b",
                               TRACKER_INFLUX_ORG="o", TRACKER_INFLUX_TOKEN="t")
    finally:
        server.stop()
    assert code == 0, output
    assert ("tracker corrects points only in InfluxDB 1.x (InfluxQL DELETE) and 2.x (/api/v2/delete); this server"
            " names itself InfluxDB 3.0.1, so the points already sent keep their old categories.") in output
    assert [request.path for request in server.requests] == ["/ping"]  # nothing read, nothing deleted
    assert report_by_category() == pytest.approx(seconds_by(records, after))


# ---------------------------------------------------------------- what 2.x's answers and grammar allow

@given(st.text(st.characters(codec="utf-8"), max_size=40))
def test_every_tag_value_reaches_the_delete_predicate_as_it_is(value: str) -> None:
    """Whatever a window gives as app or activity, the predicate names exactly that tag value in 2.x's grammar."""
    from tracker.sending.points_v2 import predicate_value

    tag = clean_tag(value)
    assert parse_predicate(f'"_measurement"="activity" AND "app"={predicate_value(tag)}') == [
        ("_measurement", "=", "activity"), ("app", "=", tag)]


@pytest.mark.parametrize(("predicate", "message"), [
    ('host="a" OR host="b"', "the logical operator OR is not supported yet at position 9"),
    ('host=~/a/', 'operator: "=~" at position: 4 is not supported yet'),
    ("host='a'", 'bad tag value: "a", at position 5'),
    ('host="a" AND', "bad logical expression, at position 12"),
    ('(host="a"', "extra ( seen"),
])
def test_the_fake_refuses_what_influxdb2_refuses(predicate: str, message: str) -> None:
    with pytest.raises(Refusal) as refused:
        parse_predicate(predicate)
    assert (refused.value.status, refused.value.message) == (400, message)


def test_a_query_that_fails_part_way_is_an_error_not_fewer_points() -> None:
    """2.x answers 200 and ends the CSV with an error table when a query fails after it started answering."""
    from tracker.sending.points_v2 import V2Points
    from tracker.sending.sinks import RetryLater

    body = ("#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n"
            ",\"panic: out of memory\",\r\n\r\n")
    server = FaultServer(version="v2.7.12").then(Step(200, body, content_type="text/csv")).start()
    try:
        settings = InfluxSettings(url=server.url, bucket="b", org="o", token="a-long-token", api="v2")
        with pytest.raises(RetryLater, match=r"failed the query part-way \(panic: out of memory"):
            V2Points(settings, 1_000_000).read(HOST, 0, 10_000, 2000)
    finally:
        server.stop()


def test_a_query_answer_longer_than_read_is_refused_and_not_read_on() -> None:
    from tracker.sending.points_v2 import V2Points
    from tracker.sending.sinks import TooLarge

    server = FaultServer(version="v2.7.12").then(Step(200, "#datatype,string\r\n", content_type="text/csv",
                                                      stream=200_000_000)).start()
    try:
        settings = InfluxSettings(url=server.url, bucket="b", org="o", token="a-long-token", api="v2")
        with pytest.raises(TooLarge, match="answered a query with more than 1,000,000 bytes"):
            V2Points(settings, 1_000_000).read(HOST, 0, 10_000, 2000)
        server.hung_up.wait(30)
        assert server.streamed < 20_000_000
    finally:
        server.stop()


# ---------------------------------------------------------------- kill -9 part-way, then run again

@pytest.mark.slow
def test_killed_at_random_moments_on_influxdb2_a_rerun_ends_the_same(influxdb2: FakeInfluxDB2) -> None:
    env = v2_env(influxdb2, api="v2")
    records = day_of_records(days=5, per_stretch=40)  # 5,200 points in 3 batches, 1,600 of them to move
    recorded_and_sent(records, env)
    # From a fifth of a run on: the fake answers quickly, and the first part of a run is Python starting.
    killed_and_rerun(records, env, lambda: influxdb2.totals(HOST), lambda: influxdb2.time_per_category(HOST),
                     earliest=0.2)
