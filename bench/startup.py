"""How long the commands typed while editing rules take to start and finish, next to `import click, yaml`.

Runs each command N times, alternating with the baseline `python -c 'import click, yaml'` on the same
interpreter, in a throwaway TRACKER_HOME, and prints medians and ratios. Output goes to a pipe, as in a
script; `categories list` and `categories test` are also timed on a pseudo-terminal, where rich draws
in colour at the terminal's width.
Goal (issue on speed): `tracker categories list` at most 1.6x the baseline.

Bytecode is written and used (PYTHONDONTWRITEBYTECODE is unset for the runs, and each command runs once
before timing), as in an installed copy: otherwise every import recompiles from source and the numbers
measure the compiler.

    .venv/bin/python bench/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

BASELINE = [sys.executable, "-c", "import click, yaml"]
TRACKER = str(Path(sys.executable).parent / "tracker")  # the console script, as users start it
GOAL = 1.6
TERMINAL_SIZE = (40, 120)  # rows, columns of the pseudo-terminal

COMMANDS: list[tuple[str, list[str]]] = [
    ("categories list", ["categories", "list"]),
    ("categories test", ["categories", "test", "firefox", "--title", "Issues · rust-lang/rust · GitHub",
                         "--url", "https://github.com/rust-lang/rust/issues"]),
    ("--help", ["--help"]),
    ("report", ["report"]),
]
ON_A_TERMINAL = ("categories list", "categories test")


def run_piped(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from start to exit, stdout and stderr to a pipe."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {done.returncode}:\n{done.stderr.decode()}")
    return elapsed


def run_on_terminal(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from start to exit, stdout on a pseudo-terminal whose output is read as it comes."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", *TERMINAL_SIZE, 0, 0))
    received = bytearray()

    def drain() -> None:  # a full terminal buffer would block the command and count as its time
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command exited and closed its side
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE,
                          check=False)
    elapsed = time.perf_counter() - started
    os.close(terminal)
    reader.join(timeout=5)
    os.close(controller)
    if done.returncode != 0 or not received:
        raise SystemExit(f"{' '.join(argv)} exited with {done.returncode} on a terminal:\n{done.stderr.decode()}")
    return elapsed


def paired_medians(argv: list[str], runs: int, env: dict[str, str], on_terminal: bool = False) -> tuple[float, float]:
    """Median seconds of the baseline and of the command, run alternately so both see the same load."""
    timed = run_on_terminal if on_terminal else run_piped
    timed(argv, env)  # once untimed: bytecode written, files in the page cache
    run_piped(BASELINE, env)
    baseline: list[float] = []
    command: list[float] = []
    for _ in range(runs):
        baseline.append(run_piped(BASELINE, env))
        command.append(timed(argv, env))
    return statistics.median(baseline), statistics.median(command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command and of the baseline")
    runs = parser.parse_args().runs
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="tracker-startup-") as home:
        env = {name: value for name, value in os.environ.items()
               if name not in ("PYTHONDONTWRITEBYTECODE", "COLUMNS", "LINES", "TRACKER_HOME")}
        env["TRACKER_HOME"] = home
        # A few seconds of demo history, so that `tracker report` prints its tables rather than "no history".
        run_piped([TRACKER, "run", "--source", "demo", "--interval", "0.1", "--for", "1s", "--quiet"], env)
        print(f"{sys.executable}, {runs} runs each, {cores} cores; medians in ms")
        print(f"{'command':<34} {'baseline':>9} {'command':>9} {'ratio':>6}")
        list_ratio = 0.0
        for name, args in COMMANDS:
            for on_terminal in (False, True) if name in ON_A_TERMINAL else (False,):
                baseline, command = paired_medians([TRACKER, *args], runs, env, on_terminal=on_terminal)
                ratio = command / baseline
                label = f"tracker {name}" + (" (terminal)" if on_terminal else "")
                print(f"{label:<34} {baseline * 1000:9.1f} {command * 1000:9.1f} {ratio:5.2f}x", flush=True)
                if name == "categories list" and not on_terminal:
                    list_ratio = ratio
    print(f"categories list: {list_ratio:.2f}x import click, yaml (goal ≤ {GOAL}x), "
          f"{datetime.date.today().isoformat()}, {cores} cores")


if __name__ == "__main__":
    main()
