"""Desktop notifications (goal nudges): on Linux through a real dbus-daemon to a notification server of the tests'
own, on macOS (here) through a fake `osascript` that compiles the script as AppleScript reads it, on Windows
(here) through a fake `powershell`. What a user would notice: the nudge that reaches the server, the one sentence
when it cannot, and a recording loop that is never held."""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import fake_osascript
from helpers.dbus_bus import PrivateBus
from helpers.notification_server import NotificationServer, NotifyCall
from helpers.servers import timed, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.ui import notifications
from tracker.ui.notifications import (
    MAX_BODY_CHARS,
    MAX_TITLE_CHARS,
    POWERSHELL_TOAST,
    Notifier,
    clean_text,
    escape_markup,
    open_notifier,
    osascript_script,
)

NO_SERVER = "No notification server answers on the session bus, so goal nudges are shown in the log only."


@pytest.fixture
def bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateBus]:
    """A session bus of the test's own (starting nothing on demand), which notifications find as theirs."""
    started = PrivateBus(tmp_path, activation=False)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'bus'}")
    yield started
    _stop_bus(started)


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def notifier(said: list[str]) -> Iterator[Notifier]:
    opened = open_notifier(said.append, platform="linux")
    yield opened
    opened.close()


def _stop_bus(bus: PrivateBus, wait: bool = False) -> None:
    try:
        os.kill(bus.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait:
        wait_until(lambda: not _running(bus.pid), timeout=10, what="dbus-daemon to stop")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _arrived(server: NotificationServer, summary: str) -> NotifyCall:
    return wait_until(lambda: next((call for call in server.calls if call.summary == summary), None), timeout=15,
                      what=f"the notification {summary!r} at the server")


def test_the_title_body_and_app_name_reach_the_notification_server(bus: PrivateBus, notifier: Notifier,
                                                                    said: list[str]) -> None:
    server = NotificationServer(bus.address)
    try:
        notifier.notify("Coding: 2 h reached", "Well done & <b>keep</b> going")
        first = _arrived(server, "Coding: 2 h reached")
        assert (first.app_name, first.replaces_id, first.expire_timeout) == ("tracker", 0, 10_000)
        # The server offers body markup, so the text is escaped to show as it is.
        assert first.body == "Well done &amp; &lt;b&gt;keep&lt;/b&gt; going"
        assert server.methods[0] == "GetCapabilities"

        # The same goal's next nudge replaces the one on screen; another goal's does not.
        notifier.notify("Coding: 2 h reached", "still going")
        notifier.notify("Mail: 30 min left", "")
        second = _arrived(server, "Mail: 30 min left")
        assert [call.replaces_id for call in server.calls] == [0, 1, 0]
        assert second.body == ""
        assert server.methods.count("GetCapabilities") == 1  # asked once per connection
        assert said == []
    finally:
        server.stop()


def test_a_server_without_body_markup_gets_the_text_as_it_is(bus: PrivateBus, notifier: Notifier) -> None:
    server = NotificationServer(bus.address, capabilities=("body",))
    try:
        notifier.notify("Reading", "R&D <notes> at 5 > 4")
        assert _arrived(server, "Reading").body == "R&D <notes> at 5 > 4"
    finally:
        server.stop()


def test_without_a_notification_server_one_sentence_is_said_and_nudges_go_on_once_one_is_there(
        bus: PrivateBus, notifier: Notifier, said: list[str]) -> None:
    for number in range(3):
        assert timed(lambda number=number: notifier.notify(f"nudge {number}", "body"))[0] is None
    wait_until(lambda: said, timeout=15, what="the sentence about the missing server")
    server = NotificationServer(bus.address)
    try:
        notifier.notify("after", "the server started")
        _arrived(server, "after")  # nudges are shown in order: by now the first three were tried
        assert said == [NO_SERVER]
    finally:
        server.stop()


def test_a_server_that_never_answers_holds_no_caller(bus: PrivateBus, said: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifications, "CALL_TIMEOUT", 1.0)
    server = NotificationServer(bus.address, answering=False)
    notifier = open_notifier(said.append, platform="linux")
    try:
        for number in range(5):
            result, seconds = timed(lambda number=number: notifier.notify(f"nudge {number}", "body"))
            assert result is None and seconds < 0.5
        wait_until(lambda: said, timeout=15, what="the sentence about the server not answering")
        assert said == ["The notification server on the session bus did not answer within 1 s, so goal nudges may "
                        "not be shown; they are in the log."]
        server.answering = True
        notifier.notify("answered", "at last")
        _arrived(server, "answered")
        assert len(said) == 1
        # A stopping run waits at most about a second for a nudge being shown.
        server.answering = False
        notifier.notify("never answered", "")
        _arrived(server, "never answered")  # and left waiting for its answer
        assert timed(notifier.close)[1] < 1.5
    finally:
        notifier.close()
        server.stop()


def test_the_bus_going_away_and_coming_back(tmp_path: Path, bus: PrivateBus, notifier: Notifier,
                                            said: list[str]) -> None:
    server = NotificationServer(bus.address)
    notifier.notify("before", "")
    _arrived(server, "before")
    server.stop()
    _stop_bus(bus, wait=True)

    notifier.notify("while gone", "")
    wait_until(lambda: said, timeout=15, what="the sentence about the bus")
    assert said == ["The session bus went away, so goal nudges are shown in the log only until it is back."]

    (tmp_path / "bus").unlink(missing_ok=True)  # in case the old daemon left its socket behind
    again = PrivateBus(tmp_path, activation=False)
    server = NotificationServer(again.address)
    try:
        notifier.notify("after", "the bus is back")
        _arrived(server, "after")
        notifier.notify("before", "")
        _arrived(server, "before")
        # A new server knows nothing of the old one's notifications: nothing is replaced.
        assert [call.replaces_id for call in server.calls] == [0, 0]
        assert len(said) == 1
    finally:
        server.stop()
        _stop_bus(again)


def test_a_bus_that_hangs_holds_no_caller(bus: PrivateBus, notifier: Notifier, said: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifications, "CALL_TIMEOUT", 1.0)
    server = NotificationServer(bus.address)
    try:
        notifier.notify("before", "")
        _arrived(server, "before")
        os.kill(bus.pid, signal.SIGSTOP)
        try:
            for number in range(3):
                assert timed(lambda number=number: notifier.notify(f"nudge {number}", ""))[1] < 0.5
            wait_until(lambda: said, timeout=15, what="the sentence about the bus not answering")
            assert timed(lambda: notifier.notify("while stopped", ""))[1] < 0.5
            time.sleep(2.5)  # the bus stays hung while the next nudges try it (connecting times out too)
        finally:
            os.kill(bus.pid, signal.SIGCONT)
        notifier.notify("after", "")
        _arrived(server, "after")
        assert said == ["The notification server on the session bus did not answer within 1 s, so goal nudges may "
                        "not be shown; they are in the log."]
    finally:
        server.stop()


def test_the_bus_in_xdg_runtime_dir_is_found_without_the_variable(bus: PrivateBus, tmp_path: Path,
                                                                   notifier: Notifier,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # where the fixture's bus listens, as `bus`
    server = NotificationServer(bus.address)
    try:
        notifier.notify("found", "")
        _arrived(server, "found")
    finally:
        server.stop()


def test_without_a_session_bus_one_sentence_is_said(tmp_path: Path, notifier: Notifier, said: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    for number in range(3):
        notifier.notify(f"nudge {number}", "")
    wait_until(lambda: said, timeout=15, what="the sentence about the bus")
    # A bus that appears later (a session started after tracker) is used from then on. It appears with its server
    # already on it: nudges still queued would otherwise meet a bus with no server yet, which is said too.
    (tmp_path / "later").mkdir()
    bus = PrivateBus(tmp_path / "later", activation=False)
    server = NotificationServer(bus.address)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "later"))
    try:
        notifier.notify("later", "")
        _arrived(server, "later")
        assert said == ["There is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set), so goal nudges are "
                        "shown in the log only."]
    finally:
        server.stop()
        _stop_bus(bus)


HOSTILE = [
    ("<b>bold</b> & &amp; <script>", "<i>not markup</i> &lt; & ]]> <![CDATA[x]]> \"quotes\" 'single'"),
    ("nul\x00in title", "nul\x00in body\x01\x1b[31m escape \x7f"),
    ("bad \udc80 surrogate \ud800", "lone \udfff and paired-as-two \ud83d\ude00"),
    ("right-to-left \u202e gnirts", "emoji 🎯 and 合計 and \u200b zero width"),
    ("line\r\nbreaks\rin title", "crlf\r\nand\ttab"),
    ("long " * 10_000, "x" * 1_000_000),
    ("", ""),
]


def test_hostile_text_reaches_the_server_as_plain_text(bus: PrivateBus, notifier: Notifier,
                                                       said: list[str]) -> None:
    server = NotificationServer(bus.address)
    try:
        for title, body in HOSTILE:
            notifier.notify(title, body)
        notifier.notify("last", "")
        _arrived(server, "last")
        assert said == []
        assert len(server.calls) == len(HOSTILE) + 1
        for (title, body), call in zip(HOSTILE, server.calls[:-1], strict=True):
            assert call.summary == clean_text(title, MAX_TITLE_CHARS)
            # Cut before it is escaped: "&" becomes the 5 characters "&amp;" at most.
            assert len(call.summary) <= MAX_TITLE_CHARS and len(call.body) <= 5 * MAX_BODY_CHARS
            # The body is markup that reads back, as XML, to the text itself.
            assert (ElementTree.fromstring(f"<b>{call.body}</b>").text or "") == clean_text(body, MAX_BODY_CHARS)
    finally:
        server.stop()


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=300))
def test_cleaned_and_escaped_text_is_markup_of_the_text_itself(text: str, limit: int) -> None:
    cleaned = clean_text(text, limit)
    assert len(cleaned) <= limit
    cleaned.encode("utf-8")  # no surrogate is left to refuse
    assert "\x00" not in cleaned and "\r" not in cleaned
    assert (ElementTree.fromstring(f"<b>{escape_markup(cleaned)}</b>").text or "") == cleaned
    if len(text) <= limit and text == clean_text(text, len(text) + 1):
        assert cleaned == text  # ordinary text is left as it is


