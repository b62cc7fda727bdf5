"""Whether the screen is locked, as systemd-logind knows it: the session's LockedHint, for desktops whose
compositor tells clients nothing about locking (the wlroots family).

Screen lockers set the hint through logind when they choose to: swaylock does not, so there a lock shows up as
idle time only. A read is one D-Bus round trip on the system bus, asked at most every CHECK_SECONDS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

log = logging.getLogger(__name__)

LOGIND = "org.freedesktop.login1"
CHECK_SECONDS = 5.0
CALL_TIMEOUT = 1.0


class LockedHint:
    """logind's LockedHint for this process's session; False where there is no logind or no session."""

    def __init__(self, bus: str = "SYSTEM") -> None:
        self._bus = bus
        self._connection: Any = None
        self._session_path: str | None = None
        self._locked = False
        self._checked_at: float | None = None
        self._gave_up = False

    def locked(self) -> bool:
        """The last answer, asked again when CHECK_SECONDS have passed; never raises."""
        now = time.monotonic()
        if self._gave_up or (self._checked_at is not None and now - self._checked_at < CHECK_SECONDS):
            return self._locked
        self._checked_at = now
        try:
            self._locked = self._ask()
        except Exception as error:  # no system bus, no logind, no session: the lock is not known here
            log.debug("logind's LockedHint cannot be read: %r", error)
            self._drop()
            self._locked = False
        return self._locked

    def _ask(self) -> bool:
        from jeepney import DBusAddress, DBusErrorResponse, Properties, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        if self._connection is None:
            self._connection = open_dbus_connection(bus=self._bus)
            self._session_path = None
        if self._session_path is None:
            manager = DBusAddress("/org/freedesktop/login1", bus_name=LOGIND,
                                  interface="org.freedesktop.login1.Manager")
            session_id = os.environ.get("XDG_SESSION_ID")
            call = (new_method_call(manager, "GetSession", "s", (session_id,)) if session_id
                    else new_method_call(manager, "GetSessionByPID", "u", (os.getpid(),)))
            try:
                self._session_path = unwrap_msg(self._connection.send_and_get_reply(call, timeout=CALL_TIMEOUT))[0]
            except DBusErrorResponse:
                # No logind, or no session for us (a service outside the login session): asking again will not
                # help.
                self._gave_up = True
                raise
        session = DBusAddress(self._session_path, bus_name=LOGIND, interface="org.freedesktop.login1.Session")
        reply = self._connection.send_and_get_reply(Properties(session).get("LockedHint"), timeout=CALL_TIMEOUT)
        _signature, value = unwrap_msg(reply)[0]
        return bool(value)

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.close()
        self._connection, self._session_path = None, None

    def close(self) -> None:
        self._drop()
