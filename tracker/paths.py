"""Where tracker keeps its files: TRACKER_HOME=DIR puts config and data under DIR, else platformdirs.

Everything tracker creates there is readable by the user only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

APP_NAME = "tracker"


def config_dir() -> Path:
    home = os.environ.get("TRACKER_HOME")
    if home:
        return Path(home) / "config"
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False)


def data_dir() -> Path:
    home = os.environ.get("TRACKER_HOME")
    if home:
        return Path(home) / "data"
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def config_file() -> Path:
    return config_dir() / "config.yaml"


def user_categories_file() -> Path:
    return config_dir() / "categories.yaml"


def database_file() -> Path:
    """The local SQLite store: the outbox and the event history."""
    return data_dir() / "tracker.db"


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the user only; return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str | bytes, durable: bool = True) -> None:
    """Write a file readable by the user only, atomically (a crash leaves the old file or the new one); text
    as UTF-8, bytes as they are.

    `durable=False` skips the fsync, for files rewritten every few seconds whose loss costs nothing.
    """
    private_dir(path.parent)
    write_whole(path, [text], durable)


def write_whole(path: Path, chunks: Iterable[str | bytes], durable: bool = True) -> None:
    """Write `chunks` (text as UTF-8) to `path` whole or not at all: into a temporary file beside it, renamed
    over it at the end, so a full disk or a crash leaves the old file, or none, never half a new one that looks
    complete. A new file is readable by the user only. A path that exists and is not a regular file (a device,
    a named pipe, /dev/stdout) is written to directly: a rename would replace it. OSError names `path`."""
    import stat

    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        special = False
    temporary = path if special else path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        # O_BINARY: on Windows a descriptor is otherwise in text mode, and each "\n" written would become "\r\n".
        flags = (os.O_WRONLY if special else os.O_WRONLY | os.O_CREAT | os.O_TRUNC) | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(temporary, flags, 0o600), "wb") as handle:
            for chunk in chunks:
                handle.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            handle.flush()  # a full disk fails here at the latest, before the rename
            if durable and not special:
                os.fsync(handle.fileno())
        if not special:
            os.replace(temporary, path)
    except OSError as error:
        if not special:  # the old file stays, and no half-written copy beside it
            temporary.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(path)) from None


def display_path(path: Path) -> str:
    """The path with the home directory shown as ~, the way users recognise it."""
    unpacked = getattr(sys, "_MEIPASS", None)  # a PyInstaller binary unpacks itself to a temporary directory
    if unpacked and path.is_relative_to(unpacked):
        return f"{path.name} built into {sys.executable}"
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except (ValueError, RuntimeError):  # elsewhere, or no home directory
        return str(path)
