"""The macOS source against a scripted fake of appscript: what gets recorded for each situation."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pytest
from fake_appscript import Mac, Tab, module

from tracker.sources import SourceUnavailable, macos
from tracker.sources.macos import MacOSSource

CHROMIUM_FAMILY = ["Google Chrome", "Chromium", "Brave Browser", "Microsoft Edge", "Arc", "Vivaldi"]


@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch) -> Mac:
    scripted = Mac()
    monkeypatch.setitem(sys.modules, "appscript", module(scripted))
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
    return [(target, path) for target, path, _ in mac.events if path and path[-1] == "URL"]


def test_plain_app_with_its_front_window_title(mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    mac.frontmost = "TextEdit"
    mac.window_titles["TextEdit"] = ["notes — “draft”, v2.txt", "older.txt"]
    sample = source.read()
    assert sample is not None
    assert (sample.app, sample.title, sample.url, sample.private) == (
        "TextEdit", "notes — “draft”, v2.txt", None, False)
    assert (sample.idle_seconds, sample.locked) == (42.5, False)
    assert abs(sample.time - datetime.now(timezone.utc)) < timedelta(seconds=5)
    assert notices == []


def test_app_without_windows_is_recorded_without_title(mac: Mac, source: MacOSSource) -> None:
    mac.frontmost = "Finder"
    assert foreground(source) == ("Finder", None, None, False)


def test_locked_screen_is_reported(mac: Mac, source: MacOSSource, monkeypatch: pytest.MonkeyPatch) -> None:
    mac.frontmost = "Finder"
    monkeypatch.setattr(macos, "screen_locked", lambda: True)
    sample = source.read()
    assert sample is not None and sample.locked is True


def test_safari_records_url_and_title_of_current_tab(mac: Mac, source: MacOSSource) -> None:
    mac.frontmost = "Safari"
    mac.tabs["Safari"] = Tab("https://example.org/a?b=1", "Example — A")
    mac.window_titles["Safari"] = ["Example — A"]
    assert foreground(source) == ("Safari", "Example — A", "https://example.org/a?b=1", False)


@pytest.mark.parametrize("browser", CHROMIUM_FAMILY)
def test_chromium_browsers_record_url_and_title_of_active_tab(
        mac: Mac, source: MacOSSource, browser: str) -> None:
    mac.frontmost = browser
    mac.tabs[browser] = Tab("https://docs.python.org/3/", "3.13 Documentation")
    assert foreground(source) == (browser, "3.13 Documentation", "https://docs.python.org/3/", False)


@pytest.mark.parametrize("browser", [*CHROMIUM_FAMILY, "Safari"])
def test_private_window_records_the_app_only_and_never_asks_its_url(
        mac: Mac, source: MacOSSource, browser: str) -> None:
    mac.frontmost = browser
    mac.tabs[browser] = Tab("https://secret.example/", "Secret", private=True)
    mac.window_titles[browser] = ["Secret"]
    assert foreground(source) == (browser, None, None, True)
    assert urls_asked(mac) == []


@pytest.mark.parametrize("refused_at", ["first event", "terminology loading"])
def test_browser_refusing_automation_keeps_app_and_title_and_tells_once(
        mac: Mac, source: MacOSSource, notices: list[str], refused_at: str) -> None:
    mac.frontmost = "Google Chrome"
    mac.tabs["Google Chrome"] = Tab("https://example.org/", "Example")
    mac.window_titles["Google Chrome"] = ["Example - Google Chrome"]
    refused = mac.automation_refused if refused_at == "first event" else mac.terminology_refused
    refused.add("Google Chrome")
    for _ in range(3):
        assert foreground(source) == ("Google Chrome", "Example - Google Chrome", None, False)
    assert len(notices) == 1
    assert "Google Chrome" in notices[0]
    assert "System Settings → Privacy & Security → Automation" in notices[0]


def test_system_events_refusing_automation_records_nothing_and_tells_once(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    mac.frontmost = "TextEdit"
    mac.automation_refused.add("System Events")
    assert [source.read(), source.read()] == [None, None]
    assert len(notices) == 1
    assert "System Events" in notices[0] and "System Settings → Privacy & Security → Automation" in notices[0]


def test_accessibility_refused_records_app_only_and_tells_once(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    mac.frontmost = "TextEdit"
    mac.window_titles["TextEdit"] = ["notes.txt"]
    mac.accessibility = False
    for _ in range(3):
        assert foreground(source) == ("TextEdit", None, None, False)
    assert notices == [macos.ACCESSIBILITY_NOTICE]
    assert "System Settings → Privacy & Security → Accessibility" in notices[0]


def test_safari_without_accessibility_cannot_rule_out_private_so_records_app_only(
        mac: Mac, source: MacOSSource, notices: list[str]) -> None:
    mac.frontmost = "Safari"
    mac.tabs["Safari"] = Tab("https://example.org/", "Example")
    mac.accessibility = False
    assert foreground(source) == ("Safari", None, None, False)
    assert urls_asked(mac) == []
    assert notices == [macos.ACCESSIBILITY_NOTICE]


def test_frontmost_app_quitting_mid_read_gives_app_only(mac: Mac, source: MacOSSource) -> None:
    mac.frontmost = "Preview"
    mac.window_titles["Preview"] = ["scan.pdf"]
    mac.quit_after_name = True
    assert foreground(source) == ("Preview", None, None, False)


def test_no_frontmost_app_reads_as_nothing(mac: Mac, source: MacOSSource) -> None:
    assert source.read() is None


def test_apps_are_looked_up_once_not_per_sample(mac: Mac, source: MacOSSource) -> None:
    mac.frontmost = "Google Chrome"
    mac.tabs["Google Chrome"] = Tab("https://example.org/", "Example")
    for _ in range(3):
        source.read()
    mac.frontmost = "Safari"
    mac.tabs["Safari"] = Tab("https://example.com/", "Other")
    for _ in range(3):
        source.read()
    assert sorted(mac.apps_made) == ["Google Chrome", "Safari", "System Events"]


def test_missing_appscript_is_unavailable_with_a_plain_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "appscript", None)  # makes `import appscript` fail
    with pytest.raises(SourceUnavailable, match="appscript") as raised:
        MacOSSource(lambda message: None)
    assert "--source demo" in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.skipif(sys.platform == "darwin", reason="on macOS Quartz answers for real")
def test_idle_and_lock_state_degrade_quietly_without_quartz() -> None:
    assert macos.hid_idle_seconds() is None
    assert macos.screen_locked() is False
