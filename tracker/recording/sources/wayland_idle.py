"""Seconds since the last input on Wayland compositors that offer ext-idle-notify-v1 (wlroots 0.16+, KWin) or,
else, KDE's older org_kde_kwin_idle (sway 1.7, wlroots 0.15).

Both protocols only say "idle after T" and "resumed". With T = 1 s the idle time is 0 while the user is active
and T + the time since `idled` once idle: accurate to about a second, like X11's screen saver extension.
Before the first event the user counts as active (0).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tracker.recording.sources.wayland_wire import (
    WL_SEAT,
    Event,
    Interface,
    Proxy,
    WaylandConnection,
    WaylandError,
)

log = logging.getLogger(__name__)

NOTIFICATION_TIMEOUT_MS = 1000
# A separate connection that broke is opened again at most this often.
RECONNECT_SECONDS = 5.0

EXT_IDLE_NOTIFICATION = Interface("ext_idle_notification_v1", (Event("idled"), Event("resumed")))
EXT_IDLE_NOTIFIER = Interface("ext_idle_notifier_v1")
_EXT_GET_IDLE_NOTIFICATION, _EXT_GET_INPUT_IDLE_NOTIFICATION = 1, 2  # (new_id, timeout, seat)
KDE_IDLE_TIMEOUT = Interface("org_kde_kwin_idle_timeout", (Event("idle"), Event("resumed")))
KDE_IDLE = Interface("org_kde_kwin_idle")
_KDE_GET_IDLE_TIMEOUT = 0  # (new_id, seat, timeout)
_DESTROY = 0  # ext_idle_notification_v1.destroy, org_kde_kwin_idle_timeout.release, ext_idle_notifier_v1.destroy


class WaylandIdle:
    """Idle time from one idle notification on the first seat, on a connection of its own or shared."""

    def __init__(self, connection: WaylandConnection, owns_connection: bool, display: str | None) -> None:
        self._connection: WaylandConnection | None = connection
        self._owns_connection = owns_connection
        self._display = display
        self._idle_since: float | None = None  # monotonic time of the last `idled`, None while active
        self._retry_at = 0.0
        self.protocol = self._subscribe(connection)

    @classmethod
    def open(cls, target: WaylandConnection | str | None = None) -> WaylandIdle | None:
        """Idle time on `target`: a connection to share, or a display to connect to ($WAYLAND_DISPLAY when
        None). None when the compositor offers no idle protocol (or no seat); raises WaylandError when a
        display cannot be reached."""
        if isinstance(target, WaylandConnection):
            return cls._open_on(target, owns_connection=False, display=None)
        connection = WaylandConnection.connect(target)
        try:
            idle = cls._open_on(connection, owns_connection=True, display=target)
        except BaseException:
            connection.close()
            raise
        if idle is None:
            connection.close()
        return idle

    @classmethod
    def _open_on(cls, connection: WaylandConnection, owns_connection: bool,
                 display: str | None) -> WaylandIdle | None:
        if _idle_globals(connection) is None:
            return None
        return cls(connection, owns_connection, display)

    def _subscribe(self, connection: WaylandConnection) -> str:
        """Create the notification; the name of the protocol used."""
        found = _idle_globals(connection)
        if found is None:
            raise WaylandError("the Wayland compositor no longer offers an idle protocol")
        (notifier_name, notifier_version), seat_name = found
        seat = connection.bind(seat_name, WL_SEAT, 1)
        if notifier_version == -1:  # org_kde_kwin_idle
            manager = connection.bind(notifier_name, KDE_IDLE, 1)
            notification = connection.create(KDE_IDLE_TIMEOUT, 1, self._on_event)
            manager.request(_KDE_GET_IDLE_TIMEOUT, "nou", notification, seat, NOTIFICATION_TIMEOUT_MS)
            protocol = KDE_IDLE.name
        else:
            # Version 2's input idle ignores inhibitors (a playing video), so it is time since the last input.
            version = min(notifier_version, 2)
            notifier = connection.bind(notifier_name, EXT_IDLE_NOTIFIER, version)
            notification = connection.create(EXT_IDLE_NOTIFICATION, version, self._on_event)
            request = _EXT_GET_INPUT_IDLE_NOTIFICATION if version >= 2 else _EXT_GET_IDLE_NOTIFICATION
            notifier.request(request, "nuo", notification, NOTIFICATION_TIMEOUT_MS, seat)
            protocol = EXT_IDLE_NOTIFIER.name + (" (input idle)" if version >= 2 else "")
        self._notification: Proxy = notification
        self._idle_since = None
        return protocol

    def _on_event(self, name: str, arguments: tuple[Any, ...]) -> None:
        if name in ("idled", "idle"):
            self._idle_since = time.monotonic()
        else:
            self._idle_since = None

    def idle_seconds(self) -> float | None:
        """Seconds since the last input, from the events received so far (none is waited for); None when
        the compositor cannot be reached at the moment (a separate connection is opened again later)."""
        connection = self._connection
        if connection is None or connection.broken:
            connection = self._reconnect()
            if connection is None:
                return None
        try:
            connection.dispatch_pending()
        except WaylandError:
            log.debug("the idle notification's connection broke", exc_info=True)
            return None
        if self._idle_since is None:
            return 0.0
        return NOTIFICATION_TIMEOUT_MS / 1000 + (time.monotonic() - self._idle_since)

    def _reconnect(self) -> WaylandConnection | None:
        if not self._owns_connection or time.monotonic() < self._retry_at:
            return None
        self._retry_at = time.monotonic() + RECONNECT_SECONDS
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        connection: WaylandConnection | None = None
        try:
            connection = WaylandConnection.connect(self._display)
            self._subscribe(connection)
            connection.roundtrip()
        except WaylandError:
            log.debug("reconnecting for idle notifications failed", exc_info=True)
            if connection is not None:
                connection.close()
            return None
        self._connection = connection
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._owns_connection:
            connection.close()
            return
        try:  # shared: leave the connection as it was
            self._notification.request(_DESTROY)
            connection.destroyed(self._notification)
        except WaylandError:
            pass


def _idle_globals(connection: WaylandConnection) -> tuple[tuple[int, int], int] | None:
    """((notifier global, its version, or -1 for org_kde_kwin_idle), first seat global), or None."""
    seat = connection.find_global(WL_SEAT.name)
    if seat is None:
        return None
    ext = connection.find_global(EXT_IDLE_NOTIFIER.name)
    if ext is not None:
        return ext, seat[0]
    kde = connection.find_global(KDE_IDLE.name)
    if kde is not None:
        return (kde[0], -1), seat[0]
    return None
