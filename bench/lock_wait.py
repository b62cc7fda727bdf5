"""How long a running `tracker run` can wait for the history file while a long command writes to it.

Makes a year-like ActivityWatch export (bench/aw_import.py's generator), then runs `tracker import activitywatch`
on it and `tracker recategorize --all` after it (with categories that move most of that time), each in a child
process, while this process does what `tracker run`'s loop does once a second: take the file's write lock,
waiting at most 0.1 s a try (its LOOP_LOCK_WAIT), and try again at once when that fails. Prints, for each
command, its duration and the longest and the 99th-percentile time the loop waited for the lock.

    .venv/bin/python bench/lock_wait.py [--events 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aw_import import generate

LOOP_LOCK_WAIT = 0.1  # as tracker.recording.localstore: the run loop's wait per try
# Most of the export's time in other categories than the bundled file gives it.
MOVED_CATEGORIES = """categories:
  Focus:
    score: 2
    apps: [Code, kitty, obscure-tool]
  Talk:
    score: -1
    apps: [Slack, zoom]
"""
PROBE_EVERY = 0.05  # seconds between the prober's takes of the lock: often enough to see any hold


def probe_lock(database: Path, stop: threading.Event, waits: list[float]) -> None:
    """Take and release the write lock again and again until `stop`; note how long each take waited."""
    connection = sqlite3.connect(database, timeout=LOOP_LOCK_WAIT, isolation_level=None)
    try:
        while not stop.wait(PROBE_EVERY):
            asked = time.perf_counter()
            while True:
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError:  # locked: the loop tries again (next second, here at once)
                    if stop.is_set():
                        return
            waits.append(time.perf_counter() - asked)
            connection.execute("COMMIT")
    finally:
        connection.close()


def timed_beside_prober(command: list[str], home: Path, database: Path) -> tuple[float, list[float]]:
    waits: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=probe_lock, args=(database, stop, waits))
    prober.start()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "TRACKER_HOME": str(home)})
    seconds = time.perf_counter() - started
    stop.set()
    prober.join()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:3])} failed: {done.stdout}{done.stderr}")
    return seconds, waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="window events in the export")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    tracker = str(Path(sys.executable).with_name("tracker"))
    with tempfile.TemporaryDirectory() as directory:
        export = Path(directory) / "aw-buckets-export.json"
        generate(export, args.events, random.Random(args.seed))
        home = Path(directory) / "home"
        (home / "config").mkdir(parents=True)
        (home / "config" / "config.yaml").write_text("outbox_max_rows: 100000000\n")
        database = home / "data" / "tracker.db"
        database.parent.mkdir(parents=True)
        sqlite3.connect(database).execute("PRAGMA journal_mode=WAL").close()  # as tracker opens it
        print(f"export: {args.events:,} window events (as many AFK events, and the browser's tabs)")
        for name, command in [("import activitywatch", [tracker, "import", "activitywatch", str(export)]),
                              ("recategorize --all", [tracker, "recategorize", "--all"])]:
            if name.startswith("recategorize"):
                (home / "config" / "categories.yaml").write_text(MOVED_CATEGORIES)
            seconds, waits = timed_beside_prober(command, home, database)
            ordered = sorted(waits) or [0.0]
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(f"{name}: {seconds:,.1f} s; the loop's wait for the lock: longest {max(ordered):.2f} s, "
                  f"99th percentile {p99:.3f} s, median {statistics.median(ordered) * 1000:.1f} ms "
                  f"({len(waits):,} takes)")


if __name__ == "__main__":
    main()
