"""CPU per sample of each desktop source, side by side: tracker's own CPU (process time over N reads, median of
the rounds) and the display server's (from /proc/PID/schedstat over the same reads), with the wall time of a read.

Each source reads a real desktop this script starts (and stops): X11 on Xvfb + openbox, wlroots on headless
sway, KWin on kwin_wayland --virtual, GNOME Shell --headless with tracker's extension. One window has the focus
and nothing changes, as in most seconds of a real day. To add a source, add one `Case` to CASES: how to start
its desktop, put a window in front, open the source, and the server's pid.

    .venv/bin/python bench/source_cost.py [--reads 2000] [--rounds 3] [--only NAME]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.gnome import GnomeDesktop  # noqa: E402
from helpers.kwin import KWinDesktop  # noqa: E402
from helpers.servers import Desktop  # noqa: E402
from helpers.sway import SwayDesktop  # noqa: E402

from tracker.recording.sources import Source  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    start: Callable[[Path], Any]  # the desktop, started, with a window in front
    open_source: Callable[[Any], Source]
    server_pid: Callable[[Any], int]


def _x11_desktop(directory: Path) -> Desktop:
    desktop = Desktop(directory).start()
    desktop.activate(desktop.open_window("BenchApp", "a window that stays in front"))
    return desktop


def _x11_source(desktop: Desktop) -> Source:
    from tracker.recording.sources.x11 import X11Source

    return X11Source(_ignore, desktop.display)


def _sway_desktop(directory: Path) -> SwayDesktop:
    desktop = SwayDesktop(directory).start()
    desktop.open_window("BenchApp", "a window that stays in front")
    desktop.focus("BenchApp")
    return desktop


def _wlroots_source(desktop: SwayDesktop) -> Source:
    from tracker.recording.sources.wlroots import WlrootsSource

    return WlrootsSource(_ignore, desktop.socket)


def _kwin_desktop(directory: Path) -> KWinDesktop:
    # With its screen locker, as in a real session: the source asks it for the lock state every 2 s.
    desktop = KWinDesktop(directory, lockscreen=True).start()
    desktop.open_window("BenchApp", "a window that stays in front")
    desktop.activate("BenchApp")
    return desktop


def _kwin_source(desktop: KWinDesktop) -> Source:
    from tracker.recording.sources.kwin import KWinSource

    return KWinSource(_ignore, desktop.bus_address, desktop.wayland_socket)


def _kwin_pid(desktop: KWinDesktop) -> int:
    assert desktop.kwin_process is not None
    return desktop.kwin_process.pid


def _gnome_desktop(directory: Path) -> GnomeDesktop:
    desktop = GnomeDesktop(directory).start()
    desktop.activate(desktop.open_window("BenchApp", "a window that stays in front"))
    return desktop


def _gnome_source(desktop: GnomeDesktop) -> Source:
    from tracker.recording.sources.gnome import GnomeSource

    return GnomeSource(_ignore, desktop.env["DBUS_SESSION_BUS_ADDRESS"])


def _gnome_pid(desktop: GnomeDesktop) -> int:
    assert desktop.shell is not None
    return desktop.shell.pid


CASES = (
    Case("x11 (Xvfb + openbox)", _x11_desktop, _x11_source, lambda desktop: desktop.processes[0].pid),
    Case("wayland-wlr (headless sway)", _sway_desktop, _wlroots_source, lambda desktop: desktop.process.pid),
    Case("kwin (kwin_wayland --virtual)", _kwin_desktop, _kwin_source, _kwin_pid),
    Case("gnome (gnome-shell --headless)", _gnome_desktop, _gnome_source, _gnome_pid),
)


def _ignore(message: str) -> None:
    print(f"  (the source said: {message})")


def server_cpu_seconds(pid: int) -> float:
    """CPU time of all threads of `pid`, from schedstat (nanoseconds: finer than /proc/PID/stat's ticks)."""
    return sum(int((task / "schedstat").read_text().split()[0])
               for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9


def measure(case: Case, reads: int, rounds: int) -> tuple[float, float, float]:
    """Median over `rounds` of: tracker's CPU µs per read, the server's CPU µs per read, wall µs per read."""
    with tempfile.TemporaryDirectory(prefix="source-cost-") as directory:
        desktop = case.start(Path(directory))
        try:
            source = case.open_source(desktop)
            try:
                sample = source.read()
                if sample is None:
                    raise SystemExit(f"{case.name}: the source read nothing; is the window in front?")
                for _ in range(50):
                    source.read()
                own, server, wall = [], [], []
                pid = case.server_pid(desktop)
                for _ in range(rounds):
                    cpu_before, server_before, wall_before = (time.process_time(), server_cpu_seconds(pid),
                                                              time.perf_counter())
                    for _ in range(reads):
                        source.read()
                    own.append((time.process_time() - cpu_before) / reads * 1e6)
                    server.append((server_cpu_seconds(pid) - server_before) / reads * 1e6)
                    wall.append((time.perf_counter() - wall_before) / reads * 1e6)
            finally:
                source.close()
        finally:
            desktop.stop()
    return statistics.median(own), statistics.median(server), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000, help="reads per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="the cases whose name contains this")
    options = parser.parse_args()
    cases = [case for case in CASES if not options.only or options.only in case.name]
    print(f"{options.reads} reads per round, median of {options.rounds} rounds; one window in front, no changes")
    print(f"{'source':<32}{'tracker CPU µs/read':>22}{'server CPU µs/read':>22}{'wall µs/read':>16}")
    for case in cases:
        own, server, wall = measure(case, options.reads, options.rounds)
        print(f"{case.name:<32}{own:>22.1f}{server:>22.1f}{wall:>16.1f}")


if __name__ == "__main__":
    main()
