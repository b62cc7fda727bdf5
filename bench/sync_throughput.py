"""How fast `tracker sync` empties a large outbox into a real InfluxDB 1.x, next to a plain client.

Starts its own InfluxDB 1.x on loopback (Debian package influxdb), commits N samples to an outbox the way
`tracker run` does, then, in alternating rounds, times `tracker sync`'s sender emptying it into one
database and a plain client posting the same line protocol in 5,000-line gzip batches into another.
Goal (issue 13): tracker at least 80 % of the plain client's points per second.

    .venv/bin/python bench/sync_throughput.py [--samples 100000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.fault_server import make_records  # noqa: E402
from helpers.servers import InfluxDB1  # noqa: E402

from tracker.config import InfluxSettings  # noqa: E402
from tracker.lineprotocol import to_line  # noqa: E402
from tracker.sending.corrections import correcting_sender  # noqa: E402
from tracker.storage.outbox import Outbox  # noqa: E402

BATCH = 5000


def plain_client(url: str, database: str, lines: list[str]) -> float:
    """Seconds to post `lines` in gzip batches, one request at a time, as a minimal client would."""
    http = urllib3.PoolManager(maxsize=1, retries=False)
    started = time.perf_counter()
    for first in range(0, len(lines), BATCH):
        body = gzip.compress("\n".join(lines[first:first + BATCH]).encode(), compresslevel=5)
        answer = http.request("POST", f"{url}/write?db={database}&precision=ms", body=body,
                              headers={"Content-Encoding": "gzip"})
        assert answer.status == 204, answer.data
    return time.perf_counter() - started


def tracker_sync(url: str, database: str, outbox_path: Path) -> float:
    """Seconds for tracker's sender (what `tracker sync` runs) to send every waiting row."""
    sender = correcting_sender(outbox_path, InfluxSettings(url=url, bucket=database, api="v1"), lambda line: None,
                               deferred=False)
    started = time.perf_counter()
    result = sender.send_all()
    elapsed = time.perf_counter() - started
    assert result.ok and result.waiting == 0, result
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--unencoded", action="store_true",
                        help="rows without their line, as an outbox from before lines were kept leaves them")
    arguments = parser.parse_args()
    records = make_records(arguments.samples)
    lines = [to_line(record) for record in records]
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "influxdb").mkdir()
        server = InfluxDB1(Path(directory) / "influxdb").start()
        try:
            ours, plain = [], []
            for round_number in range(1, arguments.rounds + 1):
                outbox_path = Path(directory) / f"round{round_number}" / "tracker.db"
                outbox_path.parent.mkdir(mode=0o700)
                with Outbox(outbox_path) as outbox:
                    outbox.append_many(records)  # as committed by `tracker run`, one transaction here
                if arguments.unencoded:
                    with sqlite3.connect(outbox_path) as db:
                        db.execute("UPDATE outbox SET line = NULL")
                for name in (f"tracker{round_number}", f"plain{round_number}"):
                    server.create_database(name)
                plain.append(arguments.samples / plain_client(server.url, f"plain{round_number}", lines))
                ours.append(arguments.samples / tracker_sync(server.url, f"tracker{round_number}", outbox_path))
                print(f"  round {round_number}: plain client {plain[-1]:,.0f} points/s, tracker sync "
                      f"{ours[-1]:,.0f} points/s: {ours[-1] / plain[-1]:.0%}")
        finally:
            server.stop()
    ratio = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
    print(f"sync of {arguments.samples:,} samples to InfluxDB 1.x: {ratio:.0%} of a plain client (goal ≥ 80 %), "
          f"{datetime.date.today()}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
