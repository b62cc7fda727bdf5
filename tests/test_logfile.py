"""The service's log: `tracker run --log-file` keeps at most two files of about the cap, however long it runs,
and however often it fails at start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.ui.logfile import CappedLog

LINES = st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=300)
                 .map(lambda text: text + "\n"), max_size=200)


@settings(max_examples=60, deadline=None)
@given(lines=LINES, cap=st.integers(min_value=1, max_value=2000))
def test_two_files_at_most_each_within_the_cap_and_the_newest_lines_kept(tmp_path_factory, lines: list[str],
                                                                          cap: int):
    directory = tmp_path_factory.mktemp("log")
    log = CappedLog(directory / "tracker.log", cap)
    for line in lines:
        log.write(line)
    log.close()
    assert {path.name for path in directory.iterdir()} <= {"tracker.log", "tracker.log.1"}
    longest = max((len(line.encode()) for line in lines), default=0)
    for path in directory.iterdir():
        assert path.stat().st_size <= max(cap, longest)
    kept = b"".join(path.read_bytes() for path in (directory / "tracker.log.1", directory / "tracker.log")
                    if path.exists())
    written = "".join(lines).encode()
    assert written.endswith(kept)  # the newest lines, in order, whole
    if lines:
        assert kept.endswith(lines[-1].encode())
    if (directory / "tracker.log").exists():
        assert (directory / "tracker.log").stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_a_tracker_that_fails_at_every_start_does_not_grow_its_log(tmp_path: Path):
    log = tmp_path / "data" / "tracker.log"
    tracker = Path(sys.executable).parent / "tracker"
    env = {**os.environ, "TRACKER_INFLUX_API": "bogus"}
    for _ in range(12):
        done = subprocess.run([str(tracker), "run", "--quiet", "--log-file", str(log), "--log-max-bytes", "1000"],
                              capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 2
        assert done.stdout == done.stderr == ""  # all of it went to the log
    error_line = "Error: influx.api from environment variable TRACKER_INFLUX_API: 'bogus' is not one of auto, v1, v2.\n"
    assert log.read_text().endswith(error_line)
    assert log.with_name("tracker.log.1").exists()  # 12 × 99 bytes went past the cap
    for path in (log, log.with_name("tracker.log.1")):
        assert path.stat().st_size <= 1000 + len(error_line)
    assert sorted(path.name for path in log.parent.iterdir() if path.name.startswith("tracker.log")) == [
        "tracker.log", "tracker.log.1"]


@pytest.mark.slow
def test_the_log_lines_of_a_run_go_to_the_file(tmp_path: Path):
    log = tmp_path / "tracker.log"
    tracker = Path(sys.executable).parent / "tracker"
    done = subprocess.run([str(tracker), "run", "--source", "demo", "--quiet", "--interval", "0.05", "--for", "1s",
                           "--log-file", str(log)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, log.read_text()
    assert done.stdout == ""
    text = log.read_text()
    assert "InfluxDB is not configured" in text  # a notice, as `run --quiet` prints it
    # An activity line: the demo sometimes starts with an app that has no rule (to show Uncategorized), so the
    # line is recognised by its shape, not by "rule:".
    activity_lines = [line for line in text.splitlines()
                      if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  [^!].* [+-]\d+(  rule: .+)?", line)]
    assert activity_lines, text
