"""A desktop notification server of the tests' own: owns org.freedesktop.Notifications on a real bus and
records each Notify call with its arguments, answering ids as the specification says (or, when told, nothing)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from helpers.dbus_bus import StandInService

NOTIFY_SIGNATURE = "susssasa{sv}i"


@dataclass(frozen=True)
class NotifyCall:
    app_name: str
    replaces_id: int
    app_icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, Any]
    expire_timeout: int
    sender: str  # the caller's unique bus name


class NotificationServer(StandInService):
    """On the bus at `address`: GetCapabilities (`capabilities`), GetServerInformation and Notify; with
    `answering` False it reads every call and answers none (a server that hangs)."""

    def __init__(self, address: str, capabilities: tuple[str, ...] = ("body", "body-markup"),
                 answering: bool = True) -> None:
        self.capabilities = capabilities
        self.answering = answering
        self.calls: list[NotifyCall] = []
        self.methods: list[str] = []  # every method called on the server, in order
        self._ids = itertools.count(1)
        super().__init__(address, "org.freedesktop.Notifications")

    def answer(self, message: Any) -> Any:
        from jeepney import HeaderFields, new_error, new_method_return

        member = message.header.fields[HeaderFields.member]
        self.methods.append(member)
        reply: Any
        if member == "Notify":
            assert message.header.fields[HeaderFields.signature] == NOTIFY_SIGNATURE
            call = NotifyCall(*message.body, sender=message.header.fields[HeaderFields.sender])
            self.calls.append(call)
            # The id of the notification replaced, else a new one.
            reply = new_method_return(message, "u", (call.replaces_id or next(self._ids),))
        elif member == "GetCapabilities":
            reply = new_method_return(message, "as", (list(self.capabilities),))
        elif member == "GetServerInformation":
            reply = new_method_return(message, "ssss", ("tests", "tracker tests", "1", "1.2"))
        else:
            reply = new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no {member} here",))
        return reply if self.answering else None
