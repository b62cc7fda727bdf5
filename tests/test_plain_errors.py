"""Whatever the data directory, the settings or the arguments hold, every command answers with one plain sentence
that names what is wrong and what to do, exits non-zero, shows no traceback, and changes no data it failed on.

The real CLI runs (click's CliRunner in this process; a subprocess for `tracker run` where the process matters):
damaged, foreign, truncated and read-only databases, a full disk, absurd numbers, odd settings and CA files, and
titles no encoder takes, through the whole path to a real InfluxDB 1.x and back in a report.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import astuple
from datetime import datetime, timedelta, timezone
from pathlib import Path

import certifi
import pytest
import yaml
from click.testing import CliRunner
from helpers.disk import SmallDisk
from helpers.fault_server import FaultServer, Step, make_records, stored_records
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracker import paths
from tracker.categories.files import load_categories
from tracker.commands import cli
from tracker.config import SETTINGS, load_settings
from tracker.events import default_pulsetime
from tracker.model import Sample
from tracker.recording.localstore import LocalStore
from tracker.recording.recorder import Classified, Recorder
from tracker.sending.corrections import correcting_sender
from tracker.storage.history import HistoryWriter
from tracker.storage.outbox import Outbox
from tracker.timespec import parse_duration

TRACKER = str(Path(sys.executable).with_name("tracker"))
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, so a send fails at once
# Lines click adds around a usage error ("Usage: ...", "Try ... for help."): not part of the answer.
_CLICK_USAGE = re.compile(r"^(Usage: .*|Try '.*' for help\.)$")
# Many examples share one test's data directory: each starts from an empty one.
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# For `tracker run`, which takes a second or so each time.
FEW_EXAMPLES = settings(EXAMPLES, max_examples=10)


# -- what every answer must be ---------------------------------------------------------------------

def answer_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip() and not _CLICK_USAGE.match(line)]


def assert_plain(output: str, exit_code: int) -> None:
    """Success, or one plain sentence (at most a couple of lines) and a non-zero exit; never a traceback."""
    assert "Traceback" not in output, output
    if exit_code != 0:
        lines = answer_lines(output)
        assert 1 <= len(lines) <= 2, output


def tracker(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the CLI in this process; an exception that escaped it (a bug) fails the test with its traceback."""
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert_plain(result.output, result.exit_code)
    return result.exit_code, result.output


def tracker_process(*args: str, timeout: float = 60.0) -> tuple[int, str]:
    done = subprocess.run([TRACKER, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    output = done.stdout + done.stderr
    assert_plain(output, done.returncode)
    return done.returncode, output


def data_files() -> dict[str, bytes]:
    """The data directory's database files, byte for byte."""
    directory = paths.data_dir()
    if not directory.exists():
        return {}
    return {file.name: file.read_bytes() for file in sorted(directory.iterdir())
            if file.is_file() and file.name.startswith("tracker.db")}


def real_database(path: Path) -> None:
    """A tracker database as `tracker run` leaves it: samples waiting in the outbox, events in the history."""
    records = make_records(60, start_ms=int(datetime.now(timezone.utc).timestamp() * 1000) - 3_600_000)
    with Outbox(path) as outbox:
        outbox.append_many(records)
    with HistoryWriter(path, default_pulsetime(1.0), write_every=0) as history:
        for record in records:
            history.add(record)
    connection = sqlite3.connect(path)  # everything in the file itself, as after a clean stop
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def real_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("real") / "tracker.db"
    real_database(path)
    return path.read_bytes()


def put_database(content: bytes) -> Path:
    """`content` as the one file in a fresh data directory."""
    shutil.rmtree(paths.data_dir(), ignore_errors=True)
    path = paths.database_file()
    paths.private_dir(path.parent)
    path.write_bytes(content)
    return path


def foreign_database(tables: Sequence[str]) -> bytes:
    """Another program's SQLite file, e.g. a browser's history, with these tables and a row in each."""
    scratch = paths.private_dir(paths.data_dir().parent) / "scratch.sqlite"
    scratch.unlink(missing_ok=True)
    connection = sqlite3.connect(scratch)
    with connection:
        for table in tables:
            connection.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, url TEXT)")
            connection.execute(f"INSERT INTO {table} (url) VALUES ('https://example.com/')")
    connection.close()
    content = scratch.read_bytes()
    scratch.unlink()
    return content


# Each command that reads or writes the local database, as the CLI runs it.
DATABASE_COMMANDS = [("outbox",), ("outbox", "--json"), ("sync", "--influx-url", UNREACHABLE), ("report",),
                     ("report", "--json", "--since", "30d"), ("categories", "uncategorized"),
                     ("recategorize", "--dry-run"), ("recategorize", "--all")]
DAMAGED = {
    "a PNG": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40,
    "zeros": bytes(8192),
    "text": b"not a database at all\n" * 100,
    "a browser's history": None,  # made in the data directory by foreign_database
    "another program's tables named outbox and events": None,
}


def damaged_content(kind: str) -> bytes:
    if kind == "a browser's history":
        return foreign_database(["moz_places", "moz_bookmarks"])
    if kind == "another program's tables named outbox and events":
        return foreign_database(["outbox", "events"])
    content = DAMAGED[kind]
    assert content is not None
    return content


# -- damaged, foreign, truncated databases ----------------------------------------------------------

@pytest.mark.parametrize("kind", DAMAGED)
def test_every_command_refuses_a_damaged_or_foreign_database_plainly_and_leaves_it_as_it_was(kind):
    content = damaged_content(kind)
    path = put_database(content)
    path.chmod(0o644)  # another program's file, readable by others: tracker must not change even that
    for command in DATABASE_COMMANDS:
        code, output = tracker(*command)
        assert code == 1, (command, output)
        assert str(path) in output and "move it aside" in output, output
        assert data_files() == {"tracker.db": content}, command
        assert path.stat().st_mode & 0o777 == 0o644, command
    # `tracker status` reads no database; `config show` neither.
    assert tracker("status")[0] == 3
    assert tracker("config", "show")[0] == 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["a PNG", "a browser's history"])
