"""Standard output that refuses what is written: `> /dev/full`, a full disk or a quota under `> file`."""

from __future__ import annotations

import errno
import os
import sys

# The disk refused the bytes; a reader that went away (a closed pipe) is another matter, not handled here.
_DISK_REFUSED = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def refused_output(error: BaseException) -> str | None:
    """One sentence when `error` is the disk refusing what a command printed; None for any other error (which
    keeps its traceback). Standard output then goes to the null device: what waits in its buffer cannot fail
    again, as an "Exception ignored" and exit status 120, when the interpreter flushes it at exit.

    A refusal without a file name is standard output's: every file tracker writes itself (paths.write_whole,
    the database, the log file) names its path when it fails."""
    if not isinstance(error, OSError) or error.filename is not None or error.errno not in _DISK_REFUSED:
        return None
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)
    return (f"Cannot write to standard output: {os.strerror(error.errno).lower()}; what was written there is "
            "incomplete.")
