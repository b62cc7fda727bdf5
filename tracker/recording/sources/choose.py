"""Choosing the source: the one named, or for "auto" the desktop of this session, opened.

In a Wayland session "auto" goes by what the compositor really offers, whether or not DISPLAY is set: there
DISPLAY is Xwayland's, whose X11 view holds only the few X11 windows and says nothing while a native window has
focus. A candidate is chosen only once it has opened (each Wayland source makes its first read then); otherwise
the next one is tried.

Apart from tracker.recording.sources, which every source imports (SourceUnavailable): the sources are imported
here only when opened, and never import this.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from tracker.callbacks import Notify
from tracker.recording.sources import SOURCE_NAMES, Source, SourceUnavailable
from tracker.session_bus import session_bus_address

# The Wayland protocol through which wlroots-style compositors (sway, Hyprland, river, labwc, Wayfire, niri)
# tell clients which window is activated.
WLR_TOPLEVELS = "zwlr_foreign_toplevel_manager_v1"
KWIN_BUS_NAME = "org.kde.KWin"
GNOME_SHELL_BUS_NAME = "org.gnome.Shell"
TRY_DEMO = "Try `tracker run --source demo` to see the pipeline work."


@dataclass(frozen=True)
class Chosen:
    """The source opened, and why it was the one: what `tracker doctor` tells."""

    source: Source
    why: str | None  # None when it was named rather than chosen


@dataclass(frozen=True)
class WaylandSession:
    """What a Wayland session offers, as auto-detection sees it."""

    desktop: str  # XDG_CURRENT_DESKTOP, e.g. "sway", "KDE", "ubuntu:GNOME"; "" when unset
    globals: dict[str, int] | None  # the compositor's globals (name -> version); None: no compositor answered
    bus_names: frozenset[str]  # the names on the session bus (empty without one)

    def describe(self) -> str:
        """The desktop and what it offers, for the sentence that says none of it can be read."""
        desktop = f"the {self.desktop} Wayland desktop" if self.desktop else "this Wayland desktop"
        if self.globals is None:
            return f"{desktop} (no compositor answered at WAYLAND_DISPLAY)"
        return f"{desktop} (it offers {len(self.globals)} Wayland interfaces, none telling the focused window)"


def open_source(name: str, notify: Notify) -> Source:
    """The source called `name`; 'auto' picks the one this session's desktop can be read by."""
    return choose_source(name, notify).source


def choose_source(name: str, notify: Notify) -> Chosen:
    """The source called `name` opened, or for 'auto' the first that opens of those this session offers."""
    if name != "auto":
        return Chosen(_open_named(name, notify), None)
    session = detect_platform()
    if session == "macos":
        return Chosen(_open_named("macos", notify), "this is macOS")
    if session == "windows":
        return Chosen(_open_named("windows", notify), "this is Windows")
    if session == "x11":
        return Chosen(_open_named("x11", notify), "this is an X11 session (DISPLAY is set, WAYLAND_DISPLAY is not)")
    wayland = look_at_wayland_session()
    candidates = wayland_candidates(wayland)
    if not candidates and wayland.globals is None and os.environ.get("DISPLAY") \
            and os.environ.get("XDG_SESSION_TYPE") != "wayland":
        # A WAYLAND_DISPLAY left over in an X11 session (e.g. by a terminal multiplexer): X11 it is.
        return Chosen(_open_named("x11", notify),
                      "WAYLAND_DISPLAY names no running compositor, and DISPLAY is set")
    return _first_that_opens(candidates, wayland, notify)


