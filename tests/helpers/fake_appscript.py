"""A stand-in for appscript 1.5.0 that is as strict as the real one, so the macOS source runs anywhere.

A scripted `Mac` holds running processes (System Events is one of them), their windows, Safari's menus and
each app's scripting dictionary. References are resolved against it generically, the way appscript and the
apps do, with the rules read from appscript 1.5.0's own source (see shared notes, appscript-facts.md):

- a name missing from the target app's dictionary raises AttributeError when the reference is built;
- `app(name)` finds the app on disk through Launch Services; its first use connects and launches it when no
  process runs from that path (a second copy, when the running one came from elsewhere); `app(pid=N)`
  never launches anything;
- relaunch mode 'limited': a quit app answers -600 (-609 for a connection that went away) to get/exists
  until something starts it again, then the old reference reconnects; `launch()` starts it;
- Automation is checked at the command send, with -1743 when refused; a pending prompt blocks the send
  until answered; UI elements of System Events answer -1719 "not allowed assistive access" without
  Accessibility;
- `exists` answers False for an object that is not there (a missing menu), where `get` fails with -1728.

Install it with `install(monkeypatch, mac)`.
"""

from __future__ import annotations

import itertools
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

NO_SUCH_PROCESS = -600
CONNECTION_INVALID = -609
NO_SUCH_OBJECT = -1728
INVALID_INDEX = -1719
AUTOMATION_REFUSED = -1743
# How Automation can be denied, by the fake's name for it: errAEEventNotPermitted (the user refused),
# errAEEventWouldRequireUserConsent (macOS would have to ask), errAEPrivilegeError.
AUTOMATION_DENIALS = {"refused": (AUTOMATION_REFUSED, "Not authorized to send Apple events to {name}."),
                      "needs consent": (-1744, "Sending Apple events to {name} requires the user's consent."),
                      "privilege error": (-10004, "A privilege violation occurred.")}
LAUNCH_SERVICES_UNAVAILABLE = -10822


class MacOSError(Exception):
    """aem.ae.MacOSError: an OS call failed; args[0] is the error number."""


class CommandError(Exception):
    """appscript.CommandError: an Apple Event that failed, with its OS error number and message."""

    def __init__(self, errornumber: int, errormessage: str = "") -> None:
        super().__init__(errornumber, errormessage)
        self.errornumber = errornumber
        self.errormessage = errormessage

    def __int__(self) -> int:
        return self.errornumber


class ApplicationNotFoundError(Exception):
    pass


class CantLaunchApplicationError(Exception):
    def __init__(self, errornumber: int, apppath: str) -> None:
        super().__init__(errornumber, apppath)
        self.errornumber = errornumber


# Scripting dictionaries, as appscript names their terms.
SYSTEM_EVENTS_TERMS = frozenset({"processes", "application_processes", "name", "frontmost", "unix_id",
                                 "bundle_identifier", "windows", "menu_bars", "menus", "menu_items", "title",
                                 "launch"})
STANDARD_TERMS = frozenset({"windows", "name", "id", "index", "launch"})  # what Firefox offers
CHROME_TERMS = STANDARD_TERMS | {"mode", "active_tab", "tabs", "URL", "title"}
ARC_TERMS = STANDARD_TERMS | {"incognito", "active_tab", "tabs", "URL", "title"}
SAFARI_TERMS = STANDARD_TERMS | {"current_tab", "tabs", "URL", "document"}
# System Events' UI elements: reading them needs Accessibility.
UI_ELEMENTS = frozenset({"windows", "menu_bars"})

# Safari's Window menu per language; the item that moves a tab names the kind of the front window.
SAFARI_WINDOW_MENU = {
    "en": ("Window", "Move Tab to New Window", "Move Tab to New Private Window"),
    "de": ("Fenster", "Tab in neues Fenster bewegen", "Tab in neues privates Fenster bewegen"),
}


@dataclass
class Window:
    title: str  # System Events' name of the window; Chrome's active tab title
    url: str | None = None  # the active tab's address (browsers)
    private: bool = False
    id: int = field(default_factory=itertools.count(1001).__next__)


@dataclass
class Process:
    name: str
    bundle_id: str
    path: str
    pid: int
    terms: frozenset[str]
    windows: list[Window] = field(default_factory=list)  # front window first
    running: bool = True
    gone_error: int = NO_SUCH_PROCESS  # what its old references answer once it quit (-609 after a crash)


