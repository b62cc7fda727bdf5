"""One `tracker run` per data directory: an exclusive lock (tracker.portable) on data_dir()/run.lock for as long
as it runs.

Whether it runs is then known for certain, even after a crash: the kernel drops the lock with the process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tracker import PlainError
from tracker.paths import data_dir, private_dir
from tracker.portable import read_at, try_lock, unlock, write_at
from tracker.sending.sendlock import lock_exclusively

# A status probe holds the lock for microseconds: a runner starting at that moment waits this long for it.
LOCK_PATIENCE = 0.25

def lock_file() -> Path:
    return data_dir() / "run.lock"


def status_file() -> Path:
    return data_dir() / "status.json"


class AlreadyRunning(PlainError):
    def __init__(self, pid: int, directory: Path) -> None:
        super().__init__(f"tracker run is already running for {directory} (pid {pid})")
        self.pid = pid
        self.directory = directory


class RunLock:
    """The exclusive lock of a running `tracker run`; released on `release()` or when the process ends."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        if self._descriptor is None:
            return
        # The file stays: deleting it could let two runners lock two different files of the same name.
        unlock(self._descriptor)
        os.close(self._descriptor)
        self._descriptor = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def acquire_run_lock() -> RunLock:
    """Lock this data directory for this process; AlreadyRunning when another process has it."""
    path = private_dir(data_dir()) / lock_file().name
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if not lock_exclusively(descriptor, LOCK_PATIENCE):
        pid = _read_pid(descriptor)
        os.close(descriptor)
        raise AlreadyRunning(pid, path.parent)
    try:
        os.ftruncate(descriptor, 0)
        write_at(descriptor, f"{os.getpid()}\n".encode(), 0)
    except OSError as error:  # a full disk: say which file, as the open would have
        os.close(descriptor)
        raise OSError(error.errno, error.strerror, str(path)) from None
    return RunLock(path, descriptor)


def is_running() -> int | None:
    """The pid of the `tracker run` holding this data directory's lock; None when none does.
    0 when one does but has not written its pid yet."""
    try:
        descriptor = os.open(lock_file(), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if not try_lock(descriptor, shared=True):
            return _read_pid(descriptor)
        unlock(descriptor)
        return None
    finally:
        os.close(descriptor)


def _read_pid(descriptor: int) -> int:
    # The runner writes its pid just after taking the lock: give it a moment.
    deadline = time.monotonic() + 0.5
    while True:
        text = read_at(descriptor, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() >= deadline:
            return 0
        time.sleep(0.02)
