"""`tracker doctor` against the real thing: a real X desktop, a real InfluxDB 1.x, VictoriaMetrics for the v2
API, a stopped InfluxDB, a server refusing the token, a database that does not exist, and no desktop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers.fault_server import FaultServer
from helpers.servers import Desktop, InfluxDB1, VictoriaMetrics, wait_until

from tracker.commands import cli
from tracker.paths import database_file
from tracker.storage.outbox import Outbox


@pytest.fixture(autouse=True)
def no_service_of_the_developer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A throwaway HOME: the service check must not find the developer's own unit."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)


@pytest.fixture
def on_desktop(desktop: Desktop, monkeypatch: pytest.MonkeyPatch) -> Desktop:
    """The real desktop, with a window of the app DoctorApp in front."""
    monkeypatch.setenv("DISPLAY", desktop.display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    desktop.activate(desktop.open_window("DoctorApp", "checked by the doctor"))
    return desktop


@pytest.fixture
def no_desktop(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)


def configure(tracker_home: Path, text: str) -> None:
    config = tracker_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.yaml").write_text(text)


def doctor(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["doctor", *arguments], catch_exceptions=False)
    return result.exit_code, result.output


def checks_of(output: str) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in json.loads(output)["checks"]}


def test_a_working_setup_on_influxdb_1(on_desktop: Desktop, influxdb1: InfluxDB1, influx_database: str,
                                       tracker_home: Path):
    configure(tracker_home, f"influx:\n  url: {influxdb1.url}\n  bucket: {influx_database}\nhost: doc-host\n")
    code, output = doctor("--json")
    assert code == 0, output
    checks = checks_of(output)
    assert json.loads(output)["blocks_recording"] is False
    assert checks["desktop"]["outcome"] == "ok"
    assert checks["desktop"]["detail"] == (f"x11 on {on_desktop.display}: the foreground app is DoctorApp; chosen "
                                           "because this is an X11 session (DISPLAY is set, WAYLAND_DISPLAY is not)")
    assert checks["idle time"]["outcome"] == "ok"
    assert checks["settings"]["detail"].startswith(
        f"influx.url, influx.bucket, host from config file {tracker_home / 'config' / 'config.yaml'}")
    assert checks["categories"]["outcome"] == "ok" and "rules" in checks["categories"]["detail"]
    assert checks["InfluxDB reachable"]["detail"].startswith(f"{influxdb1.url} answers: InfluxDB 1.")
    assert checks["InfluxDB API"]["detail"].startswith("v1 (/write)")
    assert checks["InfluxDB credentials"]["outcome"] == "ok"
    assert checks["InfluxDB database"]["detail"] == f"database {influx_database} exists and takes points"
    assert checks["InfluxDB test point"]["detail"] == "written to measurement tracker_doctor and deleted again"
    measurements = influxdb1.query("SHOW MEASUREMENTS", influx_database)["results"][0].get("series", [])
    assert not any(["tracker_doctor"] in series["values"] for series in measurements)
    assert checks["outbox"]["outcome"] == "ok"
    assert checks["tracker run"]["outcome"] == "warning"  # nothing runs here: worth a line, blocks nothing
    assert checks["service"]["detail"] == "not installed: tracker does not start at login"
    assert list(checks) == ["desktop", "idle time", "settings", "categories", "InfluxDB reachable", "InfluxDB API",
                            "InfluxDB credentials", "InfluxDB database", "InfluxDB test point", "outbox",
                            "tracker run", "service"]


def test_a_working_setup_on_the_v2_api(on_desktop: Desktop, victoria: VictoriaMetrics, tracker_home: Path):
    configure(tracker_home, f"influx:\n  url: {victoria.url}\n  token: v2-token\n  org: o\n  bucket: b\n"
                            "host: doctor-v2\n")
    code, output = doctor("--json")
    assert code == 0, output
    checks = checks_of(output)
    assert checks["InfluxDB API"]["detail"].startswith("v2 (/api/v2/write)")
    assert checks["InfluxDB credentials"]["detail"] == "accepted"
    assert checks["InfluxDB test point"]["detail"].startswith("written to measurement tracker_doctor, which the "
                                                              "dashboard ignores")
    # VictoriaMetrics shows points younger than its -search.latencyOffset (30 s) only once they are older.
    wait_until(lambda: victoria.export('{__name__="tracker_doctor_ok", host="doctor-v2"}'), 120,
               "the test point in VictoriaMetrics")


def test_a_stopped_influxdb(on_desktop: Desktop, own_influxdb1: InfluxDB1, tracker_home: Path):
    configure(tracker_home, f"influx:\n  url: {own_influxdb1.url}\n")
    own_influxdb1.stop()
    code, output = doctor()
    assert code == 1
    line = next(line for line in output.splitlines() if "InfluxDB reachable" in line)
    assert line.split()[:3] == ["problem", "InfluxDB", "reachable"]
    assert line.endswith(f"InfluxDB at {own_influxdb1.url} is unreachable (connection refused)")
    assert "fix: Start InfluxDB, or fix influx.url in config.yaml; samples wait in the outbox meanwhile." in output
    assert "InfluxDB credentials" not in output  # not asked of a server that cannot be reached
    assert output.splitlines()[-1].startswith("1 problem blocks recording;")


def test_a_wrong_token(on_desktop: Desktop, tracker_home: Path):
    server = FaultServer(token="tracker:right-password").start()
    try:
        configure(tracker_home, f"influx:\n  url: {server.url}\n  token: tracker:wrong-password\n")
        code, output = doctor("--json")
    finally:
        server.stop()
    assert code == 1
    checks = checks_of(output)
    assert checks["InfluxDB credentials"]["outcome"] == "problem"
    assert checks["InfluxDB credentials"]["detail"].startswith("InfluxDB refused the token/credentials")
    assert "wrong-password" not in output
    assert "InfluxDB database" not in checks


def test_a_missing_database(on_desktop: Desktop, influxdb1: InfluxDB1, tracker_home: Path):
    configure(tracker_home, f"influx:\n  url: {influxdb1.url}\n  bucket: never_created\n")
    code, output = doctor("--json")
    assert code == 1
    checks = checks_of(output)
    assert checks["InfluxDB credentials"]["outcome"] == "ok"
    database = checks["InfluxDB database"]
    assert database["outcome"] == "problem"
    assert "database not found" in database["detail"]
    assert database["fix"] == ("Create it (`influx -execute 'CREATE DATABASE \"never_created\"'`), or fix "
                               "influx.bucket in config.yaml.")


def test_no_desktop(no_desktop: None):
    code, output = doctor()
    assert code == 1
    assert output.startswith("problem  desktop      No desktop found: neither WAYLAND_DISPLAY nor DISPLAY is set")
    assert "fix: Run tracker in your desktop session" in output


WHAT_IT_LOADED = """
import sys
import click
from tracker.commands import cli
try:
    cli.main(["doctor"], prog_name="tracker", standalone_mode=False)
