"""The macOS source: the frontmost app, its window title and a browser's tab, by in-process Apple Events.

appscript sends the Apple Events from this process (no `osascript` per sample): one to System Events for
the frontmost process (name, pid and bundle identifier in one record) and one for its window title; for a
browser, a few to the browser itself, addressed by its process id. Idle time and the lock state come from
Quartz through ctypes, with no subprocess either.

Privacy fails closed: a browser's tab is recorded only when the browser said that its window is not
private, and everything recorded about it comes from that same window.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from tracker.callbacks import Notify
from tracker.categories.privacy import has_private_marker
from tracker.macos_privacy import (
    ACCESSIBILITY,
    ACCESSIBILITY_PANE,
    ANY_TERMINAL,
    AUTOMATION,
    AUTOMATION_PANE,
    grantee,
)
from tracker.model import Sample, utc_now
from tracker.recording.sources import (
    AWAITING_ANSWER,
    DENIED,
    GRANTED,
    NOT_ASKED,
    Permission,
    SourceUnavailable,
)

log = logging.getLogger(__name__)

SYSTEM_EVENTS = "System Events"
# The process macOS puts in front while the screen is locked or another user logs in.
LOGIN_WINDOW = "loginwindow"

# How each browser says that a window is private, by bundle identifier (process names are localised and
# differ between channels). CHROMIUM: the window's `mode` is "incognito". ARC: its `incognito` flag.
# SAFARI: only its Window menu tells (see SAFARI_WINDOW_MENU). TITLE: no tab over AppleScript (Firefox);
# the window title carries a private-browsing marker. APP_ONLY: no private sign known, so app only.
CHROMIUM, ARC, SAFARI, TITLE, APP_ONLY = "chromium", "arc", "safari", "title", "app only"
BROWSERS_BY_BUNDLE_ID = {
    **dict.fromkeys(["com.google.Chrome", "com.google.Chrome.beta", "com.google.Chrome.dev",
                     "com.google.Chrome.canary", "org.chromium.Chromium", "com.brave.Browser",
                     "com.brave.Browser.beta", "com.brave.Browser.nightly", "com.microsoft.edgemac",
                     "com.microsoft.edgemac.Beta", "com.microsoft.edgemac.Dev", "com.microsoft.edgemac.Canary",
                     "com.vivaldi.Vivaldi"], CHROMIUM),
    "company.thebrowser.Browser": ARC,
    "com.apple.Safari": SAFARI,
    "com.apple.SafariTechnologyPreview": SAFARI,
    **dict.fromkeys(["org.mozilla.firefox", "org.mozilla.firefoxdeveloperedition", "org.mozilla.nightly",
                     "app.zen-browser.zen", "net.waterfox.waterfox", "io.gitlab.librewolf-community",
                     "one.ablaze.floorp"], TITLE),
    # Opera's and Orion's scripting has no private flag that was found, and their titles no marker; DuckDuckGo's
    # Fire Windows have none either. Tor Browser and Mullvad Browser: every window is private.
    **dict.fromkeys(["com.operasoftware.Opera", "com.operasoftware.OperaGX", "com.kagi.kagimacOS",
                     "com.duckduckgo.macos.browser", "org.torproject.torbrowser", "net.mullvad.mullvadbrowser"],
                    APP_ONLY),
}
# When System Events gives no bundle identifier: the names of the browsers known before.
BROWSERS_BY_NAME = {"Google Chrome": CHROMIUM, "Chromium": CHROMIUM, "Brave Browser": CHROMIUM,
                    "Microsoft Edge": CHROMIUM, "Vivaldi": CHROMIUM, "Arc": ARC, "Safari": SAFARI,
                    "Firefox": TITLE}

# An app that does not answer within this many seconds is skipped for this sample (appscript waits 60).
APPLE_EVENT_TIMEOUT_SECONDS = 2
# The first request to an app may wait for the user's answer to a permission prompt: said after this long.
PERMISSION_WAIT_NOTICE_SECONDS = 1.0
# errAEEventNotPermitted: the user refused to let this process automate the target app.
AUTOMATION_REFUSED = -1743
# Automation not granted, as Apple Events say it: refused (-1743), errAEEventWouldRequireUserConsent (-1744: macOS
# would have to ask, and could not), errAEPrivilegeError (-10004).
AUTOMATION_DENIED = frozenset({AUTOMATION_REFUSED, -1744, -10004})
# What System Events answers when UI scripting is not allowed: errAEIllegalIndex (-1719) with
# "... is not allowed assistive access", or kAXErrorAPIDisabled (-25211) on newer systems.
ACCESSIBILITY_REFUSED = frozenset({-1719, -25211})
# procNotFound, connectionInvalid: the app quit or crashed. appscript's default relaunch mode ('limited')
# does not start it again by itself.
APP_GONE = frozenset({-600, -609})

# Safari's scripting dictionary has no "private" property for windows or tabs. The one sign found is in
# its Window menu: "Move Tab to New Private Window" while the front window is private, "Move Tab to New
# Window" otherwise (what the SimplyTrack tracker checks; not yet confirmed here on a real Mac). Both are
# English: in another language neither item is found, and Safari is recorded by app only.
SAFARI_WINDOW_MENU = "Window"
SAFARI_PRIVATE_MENU_ITEM = "Move Tab to New Private Window"
SAFARI_NORMAL_MENU_ITEM = "Move Tab to New Window"

RESTART = "then restart tracker"


def accessibility_notice(grantee: str = ANY_TERMINAL) -> str:
    """`grantee`: whom macOS holds responsible for tracker (tracker.macos_privacy.grantee)."""
    return ("tracker is not allowed to read window titles, so only app names are recorded; allow "
            f"{grantee} in {ACCESSIBILITY_PANE}, {RESTART}.")


ACCESSIBILITY_NOTICE = accessibility_notice()
SYSTEM_EVENTS_RELAUNCHED_NOTICE = (
    "System Events quit or crashed during the run; tracker started it again and goes on recording."
)


def automation_notice(target: str, grantee: str = ANY_TERMINAL) -> str:
    consequence = "no app can be recorded" if target == SYSTEM_EVENTS else f"{target} is recorded by app only"
    return (f"tracker is not allowed to control {target}, so {consequence}; allow {grantee} to control {target} "
            f"in {AUTOMATION_PANE}, {RESTART}.")


def permission_wait_notice(target: str) -> str:
    what = "nothing is recorded" if target == SYSTEM_EVENTS else f"{target} is recorded by app only"
    return (f"Waiting for {target} to answer: if macOS asks whether tracker may control {target}, {what} "
            "until you click OK or Don't Allow.")


def unreadable_title_notice(app: str) -> str:
    return (f"A window title of {app} could not be read (appscript cannot decode some titles, such as one cut inside "
            "an emoji): those seconds are recorded with the app only, and `tracker status` counts them.")


def browser_kind(name: str, bundle_id: str | None) -> str | None:
    if bundle_id:
        return BROWSERS_BY_BUNDLE_ID.get(bundle_id)
    return BROWSERS_BY_NAME.get(name)


# Whether tracker may control a browser (see MacOSSource.browser_permissions).
ALLOWED, REFUSED, WAITING, NO_ANSWER = "allowed", "refused", "waiting", "no answer"


class BrowserPermission(NamedTuple):
    """A running browser that tracker asks for its tab, and whether macOS lets it."""

    name: str
    state: str  # ALLOWED, REFUSED, WAITING (a permission prompt is open) or NO_ANSWER


class _Foreground(NamedTuple):
    """What could be read about the frontmost app's window."""

    title: str | None = None
    url: str | None = None
    private: bool = False