@dataclass
class Mac:
    """What the fake Apple Events answer."""

    frontmost: str | None = None  # a process name
    processes: dict[str, Process] = field(default_factory=dict)
    installed: dict[str, str] = field(default_factory=dict)  # app name -> the path Launch Services prefers
    # process name -> "prompt" or a key of AUTOMATION_DENIALS ("refused", …); else allowed
    automation: dict[str, str] = field(default_factory=dict)
    accessibility: bool = True
    safari_language: str = "en"
    launch_services_errors: dict[str, int] = field(default_factory=dict)  # app name -> findapp's MacOSError
    launched: list[str] = field(default_factory=list)  # paths started by appscript
    events: list[tuple[str, str, tuple[Any, ...]]] = field(default_factory=list)  # (process, command, path)
    # Run after the n-th event sent to a process: (process, n) -> action (e.g. bring another window forward).
    after_event: dict[tuple[str, int], Callable[[], None]] = field(default_factory=dict)
    _prompt_answered: threading.Condition = field(default_factory=threading.Condition)
    _next_pid: Callable[[], int] = field(default_factory=lambda: itertools.count(401).__next__)

    def __post_init__(self) -> None:
        self.add("System Events", "com.apple.systemevents", SYSTEM_EVENTS_TERMS,
                 path="/System/Library/CoreServices/System Events.app")

    # -- scripting the Mac ---------------------------------------------------------------------------

    def add(self, name: str, bundle_id: str, terms: frozenset[str] = STANDARD_TERMS,
            windows: list[Window] | None = None, path: str | None = None, front: bool = False) -> Process:
        path = path or f"/Applications/{name}.app"
        self.installed.setdefault(name, path)
        process = Process(name, bundle_id, path, self._next_pid(), terms, windows or [])
        self.processes[name] = process
        if front:
            self.frontmost = name
        return process

    def quit(self, name: str, error: int = NO_SUCH_PROCESS) -> None:
        self.processes[name].running = False
        self.processes[name].gone_error = error
        if self.frontmost == name:
            self.frontmost = None

    def bring_to_front(self, name: str, window: Window) -> None:
        windows = self.processes[name].windows
        windows.remove(window)
        windows.insert(0, window)

    def answer_prompt(self, name: str, allow: bool) -> None:
        with self._prompt_answered:
            self.automation[name] = "allowed" if allow else "refused"
            self._prompt_answered.notify_all()

    def launch(self, path: str) -> Process:
        """Launch Services starting the app at `path`, under a new pid."""
        self.launched.append(path)
        for process in self.processes.values():
            if process.path == path and not process.running:
                process.running, process.pid = True, self._next_pid()
                return process
        name = path.rsplit("/", 1)[-1].removesuffix(".app")
        existing = self.processes.get(name)
        copy = Process(name, existing.bundle_id if existing else "unknown", path, self._next_pid(),
                       existing.terms if existing else STANDARD_TERMS)
        self.processes[f"{name} ({path})"] = copy
        return copy

    def running(self) -> list[Process]:
        return [process for process in self.processes.values() if process.running]

    def by_pid(self, pid: int) -> Process | None:
        return next((process for process in self.running() if process.pid == pid), None)

    def by_path(self, path: str) -> Process | None:
        return next((process for process in self.running() if process.path == path), None)

    # -- answering Apple Events ------------------------------------------------------------------------

    def send(self, process: Process, command: str, path: tuple[Any, ...]) -> Any:
        self.events.append((process.name, command, path))
        try:
            self._check_automation(process.name)
            return self._evaluate(process, command, path)
        finally:
            count = sum(1 for event in self.events if event[0] == process.name)
            action = self.after_event.pop((process.name, count), None)
            if action is not None:
                action()

    def _check_automation(self, name: str) -> None:
        with self._prompt_answered:
            # macOS holds the event until the user answers the prompt (appscript's timeout does not apply).
            if not self._prompt_answered.wait_for(lambda: self.automation.get(name) != "prompt", timeout=60):
                raise CommandError(-1712, "AppleEvent timed out.")
            denial = AUTOMATION_DENIALS.get(self.automation.get(name, ""))
            if denial is not None:
                raise CommandError(denial[0], denial[1].format(name=name))

    def _evaluate(self, process: Process, command: str, path: tuple[Any, ...]) -> Any:
        if process.name == "System Events" and not self.accessibility and any(
                step in UI_ELEMENTS for step in path):
            raise CommandError(INVALID_INDEX, "System Events got an error: python is not allowed assistive access.")
        try:
            value = _resolve(self._root(process), path)
        except CommandError as error:
            if command == "exists" and error.errornumber in (NO_SUCH_OBJECT, INVALID_INDEX):
                return False
            raise
        if command == "exists":
            return True
        return _plain(value)

    def _root(self, process: Process) -> Node:
        if process.name == "System Events":
            return Node({}, {"processes": [self._process_node(each) for each in self.running()]})
        return Node({}, {"windows": [self._window_node(process, window) for window in process.windows]})

    def _process_node(self, process: Process) -> Node:
        properties = {"name": process.name, "unix_id": process.pid, "bundle_identifier": process.bundle_id,
                      "frontmost": process.name == self.frontmost}
        windows = [Node({"name": window.title, "title": window.title}, {}) for window in process.windows]
        menus = []
        if process.bundle_id in ("com.apple.Safari", "com.apple.SafariTechnologyPreview"):
            menu, normal_item, private_item = SAFARI_WINDOW_MENU[self.safari_language]
            front_private = bool(process.windows and process.windows[0].private)
            items = ["Minimize", "Zoom", normal_item if not front_private else private_item, "Merge All Windows"]
            menus = [Node({"name": menu, "title": menu},
                          {"menu_items": [Node({"name": item, "title": item}, {}) for item in items]})]
        menu_bar = Node({}, {"menus": menus})
        return Node(properties, {"windows": windows, "menu_bars": [menu_bar]})

    @staticmethod
    def _window_node(process: Process, window: Window) -> Node:
        tab = Node({"URL": window.url, "title": window.title, "name": window.title}, {})
        return Node({"id": window.id, "name": window.title, "mode": "incognito" if window.private else "normal",
                     "incognito": window.private, "active_tab": tab, "current_tab": tab}, {})


