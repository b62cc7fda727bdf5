"""How fast `tracker import activitywatch` takes a large export, and in how much memory.

Generates a year-like ActivityWatch export (window events at a realistic pace, AFK events, a browser's tab
events while it is in front), written event by event to a temporary file, then runs `tracker import
activitywatch FILE` on it in a child process with a temporary data directory, and prints its rate and that
process's peak resident memory (getrusage's ru_maxrss of the children: the importing process alone). A year is
over a million window events.

    .venv/bin/python bench/aw_import.py [--events 1000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

WINDOWS = [("Code", "main.py - tracker"), ("Slack", "general"), ("kitty", "~/src"), ("Firefox", "Mozilla Firefox"),
           ("zoom", "Meeting"), ("obscure-tool", "untitled")]
TABS = ["https://github.com/tracker/issues", "https://news.ycombinator.com/", "https://docs.python.org/3/",
        "https://mail.google.com/mail/u/0/", "https://www.youtube.com/watch?v=x", "https://example.org/"]
HOST = "bench-desk"


def generate(path: Path, events: int, rng: random.Random) -> None:
    """Write an export of `events` window events, ending now, event by event (so the bench's peak memory is the
    import's): about 2,900 a day, so a million is a year."""
    window, afk, web = (path.with_suffix(f".{kind}") for kind in ("window", "afk", "web"))
    moment = datetime.now(timezone.utc) - timedelta(days=events / 2900)
    away_left = 0
    with window.open("w") as windows, afk.open("w") as afks, web.open("w") as tabs:
        for number in range(events):
            seconds = round(rng.expovariate(1 / 25), 3)
            app, title = rng.choice(WINDOWS)
            stamp = moment.isoformat()
            separator = "," if number else ""
            windows.write(separator + json.dumps({"timestamp": stamp, "duration": seconds,
                                                  "data": {"app": app, "title": f"{title} {number % 50}"}}))
            if away_left == 0 and rng.random() < 0.02:
                away_left = rng.randint(5, 40)
            afks.write(separator + json.dumps({"timestamp": stamp, "duration": seconds,
                                               "data": {"status": "afk" if away_left else "not-afk"}}))
            away_left = max(0, away_left - 1)
            if app == "Firefox":
                tabs.write(("," if tabs.tell() else "") + json.dumps(
                    {"timestamp": stamp, "duration": seconds,
                     "data": {"url": rng.choice(TABS), "title": "tab", "audible": False, "incognito": False}}))
            moment += timedelta(seconds=seconds)
    created = json.dumps(datetime.now(timezone.utc).isoformat())
    with path.open("w") as export:
        export.write('{"buckets": {')
        for number, (bucket_id, kind, part) in enumerate([(f"aw-watcher-window_{HOST}", "currentwindow", window),
                                                          (f"aw-watcher-afk_{HOST}", "afkstatus", afk),
                                                          (f"aw-watcher-web-firefox_{HOST}", "web.tab.current", web)]):
            export.write(("," if number else "") + f'"{bucket_id}": {{"id": "{bucket_id}", "type": "{kind}", '
                         f'"client": "bench", "hostname": "{HOST}", "created": {created}, "events": [')
            with part.open() as events:
                shutil.copyfileobj(events, export)
            part.unlink()
            export.write("]}")
        export.write("}}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="window events in the export")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        export = Path(directory) / "aw-buckets-export.json"
        generate(export, args.events, random.Random(args.seed))
        print(f"export: {args.events:,} window events (as many AFK events, and the browser's tabs), "
              f"{export.stat().st_size / 1e6:,.0f} MB")
        home = Path(directory) / "home"
        (home / "config").mkdir(parents=True)
        # Room in the outbox for every point (the default bound is 30 days of samples).
        (home / "config" / "config.yaml").write_text("outbox_max_rows: 100000000\n")
        tracker = str(Path(sys.executable).with_name("tracker"))
        started = time.perf_counter()
        done = subprocess.run([tracker, "import", "activitywatch", str(export)], capture_output=True, text=True,
                              env={**os.environ, "TRACKER_HOME": str(home)}, stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        print(done.stdout.strip() or done.stderr.strip())
        if done.returncode != 0:
            raise SystemExit(f"tracker import failed with exit code {done.returncode}")
        database = home / "data" / "tracker.db"
        print(f"import: {seconds:,.1f} s, {args.events / seconds:,.0f} window events/s; peak memory of the importing "
              f"process {peak_mb:,.0f} MB (ru_maxrss); database {database.stat().st_size / 1e6:,.0f} MB")


if __name__ == "__main__":
    main()
