"""The GNOME source against a real headless GNOME Shell 43 with tracker's extension loaded, the extension's two
flavours, `tracker gnome-extension`, and `tracker run --source gnome` sending to a real InfluxDB 1.x."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers.desktop_run import TrackerOn, points, points_after_input
from helpers.gnome import DESKTOP_APP_CLASS, DESKTOP_APP_ID, GnomeDesktop
from helpers.running import TRACKER
from helpers.servers import InfluxDB1, require_program, timed, wait_until

from tracker import paths
from tracker.recording.sources import SourceUnavailable
from tracker.recording.sources.choose import choose_source
from tracker.recording.sources.gnome import GnomeSource
from tracker.recording.sources.gnome_extension import ESM, LEGACY, SHELL_VERSIONS, UUID, extension_files
from tracker.storage.queries import History

EVERYTHING = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))


@pytest.fixture(scope="module")
def gnome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GnomeDesktop]:
    desktop = GnomeDesktop(tmp_path_factory.mktemp("gnome")).start()
    yield desktop
    desktop.stop()


@pytest.fixture(scope="module")
def bare_gnome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GnomeDesktop]:
    """GNOME Shell without tracker's extension, as a user has it before `tracker gnome-extension install`."""
    desktop = GnomeDesktop(tmp_path_factory.mktemp("bare-gnome"), with_extension=False).start()
    yield desktop
    desktop.stop()


@pytest.fixture
def on_gnome(gnome: GnomeDesktop, monkeypatch: pytest.MonkeyPatch) -> GnomeDesktop:
    """This process in the GNOME session: its buses and its settings."""
    for name, value in gnome.env.items():
        monkeypatch.setenv(name, value)
    return gnome


def read_until(source: GnomeSource, condition: Any, what: str) -> Any:
    return wait_until(lambda: (sample := source.read()) is not None and condition(sample) and sample, 10, what)


# -- the extension's two flavours -----------------------------------------------------------------------------

def test_each_flavour_names_every_release_it_supports_and_exports_the_same_read_only_interface():
    assert SHELL_VERSIONS == {LEGACY: ("40", "41", "42", "43", "44"), ESM: ("45", "46", "47", "48", "49", "50")}
    interfaces = []
    for flavour in (LEGACY, ESM):
        files = extension_files(flavour)
        metadata = json.loads(files["metadata.json"])
        assert metadata["uuid"] == UUID and metadata["shell-version"] == list(SHELL_VERSIONS[flavour])
        script = files["extension.js"]
        interfaces.append(re.search(r"<node>.*</node>", script, re.S).group(0))  # type: ignore[union-attr]
        # Read only: no method but Get, and nothing that moves, closes or activates a window.
        assert re.findall(r'<method name="(\w+)"', script) == ["Get"]
        assert not re.search(r"\.(activate|delete|kill|move_frame|minimize|maximize)\(", script)
    assert interfaces[0] == interfaces[1]
    assert "imports.gi" in extension_files(LEGACY)["extension.js"]
    assert "export default class" in extension_files(ESM)["extension.js"]


