"""The macOS source: the frontmost app, its window title and a browser's tab, by in-process Apple Events.

appscript sends the Apple Events from this process (no `osascript` per sample): one to System Events for
the frontmost app and one for its window title; for a browser, two or three to the browser instead.
Idle time and the lock state come from Quartz through ctypes, with no subprocess either.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from tracker.model import Sample, utc_now
from tracker.sources import Notify, SourceUnavailable

log = logging.getLogger(__name__)

SYSTEM_EVENTS = "System Events"
SAFARI = "Safari"
ARC = "Arc"
# Browsers with Chrome's scripting dictionary: windows[1].active_tab has URL and title.
CHROMIUM_BROWSERS = frozenset({"Google Chrome", "Chromium", "Brave Browser", "Microsoft Edge", "Vivaldi",
                               ARC})
BROWSERS = CHROMIUM_BROWSERS | {SAFARI}

# An app that does not answer within this many seconds is skipped for this sample (appscript waits 60).
APPLE_EVENT_TIMEOUT_SECONDS = 2
# errAEEventNotPermitted: the user refused to let this process automate the target app.
AUTOMATION_REFUSED = -1743
# What System Events answers when UI scripting is not allowed: errAEIllegalIndex (-1719) with
# "... is not allowed assistive access", or kAXErrorAPIDisabled (-25211) on newer systems.
ACCESSIBILITY_REFUSED = frozenset({-1719, -25211})

# Safari's scripting dictionary has no "private" property for windows or tabs. The one sign found is in
# its menus: the Window menu offers "Move Tab to New Private Window" when the front window is private
# (what the SimplyTrack tracker checks; not yet confirmed here on a real Mac). It needs Accessibility and
# only works with Safari in English: in other languages private windows are not detected. When the check
# cannot be made, Safari is recorded by app only, to err on the private side.
SAFARI_WINDOW_MENU = "Window"
SAFARI_PRIVATE_MENU_ITEM = "Move Tab to New Private Window"

ACCESSIBILITY_NOTICE = (
    "tracker is not allowed to read window titles, so only app names are recorded; allow your terminal "
    "(or whatever runs tracker) in System Settings → Privacy & Security → Accessibility."
)


def automation_notice(target: str) -> str:
    consequence = "no app can be recorded" if target == SYSTEM_EVENTS else f"{target} tab addresses are not recorded"
    return (
        f"tracker is not allowed to control {target}, so {consequence}; allow your terminal (or whatever "
        f"runs tracker) to control {target} in System Settings → Privacy & Security → Automation."
    )


class _Foreground(NamedTuple):
    """What could be read about the frontmost app's window."""

    title: str | None = None
    url: str | None = None
    private: bool = False


class _TabReferences(NamedTuple):
    """One browser's references to its front window's active tab, built once (building loads terminology)."""

    private_flag: Any  # Chromium: the window's mode ("incognito"); Arc: its incognito flag; Safari: None
    url: Any
    title: Any


