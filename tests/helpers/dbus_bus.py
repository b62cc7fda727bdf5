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


# A session bus that starts no services on demand: what answers on it is only what the test put there, whatever
# the machine has installed in /usr/share/dbus-1/services.
_NO_ACTIVATION_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def private_bus(dbus_daemon: str, socket: Path, activation: bool = True) -> tuple[str, int]:
    """A session bus of its own, listening on `socket`: its address and the PID to stop it by. Without
    `activation` it starts no service that is not running (the machine's service files are not read)."""
    if activation:
        config = ["--session"]
    else:
        config_file = socket.with_name(f"{socket.name}.conf")
        config_file.write_text(_NO_ACTIVATION_CONFIG)
        config = [f"--config-file={config_file}"]
    done = subprocess.run([dbus_daemon, *config, "--fork", "--print-address=1", "--print-pid=1",
                           f"--address=unix:path={socket}"], capture_output=True, text=True, timeout=15, check=True)
    address, pid = done.stdout.split()[:2]
    return address, int(pid)


class PrivateBus:
    """A bus of its own in `directory`, stopped by its PID."""

    def __init__(self, directory: Path, activation: bool = True) -> None:
        self.address, self.pid = private_bus(require_program("dbus-daemon", "dbus-daemon"), directory / "bus",
                                             activation)

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)


class StandInService:
    """A service owning `name` on the bus at `address`: a thread hands each method call to `answer` and sends
    what it returns (nothing when it returns None). Stopped by `stop`."""

    def __init__(self, address: str, name: str) -> None:
        from jeepney import DBus
        from jeepney.io.blocking import open_dbus_connection

        self._connection = open_dbus_connection(address)
        reply = self._connection.send_and_get_reply(DBus().RequestName(name, 4), timeout=5)  # 4: do not queue
        assert reply.body == (1,), f"{name} is taken on this bus: {reply.body}"
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def answer(self, message: Any) -> Any:
        raise NotImplementedError

    def _serve(self) -> None:
        from jeepney import MessageType

        while not self._stopping:
            try:
                message = self._connection.receive(timeout=0.1)
            except TimeoutError:
                continue
            except (OSError, ValueError):  # the bus went away, or the connection was closed
                return
            if message.header.message_type != MessageType.method_call:
                continue
            reply = self.answer(message)
            if reply is not None:
                self._connection.send(reply)

    def stop(self) -> None:
        self._stopping = True
        self._thread.join(5)
        self._connection.close()


class StandInLogind(StandInService):
    """org.freedesktop.login1 on `bus`: GetSession / GetSessionByPID give one session, whose LockedHint is
    `locked`; every call is counted."""

    def __init__(self, bus: PrivateBus) -> None:
        self.locked = False
        self.calls: list[str] = []
        super().__init__(bus.address, "org.freedesktop.login1")

    def answer(self, message: Any) -> Any:
        from jeepney import new_error, new_method_return

        member = message.header.fields[3]  # HeaderFields.member
        self.calls.append(member)
        if member in ("GetSession", "GetSessionByPID"):
            return new_method_return(message, "o", (SESSION_PATH,))
        if member == "Get" and message.body == ("org.freedesktop.login1.Session", "LockedHint"):
            return new_method_return(message, "v", (("b", self.locked),))
        return new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", ("not here",))