def test_the_esm_flavour_parses_as_an_es_module(tmp_path: Path):
    # GNOME 45+ is not installed here: the ESM flavour can only be checked for syntax (node parses ES modules).
    node = require_program("node", "nodejs")
    script = tmp_path / "extension.mjs"
    script.write_text(extension_files(ESM)["extension.js"])
    checked = subprocess.run([node, "--check", str(script)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


# -- the source on GNOME Shell --------------------------------------------------------------------------------

def test_focus_switches_renames_and_closing_returns_focus_to_the_previous_window(on_gnome: GnomeDesktop):
    source = GnomeSource(print)
    try:
        editor = on_gnome.open_window("gnome-editor", "notes.txt")
        first = read_until(source, lambda s: s.app == "gnome-editor", "the editor")
        assert first.title == "notes.txt" and first.locked is False and first.idle_seconds is not None
        terminal = on_gnome.open_window("gnome-terminal-test", "~ shell")
        assert read_until(source, lambda s: s.app == "gnome-terminal-test", "the terminal").title == "~ shell"
        on_gnome.activate(editor)
        read_until(source, lambda s: s.app == "gnome-editor", "the editor again")
        editor.rename("notes.txt — edited")
        read_until(source, lambda s: s.title == "notes.txt — edited", "the new title")
        on_gnome.activate(terminal)
        read_until(source, lambda s: s.app == "gnome-terminal-test", "the terminal again")
        terminal.close()
        back = read_until(source, lambda s: s.app == "gnome-editor", "focus back on the editor")
        assert back.title == "notes.txt — edited"
        editor.close()
        # No window left: nothing has focus, which is no sample rather than the last window.
        wait_until(lambda: source.read() is None, 10, "no focused window")
    finally:
        source.close()


def test_an_installed_app_is_named_by_its_desktop_id_and_others_by_their_wm_class(on_gnome: GnomeDesktop):
    source = GnomeSource(print)
    try:
        mapped = on_gnome.open_window(DESKTOP_APP_CLASS, "a window of an installed app")
        sample = read_until(source, lambda s: s.title == "a window of an installed app", "the installed app")
        assert sample.app == DESKTOP_APP_ID  # its .desktop id, without ".desktop"
        assert on_gnome.focused()[:2] == (DESKTOP_APP_ID, DESKTOP_APP_CLASS)
        plain = on_gnome.open_window("gapp-unlisted", "a window of no installed app")
        sample = read_until(source, lambda s: s.title == "a window of no installed app", "the unlisted app")
        # The Shell makes up "window:N" for it, which names nothing: the WM class is the app.
        assert sample.app == "gapp-unlisted" and on_gnome.focused()[0] == ""
        plain.close()
        mapped.close()
    finally:
        source.close()


def test_idle_time_grows_without_input_and_starts_again_after_it(on_gnome: GnomeDesktop):
    window = on_gnome.open_window("gnome-idle-app", "reading")
    source = GnomeSource(print)
    try:
        on_gnome.touch()
        start = read_until(source, lambda s: s.app == "gnome-idle-app", "the window")
        later = read_until(source, lambda s: s.idle_seconds >= start.idle_seconds + 1.0, "idle time to grow")
        on_gnome.touch()
        after = read_until(source, lambda s: s.idle_seconds < 0.5, "idle time reset")
        assert later.idle_seconds >= 1.0 and after.app == "gnome-idle-app"
    finally:
        source.close()
        window.close()


@pytest.fixture
def noticed(on_gnome: GnomeDesktop) -> Iterator[tuple[GnomeSource, list[str]]]:
    """A GNOME source on the shared Shell, and the notices it gave so far."""
    notices: list[str] = []
    source = GnomeSource(notices.append)
    yield source, notices
    source.close()


def test_auto_reads_the_shell_in_a_gnome_session_whatever_xwayland_s_display_says(
        on_gnome: GnomeDesktop, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DISPLAY", ":5")  # Xwayland's, as a GNOME session sets it: not the desktop to read
    monkeypatch.delenv("XDG_CURRENT_DESKTOP", raising=False)  # found on the bus, whatever the variable says
    chosen = choose_source("auto", print)
    try:
        assert (chosen.source.name, chosen.why) == ("gnome", "GNOME Shell is on the session bus (org.gnome.Shell)")
    finally:
        chosen.source.close()


def test_a_killed_shell_is_said_once_reads_none_and_recording_resumes_when_it_is_back(
        on_gnome: GnomeDesktop, noticed: tuple[GnomeSource, list[str]]):
    source, notices = noticed
    window = on_gnome.open_window("gnome-crash-app", "before the crash")
    read_until(source, lambda s: s.app == "gnome-crash-app", "the window")
    window.close()
    on_gnome.kill_shell()
    assert [source.read() for _ in range(5)] == [None] * 5
    assert len(notices) == 1 and "GNOME Shell stopped answering" in notices[0], notices
    on_gnome.start_shell()
    after = on_gnome.open_window("gnome-after-app", "after the crash")
    read_until(source, lambda s: s.app == "gnome-after-app", "a window of the new Shell")
    assert notices[1:] == ["GNOME Shell answers again; recording goes on."]
    after.close()


def test_a_lost_session_bus_is_said_once_and_the_source_connects_again_when_it_is_back(
        on_gnome: GnomeDesktop, noticed: tuple[GnomeSource, list[str]]):
    source, notices = noticed
    on_gnome.restart_session_bus()
    assert source.read() is None
    window = on_gnome.open_window("gnome-new-bus-app", "on the new bus")
    read_until(source, lambda s: s.app == "gnome-new-bus-app", "the window, through a new connection")
    assert len(notices) == 2 and "the session bus connection failed" in notices[0], notices
    assert notices[1] == "GNOME Shell answers again; recording goes on."
    window.close()


def test_a_disabled_extension_is_said_once_and_reading_resumes_when_it_is_enabled_again(
        on_gnome: GnomeDesktop, noticed: tuple[GnomeSource, list[str]]):
    source, notices = noticed
    window = on_gnome.open_window("gnome-toggle-app", "toggled")
    read_until(source, lambda s: s.app == "gnome-toggle-app", "the window")
    extensions = ("/org/gnome/Shell", "org.gnome.Shell.Extensions")
    assert on_gnome.call(*extensions, "DisableExtension", "s", (UUID,)) == (True,)
    try:
        assert source.read() is None
        assert notices == ["tracker's GNOME Shell extension stopped answering (it was disabled, or the Shell "
                           "restarts), so nothing is recorded until it is back; `tracker gnome-extension status` "
                           "says why."]
        with pytest.raises(SourceUnavailable) as disabled:
            GnomeSource(print)
        assert str(disabled.value) == ("tracker's GNOME Shell extension is installed but disabled; run "
                                       "`tracker gnome-extension install` to enable it, then log out and in once.")
    finally:
        assert on_gnome.call(*extensions, "EnableExtension", "s", (UUID,)) == (True,)
    read_until(source, lambda s: s.app == "gnome-toggle-app", "the window once enabled again")
    assert notices[1:] == ["GNOME Shell answers again; recording goes on."]
    window.close()


def test_a_hung_shell_costs_a_read_at_most_a_second_and_is_said_once(
        on_gnome: GnomeDesktop, noticed: tuple[GnomeSource, list[str]]):
    source, notices = noticed
    window = on_gnome.open_window("gnome-hang-app", "before the hang")
    read_until(source, lambda s: s.app == "gnome-hang-app", "the window")
    assert on_gnome.shell is not None
    os.kill(on_gnome.shell.pid, signal.SIGSTOP)
    try:
        reads = [timed(source.read) for _ in range(2)]
    finally:
        os.kill(on_gnome.shell.pid, signal.SIGCONT)
    assert [sample for sample, _ in reads] == [None, None]
    assert all(seconds < 1.5 for _, seconds in reads), reads
    assert notices == ["GNOME Shell stopped answering (no answer within 1 s); recording resumes when it "
                       "answers again."]
    read_until(source, lambda s: s.app == "gnome-hang-app", "the window after the hang")
    assert notices[1:] == ["GNOME Shell answers again; recording goes on."]
    window.close()


def test_without_the_extension_the_source_says_the_command_that_installs_it(
        bare_gnome: GnomeDesktop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for name, value in bare_gnome.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(SourceUnavailable) as missing:
        GnomeSource(print)
    assert "`tracker gnome-extension install`" in str(missing.value) and "log out and in once" in str(missing.value)
    assert str(missing.value).count(".") <= 2  # one sentence (the command has one dot)
    run = tracker_command({**os.environ, "TRACKER_HOME": str(tmp_path / "tracker")}, "run", "--source", "gnome",
                          "--for", "2s", "--quiet")
    assert run.returncode == 2 and run.stderr == f"Error: {missing.value}\n"
    with pytest.raises(SourceUnavailable) as auto:  # `--source auto` says the same
        choose_source("auto", print)
    assert str(auto.value) == str(missing.value)
    # Installed now, but the running Shell finds new extensions only at login: the user is told to log in again.
    bare_gnome.install_extension(tmp_path / "data" / "gnome-shell" / "extensions" / UUID)
    with pytest.raises(SourceUnavailable) as not_loaded:
        GnomeSource(print)
    assert "has not loaded it yet; log out and in once" in str(not_loaded.value)


def test_no_shell_on_the_bus_and_no_bus_at_all_are_one_sentence_each(
        gnome: GnomeDesktop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(SourceUnavailable, match="There is no D-Bus session bus"):
        GnomeSource(print)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", gnome.env["DBUS_SYSTEM_BUS_ADDRESS"])  # a bus with no Shell
    with pytest.raises(SourceUnavailable, match="GNOME Shell is not running on this session bus"):
        GnomeSource(print)


# -- tracker gnome-extension ----------------------------------------------------------------------------------

def tracker_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRACKER, *args], env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def enabled_extensions(env: dict[str, str]) -> str:
    """The enabled-extensions line of the session's settings (a keyfile here)."""
    keyfile = (Path(env["XDG_CONFIG_HOME"]) / "glib-2.0" / "settings" / "keyfile").read_text()
    return next(line for line in keyfile.splitlines() if line.startswith("enabled-extensions="))


def test_gnome_extension_install_status_and_uninstall_on_a_new_home(bare_gnome: GnomeDesktop, tmp_path: Path):
    home = tmp_path / "home"
    env = bare_gnome.env | {"HOME": str(home), "TRACKER_HOME": str(tmp_path / "tracker")}
    env.pop("XDG_DATA_HOME")
    target = home / ".local" / "share" / "gnome-shell" / "extensions" / UUID

    before = tracker_command(env, "gnome-extension", "status")
    assert before.returncode == 1
    assert f"Not installed in {target}." in before.stdout
    assert "Run `tracker gnome-extension install`, then log out and in once." in before.stdout

    installed = tracker_command(env, "gnome-extension", "install")
    assert installed.returncode == 0, installed.stderr
    assert f"Installed tracker's GNOME Shell extension for GNOME 40–44 in {target}." in installed.stdout
    assert "Now log out and in once" in installed.stdout
    assert set(os.listdir(target)) == {"extension.js", "metadata.json"}
    assert json.loads((target / "metadata.json").read_text())["shell-version"] == list(SHELL_VERSIONS[LEGACY])
    assert (target / "extension.js").read_text() == extension_files(LEGACY)["extension.js"]
    assert UUID in enabled_extensions(env)

    status = tracker_command(env, "gnome-extension", "status")
    assert status.returncode == 1
    assert status.stdout.splitlines() == [
        f"Installed in {target}.", "It is enabled in GNOME's settings, for the next login.",
        "It does not answer on the session bus.",
        "Log out and in once, so that GNOME Shell loads it (on Wayland it loads new extensions only at login).",
    ]

    removed = tracker_command(env, "gnome-extension", "uninstall")
    assert removed.returncode == 0, removed.stderr
    assert f"Removed tracker's GNOME Shell extension from {target}." in removed.stdout
    assert not target.exists()
    assert UUID not in enabled_extensions(env)
    again = tracker_command(env, "gnome-extension", "uninstall")
    assert "was not installed" in again.stdout


def test_gnome_extension_status_says_it_answers_where_it_is_loaded(gnome: GnomeDesktop, tmp_path: Path):
    env = gnome.env | {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    status = tracker_command(env, "gnome-extension", "status")
    assert status.returncode == 0, status.stdout
    assert "The running GNOME Shell says it is enabled." in status.stdout
    assert "It answers: `tracker run` can read GNOME." in status.stdout


def test_gnome_extension_install_without_gnome_says_so(tmp_path: Path):
    env = {"PATH": "/nonexistent", "HOME": str(tmp_path), "TRACKER_HOME": str(tmp_path / "tracker")}
    done = tracker_command(env, "gnome-extension", "install")
    assert done.returncode == 2
    assert done.stderr.strip() == ("Error: GNOME Shell is not installed here (no gnome-shell program, and none "
                                   "answers on the session bus), so there is nothing to install the extension into.")
    assert not (tmp_path / ".local").exists()


def test_gnome_extension_install_into_a_directory_it_cannot_write_says_so(tmp_path: Path):
    (tmp_path / "data").write_text("a file where a directory should be")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "TRACKER_HOME": str(tmp_path / "tracker")}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    require_program("gnome-shell", "gnome-shell")
    done = tracker_command(env, "gnome-extension", "install")
    assert done.returncode == 1 and not done.stdout
    assert done.stderr.strip() == (
        f"Error: Cannot write the extension to {tmp_path}/data/gnome-shell/extensions/{UUID}: not a directory; "
        "fix that directory (or set XDG_DATA_HOME to one you may write to) and run the install again.")


def test_doctor_checks_the_extension_on_gnome(bare_gnome: GnomeDesktop, gnome: GnomeDesktop, tmp_path: Path):
    env = bare_gnome.env | {"HOME": str(tmp_path), "TRACKER_HOME": str(tmp_path / "tracker"),
                            "XDG_DATA_HOME": str(tmp_path / "data")}
    missing = tracker_command(env, "doctor", "--json")
    extension = [check for check in json.loads(missing.stdout)["checks"] if check["name"] == "GNOME extension"]
    assert extension and extension[0]["outcome"] == "problem", missing.stdout
    assert "tracker gnome-extension install" in extension[0]["fix"]
    working = tracker_command(gnome.env | {"HOME": str(tmp_path), "TRACKER_HOME": str(tmp_path / "tracker")},
                              "doctor", "--json")
    checks = {check["name"]: check for check in json.loads(working.stdout)["checks"]}
    assert checks["GNOME extension"] == {"name": "GNOME extension", "outcome": "ok",
                                         "detail": "installed, enabled and answering", "fix": ""}


# -- tracker run --source gnome -------------------------------------------------------------------------------



def test_tracker_run_on_gnome_sends_each_window_and_keeps_a_private_one_to_its_app(
        gnome: GnomeDesktop, influxdb1: InfluxDB1, influx_database: str, tracker_home: Path):
    rules = paths.user_categories_file()
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text("categories:\n  Writing:\n    score: 2\n    apps: [gnome-writer]\n"
                     "  Titled:\n    score: 1\n    titles: ['secret']\n")
    writer = gnome.open_window("gnome-writer", "chapter one")
    browser = gnome.open_window("org.example.Browser", "Secret search — Mozilla Firefox Private Browsing")
    gnome.touch()
    tracker = TrackerOn("gnome", gnome.env, influxdb1, influx_database, "--away-after", "1h")
    try:
        for window in (writer, browser, writer):
            seen = len(tracker.lines)
            gnome.activate(window)
            wait_until(lambda app=window.app, seen=seen: tracker.logged_after(seen, app), 15,
                       f"samples of {window.app}")
        first = len(points_after_input(gnome, influxdb1, influx_database))  # type: ignore[arg-type]
        wait_until(lambda: len(points_after_input(gnome, influxdb1, influx_database))  # type: ignore[arg-type]
                   >= first + 2, 20, "points sent while running")
    finally:
        code, err = tracker.stop()
        writer.close()
        browser.close()
    assert code == 0, err
    rows = points(influxdb1, influx_database)
    by_app = {app: [row for row in rows if row["app"] == app] for app in ("gnome-writer", "org.example.Browser")}
    assert by_app["gnome-writer"] and by_app["org.example.Browser"], rows
    assert {(row.get("title"), row["category"]) for row in by_app["gnome-writer"]} == {("chapter one", "Writing")}
    assert all(row.get("title") is None and row["category"] != "Titled" for row in by_app["org.example.Browser"])
    assert "Secret" not in str(influxdb1.query('SELECT * FROM "activity"', influx_database))
    with History(paths.database_file()) as history:
        events = history.events(*EVERYTHING)
    assert [event.data.app for event in events][:3] == ["gnome-writer", "org.example.Browser", "gnome-writer"]
    assert {event.data.title for event in events if event.data.app == "org.example.Browser"} == {None}
    for file in paths.data_dir().iterdir():
        if file.is_file():
            assert b"Secret" not in file.read_bytes(), file


def test_one_read_costs_little_cpu(on_gnome: GnomeDesktop):
    window = on_gnome.open_window("gnome-bench-app", "benchmark")
    source = GnomeSource(print)
    try:
        read_until(source, lambda s: s.app == "gnome-bench-app", "the window")
        reads = 200
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(reads):
            assert source.read() is not None
        cpu_ms, wall_ms = (time.process_time() - cpu) * 1000 / reads, (time.perf_counter() - wall) * 1000 / reads
        print(f"GNOME source: {cpu_ms:.3f} ms CPU, {wall_ms:.3f} ms wall per read")
        assert cpu_ms < 5
    finally:
        source.close()
        window.close()
