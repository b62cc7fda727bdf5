"""A private D-Bus bus (a real dbus-daemon on a socket in a temporary directory), and a stand-in logind on it:
the system bus's login manager answering for one session, whose LockedHint the test sets."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from helpers.servers import require_program

SESSION_PATH = "/org/freedesktop/login1/session/_31"


def private_bus(dbus_daemon: str, socket: Path) -> tuple[str, int]:
    """A session bus of its own, listening on `socket`: its address and the PID to stop it by."""
    done = subprocess.run([dbus_daemon, "--session", "--fork", "--print-address=1", "--print-pid=1",
                           f"--address=unix:path={socket}"], capture_output=True, text=True, timeout=15, check=True)
    address, pid = done.stdout.split()[:2]
    return address, int(pid)


class PrivateBus:
    """A bus of its own in `directory`, stopped by its PID."""

    def __init__(self, directory: Path) -> None:
        self.address, self.pid = private_bus(require_program("dbus-daemon", "dbus-daemon"), directory / "bus")

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)


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