class MacOSSource:
    """The frontmost app on macOS, through System Events and the browsers' own scripting."""

    name = "macos"

    def __init__(self, notify: Notify) -> None:
        try:
            import appscript
        except ImportError:
            raise SourceUnavailable(
                "The macOS source needs the appscript package, which is not installed; install it with "
                "`pip install appscript`, or try `tracker run --source demo`."
            ) from None
        self._appscript = appscript
        # What a failed request can raise: an Apple Event error, an app that is gone, or (RuntimeError)
        # appscript failing to load an app's terminology, which it does on first use of a reference.
        self._request_errors: tuple[type[BaseException], ...] = (
            appscript.CommandError, appscript.ApplicationNotFoundError, appscript.CantLaunchApplicationError,
            RuntimeError,
        )
        self._notify = notify
        self._notified: set[str] = set()
        self._applications: dict[str, Any] = {}
        self._tab_references_by_browser: dict[str, _TabReferences] = {}
        self._front_process_names_reference: Any = None

    def read(self) -> Sample | None:
        try:
            return self._read()
        except Exception:  # a read never raises: one bad moment must not stop the recording
            log.debug("reading the frontmost macOS app failed", exc_info=True)
            return None

    def close(self) -> None:
        self._applications.clear()
        self._tab_references_by_browser.clear()
        self._front_process_names_reference = None

    def _read(self) -> Sample | None:
        time = utc_now()
        names = self._ask(SYSTEM_EVENTS, self._front_process_names)
        app = _text(names[0]) if names else None
        if app is None:  # between two apps, or System Events refused
            return None
        foreground = self._browser_tab(app) if app in BROWSERS else None
        if foreground is None:
            foreground = _Foreground(title=self._front_window_title(app))
        return Sample(time=time, app=app, title=foreground.title, url=foreground.url,
                      private=foreground.private, idle_seconds=hid_idle_seconds(), locked=screen_locked())

    def _application(self, name: str) -> Any:
        """appscript's app(name), made once per app: making one looks the app up on disk."""
        application = self._applications.get(name)
        if application is None:
            application = self._applications[name] = self._appscript.app(name)
        return application

    def _processes(self) -> Any:
        return self._application(SYSTEM_EVENTS).processes

    def _front_process_names(self) -> Any:
        if self._front_process_names_reference is None:
            # `== True` builds an Apple Event test clause (appscript overloads ==); `is` would not.
            frontmost = self._appscript.its.frontmost == True  # noqa: E712
            self._front_process_names_reference = self._processes()[frontmost].name
        return self._front_process_names_reference

    def _front_window_title(self, app: str) -> str | None:
        # All window names rather than window 1's: an app without windows then answers [] instead of
        # errAEIllegalIndex, which System Events also uses to say that Accessibility is refused.
        names = self._ask(SYSTEM_EVENTS, lambda: self._processes()[app].windows.name)
        return _text(names[0]) if names else None

    def _browser_tab(self, browser: str) -> _Foreground | None:
        """The active tab of the browser's front window; None when the browser does not tell."""
        if browser == SAFARI:  # asked first: a private window's title must not be read either
            private = self._ask(SYSTEM_EVENTS, self._safari_private_menu_item, command="exists")
            if private is None:  # cannot tell: record the app only (see SAFARI_PRIVATE_MENU_ITEM)
                return _Foreground()
            if private:
                return _Foreground(private=True)
        else:
            flag = self._ask(browser, lambda: self._tab_references(browser).private_flag)
            if flag is None:
                return None
            if flag is True or flag == "incognito":
                return _Foreground(private=True)
        url = self._ask(browser, lambda: self._tab_references(browser).url)
        if url is None:
            return None
        title = self._ask(browser, lambda: self._tab_references(browser).title)
        return _Foreground(title=_text(title), url=_text(url))

    def _tab_references(self, browser: str) -> _TabReferences:
        references = self._tab_references_by_browser.get(browser)
        if references is None:
            window = self._application(browser).windows[1]
            if browser == SAFARI:
                references = _TabReferences(None, window.current_tab.URL, window.current_tab.name)
            else:
                private_flag = window.incognito if browser == ARC else window.mode
                references = _TabReferences(private_flag, window.active_tab.URL, window.active_tab.title)
            self._tab_references_by_browser[browser] = references
        return references

    def _safari_private_menu_item(self) -> Any:
        window_menu = self._processes()[SAFARI].menu_bars[1].menus[SAFARI_WINDOW_MENU]
        return window_menu.menu_items[SAFARI_PRIVATE_MENU_ITEM]

    def _ask(self, target: str, reference: Callable[[], Any], command: str = "get") -> Any:
        """The answer of `target` to `command` on `reference()`, or None when the request failed (told to
        the user when it was a permission they can grant). The reference is made inside, because making
        one can fail too: appscript loads the app's terminology on first use."""
        try:
            return getattr(reference(), command)(timeout=APPLE_EVENT_TIMEOUT_SECONDS)
        except self._request_errors as error:
            self._explain(error, target)
            return None

    def _explain(self, error: BaseException, target: str) -> None:
        number = getattr(error, "errornumber", None) or getattr(error.__cause__, "errornumber", None)
        message = str(getattr(error, "errormessage", None) or error).lower()
        if number == AUTOMATION_REFUSED:
            self._notify_once(f"automation of {target}", automation_notice(target))
        elif target == SYSTEM_EVENTS and (number in ACCESSIBILITY_REFUSED or "assistive access" in message):
            self._notify_once("accessibility", ACCESSIBILITY_NOTICE)
        else:
            log.debug("%s did not answer: %s", target, error)

    def _notify_once(self, kind: str, notice: str) -> None:
        if kind not in self._notified:
            self._notified.add(kind)
            self._notify(notice)


