"""`tracker gnome-extension`: put tracker's GNOME Shell extension in place, take it away, say how it is.

The extension goes where GNOME looks for a user's extensions ($XDG_DATA_HOME/gnome-shell/extensions/UUID), in the
flavour the installed GNOME Shell loads. GNOME Shell on Wayland finds new extensions only when it starts, so after
an install the user logs out and in once; `gnome-extensions enable` (or the enabled-extensions setting, when the
running Shell does not know the extension yet) makes it load then.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tracker import PlainError
from tracker.recording.sources import SourceUnavailable
from tracker.recording.sources.gnome import INSTALL_COMMAND, ExtensionState, ShellBus, ShellError, extension_state
from tracker.recording.sources.gnome_extension import (
    SHELL_VERSIONS,
    UUID,
    extension_files,
    flavour_for,
    user_extension_dir,
)
from tracker.storage.db import plain_reason

RELOGIN = "log out and in once, so that GNOME Shell loads it (on Wayland it loads new extensions only at login)"
COMMAND_TIMEOUT = 10


class NoGnome(PlainError):
    exit_code = 2


def is_gnome_session() -> bool:
    return "GNOME" in os.environ.get("XDG_CURRENT_DESKTOP", "").upper().split(":")


def _open_bus() -> tuple[ShellBus | None, str]:
    """A session bus connection, or None and the sentence that says why there is none."""
    try:
        return ShellBus(), ""
    except SourceUnavailable as error:
        return None, str(error)


def shell_major(bus: ShellBus | None) -> int | None:
    """The major release of the installed GNOME Shell (`gnome-shell --version`), else of the running one."""
    program = shutil.which("gnome-shell")
    said = ""
    if program:
        try:
            said = subprocess.run([program, "--version"], capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT).stdout
        except (OSError, subprocess.TimeoutExpired):
            said = ""
    if not said and bus is not None:
        try:
            ((_, said),) = bus.call("/org/gnome/Shell", "org.freedesktop.DBus.Properties", "Get", "ss",
                                    ("org.gnome.Shell", "ShellVersion"))
        except ShellError:
            said = ""
    found = re.search(r"(\d+)(?:\.\d+)*", str(said))
    return int(found.group(1)) if found else None


def install() -> list[str]:
    """Copy the extension in place and enable it; the sentences to show. NoGnome when there is no GNOME here."""
    bus, _ = _open_bus()
    try:
        major = shell_major(bus)
        if major is None:
            raise NoGnome("GNOME Shell is not installed here (no gnome-shell program, and none answers on the "
                          "session bus), so there is nothing to install the extension into.")
        flavour = flavour_for(major)
        if flavour is None:
            raise NoGnome(f"GNOME Shell {major} is too old for tracker's extension, which needs GNOME 40 or later.")
        target = user_extension_dir()
        try:
            target.mkdir(parents=True, exist_ok=True)
            for name, text in extension_files(flavour).items():
                (target / name).write_text(text, encoding="utf-8")
        except OSError as error:
            raise PlainError(f"Cannot write the extension to {target}: {plain_reason(error)}; fix that directory "
                             "(or set XDG_DATA_HOME to one you may write to) and run the install again.") from None
        versions = SHELL_VERSIONS[flavour]
        lines = [f"Installed tracker's GNOME Shell extension for GNOME {versions[0]}–{versions[-1]} in {target}."]
        lines.append(_enable())
        if _answers(bus):
            lines.append("It answers already: `tracker run` can read GNOME now.")
        else:
            lines.append(f"Now {RELOGIN}; then `tracker run` can read GNOME.")
        return lines
    finally:
        if bus is not None:
            bus.close()


def _enable() -> str:
    """Enable the extension: `gnome-extensions enable`, else the enabled-extensions setting; what was done."""
    program = shutil.which("gnome-extensions")
    if program:
        try:
            done = subprocess.run([program, "enable", UUID], capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT)
            if done.returncode == 0:
                return "Enabled it (gnome-extensions enable)."
        except (OSError, subprocess.TimeoutExpired):
            pass
    # The running Shell does not know an extension installed after it started: the settings it reads at login
    # (an earlier uninstall may have put it on the disabled list, which wins).
    if not (_list_setting("enabled-extensions", add=True) and _list_setting("disabled-extensions", add=False)):
        return f"Could not enable it: after logging in again run `gnome-extensions enable {UUID}`."
    return "Enabled it (GNOME's enabled-extensions setting)."


def _gsettings(*args: str) -> str | None:
    program = shutil.which("gsettings")
    if not program:
        return None
    try:
        done = subprocess.run([program, *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _read_list_setting(key: str) -> list[str] | None:
    """The list org.gnome.shell `key`; None when it cannot be read."""
    said = _gsettings("get", "org.gnome.shell", key)
    if said is None:
        return None
    try:
        value = ast.literal_eval(said.strip().removeprefix("@as "))
    except (ValueError, SyntaxError):
        return None
    return [str(uuid) for uuid in value] if isinstance(value, list) else None


def _list_setting(key: str, add: bool) -> bool:
    """Add the extension to (or remove it from) the list org.gnome.shell `key`; False when that fails."""
    uuids = _read_list_setting(key)
    if uuids is None:
        return False
    if (UUID in uuids) == add:
        return True
    changed = [*uuids, UUID] if add else [uuid for uuid in uuids if uuid != UUID]
    return _gsettings("set", "org.gnome.shell", key, repr(changed)) is not None


def _answers(bus: ShellBus | None) -> bool:
    if bus is None:
        return False
    try:
        bus.get_focus()
    except ShellError:
        return False
    return True


def uninstall() -> list[str]:
    """Disable the extension and remove the user's copy; the sentences to show."""
    target = user_extension_dir()
    program = shutil.which("gnome-extensions")
    if program:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([program, "disable", UUID], capture_output=True, timeout=COMMAND_TIMEOUT)
    _list_setting("enabled-extensions", add=False)
    if not target.exists():
        return [f"tracker's GNOME Shell extension was not installed in {target}; nothing to remove."]
    try:
        shutil.rmtree(target)
    except OSError as error:
        raise PlainError(f"Cannot remove {target}: {plain_reason(error)}; remove it by hand.") from None
    return [f"Removed tracker's GNOME Shell extension from {target}.",
            "GNOME Shell lets go of it at your next login; until then it may still answer."]


