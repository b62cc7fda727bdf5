"""Standard output and error as they really may be: refusing what is written (`> /dev/full`, a full disk or a
quota under `> file`), in Latin-1, or with their reader gone (a closed pipe, a terminal closed)."""

from __future__ import annotations

import errno
import io
import os
import stat
import sys
from typing import Any

# The disk refused the bytes; a reader that went away (a closed pipe) is another matter: see reader_gone.
_DISK_REFUSED = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def guard_output() -> int | None:
    """When standard output is a regular file (`> file`, `>> file`): make it write whole or fail (see
    _WholeWrites), and return where the command's output begins, what the file is cut back to if the disk
    refuses part of it. None, and standard output as it was, for a terminal, a pipe or a device."""
    try:
        descriptor = sys.stdout.fileno()
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            return None
        # `>>`: each write goes at the end.
        start = status.st_size if _appending(descriptor) else os.lseek(descriptor, 0, os.SEEK_CUR)
    except (OSError, ValueError, AttributeError):  # no descriptor at all (a test's captured output)
        return None
    sys.stdout.flush()
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(_WholeWrites(descriptor)), encoding=sys.stdout.encoding,
                                  errors=sys.stdout.errors)
    return start


def _appending(descriptor: int) -> bool:
    """Whether the file was opened to append. Windows cannot tell; there `>>` leaves the position at the end,
    where the command's output then begins anyway."""
    try:
        import fcntl
    except ImportError:
        return False
    return bool(fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_APPEND)


class _WholeWrites(io.RawIOBase):
    """A descriptor written whole, or OSError. A disk that fills takes part of a write and says how much; the
    buffered writer above can then drop the rest without a word (Python 3.11: a 15 kB report into 4 kB of room
    exits 0, the file cut at 4 kB). Writing the rest at once meets the full disk as the OSError it is."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._descriptor

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            written = os.write(self._descriptor, view[done:])
            if written == 0:  # no progress and no error: as full as a disk gets
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += written
        return done


def refused_output(error: BaseException, start: int | None = None) -> str | None:
    """One sentence when `error` is the disk refusing what a command printed; None for any other error (which
    keeps its traceback). A regular file is cut back to `start` (see guard_output): no half output is left in it
    to pass for the whole. Standard output then goes to the null device, so what waits in its buffer cannot fail
    again, as an "Exception ignored" and exit status 120, when the interpreter flushes it at exit.

    A refusal without a file name is standard output's: every file tracker writes itself (paths.write_whole,
    the database, the log file) names its path when it fails."""
    if not isinstance(error, OSError) or error.filename is not None or error.errno not in _DISK_REFUSED:
        return None
    said = f"Cannot write to standard output: {os.strerror(error.errno).lower()}"
    if start is None:
        said += "; what was written there is incomplete."
    else:
        try:
            os.ftruncate(sys.stdout.fileno(), start)
            said += "; the file is left as it was before."
        except OSError:
            said += "; what was written there is incomplete."
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)
    return said


# Writes that fail like this will fail for good: the reader is gone (a closed pipe, `| head`; a dead terminal).
_READER_GONE = (errno.EPIPE, errno.EIO, errno.ENXIO)


def replace_unencodable(stream: object) -> None:
    """Characters the stream's encoding cannot carry (a Latin-1 terminal, a category name in Greek) print as
    replacements instead of raising: a line must never stop recording."""
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        stream.reconfigure(errors="replace")


def reader_gone(error: OSError, stream: object) -> bool:
    """Whether `error`, from writing to `stream`, means nobody will ever read it again; if so the stream's
    descriptor is pointed at the null device, so that the interpreter's last flush at exit cannot fail too."""
    if error.errno not in _READER_GONE:
        return False  # a full disk under a log file: this line is lost, the next may go through
    try:
        descriptor = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return True
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)
    return True
