"""The package as users get it: a wheel that works, and the bundled categories inside it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Imports tracker from the wheel file itself, as a zip, the way a single-file build does.
FROM_THE_WHEEL = """
import sys
sys.path.insert(0, sys.argv[1])
import tracker, tracker.categories.files as categoryfiles
assert tracker.__file__.startswith(sys.argv[1]), tracker.__file__
rules = categoryfiles.load_categories()
print(len(rules.categories), rules.rule_count)
from tracker.model import Sample, utc_now
watcher = categoryfiles.CategoriesWatcher(None, print, check_every=0)  # watches a file that is inside a zip
print(watcher.current.classify(Sample(time=utc_now(), app="code")).category)
from tracker.recording.sources.gnome_extension import LEGACY, UUID, extension_files
assert UUID in extension_files(LEGACY)["metadata.json"]  # the extension's parts, read from inside the zip
"""


def test_the_wheel_carries_the_bundled_categories_and_they_load_from_inside_it(tmp_path: Path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("tracker-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "tracker/categories.yaml" in names
        assert {f"tracker/recording/sources/gnome_extension/{part}.js" for part in
                ("service", "legacy_head", "legacy_tail", "esm_head", "esm_tail")} <= set(names)
        bundled = archive.read("tracker/categories.yaml").decode()
    assert bundled == (ROOT / "categories.yaml").read_text(encoding="utf-8")
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "tracker = tracker.commands:cli" in archive.read(entry_points).decode()

    env = {**os.environ, "TRACKER_HOME": str(tmp_path / "home")}
    loaded = subprocess.run([sys.executable, "-c", FROM_THE_WHEEL, str(wheel)], capture_output=True, text=True,
                            env=env, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    counts, category = loaded.stdout.splitlines()
    categories, rules = map(int, counts.split())
    assert categories >= 10 and rules >= 300
    assert category == "Development"


# Runs one command in-process, then says which of the HTTP client modules it loaded. A command that fails
# raises its error here (no standalone mode): it is shown as `tracker` would, and the check goes on.
WHAT_IT_LOADED = """
import sys
import click
from tracker.commands import cli
try:
    cli.main(sys.argv[1:], prog_name="tracker", standalone_mode=False)
except click.ClickException as error:
    error.show()
print("LOADED", sorted(name for name in sys.modules if name.startswith(("influxdb_client", "urllib3"))))
"""
WITHOUT_INFLUXDB = [["--help"], ["config", "show"], ["categories", "list"], ["categories", "test", "code"],
                    ["categories", "validate"], ["report"], ["goals"], ["goals", "--json"], ["goals", "validate"],
                    ["status"], ["outbox"],
                    ["run", "--source", "demo", "--interval", "0.1", "--for", "0.5s", "--quiet"],
                    ["service", "install", "--dry-run"], ["export", "--format", "jsonl"],
                    ["import", "activitywatch", "no-such-export.json"], ["gnome-extension", "status"]]


@pytest.mark.parametrize("command", WITHOUT_INFLUXDB, ids=" ".join)
def test_commands_that_do_not_talk_to_influxdb_do_not_import_its_client(command: list[str]):
    # influxdb-client takes long to import: commands that send nothing must not pay for it.
    done = subprocess.run([sys.executable, "-c", WHAT_IT_LOADED, *command], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "LOADED []"


def test_a_command_that_sends_does_import_it():
    """The check above can fail: with InfluxDB configured, tracker sync loads the client."""
    env = {**os.environ, "TRACKER_INFLUX_URL": "http://127.0.0.1:9", "TRACKER_INFLUX_API": "v2"}
    subprocess.run([sys.executable, "-c", WHAT_IT_LOADED, "run", "--source", "demo", "--for", "0.3s", "--quiet"],
                   capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    done = subprocess.run([sys.executable, "-c", WHAT_IT_LOADED, "sync"], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert "influxdb_client" in done.stdout.splitlines()[-1], done.stdout + done.stderr