@settings(max_examples=500, deadline=None)
@given(st.text(), st.text())
def test_the_applescript_reads_back_to_the_title_and_body(title: str, body: str) -> None:
    title, body = clean_text(title, MAX_TITLE_CHARS), clean_text(body, MAX_BODY_CHARS)
    assert fake_osascript.parse_display_notification(osascript_script(title, body)) == (body, title)


# -- macOS and Windows, through fake programs ----------------------------------------------------------------


@pytest.fixture
def osascript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake osascript first on PATH; returns the log of what it showed."""
    fake_osascript.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "osascript.log"
    monkeypatch.setenv("FAKE_OSASCRIPT_LOG", str(log))
    return log


def test_on_macos_osascript_shows_the_text_as_it_is(osascript: Path, said: list[str]) -> None:
    notifier = open_notifier(said.append, platform="darwin")
    try:
        texts = [('Say "hi" \\ to \\"you\\"', 'a "quoted" back\\slash\\\nnew line\ttab'), *HOSTILE]
        for number, (title, body) in enumerate(texts, start=1):
            notifier.notify(title, body)
            wait_until(lambda number=number: len(fake_osascript.shown(osascript)) == number, timeout=15,
                       what="the notification at osascript")
        assert fake_osascript.shown(osascript) == [
            {"title": clean_text(title, MAX_TITLE_CHARS), "body": clean_text(body, MAX_BODY_CHARS)}
            for title, body in texts]
        assert said == []
    finally:
        notifier.close()


@pytest.mark.parametrize("mode, sentence", [
    ("fail", "osascript could not show a notification (execution error: Notifications are turned off for Script "
             "Editor. (-1)), so goal nudges are shown in the log only."),
    ("hang", "osascript did not show a notification within 1 s, so goal nudges may not be shown; they are in the "
             "log."),
])
def test_on_macos_an_osascript_that_fails_or_hangs_is_said_once(osascript: Path, said: list[str], mode: str,
                                                                 sentence: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    usual_timeout = notifications.PROGRAM_TIMEOUT
    if mode == "hang":
        monkeypatch.setattr(notifications, "PROGRAM_TIMEOUT", 1.0)
    monkeypatch.setenv("FAKE_OSASCRIPT_MODE", mode)
    notifier = open_notifier(said.append, platform="darwin")
    try:
        for number in range(2):
            assert timed(lambda number=number: notifier.notify(f"nudge {number}", ""))[1] < 0.5
        wait_until(lambda: said, timeout=15, what="the sentence")
        # A busy machine may take more than a second to start the fake: it gets the usual time again.
        monkeypatch.setattr(notifications, "PROGRAM_TIMEOUT", usual_timeout)
        monkeypatch.setenv("FAKE_OSASCRIPT_MODE", "ok")
        notifier.notify("works again", "")
        wait_until(lambda: fake_osascript.shown(osascript), timeout=15, what="the notification at osascript")
        assert said == [sentence]
    finally:
        notifier.close()


def test_on_macos_without_osascript_one_sentence_is_said(tmp_path: Path, said: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    notifier = open_notifier(said.append, platform="darwin")
    try:
        notifier.notify("one", "")
        notifier.notify("two", "")
        wait_until(lambda: said, timeout=15, what="the sentence")
    finally:
        notifier.close()
    assert said == ["osascript was not found, so goal nudges are shown in the log only."]


FAKE_POWERSHELL = """#!{python}
import json, os, sys
with open(os.environ["FAKE_POWERSHELL_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps({{"arguments": sys.argv[1:], "title": os.environ["TRACKER_NOTIFICATION_TITLE"],
                          "body": os.environ["TRACKER_NOTIFICATION_BODY"]}}) + "\\n")
