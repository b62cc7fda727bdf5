"""How long the one-file binary takes to start, next to the venv's `tracker`, for commands that send nothing.

Builds dist/tracker first when it is missing (`make binary`). A one-file binary unpacks Python and its
libraries into a temporary directory at every start: that is the price of needing nothing installed.

    .venv/bin/python bench/binary_startup.py [--runs 10] [--against OTHER_BINARY]

`--against` times another build alternately with these, e.g. one built from an older commit.
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
    parser.add_argument("--against", type=Path, help="another build of the binary, timed alongside")
    args = parser.parse_args()
    if not BINARY.exists():
        subprocess.run([sys.executable, str(ROOT / "packaging" / "build_binary.py")], check=True)
    print(f"dist/tracker: {BINARY.stat().st_size / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "TRACKER_HOME": home}
        summary = []
        for name, command in COMMANDS:
            others = [str(args.against)] if args.against else []
            for program in (str(BINARY), VENV_TRACKER, *others):
                seconds([program, *command], env)  # once before timing: bytecode written, files in the page cache
            binary_times, venv_times, other_times = [], [], []
            for _ in range(args.runs):  # alternating, so a busy moment weighs on all
                binary_times.append(seconds([str(BINARY), *command], env))
                venv_times.append(seconds([VENV_TRACKER, *command], env))
                other_times.extend(seconds([other, *command], env) for other in others)
            binary, venv = statistics.median(binary_times), statistics.median(venv_times)
            against = f", {args.against} {statistics.median(other_times) * 1000:5.0f} ms" if others else ""
            print(f"  {name:16} binary {binary * 1000:5.0f} ms, venv {venv * 1000:5.0f} ms: {binary / venv:.1f}x"
                  + against)
            summary.append(f"{name} {binary * 1000:.0f} ms ({binary / venv:.1f}x the venv)")
    print(f"dist/tracker start-up, medians of {args.runs}: " + ", ".join(summary)
          + f"; {datetime.date.today()}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
