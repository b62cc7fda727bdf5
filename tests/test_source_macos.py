"""The macOS source against a fake of appscript as strict as the real one: what gets recorded in each situation.

The last tests run only on a Mac, against the real appscript (the GitHub workflow .github/workflows/macos.yml).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from helpers.fake_appscript import (
    ARC_TERMS,
    CHROME_TERMS,
    CONNECTION_INVALID,
    LAUNCH_SERVICES_UNAVAILABLE,
    NO_SUCH_PROCESS,
    SAFARI_TERMS,
    STANDARD_TERMS,
    Mac,
    Process,
    Window,
    install,
)
from helpers.servers import InfluxDB1

from tracker.config import load_settings
from tracker.recording.runner import Run, SystemClock, open_parts
from tracker.recording.sources import SourceUnavailable, macos
from tracker.recording.sources.macos import MacOSSource
from tracker.ui.live import ActivityLog

# (process name, bundle identifier, scripting dictionary): the browsers that say whether a window is private.
CHROMIUM_FAMILY = [
    ("Google Chrome", "com.google.Chrome", CHROME_TERMS),
    ("Google Chrome Beta", "com.google.Chrome.beta", CHROME_TERMS),
    ("Google Chrome Canary", "com.google.Chrome.canary", CHROME_TERMS),
    ("Chromium", "org.chromium.Chromium", CHROME_TERMS),
    ("Brave Browser", "com.brave.Browser", CHROME_TERMS),
    ("Microsoft Edge", "com.microsoft.edgemac", CHROME_TERMS),
    ("Microsoft Edge Dev", "com.microsoft.edgemac.Dev", CHROME_TERMS),
    ("Vivaldi", "com.vivaldi.Vivaldi", CHROME_TERMS),
    ("Arc", "company.thebrowser.Browser", ARC_TERMS),
]
SAFARIS = [
    ("Safari", "com.apple.Safari", SAFARI_TERMS),
    ("Safari Technology Preview", "com.apple.SafariTechnologyPreview", SAFARI_TERMS),
]
SAFARI = SAFARIS[0]
CHROME = CHROMIUM_FAMILY[0]
SECRET = "https://secret.example/diagnosis"
WAIT_SECONDS = 30  # generous: the machine may be busy


@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch) -> Mac:
    scripted = Mac()
    install(monkeypatch, scripted)
    monkeypatch.setattr(macos, "hid_idle_seconds", lambda: 42.5)
    monkeypatch.setattr(macos, "screen_locked", lambda: False)
    return scripted


@pytest.fixture
def notices() -> list[str]:
    return []


@pytest.fixture
def source(mac: Mac, notices: list[str]) -> MacOSSource:
    return MacOSSource(notices.append)


def foreground(source: MacOSSource) -> tuple[str, str | None, str | None, bool] | None:
    sample = source.read()
    return None if sample is None else (sample.app, sample.title, sample.url, sample.private)


def urls_asked(mac: Mac) -> list[tuple[str, tuple[object, ...]]]:
    return [(process, path) for process, _, path in mac.events if path and path[-1] == "URL"]


def add_browser(mac: Mac, browser: tuple[str, str, frozenset[str]], *windows: Window, front: bool = True) -> Process:
    name, bundle_id, terms = browser
    return mac.add(name, bundle_id, terms, windows=list(windows), front=front)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = datetime.now(timezone.utc) + timedelta(seconds=WAIT_SECONDS)
    event = threading.Event()
    while not condition():
        assert datetime.now(timezone.utc) < deadline, "the condition did not come true in time"
        event.wait(0.01)


# -- what is recorded ---------------------------------------------------------------------------------


def test_plain_app_with_its_front_window_title(mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes — “draft”, v2.txt"), Window("older.txt")],
            front=True)
    sample = source.read()
    assert sample is not None
    assert (sample.app, sample.title, sample.url, sample.private) == (
        "TextEdit", "notes — “draft”, v2.txt", None, False)
    assert (sample.idle_seconds, sample.locked) == (42.5, False)
    assert abs(sample.time - datetime.now(timezone.utc)) < timedelta(seconds=5)
    assert notices == []


def test_app_without_windows_is_recorded_without_title(mac: Mac, source: MacOSSource) -> None:
    mac.add("Finder", "com.apple.finder", front=True)
    assert foreground(source) == ("Finder", None, None, False)


def test_locked_screen_is_reported(mac: Mac, source: MacOSSource, monkeypatch: pytest.MonkeyPatch) -> None:
    mac.add("Finder", "com.apple.finder", front=True)
    monkeypatch.setattr(macos, "screen_locked", lambda: True)
    sample = source.read()
    assert sample is not None and sample.locked is True


def test_login_window_in_front_counts_as_locked(mac: Mac, source: MacOSSource) -> None:
    mac.add("loginwindow", "com.apple.loginwindow", windows=[Window("")], front=True)
    sample = source.read()
    assert sample is not None and sample.locked is True


@pytest.mark.parametrize("browser", SAFARIS, ids=lambda browser: browser[0])
def test_safari_records_url_and_title_of_current_tab(
        mac: Mac, source: MacOSSource, browser: tuple[str, str, frozenset[str]]) -> None:
    add_browser(mac, browser, Window("Example — A", "https://example.org/a?b=1"))
    assert foreground(source) == (browser[0], "Example — A", "https://example.org/a?b=1", False)


@pytest.mark.parametrize("browser", CHROMIUM_FAMILY, ids=lambda browser: browser[0])
def test_chromium_browsers_record_url_and_title_of_active_tab(
        mac: Mac, source: MacOSSource, browser: tuple[str, str, frozenset[str]]) -> None:
    add_browser(mac, browser, Window("3.13 Documentation", "https://docs.python.org/3/"))
    assert foreground(source) == (browser[0], "3.13 Documentation", "https://docs.python.org/3/", False)


@pytest.mark.parametrize("browser", [*CHROMIUM_FAMILY, *SAFARIS], ids=lambda browser: browser[0])
def test_private_window_records_the_app_only_and_never_asks_its_url(
        mac: Mac, source: MacOSSource, browser: tuple[str, str, frozenset[str]]) -> None:
    add_browser(mac, browser, Window("Secret", SECRET, private=True), Window("Public", "https://example.org/"))
    assert foreground(source) == (browser[0], None, None, True)
    assert urls_asked(mac) == []


# -- privacy fails closed -----------------------------------------------------------------------------


def test_browser_refusing_automation_records_the_app_only_and_tells_once(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    # Whether the window is incognito cannot be asked: its title (System Events') must not be recorded either.
    add_browser(mac, CHROME, Window("Secret - Google Chrome", SECRET, private=True))
    mac.automation["Google Chrome"] = "refused"
    for _ in range(3):
        assert foreground(source) == ("Google Chrome", None, None, False)
    assert len(notices) == 1
    assert "Google Chrome" in notices[0] and "restart tracker" in notices[0]
    assert "System Settings → Privacy & Security → Automation" in notices[0]


def test_chromium_browser_without_a_private_flag_in_its_dictionary_records_the_app_only(
        mac: Mac, source: MacOSSource) -> None:
    add_browser(mac, ("Vivaldi", "com.vivaldi.Vivaldi", CHROME_TERMS - {"mode"}), Window("Secret", SECRET))
    for _ in range(2):
        assert foreground(source) == ("Vivaldi", None, None, False)
    assert urls_asked(mac) == []


@pytest.mark.parametrize("private", [True, False])
def test_safari_in_another_language_cannot_tell_private_so_records_the_app_only(
        mac: Mac, source: MacOSSource, private: bool) -> None:
    mac.safari_language = "de"
    add_browser(mac, SAFARI, Window("Geheim", SECRET, private=private))
    assert foreground(source) == ("Safari", None, None, False)
    assert urls_asked(mac) == []


def test_safari_asks_its_window_menu_once_per_sample(mac: Mac, source: MacOSSource) -> None:
    add_browser(mac, SAFARI, Window("Example", "https://example.org/"))
    source.read()
    menu_requests = [path for process, _, path in mac.events if process == "System Events" and "menu_bars" in path]
    assert len(menu_requests) == 1
    assert [command for process, command, _ in mac.events if process == "System Events"].count("exists") == 0


@pytest.mark.parametrize(("browser", "title"), [
    (("Firefox", "org.mozilla.firefox", STANDARD_TERMS), "Secret — Mozilla Firefox Private Browsing"),
    (("Firefox Developer Edition", "org.mozilla.firefoxdeveloperedition", STANDARD_TERMS),
     "Secret — Firefox Developer Edition Private Browsing"),
    (("Zen", "app.zen-browser.zen", STANDARD_TERMS), "Secret — Zen Private Browsing"),
    (("Microsoft Edge Beta", "com.microsoft.edgemac.Beta", CHROME_TERMS), "Secret - InPrivate"),
    (("Google Chrome Dev", "com.google.Chrome.dev", CHROME_TERMS), "Secret - Google Chrome (Incognito)"),
], ids=lambda value: value[0] if isinstance(value, tuple) else "")
def test_private_title_markers_record_the_app_only(
        mac: Mac, source: MacOSSource, browser: tuple[str, str, frozenset[str]], title: str) -> None:
    add_browser(mac, browser, Window(title, SECRET, private=True))
    assert foreground(source) == (browser[0], None, None, True)


def test_firefox_records_its_window_title_without_url(mac: Mac, source: MacOSSource) -> None:
    add_browser(mac, ("Firefox", "org.mozilla.firefox", STANDARD_TERMS),
                Window("Example Domain — Mozilla Firefox", "https://example.org/"))
    assert foreground(source) == ("Firefox", "Example Domain — Mozilla Firefox", None, False)


@pytest.mark.parametrize("browser", [("Opera", "com.operasoftware.Opera", STANDARD_TERMS),
                                     ("Orion", "com.kagi.kagimacOS", SAFARI_TERMS)], ids=["Opera", "Orion"])
def test_browsers_without_a_known_private_sign_record_the_app_only(
        mac: Mac, source: MacOSSource, browser: tuple[str, str, frozenset[str]]) -> None:
    add_browser(mac, browser, Window("Secret", SECRET, private=True))
    assert foreground(source) == (browser[0], None, None, False)


@pytest.mark.parametrize("browser", [CHROME, CHROMIUM_FAMILY[-1]], ids=["Google Chrome", "Arc"])
def test_chromium_window_switch_mid_read_never_gives_a_private_window_s_url(
        mac: Mac, source: MacOSSource, browser: tuple[str, str, frozenset[str]]) -> None:
    public, secret = Window("Public", "https://example.org/"), Window("Secret", SECRET, private=True)
    add_browser(mac, browser, public, secret)
    mac.after_event[(browser[0], 1)] = lambda: mac.bring_to_front(browser[0], secret)
    recorded = foreground(source)
    assert recorded is not None and "Secret" not in str(recorded) and SECRET not in str(recorded)


@pytest.mark.parametrize(("switch_after", "first_front"), [
    (("System Events", 2), "public"),  # after Safari's Window menu was read
    (("Safari", 1), "secret"),  # after Safari said which window is in front
    (("Safari", 2), "public"),
])
def test_safari_window_switch_mid_read_never_gives_a_private_window_s_url(
        mac: Mac, source: MacOSSource, switch_after: tuple[str, int], first_front: str) -> None:
    public, secret = Window("Public", "https://example.org/"), Window("Secret", SECRET, private=True)
    add_browser(mac, SAFARI, *((public, secret) if first_front == "public" else (secret, public)))
    mac.after_event[switch_after] = lambda: mac.bring_to_front(
        "Safari", secret if first_front == "public" else public)
    recorded = foreground(source)
    assert recorded is not None and "Secret" not in str(recorded) and SECRET not in str(recorded)


# -- never stop silently ------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [NO_SUCH_PROCESS, CONNECTION_INVALID], ids=["quit", "crashed"])
def test_system_events_quitting_is_relaunched_and_said_once(
        mac: Mac, source: MacOSSource, notices: list[str], error: int) -> None:
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    assert foreground(source) == ("TextEdit", "notes.txt", None, False)
    for _ in range(2):
        mac.quit("System Events", error)
        for _ in range(2):
            assert foreground(source) == ("TextEdit", "notes.txt", None, False)
    assert mac.launched == ["/System/Library/CoreServices/System Events.app"] * 2
    assert len(notices) == 1 and "System Events" in notices[0] and "started it again" in notices[0]


def test_system_events_that_cannot_be_started_again_is_said_once(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    source.read()
    mac.quit("System Events")
    mac.installed.pop("System Events")  # Launch Services no longer finds it
    assert [source.read(), source.read()] == [None, None]
    assert len(notices) == 1 and "System Events" in notices[0] and "\n" not in notices[0]


def test_launch_services_failing_costs_nothing_for_a_browser(mac: Mac, source: MacOSSource) -> None:
    add_browser(mac, CHROME, Window("Example", "https://example.org/"))
    mac.launch_services_errors["Google Chrome"] = LAUNCH_SERVICES_UNAVAILABLE
    assert foreground(source) == ("Google Chrome", "Example", "https://example.org/", False)


def test_a_tab_the_browser_cannot_name_costs_only_its_url(mac: Mac, source: MacOSSource) -> None:
    add_browser(mac, ("Brave Browser", "com.brave.Browser", CHROME_TERMS - {"URL"}),
                Window("Example", "https://example.org/"))
    assert foreground(source) == ("Brave Browser", "Example", None, False)


def test_browser_is_addressed_by_its_process_never_launching_a_second_copy(
        mac: Mac, source: MacOSSource) -> None:
    chrome = add_browser(mac, CHROME, Window("Example", "https://example.org/"))
    chrome.path = "/Volumes/Google Chrome/Google Chrome.app"  # run from the disk image, not /Applications
    assert foreground(source) == ("Google Chrome", "Example", "https://example.org/", False)
    assert mac.launched == []


def test_browser_quitting_mid_read_records_the_app_only_and_starts_nothing(mac: Mac, source: MacOSSource) -> None:
    add_browser(mac, CHROME, Window("Example", "https://example.org/"))
    assert foreground(source) == ("Google Chrome", "Example", "https://example.org/", False)
    asked_system_events = sum(1 for process, _, _ in mac.events if process == "System Events")
    mac.after_event[("System Events", asked_system_events + 1)] = lambda: mac.quit("Google Chrome")
    assert foreground(source) == ("Google Chrome", None, None, False)
    assert mac.launched == []


def test_a_relaunched_browser_is_read_again(mac: Mac, source: MacOSSource) -> None:
    add_browser(mac, CHROME, Window("Example", "https://example.org/"))
    source.read()
    mac.quit("Google Chrome")
    mac.launch("/Applications/Google Chrome.app")  # the user starts it again: a new process id
    mac.frontmost = "Google Chrome"
    mac.processes["Google Chrome"].windows = [Window("Other", "https://example.com/")]
    assert foreground(source) == ("Google Chrome", "Other", "https://example.com/", False)


def reads_in_a_thread(source: MacOSSource, count: int) -> list[tuple[str, str | None, str | None, bool] | None]:
    """`count` reads, on a thread so a read held by the prompt fails the test instead of hanging it."""
    recorded: list[tuple[str, str | None, str | None, bool] | None] = []
    reader = threading.Thread(target=lambda: recorded.extend(foreground(source) for _ in range(count)))
    reader.start()
    reader.join(WAIT_SECONDS)
    assert not reader.is_alive(), "a read was held by the permission prompt"
    return recorded


@pytest.mark.slow
def test_a_permission_prompt_never_holds_the_reads_and_its_wait_is_shown(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    mac.automation["System Events"] = "prompt"
    assert reads_in_a_thread(source, 3) == [None, None, None]
    assert len(notices) == 1 and "System Events" in notices[0] and "Don't Allow" in notices[0]
    mac.answer_prompt("System Events", allow=True)
    wait_until(lambda: foreground(source) == ("TextEdit", "notes.txt", None, False))
    assert notices[1:] == ["tracker may now control System Events."]


@pytest.mark.slow
def test_a_browser_permission_prompt_records_the_app_only_meanwhile_and_a_refusal_says_to_restart(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    add_browser(mac, CHROME, Window("Secret", SECRET, private=True))
    mac.automation["Google Chrome"] = "prompt"
    assert reads_in_a_thread(source, 2) == [("Google Chrome", None, None, False)] * 2
    assert len(notices) == 1 and "Google Chrome" in notices[0]
    mac.answer_prompt("Google Chrome", allow=False)
    wait_until(lambda: foreground(source) == ("Google Chrome", None, None, False) and len(notices) == 2)
    assert foreground(source) == ("Google Chrome", None, None, False)
    assert len(notices) == 2 and "restart tracker" in notices[1] and "Automation" in notices[1]


@pytest.mark.slow
def test_a_run_shows_the_wait_and_ends_on_time_while_a_prompt_is_open(mac: Mac) -> None:
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    mac.automation["System Events"] = "prompt"
    log = io.StringIO()
    parts = open_parts(load_settings({"interval": "0.1"}).settings, "macos", ActivityLog(log, "json"))
    try:
        run = threading.Thread(target=Run(parts, SystemClock(threading.Event()), 0.1, run_for=2.0).run)
        run.start()
        run.join(WAIT_SECONDS)
        assert not run.is_alive(), "the run was held by the permission prompt past its --for"
    finally:
        mac.answer_prompt("System Events", allow=False)
        parts.close()
    messages = [line["message"] for line in map(json.loads, log.getvalue().splitlines()) if line["event"] == "notice"]
    assert any(message.startswith("Waiting for System Events to answer") for message in messages), messages


def test_system_events_refusing_automation_records_nothing_and_tells_once(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    mac.automation["System Events"] = "refused"
    assert [source.read(), source.read()] == [None, None]
    assert len(notices) == 1
    assert "System Events" in notices[0] and "System Settings → Privacy & Security → Automation" in notices[0]
    assert "restart tracker" in notices[0]


def test_accessibility_refused_records_app_only_and_tells_once(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    mac.accessibility = False
    for _ in range(3):
        assert foreground(source) == ("TextEdit", None, None, False)
    assert notices == [macos.ACCESSIBILITY_NOTICE]
    assert "System Settings → Privacy & Security → Accessibility" in notices[0] and "restart tracker" in notices[0]


def test_safari_without_accessibility_cannot_rule_out_private_so_records_app_only(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    add_browser(mac, SAFARI, Window("Example", "https://example.org/"))
    mac.accessibility = False
    assert foreground(source) == ("Safari", None, None, False)
    assert urls_asked(mac) == []
    assert notices == [macos.ACCESSIBILITY_NOTICE]


def test_frontmost_app_quitting_mid_read_gives_app_only(mac: Mac, source: MacOSSource) -> None:
    mac.add("Preview", "com.apple.Preview", windows=[Window("scan.pdf")], front=True)
    mac.after_event[("System Events", 1)] = lambda: mac.quit("Preview")
    assert foreground(source) == ("Preview", None, None, False)


def test_no_frontmost_app_reads_as_nothing(mac: Mac, source: MacOSSource) -> None:
    assert source.read() is None


def test_apps_are_looked_up_once_not_per_sample(mac: Mac, source: MacOSSource, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []
    real_app = sys.modules["appscript"].app
    monkeypatch.setattr(sys.modules["appscript"], "app", lambda *a, **k: made.append(a or k) or real_app(*a, **k))
    add_browser(mac, CHROME, Window("Example", "https://example.org/"))
    for _ in range(3):
        source.read()
    add_browser(mac, SAFARI, Window("Other", "https://example.com/"))
    for _ in range(3):
        source.read()
    assert len(made) == 3  # System Events, Chrome, Safari


def test_missing_appscript_is_unavailable_with_a_plain_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "appscript", None)  # makes `import appscript` fail
    with pytest.raises(SourceUnavailable, match="appscript") as raised:
        MacOSSource(lambda message: None)
    assert "--source demo" in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.skipif(sys.platform == "darwin", reason="on macOS Quartz answers for real")
def test_idle_and_lock_state_degrade_quietly_without_quartz() -> None:
    assert macos.hid_idle_seconds() is None
    assert macos.screen_locked() is False


@pytest.mark.parametrize(("screen_is_locked", "on_console", "away"), [
    (None, None, False), (None, True, False), (False, True, False), (True, True, True),
    (None, False, True),  # Fast User Switching: another user's session has the screen
])
def test_a_session_switched_away_from_counts_as_locked(
        screen_is_locked: bool | None, on_console: bool | None, away: bool) -> None:
    assert macos.session_away(screen_is_locked, on_console) is away


# -- on a real Mac (the macOS workflow): the facts the fake stands on ------------------------------------

on_a_mac = pytest.mark.skipif(sys.platform != "darwin", reason="needs macOS and the real appscript")
PERMISSION_REFUSED = {-1743, -1719, -25211}


@on_a_mac
def test_real_mac_records_the_frontmost_app_or_says_which_permission_is_missing() -> None:
    said: list[str] = []
    source = MacOSSource(said.append)
    try:
        samples = [source.read() for _ in range(5)]
    finally:
        source.close()
    recorded = [sample for sample in samples if sample is not None]
    assert recorded or any("System Events" in notice for notice in said), (samples, said)
    for sample in recorded:
        assert sample.app and sample.idle_seconds is not None and isinstance(sample.locked, bool)


@on_a_mac
def test_real_mac_doctor_says_each_permission_without_waiting_for_a_prompt() -> None:
    from tracker.tasks.doctor import check_desktop

    started = time.monotonic()
    checks = check_desktop("macos")
    assert time.monotonic() - started < 60, checks  # each open prompt costs about a second, never its answer
    assert {check.name for check in checks} <= {"desktop", "permission", "browser", "idle time"}, checks


@on_a_mac
def test_real_appscript_raises_what_the_fake_raises() -> None:
    import aem.ae
    import appscript

    events = appscript.app("System Events")
    with pytest.raises(AttributeError):  # a name outside the dictionary; the terminology needs no permission
        _ = events.no_such_term_in_any_dictionary
    gone = subprocess.Popen(["/usr/bin/true"])
    gone.wait()
    with pytest.raises(RuntimeError):  # a pid with no process: its terminology cannot be fetched
        _ = appscript.app(pid=gone.pid).windows
    assert issubclass(aem.ae.MacOSError, Exception)
    answers: list[object] = []

    def ask_for_a_missing_menu() -> None:
        try:
            answers.append(events.processes["Finder"].menu_bars[1].menus["No Such Menu"].exists(timeout=10))
        except appscript.CommandError as refused:  # a runner without Automation or Accessibility
            answers.append(refused.errornumber)

    asking = threading.Thread(target=ask_for_a_missing_menu, daemon=True)
    asking.start()
    asking.join(WAIT_SECONDS)
    if asking.is_alive():
        pytest.skip("macOS holds the request on a permission prompt that no one answers on this machine")
    assert answers == [False] or answers[0] in PERMISSION_REFUSED, answers


# A title cut in the middle of an emoji: its last UTF-16 unit is a lone surrogate.
CUT_INSIDE_AN_EMOJI = "Party 🎉".encode("utf-16-le", "surrogatepass")[:-2].decode("utf-16-le", "surrogatepass")


@on_a_mac
def test_real_appscript_cannot_decode_a_title_cut_inside_an_emoji_as_the_fake() -> None:
    import aem  # appscript's own lower layer
    from aem import kae
    from helpers.fake_appscript import module as fake_appscript

    # The text of an Apple Event reply, unpacked by appscript's own codecs as every `get` does.
    reply = aem.ae.newdesc(kae.typeUnicodeText, CUT_INSIDE_AN_EMOJI.encode("utf-16-le", "surrogatepass"))
    with pytest.raises(UnicodeDecodeError) as real:
        aem.Codecs().unpack(reply)
    fake_mac = Mac()
    fake_mac.add("Notes", "com.apple.Notes", windows=[Window(CUT_INSIDE_AN_EMOJI)], front=True)
    with pytest.raises(UnicodeDecodeError) as fake:
        fake_appscript(fake_mac).app("System Events").processes["Notes"].windows.name.get()
    assert (fake.value.encoding, fake.value.reason) == (real.value.encoding, real.value.reason)


def test_the_fake_appscript_raises_what_appscript_s_unpack_raises_for_a_lone_surrogate(mac: Mac) -> None:
    import appscript  # the fake, installed by `mac`

    mac.add("Notes", "com.apple.Notes", windows=[Window(CUT_INSIDE_AN_EMOJI)], front=True)
    with pytest.raises(UnicodeDecodeError) as raised:
        appscript.app("System Events").processes["Notes"].windows.name.get()
    # appscript's aemcodecs.unpackunicodetext: `data.decode('UTF-16LE')` on a little-endian Mac.
    assert (raised.value.encoding, raised.value.reason) == ("utf-16-le", "unexpected end of data")


def test_a_title_appscript_cannot_decode_costs_the_title_never_the_second(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    cut_inside_an_emoji = CUT_INSIDE_AN_EMOJI
    mac.add("Notes", "com.apple.Notes", windows=[Window(cut_inside_an_emoji)], front=True)
    samples = [source.read() for _ in range(3)]
    assert [(sample.app, sample.title) if sample else None for sample in samples] == [("Notes", None)] * 3
    assert len(notices) == 1 and "Notes" in notices[0] and "app only" in notices[0]
    assert source.unreadable_titles == 3
    add_browser(mac, ("Firefox", "org.mozilla.firefox", STANDARD_TERMS), Window(cut_inside_an_emoji, SECRET))
    assert foreground(source) == ("Firefox", None, None, False)


def test_a_run_records_every_second_of_a_window_whose_title_cannot_be_read_and_counts_them(
        mac: Mac, influxdb1: InfluxDB1, influx_database: str) -> None:
    from click.testing import CliRunner

    from tracker.commands import cli
    from tracker.recording.runlock import acquire_run_lock
    from tracker.recording.runstate import write_status
    from tracker.tasks.doctor import check_running

    mac.add("Notes", "com.apple.Notes", windows=[Window(CUT_INSIDE_AN_EMOJI)], front=True)
    settings = load_settings({"interval": "0.1", "vitals_every": "1s", "away_after": "1h",
                              "influx.url": influxdb1.url, "influx.bucket": influx_database}).settings
    log = io.StringIO()
    stop = threading.Event()

    def counted() -> list[int]:
        # The vitals points' counts. Once in a full run on a busy machine InfluxDB gave a row without the field
        # (every point written carries it): such a row is not a count.
        rows = influxdb1.rows('SELECT * FROM "tracker"', influx_database)
        return [row["unreadable_titles"] for row in rows if row.get("unreadable_titles") is not None]

    with acquire_run_lock():  # as `tracker run` holds it: status and doctor see a running tracker
        parts = open_parts(settings, "macos", ActivityLog(log, "json"))
        run = Run(parts, SystemClock(stop), 0.1, write_status=write_status)
        running = threading.Thread(target=run.run)
        running.start()
        try:
            wait_until(lambda: max(counted(), default=0) >= 3)
        finally:
            stop.set()
            running.join(WAIT_SECONDS)
            parts.close()
        doctor = check_running()
        status = CliRunner().invoke(cli, ["status"]).output
    taken = run.samples_taken
    activity = influxdb1.rows('SELECT * FROM "activity"', influx_database)
    # Every sample reached InfluxDB, with the app and without a title; each one counted.
    assert len(activity) == taken and {(row["app"], row.get("title")) for row in activity} == {("Notes", None)}
    assert counted() == sorted(counted()) and counted()[-1] >= 3
    assert f"titles unread  {taken} samples recorded with the app only" in status, status
    assert (doctor.outcome, doctor.detail.split("; ")[1]) == (
        "warning", f"{taken} samples recorded with the app only: their window title could not be read")
    notices = [line["message"] for line in map(json.loads, log.getvalue().splitlines()) if line["event"] == "notice"]
    assert [notice for notice in notices if "could not be read" in notice] == [
        macos.unreadable_title_notice("Notes")]


# -- the permissions a run records for status.json ---------------------------------------------------------


def states(source: MacOSSource) -> list[tuple[str, str, int | None]]:
    return [(permission.name, permission.state, permission.error) for permission in source.permissions()]


def test_before_any_read_the_two_permissions_every_run_needs_are_not_asked_yet(source: MacOSSource) -> None:
    assert states(source) == [("Automation for System Events", "not asked yet", None),
                              ("Accessibility", "not asked yet", None)]
    assert all(permission.checked_at is None for permission in source.permissions())


def test_a_read_records_each_permission_it_used_as_granted_with_when(mac: Mac, source: MacOSSource) -> None:
    add_browser(mac, CHROME, Window("Example", "https://example.org/"))
    before = datetime.now(timezone.utc)
    source.read()
    # Reading a Chrome tab touches no UI element of System Events: Accessibility is still not asked.
    assert states(source) == [("Automation for System Events", "granted", None),
                              ("Accessibility", "not asked yet", None),
                              ("Automation for Google Chrome", "granted", None)]
    checked = [permission.checked_at for permission in source.permissions() if permission.checked_at]
    assert len(checked) == 2 and all(before <= moment <= datetime.now(timezone.utc) for moment in checked)
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    source.read()
    assert ("Accessibility", "granted", None) in states(source)


@pytest.mark.parametrize(("denial", "number"), [("refused", -1743), ("needs consent", -1744),
                                                ("privilege error", -10004)])
def test_automation_denied_in_any_of_its_forms_is_recorded_with_its_error(
        mac: Mac, source: MacOSSource, notices: list[str], denial: str, number: int) -> None:
    add_browser(mac, CHROME, Window("Example", "https://example.org/"))
    mac.automation["Google Chrome"] = denial
    assert foreground(source) == ("Google Chrome", None, None, False)
    assert ("Automation for Google Chrome", "denied", number) in states(source)
    assert len(notices) == 1 and "System Settings → Privacy & Security → Automation" in notices[0]
    mac.automation["System Events"] = denial
    assert source.read() is None
    assert states(source)[0] == ("Automation for System Events", "denied", number)


def test_accessibility_denied_is_recorded_and_system_events_still_counts_as_allowed(
        mac: Mac, source: MacOSSource) -> None:
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    mac.accessibility = False
    source.read()
    assert states(source) == [("Automation for System Events", "granted", None),
                              ("Accessibility", "denied", -1719)]
    mac.accessibility = True  # allowed meanwhile: the next read says so
    source.read()
    assert states(source)[1] == ("Accessibility", "granted", None)


@pytest.mark.slow
def test_an_open_prompt_is_recorded_as_waiting_for_an_answer(mac: Mac, source: MacOSSource) -> None:
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    mac.automation["System Events"] = "prompt"
    try:
        assert reads_in_a_thread(source, 1) == [None]
        assert states(source)[0] == ("Automation for System Events", "waiting for an answer", None)
    finally:
        mac.answer_prompt("System Events", allow=True)
    wait_until(lambda: foreground(source) == ("TextEdit", "notes.txt", None, False))
    assert states(source)[0] == ("Automation for System Events", "granted", None)


def test_in_the_service_a_refusal_names_the_entry_system_settings_lists_the_service_under(
        mac: Mac, notices: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker import macos_privacy

    monkeypatch.setenv("TRACKER_STARTED_BY", "launchd")  # as the LaunchAgent's plist sets it
    monkeypatch.setattr(macos_privacy, "service_entry",
                        lambda: macos_privacy.SettingsEntry("Python", "/Applications/Python 3.13/Python.app"))
    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    mac.accessibility = False
    source = MacOSSource(notices.append)
    source.read()
    mac.automation["System Events"] = "refused"
    source.read()
    assert notices == [
        "tracker is not allowed to read window titles, so only app names are recorded; allow “Python” (/Applications/"
        "Python 3.13/Python.app) in System Settings → Privacy & Security → Accessibility, then restart tracker.",
        "tracker is not allowed to control System Events, so no app can be recorded; allow “Python” (/Applications/"
        "Python 3.13/Python.app) to control System Events in System Settings → Privacy & Security → Automation, then"
        " restart tracker."]
