"""Long commands beside a running tracker: `tracker import activitywatch` and `tracker recategorize --all` hold the
history file a moment at a time, so `tracker run`'s loop never waits for it longer; an import stopped part-way
is finished by importing again, exactly; two imports at once are told apart."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers.disk import SmallDisk, fill
from helpers.terminal import TRACKER

from tracker import paths

pytestmark = pytest.mark.slow

START = datetime(2024, 3, 1, tzinfo=timezone.utc)
EVENTS = 20_000  # window events: one transaction took 3-4 s for them on a quiet 2-core machine
LOOP_LOCK_WAIT = 0.1  # the run loop's wait for the lock per try (tracker.recording.localstore)
# The longest the loop may wait for the file while a long command writes: a slice is about 50 ms of writing, and
# a busy machine may make one a few times longer; one transaction for the whole command took seconds.
A_MOMENT = 1.0
MOVED_CATEGORIES = "categories:\n  Focus:\n    score: 2\n    apps: [Code, kitty]\n  Talk:\n    score: -1\n" \
                   "    apps: [Slack]\n"


def write_export(path: Path, events: int = EVENTS) -> None:
    """A host's window events, 20 s each with a second between, inside one not-AFK event: a week of work."""
    apps = [("Code", "main.py"), ("Slack", "general"), ("kitty", "~/src"), ("Firefox", "Mozilla Firefox")]
    window = [{"timestamp": (START + timedelta(seconds=21 * number)).isoformat(), "duration": 20.0,
               "data": {"app": apps[number % 4][0], "title": f"{apps[number % 4][1]} {number % 30}"}}
              for number in range(events)]
    afk = [{"timestamp": START.isoformat(), "duration": 21.0 * events, "data": {"status": "not-afk"}}]
    buckets = {f"aw-watcher-{kind}_desk": {"id": f"aw-watcher-{kind}_desk", "type": kind_type, "client": "test",
                                           "hostname": "desk", "created": START.isoformat(), "events": found}
               for kind, kind_type, found in [("window", "currentwindow", window), ("afk", "afkstatus", afk)]}
    path.write_text(json.dumps({"buckets": buckets}))


def tracker_command(*args: str, home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(TRACKER), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, env={**os.environ, "TRACKER_HOME": str(home)})


def configure(home: Path) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.yaml").write_text("outbox_max_rows: 10000000\n")


@contextmanager
def loop_waits(database: Path) -> Iterator[list[float]]:
    """What `tracker run`'s loop waits for the file's write lock meanwhile, each time it takes it (every 50 ms
    here, once a second there): it tries LOOP_LOCK_WAIT at a time, and again when a try fails."""
    waits: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with closing(sqlite3.connect(database, timeout=LOOP_LOCK_WAIT, isolation_level=None)) as connection:
            while not stop.wait(0.05):
                asked = time.monotonic()
                while not stop.is_set():
                    try:
                        connection.execute("BEGIN IMMEDIATE")
                    except sqlite3.OperationalError:
                        continue
                    connection.execute("COMMIT")
                    waits.append(time.monotonic() - asked)
                    break

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        yield waits
    finally:
        stop.set()
        prober.join(timeout=30)


def history_file(home: Path) -> Path:
    database = home / "data" / "tracker.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA journal_mode=WAL")  # as tracker opens it: readers and one writer side by side
    return database