def detect_platform() -> str:
    """The kind of session: 'macos', 'windows', 'wayland' (whether or not Xwayland's DISPLAY is set too) or
    'x11'; or SourceUnavailable saying what was found."""
    if sys.platform == "darwin":
        return "macos"
    if sys.platform == "win32":
        return "windows"
    if not (sys.platform.startswith("linux") or "bsd" in sys.platform):
        raise SourceUnavailable(
            f"This system ({sys.platform}) is not supported; tracker reads Windows, macOS, X11 and Wayland desktops "
            "only. " + TRY_DEMO)
    if os.environ.get("WAYLAND_DISPLAY") or os.environ.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    if os.environ.get("DISPLAY"):
        return "x11"
    raise SourceUnavailable(
        "No desktop found: neither WAYLAND_DISPLAY nor DISPLAY is set; run tracker in your desktop session. "
        + TRY_DEMO)


def wayland_candidates(session: WaylandSession) -> list[tuple[str, str]]:
    """The sources to try in this Wayland session, in order, each with why (pure: what the session offers)."""
    candidates: list[tuple[str, str]] = []
    desktop = session.desktop.upper().split(":")
    if session.globals is not None and WLR_TOPLEVELS in session.globals:
        candidates.append(("wayland-wlr", f"the compositor offers {WLR_TOPLEVELS}"))
    if KWIN_BUS_NAME in session.bus_names:
        candidates.append(("kwin", f"KWin is on the session bus ({KWIN_BUS_NAME})"))
    elif "KDE" in desktop:
        candidates.append(("kwin", f"XDG_CURRENT_DESKTOP is {session.desktop}"))
    if GNOME_SHELL_BUS_NAME in session.bus_names:
        candidates.append(("gnome", f"GNOME Shell is on the session bus ({GNOME_SHELL_BUS_NAME})"))
    elif "GNOME" in desktop:
        candidates.append(("gnome", f"XDG_CURRENT_DESKTOP is {session.desktop}"))
    return candidates


def look_at_wayland_session() -> WaylandSession:
    """The compositor's globals and the session bus's names: a few milliseconds, bounded by short timeouts."""
    from tracker.recording.sources.wayland_wire import WaylandError, offered_globals

    try:
        offered: dict[str, int] | None = offered_globals()
    except WaylandError:
        offered = None
    return WaylandSession(os.environ.get("XDG_CURRENT_DESKTOP", ""), offered, session_bus_names())


def session_bus_names() -> frozenset[str]:
    """The names owned on the session bus; empty when there is no session bus to ask."""
    try:
        from jeepney import DBus
        from jeepney.io.blocking import open_dbus_connection
    except ImportError:  # jeepney is a Linux dependency; elsewhere there is nothing to ask
        return frozenset()
    address = session_bus_address()
    if address is None:
        return frozenset()
    try:
        with open_dbus_connection(address, auth_timeout=2) as connection:
            reply = connection.send_and_get_reply(DBus().ListNames(), timeout=2)
    except Exception:  # no bus, a bus that does not answer, or a refused call: nothing is known from it
        return frozenset()
    return frozenset(name for name in reply.body[0] if not name.startswith(":"))


def _first_that_opens(candidates: list[tuple[str, str]], session: WaylandSession, notify: Notify) -> Chosen:
    refusals: list[str] = []
    for name, why in candidates:
        try:
            return Chosen(_open_named(name, notify), why)
        except SourceUnavailable as error:
            refusals.append(str(error))
    if refusals:  # what each candidate said of itself
        raise SourceUnavailable(" ".join(refusals))
    raise SourceUnavailable(
        f"tracker cannot tell the focused window on {session.describe()}: it reads wlroots compositors (sway, "
        "Hyprland, river, labwc, Wayfire, niri), KDE Plasma and GNOME; `--source x11` would see Xwayland "
        "windows only. " + TRY_DEMO)


def _open_named(name: str, notify: Notify) -> Source:
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
    if name == "gnome":
        from tracker.recording.sources.gnome import GnomeSource

        return GnomeSource(notify)
    if name == "windows":
        from tracker.recording.sources.windows import WindowsSource

        return WindowsSource(notify)
    raise SourceUnavailable(f"Unknown source {name!r}; choose one of {', '.join(SOURCE_NAMES)}.")
