"""The Wayland wire client against a fake compositor on a socket pair: the globals it lists, and what hostile or
broken input does (one WaylandError with one plain sentence, never a traceback, never a loop that hangs)."""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.servers import wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.recording.sources.wayland_idle import WaylandIdle
from tracker.recording.sources.wayland_wire import (
    Event,
    Interface,
    WaylandConnection,
    WaylandError,
    offered_globals,
)

WINDOW = Interface("test_window", (Event("title", "s"), Event("state", "a"), Event("child", "n")))
MANAGER = Interface("test_manager", (Event("window", "n", WINDOW), Event("point", "ifO"), Event("label", "S")))


def message(object_id: int, opcode: int, body: bytes = b"") -> bytes:
    return struct.pack("=II", object_id, ((8 + len(body)) << 16) | opcode) + body


def uint(value: int) -> bytes:
    return struct.pack("=I", value)


def string(text: str | None, raw: bytes | None = None) -> bytes:
    if text is None and raw is None:
        return uint(0)
    data = raw if raw is not None else text.encode() + b"\0"  # type: ignore[union-attr]
    return uint(len(data)) + data + b"\0" * (-len(data) % 4)


class FakeCompositor:
    """The server end of a socket pair: reads the client's requests, answers as told."""

    def __init__(self) -> None:
        self.client_end, self.server_end = socket.socketpair()
        self.received = bytearray()
        self.log: list[tuple[int, int, bytes]] = []  # requests answered by answer_syncs_after

    def requests(self) -> list[tuple[int, int, bytes]]:
        """The complete requests read so far: (object id, opcode, body)."""
        self.server_end.settimeout(0.5)
        try:
            while True:
                chunk = self.server_end.recv(65536)
                if not chunk:
                    break
                self.received += chunk
        except TimeoutError:
            pass
        found = []
        position = 0
        while position + 8 <= len(self.received):
            object_id, size_opcode = struct.unpack_from("=II", self.received, position)
            size = size_opcode >> 16
            found.append((object_id, size_opcode & 0xFFFF, bytes(self.received[position + 8:position + size])))
            position += size
        return found

    def send(self, data: bytes) -> None:
        self.server_end.sendall(data)

    def answer_syncs_after(self, events: Callable[[int], bytes]) -> threading.Thread:
        """In the background: for each wl_display.sync, `events(callback id)` then the callback's done."""

        def serve() -> None:
            buffer = bytearray()
            self.server_end.settimeout(5)
            try:
                while True:
                    chunk = self.server_end.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    while len(buffer) >= 8:
                        object_id, size_opcode = struct.unpack_from("=II", buffer)
                        size = size_opcode >> 16
                        if len(buffer) < size:
                            break
                        body = bytes(buffer[8:size])
                        del buffer[:size]
                        self.log.append((object_id, size_opcode & 0xFFFF, body))
                        if object_id == 1 and size_opcode & 0xFFFF == 0:
                            (callback,) = struct.unpack("=I", body)
                            self.send(events(callback) + message(callback, 0, uint(7)) + message(1, 1, uint(callback)))
            except OSError:
                return

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self.server_end.close()
        self.client_end.close()


@pytest.fixture
def fake() -> Iterator[FakeCompositor]:
    compositor = FakeCompositor()
    yield compositor
    compositor.close()


def connected(fake: FakeCompositor, timeout: float = 1.0) -> WaylandConnection:
    return WaylandConnection(fake.client_end, timeout)


def globals_events(registry_id: int = 2) -> bytes:
    return (message(registry_id, 0, uint(1) + string("wl_seat") + uint(7))
            + message(registry_id, 0, uint(2) + string("test_manager") + uint(3))
            + message(registry_id, 0, uint(3) + string("wl_output") + uint(2))
            + message(registry_id, 0, uint(4) + string("wl_output") + uint(4)))


