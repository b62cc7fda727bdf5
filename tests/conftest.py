"""Shared fixtures: real servers started by the tests themselves, on loopback only."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import Desktop, InfluxDB1, VictoriaMetrics

_database_numbers = itertools.count(1)


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
