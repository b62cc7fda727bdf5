"""Choosing the source: the one named, or for "auto" the desktop of this session, opened.

Apart from tracker.recording.sources, which every source imports (SourceUnavailable): the sources are imported
here only when opened, and never import this.
"""

from __future__ import annotations

import os
import sys

from tracker.callbacks import Notify
from tracker.recording.sources import SOURCE_NAMES, Source, SourceUnavailable


def open_source(name: str, notify: Notify) -> Source:
    """The source called `name`; 'auto' picks macOS or X11 from the session."""
    if name == "auto":
        name = detect_platform()
    if name == "demo":
        from tracker.recording.sources.demo import DemoSource

        return DemoSource()
    if name == "macos":
        from tracker.recording.sources.macos import MacOSSource

        return MacOSSource(notify)
    if name == "x11":
        from tracker.recording.sources.x11 import X11Source

        return X11Source(notify)
    if name == "wayland-wlr":
        from tracker.recording.sources.wlroots import WlrootsSource

        return WlrootsSource(notify)
    if name == "kwin":
        from tracker.recording.sources.kwin import KWinSource

        return KWinSource(notify)
    raise SourceUnavailable(f"Unknown source {name!r}; choose one of {', '.join(SOURCE_NAMES)}.")


def detect_platform() -> str:
    """'macos' or 'x11' for this session, or SourceUnavailable saying what was found."""
    if sys.platform == "darwin":
        return "macos"
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        if os.environ.get("DISPLAY"):
            return "x11"
        if os.environ.get("WAYLAND_DISPLAY") or os.environ.get("XDG_SESSION_TYPE") == "wayland":
            raise SourceUnavailable(
                "This is a Wayland session without X11 (no DISPLAY); tracker reads macOS and X11 desktops "
                "only. Try `tracker run --source demo` to see the pipeline work."
            )
        raise SourceUnavailable(
            "No desktop found: DISPLAY is not set, and tracker reads macOS and X11 desktops only. "
            "Try `tracker run --source demo` to see the pipeline work."
        )
    raise SourceUnavailable(
        f"This system ({sys.platform}) is not supported; tracker reads macOS and X11 desktops only. "
        "Try `tracker run --source demo` to see the pipeline work."
    )