except click.exceptions.Exit:
    pass
print("LOADED", sorted(name for name in sys.modules if name.startswith(("influxdb_client", "urllib3"))))
"""


def test_doctor_on_influxdb_1_does_not_import_influxdb_client(influxdb1: InfluxDB1, influx_database: str,
                                                             tracker_home: Path):
    configure(tracker_home, f"influx:\n  url: {influxdb1.url}\n  bucket: {influx_database}\n")
    done = subprocess.run([sys.executable, "-c", WHAT_IT_LOADED], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert "InfluxDB test point" in done.stdout, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "LOADED []"


# -- without servers ------------------------------------------------------------------------------------

def test_settings_that_do_not_load_are_a_problem_and_influxdb_is_not_asked(no_desktop: None, tracker_home: Path):
    configure(tracker_home, "influx:\n  url: http://127.0.0.1:9\n  api: v9\n")
    code, output = doctor("--json")
    assert code == 1
    checks = checks_of(output)
    assert checks["settings"]["outcome"] == "problem"
    assert "'v9' is not one of auto, v1, v2" in checks["settings"]["detail"]
    assert not any(name.startswith("InfluxDB") for name in checks)


def test_a_broken_categories_file_is_a_problem(no_desktop: None, tracker_home: Path):
    configure(tracker_home, "")
    (tracker_home / "config" / "categories.yaml").write_text("categories:\n  Work: [not, a, mapping]\n")
    checks = checks_of(doctor("--json")[1])
    assert checks["categories"]["outcome"] == "problem"
    assert "categories.yaml" in checks["categories"]["detail"]
    assert checks["InfluxDB"]["detail"] == "not configured: recording locally only"


def test_refused_samples_in_the_outbox_are_a_warning(no_desktop: None):
    from helpers.fault_server import make_records

    with Outbox(database_file()) as outbox:
        outbox.append_many(make_records(3))
        first_id = outbox.pending(1)[0][0]
        outbox.quarantine([first_id], "field type conflict")
    checks = checks_of(doctor("--json")[1])
    assert checks["outbox"]["outcome"] == "warning"
    assert checks["outbox"]["detail"].startswith("2 samples waiting, the oldest from 2023-11-1")
    assert "1 refused by the server" in checks["outbox"]["detail"]
    assert checks["outbox"]["fix"] == "`tracker outbox` shows what was refused and why."


# -- macOS, through the fake appscript (not run on a Mac) -------------------------------------------------

@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch):
    from helpers.fake_appscript import Mac, install

    from tracker.recording.sources import macos

    scripted = Mac()
    install(monkeypatch, scripted)
    monkeypatch.setattr(macos, "hid_idle_seconds", lambda: 7.0)
    monkeypatch.setattr(macos, "screen_locked", lambda: False)
    return scripted


def text_edit_in_front(mac) -> None:
    from helpers.fake_appscript import Window

    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)


# Automation for System Events and Accessibility, as the lines after `desktop` say when both are granted.
GRANTED = [("permission", "ok"), ("permission", "ok")]


def outcomes(checks: list[Any]) -> list[tuple[str, str]]:
    return [(check.name, check.outcome) for check in checks]


def test_macos_with_every_permission(mac):
    from tracker.tasks.doctor import check_desktop

    text_edit_in_front(mac)
    checks = check_desktop("macos")
    assert outcomes(checks) == [("desktop", "ok"), *GRANTED, ("idle time", "ok")]
    assert checks[0].detail == "macos: the foreground app is TextEdit"
    assert [check.detail for check in checks[1:3]] == ["may control System Events",
                                                       "may read window titles (Accessibility)"]
    assert checks[3].detail == "7 s since the last keyboard or mouse input"


def test_macos_without_automation_of_system_events_blocks_recording(mac):
    from tracker.tasks.doctor import blocks_recording, check_desktop

    text_edit_in_front(mac)
    mac.automation["System Events"] = "refused"
    checks = check_desktop("macos")
    assert outcomes(checks) == [("desktop", "problem"), ("permission", "problem"), ("idle time", "warning")]
    assert checks[1].detail == "tracker is not allowed to control System Events, so no app can be recorded"
    assert checks[1].fix.startswith("Allow your terminal (or whatever runs tracker) to control System Events in "
                                    "System Settings → Privacy & Security → Automation")
    assert blocks_recording(checks)


def test_macos_without_accessibility_or_a_browsers_automation_records_less(mac):
    from helpers.fake_appscript import CHROME_TERMS, Window

    from tracker.tasks.doctor import blocks_recording, check_desktop

    text_edit_in_front(mac)
    mac.accessibility = False
    checks = check_desktop("macos")
    assert outcomes(checks) == [("desktop", "ok"), ("permission", "warning"), ("permission", "ok"),
                                ("idle time", "ok")]
    assert "Accessibility" in checks[1].fix
    mac.accessibility = True
    mac.add("Google Chrome", "com.google.Chrome", CHROME_TERMS, windows=[Window("Issues", "https://github.com/")],
            front=True)
    mac.automation["Google Chrome"] = "refused"
    checks = check_desktop("macos")
    assert outcomes(checks) == [("desktop", "ok"), *GRANTED, ("browser", "warning"), ("idle time", "ok")]
    assert checks[3].detail == "tracker is not allowed to control Google Chrome, so Google Chrome is recorded by " \
                               "app only"
    assert not blocks_recording(checks)


def test_macos_with_a_front_window_whose_title_cannot_be_read_says_so_as_such(mac):
    from helpers.fake_appscript import Window

    from tracker.tasks.doctor import blocks_recording, check_desktop

    cut_inside_an_emoji = "Party 🎉".encode("utf-16-le", "surrogatepass")[:-2].decode("utf-16-le", "surrogatepass")
    mac.add("Notes", "com.apple.Notes", windows=[Window(cut_inside_an_emoji)], front=True)
    checks = check_desktop("macos")
    assert outcomes(checks) == [("desktop", "ok"), *GRANTED, ("window title", "warning"), ("idle time", "ok")]
    assert checks[0].detail == "macos: the foreground app is Notes"
    assert checks[3].detail == "the title of Notes's front window cannot be read now, so it is recorded with the " \
                               "app only"
    assert not blocks_recording(checks)


def test_macos_asks_for_accessibility_also_with_a_browser_in_front(mac):
    from helpers.fake_appscript import CHROME_TERMS, Window

    from tracker.tasks.doctor import check_desktop

    # Reading a Chrome tab never touches System Events' UI elements, so the read alone would not tell.
    mac.add("Google Chrome", "com.google.Chrome", CHROME_TERMS, windows=[Window("Issues", "https://github.com/")],
            front=True)
    mac.accessibility = False
    checks = check_desktop("macos")
    assert outcomes(checks) == [("desktop", "ok"), ("permission", "warning"), ("permission", "ok"),
                                ("browser", "ok"), ("idle time", "ok")]
    assert checks[1].detail.startswith("tracker is not allowed to read window titles")
    assert "Accessibility" in checks[1].fix


def test_macos_says_for_each_running_browser_whether_tracker_may_control_it(mac):
    from helpers.fake_appscript import CHROME_TERMS, SAFARI_TERMS, STANDARD_TERMS, Window

    from tracker.tasks.doctor import blocks_recording, check_desktop

    text_edit_in_front(mac)  # neither browser in front: the one read of the foreground never asks them
    mac.add("Safari", "com.apple.Safari", SAFARI_TERMS, windows=[Window("Apple", "https://apple.com/")])
    mac.add("Google Chrome", "com.google.Chrome", CHROME_TERMS)  # no window open
    mac.add("Firefox", "org.mozilla.firefox", STANDARD_TERMS, windows=[Window("Mozilla")])  # never asked
    mac.automation["Google Chrome"] = "refused"
    checks = check_desktop("macos")
    assert outcomes(checks) == [("desktop", "ok"), *GRANTED, ("browser", "ok"), ("browser", "warning"),
                                ("idle time", "ok")]
    assert checks[3].detail == "may control Safari"
    assert checks[4].detail == "tracker is not allowed to control Google Chrome, so Google Chrome is recorded by " \
                               "app only"
    assert checks[4].fix == ("Allow your terminal (or whatever runs tracker) to control Google Chrome in System "
                             "Settings → Privacy & Security → Automation, then restart tracker.")
    assert not blocks_recording(checks)
    assert not any(process == "Firefox" for process, _, _ in mac.events)


@pytest.mark.slow
def test_macos_a_browser_waiting_for_its_prompt_is_a_warning_and_doctor_does_not_wait(mac):
    from helpers.fake_appscript import ARC_TERMS

    from tracker.tasks.doctor import check_desktop

    text_edit_in_front(mac)
    mac.add("Arc", "company.thebrowser.Browser", ARC_TERMS)
    mac.automation["Arc"] = "prompt"  # the fake holds the Apple Event up to 60 s, as macOS holds it
    started = time.monotonic()
    try:
        checks = check_desktop("macos")
    finally:
        mac.answer_prompt("Arc", allow=False)  # frees the request's thread
    assert time.monotonic() - started < 30
    assert outcomes(checks) == [("desktop", "ok"), *GRANTED, ("browser", "warning"), ("idle time", "ok")]
    assert checks[3].detail == ("waits for an answer whether tracker may control Arc, so Arc is recorded by app "
                                "only meanwhile")
    assert checks[3].fix.startswith("Click OK in the prompt macOS shows about controlling Arc")


def test_macos_without_a_browser_running_has_no_browser_line(mac):
    from tracker.tasks.doctor import check_desktop

    text_edit_in_front(mac)
    assert [check.name for check in check_desktop("macos")] == ["desktop", "permission", "permission", "idle time"]


def test_macos_browser_lines_in_json(mac, monkeypatch: pytest.MonkeyPatch):
    from helpers.fake_appscript import CHROME_TERMS, SAFARI_TERMS, Window

    import tracker.recording.sources.choose

    monkeypatch.setattr(tracker.recording.sources.choose, "detect_platform", lambda: "macos")
    text_edit_in_front(mac)
    mac.add("Safari", "com.apple.Safari", SAFARI_TERMS, windows=[Window("Apple", "https://apple.com/")])
    mac.add("Google Chrome", "com.google.Chrome", CHROME_TERMS)
    mac.automation["Safari"] = "refused"
    code, output = doctor("--json")
    browsers = [(check["outcome"], check["detail"]) for check in json.loads(output)["checks"]
                if check["name"] == "browser"]
    assert browsers == [("warning", "tracker is not allowed to control Safari, so Safari is recorded by app only"),
                        ("ok", "may control Google Chrome")]
    assert code == 0  # browsers recorded by app only block nothing


def test_macos_doctor_says_what_the_service_s_own_process_may_do_as_its_run_wrote_it(
        no_desktop: None, monkeypatch: pytest.MonkeyPatch):
    from datetime import datetime, timedelta, timezone

    from tracker.macos_privacy import service_entry
    from tracker.recording.runstate import StatusSnapshot, write_status
    from tracker.recording.sources import Permission
    from tracker.tasks import service

    monkeypatch.setattr(service, "current_manager", lambda: service.LAUNCHD)

    def service_permission_checks() -> list[tuple[str, str, str]]:
        checks = json.loads(doctor("--json")[1])["checks"]
        return [(check["outcome"], check["detail"], check["fix"]) for check in checks
                if check["name"] == "service permission"]

    assert service_permission_checks() == []  # no service installed: nothing to say of its permissions
    service.plist_file().parent.mkdir(parents=True)
    service.plist_file().write_text("<plist/>")
    assert service_permission_checks() == [
        ("warning", "the service's own process has not recorded its permissions yet",
         "Run `tracker service install` (it starts the service), then `tracker doctor` again a few seconds later.")]

    checked = datetime.now(timezone.utc) - timedelta(minutes=3)
    write_status(StatusSnapshot(
        pid=4242, started_at=checked, samples_taken=0, started_by_service=True,
        permissions=(Permission("Automation", "System Events", "denied", checked, -1743),
                     Permission("Accessibility", None, "not asked yet"))))
    entry = service_entry()
    assert service_permission_checks() == [
        ("problem", "Automation for System Events: denied (error -1743, checked 3m ago)",
         f"In System Settings → Privacy & Security → Automation, turn on System Events under {entry}, then restart the"
         f" service (`launchctl kickstart -k gui/{os.getuid()}/io.github.tracker`)."),
        ("ok", "Accessibility: not asked yet", "")]
    code, output = doctor()
    assert code == 1
    assert re.search(r"^problem  service permission +Automation for System Events: denied \(error -1743, checked 3m"
                     r" ago\)$", output, re.MULTILINE), output


def test_macos_doctor_says_what_a_tracker_run_from_a_terminal_was_allowed(no_desktop: None):
    from datetime import datetime, timezone

    from tracker.recording.runlock import acquire_run_lock
    from tracker.recording.runstate import StatusSnapshot, write_status
    from tracker.recording.sources import Permission

    now = datetime.now(timezone.utc)
    with acquire_run_lock():  # as `tracker run` holds it
        write_status(StatusSnapshot(pid=os.getpid(), started_at=now, samples_taken=5, permissions=(
            Permission("Automation", "System Events", "granted", now),
            Permission("Automation", "Google Chrome", "denied", now, -1743))))
        checks = json.loads(doctor("--json")[1])["checks"]
    assert [(check["outcome"], re.sub(r"checked (\d+s ago|just now)", "checked", check["detail"]), check["fix"])
            for check in checks if check["name"] == "run permission"] == [
        ("ok", "Automation for System Events: granted (checked)", ""),
        ("warning", "Automation for Google Chrome: denied (error -1743, checked)",
         "Allow your terminal (or whatever runs tracker) to control Google Chrome in System Settings → Privacy &"
         " Security → Automation, then restart tracker.")]
    assert not any(check["name"] == "service permission" for check in checks)  # no service installed