def test_globals_are_listed_with_one_round_trip_and_requests_are_encoded_as_libwayland_does(fake):
    fake.answer_syncs_after(lambda callback: globals_events() if callback == 3 else b"")
    connection = connected(fake)
    assert connection.list_globals() == {1: ("wl_seat", 7), 2: ("test_manager", 3), 3: ("wl_output", 2),
                                         4: ("wl_output", 4)}
    assert connection.find_global("wl_output") == (3, 2)
    assert connection.find_global("zwlr_foreign_toplevel_manager_v1") is None


def test_bind_sends_the_name_interface_version_and_new_id(fake):
    fake.send(globals_events())
    thread = fake.answer_syncs_after(lambda callback: b"")
    connection = connected(fake)
    connection.list_globals()
    manager = connection.bind(2, MANAGER, 3)
    connection.roundtrip()
    connection.close()
    thread.join(5)
    # get_registry(2), sync(3), bind: the callback's id came back through delete_id and is used again.
    assert manager.object_id == 3
    assert fake.log[:3] == [(1, 1, uint(2)), (1, 0, uint(3)),
                            (2, 0, uint(2) + string("test_manager") + uint(3) + uint(3))]


def test_events_are_decoded_and_objects_the_compositor_creates_get_their_events(fake):
    seen: list[tuple[str, tuple[object, ...]]] = []
    fake.send(globals_events())
    connection = connected(fake)
    fake.answer_syncs_after(lambda callback: b"")
    connection.list_globals()

    def on_manager(name: str, arguments: tuple[object, ...]) -> None:
        seen.append((name, arguments))
        if name == "window":
            arguments[0].listener = lambda event, values: seen.append((event, values))  # type: ignore[attr-defined]

    manager = connection.bind(2, MANAGER, 3, on_manager)
    connection.roundtrip()
    window_id = 0xFF000001
    fake.send(message(manager.object_id, 0, uint(window_id))
              + message(window_id, 0, string("Grüße, Welt"))
              + message(window_id, 1, string(None, raw=struct.pack("=III", 1, 2, 4)))
              + message(manager.object_id, 1, struct.pack("=ii", -5, 640) + uint(0))
              + message(manager.object_id, 2, uint(0)))
    connection.roundtrip()
    assert [name for name, _ in seen] == ["window", "title", "state", "point", "label"]
    assert seen[1][1] == ("Grüße, Welt",)
    assert struct.unpack("=III", seen[2][1][0]) == (1, 2, 4)  # type: ignore[arg-type]
    assert seen[3][1] == (-5, 2.5, None)
    assert seen[4][1] == (None,)


def test_events_for_objects_destroyed_but_not_yet_released_are_dropped(fake):
    fake.answer_syncs_after(lambda callback: b"")
    connection = connected(fake)
    connection.list_globals()
    manager = connection.bind(2, MANAGER, 3, lambda name, values: None)
    connection.destroyed(manager)
    fake.send(message(manager.object_id, 2, string("late")))
    connection.roundtrip()  # no error


def test_offered_globals_connects_by_name_under_the_runtime_dir_and_lists_versions(tmp_path: Path, monkeypatch):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "wayland-fake"))
    listener.listen(1)

    def serve() -> None:
        server, _ = listener.accept()
        fake = FakeCompositor()
        fake.server_end = server
        fake.answer_syncs_after(lambda callback: globals_events()).join(5)
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-fake")
    started = time.monotonic()
    assert offered_globals() == {"wl_seat": 7, "test_manager": 3, "wl_output": 4}
    assert time.monotonic() - started < 0.5
    thread.join(5)
    listener.close()


@pytest.mark.parametrize(("display", "runtime_dir", "expected"), [
    (None, "/run/user/1", "WAYLAND_DISPLAY is not set."),
    ("wayland-9", None, "The Wayland display wayland-9 cannot be found because XDG_RUNTIME_DIR is not set."),
    ("/nonexistent/wayland-9", None, "Cannot connect to the Wayland display at /nonexistent/wayland-9 "
                                     "(No such file or directory)."),
])
def test_a_display_that_cannot_be_reached_is_one_sentence(monkeypatch, display, runtime_dir, expected):
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if runtime_dir:
        monkeypatch.setenv("XDG_RUNTIME_DIR", runtime_dir)
    else:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    with pytest.raises(WaylandError) as raised:
        offered_globals(display)
    assert str(raised.value) == expected


