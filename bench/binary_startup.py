"""How long the one-file binary takes to start, next to the venv's `tracker`, for commands that send nothing.

Builds dist/tracker first when it is missing (`make binary`). A one-file binary unpacks Python and its
libraries into a temporary directory at every start: that is the price of needing nothing installed.

    .venv/bin/python bench/binary_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "dist" / "tracker"
VENV_TRACKER = str(Path(sys.executable).parent / "tracker")
COMMANDS = [("--help", ["--help"]), ("categories list", ["categories", "list"])]


def seconds(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if not BINARY.exists():
        subprocess.run([sys.executable, str(ROOT / "packaging" / "build_binary.py")], check=True)
    print(f"dist/tracker: {BINARY.stat().st_size / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "TRACKER_HOME": home}
        summary = []
        for name, command in COMMANDS:
            for argv in ([str(BINARY), *command], [VENV_TRACKER, *command]):
                seconds(argv, env)  # once before timing: bytecode written, files in the page cache
            binary_times, venv_times = [], []
            for _ in range(args.runs):  # alternating, so a busy moment weighs on both
                binary_times.append(seconds([str(BINARY), *command], env))
                venv_times.append(seconds([VENV_TRACKER, *command], env))
            binary, venv = statistics.median(binary_times), statistics.median(venv_times)
            print(f"  {name:16} binary {binary * 1000:5.0f} ms, venv {venv * 1000:5.0f} ms: {binary / venv:.1f}x")
            summary.append(f"{name} {binary * 1000:.0f} ms ({binary / venv:.1f}x the venv)")
    print(f"dist/tracker start-up, medians of {args.runs}: " + ", ".join(summary)
          + f"; {datetime.date.today()}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