def test_tracker_run_refuses_a_damaged_or_foreign_database_and_records_nothing_into_it(kind):
    content = damaged_content(kind)
    path = put_database(content)
    code, output = tracker_process("run", "--source", "demo", "--for", "2s", "--quiet")
    assert code == 1 and str(path) in output and "move it aside" in output, output
    assert data_files() == {"tracker.db": content}


def test_following_the_advice_for_a_damaged_database_works_and_keeps_the_file():
    content = damaged_content("a PNG")
    path = put_database(content)
    _, output = tracker("outbox")
    command = re.search(r"move it aside \((.+?)\) and tracker starts a new one", output)
    assert command, output
    subprocess.run(command.group(1), shell=True, check=True)
    assert tracker("outbox")[0] == 0
    assert tracker("report")[0] == 0
    assert (path.parent / "damaged" / "tracker.db").read_bytes() == content


def test_a_damaged_events_table_is_refused_plainly_by_every_command_that_reads_the_history(real_bytes):
    """The file opens (its schema is whole) but the events table's first page is garbage: every reader of the
    history answers with the same plain sentence, `tracker export` too."""
    scratch = paths.private_dir(paths.data_dir().parent) / "scratch.sqlite"
    scratch.write_bytes(real_bytes)
    connection = sqlite3.connect(scratch)
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    (root,) = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events'").fetchone()
    connection.close()
    scratch.unlink()
    content = bytearray(real_bytes)
    content[(root - 1) * page_size:root * page_size] = b"\xff" * page_size
    path = put_database(bytes(content))
    for command in (("report",), ("categories", "uncategorized"), ("export", "--format", "jsonl"),
                    ("export", "--format", "csv", "--since", "7d")):
        code, output = tracker(*command)
        assert code == 1, (command, output)
        assert f"Cannot read the history in {path}" in output and "move it aside" in output, (command, output)
        assert data_files() == {"tracker.db": bytes(content)}, command


@EXAMPLES
@given(cut=st.integers(min_value=1, max_value=10**6))
@example(cut=100)  # inside the header
@example(cut=4096)  # the first page only
def test_a_truncated_database_is_read_or_refused_plainly_and_never_changed_when_refused(real_bytes, cut):
    content = real_bytes[:cut % (len(real_bytes) - 1) + 1]
    put_database(content)
    for command in (("outbox", "--json"), ("report", "--json", "--since", "7d"), ("categories", "uncategorized")):
        code, output = tracker(*command)
        if code != 0:
            assert data_files()["tracker.db"] == content, command
        else:
            assert command[0] != "outbox" or json.loads(output)["waiting"] >= 0


# -- read-only and full disks -----------------------------------------------------------------------

def _disk_as_home(disk: SmallDisk, monkeypatch: pytest.MonkeyPatch, real_bytes: bytes) -> None:
    if os.geteuid() != 0 or not disk.mount(1024):
        pytest.skip("needs root to mount a small tmpfs")
    monkeypatch.setenv("TRACKER_HOME", str(disk.path))
    put_database(real_bytes)


