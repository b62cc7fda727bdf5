"""A private D-Bus bus (a real dbus-daemon on a socket in a temporary directory), and a stand-in logind on it:
the system bus's login manager answering for one session, whose LockedHint the test sets."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

from helpers.servers import require_program, wait_until

SESSION_PATH = "/org/freedesktop/login1/session/_31"


class PrivateBus:
    def __init__(self, directory: Path) -> None:
        self.socket = directory / "bus"
        self.address = f"unix:path={self.socket}"
        self.process = subprocess.Popen(
            [require_program("dbus-daemon", "dbus-daemon"), "--session", "--nofork", "--nopidfile",
             f"--address={self.address}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(self.socket.exists, 10, "the D-Bus socket")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class StandInLogind:
    """org.freedesktop.login1 on `bus`: GetSession / GetSessionByPID give one session, whose LockedHint is
    `locked`; every call is counted."""

    def __init__(self, bus: PrivateBus) -> None:
        from jeepney.io.blocking import open_dbus_connection

        self.locked = False
        self.calls: list[str] = []
        self._connection = open_dbus_connection(bus.address)
        from jeepney import DBus

        self._connection.send_and_get_reply(DBus().RequestName("org.freedesktop.login1"), timeout=5)
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from jeepney import MessageType, new_error, new_method_return

        while not self._stopping:
            try:
                message = self._connection.receive(timeout=0.1)
            except TimeoutError:
                continue
            except OSError:
                return
            if message.header.message_type != MessageType.method_call:
                continue
            member = message.header.fields[3]  # HeaderFields.member
            self.calls.append(member)
            reply: Any
            if member in ("GetSession", "GetSessionByPID"):
                reply = new_method_return(message, "o", (SESSION_PATH,))
            elif member == "Get" and message.body == ("org.freedesktop.login1.Session", "LockedHint"):
                reply = new_method_return(message, "v", (("b", self.locked),))
            else:
                reply = new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", ("not here",))
            self._connection.send(reply)

    def stop(self) -> None:
        self._stopping = True
        self._thread.join(5)
        self._connection.close()
