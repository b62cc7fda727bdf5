"""Shared fixtures: real servers started by the tests themselves, on loopback only."""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.disk import SmallDisk
from helpers.fake_influxdb2 import FakeInfluxDB2
from helpers.servers import ActivityWatch, Desktop, InfluxDB1, Prometheus, VictoriaMetrics, free_port, require_program
from helpers.terminal import TRACKER, Pane, StartTracker
from helpers.wine import WineSession

# Bytecode caches are written even where the shell says not to (PYTHONDONTWRITEBYTECODE): without them every
# test module is rewritten again at each collection (4 s of 5 here), and each of the hundreds of `tracker`
# subprocesses compiles the package anew.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

_database_numbers = itertools.count(1)
# Fixtures that start a real server, a desktop or a terminal: a test using one takes seconds, not milliseconds.
_SLOW_FIXTURES = frozenset({"influxdb1", "influx_database", "own_influxdb1", "victoria", "desktop", "terminal",
                            "tracker_terminal", "servers", "small_disk", "prometheus", "aw_server", "wine"})
# Modules whose tests run `tracker` or Python in subprocesses, or wait on real time, nearly all of them.
_SLOW_MODULES = frozenset({"test_crash_recovery", "test_packaging", "test_run", "test_run_desktop",
                           "test_run_faults", "test_sender_faults", "test_live_view", "test_status",
                           "test_hostile_input", "test_hostile_servers", "test_dashboard", "test_demo",
                           "test_binary", "test_binary_tmpdir", "test_slow_names", "test_source_windows"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`pytest -m "not slow"` runs the tests that need no server, desktop or subprocess, in seconds."""
    for item in items:
        module = item.module.__name__ if isinstance(item, pytest.Function) and item.module else ""
        if module in _SLOW_MODULES or _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def tracker_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config and data directory, and no settings from the developer's shell."""
    home = tmp_path / "tracker-home"
    monkeypatch.setenv("TRACKER_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("TRACKER_INFLUX_"):
            monkeypatch.delenv(name)
    return home


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb1")).start()
    yield server
    server.stop()


@pytest.fixture
def influx_database(influxdb1: InfluxDB1) -> str:
    """A fresh, empty database on the shared InfluxDB 1.x."""
    name = f"test{next(_database_numbers)}"
    influxdb1.create_database(name)
    return name


@pytest.fixture
def own_influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """An InfluxDB 1.x of this test's own, which it may stop and start again."""
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb1-own")).start()
    server.create_database("tracker")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desktop]:
    screen = Desktop(tmp_path_factory.mktemp("desktop")).start()
    yield screen
    screen.stop()


@pytest.fixture(scope="session")
def wine(desktop: Desktop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WineSession]:
    """Windows programs under Wine on the desktop: the embeddable CPython, in a private Wine prefix."""
    session = WineSession(tmp_path_factory.mktemp("wine"), desktop.display)
    yield session
    session.stop()


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A Prometheus scraping 127.0.0.1 at a free port every second: `prometheus.target` is where a test serves
    the metrics. One per test, since the target is fixed when it starts."""
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{free_port()}").start()
    yield server
    server.stop()


@pytest.fixture
def aw_server(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[ActivityWatch]:
    """An aw-server of this test's own (PyPI's, in testing mode), HOME and XDG directories temporary; they are
    this process's too, so aw-client in the test reads and writes its files there."""
    server = ActivityWatch(tmp_path_factory.mktemp("aw-server"))
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influxdb2() -> Iterator[FakeInfluxDB2]:
    """A loopback fake of InfluxDB 2.x (tests/helpers/fake_influxdb2.py): there is no real 2.x on the test machine."""
    server = FakeInfluxDB2().start()
    yield server
    server.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "disk")
    yield disk
    disk.unmount()


@pytest.fixture
def tracker_terminal(tmp_path: Path, tracker_home: Path) -> Iterator[StartTracker]:
    """Starts `tracker ARGS...` in a 100x30 tmux pane; the pane prints EXIT=<code> when it ends."""
    require_program("tmux", "tmux")
    socket = tmp_path / "run.sock"

    def start(*args: str, **env: str) -> Pane:
        # No COLUMNS or LINES from the test's shell: the pane's own size is what rich must find.
        environment = {name: value for name, value in os.environ.items() if name not in ("COLUMNS", "LINES")}
        environment |= {"LANG": "C.UTF-8", "TERM": "xterm-256color", "TRACKER_HOME": str(tracker_home), **env}
        script = f"{shlex.join([str(TRACKER), *args])}; echo EXIT=$?; sleep 30"  # the last frame stays readable
        subprocess.run(["tmux", "-S", str(socket), "-f", "/dev/null", "-u", "new-session", "-d", "-s", "live",
                        "-x", "100", "-y", "30", "sh", "-c", script], env=environment, check=True)
        return Pane(socket)

    try:
        yield start
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True)
