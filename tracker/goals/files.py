"""goals.yaml, beside the user's categories.yaml in the config directory: found, read and watched."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tracker import paths
from tracker.goals.model import Goals, GoalsError

MAX_GOALS_BYTES = 100_000  # a few hundred goals; larger is a mistake


def goals_file() -> Path:
    return paths.config_dir() / "goals.yaml"


def load_goals(path: Path | None = None) -> Goals:
    """The goals in `path` (default: the user's goals.yaml); none when the file does not exist. GoalsError for
    a file that cannot be read or is not valid."""
    path = path or goals_file()
    try:
        if not path.exists():
            return Goals((), file=path)
        if not path.is_file():
            raise GoalsError(path, None, "this is not a regular file; put a goals file in its place")
        with path.open("rb") as handle:
            data = handle.read(MAX_GOALS_BYTES + 1)
    except OSError as error:
        raise GoalsError(path, None, f"cannot read the file ({error.strerror or error}); check its "
                                     "permissions") from None
    if len(data) > MAX_GOALS_BYTES:
        raise GoalsError(path, None, "the file is larger than 100 kB, more than any goals need")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise GoalsError(path, line, "the file is not UTF-8 text; save it as UTF-8 in your editor") from None
    from tracker.goals.parse import parse_goals  # yaml only when there is a file to read

    return parse_goals(text, path)


class GoalsWatcher:
    """The goals in force while tracker runs, reloaded when the file changes (checked at most every
    `check_every` seconds). An invalid file is told to on_error once per change, and the last good goals stay
    (none, when it is invalid at start)."""

    def __init__(self, path: Path | None, on_error: Callable[[str], None], check_every: float = 2.0) -> None:
        self._path = path or goals_file()
        self._on_error = on_error
        self._check_every = check_every
        self._signature = _signature(self._path)
        self._current = Goals((), file=self._path)
        self._load()
        self._next_check = time.monotonic() + check_every
        self.version = 0  # counts the changes swapped in, for whoever keeps sums per goal

    @property
    def current(self) -> Goals:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_every
            signature = _signature(self._path)
            if signature != self._signature:
                self._signature = signature
                if self._load():
                    self.version += 1
        return self._current

    def _load(self) -> bool:
        try:
            self._current = load_goals(self._path)
        except GoalsError as error:
            self._on_error(f"{error} (goals unchanged until it is fixed)")
            return False
        return True


def _signature(path: Path) -> tuple[object, ...]:
    try:
        status = path.stat()
    except OSError:
        return (None,)
    return (status.st_mtime_ns, status.st_size, status.st_ino)
