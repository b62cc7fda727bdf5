"""`export` and `report` to a disk that refuses what they write: one sentence, exit 1, no half file left as if
complete. Real /dev/full, a really full tmpfs, a named pipe."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers.disk import SmallDisk, fill
from helpers.terminal import TRACKER

from tracker import paths
from tracker.events import default_pulsetime
from tracker.model import Record
from tracker.storage.history import HistoryWriter

START = datetime(2024, 5, 6, 9, tzinfo=timezone.utc)
ALL = ["--since", "2024-05-01", "--until", "2024-05-10"]
COMMANDS = [
    ["export", "--format", "csv"], ["export", "--format", "jsonl"], ["export", "--format", "activitywatch"],
    ["report", *ALL], ["report", *ALL, "--json"], ["report", *ALL, "--csv"], ["report", *ALL, "--by", "hour"],
    ["report"],  # nothing today: the one line saying so
]
SENTENCE = "Error: Cannot write to standard output: no space left on device"


@pytest.fixture(autouse=True)
def history() -> None:
    """Two hours of one-second samples: exports of a few hundred kB, more than any buffer holds."""
    with HistoryWriter(paths.database_file(), default_pulsetime(1.0)) as writer:
        for second in range(7200):
            writer.add(Record(time_ms=int((START + timedelta(seconds=second)).timestamp() * 1000), duration=1.0,
                              host="laptop", app="code", activity=f"file{second // 60}.py", category="Code",
                              score=2.0, state="active", title=f"file{second // 60}.py - project"))


def tracker(*args: str, stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TRACKER), *args], stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          text=True, timeout=60)


def assert_one_sentence(done: subprocess.CompletedProcess[str], start: str) -> None:
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(start) and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_printing_to_dev_full_is_one_sentence_and_exit_1(command: list[str]) -> None:
    with open("/dev/full", "w") as full:
        assert_one_sentence(tracker(*command, stdout=full), SENTENCE)


@pytest.fixture
def full_disk(small_disk: SmallDisk) -> Path:
    """A small tmpfs with no space left on it (as root)."""
    if os.geteuid() != 0 or not small_disk.mount(512):
        pytest.skip("needs root to mount a small tmpfs")
    fill(small_disk.path)
    return small_disk.path


def fill_but(disk: Path, room: int, keep: Path, text: str) -> None:
    """The full disk again, with `keep` holding `text` and `room` bytes free: the first part of an output fits."""
    (disk / "filler").unlink()
    keep.write_text(text, encoding="utf-8")
    with open(fill(disk), "r+b") as filler:
        filler.truncate(max(0, filler.seek(0, os.SEEK_END) - room))


@pytest.mark.parametrize("command", [["export", "--format", "jsonl"], ["report", *ALL, "--by", "activity", "--json"]],
                         ids=" ".join)
@pytest.mark.parametrize("mode", ["w", "a"], ids=["> file", ">> file"])
def test_printing_into_a_file_on_a_full_disk_leaves_the_file_as_it_was(full_disk: Path, command: list[str],
                                                                       mode: str) -> None:
    """The disk fills part way through: what was written of it is taken back, and what was there stays."""
    redirected = full_disk / "out"
    before = "" if mode == "w" else "lines from before\n"
    fill_but(full_disk, 4096, redirected, before)
    with redirected.open(mode) as stdout:
        assert_one_sentence(tracker(*command, stdout=stdout), SENTENCE)
    assert redirected.read_text(encoding="utf-8") == before


@pytest.mark.parametrize("existing", [None, "the export of last week\n"])
@pytest.mark.parametrize("room", [0, 4096], ids=["full", "4 kB free"])
def test_export_output_on_a_full_disk_leaves_the_old_file_or_none(full_disk: Path, existing: str | None,
                                                                   room: int) -> None:
    target = full_disk / "week.csv"
    fill_but(full_disk, room, target, existing or "")
    if existing is None:
        target.unlink()
    before = {path.name for path in full_disk.iterdir()}
    done = tracker("export", "--format", "csv", "--output", str(target))
    assert_one_sentence(done, f"Error: Cannot write {target}: no space left on device")
    assert {path.name for path in full_disk.iterdir()} == before, "a half-written file was left behind"
    if existing is None:
        assert not target.exists()
    else:
        assert target.read_text(encoding="utf-8") == existing


def test_export_output_to_a_named_pipe_writes_through_it_and_leaves_it_a_pipe(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    done = tracker("export", "--format", "csv", "--output", str(pipe))
    reader.join(60)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(pipe.stat().st_mode), "the pipe was replaced by a file"
    printed = subprocess.run([str(TRACKER), "export", "--format", "csv"], capture_output=True, check=True).stdout
    assert received[0] == printed
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pipe", "tracker-home"]
