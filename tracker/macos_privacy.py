"""macOS's privacy settings: where the user allows tracker, and the entry they find it under there.

macOS grants Automation, Accessibility and Local Network to the program it holds responsible for a process: the
terminal app for a `tracker` started in one, the program itself for the service (launchd starts it with no app
around it). That program is the Python of the venv, whose app macOS lists (Python.app of a framework build, shown
as "Python"), or the one-file binary, listed by its path; nothing of this was seen on a real Mac.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# What macOS asks the user to allow, and where.
AUTOMATION, ACCESSIBILITY = "Automation", "Accessibility"
PRIVACY = "System Settings → Privacy & Security"
AUTOMATION_PANE = f"{PRIVACY} → Automation"
ACCESSIBILITY_PANE = f"{PRIVACY} → Accessibility"
LOCAL_NETWORK_PANE = f"{PRIVACY} → Local Network"
# Set in the LaunchAgent's environment, so that a run knows its permissions are the service's own.
STARTED_BY_VARIABLE = "TRACKER_STARTED_BY"
STARTED_BY_LAUNCHD = "launchd"
ANY_TERMINAL = "your terminal (or whatever runs tracker)"


def running_on_macos() -> bool:
    """Whether this is macOS; tests replace it here rather than patch sys.platform for everything."""
    return sys.platform == "darwin"


def started_by_service(environ: Mapping[str, str] | None = None) -> bool:
    """Whether launchd started this process as tracker's LaunchAgent (see tracker.tasks.service)."""
    environ = os.environ if environ is None else environ
    return environ.get(STARTED_BY_VARIABLE) == STARTED_BY_LAUNCHD


@dataclass(frozen=True)
class SettingsEntry:
    """How System Settings lists the program the service runs as."""

    name: str  # as listed: "Python", "python3.12", "tracker"
    path: str  # where it is, to tell it from others of the same name
    rebuilt_voids_grant: bool = False  # the one-file binary: ad-hoc signed anew by every build

    def __str__(self) -> str:
        return f"“{self.name}” ({self.path})"


def service_entry(executable: str | None = None, frozen: bool | None = None) -> SettingsEntry:
    """The entry of the program the service runs as, from `executable` (sys.executable): the one-file binary
    itself; else the Python the venv links to: its Python.app for a framework build (python.org, Homebrew), whose
    stub in bin/ hands over to that app, else the Python binary by its own name."""
    executable = sys.executable if executable is None else executable
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    if frozen:
        binary = Path(executable).resolve()
        return SettingsEntry(binary.name, str(binary), rebuilt_voids_grant=True)
    python = Path(executable).resolve()  # a venv's python is a link to the Python it was made with
    app = _enclosing_app(python) or _framework_app(python)
    if app is not None:
        return SettingsEntry(_bundle_name(app), str(app))
    return SettingsEntry(python.name, str(python))


def _enclosing_app(path: Path) -> Path | None:
    return next((folder for folder in path.parents if folder.suffix == ".app"), None)


def _framework_app(python: Path) -> Path | None:
    """…/Python.framework/Versions/3.13/bin/python3.13 runs …/Versions/3.13/Resources/Python.app."""
    parts = python.parts
    for index, part in enumerate(parts[:-3]):
        if part.endswith(".framework") and parts[index + 1] == "Versions":
            version = Path(*parts[:index + 3])
            return version / "Resources" / f"{part.removesuffix('.framework')}.app"
    return None


def _bundle_name(app: Path) -> str:
    """The name System Settings shows for an app: its Info.plist's display name, else the bundle's file name."""
    import plistlib  # here: the modules that import this one never need it otherwise

    try:
        with (app / "Contents" / "Info.plist").open("rb") as handle:
            info = plistlib.load(handle)
    except (OSError, ValueError, plistlib.InvalidFileException):
        info = {}
    name = info.get("CFBundleDisplayName") or info.get("CFBundleName")
    return name if isinstance(name, str) and name else app.stem


def grantee(environ: Mapping[str, str] | None = None) -> str:
    """Whom the user allows, in words: the service's entry when this is the service, else their terminal."""
    if started_by_service(environ):
        entry = service_entry()
        return f"{entry} ({rebuild_note(entry)})" if entry.rebuilt_voids_grant else str(entry)
    return ANY_TERMINAL


def rebuild_note(entry: SettingsEntry) -> str:
    return (f"every build of {entry.name} signs it anew, ad hoc, which voids what was allowed: after a rebuild, "
            "remove its entry and allow it again")


def allow_sentence(kind: str, target: str | None, entry: SettingsEntry, restart: str) -> str:
    """What to do, in one sentence, when the service was not allowed `kind` (of `target`, for Automation)."""
    if kind == AUTOMATION:
        # Automation has no + button: the entry is there once macOS asked, its switch per app controlled.
        where = f"In {AUTOMATION_PANE}, turn on {target} under {entry}"
    else:
        where = f"In {ACCESSIBILITY_PANE}, turn on {entry} (add it with + if it is not listed)"
    rebuilt = f"; {rebuild_note(entry)}" if entry.rebuilt_voids_grant else ""
    return f"{where}, then restart the service (`{restart}`){rebuilt}."


def local_network_sentence(entry: str) -> str:
    """Why a launchd job on macOS 15 may find no route to an address on the local network, and the fix."""
    return (f"macOS's Local Network privacy may be blocking tracker: allow {entry} in {LOCAL_NETWORK_PANE}, "
            "then restart tracker")
