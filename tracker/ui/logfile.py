"""A log file that never grows past a size: `tracker run --log-file`, as a service started at login runs it.

At most two files exist, PATH and PATH.1: when a line would take PATH past `max_bytes`, PATH becomes PATH.1
(replacing the older one) and a new PATH is started. The size is asked of the file itself, before each line
and when the file is opened, so whatever else reached it (an error click printed to stderr as the process
exited, a warning) counts too: each file holds at most `max_bytes` plus what one process printed after its
last line. With `take_over_output`, the process's stdout and stderr are the file as well, so no sentence
it prints can escape the cap either.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from tracker.paths import private_dir

DEFAULT_MAX_BYTES = 1_000_000
_STANDARD_OUTPUTS = (1, 2)


class CappedLog(io.TextIOBase):
    """A text stream appending to `path`, rotated to `path`.1 before it would pass `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, take_over_output: bool = False) -> None:
        super().__init__()
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.path = path
        self.max_bytes = max_bytes
        self.take_over_output = take_over_output
        private_dir(path.parent)
        with contextlib.suppress(FileNotFoundError):
            # What an earlier process printed past its last line (an error it exited with) counts too:
            # a service failing at every start must not grow the file either.
            if path.stat().st_size >= max_bytes:
                os.replace(path, self.rotated_path)
        self._descriptor = self._open()

    @property
    def rotated_path(self) -> Path:
        return self.path.with_name(self.path.name + ".1")

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "replace")
        size = os.fstat(self._descriptor).st_size
        if size and size + len(data) > self.max_bytes:
            self._rotate()
        os.write(self._descriptor, data)
        return len(text)

    def flush(self) -> None:
        """Every write goes straight to the file: nothing is buffered here."""

    def close(self) -> None:
        if not self.closed:
            os.close(self._descriptor)
        super().close()

    def _open(self) -> int:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.take_over_output:
            for standard in _STANDARD_OUTPUTS:
                os.dup2(descriptor, standard)
        return descriptor

    def _rotate(self) -> None:
        os.replace(self.path, self.rotated_path)
        old = self._descriptor
        self._descriptor = self._open()
        os.close(old)
