"""kill -9 at random moments, while recording and while sending: every committed row arrives, once.

A small driver process appends records through the Outbox (printing each number once its append
returned, i.e. once it is committed) and runs a Sender against a real InfluxDB 1.x. The test kills it
at random moments, starts it again on the same data directory, and at the end compares, record by
record, what was committed with what InfluxDB holds.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers.fault_server import make_records, stored_records

from tracker import paths
from tracker.config import InfluxSettings
from tracker.sending.corrections import correcting_sender
from tracker.storage.outbox import Outbox

TESTS = Path(__file__).parent
DRIVER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from helpers.fault_server import make_records
from tracker.config import InfluxSettings
from tracker.storage.outbox import Outbox
from tracker.sending.corrections import correcting_sender

database, url, bucket = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
first, burst = int(sys.argv[4]), int(sys.argv[5])
outbox = Outbox(database)
# The sender's notices go to stderr: printed from its thread to stdout, they could split a "committed" line.
sender = correcting_sender(database, InfluxSettings(url=url, bucket=bucket, api="v1"),
                           lambda notice: print(notice, file=sys.stderr), deferred=False, batch_size=300,
                           min_interval=0.05)
sender.start()
number = first
while True:
    records = make_records(burst, first=number)
    if burst == 1:
        outbox.append(records[0])
    else:
        outbox.append_many(records)
    number += burst
    print("committed", number, flush=True)
    sender.wake()
    time.sleep(0.01)
"""
ROUNDS = 10
ROUND_SPAN = 100_000  # record numbers each round may use: rounds never share a timestamp


def run_until_killed(driver: Path, settings: InfluxSettings, first: int, burst: int, life: float) -> int:
    """Run the driver for `life` seconds from its first commit, SIGKILL it, and return the first number it did
    not commit."""
    process = subprocess.Popen([sys.executable, str(driver), str(paths.database_file()), settings.url,
                                settings.bucket, str(first), str(burst)], stdout=subprocess.PIPE, text=True)
    committed_until = [first]
    started = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            # A line the kill cut short (no newline yet) says nothing for sure.
            if line.startswith("committed ") and line.endswith("\n"):
                committed_until[0] = int(line.split()[1])
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started.wait(60)  # its life counts from its first commit: on a busy machine, starting Python takes a while
    time.sleep(life)
    process.kill()
    process.wait()
    reader.join(5)
    return committed_until[0]


def test_kill_9_while_recording_and_sending_loses_and_doubles_nothing(influxdb1, influx_database, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(TESTS)))
    settings = InfluxSettings(url=influxdb1.url, bucket=influx_database, api="v1")
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    committed: set[int] = set()
    maybe_committed: set[int] = set()  # appended, but killed before it could say so
    left_unsent = []
    for round_number in range(ROUNDS):
        first = round_number * ROUND_SPAN
        burst = 1 if round_number % 2 == 0 else 200  # one by one like tracker run; bursts keep it sending
        until = run_until_killed(driver, settings, first, burst, life=chance.uniform(0.6, 1.8))
        committed.update(range(first, until))
        maybe_committed.update(range(until, until + burst))
        with Outbox(paths.database_file()) as outbox:
            left_unsent.append(outbox.stats().waiting)

    # The next start sends the rest.
    result = correcting_sender(paths.database_file(), settings, print, deferred=False).send_all()
    assert result.ok and result.waiting == 0 and result.quarantined == 0, result

    stored = stored_records(influxdb1, influx_database)
    stored_numbers = {(record.time_ms - make_records(1)[0].time_ms) // 1000 for record in stored}
    assert len(stored_numbers) == len(stored), f"a record stored twice (seed {seed})"
    missing = committed - stored_numbers
    assert not missing, f"committed but lost: {sorted(missing)[:10]} (seed {seed})"
    assert stored_numbers <= committed | maybe_committed, f"never recorded (seed {seed})"
    assert stored == [make_records(1, first=number)[0] for number in sorted(stored_numbers)]
    assert len(committed) > 1000
    # The kills did hit with rows committed but not yet confirmed: recovery was really exercised.
    assert sum(1 for waiting in left_unsent if waiting > 0) >= 3, left_unsent
