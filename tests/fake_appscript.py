"""A stand-in for appscript, so the macOS source runs anywhere: just the references the source uses,
answered from a scripted `Mac`. Install it with `monkeypatch.setitem(sys.modules, "appscript", module(mac))`.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any


class CommandError(Exception):
    """Like appscript.CommandError: an Apple Event that failed, with the OS error number."""

    def __init__(self, errornumber: int, errormessage: str = "") -> None:
        super().__init__(errornumber, errormessage)
        self.errornumber = errornumber
        self.errormessage = errormessage


class ApplicationNotFoundError(Exception):
    pass


class CantLaunchApplicationError(Exception):
    pass


@dataclass(frozen=True)
class Item:
    """ref[key]: by index, by name, or by an `its` test."""

    key: Any


@dataclass(frozen=True)
class ItsTest:
    """its.<property> == value"""

    property: str
    value: Any


class _ItsProperty:
    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, value: object) -> ItsTest:  # type: ignore[override]  # appscript builds a test clause
        return ItsTest(self.name, value)

    __hash__ = None  # type: ignore[assignment]


class _Its:
    def __getattr__(self, name: str) -> _ItsProperty:
        return _ItsProperty(name)


@dataclass
class Tab:
    url: str
    title: str
    private: bool = False


@dataclass
class Mac:
    """What the fake Apple Events answer. Window titles are System Events' names, front window first."""

    frontmost: str | None = None
    window_titles: dict[str, list[str]] = field(default_factory=dict)
    tabs: dict[str, Tab] = field(default_factory=dict)  # browser -> active tab of its front window
    automation_refused: set[str] = field(default_factory=set)
    # Refused at terminology loading instead of at the first event (appscript raises RuntimeError then).
    terminology_refused: set[str] = field(default_factory=set)
    accessibility: bool = True
    quit_after_name: bool = False  # the frontmost app quits right after System Events named it
    apps_made: list[str] = field(default_factory=list)
    events: list[tuple[str, tuple[Any, ...], str]] = field(default_factory=list)

    def answer(self, target: str, path: tuple[Any, ...], command: str) -> Any:
        self.events.append((target, path, command))
        if target in self.automation_refused:
            raise CommandError(-1743, f"Not authorized to send Apple events to {target}.")
        if target == "System Events":
            return self._system_events(path, command)
        return self._browser(target, path)

    def _system_events(self, path: tuple[Any, ...], command: str) -> Any:
        match path, command:
            case ("processes", Item(ItsTest("frontmost", True)), "name"), "get":
                names = [self.frontmost] if self.frontmost else []
                if self.quit_after_name:
                    self.frontmost = None
                return names
            case ("processes", Item(str() as process), *_), _ if not self.accessibility:
                raise CommandError(-1719, f"System Events got an error: python is not allowed assistive "
                                          f"access. ({process})")
            case ("processes", Item(str() as process), "windows", "name"), "get":
                if process != self.frontmost:
                    raise CommandError(-1728, f"Can't get process \"{process}\".")
                return list(self.window_titles.get(process, []))
            case ("processes", Item("Safari"), "menu_bars", Item(1), "menus", Item("Window"), "menu_items",
                  Item("Move Tab to New Private Window")), "exists":
                tab = self.tabs.get("Safari")
                return bool(tab and tab.private)
        raise CommandError(-1728, f"Can't get {path}.")

    def _browser(self, browser: str, path: tuple[Any, ...]) -> Any:
        tab = self.tabs.get(browser)
        if tab is None:
            raise CommandError(-1719, "Invalid index.")
        match path:
            case ("windows", Item(1), "mode"):
                return "incognito" if tab.private else "normal"
            case ("windows", Item(1), "incognito") if browser == "Arc":
                return tab.private
            case ("windows", Item(1), "active_tab" | "current_tab", "URL"):
                return tab.url
            case ("windows", Item(1), "active_tab", "title") | ("windows", Item(1), "current_tab", "name"):
                return tab.title
        raise CommandError(-1728, f"Can't get {path}.")


class Reference:
    def __init__(self, mac: Mac, target: str, path: tuple[Any, ...] = ()) -> None:
        self._mac = mac
        self._target = target
        self._path = path

    def __getattr__(self, name: str) -> Reference:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._target in self._mac.terminology_refused:
            try:
                raise CommandError(-1743, "Not authorized to send Apple events.")
            except CommandError as refused:
                raise RuntimeError(f"Can't get terminology for application ({self._target})") from refused
        return Reference(self._mac, self._target, (*self._path, name))

    def __getitem__(self, key: Any) -> Reference:
        return Reference(self._mac, self._target, (*self._path, Item(key)))

    def get(self, timeout: int = 60) -> Any:
        return self._mac.answer(self._target, self._path, "get")

    def exists(self, timeout: int = 60) -> Any:
        return self._mac.answer(self._target, self._path, "exists")


def module(mac: Mac) -> types.ModuleType:
    """A fresh `appscript` module whose apps answer from `mac`."""
    fake = types.ModuleType("appscript")

    def app(name: str) -> Reference:
        mac.apps_made.append(name)
        return Reference(mac, name)

    fake.app = app  # type: ignore[attr-defined]
    fake.its = _Its()  # type: ignore[attr-defined]
    fake.CommandError = CommandError  # type: ignore[attr-defined]
    fake.ApplicationNotFoundError = ApplicationNotFoundError  # type: ignore[attr-defined]
    fake.CantLaunchApplicationError = CantLaunchApplicationError  # type: ignore[attr-defined]
    return fake
