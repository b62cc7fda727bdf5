"""`tracker service` on Windows: a script in the user's Startup folder (no administrator needed), run for real
under Wine: install writes it and starts the run at once, status asks the run lock, uninstall removes it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers.servers import wait_until
from helpers.wine import WineSession, windows_path
from helpers.workflows import assert_valid_for_github

from tracker.tasks.service import ServiceError, ServiceSpec, startup_cmd


def tracker(wine: WineSession, tracker_home: Path, *args: str) -> tuple[int, str]:
    program = wine.start("from tracker.commands import cli; cli(prog_name='tracker')", *args,
                         env={"TRACKER_HOME": windows_path(tracker_home)})
    code = program.finish(90)
    return code, "\n".join(line for line in list(program.lines.queue) if line) + program.said()


@pytest.mark.skipif(sys.platform == "win32", reason="runs Windows under Wine, on Linux")
def test_install_starts_a_run_from_the_startup_folder_and_uninstall_removes_the_script(
        wine: WineSession, tracker_home: Path) -> None:
    code, said = tracker(wine, tracker_home, "service", "status")
    assert code == 4 and "No tracker service is installed" in said, said
    code, said = tracker(wine, tracker_home, "service", "install")
    assert code == 0, said
    script = "C:\\users\\" in said and said.split("Wrote ", 1)[1].split(".cmd.", 1)[0] + ".cmd"
    assert script and script.endswith("\\Start Menu\\Programs\\Startup\\tracker.cmd"), said
    try:
        status = wait_until(lambda: (found := tracker(wine, tracker_home, "service", "status"))[0] == 0 and found,
                            60, "the run the script started")
        assert "The tracker service is running (tracker run holds the data directory, pid " in status[1]
        code, doctor = tracker(wine, tracker_home, "doctor")
        # The desktop line comes from the source (what is in front depends on the tests before: maybe nothing).
        assert ("ok       desktop      windows: the foreground app is" in doctor
                or "warning  desktop      windows answers, but shows no foreground window now" in doctor), doctor
        assert "ok       service      running" in doctor, doctor
    finally:
        code, said = tracker(wine, tracker_home, "service", "uninstall")
    assert code == 0 and "Removed C:\\users\\" in said and "goes on until you log out" in said, said
    code, said = tracker(wine, tracker_home, "service", "status")
    assert code == 4, said


def test_the_startup_script_quotes_what_cmd_would_expand_and_refuses_what_it_cannot_hold() -> None:
    spec = ServiceSpec(("C:\\Program Files\\tracker\\tracker.exe",), {"TRACKER_HOME": "D:\\100% & more"},
                       Path("D:\\100% & more\\data\\tracker.log"), Path("C:\\Users\\me"))
    script = startup_cmd(spec)
    assert script.endswith("\r\n") and 'set "TRACKER_HOME=D:\\100%% & more"' in script
    assert ('start "tracker" /min "C:\\Program Files\\tracker\\tracker.exe" "run" "--quiet" "--log-file" '
            '"D:\\100%% & more\\data\\tracker.log"') in script
    with pytest.raises(ServiceError, match=r"cannot be written into a \.cmd script"):
        startup_cmd(ServiceSpec(("tracker.exe",), {"TRACKER_HOME": 'C:\\a"b'}, Path("x"), Path("y")))


WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "windows.yml"


def test_the_windows_workflow_runs_the_native_tests_and_a_recording_on_both_pythons() -> None:
    import yaml

    job = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["windows"]
    assert job["runs-on"] == "windows-latest" and job["strategy"]["matrix"]["python"] == ["3.10", "3.13"]
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    assert "tests/test_windows_native.py" in commands and "tracker run --source windows --for 5s" in commands


def test_the_windows_workflow_is_valid_for_github() -> None:
    assert_valid_for_github(WORKFLOW)
