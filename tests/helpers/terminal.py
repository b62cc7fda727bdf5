"""`tracker` in a tmux pane, read as a user sees it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers.servers import wait_until

TRACKER = Path(sys.executable).with_name("tracker")


@dataclass
class Pane:
    """The tmux session `live` on its own server (`socket`), read as a user sees it."""

    socket: Path

    def screen(self, scrollback: bool = False) -> list[str]:
        """The non-blank lines on screen; with `scrollback`, those scrolled off the top too."""
        start = ["-S", "-"] if scrollback else []
        output = subprocess.run(["tmux", "-S", str(self.socket), "capture-pane", "-p", *start, "-t", "live"],
                                capture_output=True, text=True, check=True).stdout
        return [line.rstrip() for line in output.splitlines() if line.strip()]

    def shows(self, *texts: str) -> list[str] | None:
        """The screen once it shows a whole frame (to its bottom border) with all `texts`; else None."""
        screen = self.screen()
        whole = any(line.startswith("╰") for line in screen)
        return screen if whole and all(any(text in line for line in screen) for text in texts) else None


StartTracker = Callable[..., Pane]


def ended(pane: Pane) -> list[str]:
    """The screen once `tracker` has exited and the pane printed its exit code."""
    return wait_until(lambda: (screen := pane.screen()) and screen[-1].startswith("EXIT=") and screen,
                      timeout=20, what="tracker run to exit")