COMMANDS_AT_START = [*DATABASE_COMMANDS, ("config", "init")]


def test_a_read_only_data_directory_gets_one_sentence_from_every_command(small_disk, monkeypatch, real_bytes):
    _disk_as_home(small_disk, monkeypatch, real_bytes)
    small_disk.remount("ro")
    for command in COMMANDS_AT_START:
        code, output = tracker(*command)
        assert code == 1 and "read-only" in output, (command, output)
    code, output = tracker_process("run", "--source", "demo", "--for", "2s", "--quiet")
    assert code == 1 and "read-only" in output, output
    small_disk.remount("rw")
    assert data_files() == {"tracker.db": real_bytes}
    # The advice, followed: writable again, every command works on the same data.
    code, output = tracker("outbox", "--json")
    assert code == 0 and json.loads(output)["waiting"] == 60, output
    assert tracker("report")[0] == 0


def test_a_full_disk_at_start_gets_one_sentence_from_every_command(small_disk, monkeypatch, real_bytes):
    _disk_as_home(small_disk, monkeypatch, real_bytes)
    before = data_files()
    with open(small_disk.path / "filler", "wb") as filler:
        try:
            while True:
                filler.write(bytes(64 * 1024))
                filler.flush()
        except OSError:
            pass
    for command in COMMANDS_AT_START:
        code, output = tracker(*command)
        assert code == 1 and "the disk is full; free some space" in output, (command, output)
    code, output = tracker_process("run", "--source", "demo", "--for", "2s", "--quiet")
    assert code == 1 and "the disk is full" in output, output
    assert data_files()["tracker.db"] == before["tracker.db"]
    assert not paths.config_file().exists()
    assert not list(paths.config_dir().glob(".*tmp*")), "a half-written config.yaml was left behind"
    # The advice, followed: with space again, recording works and nothing waiting was lost.
    (small_disk.path / "filler").unlink()
    code, output = tracker_process("run", "--source", "demo", "--for", "1s", "--quiet")
    assert code == 0, output
    code, output = tracker("outbox", "--json")
    assert code == 0 and json.loads(output)["waiting"] > 60, output


# -- absurd numbers and odd text as arguments ------------------------------------------------------

ABSURD = ["1e10", "0", "-1", "nan", "inf", "-inf", "1e300", "1e300s", "1e-300", "99999999d", "0.0000001", "",
          " ", "-0", "1e", "٣", "1_000", "0x10", "9" * 400, "\t", "1s1s", "NaN", "1h-1s"]
absurd = st.sampled_from(ABSURD) | st.floats().map(repr) | st.floats().map(lambda value: f"{value}s") | st.text()


@FEW_EXAMPLES
@given(option=st.sampled_from(["--interval", "--away-after"]), value=absurd)
@example(option="--interval", value="1e10")
@example(option="--interval", value="0.005")
@example(option="--away-after", value="1e300")
def test_tracker_run_takes_a_number_in_range_or_says_which_option_is_wrong(option, value):
    before = data_files()
    code, output = tracker("run", "--source", "demo", "--for", "0.2s", "--quiet", option, value)
    if code != 0:
        assert code == 2 and option.lstrip("-").replace("-", "_") in output.replace("-", "_"), output
        assert data_files() == before
    else:
        name = option.lstrip("-").replace("-", "_")
        least, most = SETTINGS[name].limits or (0, 0)
        assert least <= parse_duration(value) <= most


@FEW_EXAMPLES
@given(value=absurd)
@example(value="1e300")
@example(value="1e300s")
def test_tracker_run_for_takes_a_duration_or_says_it_is_not_one(value):
    with contextlib.suppress(ValueError):
        if parse_duration(value) > 0.5:
            return  # a real duration: it would run that long
    code, output = tracker("run", "--source", "demo", "--for", value, "--quiet", "--interval", "0.1")
    assert code in (0, 2), output
    assert code == 0 or "--for" in output


@EXAMPLES
@given(option=st.sampled_from(["--since", "--until"]),
       value=absurd | st.integers().map(lambda n: f"{n}d") | st.integers().map(lambda n: f"{n}h")
       | st.dates().map(str) | st.datetimes().map(datetime.isoformat))
@example(option="--since", value="99999999d")
@example(option="--until", value="9999-12-31")
@example(option="--since", value="0001-01-01")
@example(option="--since", value="99999999999h")
def test_report_periods_are_read_or_refused_in_one_sentence(option, value):
    for command in (("report", "--json"), ("categories", "uncategorized")):
        code, output = tracker(*command, option, value)
        assert code in (0, 2), output


