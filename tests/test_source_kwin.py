"""The KWin source against a real KWin (kwin_wayland --virtual, on a private session bus), with real Wayland
windows; and `tracker run --source kwin` sending to a real InfluxDB 1.x."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers.dbus_bus import private_bus
from helpers.desktop_run import TrackerOn
from helpers.kwin import KWinDesktop
from helpers.servers import InfluxDB1, require_program, wait_until
from helpers.wayland_window import WaylandWindow

from tracker import paths
from tracker.model import Sample
from tracker.recording.sources import SourceUnavailable
from tracker.recording.sources.choose import choose_source, open_source
from tracker.recording.sources.kwin import (
    CALLBACK_INTERFACE,
    CALLBACK_METHOD,
    CALLBACK_PATH,
    SCRIPT_NAME,
    KWinSource,
    load_script,
    script_loaded,
    script_text,
)

_app_numbers = itertools.count()


@pytest.fixture(scope="module")
def kwin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KWinDesktop]:
    started = KWinDesktop(tmp_path_factory.mktemp("kwin")).start()
    yield started
    started.stop()


@pytest.fixture
def desktop(kwin: KWinDesktop) -> Iterator[KWinDesktop]:
    """The module's KWin, with the windows a test opened closed after it (KWin started again if a test
    stopped it)."""
    if kwin.kwin_process is None:
        kwin.start_kwin()
    yield kwin
    for window in kwin.windows:
        window.close()
    kwin.windows.clear()


@pytest.fixture
def notices() -> list[str]:
    return []


@pytest.fixture
def source(desktop: KWinDesktop, notices: list[str]) -> Iterator[KWinSource]:
    opened = KWinSource(notices.append, bus=desktop.bus_address, wayland_display=desktop.wayland_socket)
    yield opened
    opened.close()


def app_id(name: str) -> str:
    """An app id no other test of this KWin used: KWin keeps closing windows for a moment."""
    return f"org.test.{name}{next(_app_numbers)}"


@contextmanager
def window_on_a_kwin_of_its_own(directory: Path, notices: list[str], name: str,
                                **options: bool) -> Iterator[tuple[KWinDesktop, KWinSource]]:
    """A KWin started with `options` for one test (one that locks for good, or one nested in Xvfb), showing one
    window, and the source reading it; both stopped afterwards."""
    desktop = KWinDesktop(directory, **options).start()
    try:
        app = app_id(name)
        desktop.open_window(app, f"the {name} window")
        source = KWinSource(notices.append, bus=desktop.bus_address, wayland_display=desktop.wayland_socket)
        try:
            assert (sample := source.read()) is not None and sample.app == app
            yield desktop, source
        finally:
            source.close()
    finally:
        desktop.stop()


def read_until(source: KWinSource, expected: tuple[str, str | None] | None, what: str) -> Sample | None:
    """The first read giving `expected` (app, title), or None when `expected` is None."""

    def matches() -> Sample | bool:
        sample = source.read()
        if expected is None:
            return sample is None
        return sample if sample is not None and (sample.app, sample.title) == expected else False

    found = wait_until(matches, 15, what)
    return found if isinstance(found, Sample) else None


def test_auto_reads_kwin_in_a_plasma_session_whatever_xwayland_s_display_says(
        desktop: KWinDesktop, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in desktop.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DISPLAY", ":7")  # Xwayland's, as a Plasma session sets it: not the desktop to read
    monkeypatch.delenv("XDG_CURRENT_DESKTOP")  # found on the bus, whatever the variable says
    app = app_id("Auto")
    desktop.open_window(app, "found by auto")
    chosen = choose_source("auto", print)
    try:
        assert (chosen.source.name, chosen.why) == ("kwin", "KWin is on the session bus (org.kde.KWin)")
        read_until(chosen.source, (app, "found by auto"), "the window through auto")
    finally:
        chosen.source.close()


def test_the_window_active_when_the_source_opens_is_the_first_read(desktop: KWinDesktop,
                                                                    notices: list[str]) -> None:
    app = app_id("Ready")
    desktop.open_window(app, "already here — ✓ résumé")
    desktop.activate(app)
    source = KWinSource(notices.append, bus=desktop.bus_address, wayland_display=desktop.wayland_socket)
    try:
        sample = source.read()
        assert sample is not None and (sample.app, sample.title) == (app, "already here — ✓ résumé")
        assert sample.locked is False and sample.time.tzinfo is not None
    finally:
        source.close()
    assert notices == []


def test_switching_renaming_and_closing_windows(desktop: KWinDesktop, source: KWinSource) -> None:
    first, second = app_id("First"), app_id("Second")
    first_window = desktop.open_window(first, "first window")
    second_window = desktop.open_window(second, "second window")
    read_until(source, (second, "second window"), "the new window, focused by KWin")
    desktop.activate(first)
    read_until(source, (first, "first window"), "the first window again")
    first_window.rename("first window, renamed")
    read_until(source, (first, "first window, renamed"), "the focused window's new title")
    # A window in the background renames itself: the focused one is still what is read.
    second_window.rename("second window, renamed in the background")
    wait_until(lambda: desktop.run_script(f"activate({first!r})") == [first], 5, "first still focused")
    assert (sample := source.read()) is not None and (sample.app, sample.title) == (first, "first window, renamed")
    desktop.activate(second)
    read_until(source, (second, "second window, renamed in the background"), "the second window's title")
    # The focused window closes: KWin focuses the other one.
    second_window.close()
    read_until(source, (first, "first window, renamed"), "the remaining window")
    first_window.close()
    read_until(source, None, "nothing focused")


def test_idle_time_grows_without_input(desktop: KWinDesktop, source: KWinSource) -> None:
    app = app_id("Idle")
    desktop.open_window(app, "nobody types here")
    # KWin --virtual has no input devices: the 1 s notification fires, and the idle time keeps growing.
    first = wait_until(lambda: (sample := source.read()) is not None and sample.app == app
                       and (sample.idle_seconds or 0) >= 1 and sample, 15, "idle time")
    later = wait_until(lambda: (sample := source.read()) is not None
                       and (sample.idle_seconds or 0) >= first.idle_seconds + 0.5 and sample, 15, "more idle time")
    assert later.idle_seconds - first.idle_seconds <= (later.time - first.time).total_seconds() + 0.1


def test_input_sets_idle_time_back_to_zero(tmp_path: Path, notices: list[str]) -> None:
    # KWin in an Xvfb window: the pointer moving over it is input KWin sees.
    with window_on_a_kwin_of_its_own(tmp_path, notices, "Resume", nested_in_x=True) as (nested, source):
        wait_until(lambda: (sample := source.read()) is not None and (sample.idle_seconds or 0) >= 1.5, 15,
                   "idle time without input")
        nested.touch()
        wait_until(lambda: (sample := source.read()) is not None and sample.idle_seconds == 0, 10,
                   "idle time back to 0 after input")
    assert notices == []


def test_an_x11_window_through_xwayland_is_read_too(tmp_path: Path, notices: list[str]) -> None:
    xterm = require_program("xterm", "xterm")
    require_program("Xwayland", "xwayland")
    with window_on_a_kwin_of_its_own(tmp_path, notices, "Native", xwayland=True) as (desktop, source):
        display = desktop.xwayland_display()
        assert display is not None
        x11_app = subprocess.Popen([xterm, "-class", "XTermKWinTest", "-T", "an X11 title", "-e", "sleep", "600"],
                                   env=desktop.env | {"DISPLAY": display}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            # KWin gives X11 windows their WM_CLASS class in lower case (category rules match apps in any case).
            read_until(source, ("xtermkwintest", "an X11 title"), "the xterm, focused when it maps")
        finally:
            x11_app.kill()
            x11_app.wait()
    assert notices == []


def test_windows_of_the_same_title_are_read_with_that_title(desktop: KWinDesktop, source: KWinSource) -> None:
    # KWin shows the second as "twin title <2>"; the window's own title is what the user wrote.
    first, second = app_id("Twin"), app_id("Twin")
    desktop.open_window(first, "twin title")
    desktop.open_window(second, "twin title")
    read_until(source, (second, "twin title"), "the second window, by its own title")
    desktop.activate(first)
    read_until(source, (first, "twin title"), "the first window")


def test_a_stale_tracker_script_is_replaced(desktop: KWinDesktop, notices: list[str]) -> None:
    from jeepney import MatchRule

    app = app_id("Stale")
    window = desktop.open_window(app, "stale test")
    # A crashed run left its script behind, still calling its own (here: a live, silent) connection.
    with desktop.connection() as crashed, crashed.filter(MatchRule(type="method_call"), bufsize=100) as calls:
        load_script(crashed, script_text(crashed.unique_name), SCRIPT_NAME)
        crashed.recv_until_filtered(calls, timeout=10)  # its first push
        source = KWinSource(notices.append, bus=desktop.bus_address, wayland_display=desktop.wayland_socket)
        try:
            assert (sample := source.read()) is not None and sample.app == app
            window.rename("stale test, renamed")
            read_until(source, (app, "stale test, renamed"), "the rename, through the new script")
            with pytest.raises(TimeoutError):  # the old script is gone: nothing more reaches the crashed run
                crashed.recv_until_filtered(calls, timeout=0.5)
        finally:
            source.close()
    assert notices == []


def test_a_second_source_next_to_a_running_one_leaves_it_working(desktop: KWinDesktop, source: KWinSource,
                                                                  notices: list[str]) -> None:
    # `tracker doctor` opens and closes a source while `tracker run` records.
    app = app_id("Shared")
    window = desktop.open_window(app, "seen by both")
    read_until(source, (app, "seen by both"), "the window, by the running source")
    checking = KWinSource(notices.append, bus=desktop.bus_address, wayland_display=desktop.wayland_socket)
    try:
        assert (sample := checking.read()) is not None and (sample.app, sample.title) == (app, "seen by both")
    finally:
        checking.close()
    window.rename("renamed after the check")
    read_until(source, (app, "renamed after the check"), "the rename, by the running source")
    with desktop.connection() as connection:
        assert script_loaded(connection, SCRIPT_NAME)
    assert notices == []


def test_another_caller_cannot_pretend_to_be_kwin(desktop: KWinDesktop, source: KWinSource) -> None:
    from jeepney import DBusAddress, MessageType, new_method_call

    app = app_id("Real")
    desktop.open_window(app, "the real window")
    read_until(source, (app, "the real window"), "the real window")
    replies: list[Any] = []

    def spoof() -> None:
        with desktop.connection() as spoofer:
            call = new_method_call(DBusAddress(CALLBACK_PATH, bus_name=source._connection.unique_name,
                                               interface=CALLBACK_INTERFACE),
                                   CALLBACK_METHOD, "sss", ("org.evil.App", "org.evil.App", "spoofed title"))
            replies.append(spoofer.send_and_get_reply(call, timeout=10))

    spoofer = threading.Thread(target=spoof)
    spoofer.start()
    # The source answers while it reads: each read must still give the real window.
    while spoofer.is_alive():
        assert (sample := source.read()) is not None and (sample.app, sample.title) == (app, "the real window")
        spoofer.join(0.02)
    [reply] = replies
    assert reply.header.message_type == MessageType.error
    assert "AccessDenied" in str(reply.header.fields.values())
    assert (sample := source.read()) is not None and sample.app == app


def test_kwin_restarting_is_said_once_and_the_source_reads_again(desktop: KWinDesktop, source: KWinSource,
                                                                  notices: list[str]) -> None:
    app = app_id("BeforeCrash")
    desktop.open_window(app, "before the crash")
    read_until(source, (app, "before the crash"), "the window before the crash")
    desktop.kill_kwin()
    read_until(source, None, "nothing while KWin is gone")
    for _ in range(5):
        assert source.read() is None
    desktop.start_kwin()
    after = app_id("AfterCrash")
    desktop.open_window(after, "after the restart")
    read_until(source, (after, "after the restart"), "the window after the restart")
    assert len(notices) == 1 and "KWin" in notices[0] and "\n" not in notices[0], notices


def test_a_locked_screen_is_read_as_locked(tmp_path: Path, notices: list[str]) -> None:
    with window_on_a_kwin_of_its_own(tmp_path, notices, "Locked", lockscreen=True) as (locking, source):
        assert (sample := source.read()) is not None and sample.locked is False
        locking.lock()
        wait_until(lambda: (sample := source.read()) is not None and sample.locked, 10, "the lock seen")
    assert notices == []


def test_a_lost_session_bus_is_said_once_and_the_source_reads_again_once_it_is_back(
        tmp_path: Path, notices: list[str]) -> None:
    with window_on_a_kwin_of_its_own(tmp_path, notices, "BusGone") as (desktop, source):
        assert desktop.bus_pid is not None
        os.kill(desktop.bus_pid, signal.SIGTERM)
        wait_until(lambda: source.read() is None and notices, 10, "the lost bus noticed")
        for _ in range(5):
            assert source.read() is None
        # The bus back at the same address, and KWin on it (it cannot stay without its bus).
        desktop.bus_address, desktop.bus_pid = private_bus(desktop.dbus_daemon, desktop.directory / "bus")
        desktop.kill_kwin()
        desktop.start_kwin()
        app = app_id("BusBack")
        desktop.open_window(app, "the bus is back")
        read_until(source, (app, "the bus is back"), "the window, read on the new connection")
    assert len(notices) == 1 and "session bus" in notices[0] and "\n" not in notices[0], notices


def test_the_script_file_goes_once_loaded_and_close_unloads_the_script(
        tmp_path: Path, desktop: KWinDesktop, notices: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    source = KWinSource(notices.append, bus=desktop.bus_address, wayland_display=desktop.wayland_socket)
    assert list(tmp_path.iterdir()) == []  # KWin has read it: nothing is left where the file was written
    with desktop.connection() as connection:
        assert script_loaded(connection, SCRIPT_NAME)
        source.close()
        assert not script_loaded(connection, SCRIPT_NAME)
    assert source.read() is None


def test_without_kwin_the_source_says_so_in_one_sentence(tmp_path: Path, desktop: KWinDesktop) -> None:
    # The module's bus without KWin on it would need KWin stopped; a bus of its own is quicker and as real.
    address, pid = private_bus(desktop.dbus_daemon, tmp_path / "bus")
    try:
        with pytest.raises(SourceUnavailable) as refused:
            KWinSource(lambda _: None, bus=address)
        assert "KWin is not on the session bus" in str(refused.value) and "\n" not in str(refused.value)
    finally:
        os.kill(pid, signal.SIGTERM)
    with pytest.raises(SourceUnavailable) as no_bus:
        KWinSource(lambda _: None, bus=f"unix:path={tmp_path / 'no-bus'}")
    assert "Cannot reach the session bus" in str(no_bus.value) and "\n" not in str(no_bus.value)


def test_the_session_bus_is_found_where_systemd_puts_it(tmp_path: Path, desktop: KWinDesktop,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(SourceUnavailable) as unset:
        KWinSource(lambda _: None)
    assert "DBUS_SESSION_BUS_ADDRESS is not set" in str(unset.value)
    (tmp_path / "bus").symlink_to(desktop.directory / "bus")  # the KWin session's bus, at $XDG_RUNTIME_DIR/bus
    monkeypatch.setenv("WAYLAND_DISPLAY", desktop.wayland_socket)
    app = app_id("UserBus")
    desktop.open_window(app, "found through the user bus")
    desktop.activate(app)
    opened = KWinSource(lambda _: None)
    try:
        assert (sample := opened.read()) is not None and sample.app == app
    finally:
        opened.close()


def test_open_source_by_name(desktop: KWinDesktop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.bus_address)
    monkeypatch.setenv("WAYLAND_DISPLAY", desktop.wayland_socket)
    opened = open_source("kwin", lambda _: None)
    try:
        assert opened.name == "kwin" and opened.permissions() == []
    finally:
        opened.close()




def test_run_records_kwin_windows_in_influxdb_and_private_ones_by_app_only(
        desktop: KWinDesktop, influxdb1: InfluxDB1, influx_database: str) -> None:
    browser, editor = app_id("Browser"), app_id("Editor")
    windows: dict[str, WaylandWindow] = {
        browser: desktop.open_window(browser, "Secret search — Mozilla Firefox Private Browsing"),
        editor: desktop.open_window(editor, "notes.txt — Editor"),
    }
    tracker = TrackerOn("kwin", desktop.env, influxdb1, influx_database, "--away-after", "1h")
    try:
        for app in windows:
            seen = len(tracker.lines)
            desktop.activate(app)
            wait_until(lambda app=app, seen=seen: tracker.logged_after(seen, app), 20, f"samples of {app}")
    finally:
        code, err = tracker.stop(signal.SIGTERM)
    assert code == 0, err
    rows = influxdb1.rows('SELECT * FROM "activity"', influx_database)
    by_app = {app: [row for row in rows if row["app"] == app] for app in windows}
    assert all(by_app.values()), {app: len(found) for app, found in by_app.items()}
    assert {row.get("title") for row in by_app[editor]} == {"notes.txt — Editor"}
    assert all(row.get("title") is None for row in by_app[browser])
    # The private title is nowhere: not in InfluxDB, not in what the run printed, not in the local history.
    assert "Secret" not in str(influxdb1.query('SELECT * FROM "activity"', influx_database))
    assert not [line for line in tracker.lines if "Secret" in line]
    history = [file.read_bytes() for file in paths.data_dir().iterdir() if file.is_file()]
    assert history and not [content for content in history if b"Secret" in content]
    assert any(editor.encode() in content for content in history)


def test_run_on_kwin_records_time_without_input_as_away_and_input_as_active_again(
        tmp_path: Path, influxdb1: InfluxDB1, influx_database: str) -> None:
    nested = KWinDesktop(tmp_path, nested_in_x=True).start()  # input comes from the Xvfb pointer
    try:
        app = app_id("AwayApp")
        nested.open_window(app, "reading, not typing")
        tracker = TrackerOn("kwin", nested.env, influxdb1, influx_database, "--away-after", "2s")
        try:
            wait_until(lambda: tracker.logged_after(0, app), 30, "the first sample")
            seen = len(tracker.lines)
            nested.touch()
            last_input = int(time.time() * 1000)
            wait_until(lambda: tracker.logged_after(seen, app, "Away"), 15, "away after 2 s without input")
            time.sleep(1.0)  # stay away a little longer: this time without input is what is being recorded
            seen = len(tracker.lines)
            nested.touch()
            back = int(time.time() * 1000)
            wait_until(lambda: tracker.logged_after(seen, app, "Uncategorized"), 15, "active again after input")
            while time.time() * 1000 < back + 1500:  # at the keyboard for 1.5 s: the samples being recorded
                nested.touch()
                time.sleep(0.2)
        finally:
            code, err = tracker.stop(signal.SIGTERM)  # sends what it recorded on its way out
    finally:
        nested.stop()
    assert code == 0, err
    rows = influxdb1.rows('SELECT * FROM "activity"', influx_database)
    # KWin says "idle" 1 s after the last input (the notification's timeout), so away starts up to 1 s late.
    away = [row for row in rows if last_input + 1300 < row["time"] < back - 300]
    active = [row for row in rows if row["time"] > back + 300]
    assert away and {(row["category"], row["state"]) for row in away} == {("Away", "away")}
    # From before the 2 s threshold was crossed: the stretch since the last input is away as a whole.
    assert any(row["category"] == "Away" and row["time"] < last_input + 2000 for row in rows)
    assert len(active) >= 3 and {row["state"] for row in active} == {"active"}
    assert {row["app"] for row in rows} == {app}