"""


def test_on_windows_powershell_gets_the_toast_script_and_the_text_through_the_environment(
        tmp_path: Path, said: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    program = tmp_path / "bin" / "powershell"
    program.parent.mkdir()
    program.write_text(FAKE_POWERSHELL.format(python=sys.executable))
    program.chmod(0o755)
    log = tmp_path / "powershell.log"
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_POWERSHELL_LOG", str(log))
    notifier = open_notifier(said.append, platform="win32")
    try:
        notifier.notify('Goal "Coding" $env:PATH `reached`', "'; Remove-Item C:\\ #")
        wait_until(log.exists, timeout=15, what="powershell to run")
    finally:
        notifier.close()
    ran = json.loads(log.read_text(encoding="utf-8"))
    assert (ran["title"], ran["body"]) == ('Goal "Coding" $env:PATH `reached`', "'; Remove-Item C:\\ #")
    assert ran["arguments"][:3] == ["-NoProfile", "-NonInteractive", "-EncodedCommand"]
    assert base64.b64decode(ran["arguments"][3]).decode("utf-16-le") == POWERSHELL_TOAST
    assert said == []


def test_a_closed_notifier_and_a_failing_say_once_raise_nothing(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    attempts: list[str] = []

    def say_once(sentence: str) -> None:
        attempts.append(sentence)
        raise OSError("the terminal is gone")

    notifier = open_notifier(say_once, platform="linux")
    notifier.notify("one", "")
    wait_until(lambda: attempts, timeout=15, what="the sentence")
    notifier.close()
    notifier.notify("after close", "")
    started = time.monotonic()
    notifier.close()
    assert time.monotonic() - started < 0.5 and len(attempts) == 1