def _text(value: Any) -> str | None:
    """A non-empty string, or None for anything else (appscript answers k.missing_value for 'nothing')."""
    return value if isinstance(value, str) and value else None


# Quartz, through ctypes. Each function loads the frameworks on first use and answers None / False when
# they cannot be loaded (any other OS, or a stripped-down macOS): idle time and lock state are extras.

_HID_SYSTEM_STATE = 1  # kCGEventSourceStateHIDSystemState: input from the hardware, all sessions
_ANY_INPUT_EVENT = 0xFFFFFFFF  # kCGAnyInputEventType
_UTF8_ENCODING = 0x08000100  # kCFStringEncodingUTF8


class _Quartz(NamedTuple):
    graphics: ctypes.CDLL
    foundation: ctypes.CDLL
    screen_locked_key: int  # the CFString "CGSSessionScreenIsLocked", made once and kept


@functools.cache
def _quartz() -> _Quartz | None:
    try:
        graphics = ctypes.CDLL("/System/Library/Frameworks/CoreGraphics.framework/CoreGraphics")
        foundation = ctypes.CDLL("/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation")
        graphics.CGEventSourceSecondsSinceLastEventType.argtypes = [ctypes.c_int32, ctypes.c_uint32]
        graphics.CGEventSourceSecondsSinceLastEventType.restype = ctypes.c_double
        graphics.CGSessionCopyCurrentDictionary.argtypes = []
        graphics.CGSessionCopyCurrentDictionary.restype = ctypes.c_void_p
        foundation.CFStringCreateWithCString.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32]
        foundation.CFStringCreateWithCString.restype = ctypes.c_void_p
        foundation.CFDictionaryGetValue.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        foundation.CFDictionaryGetValue.restype = ctypes.c_void_p
        foundation.CFGetTypeID.argtypes = [ctypes.c_void_p]
        foundation.CFGetTypeID.restype = ctypes.c_ulong
        foundation.CFBooleanGetTypeID.argtypes = []
        foundation.CFBooleanGetTypeID.restype = ctypes.c_ulong
        foundation.CFBooleanGetValue.argtypes = [ctypes.c_void_p]
        foundation.CFBooleanGetValue.restype = ctypes.c_bool
        foundation.CFRelease.argtypes = [ctypes.c_void_p]
        foundation.CFRelease.restype = None
        key = foundation.CFStringCreateWithCString(None, b"CGSSessionScreenIsLocked", _UTF8_ENCODING)
    except (OSError, AttributeError):
        return None
    return _Quartz(graphics, foundation, key) if key else None


def hid_idle_seconds() -> float | None:
    """Seconds since the last keyboard, mouse or trackpad input; None when Quartz cannot be loaded."""
    quartz = _quartz()
    if quartz is None:
        return None
    return float(quartz.graphics.CGEventSourceSecondsSinceLastEventType(_HID_SYSTEM_STATE, _ANY_INPUT_EVENT))


def screen_locked() -> bool:
    """True while the login window covers the session (screen locked); False when it cannot be told.

    The session dictionary carries CGSSessionScreenIsLocked only while locked; the key is undocumented
    but is what loginwindow has set for years.
    """
    quartz = _quartz()
    if quartz is None:
        return False
    session = quartz.graphics.CGSessionCopyCurrentDictionary()
    if not session:  # no window-server session (e.g. over ssh)
        return False
    try:
        value = quartz.foundation.CFDictionaryGetValue(session, quartz.screen_locked_key)
        if not value:
            return False
        if quartz.foundation.CFGetTypeID(value) != quartz.foundation.CFBooleanGetTypeID():
            return True  # present with an unexpected type: its presence is what says locked
        return bool(quartz.foundation.CFBooleanGetValue(value))
    finally:
        quartz.foundation.CFRelease(session)
