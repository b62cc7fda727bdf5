"""tracker: the foreground app, classified, written to your own InfluxDB."""

from typing import ClassVar

__version__ = "0.1.0"


class PlainError(Exception):
    """A failure whose `str()` is one plain sentence for the user: whichever command meets it prints
    `Error: <sentence>` and exits with the class's exit_code (tracker.commands does it, for every command)."""

    exit_code: ClassVar[int] = 1