def broken_by(fake: FakeCompositor, data: bytes, then_close: bool = False, timeout: float = 0.5) -> str:
    """The one sentence a round trip raises when the compositor sends `data` (and maybe hangs up)."""
    connection = connected(fake, timeout)
    connection.create(MANAGER, 1, lambda name, values: None)  # object 2
    fake.send(data)
    if then_close:
        fake.server_end.shutdown(socket.SHUT_WR)
    with pytest.raises(WaylandError) as raised:
        connection.roundtrip()
    # Broken for good: the same sentence again, at once.
    with pytest.raises(WaylandError) as again:
        connection.dispatch_pending()
    assert str(again.value) == str(raised.value)
    return str(raised.value)


@pytest.mark.parametrize(("data", "then_close", "expected"), [
    (b"", True, "The Wayland compositor closed the connection."),
    (message(2, 2, string("label"))[:10], True,
     "The Wayland compositor closed the connection in the middle of a message."),
    (struct.pack("=II", 2, (5000 << 16) | 2), False,
     "The Wayland compositor sent a message of an impossible size (5000 bytes)."),
    (struct.pack("=II", 2, (4 << 16) | 2), False,
     "The Wayland compositor sent a message of an impossible size (4 bytes)."),
    (struct.pack("=II", 2, (10 << 16) | 2) + b"\0" * 4, False,
     "The Wayland compositor sent a message of an impossible size (10 bytes)."),
    (message(2, 2, uint(100) + b"abcd"), False,
     "The Wayland compositor sent a test_manager.label event whose length field is wrong."),
    (message(2, 2, string(None, raw=b"\xff\xfe\0")), False,
     "The Wayland compositor sent a test_manager.label event with text that is not UTF-8."),
    (message(2, 2, string(None, raw=b"abc")), False,
     "The Wayland compositor sent a test_manager.label event with an unterminated string."),
    (message(2, 1, uint(1)), False, "The Wayland compositor sent a test_manager.point event that is too short."),
    (message(2, 2, string("a") + uint(9)), False,
     "The Wayland compositor sent a test_manager.label event longer than its arguments."),
    (message(2, 0, uint(5)), False,
     "The Wayland compositor sent a test_manager.window event with an invalid new object id."),
    (message(77, 0), False, "The Wayland compositor sent an event to object 77, which does not exist."),
    (message(2, 9), False, "The Wayland compositor sent an unknown event (9) to test_manager."),
    (message(1, 0, uint(2) + uint(3) + string("invalid arguments\nfor this\trequest.")), False,
     "The Wayland compositor reported a protocol error on test_manager (code 3: invalid arguments for this "
     "request)."),
])
def test_broken_input_from_the_compositor_is_one_sentence(fake, data, then_close, expected):
    assert broken_by(fake, data, then_close) == expected


def test_a_compositor_that_never_answers_is_given_up_on_after_the_timeout(fake):
    started = time.monotonic()
    assert broken_by(fake, b"", timeout=0.3) == "The Wayland compositor did not answer within 0.3 s."
    assert time.monotonic() - started < 2


def test_draining_pending_events_never_waits(fake):
    connection = connected(fake, timeout=5)
    started = time.monotonic()
    connection.dispatch_pending()
    assert time.monotonic() - started < 0.5


def test_a_flood_of_events_is_drained_in_bounded_pieces(fake):
    seen: list[str] = []
    connection = connected(fake)
    connection.create(MANAGER, 1, lambda name, values: seen.append(name))
    flood = message(2, 2, uint(0)) * 2000

    def pour() -> None:
        for _ in range(200):
            try:
                fake.send(flood)
            except OSError:
                return

    thread = threading.Thread(target=pour, daemon=True)
    thread.start()
    select.select([fake.client_end], [], [], 5)
    started = time.monotonic()
    connection.dispatch_pending()
    assert time.monotonic() - started < 5 and seen
    connection.close()
    fake.server_end.close()
    thread.join(5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=600), pieces=st.integers(min_value=1, max_value=4))