@EXAMPLES
@given(value=absurd)
@example(value="1e-300")
@example(value="1e300")
def test_demo_step_is_bounded_or_refused(value):
    code, output = tracker("demo", "--days", "1", "--step", value, "--influx-url", UNREACHABLE)
    assert code in (1, 2), output  # 1: a good step, and the server is unreachable
    assert code == 2 or "unreachable" in output


# -- settings: each number and time declared once, checked once -----------------------------------

NUMERIC_SETTINGS = [name for name, setting in SETTINGS.items()
                    if setting.kind in ("duration", "duration_or_off", "count")]
odd_value = (st.floats() | st.integers(min_value=-(10**40), max_value=10**40) | st.sampled_from(ABSURD)
             | st.text(max_size=20) | st.booleans() | st.lists(st.integers(), max_size=2))


def write_config(name: str, value: object) -> None:
    section, _, key = name.rpartition(".")
    document = {section: {key: value}} if section else {key: value}
    paths.private_dir(paths.config_dir())
    paths.config_file().write_text(yaml.safe_dump(document), encoding="utf-8")


@EXAMPLES
@given(name=st.sampled_from(NUMERIC_SETTINGS), value=odd_value)
@example(name="influx.timeout", value=1e300)
@example(name="influx.timeout", value="1e300")
@example(name="outbox_max_rows", value=-1)
@example(name="outbox_max_rows", value=1e30)
@example(name="history_retention_days", value=10**30)
@example(name="interval", value=float("nan"))
def test_every_numeric_setting_in_config_yaml_is_in_range_or_refused_naming_it(name, value):
    write_config(name, value)
    code, output = tracker("config", "show")
    if code != 0:
        assert code == 2 and name in output and str(paths.config_file()) in output, output
        return
    effective = load_settings().values[name]
    limits = SETTINGS[name].limits
    assert limits is not None, f"{name} has no limits declared"
    assert (effective == 0 and SETTINGS[name].kind == "duration_or_off") or limits[0] <= effective <= limits[1]


@EXAMPLES
@given(name=st.sampled_from(sorted(SETTINGS)), value=odd_value | st.text(st.characters(codec=None), max_size=20))
@example(name="influx.url", value="http://[::1")
@example(name="influx.ca_file", value="~/no-such-ca.pem")
@example(name="influx.bucket", value="two\nlines")
def test_any_setting_in_config_yaml_with_any_value_is_shown_or_refused_in_one_sentence(name, value):
    write_config(name, value)
    code, output = tracker("config", "show")
    assert code == 0 or (code == 2 and str(paths.config_file()) in output), output
    # Through to sending (to a server that is not there: a real URL would make this test wait on DNS).
    code, output = tracker("sync", "--influx-url", UNREACHABLE)
    assert code in (0, 1, 2), output


def test_a_timeout_of_1e300_is_refused_before_anything_is_sent():
    write_config("influx.timeout", 1e300)
    code, output = tracker("sync", "--influx-url", UNREACHABLE)
    assert code == 2 and "influx.timeout" in output and "out of range" in output, output


ENVIRONMENT = [setting.variable for setting in SETTINGS.values() if setting.variable]
# What an environment can hold: no NUL; undecodable bytes arrive as lone surrogates (U+DC80..U+DCFF).
environment_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",))
                           | st.sampled_from([chr(0xDC80 + n) for n in range(128)]), max_size=30)


@EXAMPLES
@given(variable=st.sampled_from(ENVIRONMENT), value=environment_text)
@example(variable="TRACKER_INFLUX_URL", value="http://[::1")
@example(variable="TRACKER_INFLUX_URL", value="http://host:99999")
@example(variable="TRACKER_INFLUX_BUCKET", value="bucket\udcff")
def test_odd_environment_values_are_shown_or_refused_in_one_sentence(variable, value):
    code, output = tracker("config", "show", env={variable: value})
    assert code in (0, 2), output
    assert code == 0 or variable in output


