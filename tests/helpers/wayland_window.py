"""A Wayland test window (wl_window.py, through pywayland) of any app id and title, on the KWin and GNOME test
desktops: its process, renamed and closed through its stdin."""

from __future__ import annotations

import contextlib
import select
import subprocess
import sys
from pathlib import Path

WINDOW_PROGRAM = Path(__file__).with_name("wl_window.py")
# Seconds a new window may take to map (its compositor's first configure) on a busy machine.
MAP_WITHIN = 30.0


def start_window(env: dict[str, str], app: str, title: str) -> WaylandWindow:
    """The window's process, started in `env` (its Wayland display); returns once it printed that it mapped."""
    process = subprocess.Popen([sys.executable, str(WINDOW_PROGRAM), app, title], env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    window = WaylandWindow(process, app)
    assert process.stdout is not None
    # Bounded: a compositor that hangs must fail the test, not stop the suite.
    answered, _, _ = select.select([process.stdout], [], [], MAP_WITHIN)
    if not answered or process.stdout.readline().strip() != "mapped":
        window.close()
        raise AssertionError(f"the test window {app} did not map within {MAP_WITHIN:g} s (exit {process.poll()})")
    return window


class WaylandWindow:
    """One wl_window.py process: its app id, and its stdin to rename or close it."""

    def __init__(self, process: subprocess.Popen[str], app: str) -> None:
        self.process = process
        self.app = app

    def rename(self, title: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"title {title}\n")
        self.process.stdin.flush()

    def close(self) -> None:
        """Closed as its user would; killed if it does not go (its compositor may be gone)."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
