"""Where samples come from: one module per platform behind the small `Source` interface (opened by
tracker.recording.sources.choose.open_source)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tracker import PlainError

if TYPE_CHECKING:  # not at run time: the command line imports SOURCE_NAMES, and it must start fast
    from tracker.model import Sample

SOURCE_NAMES = ("auto", "macos", "x11", "demo")



class SourceUnavailable(PlainError):
    """No desktop can be read: the message is one plain sentence for the user."""

    exit_code = 2


class Source(Protocol):
    name: str
    # Samples whose window title could not be read (recorded with the app only) since the source opened: the
    # run's vitals, `tracker status` and `tracker doctor` show it.
    unreadable_titles: int

    def read(self) -> Sample | None:
        """The foreground now, or None when nothing can be read at this moment (never raises)."""
        ...

    def close(self) -> None: ...
