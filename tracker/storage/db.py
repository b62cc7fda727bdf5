"""The local SQLite file that holds the outbox and the event history: opened privately, failing plainly."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tracker import PlainError
from tracker.paths import private_dir

T = TypeVar("T")


class StoreUnavailable(PlainError):
    """The local database cannot be used (disk full, read-only, I/O error); `str()` says which, plainly.
    `busy`: only because another process holds its write lock (another tracker command), which passes."""

    busy = False


class NotOurDatabase(sqlite3.DatabaseError):
    """The file is an SQLite database, but another program's: tracker must not add its tables to it."""


# Tables whose presence makes a file tracker's, with a column each must have (any version of tracker).
_OUR_TABLES = {"outbox": "time_ms", "events": "timestamp"}


@contextmanager
def unavailable_as(what: str, error_class: type[StoreUnavailable] = StoreUnavailable,
                   path: Path | None = None) -> Iterator[None]:
    """Turn SQLite and OS errors into error_class("Cannot <what>: <plain reason>; <what to do>."); `path`, the
    database, is named in the advice."""
    try:
        yield
    except (sqlite3.DatabaseError, OSError) as error:
        reason = plain_reason(error)
        if reason == _IO_ERROR and path is not None and _no_space_left(path):
            reason = _DISK_FULL  # SQLite reports a full disk as an I/O error when its shared-memory file cannot grow
        unavailable = error_class(f"Cannot {what}: {reason}{advice(reason, path)}.")
        unavailable.busy = reason == _BUSY
        raise unavailable from None


_IO_ERROR = "the disk reported an I/O error"
_BUSY = "another process kept it locked for too long"
_DISK_FULL = "the disk is full"


def _no_space_left(path: Path) -> bool:
    import shutil  # only once a write failed: with its bz2 and lzma, 0.5 MB a run never needs otherwise

    try:
        return shutil.disk_usage(path.parent).free == 0
    except OSError:
        return False


def connect_private(path: Path, **options: Any) -> sqlite3.Connection:
    """A SQLite connection to `path`, a file (and -wal, -shm) readable by the user only.

    Never opens a descriptor of its own on the file: closing one would drop every POSIX lock this process
    holds on it, including those of SQLite connections open in other threads, and another process could
    then take the file for unused and remove the write-ahead log under them. SQLite creates the file;
    chmod (which opens nothing) narrows it; SQLite gives -wal and -shm the file's mode.
    """
    private_dir(path.parent)  # 0700: nobody else can reach the file in the moment before the chmod
    connection = sqlite3.connect(path, **options)
    try:
        _check_ours(connection)  # before anything is changed: not even another program's file mode
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            os.chmod(path, 0o600)
    except BaseException:
        connection.close()
        raise
    return connection


# Page cache per connection, in KiB.
PAGE_CACHE_KIB = 512
# Seconds a command waits for another process's write lock before it fails (`tracker run`'s loop waits a
# moment only: see recording.localstore).
LOCK_WAIT = 10.0


def open_database(path: Path, synchronous: str, threads: bool = False) -> sqlite3.Connection:
    """The shared file, opened the one way the outbox and the history both use it: in WAL mode (readers and
    one writer at once, across processes), waiting up to LOCK_WAIT for a lock rather than failing (see
    `set_lock_wait`), and in autocommit mode, so that every transaction is an explicit `transaction()`.

    `synchronous` is FULL where a commit must survive a power cut, NORMAL where a second may be lost;
    `threads` lets the connection be shared between threads (its owner serialises the calls).
    """
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            return _open_in_wal_mode(path, synchronous, threads)
        except sqlite3.OperationalError as error:
            # Two connections opening a new file at once: the one that does not turn it to WAL mode is
            # refused at once, without SQLite's wait for the lock. Try again until the other is done.
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _open_in_wal_mode(path: Path, synchronous: str, threads: bool) -> sqlite3.Connection:
    connection = connect_private(path, timeout=LOCK_WAIT, isolation_level=None, check_same_thread=not threads)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={synchronous}")
        # SQLite's default page cache grows to 2 MB per connection as the file grows: a run holds its
        # connections for months, and appends and reads by index need few pages.
        connection.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
    except BaseException:
        connection.close()
        raise
    return connection


