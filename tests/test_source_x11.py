"""The X11 source against a real X server (Xvfb + openbox), with real xterm windows."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from helpers.servers import Desktop, require_program, wait_until
from Xlib import X, Xatom
from Xlib import display as xdisplay
from Xlib.xobject.drawable import Window

from tracker.recording.sources import SourceUnavailable
from tracker.recording.sources.x11 import X11Source, decode_compound_text

_mouse_positions = itertools.cycle([(100, 100), (300, 200)])


@pytest.fixture
def notices() -> list[str]:
    return []


@pytest.fixture
def source(desktop: Desktop, notices: list[str]) -> Iterator[X11Source]:
    opened = X11Source(notices.append, display=desktop.display)
    yield opened
    opened.close()


@pytest.fixture
def x_client(desktop: Desktop) -> Iterator[xdisplay.Display]:
    """A second client of the test desktop, for windows and properties the tests make themselves."""
    connection = xdisplay.Display(desktop.display)
    yield connection
    connection.close()


@contextmanager
def pretend_active(connection: xdisplay.Display, window_id: int) -> Iterator[None]:
    """Set _NET_ACTIVE_WINDOW as a window manager would, and put back the real one afterwards."""
    root = connection.screen().root
    atom = connection.intern_atom("_NET_ACTIVE_WINDOW")
    before = root.get_full_property(atom, Xatom.WINDOW)
    root.change_property(atom, Xatom.WINDOW, 32, [window_id])
    connection.sync()
    try:
        yield
    finally:
        root.change_property(atom, Xatom.WINDOW, 32, list(before.value) if before else [X.NONE])
        connection.sync()


def make_window(connection: xdisplay.Display, parent: Window | None = None) -> Window:
    """An unmapped window: the window manager leaves it alone, the source can still read it."""
    parent = parent or connection.screen().root
    return parent.create_window(0, 0, 10, 10, 0, X.CopyFromParent)


def move_mouse(desktop: Desktop) -> None:
    x, y = next(_mouse_positions)
    subprocess.run([desktop.xdotool, "mousemove", str(x), str(y)], env=desktop.env, check=True, timeout=15)


def test_reads_app_and_exact_title_of_each_activated_window(desktop: Desktop, source: X11Source) -> None:
    windows = [
        ("MailAppTest", "Inbox — 3 unread 📬 résumé ✓"),
        ("EditorAppTest", 'notes.txt: "quoted", with, commas'),
        ("ShellAppTest", "plain ascii"),
    ]
    opened = [(desktop.open_window(app, title), app, title) for app, title in windows]
    for window, app, title in [*opened, opened[0]]:
        desktop.activate(window)
        sample = source.read()
        assert sample is not None
        assert (sample.app, sample.title, sample.url, sample.private) == (app, title, None, False)
        assert abs(sample.time - datetime.now(timezone.utc)) < timedelta(seconds=5)
        assert sample.locked is False
    for window, _, _ in opened:
        desktop.close_window(window)


def test_window_killed_right_before_read_does_not_stop_the_recording(
        desktop: Desktop, source: X11Source) -> None:
    survivor = desktop.open_window("SurvivorAppTest", "still here")
    doomed = desktop.open_window("DoomedAppTest", "about to close")
    desktop.activate(doomed)
    assert source.read() is not None
    desktop.close_window(doomed)
    sample = source.read()
    assert sample is None or sample.app in ("DoomedAppTest", "SurvivorAppTest")
    desktop.activate(survivor)
    sample = source.read()
    assert sample is not None and (sample.app, sample.title) == ("SurvivorAppTest", "still here")
    desktop.close_window(survivor)


def test_window_destroyed_between_reads_keeps_its_app_without_title(
        source: X11Source, x_client: xdisplay.Display) -> None:
    window = make_window(x_client)
    window.set_wm_class("brief", "BriefAppTest")
    window.set_wm_name("short-lived")
    x_client.sync()
    with pretend_active(x_client, window.id):
        first = source.read()
        window.destroy()
        x_client.sync()
        second = source.read()
    assert first is not None and (first.app, first.title) == ("BriefAppTest", "short-lived")
    assert second is not None and (second.app, second.title) == ("BriefAppTest", None)


def test_active_window_that_never_existed_reads_as_nothing(
        source: X11Source, x_client: xdisplay.Display) -> None:
    gone = make_window(x_client)
    gone.destroy()
    x_client.sync()
    with pretend_active(x_client, gone.id):
        assert source.read() is None


def test_no_active_window_reads_as_nothing(source: X11Source, x_client: xdisplay.Display) -> None:
    with pretend_active(x_client, X.NONE):
        assert source.read() is None


def test_inner_window_without_class_takes_app_from_its_parent(
        source: X11Source, x_client: xdisplay.Display) -> None:
    top_level = make_window(x_client)
    top_level.set_wm_class("parentapp", "ParentAppTest")
    inner = make_window(x_client, parent=top_level)
    inner.set_wm_name("legacy name")
    inner.change_property(x_client.intern_atom("_NET_WM_NAME"), x_client.intern_atom("UTF8_STRING"), 8,
                          "Größe ✓ 🎉".encode())
    classless = make_window(x_client)
    classless.set_wm_name("nobody's window")
    x_client.sync()
    try:
        with pretend_active(x_client, inner.id):
            sample = source.read()
        assert sample is not None
        assert (sample.app, sample.title) == ("ParentAppTest", "Größe ✓ 🎉")
        with pretend_active(x_client, classless.id):
            assert source.read() is None
    finally:
        top_level.destroy()
        classless.destroy()
        x_client.sync()


def test_title_change_of_the_active_window_is_read_at_the_next_sample(
        source: X11Source, x_client: xdisplay.Display) -> None:
    window = make_window(x_client)
    window.set_wm_class("renamer", "RenamerAppTest")
    net_wm_name, utf8 = x_client.intern_atom("_NET_WM_NAME"), x_client.intern_atom("UTF8_STRING")
    window.change_property(net_wm_name, utf8, 8, b"draft.txt")
    x_client.sync()
    try:
        with pretend_active(x_client, window.id):
            titles = [source.read()]
            for title in ("draft.txt — saved ✓", "report.pdf", "report.pdf"):
                window.change_property(net_wm_name, utf8, 8, title.encode())
                x_client.sync()
                titles.append(source.read())
            window.delete_property(net_wm_name)  # a window that gives up _NET_WM_NAME: WM_NAME is its title
            window.set_wm_name("legacy title")
            x_client.sync()
            titles.append(source.read())
    finally:
        window.destroy()
        x_client.sync()
    assert [(s.app, s.title) for s in titles if s] == [
        ("RenamerAppTest", title) for title in
        ("draft.txt", "draft.txt — saved ✓", "report.pdf", "report.pdf", "legacy title")]


def test_a_sample_without_changes_costs_one_request_to_the_x_server(
        desktop: Desktop, source: X11Source) -> None:
    # The screensaver query only: the window and its title are read again when the server says they changed.
    desktop.activate(desktop.open_window("SteadyAppTest", "nothing changes here"))
    wait_until(lambda: (sample := source.read()) is not None and sample.app == "SteadyAppTest", 10,
               "the window to be active")
    source.read()
    before = source._display.display.request_serial
    samples = [source.read() for _ in range(20)]
    assert {(s.app, s.title) for s in samples if s} == {("SteadyAppTest", "nothing changes here")}
    assert source._display.display.request_serial - before <= 20


def test_going_back_to_a_window_reads_only_which_window_is_active(desktop: Desktop, source: X11Source) -> None:
    first, second = desktop.open_window("FirstAppTest", "one"), desktop.open_window("SecondAppTest", "two")

    def requests_to_read(window: int, app: str, title: str) -> int:
        desktop.activate(window)
        before = source._display.display.request_serial
        sample = source.read()
        assert sample is not None and (sample.app, sample.title) == (app, title)
        return source._display.display.request_serial - before

    requests_to_read(first, "FirstAppTest", "one")
    first_visit = requests_to_read(second, "SecondAppTest", "two")
    returns = [requests_to_read(first, "FirstAppTest", "one"), requests_to_read(second, "SecondAppTest", "two")]
    assert first_visit > 2 and returns == [2, 2]  # the screensaver query, and _NET_ACTIVE_WINDOW


def test_a_title_changed_while_its_window_was_behind_is_read_when_it_comes_back(
        desktop: Desktop, source: X11Source, x_client: xdisplay.Display) -> None:
    behind, front = desktop.open_window("BehindAppTest", "before"), desktop.open_window("FrontAppTest", "front")
    for window in (behind, front):
        desktop.activate(window)
        assert source.read() is not None
    net_wm_name, utf8 = x_client.intern_atom("_NET_WM_NAME"), x_client.intern_atom("UTF8_STRING")
    x_client.create_resource_object("window", int(behind)).change_property(net_wm_name, utf8, 8, "after ✓".encode())
    x_client.sync()
    assert source.read() is not None
    desktop.activate(behind)
    sample = source.read()
    assert sample is not None and (sample.app, sample.title) == ("BehindAppTest", "after ✓")


def test_idle_time_grows_without_input_and_drops_after_mouse_move(
        desktop: Desktop, source: X11Source) -> None:
    desktop.activate(desktop.open_window("IdleAppTest", "waiting"))
    move_mouse(desktop)

    def idle_seconds() -> float:
        sample = source.read()
        assert sample is not None and sample.idle_seconds is not None
        return sample.idle_seconds

    grown = wait_until(lambda: (idle := idle_seconds()) >= 1.0 and idle, 10, "idle time to reach 1 s")
    move_mouse(desktop)
    wait_until(lambda: idle_seconds() < grown - 0.5, 10, "idle time to drop after the mouse moved")


def test_active_screen_saver_reads_as_locked(
        desktop: Desktop, source: X11Source, x_client: xdisplay.Display) -> None:
    desktop.activate(desktop.open_window("LockAppTest", "before the lock"))
    x_client.force_screen_saver(X.ScreenSaverActive)
    x_client.sync()
    try:
        sample = source.read()
        assert sample is not None and sample.locked is True
    finally:
        x_client.force_screen_saver(X.ScreenSaverReset)
        x_client.sync()
    sample = source.read()
    assert sample is not None and sample.locked is False


@contextmanager
def bare_x_server(*options: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """An Xvfb of its own, without a window manager: the process and its display name."""
    xvfb = require_program("Xvfb", "xvfb")
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-nolisten", "tcp", *options],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    try:
        yield process, f":{number}"
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def server_without_screensaver() -> Iterator[str]:
    with bare_x_server("-extension", "MIT-SCREEN-SAVER") as (_, display):
        yield display


def test_without_screensaver_extension_idle_is_unknown_user_told_once_and_renames_seen(
        server_without_screensaver: str) -> None:
    notices: list[str] = []
    source = X11Source(notices.append, display=server_without_screensaver)
    connection = xdisplay.Display(server_without_screensaver)
    try:
        window = make_window(connection)
        window.set_wm_class("plain", "PlainAppTest")
        with pretend_active(connection, window.id):
            samples = [source.read(), source.read()]
            window.set_wm_name("renamed")
            connection.sync()
            samples.append(source.read())
    finally:
        connection.close()
        source.close()
    assert [(s.app, s.title, s.idle_seconds, s.locked) for s in samples if s] == [
        ("PlainAppTest", None, None, False)] * 2 + [("PlainAppTest", "renamed", None, False)]
    assert len(notices) == 1
    assert "idle time cannot be detected" in notices[0]


def test_x_server_going_away_stops_reads_quietly_and_tells_once() -> None:
    notices: list[str] = []
    with bare_x_server() as (server, display):
        source = X11Source(notices.append, display=display)
        server.kill()
        server.wait(10)
        assert [source.read(), source.read()] == [None, None]
        source.close()
    assert len(notices) == 1 and display in notices[0] and "restart tracker" in notices[0]


def test_missing_display_is_unavailable_with_a_plain_sentence() -> None:
    with pytest.raises(SourceUnavailable) as raised:
        X11Source(lambda message: None, display=":999")
    message = str(raised.value)
    assert ":999" in message and "--source demo" in message
    assert "\n" not in message and message.endswith(".")


def test_compound_text_titles_decode_across_charset_switches() -> None:
    # What xterm writes for "héllo 🎉 ok": Latin-1, then a UTF-8 segment, then back.
    assert decode_compound_text(b"h\xe9llo \x1b%G\xf0\x9f\x8e\x89\x1b%@ ok") == "héllo 🎉 ok"
    assert decode_compound_text(b"\x1b-F\xe1\xe2\xe3") == "αβγ"
