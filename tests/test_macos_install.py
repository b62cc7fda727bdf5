"""Installing where Mac users are: appscript pins that need no compiler, the Makefile's choice of Python, and
the GitHub workflow that runs the macOS tests on a real Mac (checked here against GitHub's schema)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
import yaml
from helpers.workflows import assert_valid_for_github
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "macos.yml"
PYTHONS_THE_MAKEFILE_TRIES = ["python3.13", "python3.12", "python3.11", "python3.10", "python3"]


def dependencies() -> list[str]:
    """The installed project's requirements, as pip reads them (tomllib is not in Python 3.10)."""
    return [line for line in requires("tracker") or [] if "extra ==" not in line]


def appscript_specifier_on_a_mac(python_version: str) -> SpecifierSet:
    environment = {"sys_platform": "darwin", "python_version": python_version, "python_full_version": "3.0.0"}
    chosen = [Requirement(line) for line in dependencies() if Requirement(line).name == "appscript"]
    applying = [requirement for requirement in chosen
                if requirement.marker is None or requirement.marker.evaluate(environment)]
    assert len(applying) == 1, f"one appscript requirement for Python {python_version} on a Mac: {applying}"
    return applying[0].specifier


@pytest.mark.parametrize(("python_version", "installs", "refused"), [
    # 1.5.0 has universal2 wheels for CPython 3.11+ only: on 3.10 pip would build it, which needs Xcode's tools.
    ("3.10", "1.4.0", "1.5.0"),
    ("3.11", "1.5.0", "1.4.0"),
    ("3.13", "1.5.0", "1.4.0"),
])
def test_appscript_is_pinned_to_a_version_with_a_wheel_on_every_supported_python(
        python_version: str, installs: str, refused: str) -> None:
    specifier = appscript_specifier_on_a_mac(python_version)
    assert specifier.contains(installs) and not specifier.contains(refused)


def test_appscript_is_not_installed_off_a_mac() -> None:
    linux = {"sys_platform": "linux", "python_version": "3.11"}
    appscript = [Requirement(line) for line in dependencies() if Requirement(line).name == "appscript"]
    assert appscript and not [requirement for requirement in appscript
                              if requirement.marker is None or requirement.marker.evaluate(linux)]


def fake_pythons(directory: Path, working: set[str]) -> dict[str, str]:
    """Every Python name the Makefile tries, as a script: the `working` ones run this Python, every other one
    answers like a Python too old (Apple's 3.9 on a Mac with only the command-line tools)."""
    directory.mkdir()
    for name in PYTHONS_THE_MAKEFILE_TRIES:
        script = directory / name
        if name in working:
            script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        else:
            script.write_text("#!/bin/sh\nexit 1\n")  # sys.exit(version < (3, 10)) answers 1 on 3.9
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{directory}{os.pathsep}/usr/bin{os.pathsep}/bin"}


def make(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *arguments], env=environment,
                          capture_output=True, text=True, timeout=120, check=False)


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.mark.slow
@needs_make
def test_make_finds_the_newest_python_that_is_new_enough(tmp_path: Path) -> None:
    environment = fake_pythons(tmp_path / "bin", {"python3.12", "python3.10"})
    dry_run = make(["-n", "install", f"VENV={tmp_path / 'venv'}"], environment)
    assert dry_run.returncode == 0, dry_run.stderr
    assert f"python3.12 -m venv {tmp_path / 'venv'}" in dry_run.stdout


@pytest.mark.slow
@needs_make
def test_make_without_a_new_enough_python_says_what_to_install(tmp_path: Path) -> None:
    environment = fake_pythons(tmp_path / "bin", set())
    result = make(["install", f"VENV={tmp_path / 'venv'}"], environment)
    assert result.returncode != 0
    message = result.stderr.splitlines()[0]
    assert "Python 3.10 or newer" in message and "brew install python@3.13" in message and "PYTHON=" in message
    assert "Traceback" not in result.stderr and not (tmp_path / "venv").exists()


@pytest.mark.slow
@needs_make
def test_make_with_a_python_named_too_old_says_so(tmp_path: Path) -> None:
    environment = fake_pythons(tmp_path / "bin", {"python3.12"})
    old = tmp_path / "bin" / "python3"  # a Python 3.9 here
    result = make(["install", f"VENV={tmp_path / 'venv'}", f"PYTHON={old}"], environment)
    assert result.returncode != 0
    assert f"{old} is not one" in result.stderr and not (tmp_path / "venv").exists()


def test_the_macos_workflow_runs_the_macos_tests_and_a_short_recording_on_both_pythons() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"]["macos"]
    assert job["runs-on"] == "macos-latest"
    assert job["strategy"]["matrix"]["python"] == ["3.10", "3.13"]
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    assert "tests/test_source_macos.py" in commands and "tests/test_macos_install.py" in commands
    assert "tracker run --source macos --for 5s" in commands
    assert "--only-binary appscript" in commands  # what users get: a wheel, no compiler


@pytest.mark.slow
def test_the_macos_workflow_is_valid_for_github() -> None:
    assert_valid_for_github(WORKFLOW)