@dataclass(frozen=True)
class ExtensionReport:
    """Where the extension stands: each part a plain sentence, and whether `tracker run` can read GNOME."""

    installed: str
    enabled: str
    answering: str
    works: bool
    fix: str  # the one thing to do next, "" when it works

    def lines(self) -> list[str]:
        return [self.installed, self.enabled, self.answering] + ([self.fix] if self.fix else [])


def report() -> ExtensionReport:
    """Installed (the files), enabled (the running Shell, or the setting), answering (a call to Get)."""
    target = user_extension_dir()
    bus, no_bus = _open_bus()
    try:
        state = _state(bus)
        enabled_text, enabled = _enabled_text(state)
        answering = _answers(bus)
    finally:
        if bus is not None:
            bus.close()
    # The Shell also loads it from the system's directories (XDG_DATA_DIRS), where a package may put it.
    where = Path(state.path) if state is not None and state.path else target
    installed = (where / "metadata.json").exists()
    installed_text = f"Installed in {where}." if installed else f"Not installed in {target}."
    if answering:
        return ExtensionReport(installed_text, enabled_text, "It answers: `tracker run` can read GNOME.", True, "")
    answering_text = (f"It cannot be asked: {no_bus[0].lower()}{no_bus[1:]}" if no_bus
                      else "It does not answer on the session bus.")
    if not installed:
        fix = f"Run `{INSTALL_COMMAND}`, then log out and in once."
    elif not enabled:
        fix = f"Run `{INSTALL_COMMAND}` to enable it, then log out and in once."
    else:
        fix = RELOGIN[0].upper() + RELOGIN[1:] + "."
    return ExtensionReport(installed_text, enabled_text, answering_text, False, fix)


def _state(bus: ShellBus | None) -> ExtensionState | None:
    """What the running Shell says of the extension; None when no Shell answers or it knows nothing of it."""
    if bus is None:
        return None
    try:
        state = extension_state(bus)
    except ShellError:
        return None
    return state if state.known else None


def _enabled_text(state: ExtensionState | None) -> tuple[str, bool]:
    if state is not None:
        failed = f" ({state.error})" if state.error else ""
        return f"The running GNOME Shell says it is {state.state}{failed}.", state.enabled
    enabled = _read_list_setting("enabled-extensions")
    if enabled is not None and UUID in enabled:
        return "It is enabled in GNOME's settings, for the next login.", True
    if enabled is not None:
        return "It is not enabled in GNOME's settings.", False
    return "Whether it is enabled cannot be asked: no GNOME Shell answers, and gsettings cannot be read.", False