@dataclass
class Node:
    """An object in an app's object model: its properties and its elements."""

    properties: dict[str, Any]
    elements: dict[str, list[Node]]


@dataclass(frozen=True)
class Item:
    """ref[key]: by index, by name, or by an `its` test."""

    key: Any


@dataclass(frozen=True)
class ById:
    key: Any


@dataclass(frozen=True)
class ItsTest:
    """its.<property> == value"""

    property: str
    value: Any


def _resolve(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = _step(value, step)
    return value


def _step(value: Any, step: Any) -> Any:
    if isinstance(value, list) and isinstance(step, str):  # a property or element of each: a list of answers
        return [_step(each, step) for each in value]
    if isinstance(step, str):
        if not isinstance(value, Node):
            raise CommandError(NO_SUCH_OBJECT, f"Can't get {step} of {value!r}.")
        if step in value.elements:
            return list(value.elements[step])
        if step in value.properties:
            return value.properties[step]
        raise CommandError(NO_SUCH_OBJECT, f"Can't get {step}.")
    if not isinstance(value, list):
        raise CommandError(NO_SUCH_OBJECT, f"Can't get {step}.")
    if isinstance(step, ById):
        found = [node for node in value if node.properties.get("id") == step.key]
        if not found:
            raise CommandError(NO_SUCH_OBJECT, f"Can't get window id {step.key}.")
        return found[0]
    key = step.key
    if isinstance(key, ItsTest):
        return [node for node in value if node.properties.get(key.property) == key.value]
    if isinstance(key, int):
        if not 1 <= key <= len(value):
            raise CommandError(INVALID_INDEX, "Invalid index.")
        return value[key - 1]
    found = [node for node in value if node.properties.get("name") == key]
    if not found:
        raise CommandError(NO_SUCH_OBJECT, f"Can't get {key!r}.")
    return found[0]


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(each) for each in value]
    if isinstance(value, Node):
        return value  # a reference; the source never asks for one
    if isinstance(value, str):
        # Text travels as UTF-16 (typeUnicodeText) and appscript decodes it strictly: a title cut in the middle
        # of an emoji (a lone surrogate) raises UnicodeDecodeError in its unpack, as here.
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    return value


class _ItsProperty:
    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, value: object) -> ItsTest:  # type: ignore[override]  # appscript builds a test clause
        return ItsTest(self.name, value)

    __hash__ = None  # type: ignore[assignment]


class _Its:
    def __getattr__(self, name: str) -> _ItsProperty:
        return _ItsProperty(name)