def set_lock_wait(connection: sqlite3.Connection, seconds: float) -> None:
    """How long the connection's statements wait for another process's lock from now on, before they fail."""
    connection.execute(f"PRAGMA busy_timeout = {round(seconds * 1000)}")


def _check_ours(connection: sqlite3.Connection) -> None:
    """NotOurDatabase unless the file is new or tracker's; a damaged one raises SQLite's DatabaseError here."""
    tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    ours = tables & _OUR_TABLES.keys()
    if tables and not ours:
        raise NotOurDatabase("another program's database")
    for table in ours:
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if _OUR_TABLES[table] not in columns:
            raise NotOurDatabase("another program's database")


@contextmanager
def transaction(connection: sqlite3.Connection, immediate: bool = True) -> Iterator[None]:
    """Commit what the block does, or roll it back on any exception.

    BEGIN IMMEDIATE takes the write lock up front, so two processes never deadlock upgrading a read lock;
    `immediate=False` for writes that need no lock on the file (a report's temporary table).
    """
    connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def plain_reason(error: Exception) -> str:
    if isinstance(error, NotOurDatabase):
        return "the file is another program's database, not tracker's"
    if isinstance(error, OSError):
        if error.errno == errno.ENOSPC:
            return _DISK_FULL
        if error.errno == errno.EROFS:
            return "the file system is read-only"
        if error.errno in (errno.EACCES, errno.EPERM):
            return "permission denied (the file or its directory is read-only)"
        return (error.strerror or str(error)).lower()
    text = str(error).lower()
    name = getattr(error, "sqlite_errorname", "")
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return _DISK_FULL
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return "the file or its directory is read-only"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return "the file cannot be opened (is its directory missing or read-only?)"
    if name.startswith("SQLITE_BUSY") or "locked" in text:
        return _BUSY
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a data" in text:
        return "the file is damaged or is not a tracker database"
    if name.startswith("SQLITE_IOERR") or "i/o" in text:
        return _IO_ERROR
    return str(error)


def advice(reason: str, path: Path | None) -> str:
    """What to do about an error (its `plain_reason`) with the database at `path`, as the end of a sentence
    ("; move it ..."), or ""."""
    if path is not None and ("damaged" in reason or "another program" in reason):
        # Never repaired or replaced in place: whatever it still holds stays for the user to rescue.
        # Its -wal and -shm files go with it: a new database must not meet the old one's write-ahead log.
        return (f"; tracker changes nothing in it: move it aside (cd '{path.parent}' && mkdir -p damaged && mv"
                f" {path.name}* damaged/) and tracker starts a new one")
    if reason == _DISK_FULL:
        return "; free some space on that disk"
    if path is not None and ("read-only" in reason or reason.startswith("permission denied")):
        return f"; make {path.parent} and its files writable, or set TRACKER_HOME to another directory"
    return ""


# A long command (import, recategorize) writes a slice in about this many seconds: the longest a running `tracker
# run` waits for the file (its loop keeps samples in memory meanwhile). Then a pause gives it its turn: SQLite's
# lock is not fair, and a waiter looks again only every few milliseconds.
SLICE_SECONDS = 0.05
SLICE_PAUSE = 0.03
_FIRST_SLICE = 500  # rows; later slices are sized by the time the last one took
_LARGEST_SLICE = 10_000  # rows: a slice's ids fit in one statement's parameters


def in_slices(take: Callable[[int], Sequence[T]], write: Callable[[Sequence[T]], int]) -> Iterator[int]:
    """Give `write` what `take(limit)` gives (the next rows, at most `limit`; none at the end), a slice at a time,
    each about SLICE_SECONDS of writing and then a pause; yields what each write returns."""
    size = _FIRST_SLICE
    while batch := take(size):
        started = time.perf_counter()
        yield write(batch)
        took = time.perf_counter() - started
        size = max(50, min(_LARGEST_SLICE, int(size * SLICE_SECONDS / max(took, 1e-4))))
        time.sleep(SLICE_PAUSE)


def list_in_slices(items: Sequence[T], write: Callable[[Sequence[T]], int]) -> int:
    """`in_slices` over a list in memory; returns the sum of what `write` returned."""
    taken = 0

    def take(limit: int) -> Sequence[T]:
        nonlocal taken
        taken += limit
        return items[taken - limit:taken]

    return sum(in_slices(take, write))