@pytest.mark.parametrize(("make", "problem"), [
    (lambda directory: directory / "missing.pem", "cannot be read"),
    (lambda directory: directory, None),  # a directory: click says so
    (lambda directory: _written(directory / "logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64)), "holds no PEM"),
    (lambda directory: _written(directory / "empty.pem", b""), "holds no PEM"),
])
def test_a_ca_file_that_is_missing_or_not_a_certificate_is_named_at_once(tmp_path, make, problem):
    ca_file = make(tmp_path)
    for command in (("sync", "--influx-url", "https://127.0.0.1:9"), ("demo", "--influx-url", "https://127.0.0.1:9"),
                    ("config", "show")):
        code, output = tracker(*command, "--ca-file", str(ca_file))
        assert code == 2 and str(ca_file) in output, output
        assert problem is None or problem in output, output
    write_config("influx.ca_file", str(ca_file))
    code, output = tracker("config", "show")
    assert code == 2 and str(ca_file) in output and str(paths.config_file()) in output, output


def test_a_real_ca_file_is_taken():
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(make_records(2))
    code, output = tracker("sync", "--influx-url", "https://127.0.0.1:9", "--ca-file", certifi.where())
    assert code == 1 and "unreachable" in output, output  # past the settings, to the (absent) server


def _written(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


# -- advice that works -----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("api", ["auto", "v1"])
def test_following_the_redirect_advice_sends_the_samples(influxdb1, influx_database, api):
    """A server that moved answers with a redirect to its new address and the write path; setting influx.url
    to what the message says makes `tracker sync` send everything."""
    records = make_records(5)
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(records)
    moved = FaultServer().start()
    try:
        moved.then(Step(308, "", {"Location": f"{influxdb1.url}/write?db={influx_database}&precision=ms"}))
        code, output = tracker("sync", "--influx-url", moved.url, "--influx-bucket", influx_database,
                               "--influx-api", api)
    finally:
        moved.stop()
    advised = re.search(r"redirects to (\S+): set influx\.url to (\S+?)\.? \d+ samples", output)
    assert code == 1 and advised and advised.group(1) == advised.group(2), output
    code, output = tracker("sync", "--influx-url", advised.group(2), "--influx-bucket", influx_database,
                           "--influx-api", api)
    assert code == 0, output
    assert stored_records(influxdb1, influx_database) == records


@pytest.mark.slow
def test_following_the_not_configured_advice_sends_the_samples(influxdb1, influx_database):
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(make_records(3))
    code, output = tracker("sync")
    assert code == 2 and "set TRACKER_INFLUX_URL" in output, output
    code, output = tracker("sync", env={"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database})
    assert code == 0, output
    assert len(stored_records(influxdb1, influx_database)) == 3


# -- titles no encoder takes: lone surrogates, NUL --------------------------------------------------

# Any code point, lone surrogates too (what a broken UTF-16 title or undecodable bytes become).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
SURROGATES = ["\ud800", "\udfff", "a\udc80b", "\x00", "\ud83d", "\ud83d\ude00", "tab\tnul\x00end"]
wild = st.sampled_from(SURROGATES) | any_text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=st.lists(st.fixed_dictionaries({"app": wild, "title": st.none() | wild,
                                               "url": st.none() | wild | wild.map(lambda text: f"https://{text}/")}),
                        min_size=1, max_size=6))
@example(samples=[{"app": "Firefox\ud800", "title": "\ud800 lone\x00", "url": "https://bad\udcff.example/"}])
def test_titles_with_lone_surrogates_go_through_outbox_influxdb_and_report(influxdb1, samples):
    """Record -> outbox and history -> a real InfluxDB 1.x -> `tracker report`: nothing raises, and InfluxDB
    and the report hold exactly what was recorded."""
    database = "surrogates"
    influxdb1.create_database(database)
    influxdb1.query('DROP SERIES FROM "activity"', database)
    shutil.rmtree(paths.data_dir(), ignore_errors=True)
    path = paths.database_file()
    categories = load_categories()
    recorder = Recorder("host\ud800", interval=1.0, away_after=None)
    start = datetime.now(timezone.utc) - timedelta(minutes=30)
    store = LocalStore(Outbox(path), HistoryWriter(path, default_pulsetime(1.0), write_every=0), lambda _: None)
    recorded = []
    for number, raw in enumerate(samples):
        sample = Sample(time=start + timedelta(seconds=number), **raw)
        match = categories.classify(sample)
        step = recorder.step(sample, float(number), Classified(match.category, match.score, match.rule))
        store.commit(step)
        recorded.append(step.record)
    store.finish()
    store.close()

    result = correcting_sender(path, load_settings({"influx.url": influxdb1.url, "influx.bucket": database,
                                                    "influx.api": "v1"}).settings.influx, lambda _: None,
                               deferred=False).send_all()
    assert result.ok and result.sent == len(recorded), result
    assert stored_records(influxdb1, database) == recorded

    code, output = tracker("report", "--json", "--by", "activity", "--since", "2h")
    assert code == 0, output
    reported = {row["name"] for row in json.loads(output)["rows"]}
    assert reported == {record.activity for record in recorded}
    assert not any(0xD800 <= ord(character) <= 0xDFFF or character == "\x00"
                   for record in recorded for value in astuple(record) if isinstance(value, str)
                   for character in value)