class Application:
    """What `app(...)` returns: where the events go (by path or by pid) and whether it is connected."""

    def __init__(self, mac: Mac, path: str | None = None, pid: int | None = None) -> None:
        self.mac, self.path, self.pid = mac, path, pid
        self.connected_pid: int | None = None
        self.terms: frozenset[str] | None = None
        self.relaunchmode = "limited"

    def connect(self) -> None:
        """appscript's AppData.connect: the first use of a reference, loading the terminology."""
        if self.terms is not None:
            return
        if self.pid is not None:
            process = self.mac.by_pid(self.pid)
            if process is None:
                raise RuntimeError(f"Can't get terminology for application (pid={self.pid}): "
                                   f"Command failed: OSERROR: {NO_SUCH_PROCESS}")
        else:
            assert self.path is not None
            process = self.mac.by_path(self.path) or self.mac.launch(self.path)
        self.connected_pid, self.terms = process.pid, process.terms

    def target(self, command: str) -> Process:
        if self.pid is not None:
            process = self.mac.by_pid(self.pid)
        else:
            assert self.path is not None
            process = self.mac.by_path(self.path)  # running again under a new pid: reconnects by itself
            if process is None and (self.relaunchmode == "always" or command == "launch"):
                process = self.mac.launch(self.path)
        if process is None:
            gone = next((each for each in self.mac.processes.values() if each.pid == self.connected_pid), None)
            raise CommandError(gone.gone_error if gone else NO_SUCH_PROCESS, "Application isn't running.")
        return process


class Reference:
    def __init__(self, application: Application, path: tuple[Any, ...] = ()) -> None:
        self._application = application
        self._path = path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self._application.connect()
        assert self._application.terms is not None
        if name not in self._application.terms:
            raise AttributeError(f"Unknown property, element or command: {name!r}")
        if name == "launch":
            return self._launch
        return Reference(self._application, (*self._path, name))

    def __getitem__(self, key: Any) -> Reference:
        return Reference(self._application, (*self._path, Item(key)))

    def ID(self, key: Any) -> Reference:  # appscript's name
        return Reference(self._application, (*self._path, ById(key)))

    def get(self, timeout: int = 60) -> Any:
        return self._send("get")

    def exists(self, timeout: int = 60) -> Any:
        return self._send("exists")

    def _send(self, command: str) -> Any:
        self._application.connect()
        process = self._application.target(command)
        return self._application.mac.send(process, command, self._path)

    def _launch(self) -> None:
        self._application.target("launch")

    @property
    def relaunchmode(self) -> str:
        return self._application.relaunchmode


def module(mac: Mac) -> types.ModuleType:
    """A fresh `appscript` module whose apps answer from `mac`."""
    fake = types.ModuleType("appscript")

    def app(name: str | None = None, pid: int | None = None) -> Reference:
        if pid is not None:
            return Reference(Application(mac, pid=pid))
        assert name is not None
        if name in mac.launch_services_errors:
            raise MacOSError(mac.launch_services_errors[name])
        path = mac.installed.get(name)
        if path is None:
            raise ApplicationNotFoundError(name)
        return Reference(Application(mac, path=path))

    fake.app = app  # type: ignore[attr-defined]
    fake.its = _Its()  # type: ignore[attr-defined]
    fake.CommandError = CommandError  # type: ignore[attr-defined]
    fake.ApplicationNotFoundError = ApplicationNotFoundError  # type: ignore[attr-defined]
    fake.CantLaunchApplicationError = CantLaunchApplicationError  # type: ignore[attr-defined]
    return fake


def install(monkeypatch: pytest.MonkeyPatch, mac: Mac) -> None:
    """Make `import appscript` and `from aem.ae import MacOSError` answer from `mac`."""
    aem = types.ModuleType("aem")
    ae = types.ModuleType("aem.ae")
    ae.MacOSError = MacOSError  # type: ignore[attr-defined]
    aem.ae = ae  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "appscript", module(mac))
    monkeypatch.setitem(__import__("sys").modules, "aem", aem)
    monkeypatch.setitem(__import__("sys").modules, "aem.ae", ae)


def scripted_mac(monkeypatch: pytest.MonkeyPatch, idle_seconds: float = 3.0) -> Mac:
    """A new `Mac`, installed, and the macOS source's Quartz calls answering as a Mac in use would (unlocked)."""
    from tracker.recording.sources import macos

    mac = Mac()
    install(monkeypatch, mac)
    monkeypatch.setattr(macos, "hid_idle_seconds", lambda: idle_seconds)
    monkeypatch.setattr(macos, "screen_locked", lambda: False)
    return mac