APP_ONLY_FOREGROUND = _Foreground()
# A Chromium window's mode, Arc's incognito flag: whether the window is private. Anything else: cannot tell.
PRIVATE_FLAGS: dict[bool | str, bool] = {"incognito": True, "normal": False, True: True, False: False}
PRIVATE_FOREGROUND = _Foreground(private=True)


class _Failed(Exception):
    """The browser's tab cannot be recorded (no window, privacy unknown, a window switch): app only."""


class _Waiting(Exception):
    """The first request to an app is still held by macOS's permission prompt."""


class _FirstRequest:
    """The first Apple Event to an app, sent from its own thread: a permission prompt may hold it."""

    def __init__(self, reference: Callable[[], Any]) -> None:
        self.done = threading.Event()
        self._answer: Any = None
        self._error: BaseException | None = None
        threading.Thread(target=self._send, args=(reference,), name="tracker-first-apple-event",
                         daemon=True).start()

    def _send(self, reference: Callable[[], Any]) -> None:
        try:
            self._answer = reference().get(timeout=APPLE_EVENT_TIMEOUT_SECONDS)
        except BaseException as error:  # handed to the reading thread, which explains it
            self._error = error
        finally:
            self.done.set()

    def outcome(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._answer


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
        try:
            from aem.ae import MacOSError  # appscript's own C layer: Launch Services and OS calls
        except ImportError:
            MacOSError = OSError
        self._appscript = appscript
        # What a failed request can raise: an Apple Event error, an app that is gone or cannot be found,
        # a name missing from the app's dictionary (AttributeError), appscript failing to load an app's
        # terminology (RuntimeError), or an OS call failing underneath (MacOSError).
        self._request_errors: tuple[type[BaseException], ...] = (
            appscript.CommandError, appscript.ApplicationNotFoundError, appscript.CantLaunchApplicationError,
            RuntimeError, AttributeError, MacOSError,
        )
        self._notify = notify
        self._notified: set[str] = set()
        self._grantee = grantee()  # the service's program, or the terminal app that started tracker
        self._system_events: Any = None
        self._bundle_ids: dict[str, str] = {}  # by process name
        self._browsers_by_pid: dict[int, Any] = {}
        self._answered: set[str] = set()  # targets that answered once: no permission prompt to wait for
        self._first_requests: dict[str, _FirstRequest] = {}
        self.unreadable_titles = 0  # samples whose window could not be read, recorded with the app only
        # What each request said of its permission, for status.json: the two every run needs come first.
        self._permissions: dict[tuple[str, str | None], Permission] = {
            (AUTOMATION, SYSTEM_EVENTS): Permission(AUTOMATION, SYSTEM_EVENTS, NOT_ASKED),
            (ACCESSIBILITY, None): Permission(ACCESSIBILITY, None, NOT_ASKED)}

    def permissions(self) -> list[Permission]:
        return list(self._permissions.values())

    def read(self) -> Sample | None:
        try:
            return self._read()
        except Exception:  # a read never raises: one bad moment must not stop the recording
            log.debug("reading the frontmost macOS app failed", exc_info=True)
            return None

    def close(self) -> None:
        self._system_events = None
        self._browsers_by_pid.clear()

    def _read(self) -> Sample | None:
        time = utc_now()
        front = self._front_process()
        if front is None:  # between two apps, or System Events refused
            return None
        name, bundle_id = front
        foreground = self._foreground(name, bundle_id)
        return Sample(time=time, app=name, title=foreground.title, url=foreground.url,
                      private=foreground.private, idle_seconds=hid_idle_seconds(),
                      locked=name == LOGIN_WINDOW or screen_locked())

    def _foreground(self, name: str, bundle_id: str | None) -> _Foreground:
        """What can be read of the front app's window; a failure to read it costs its title, never the second."""
        kind = browser_kind(name, bundle_id)
        try:
            if name == LOGIN_WINDOW:
                return APP_ONLY_FOREGROUND
            if kind is None:
                return _Foreground(title=self._front_window_title(name))
            return self._browser_foreground(kind, name)
        except Exception:  # e.g. a title cut inside an emoji, which appscript cannot decode
            self.unreadable_titles += 1
            log.debug("reading the window of %s failed", name, exc_info=True)
            self._notify_once("unreadable title", unreadable_title_notice(name))
            return APP_ONLY_FOREGROUND

    # -- System Events -------------------------------------------------------------------------------

    def _front_process(self) -> tuple[str, str | None] | None:
        """Name and bundle identifier of the frontmost process."""
        # `== True` builds an Apple Event test clause (appscript overloads ==); `is` would not.
        names = self._ask_system_events(
            lambda events: events.processes[self._appscript.its.frontmost == True].name)  # noqa: E712
        name = _text(names[0]) if isinstance(names, list) and names else None
        if name is None:
            return None
        bundle_id = self._bundle_ids.get(name)
        if bundle_id is None:
            bundle_id = _text(self._ask_system_events(lambda events: events.processes[name].bundle_identifier))
            if bundle_id is not None:
                if len(self._bundle_ids) > 256:
                    self._bundle_ids.clear()
                self._bundle_ids[name] = bundle_id
        return name, bundle_id

    def _process_id(self, name: str) -> int | None:
        """The pid of the process called `name` (the one just named as frontmost: no other app's)."""
        pid = self._ask_system_events(lambda events: events.processes[name].unix_id)
        return pid if isinstance(pid, int) else None

    def _front_window_title(self, app: str) -> str | None:
        # All window names rather than window 1's: an app without windows then answers [] instead of
        # errAEIllegalIndex, which System Events also uses to say that Accessibility is refused.
        names = self._ask_system_events(lambda events: events.processes[app].windows.name, needs_accessibility=True)
        return _text(names[0]) if isinstance(names, list) and names else None

    def _safari_private(self, process: str) -> bool | None:
        """True or False from one read of the Window menu's items; None when they do not tell."""
        items = self._ask_system_events(
            lambda events: events.processes[process].menu_bars[1].menus[SAFARI_WINDOW_MENU].menu_items.name,
            needs_accessibility=True)
        names = set(items) if isinstance(items, list) else set()
        if SAFARI_PRIVATE_MENU_ITEM in names:
            return True
        return False if SAFARI_NORMAL_MENU_ITEM in names else None

    def _ask_system_events(self, reference: Callable[[Any], Any], needs_accessibility: bool = False) -> Any:
        """System Events' answer, or None. When it quit or crashed, it is started again once and asked again:
        appscript's references to the old process would answer -600/-609 for the rest of the run.
        `needs_accessibility`: the request reads UI elements, so its outcome says whether Accessibility is granted."""
        try:
            return self._send(SYSTEM_EVENTS, lambda: reference(self._system_events_app()), needs_accessibility)
        except _Waiting:
            return None
        except self._request_errors as error:
            if _error_number(error) not in APP_GONE:
                self._explain(error, SYSTEM_EVENTS)
                return None
        self._system_events = None  # a new app() connects anew, which launches System Events
        try:
            answer = self._send(SYSTEM_EVENTS, lambda: reference(self._system_events_app()), needs_accessibility)
        except self._request_errors as error:
            self._system_events = None
            self._notify_once("system events gone", (
                f"System Events quit and could not be started again ({_error_number(error) or error}), so no "
                "app is recorded; tracker tries again every sample."))
            return None
        self._notify_once("system events relaunched", SYSTEM_EVENTS_RELAUNCHED_NOTICE)
        return answer

    def _system_events_app(self) -> Any:
        """appscript's app('System Events'), made once: making one looks the app up on disk."""
        if self._system_events is None:
            self._system_events = self._appscript.app(SYSTEM_EVENTS)
        return self._system_events

    # -- browsers --------------------------------------------------------------------------------------

    def _browser_foreground(self, kind: str, name: str) -> _Foreground:
        """The browser's front window: private, its tab, or the app only when privacy cannot be told."""
        if kind == TITLE:
            title = self._front_window_title(name)
            return PRIVATE_FOREGROUND if has_private_marker(title) else _Foreground(title=title)
        pid = None if kind == APP_ONLY else self._process_id(name)
        if pid is None:
            return APP_ONLY_FOREGROUND
        try:
            return self._tab_foreground(kind, name, pid)
        except _Failed:
            return APP_ONLY_FOREGROUND

    def _tab_foreground(self, kind: str, name: str, pid: int) -> _Foreground:
        """Every answer about the tab comes from the window named by id first: a window switch between two
        Apple Events must not attach one window's address to another window's privacy answer."""
        browser = self._browser_app(pid)
        window_id = self._ask_browser(name, pid, lambda: browser.windows[1].id)
        if window_id is None:  # no window, or the browser does not say
            raise _Failed

        def window() -> Any:
            return browser.windows.ID(window_id)

        def tab() -> Any:
            return window().current_tab if kind == SAFARI else window().active_tab

        if kind == SAFARI:
            private = self._safari_private(name)
        else:
            flag = self._ask_browser(name, pid, lambda: window().incognito if kind == ARC else window().mode)
            private = PRIVATE_FLAGS.get(flag) if isinstance(flag, (bool, str)) else None
        if private is None:  # cannot tell: record the app only, to err on the private side
            raise _Failed
        if private:
            return PRIVATE_FOREGROUND
        title = _text(self._ask_browser(name, pid, lambda: tab().name if kind == SAFARI else tab().title))
        url = _text(self._ask_browser(name, pid, lambda: tab().URL))
        # Safari's answer came from its menu, about whichever window was in front then: still the same one?
        if kind == SAFARI and self._ask_browser(name, pid, lambda: browser.windows[1].id) != window_id:
            raise _Failed
        if has_private_marker(title):
            return PRIVATE_FOREGROUND
        return _Foreground(title=title, url=url)

    def _browser_app(self, pid: int) -> Any:
        """appscript's app(pid=…): it addresses the running process, so it never launches another copy."""
        browser = self._browsers_by_pid.get(pid)
        if browser is None:
            if len(self._browsers_by_pid) > 32:  # old pids of browsers that quit
                self._browsers_by_pid.clear()
            browser = self._browsers_by_pid[pid] = self._appscript.app(pid=pid)
        return browser

    def _ask_browser(self, name: str, pid: int, reference: Callable[[], Any]) -> Any:
        """The browser's answer, or None: an error about its tab costs that answer, never the sample."""
        try:
            return self._send(name, reference)
        except _Waiting:
            return None
        except self._request_errors as error:
            if _error_number(error) in APP_GONE or isinstance(error, RuntimeError):
                self._browsers_by_pid.pop(pid, None)  # quit: the pid will not come back
            self._explain(error, name)
            return None

    def browser_permissions(self) -> list[BrowserPermission]:
        """Each running browser tracker asks for its tab (Firefox and the app-only ones it never asks), and
        whether it may: one cheap Apple Event each, sent like every other, so an open prompt never holds it."""
        names = self._ask_system_events(lambda events: events.processes.name)
        bundle_ids = self._ask_system_events(lambda events: events.processes.bundle_identifier)
        if not isinstance(names, list) or not isinstance(bundle_ids, list) or len(names) != len(bundle_ids):
            return []  # System Events refused, or a process started or quit between the two answers
        permissions = []
        for name, bundle_id in zip(names, bundle_ids, strict=True):
            if browser_kind(name, _text(bundle_id)) in (CHROMIUM, ARC, SAFARI):
                pid = self._process_id(name)
                if pid is not None:
                    permissions.append(BrowserPermission(name, self._browser_permission(name, pid)))
        return permissions

    def accessibility_allowed(self) -> bool | None:
        """Whether System Events may read apps' windows (Accessibility), asked of its own, so whichever app is
        in front; None when it cannot be told (System Events refused, waiting, or not answering)."""
        try:
            self._send(SYSTEM_EVENTS, lambda: self._system_events_app().processes[SYSTEM_EVENTS].windows.name,
                       needs_accessibility=True)
        except _Waiting:
            return None
        except self._request_errors as error:
            self._explain(error, SYSTEM_EVENTS)
            return False if _accessibility_refused(error) else None
        return True

    def _browser_permission(self, name: str, pid: int) -> str:
        try:  # every window's id: [] without windows, no error
            self._send(name, lambda: self._browser_app(pid).windows.id)
        except _Waiting:
            return WAITING
        except self._request_errors as error:
            self._explain(error, name)
            return REFUSED if _error_number(error) in AUTOMATION_DENIED else NO_ANSWER
        return ALLOWED

    # -- sending and explaining ------------------------------------------------------------------------

    def _send(self, target: str, reference: Callable[[], Any], needs_accessibility: bool = False) -> Any:
        """`get` of `reference()` (see _deliver), and what its outcome says of the permissions it needed."""
        try:
            answer = self._deliver(target, reference)
        except _Waiting:
            self._seen(AUTOMATION, target, AWAITING_ANSWER)
            raise
        except self._request_errors as error:
            number = _error_number(error)
            if number in AUTOMATION_DENIED:
                self._seen(AUTOMATION, target, DENIED, number)
            elif needs_accessibility and _accessibility_refused(error):
                self._seen(AUTOMATION, target, GRANTED)  # System Events answered: only UI scripting is refused
                self._seen(ACCESSIBILITY, None, DENIED, number)
            raise
        self._seen(AUTOMATION, target, GRANTED)
        if needs_accessibility:
            self._seen(ACCESSIBILITY, None, GRANTED)
        return answer

    def _seen(self, kind: str, target: str | None, state: str, error: int | None = None) -> None:
        if len(self._permissions) > 64:  # browsers by the dozen: keep the two every run needs
            self._permissions = dict(list(self._permissions.items())[:2])
        self._permissions[(kind, target)] = Permission(kind, target, state, utc_now(), error)

    def _deliver(self, target: str, reference: Callable[[], Any]) -> Any:
        """`get` of `reference()`. The first request to a target may be held by macOS's permission prompt
        until the user answers, for minutes: it goes out on its own thread, and while it waits each read
        returns at once (_Waiting) after a notice says so, so the live view, --for and Ctrl-C go on."""
        if target in self._answered:
            return reference().get(timeout=APPLE_EVENT_TIMEOUT_SECONDS)
        first = self._first_requests.get(target)
        if first is None:
            first = self._first_requests[target] = _FirstRequest(reference)
            if first.done.wait(PERMISSION_WAIT_NOTICE_SECONDS):
                del self._first_requests[target]
                self._answered.add(target)
                return first.outcome()
            self._notify(permission_wait_notice(target))
        if not first.done.is_set():
            raise _Waiting
        del self._first_requests[target]
        self._answered.add(target)
        # Answered after a wait: that answer is old, so ask again (a refusal raises at once now).
        answer = reference().get(timeout=APPLE_EVENT_TIMEOUT_SECONDS)
        self._notify(f"tracker may now control {target}.")
        return answer

    def _explain(self, error: BaseException, target: str) -> None:
        if _error_number(error) in AUTOMATION_DENIED:
            self._notify_once(f"automation of {target}", automation_notice(target, self._grantee))
        elif target == SYSTEM_EVENTS and _accessibility_refused(error):
            self._notify_once("accessibility", accessibility_notice(self._grantee))
        else:
            log.debug("%s did not answer: %s", target, error)

    def _notify_once(self, kind: str, notice: str) -> None:
        if kind not in self._notified:
            self._notified.add(kind)
            self._notify(notice)


def _error_number(error: BaseException) -> int | None:
    """The OS error number of an appscript error, of the error it wraps, or of a MacOSError (args[0])."""
    for candidate in (error, error.__cause__):
        number = getattr(candidate, "errornumber", None)
        if number is None and candidate is not None and candidate.args:
            number = candidate.args[0]
        if isinstance(number, int):
            return number
    return None


def _accessibility_refused(error: BaseException) -> bool:
    """Whether System Events' error says that UI scripting is not allowed."""
    message = str(getattr(error, "errormessage", None) or error).lower()
    return _error_number(error) in ACCESSIBILITY_REFUSED or "assistive access" in message


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
    on_console_key: int  # kCGSessionOnConsoleKey: false while another user's session has the screen


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
        console_key = foundation.CFStringCreateWithCString(None, b"kCGSSessionOnConsoleKey", _UTF8_ENCODING)
    except (OSError, AttributeError):
        return None
    return _Quartz(graphics, foundation, key, console_key) if key and console_key else None


def hid_idle_seconds() -> float | None:
    """Seconds since the last keyboard, mouse or trackpad input; None when Quartz cannot be loaded."""
    quartz = _quartz()
    if quartz is None:
        return None
    return float(quartz.graphics.CGEventSourceSecondsSinceLastEventType(_HID_SYSTEM_STATE, _ANY_INPUT_EVENT))


def session_away(screen_is_locked: bool | None, on_console: bool | None) -> bool:
    """Whether this session's user is away from it: its screen is locked, or (Fast User Switching) another
    user's session has the screen, whose input must not count as this user's. None: the flag is absent."""
    return screen_is_locked is True or on_console is False


def screen_locked() -> bool:
    """True while this session is locked or switched away from (see session_away); False when it cannot be told.

    The session dictionary carries CGSSessionScreenIsLocked only while locked; the key is undocumented
    but is what loginwindow has set for years. kCGSessionOnConsoleKey is documented (CGSession.h).
    """
    quartz = _quartz()
    if quartz is None:
        return False
    session = quartz.graphics.CGSessionCopyCurrentDictionary()
    if not session:  # no window-server session (e.g. over ssh)
        return False
    try:
        return session_away(_session_flag(quartz, session, quartz.screen_locked_key),
                            _session_flag(quartz, session, quartz.on_console_key))
    finally:
        quartz.foundation.CFRelease(session)


def _session_flag(quartz: _Quartz, session: int, key: int) -> bool | None:
    """A boolean of the session dictionary; None when absent; True when present with another type."""
    value = quartz.foundation.CFDictionaryGetValue(session, key)
    if not value:
        return None
    if quartz.foundation.CFGetTypeID(value) != quartz.foundation.CFBooleanGetTypeID():
        return True  # present with an unexpected type: its presence is what says it
    return bool(quartz.foundation.CFBooleanGetValue(value))
