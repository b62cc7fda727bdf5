"""How fast `tracker import activitywatch` takes a large export.

Generates a year-like ActivityWatch export (window events at a realistic pace, AFK events, a browser's tab
events while it is in front), writes it to a temporary file, then imports it into a temporary data directory
the way the command does (read, combine, classify, history and outbox in one transaction) and prints events/s
for each phase and overall, and the peak memory. A year is over a million window events.

    .venv/bin/python bench/aw_import.py [--events 1000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
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
            export.write(part.read_text())
            part.unlink()
            export.write("]}")
        export.write("}}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="window events in the export")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        os.environ["TRACKER_HOME"] = directory
        from tracker import paths
        from tracker.activitywatch import combine, read_export
        from tracker.classify import load_categories
        from tracker.config import PrivacySettings
        from tracker.importing import import_spans
        from tracker.privacy import Privacy

        export = Path(directory) / "aw-buckets-export.json"
        generate(export, args.events, random.Random(args.seed))
        size = export.stat().st_size
        print(f"export: {args.events:,} window events, {size / 1e6:.0f} MB")
        started = time.perf_counter()
        buckets = read_export(export.read_bytes(), str(export))
        read = time.perf_counter()
        spans = combine(buckets)
        combined = time.perf_counter()
        result = import_spans(paths.database_file(), spans, load_categories(), Privacy(PrivacySettings()),
                              "this-machine", 10 ** 9)
        done = time.perf_counter()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for phase, seconds in (("read JSON", read - started), ("combine", combined - read),
                               ("classify, write history and outbox", done - combined)):
            print(f"{phase:<38} {seconds:7.2f} s  {args.events / seconds:>10,.0f} events/s")
        print(f"{'total':<38} {done - started:7.2f} s  {args.events / (done - started):>10,.0f} events/s")
        print(f"{len(spans):,} spans -> {result.events:,} history events, {result.points:,} outbox points; "
              f"peak memory {peak_mb:,.0f} MB (the import's: the export was written event by event)")


if __name__ == "__main__":
    main()