def written_events(database: Path) -> int:
    with closing(sqlite3.connect(database)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.OperationalError:  # no such table yet
            return 0


def contents(database: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """The events, the outbox's rows and the day rollups, in an order that does not depend on how they came."""
    with closing(sqlite3.connect(database)) as db:
        events = db.execute("SELECT timestamp, duration, app, activity, category, score, title, url, state"
                            " FROM events ORDER BY timestamp").fetchall()
        rows = db.execute("SELECT time_ms, duration, host, app, category, score, line FROM outbox"
                          " ORDER BY time_ms").fetchall()
        days = db.execute("SELECT day, active, category, activity, app, round(seconds, 3) FROM day_totals"
                          " ORDER BY day, active, category, activity, app").fetchall()
    return events, rows, days


def test_import_and_recategorize_never_hold_the_file_for_more_than_a_moment(tmp_path: Path) -> None:
    home = tmp_path / "home"
    configure(home)
    export = tmp_path / "export.json"
    write_export(export)
    database = history_file(home)

    with loop_waits(database) as waits:
        started = time.monotonic()
        imported = tracker_command("import", "activitywatch", str(export), home=home)
        output, _ = imported.communicate(timeout=300)
        import_seconds = time.monotonic() - started
    assert imported.returncode == 0, output
    assert "Imported 20,000 events" in output
    assert import_seconds > 2 * A_MOMENT, "the import is long enough for one transaction to show"
    assert len(waits) > 10 and max(waits) < A_MOMENT, (max(waits), import_seconds)

    (home / "config" / "categories.yaml").write_text(MOVED_CATEGORIES)
    with loop_waits(database) as waits:
        moved = tracker_command("recategorize", "--all", home=home)
        output, _ = moved.communicate(timeout=300)
    assert moved.returncode == 0, output
    assert "Development → Focus" in output and "Communication → Talk" in output
    assert waits and max(waits) < A_MOMENT, max(waits)
    with closing(sqlite3.connect(database)) as db:
        categories = dict(db.execute("SELECT app, GROUP_CONCAT(DISTINCT category) FROM events GROUP BY app"))
        outbox = dict(db.execute("SELECT app, GROUP_CONCAT(DISTINCT category) FROM outbox GROUP BY app"))
    assert categories == outbox == {"Code": "Focus", "Slack": "Talk", "kitty": "Focus", "Firefox": "Uncategorized"}


def test_an_import_killed_part_way_is_finished_exactly_by_importing_again(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    write_export(export, 3_000)
    whole, halted = tmp_path / "whole", tmp_path / "halted"
    for home in (whole, halted):
        configure(home)
    done = tracker_command("import", "activitywatch", str(export), home=whole)
    assert done.wait(timeout=300) == 0

    database = history_file(halted)
    importing = tracker_command("import", "activitywatch", str(export), home=halted)
    give_up = time.monotonic() + 120
    while written_events(database) < 300:  # part of it is written
        assert importing.poll() is None and time.monotonic() < give_up, "the import ended before it was killed"
        time.sleep(0.01)
    importing.send_signal(signal.SIGKILL)
    importing.wait(timeout=30)
    part = len(contents(database)[0])
    assert 300 <= part < 3_000

    again = tracker_command("import", "activitywatch", str(export), home=halted)
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    assert f"Imported {3_000 - part:,} events" in output and "was there already" in output
    assert contents(database) == contents(whole / "data" / "tracker.db")
    assert not list(database.parent.glob(".activitywatch-import-*")), "the killed import's scratch file is removed"


def test_an_import_the_disk_stops_part_way_says_so_and_is_finished_exactly_by_importing_again(
        tmp_path: Path, small_disk: SmallDisk) -> None:
    if os.geteuid() != 0 or not small_disk.mount(64 * 1024):
        if os.environ.get("CI") == "true":
            pytest.fail("needs root to mount a small tmpfs")
        pytest.skip("needs root to mount a small tmpfs")
    export = tmp_path / "export.json"
    write_export(export, 3_000)
    whole, halted = tmp_path / "whole", small_disk.path / "home"
    for home in (whole, halted):
        configure(home)
    assert tracker_command("import", "activitywatch", str(export), home=whole).wait(timeout=300) == 0

    database = history_file(halted)
    importing = tracker_command("import", "activitywatch", str(export), home=halted)
    give_up = time.monotonic() + 120
    while written_events(database) < 300:
        assert importing.poll() is None and time.monotonic() < give_up, "the import ended before the disk filled"
        time.sleep(0.01)
    filler = fill(small_disk.path)
    output, _ = importing.communicate(timeout=300)
    part = written_events(database)
    assert importing.returncode == 1
    assert output == (f"Error: The import stopped part-way: cannot write to the outbox {database}: the disk is "
                      f"full; free some space on that disk. {part:,} of its 3,000 events are in the local history "
                      "and their points in the outbox; import the same export again to add the rest (nothing is "
                      "added twice).\n")
    assert 300 <= part < 3_000

    filler.unlink()
    again = tracker_command("import", "activitywatch", str(export), home=halted)
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    assert f"Imported {3_000 - part:,} events" in output
    assert contents(database) == contents(whole / "data" / "tracker.db")


def test_a_second_import_at_the_same_time_is_refused_in_one_sentence(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    write_export(export, 10)
    data = paths.database_file().parent
    data.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(data / "import.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # as an import running now holds it
        refused = tracker_command("import", "activitywatch", str(export), home=paths.database_file().parents[1])
        output, _ = refused.communicate(timeout=60)
    finally:
        os.close(descriptor)
    assert refused.returncode == 1
    assert output == (f"Error: Another `tracker import` is writing to the history in {data} now: import again when "
                      "it has finished; nothing was imported.\n")
    assert written_events(paths.database_file()) == 0
