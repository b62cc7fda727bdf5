"""The wlroots source: the focused window of compositors that offer wlr-foreign-toplevel-management (sway,
Hyprland, river, labwc, Wayfire, niri, phosh), read over the Wayland wire protocol in pure Python.

The compositor pushes each window's title, app id and state; a window's changes count once its `done` event
comes (they are applied together). The focused window is the one whose state holds `activated`; when none has
it (an empty workspace) nothing is in front. A sample is one wl_display.sync round trip (0.1-1.6 ms): the
events before its answer are the state at that moment. Xwayland windows come with their X11 class as app id.

Protocol: wlr-foreign-toplevel-management-unstable-v1 (Copyright © 2018 Ilia Bozhinov, MIT licence), from
https://gitlab.freedesktop.org/wlroots/wlr-protocols.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from tracker.callbacks import Notify
from tracker.model import Sample, utc_now
from tracker.recording.sources import Permission, SourceUnavailable
from tracker.recording.sources.wayland_idle import WaylandIdle
from tracker.recording.sources.wayland_wire import Event, Interface, Proxy, WaylandConnection, WaylandError

log = logging.getLogger(__name__)

TOPLEVEL_HANDLE = Interface("zwlr_foreign_toplevel_handle_v1", (
    Event("title", "s"), Event("app_id", "s"), Event("output_enter", "o"), Event("output_leave", "o"),
    Event("state", "a"), Event("done"), Event("closed"), Event("parent", "O"),
))
TOPLEVEL_MANAGER = Interface("zwlr_foreign_toplevel_manager_v1", (
    Event("toplevel", "n", TOPLEVEL_HANDLE), Event("finished"),
))
MANAGER_VERSION = 3
_HANDLE_DESTROY = 7
STATE_ACTIVATED = 2
# After the compositor went away, connecting again is tried at most this often.
RECONNECT_SECONDS = 3.0


@dataclass
class Toplevel:
    """One window: what the last `done` committed, and what came since."""

    title: str | None = None
    app_id: str | None = None
    activated: bool = False
    pending: dict[str, Any] = field(default_factory=dict)

    def commit(self) -> None:
        for name, value in self.pending.items():
            setattr(self, name, value)
        self.pending.clear()


class WlrootsSource:
    """The focused window of a wlroots-style Wayland compositor."""

    name = "wayland-wlr"
    # Titles are UTF-8 by the protocol (a compositor that breaks that breaks the connection): never unreadable.
    unreadable_titles = 0

    def __init__(self, notify: Notify, display: str | None = None) -> None:
        self._notify = notify
        self.display_name = display or os.environ.get("WAYLAND_DISPLAY") or ""
        if not self.display_name:
            raise SourceUnavailable(
                "Cannot read a Wayland desktop because WAYLAND_DISPLAY is not set; run tracker inside the "
                "desktop session, or try `tracker run --source demo`."
            )
        self._connection: WaylandConnection | None = None
        self._idle: WaylandIdle | None = None
        self._toplevels: dict[int, Toplevel] = {}
        self._focused: Toplevel | None = None
        self._lost = False
        self._retry_at = 0.0
        self._closed = False
        try:
            self._connect()
        except WaylandError as error:
            raise SourceUnavailable(
                f"Cannot read the Wayland display {self.display_name}: {error.reason}; check that "
                "WAYLAND_DISPLAY names a running compositor, or try `tracker run --source demo`."
            ) from None
        except _NoToplevelProtocol:
            raise SourceUnavailable(
                f"The Wayland compositor on {self.display_name} does not offer the wlr-foreign-toplevel-management "
                "protocol (sway, Hyprland, river, labwc, Wayfire and niri do), so the window in front cannot be read."
            ) from None
        if self._idle is None:
            notify(
                f"The Wayland compositor on {self.display_name} offers no idle protocol (ext-idle-notify-v1 or "
                "org_kde_kwin_idle), so idle time cannot be detected and time away from the keyboard counts as active."
            )

    def _connect(self) -> None:
        connection = WaylandConnection.connect(self.display_name)
        try:
            found = connection.find_global(TOPLEVEL_MANAGER.name)
            if found is None:
                raise _NoToplevelProtocol()
            global_name, version = found
            self._toplevels = {}
            self._focused = None
            connection.bind(global_name, TOPLEVEL_MANAGER, min(version, MANAGER_VERSION), self._on_manager_event)
            idle = WaylandIdle.open(connection)
            connection.roundtrip()  # the windows that exist now, and their state
        except BaseException:
            connection.close()
            raise
        self._connection, self._idle = connection, idle

    def permissions(self) -> list[Permission]:
        return []  # nothing to allow

    def read(self) -> Sample | None:
        if self._closed:
            return None
        connection = self._connection
        if connection is None:
            connection = self._reconnect()
            if connection is None:
                return None
        time_read = utc_now()
        try:
            connection.roundtrip()
            idle_seconds = self._idle.idle_seconds() if self._idle is not None else None
        except WaylandError as error:
            self._lose(error)
            return None
        except Exception:  # a read never raises: one bad moment must not stop the recording
            log.debug("reading the focused Wayland window failed", exc_info=True)
            return None
        focused = self._focused
        if focused is None or not focused.app_id:
            return None
        return Sample(time=time_read, app=focused.app_id, title=focused.title or None, idle_seconds=idle_seconds)

    def _lose(self, error: WaylandError) -> None:
        log.debug("the Wayland connection broke: %s", error)
        self._drop_connection()
        self._retry_at = time.monotonic() + RECONNECT_SECONDS
        if not self._lost:
            self._lost = True
            self._notify(
                f"The connection to the Wayland display {self.display_name} was lost ({error.reason}), so nothing "
                f"is recorded until it is back; tracker tries again every {RECONNECT_SECONDS:g} s."
            )

    def _reconnect(self) -> WaylandConnection | None:
        if time.monotonic() < self._retry_at:
            return None
        self._retry_at = time.monotonic() + RECONNECT_SECONDS
        try:
            self._connect()
        except (WaylandError, _NoToplevelProtocol) as error:
            log.debug("connecting to the Wayland display again failed: %r", error)
            return None
        if self._lost:
            self._lost = False
            self._notify(f"The Wayland display {self.display_name} is back; recording again.")
        return self._connection

    def _drop_connection(self) -> None:
        if self._idle is not None:
            self._idle.close()
        if self._connection is not None:
            self._connection.close()
        self._connection, self._idle = None, None
        self._toplevels, self._focused = {}, None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._drop_connection()

    # --- events ------------------------------------------------------------------------------------------

    def _on_manager_event(self, name: str, arguments: tuple[Any, ...]) -> None:
        if name == "toplevel":
            handle: Proxy = arguments[0]
            toplevel = Toplevel()
            self._toplevels[handle.object_id] = toplevel
            handle.listener = lambda event, values: self._on_toplevel_event(handle, toplevel, event, values)
        else:  # finished: the compositor stops sending; like a lost connection, connect again later
            raise WaylandError("the Wayland compositor stopped sending window changes")

    def _on_toplevel_event(self, handle: Proxy, toplevel: Toplevel, name: str, arguments: tuple[Any, ...]) -> None:
        if name in ("title", "app_id"):
            toplevel.pending[name] = arguments[0]
        elif name == "state":
            states: bytes = arguments[0]
            whole = len(states) - len(states) % 4
            toplevel.pending["activated"] = any(state == STATE_ACTIVATED
                                                for (state,) in struct.iter_unpack("=I", states[:whole]))
        elif name == "done":
            toplevel.commit()
            if toplevel.activated:
                self._focused = toplevel
            elif self._focused is toplevel:
                self._focused = None
        elif name == "closed":
            if self._focused is toplevel:
                self._focused = None
            self._toplevels.pop(handle.object_id, None)
            handle.request(_HANDLE_DESTROY)
            handle.connection.destroyed(handle)


class _NoToplevelProtocol(Exception):
    """The compositor does not offer zwlr_foreign_toplevel_manager_v1."""
