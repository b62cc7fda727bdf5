"""The Windows source and the run lock on a real Windows (the GitHub workflow windows.yml runs this; elsewhere it
skips, and tests/test_source_windows.py runs the same under Wine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.servers import wait_until

pytestmark = pytest.mark.skipif(sys.platform != "win32", reason="real Windows only (under Wine: test_source_windows)")

HELPERS = Path(__file__).resolve().parent / "helpers"
TITLE = "Plan 📅 ✓ — مرحبا · native"


def test_the_source_reads_a_window_of_ours_in_front_with_its_program_and_idle_time() -> None:
    from tracker.model import Sample
    from tracker.recording.sources.windows import WindowsSource

    program = subprocess.Popen([sys.executable, str(HELPERS / "win32_windows.py"), json.dumps([TITLE])],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    assert program.stdin is not None and program.stdout is not None
    notices: list[str] = []
    try:
        assert json.loads(program.stdout.readline())["windows"]
        program.stdin.write(json.dumps({"focus": 0}) + "\n")
        program.stdin.flush()
        program.stdout.readline()
        source = WindowsSource(notices.append)

        def ours() -> Sample | None:
            sample = source.read()
            return sample if sample is not None and sample.title == TITLE else None

        sample = wait_until(ours, 15, "our window in front")
    finally:
        program.stdin.close()
        program.wait(20)
    assert sample.app == "Python" and sample.idle_seconds is not None and sample.idle_seconds >= 0
    assert not sample.locked and notices == []


def test_a_second_run_lock_on_the_same_data_directory_is_refused(tracker_home: Path) -> None:
    from tracker.recording.runlock import acquire_run_lock, is_running

    with acquire_run_lock():
        other = subprocess.run([sys.executable, "-c", "from tracker.recording.runlock import acquire_run_lock\n"
                                "try:\n    acquire_run_lock()\nexcept Exception as error:\n    print(error)"],
                               capture_output=True, text=True, timeout=60)
        assert "tracker run is already running for" in other.stdout, other.stdout + other.stderr
        assert is_running() is not None
    assert is_running() is None
