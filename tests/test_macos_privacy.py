"""Which entry System Settings lists the service under, built from the interpreter's path as macOS installs lay it
out (python.org's and Homebrew's framework builds, a bare Python, the one-file binary); what to do for each
permission. Made here as directory trees: nothing of it was seen on a real Mac."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from tracker import macos_privacy
from tracker.macos_privacy import SettingsEntry, allow_sentence, grantee, service_entry


def framework_python(root: Path, info: dict[str, str] | None) -> Path:
    """A framework build's layout: bin/python3.13 (the stub) and Resources/Python.app, which it runs."""
    version = root / "Python.framework" / "Versions" / "3.13"
    (version / "bin").mkdir(parents=True)
    python = version / "bin" / "python3.13"
    python.write_text("")
    app = version / "Resources" / "Python.app" / "Contents"
    (app / "MacOS").mkdir(parents=True)
    if info is not None:
        (app / "Info.plist").write_bytes(plistlib.dumps(info))
    return python


def venv_linking_to(venv: Path, python: Path) -> str:
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(python)
    return str(venv / "bin" / "python")


def test_a_venv_of_a_framework_build_is_listed_as_its_python_app(tmp_path: Path) -> None:
    python = framework_python(tmp_path / "Library" / "Frameworks", {"CFBundleName": "Python"})
    entry = service_entry(venv_linking_to(tmp_path / "venv", python), frozen=False)
    app = tmp_path / "Library" / "Frameworks" / "Python.framework" / "Versions" / "3.13" / "Resources" / "Python.app"
    assert entry == SettingsEntry("Python", str(app))
    assert str(entry) == f"“Python” ({app})"


def test_an_app_without_a_readable_name_is_listed_by_its_file_name(tmp_path: Path) -> None:
    python = framework_python(tmp_path / "Cellar" / "python@3.13" / "3.13.1" / "Frameworks", None)
    assert service_entry(venv_linking_to(tmp_path / "venv", python), frozen=False).name == "Python"


def test_a_python_that_is_no_app_is_listed_by_its_own_name(tmp_path: Path) -> None:
    python = tmp_path / "pyenv" / "versions" / "3.12.7" / "bin" / "python3.12"
    python.parent.mkdir(parents=True)
    python.write_text("")
    entry = service_entry(venv_linking_to(tmp_path / "venv", python), frozen=False)
    assert entry == SettingsEntry("python3.12", str(python))
    assert not entry.rebuilt_voids_grant


def test_the_one_file_binary_is_listed_by_its_path_and_every_build_voids_the_grant(tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "tracker"
    binary.parent.mkdir()
    binary.write_text("")
    entry = service_entry(str(binary), frozen=True)
    assert entry == SettingsEntry("tracker", str(binary), rebuilt_voids_grant=True)
    fix = allow_sentence("Accessibility", None, entry, "launchctl kickstart -k gui/501/io.github.tracker")
    assert fix == (f"In System Settings → Privacy & Security → Accessibility, turn on “tracker” ({binary}) (add it with"
                   " + if it is not listed), then restart the service"
                   " (`launchctl kickstart -k gui/501/io.github.tracker`); every build of tracker signs it anew, ad"
                   " hoc, which voids what was allowed: after a rebuild, remove its entry and allow it again.")


def test_automation_is_turned_on_per_app_under_the_entry() -> None:
    entry = SettingsEntry("Python", "/Library/Frameworks/Python.framework/Versions/3.13/Resources/Python.app")
    assert allow_sentence("Automation", "System Events", entry, "launchctl kickstart -k gui/501/io.github.tracker") == (
        "In System Settings → Privacy & Security → Automation, turn on System Events under “Python”"
        " (/Library/Frameworks/Python.framework/Versions/3.13/Resources/Python.app), then restart the service"
        " (`launchctl kickstart -k gui/501/io.github.tracker`).")


def test_whom_to_allow_is_the_service_s_entry_only_in_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = SettingsEntry("Python", "/Applications/Python.app")
    monkeypatch.setattr(macos_privacy, "service_entry", lambda: entry)
    assert grantee({}) == "your terminal (or whatever runs tracker)"
    assert grantee({"TRACKER_STARTED_BY": "launchd"}) == "“Python” (/Applications/Python.app)"
