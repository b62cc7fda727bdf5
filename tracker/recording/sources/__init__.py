"""Where samples come from: one module per platform behind the small `Source` interface (opened by
tracker.recording.sources.choose.open_source)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from tracker import PlainError
from tracker.timespec import human_ago

if TYPE_CHECKING:  # not at run time: the command line imports SOURCE_NAMES, and it must start fast
    from tracker.model import Sample

SOURCE_NAMES = ("auto", "macos", "x11", "wayland-wlr", "kwin", "gnome", "windows", "demo")

# What became of what macOS asks the user to allow (tracker.macos_privacy's AUTOMATION, ACCESSIBILITY).
GRANTED, DENIED, AWAITING_ANSWER, NOT_ASKED = "granted", "denied", "waiting for an answer", "not asked yet"


@dataclass(frozen=True)
class Permission:
    """A permission the source needed (macOS): Automation of one app, or Accessibility; and its state when it
    was last checked (None: not asked yet)."""

    kind: str  # "Automation" or "Accessibility"
    target: str | None  # the app controlled, for Automation
    state: str  # GRANTED, DENIED, AWAITING_ANSWER (a prompt is open) or NOT_ASKED
    checked_at: datetime | None = None
    error: int | None = None  # the OS error number that said DENIED

    @property
    def name(self) -> str:
        return f"{self.kind} for {self.target}" if self.target else self.kind

    def said_at(self, now: datetime) -> str:
        """What it is, what became of it, and how long before `now` that was checked:
        "Accessibility: denied (error -1719, checked 4s ago)", "Automation for Safari: not asked yet"."""
        details = [f"error {self.error}"] if self.state == DENIED and self.error else []
        if self.checked_at is not None:
            details.append(f"checked {human_ago(max(0.0, (now - self.checked_at).total_seconds()))}")
        return f"{self.name}: {self.state}" + (f" ({', '.join(details)})" if details else "")


class SourceUnavailable(PlainError):
    """No desktop can be read: the message is one plain sentence for the user."""

    exit_code = 2


class Source(Protocol):
    name: str
    # Samples whose window title could not be read (recorded with the app only) since the source opened: the
    # run's vitals, `tracker status` and `tracker doctor` show it.
    unreadable_titles: int

    def permissions(self) -> list[Permission]:
        """What the source was allowed so far (macOS); empty where nothing needs allowing."""
        ...

    def read(self) -> Sample | None:
        """The foreground now, or None when nothing can be read at this moment (never raises)."""
        ...

    def close(self) -> None: ...
