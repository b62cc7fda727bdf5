"""The one-file executable (`make binary`), built once per test run, and run the way a user would run it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def built_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/tracker built into the test run's temporary directory: one build serves every module and worker."""
    if os.environ.get("CI") != "true":
        pytest.importorskip("PyInstaller", reason="make test installs PyInstaller; `make binary` builds it")
    # xdist's workers share the run's temporary directory, and the first worker to get here builds while the
    # others wait on the lock.
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    dist = shared / "binary-dist"
    with (shared / "binary.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dist / "tracker").exists():
            build = subprocess.run([sys.executable, str(ROOT / "packaging" / "build_binary.py"), "--dist", str(dist)],
                                   capture_output=True, text=True, timeout=600)
            assert build.returncode == 0, build.stdout + build.stderr
    return dist / "tracker"


def run(binary: Path, *args: str, home: Path, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The binary run with no Python of ours on PATH and no virtual environment: it must need neither."""
    return subprocess.run([str(binary), *args], capture_output=True, text=True, env=clean_environment(home, env),
                          timeout=timeout, cwd=home)


def clean_environment(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "TRACKER_HOME": str(home / "tracker"), "LANG": "C.UTF-8",
            **(env or {})}
