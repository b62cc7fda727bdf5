"""Standard output and error as they may really be: a terminal in Latin-1, a pipe whose reader has gone."""

from __future__ import annotations

import errno
import io
import os

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
