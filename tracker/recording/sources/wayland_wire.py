"""A minimal client of the Wayland wire protocol, in pure Python: enough to list globals, bind them and read
their events (no file descriptors are passed, so no SCM_RIGHTS).

A message is an 8-byte header (object id; size << 16 | opcode) followed by 32-bit aligned arguments. Every
malformed message, protocol error or lost connection raises WaylandError with one plain sentence; after that
the connection is broken for good and every later call raises the same error.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# libwayland refuses messages larger than this (WL_MAX_MESSAGE_SIZE); so do we.
MAX_MESSAGE_SIZE = 4096
HEADER_SIZE = 8
# Ids from here up are allocated by the compositor (new objects it announces in events).
SERVER_ID_START = 0xFF000000
DEFAULT_TIMEOUT = 2.0
# A non-blocking drain reads at most this much at once, so a flooding compositor cannot keep it busy for ever.
MAX_DRAIN_BYTES = 1 << 20
ERROR_TEXT_LIMIT = 200

_UINT = struct.Struct("=I")
_INT = struct.Struct("=i")
_HEADER = struct.Struct("=II")


class WaylandError(Exception):
    """The connection to the compositor failed or broke: `reason` is a lowercase clause, str() a sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason[:1].upper() + self.reason[1:] + "."


@dataclass(frozen=True)
class Event:
    """An event's name and argument codes: u uint, i int, f fixed, s string, S string or null, a array,
    o object, O object or null, n new object (of interface `creates`)."""

    name: str
    arguments: str = ""
    creates: Interface | None = None


@dataclass(frozen=True)
class Interface:
    name: str
    events: tuple[Event, ...] = ()


WL_CALLBACK = Interface("wl_callback", (Event("done", "u"),))
WL_REGISTRY = Interface("wl_registry", (Event("global", "usu"), Event("global_remove", "u")))
WL_DISPLAY = Interface("wl_display", (Event("error", "ous"), Event("delete_id", "u")))
WL_SEAT = Interface("wl_seat", (Event("capabilities", "u"), Event("name", "s")))

_DISPLAY_SYNC, _DISPLAY_GET_REGISTRY = 0, 1
_REGISTRY_BIND = 0

Listener = Callable[[str, tuple[Any, ...]], None]


@dataclass(eq=False)
class Proxy:
    """A client-side object: its id, interface and version; `listener(event_name, arguments)` gets its events."""

    connection: WaylandConnection
    object_id: int
    interface: Interface
    version: int
    # Objects the compositor creates in an event start without one: the creator's listener sets it.
    listener: Listener | None = None

    def request(self, opcode: int, arguments: str = "", *values: Any) -> None:
        self.connection.send(self, opcode, arguments, *values)


def socket_path(display: str | None = None) -> str:
    """Where the compositor listens: $WAYLAND_DISPLAY (or `display`), absolute or under $XDG_RUNTIME_DIR."""
    name = display or os.environ.get("WAYLAND_DISPLAY")
    if not name:
        raise WaylandError("WAYLAND_DISPLAY is not set")
    if os.path.isabs(name):
        return name
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime_dir:
        raise WaylandError(f"the Wayland display {name} cannot be found because XDG_RUNTIME_DIR is not set")
    return os.path.join(runtime_dir, name)


