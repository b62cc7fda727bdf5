"""One sender at a time per data directory: a lock on send.lock (tracker.portable: an flock, or LockFileEx on
Windows), so `tracker sync` during `tracker run` (or `tracker recategorize` rewriting points) never doubles a row;
and the waiting helper the run lock uses too.

Apart from the sender, so that what must keep the sender away (recategorize) takes the lock without it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tracker.portable import try_lock

LOCK_FILE = "send.lock"
# How long `tracker sync` waits for a running tracker to finish its batch.
SYNC_LOCK_WAIT = 30.0


def lock_exclusively(descriptor: int, wait: float) -> bool:
    """Take an exclusive lock on `descriptor`, trying for up to `wait` seconds; False if another holds it."""
    give_up = time.monotonic() + wait
    while not try_lock(descriptor):
        if time.monotonic() >= give_up:
            return False
        time.sleep(0.02)
    return True


@contextmanager
def sending_held(database: Path, wait: float, busy: Callable[[], Exception]) -> Iterator[None]:
    """No other sender of the data directory of `database` sends meanwhile: send.lock held (released by the
    system, too, if this process dies); `busy()` is raised when another keeps it beyond `wait` seconds."""
    descriptor = os.open(database.parent / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not lock_exclusively(descriptor, wait):
            raise busy()
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