def test_garbage_gives_events_or_one_sentence_never_a_traceback_or_a_hang(garbage, pieces):
    compositor = FakeCompositor()
    try:
        connection = WaylandConnection(compositor.client_end, 0.2)
        connection.create(MANAGER, 1, lambda name, values: None)
        connection.create(WINDOW, 1, lambda name, values: None)
        size = max(1, len(garbage) // pieces)
        for start in range(0, len(garbage), size):
            compositor.send(garbage[start:start + size])
        compositor.server_end.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        with pytest.raises(WaylandError) as raised:
            for _ in range(len(garbage) + 2):
                connection.dispatch_pending()
                connection.roundtrip()
        text = str(raised.value)
        assert text.startswith("The Wayland compositor") and text.endswith(".") and "\n" not in text
        assert time.monotonic() - started < 2
    finally:
        compositor.close()


def idle_globals(*offered: tuple[str, int]) -> Callable[[int], bytes]:
    """Events for the first sync: the registry (object 2) lists wl_seat and `offered`."""
    listed = [("wl_seat", 7), *offered]

    def events(callback: int) -> bytes:
        if callback != 3:
            return b""
        return b"".join(message(2, 0, uint(number) + string(interface) + uint(version))
                        for number, (interface, version) in enumerate(listed, start=1))

    return events


def test_no_idle_protocol_offered_gives_no_idle_watcher(fake):
    fake.answer_syncs_after(idle_globals(("zwlr_foreign_toplevel_manager_v1", 3)))
    assert WaylandIdle.open(connected(fake)) is None


@pytest.mark.parametrize(("offered", "protocol", "request_opcode", "arguments"), [
    # ext-idle-notify v2: input idle (inhibitors ignored), (new_id, timeout, seat)
    (("ext_idle_notifier_v1", 2), "ext_idle_notifier_v1 (input idle)", 2, "nts"),
    (("ext_idle_notifier_v1", 1), "ext_idle_notifier_v1", 1, "nts"),
    # KDE's: (new_id, seat, timeout)
    (("org_kde_kwin_idle", 1), "org_kde_kwin_idle", 0, "nst"),
])
def test_idle_time_is_zero_while_active_and_one_second_plus_the_time_since_idled(
        fake, offered, protocol, request_opcode, arguments):
    fake.answer_syncs_after(idle_globals(offered))
    connection = connected(fake)
    idle = WaylandIdle.open(connection)
    assert idle is not None and idle.protocol == protocol
    connection.roundtrip()
    binds = [body for object_id, opcode, body in fake.log if object_id == 2 and opcode == 0]
    seat_id = struct.unpack_from("=I", binds[0], len(binds[0]) - 4)[0]
    notifier_id = struct.unpack_from("=I", binds[1], len(binds[1]) - 4)[0]
    (body,) = [body for object_id, opcode, body in fake.log if object_id == notifier_id]
    assert [opcode for object_id, opcode, _ in fake.log if object_id == notifier_id] == [request_opcode]
    notification_id = struct.unpack_from("=I", body)[0]
    values = dict(zip(arguments, struct.unpack("=III", body), strict=True))
    assert values["s"] == seat_id and values["t"] == 1000 and values["n"] == notification_id
    assert idle.idle_seconds() == 0.0  # nothing said yet: active
    fake.send(message(notification_id, 0))  # idled
    connection.roundtrip()
    time.sleep(0.2)
    first = idle.idle_seconds()
    assert first is not None and 1.2 <= first < 2
    fake.send(message(notification_id, 1))  # resumed
    wait_until(lambda: idle.idle_seconds() == 0.0, 5, "resumed")
    idle.close()
    fake.server_end.close()
    assert idle.idle_seconds() is None  # closed: nothing to say