class WaylandConnection:
    """One connection to a compositor; calls are synchronous and each wait is bounded by `timeout`."""

    def __init__(self, sock: socket.socket, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._socket = sock
        self.timeout = timeout
        self._buffer = bytearray()
        self._objects: dict[int, Proxy] = {}
        # Destroyed by us, not yet released by the compositor: events still on their way to them are dropped.
        self._zombies: set[int] = set()
        self._free_ids: list[int] = []  # released by delete_id, reused like libwayland does
        self._next_id = 2
        self._broken: WaylandError | None = None
        self._closed = False
        self.display = Proxy(self, 1, WL_DISPLAY, 1, self._on_display_event)
        self._objects[1] = self.display
        self._registry: Proxy | None = None
        self.globals: dict[int, tuple[str, int]] = {}  # global name -> (interface, version)

    @classmethod
    def connect(cls, display: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> WaylandConnection:
        path = socket_path(display)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as error:
            sock.close()
            raise WaylandError(f"cannot connect to the Wayland display at {path} ({error.strerror or error})") from None
        return cls(sock, timeout)

    # --- objects -----------------------------------------------------------------------------------------

    def _allocate_id(self) -> int:
        if self._free_ids:
            return self._free_ids.pop()
        object_id = self._next_id
        self._next_id += 1
        return object_id

    def create(self, interface: Interface, version: int, listener: Listener | None = None) -> Proxy:
        """A new client-side object (its id goes into the request that creates it)."""
        proxy = Proxy(self, self._allocate_id(), interface, version, listener)
        self._objects[proxy.object_id] = proxy
        return proxy

    def destroyed(self, proxy: Proxy) -> None:
        """Forget `proxy` once its destructor request was sent."""
        if self._objects.get(proxy.object_id) is not proxy:
            return
        del self._objects[proxy.object_id]
        # The compositor confirms client ids with delete_id; its own ids are free at once (it sends no more).
        self._zombies.add(proxy.object_id)

    def list_globals(self) -> dict[int, tuple[str, int]]:
        """The globals offered (global name -> (interface, version)), kept up to date from then on."""
        if self._registry is None:
            self._registry = self.create(WL_REGISTRY, 1, self._on_registry_event)
            self.display.request(_DISPLAY_GET_REGISTRY, "n", self._registry)
            self.roundtrip()
        return self.globals

    def find_global(self, interface: str) -> tuple[int, int] | None:
        """(global name, version) of the first global offering `interface`, or None."""
        for name, (offered, version) in sorted(self.list_globals().items()):
            if offered == interface:
                return name, version
        return None

    def bind(self, global_name: int, interface: Interface, version: int,
             listener: Listener | None = None) -> Proxy:
        self.list_globals()
        assert self._registry is not None
        proxy = self.create(interface, version, listener)
        self._registry.request(_REGISTRY_BIND, "usun", global_name, interface.name, version, proxy)
        return proxy

    # --- sending -----------------------------------------------------------------------------------------

    def send(self, proxy: Proxy, opcode: int, arguments: str, *values: Any) -> None:
        self._check()
        body = _marshal(arguments, values)
        size = HEADER_SIZE + len(body)
        message = _HEADER.pack(proxy.object_id, (size << 16) | opcode) + body
        try:
            self._socket.settimeout(self.timeout)
            self._socket.sendall(message)
        except OSError as error:
            self._fail(WaylandError(_socket_failure(error)))

    # --- receiving ---------------------------------------------------------------------------------------

    def roundtrip(self, timeout: float | None = None) -> None:
        """Send wl_display.sync and dispatch events until its `done` (all that came before it), within the
        timeout."""
        done: list[bool] = []

        def on_done(name: str, arguments: tuple[Any, ...]) -> None:
            done.append(True)
            self.destroyed(callback)  # the compositor destroys it itself: its delete_id follows

        callback = self.create(WL_CALLBACK, 1, on_done)
        self.display.request(_DISPLAY_SYNC, "n", callback)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not done:
            self._receive(deadline)

    def dispatch_pending(self) -> None:
        """Dispatch the events already received, without waiting for any."""
        self._check()
        received = 0
        while received < MAX_DRAIN_BYTES:
            try:
                self._socket.settimeout(0.0)
                chunk = self._socket.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                self._fail(WaylandError(_socket_failure(error)))
            finally:
                if not self._closed:
                    self._socket.settimeout(self.timeout)
            self._take(chunk)
            received += len(chunk)

    def _receive(self, deadline: float) -> None:
        self._check()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self._fail(WaylandError(f"the Wayland compositor did not answer within {self.timeout:g} s"))
        try:
            self._socket.settimeout(remaining)
            chunk = self._socket.recv(65536)
        except TimeoutError:
            self._fail(WaylandError(f"the Wayland compositor did not answer within {self.timeout:g} s"))
        except OSError as error:
            self._fail(WaylandError(_socket_failure(error)))
        self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        if not chunk:
            if self._buffer:
                self._fail(WaylandError("the Wayland compositor closed the connection in the middle of a message"))
            self._fail(WaylandError("the Wayland compositor closed the connection"))
        self._buffer += chunk
        try:
            self._dispatch_buffer()
        except WaylandError as error:
            self._fail(error)

    def _dispatch_buffer(self) -> None:
        while len(self._buffer) >= HEADER_SIZE:
            object_id, size_and_opcode = _HEADER.unpack_from(self._buffer)
            size, opcode = size_and_opcode >> 16, size_and_opcode & 0xFFFF
            if size < HEADER_SIZE or size > MAX_MESSAGE_SIZE or size % 4:
                raise WaylandError(f"the Wayland compositor sent a message of an impossible size ({size} bytes)")
            if len(self._buffer) < size:
                return
            body = bytes(self._buffer[HEADER_SIZE:size])
            del self._buffer[:size]
            self._dispatch(object_id, opcode, body)

    def _dispatch(self, object_id: int, opcode: int, body: bytes) -> None:
        proxy = self._objects.get(object_id)
        if proxy is None:
            if object_id in self._zombies:
                return
            raise WaylandError(f"the Wayland compositor sent an event to object {object_id}, which does not exist")
        events = proxy.interface.events
        if opcode >= len(events):
            raise WaylandError(f"the Wayland compositor sent an unknown event ({opcode}) to {proxy.interface.name}")
        event = events[opcode]
        values = self._unmarshal(event, body, proxy)
        if proxy.listener is not None:
            proxy.listener(event.name, values)

    def _unmarshal(self, event: Event, body: bytes, proxy: Proxy) -> tuple[Any, ...]:
        where = f"{proxy.interface.name}.{event.name}"
        values: list[Any] = []
        position = 0
        for code in event.arguments:
            if position + 4 > len(body):
                raise WaylandError(f"the Wayland compositor sent a {where} event that is too short")
            (word,) = _UINT.unpack_from(body, position)
            position += 4
            if code == "u":
                values.append(word)
            elif code == "i":
                values.append(_INT.unpack_from(body, position - 4)[0])
            elif code == "f":
                values.append(_INT.unpack_from(body, position - 4)[0] / 256)
            elif code in "oO":
                if word == 0 and code == "o":
                    raise WaylandError(f"the Wayland compositor sent a {where} event without its object")
                values.append(word or None)
            elif code == "n":
                values.append(self._server_object(word, event, where, proxy))
            else:  # s, S, a: a length, then that many bytes padded to 32 bits
                end = position + word
                if word > len(body) - position:
                    raise WaylandError(f"the Wayland compositor sent a {where} event whose length field is wrong")
                data = body[position:end]
                position += (word + 3) & ~3
                values.append(data if code == "a" else _text(data, code == "S", where))
        if position != len(body):
            raise WaylandError(f"the Wayland compositor sent a {where} event longer than its arguments")
        return tuple(values)

    def _server_object(self, object_id: int, event: Event, where: str, creator: Proxy) -> Proxy:
        if object_id < SERVER_ID_START or (object_id in self._objects) or event.creates is None:
            raise WaylandError(f"the Wayland compositor sent a {where} event with an invalid new object id")
        self._zombies.discard(object_id)  # the compositor reuses ids of objects it destroyed
        proxy = Proxy(self, object_id, event.creates, creator.version)
        self._objects[object_id] = proxy
        return proxy

    # --- core events -------------------------------------------------------------------------------------

    def _on_display_event(self, name: str, arguments: tuple[Any, ...]) -> None:
        if name == "delete_id":
            (object_id,) = arguments
            if object_id in self._zombies:
                self._zombies.discard(object_id)
                if object_id < SERVER_ID_START:
                    self._free_ids.append(object_id)
            return
        object_id, code, message = arguments
        target = self._objects.get(object_id)
        on = target.interface.name if target else f"object {object_id}"
        text = " ".join(message.split())[:ERROR_TEXT_LIMIT].rstrip(".")
        raise WaylandError(f"the Wayland compositor reported a protocol error on {on} (code {code}: {text})")

    def _on_registry_event(self, name: str, arguments: tuple[Any, ...]) -> None:
        if name == "global":
            global_name, interface, version = arguments
            self.globals[global_name] = (interface, version)
        else:
            self.globals.pop(arguments[0], None)

    # --- state -------------------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._broken is not None:
            raise self._broken
        if self._closed:
            raise WaylandError("the Wayland connection is closed")

    def _fail(self, error: WaylandError) -> Any:
        """Break the connection for good with `error`, and raise it."""
        if self._broken is None:
            self._broken = error
        raise self._broken

    @property
    def broken(self) -> bool:
        return self._broken is not None or self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._socket.close()


def _marshal(arguments: str, values: tuple[Any, ...]) -> bytes:
    parts: list[bytes] = []
    for code, value in zip(arguments, values, strict=True):
        if code == "u":
            parts.append(_UINT.pack(value))
        elif code == "i":
            parts.append(_INT.pack(value))
        elif code in "onO":
            parts.append(_UINT.pack(value.object_id if isinstance(value, Proxy) else (value or 0)))
        else:  # s, a
            data = value.encode() + b"\0" if code == "s" else bytes(value)
            parts.append(_UINT.pack(len(data)) + data + b"\0" * (-len(data) % 4))
    return b"".join(parts)


def _text(data: bytes, nullable: bool, where: str) -> str | None:
    if not data:
        if nullable:
            return None
        raise WaylandError(f"the Wayland compositor sent a {where} event without its text")
    if data[-1] != 0:
        raise WaylandError(f"the Wayland compositor sent a {where} event with an unterminated string")
    try:
        return data[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise WaylandError(f"the Wayland compositor sent a {where} event with text that is not UTF-8") from None


def _socket_failure(error: OSError) -> str:
    if isinstance(error, (BrokenPipeError, ConnectionResetError)):
        return "the Wayland compositor closed the connection"
    return f"the connection to the Wayland compositor failed ({error.strerror or error})"


def offered_globals(display: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict[str, int]:
    """Interface name -> highest version offered by the compositor at `display` ($WAYLAND_DISPLAY): one
    connection, one round trip. Raises WaylandError."""
    connection = WaylandConnection.connect(display, timeout)
    try:
        offered: dict[str, int] = {}
        for interface, version in connection.list_globals().values():
            offered[interface] = max(version, offered.get(interface, 0))
        return offered
    finally:
        connection.close()
