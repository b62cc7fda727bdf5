"""The outbox keeps every record until it is confirmed, within its bound, and fails plainly, never corrupt."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.fault_server import make_records
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracker import paths
from tracker.commands import cli
from tracker.lineprotocol import to_line
from tracker.model import Record, Restamp
from tracker.recording.recorder import mark_away
from tracker.storage.outbox import Outbox, OutboxUnavailable, Point


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def intact(path: Path) -> bool:
    with sqlite3.connect(path) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_rows_are_kept_oldest_first_in_private_files():
    path = paths.database_file()
    records = make_records(10)
    writer = Outbox(path)
    for record in records:
        writer.append(record)
    # A second connection sees every row at once: each append was committed before it returned.
    with Outbox(path) as reader:
        assert [record for _, record in reader.pending(100)] == records
        assert [record for _, record in reader.pending(3)] == records[:3]
    assert mode(path.parent) == 0o700
    assert {file.name: mode(file) for file in path.parent.iterdir()} == {
        "tracker.db": 0o600, "tracker.db-wal": 0o600, "tracker.db-shm": 0o600}
    writer.close()


def test_sent_rows_are_forgotten_and_refused_rows_kept_with_the_reason():
    records = make_records(6)
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(records)
        ids = [row_id for row_id, _ in outbox.pending(10)]
        outbox.mark_sent(ids[:2])
        outbox.quarantine(ids[3:4], "unable to parse: bad field value")
        outbox.note_send("sent 2 samples to http://influx:8086", success=True)
        assert [record for _, record in outbox.pending(10)] == [records[2], records[4], records[5]]
        stats = outbox.stats()
    assert (stats.waiting, stats.oldest_waiting, stats.dropped) == (3, records[2].time, 0)
    assert stats.last_result == "sent 2 samples to http://influx:8086"
    assert [(row.record, row.reason) for row in stats.quarantined] == [
        (records[3], "unable to parse: bad field value")]


def test_only_final_rows_are_sent_and_away_rewrites_only_rows_not_final_yet():
    records = make_records(6)
    with Outbox(paths.database_file()) as outbox:
        outbox.commit(records, final_until_ms=records[1].time_ms)
        assert [record for _, record in outbox.pending(10)] == records[:2]  # the rest may still turn out away
        outbox.commit([], final_until_ms=records[3].time_ms, away_since_ms=records[0].time_ms)
        # Away since records[0] reaches back only as far as the rows that were not final yet.
        assert [record for _, record in outbox.pending(10)] == [*records[:2], *map(mark_away, records[2:4])]
        assert outbox.make_final() == 2  # at a clean stop the rest is final as it stands: away too
        assert [record for _, record in outbox.pending(10)] == [*records[:2], *map(mark_away, records[2:])]


def test_quarantined_rows_count_against_the_bound_and_are_dropped_first():
    records = make_records(12)
    path = paths.database_file()
    with Outbox(path, max_rows=5) as outbox:
        outbox.append_many(records[:4])
        ids = [row_id for row_id, _ in outbox.pending(10)]
        outbox.quarantine(ids[1:3], "field type conflict")  # set aside, still kept: 4 rows of 5
        assert outbox.append_many(records[4:6]) == 1  # 6 rows: the older quarantined row goes

        def quarantined() -> list[Record]:
            return [row.record for row in outbox.stats().quarantined]

        assert quarantined() == [records[2]]
        outbox.quarantine([outbox.pending(10)[-1][0]], "field type conflict")  # records[5], the newest
        assert outbox.append(records[6]) == 1  # quarantined rows go first, however new, oldest first
        assert quarantined() == [records[5]]
        assert [record for _, record in outbox.pending(100)] == [records[0], records[3], records[4], records[6]]
        assert outbox.append(records[7]) == 1  # then records[5], the last quarantined one
        assert quarantined() == []
        assert outbox.append_many(records[8:10]) == 2  # then the oldest waiting rows
        assert [record for _, record in outbox.pending(100)] == [records[4], *records[6:10]]
        outbox.quarantine([outbox.pending(1)[0][0]], "field type conflict")  # records[4]
    with Outbox(path, max_rows=5) as outbox:  # the count of quarantined rows survives a restart
        assert outbox.append(records[10]) == 1
        stats = outbox.stats()
    assert (stats.waiting, stats.dropped, stats.quarantined_count) == (5, 6, 0)
    shown = CliRunner().invoke(cli, ["outbox"])
    assert shown.exit_code == 0
    assert "Waiting:       5 samples, the oldest from" in shown.output
    assert ("Dropped:       6 samples: the outbox was full, so the oldest were dropped, quarantined ones first"
            in shown.output)
    as_json = json.loads(CliRunner().invoke(cli, ["outbox", "--json"]).output)
    assert (as_json["waiting"], as_json["dropped"], as_json["quarantined_count"]) == (5, 6, 0)


def test_retrying_quarantined_rows_creates_nothing_when_nothing_was_recorded():
    shown = CliRunner().invoke(cli, ["outbox", "--retry-quarantined"])
    assert (shown.exit_code, shown.output) == (0, "Nothing is quarantined.\n")
    assert not paths.database_file().exists()


# Steps on the outbox: append N rows, quarantine a waiting row (the Kth, counted round), send the oldest N,
# retry the quarantined.
outbox_steps = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(1, 6)),
    st.tuples(st.just("quarantine"), st.integers(0, 8)),
    st.tuples(st.just("send"), st.integers(1, 4)),
    st.tuples(st.just("retry"), st.just(0)),
), max_size=40)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_rows=st.integers(1, 8), steps=outbox_steps)
@example(max_rows=2, steps=[("append", 2), ("quarantine", 0), ("quarantine", 0), ("append", 1)])  # oldest first
def test_the_bound_keeps_the_newest_rows_dropping_quarantined_ones_first(tmp_path_factory, max_rows, steps):
    """Against a model: a list of rows in order, each waiting or quarantined."""
    path = tmp_path_factory.mktemp("bound") / "tracker.db"
    model: list[tuple[int, bool]] = []  # (record number, quarantined)
    dropped = appended = 0
    with Outbox(path, max_rows=max_rows) as outbox:
        for action, number in steps:
            if action == "append":
                outbox.append_many(make_records(number, first=appended))
                model += [(appended + offset, False) for offset in range(number)]
                appended += number
                excess = len(model) - max_rows
                if excess > 0:
                    quarantined = [row for row in model if row[1]][:excess]
                    waiting = [row for row in model if not row[1]][:excess - len(quarantined)]
                    model = [row for row in model if row not in quarantined and row not in waiting]
                    dropped += excess
            elif action == "quarantine":
                waiting_rows = outbox.pending(100)
                if waiting_rows:
                    outbox.quarantine([waiting_rows[number % len(waiting_rows)][0]], "refused")
                    chosen = [row for row in model if not row[1]][number % len(waiting_rows)]
                    model[model.index(chosen)] = (chosen[0], True)
            elif action == "send":
                outbox.mark_sent([row_id for row_id, _ in outbox.pending(number)])
                sent = [row for row in model if not row[1]][:number]
                model = [row for row in model if row not in sent]
            else:
                outbox.retry_quarantined()
                model = [(row[0], False) for row in model]
            stats = outbox.stats()
            waiting = [row[0] for row in model if not row[1]]
            assert [record.title for _, record in outbox.pending(100)] == [
                record.title for number in waiting for record in make_records(1, first=number)]
            assert [row.record.title for row in stats.quarantined] == [
                record.title for row in model if row[1] for record in make_records(1, first=row[0])]
            assert (stats.waiting, stats.dropped) == (len(waiting), dropped)


def test_tracker_outbox_creates_nothing_when_nothing_was_recorded():
    shown = CliRunner().invoke(cli, ["outbox"])
    assert shown.exit_code == 0
    assert "Waiting:       nothing\nLast send:     never" in shown.output
    assert not paths.database_file().exists()


def test_a_full_disk_stops_appends_plainly_and_loses_nothing(small_disk):
    if os.geteuid() != 0 or not small_disk.mount(1024):
        pytest.skip("needs root to mount a small tmpfs")
    path = small_disk.path / "tracker.db"
    outbox = Outbox(path)
    kept = []
    with pytest.raises(OutboxUnavailable) as caught:
        for record in make_records(2000):
            outbox.append(replace(record, title="x" * 2000))
            kept.append(replace(record, title="x" * 2000))
    assert str(caught.value) == f"Cannot write to the outbox {path}: the disk is full; free some space on that disk."
    assert 20 < len(kept) < 2000
    assert [record for _, record in outbox.pending(5000)] == kept
    small_disk.remount("size=8m")
    outbox.append(make_records(1, start_ms=1)[0])  # space again: appends go on
    assert outbox.stats().waiting == len(kept) + 1
    outbox.close()
    assert intact(path)


def test_a_read_only_data_directory_is_reported_and_left_intact(small_disk):
    records = make_records(20)
    if os.geteuid() == 0:
        if not small_disk.mount(2048):
            pytest.skip("needs to mount a tmpfs to make a read-only directory as root")
        make_read_only = lambda: small_disk.remount("ro")  # noqa: E731
        make_writable = lambda: small_disk.remount("rw")  # noqa: E731
    else:
        make_read_only = lambda: small_disk.path.chmod(0o500)  # noqa: E731
        make_writable = lambda: small_disk.path.chmod(0o700)  # noqa: E731
    path = small_disk.path / "tracker.db"
    with Outbox(path) as outbox:
        outbox.append_many(records)
    make_read_only()
    with pytest.raises(OutboxUnavailable) as caught:
        Outbox(path).append(records[0])
    message = str(caught.value)
    assert message.startswith(f"Cannot open the outbox {path}: ") and "read-only" in message
    make_writable()
    assert intact(path)
    with Outbox(path) as outbox:
        assert [record for _, record in outbox.pending(100)] == records


def test_rows_stay_visible_to_other_processes_when_one_process_opens_the_outbox_twice():
    """`tracker run` holds the outbox open in its loop and in its sender thread. Opening the second must not
    drop the first one's file locks: another process would then take the file as unused, remove its
    write-ahead log, and every row committed after that would go to a deleted file."""
    path = paths.database_file()
    recorder = Outbox(path)
    recorder.append_many(make_records(3))
    sender = Outbox(path)
    tracker = str(Path(sys.executable).with_name("tracker"))

    def waiting_seen_by_another_process() -> int:
        done = subprocess.run([tracker, "outbox", "--json"], capture_output=True, text=True, timeout=30)
        return json.loads(done.stdout)["waiting"]

    try:
        assert waiting_seen_by_another_process() == 3
        recorder.append_many(make_records(5, first=3))
        assert waiting_seen_by_another_process() == 8
        assert sender.waiting() == 8
    finally:
        sender.close()
        recorder.close()
    assert intact(path)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 8


def test_an_outbox_from_before_final_rows_and_stored_lines_still_sends_every_row():
    records = make_records(3)
    path = paths.database_file()
    paths.private_dir(path.parent)
    with sqlite3.connect(path) as old:  # the table as tracker 0.1 wrote it: no `final`, no `line`
        old.execute("""CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,
            duration REAL NOT NULL, host TEXT NOT NULL, app TEXT NOT NULL, activity TEXT NOT NULL,
            category TEXT NOT NULL, score REAL NOT NULL, state TEXT NOT NULL, title TEXT, url TEXT,
            quarantined TEXT, quarantined_ms INTEGER)""")
        old.executemany("INSERT INTO outbox (time_ms, duration, host, app, activity, category, score, state, title,"
                        " url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(r.time_ms, r.duration, r.host, r.app, r.activity, r.category, r.score, r.state, r.title,
                          r.url) for r in records])
    old.close()
    with Outbox(path) as outbox:
        outbox.append(replace(records[0], time_ms=records[0].time_ms + 10_000))
        assert [line for _, line in outbox.pending_lines(10)] == [
            *map(to_line, records), to_line(replace(records[0], time_ms=records[0].time_ms + 10_000))]
    with sqlite3.connect(path) as upgraded:  # encoded once, on the first open: the sender sends them as they are
        assert [line for (line,) in upgraded.execute("SELECT line FROM outbox ORDER BY id")][:3] == [
            *map(to_line, records)]
    upgraded.close()


def vitals_point(time_ms: int, samples_taken: int) -> Point:
    return Point("tracker", time_ms, "laptop",
                 f"tracker,host=laptop samples_taken={samples_taken}i,memory_bytes=30000000i {time_ms}")


def test_vitals_points_wait_in_line_with_the_samples_and_are_sent_as_committed():
    records = make_records(4)
    points = [vitals_point(records[1].time_ms + 1, 2), vitals_point(records[3].time_ms + 1, 4)]
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(records[:2])
        outbox.append_points(points[:1])
        outbox.append_many(records[2:])
        outbox.append_points(points[1:])
        sent = [line for _, line in outbox.pending_lines(100)]
        assert sent == [to_line(records[0]), to_line(records[1]), points[0].line,
                        to_line(records[2]), to_line(records[3]), points[1].line]
        assert [record for _, record in outbox.pending(100)] == records  # samples only: no placeholder record
        assert outbox.waiting() == 6
        assert outbox.oldest_waiting_ms() == records[0].time_ms
        assert outbox.waiting_other() == 2
        stats = outbox.stats()
        assert (stats.waiting, stats.waiting_samples, stats.waiting_other) == (6, 4, 2)
    shown = CliRunner().invoke(cli, ["outbox"])
    assert "Waiting:       4 samples and 2 vitals points, the oldest from" in shown.output
    as_json = json.loads(CliRunner().invoke(cli, ["outbox", "--json"]).output)
    assert (as_json["waiting"], as_json["waiting_samples"], as_json["waiting_vitals"]) == (6, 4, 2)


def test_a_refused_vitals_point_is_counted_in_quarantine_never_shown_as_a_sample_and_both_can_be_retried():
    records = make_records(2)
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(records)
        outbox.append_points([vitals_point(records[1].time_ms + 1, 2)])
        ids = [row_id for row_id, _ in outbox.pending_lines(100)]
        outbox.quarantine([ids[0], ids[2]], "field type conflict")
        stats = outbox.stats()
        assert [row.record for row in stats.quarantined] == [records[0]]
        assert (stats.quarantined_count, stats.quarantined_other, stats.waiting, stats.waiting_other) == (1, 1, 1, 0)
    shown = CliRunner().invoke(cli, ["outbox"])
    assert "Quarantined:   1 sample the server refused for good:" in shown.output
    assert "Quarantined:   1 vitals point the server refused for good" in shown.output
    assert shown.output.count(": field type conflict") == 1  # the sample's line; the point has no fake one
    assert shown.output.endswith("`tracker outbox --retry-quarantined` puts them back in the queue, to send them"
                                 " again\n")
    as_json = json.loads(CliRunner().invoke(cli, ["outbox", "--json"]).output)
    assert as_json["quarantined"][0]["reason"] == "field type conflict"
    assert as_json["quarantined"][0]["time_ms"] == records[0].time_ms

    shown = CliRunner().invoke(cli, ["outbox", "--retry-quarantined"])
    assert (shown.exit_code, shown.output) == (0, "Put 1 sample and 1 vitals point back in the queue: `tracker"
                                                  " sync` sends them now, a running tracker within seconds.\n")
    with Outbox(paths.database_file()) as outbox:
        assert [row_id for row_id, _ in outbox.pending_lines(10)] == ids  # in their places, oldest first
        stats = outbox.stats()
    assert (stats.waiting, stats.waiting_other, stats.quarantined_count, stats.quarantined_other) == (3, 1, 0, 0)
    assert "Quarantined" not in CliRunner().invoke(cli, ["outbox"]).output
    shown = CliRunner().invoke(cli, ["outbox", "--retry-quarantined"])
    assert (shown.exit_code, shown.output) == (0, "Nothing is quarantined.\n")
    shown = CliRunner().invoke(cli, ["outbox", "--retry-quarantined", "--json"])
    assert shown.exit_code == 2 and "choose one of --json and --retry-quarantined" in shown.output


def test_vitals_points_count_against_the_bound_and_go_oldest_first():
    records = make_records(3)
    with Outbox(paths.database_file(), max_rows=3) as outbox:
        outbox.append_points([vitals_point(records[0].time_ms - 1, 0)])
        dropped = outbox.append_many(records)
        assert dropped == 1
        assert [line for _, line in outbox.pending_lines(10)] == [to_line(record) for record in records]


def test_an_outbox_from_before_vitals_gains_the_measurement_column_and_its_rows_are_samples():
    path = paths.database_file()
    records = make_records(2)
    with Outbox(path) as outbox:
        outbox.append_many(records)
    with sqlite3.connect(path) as connection:
        connection.execute("DROP INDEX outbox_not_samples")
        connection.execute("ALTER TABLE outbox DROP COLUMN measurement")
    with Outbox(path) as outbox:
        assert [record for _, record in outbox.pending(10)] == records
        assert outbox.stats().waiting_other == 0


def test_nothing_is_handed_out_for_sending_while_a_clock_fix_waits_and_tracker_outbox_says_what_waits() -> None:
    # The points sent with the clock ahead move first: a row sent before could be taken for one of them.
    paths.private_dir(paths.database_file().parent)
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(make_records(3))
        outbox.restamp([Restamp(0, 10**13, -1000)], "laptop")
        outbox.corrections.defer_recategorization("laptop", None, 10**13, "categories: {}", "categories.yaml")
        assert outbox.pending_lines(10) == []
        shown = CliRunner().invoke(cli, ["outbox"]).output.splitlines()
        assert [line for line in shown if line.startswith(("Clock fix", "Recategorise"))] == [
            "Clock fix:     the samples sent while the clock was ahead move back in InfluxDB first; nothing more is"
            " sent until then",
            "Recategorise:  one recategorisation waits for InfluxDB (made once everything waiting is sent)"]
        (fix,) = outbox.corrections.clock_fixes()
        assert (fix.host, fix.restamp) == ("laptop", Restamp(0, 10**13, -1000))
        outbox.corrections.forget_clock_fix(fix.id)
        assert len(outbox.pending_lines(10)) == 3
        assert "Clock fix" not in CliRunner().invoke(cli, ["outbox"]).output


def test_a_new_outbox_opened_by_several_at_once_opens_for_each(tmp_path: Path):
    # `tracker run`'s sender thread and its loop, or `tracker sync` beside them, on a file not created yet.
    failures: list[Exception] = []

    def open_it(path: Path) -> None:
        try:
            Outbox(path).close()
        except Exception as error:
            failures.append(error)

    for attempt in range(60):
        path = tmp_path / f"{attempt}" / "tracker.db"
        openers = [threading.Thread(target=open_it, args=(path,)) for _ in range(3)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
    assert failures == []


def test_rows_rewritten_as_away_or_moved_by_a_clock_fix_keep_the_line_of_what_they_now_are(tmp_path: Path) -> None:
    """The sender sends the lines as they are kept: a row whose line were missing would be encoded on its way."""
    records = make_records(6)
    with Outbox(tmp_path / "tracker.db") as outbox:
        outbox.commit(records, final_until_ms=records[0].time_ms)  # the rest provisional, as a run leaves them
        outbox.commit([], final_until_ms=records[-1].time_ms, away_since_ms=records[2].time_ms)
        outbox.restamp([Restamp(records[4].time_ms, records[5].time_ms, -500)], "test-host")
        kept = [(line, Record(*row)) for line, *row in sqlite3.connect(tmp_path / "tracker.db").execute(
            "SELECT line, time_ms, duration, host, app, activity, category, score, state, title, url FROM outbox"
            " ORDER BY id")]
    assert [record.state for _, record in kept] == ["active"] * 3 + ["away"] * 3
    assert [record.time_ms for _, record in kept][4:] == [records[4].time_ms - 500, records[5].time_ms - 500]
    assert all(line == to_line(record) for line, record in kept)
