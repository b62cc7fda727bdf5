"""`make binary`: the one-file executable, built once per test run and driven like a user would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.binary import built_binary, run
from helpers.servers import require_program

from tracker import __version__
from tracker.recording.sources.gnome_extension import LEGACY, UUID, extension_files


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield built_binary(tmp_path_factory)


def test_the_binary_answers_its_version(binary: Path, tmp_path: Path) -> None:
    result = run(binary, "--version", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"tracker, version {__version__}"


def test_the_binary_carries_the_default_categories(binary: Path, tmp_path: Path) -> None:
    listing = run(binary, "categories", "list", home=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "Development" in listing.stdout and "Reference & Learning" in listing.stdout
    tested = run(binary, "categories", "test", "firefox", "--title", "Issues", "--url", "https://github.com/a/b",
                 home=tmp_path)
    assert tested.returncode == 0, tested.stderr
    assert "Development, score 2" in tested.stdout
    assert f"categories.yaml built into {binary}" in tested.stdout  # not a temporary directory that vanishes


def test_the_binary_records_and_reports(binary: Path, tmp_path: Path) -> None:
    recorded = run(binary, "run", "--source", "demo", "--for", "3s", "--quiet", home=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    assert "Traceback" not in recorded.stdout + recorded.stderr
    report = run(binary, "report", "--json", home=tmp_path)
    assert report.returncode == 0, report.stderr
    totals = json.loads(report.stdout)
    assert 2.0 <= totals["total_seconds"] <= 4.0
    assert totals["rows"] and all(row["name"] for row in totals["rows"])


def test_the_binary_sends_what_it_recorded_to_influxdb(binary: Path, tmp_path: Path, influxdb1,
                                                         influx_database: str) -> None:
    assert run(binary, "run", "--source", "demo", "--for", "3s", "--quiet", home=tmp_path).returncode == 0
    settings = {"TRACKER_INFLUX_URL": influxdb1.url, "TRACKER_INFLUX_BUCKET": influx_database}
    synced = run(binary, "sync", home=tmp_path, env=settings)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    rows = influxdb1.rows('SELECT sum("duration") AS seconds FROM "activity"', influx_database)
    assert rows and 2.0 <= rows[0]["seconds"] <= 4.0
    outbox = run(binary, "outbox", home=tmp_path)
    assert "Waiting:       nothing" in outbox.stdout


def test_the_binary_installs_a_service_that_runs_the_binary_itself(binary: Path, tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    planned = run(binary, "service", "install", "--dry-run", home=tmp_path,
                  env={"DISPLAY": ":0", "TMPDIR": str(tmpdir)})
    assert planned.returncode == 0, planned.stderr
    assert f"ExecStart={binary} run --quiet --log-file" in planned.stdout
    assert f"Environment=TRACKER_HOME={tmp_path / 'tracker'}" in planned.stdout
    assert f"Environment=TMPDIR={tmpdir}" in planned.stdout  # where the service's binary can unpack itself
    assert not (tmp_path / ".config" / "systemd").exists()  # a dry run writes nothing


def test_the_binary_carries_the_gnome_extension_and_installs_it(binary: Path, tmp_path: Path) -> None:
    require_program("gnome-shell", "gnome-shell")  # installs the flavour of the GNOME Shell found here (43)
    installed = run(binary, "gnome-extension", "install", home=tmp_path,
                    env={"GSETTINGS_BACKEND": "keyfile", "XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert installed.returncode == 0, installed.stderr
    target = tmp_path / ".local" / "share" / "gnome-shell" / "extensions" / UUID
    assert {path.name: path.read_text() for path in target.iterdir()} == extension_files(LEGACY)


def test_the_binary_reads_a_wayland_desktop_and_carries_the_d_bus_library(binary: Path, tmp_path: Path) -> None:
    from helpers.sway import SwayDesktop

    (tmp_path / "sway").mkdir()
    sway = SwayDesktop(tmp_path / "sway").start()
    try:
        sway.open_window("binary-foot", "read by the binary")
        sway.focus("binary-foot")
        env = {name: sway.env[name] for name in ("XDG_RUNTIME_DIR", "WAYLAND_DISPLAY")}
        checked = run(binary, "doctor", "--json", home=tmp_path, env=env)
        desktop = next(check for check in json.loads(checked.stdout)["checks"] if check["name"] == "desktop")
        assert desktop["outcome"] == "ok", checked.stdout
        assert "the foreground app is binary-foot; chosen because the compositor offers" in desktop["detail"]
    finally:
        sway.stop()
    # KWin's source speaks D-Bus through jeepney: in the binary too (no bus here: its own sentence, not a missing
    # package).
    kwin = run(binary, "run", "--source", "kwin", "--for", "1s", "--quiet", home=tmp_path,
               env={"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus'}"})
    assert kwin.returncode == 2 and "jeepney" not in kwin.stderr and kwin.stderr.startswith("Error: "), kwin.stderr
