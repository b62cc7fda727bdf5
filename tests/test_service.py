"""`tracker service`: the unit and the plist as the service managers read them, and install / uninstall /
status against a throwaway HOME, with `systemctl` and `launchctl` fakes on PATH that record what they were asked
(this machine has no user systemd session, and no launchd)."""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import systemd_units
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.commands import cli
from tracker.tasks import service

FAKE = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["FAKE_CALLS"], "a") as calls:
    calls.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
answers = json.loads(open(os.environ["FAKE_ANSWERS"]).read()) if os.path.exists(os.environ["FAKE_ANSWERS"]) else {{}}
words = " ".join(sys.argv[1:])
for pattern, (code, out) in answers.items():
    if pattern in words:
        sys.stdout.write(out)
        sys.exit(code)
# launchd as reported: a booted-out job lingers a moment (`print` still finds it) and `bootstrap` fails with 5
# meanwhile, and sometimes for a while after it; `loads: false` is a bootstrap that says nothing and loads nothing.
model = os.environ.get("FAKE_LAUNCHD", "")
if name != "launchctl" or not os.path.exists(model):
    sys.exit(0)
state = json.loads(open(model).read())
verb, code, out, err = sys.argv[1], 0, "", ""
if verb == "bootout":
    if state["loaded"]:
        state["loaded"], state["lingering"] = False, state["linger"]
    else:
        code, err = 3, "Boot-out failed: 3: No such process"
elif verb == "print":
    if state["loaded"] or state["lingering"]:
        job = "running" if state["loaded"] else "exiting"
        out = sys.argv[2].rsplit("/", 1)[1] + " = {{" + chr(10) + chr(9) + "state = " + job + chr(10) + chr(9) + \\
            "pid = 977" + chr(10) + "}}" + chr(10)
        state["lingering"] = max(0, state["lingering"] - (not state["loaded"]))
    else:
        code, err = 113, "Could not find service in domain for port"
elif verb == "bootstrap":
    if state["loaded"]:
        code, err = 37, "Bootstrap failed: 37: Operation already in progress"
    elif state["lingering"] or state["busy"]:
        state["busy"] = max(0, state["busy"] - (not state["lingering"]))
        code, err = 5, "Bootstrap failed: 5: Input/output error"
    else:
        state["loaded"] = state["loads"]
open(model, "w").write(json.dumps(state))
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(code)
"""


class Managers:
    """The fakes: `calls()` is every command they were given; `answer(words, code, out)` scripts one."""

    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.bin.mkdir()
        self.calls_file = directory / "calls.jsonl"
        self.answers_file = directory / "answers.json"
        self.launchd_file = directory / "launchd.json"
        self.answers: dict[str, tuple[int, str]] = {}
        for name in ("systemctl", "launchctl"):
            fake = self.bin / name
            fake.write_text(FAKE.format(python=sys.executable))
            fake.chmod(0o755)

    def calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def forget_calls(self) -> None:
        self.calls_file.unlink(missing_ok=True)

    def answer(self, words: str, code: int = 0, out: str = "") -> None:
        self.answers[words] = (code, out)
        self.answers_file.write_text(json.dumps(self.answers))

    def model_launchd(self, loaded: bool = False, linger: int = 0, busy: int = 0, loads: bool = True) -> None:
        """launchctl as launchd answers: after a bootout the old job is still found by `linger` prints, and
        bootstrap fails with 5 while it is and `busy` more times; `loads=False`: bootstrap loads nothing."""
        self.launchd_file.write_text(json.dumps({"loaded": loaded, "linger": linger, "lingering": 0,
                                                 "busy": busy, "loads": loads}))

    def launchd(self) -> dict[str, Any]:
        return dict(json.loads(self.launchd_file.read_text()))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway HOME, with a desktop's DISPLAY set as in a terminal on it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("DISPLAY", ":7")
    monkeypatch.delenv("XAUTHORITY", raising=False)
    for name in ("WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def managers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> Managers:
    fakes = Managers(tmp_path)
    monkeypatch.setenv("PATH", f"{fakes.bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CALLS", str(fakes.calls_file))
    monkeypatch.setenv("FAKE_ANSWERS", str(fakes.answers_file))
    monkeypatch.setenv("FAKE_LAUNCHD", str(fakes.launchd_file))
    return fakes


def tracker(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(arguments), catch_exceptions=False)
    return result.exit_code, result.output


def unit_path(home: Path) -> Path:
    return home / ".config" / "systemd" / "user" / "tracker.service"


def this_tracker() -> str:
    return str(Path(sys.executable).parent / "tracker")


# -- the files -------------------------------------------------------------------------------------------

def a_spec(tmp_path: Path, home: str = "/tmp/tracker home/with 'quotes' and $dollar%") -> service.ServiceSpec:
    program = tmp_path / "bin dir" / "tracker"
    program.parent.mkdir(exist_ok=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return service.ServiceSpec((str(program),), {"TRACKER_HOME": home}, Path(home) / "data" / "tracker.log",
                               tmp_path)


@pytest.mark.slow
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "tracker.service"
    unit.write_text(service.systemd_unit(a_spec(tmp_path)))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    # --user: checked as the user manager would load it; it needs a runtime directory, which a session gives.
    done = subprocess.run([analyze, "--user", "verify", str(unit)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    # The check can fail: a word systemd does not know is reported.
    unit.write_text(service.systemd_unit(a_spec(tmp_path)).replace("Restart=on-failure", "Restart=sometimes"))
    broken = subprocess.run([analyze, "--user", "verify", str(unit)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    assert "sometimes" in broken.stderr


# Characters a path may hold that mean something to systemd or to the line a setting is on.
PATH_CHARACTERS = (" \t\n\r\"'\\$%;#={}*?~&|<>()[]`!@:+-\x01\x1b\x7f"
                   "abcXYZ019éß日本😀\u2028\udcff")
PATH_NAMES = st.text(PATH_CHARACTERS, min_size=1, max_size=8).filter(lambda name: name not in (".", ".."))


def _spec_at(root: Path, program_dir: str, home: str, tracker_home: str) -> service.ServiceSpec:
    """A spec whose program exists (verify checks that it is executable), in directories with these names."""
    program = root / program_dir / "tracker"
    try:
        program.parent.mkdir(parents=True, exist_ok=True)
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    except (OSError, UnicodeEncodeError):
        pass  # a name this file system refuses: the unit is then refused or checked without the program
    home_path, tracker_home_path = root / "homes" / home, root / "data" / tracker_home
    return service.ServiceSpec((str(program),), {"TRACKER_HOME": str(tracker_home_path)},
                               tracker_home_path / "data" / "tracker.log", home_path)


def _assert_systemd_reads_back(specs: dict[str, service.ServiceSpec], tmp_path: Path) -> None:
    """Each spec's unit, loaded by systemd itself: the command, the variables and the working directory it
    will use are the spec's, and `systemd-analyze verify` has nothing to say."""
    units = {name: service.systemd_unit(spec) for name, spec in specs.items()}
    loaded, said = systemd_units.load_units(units)
    assert said == "", said
    plain = a_spec(tmp_path)
    for name, spec in specs.items():
        assert loaded[name].command == spec.arguments, units[name]
        for variable, value in spec.environment.items():
            assert loaded[name].has_environment(variable, value), units[name]
        assert loaded[name].has_working_directory(str(spec.working_directory)), units[name]
        # Nothing in a path adds a line to the unit (systemd ends lines at \n and \r, not at U+2028).
        assert len(re.split("[\n\r]", units[name])) == len(re.split("[\n\r]", service.systemd_unit(plain)))
    checked = systemd_units.verify(units, tmp_path)
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr


@pytest.mark.slow
def test_paths_with_blanks_quotes_dollars_percents_and_line_breaks_reach_the_service_as_they_are(tmp_path: Path):
    specs = {
        "john.service": _spec_at(tmp_path, "John Smith/venv/bin", "John Smith", "John Smith/tracker"),
        "dollar.service": _spec_at(tmp_path, "$HOME ${USER} $$", "costs $5", "$HOME/tracker %h %%"),
        "quotes.service": _spec_at(tmp_path, "a;b #c =d {e}", "a\\b 'c' \"d\"", "it's \"quoted\" \\ ;"),
        "lines.service": _spec_at(tmp_path, "plain", "tab\there", "two\nlines\ttab \x01"),
    }
    _assert_systemd_reads_back(specs, tmp_path)
    unit = service.systemd_unit(specs["john.service"])
    assert f"WorkingDirectory={tmp_path}/homes/John Smith\n" in unit  # as it stands: systemd does not unquote it


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(*[PATH_NAMES] * 3), min_size=1, max_size=6))
def test_any_path_reaches_the_service_as_it_is_or_is_refused_in_one_sentence(
        tmp_path_factory: pytest.TempPathFactory, names: list[tuple[str, str, str]]):
    root = tmp_path_factory.mktemp("paths")
    specs: dict[str, service.ServiceSpec] = {}
    for number, (program_dir, home, tracker_home) in enumerate(names):
        spec = _spec_at(root, program_dir, home, tracker_home)
        try:
            service.systemd_unit(spec)
        except service.ServiceError as refused:
            sentence = str(refused)
            assert "\n" not in sentence and sentence.startswith("The service cannot be written for systemd: ")
            continue
        specs[f"t{number}.service"] = spec
    if specs:
        _assert_systemd_reads_back(specs, root)


def test_install_from_a_home_with_a_space_writes_a_working_directory_systemd_reads(
        tmp_path: Path, managers: Managers, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "John Smith"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TRACKER_HOME", str(home / "costs $5 & 100%"))
    code, output = tracker("service", "install")
    assert code == 0, output
    unit = unit_path(home).read_text()
    assert f"WorkingDirectory={home}\n" in unit  # no quotes: systemd reads this setting as it stands
    assert f'Environment="TRACKER_HOME={home}/costs $5 & 100%%"\n' in unit  # `$` as it is, `%` doubled


def test_a_home_no_unit_file_can_hold_is_refused_in_one_sentence(tmp_path: Path, managers: Managers,
                                                               monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "two\nlines"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    code, output = tracker("service", "install", "--dry-run")
    assert code == 1
    assert output == ("Error: The service cannot be written for systemd: the home directory (the service's working"
                      f" directory), {str(home)!r}, holds a line break, or blanks or a backslash at its end, which a"
                      " unit file cannot express; set HOME to another directory and run `tracker service install`"
                      " again.\n")
    assert not unit_path(home).exists() and managers.calls() == []


def test_the_unit_runs_tracker_quietly_with_the_same_home_and_restarts_on_failure_only(tmp_path: Path):
    spec = a_spec(tmp_path, "/srv/tracker home")
    lines = service.systemd_unit(spec).splitlines()
    assert f'ExecStart="{spec.program[0]}" run --quiet --log-file "/srv/tracker home/data/tracker.log"' in lines
    assert 'Environment="TRACKER_HOME=/srv/tracker home"' in lines
    assert "Restart=on-failure" in lines
    assert "WantedBy=graphical-session.target" in lines


def test_the_plist_round_trips_through_plistlib_with_the_expected_keys(tmp_path: Path):
    spec = a_spec(tmp_path, "/Users/me/tracker")
    loaded = plistlib.loads(service.plist_text(spec).encode())
    assert loaded == service.launchd_plist(spec)
    assert loaded["Label"] == "io.github.tracker"
    assert loaded["ProgramArguments"] == [spec.program[0], "run", "--quiet", "--log-file",
                                          "/Users/me/tracker/data/tracker.log"]
    assert loaded["RunAtLoad"] is True
    assert loaded["KeepAlive"] == {"SuccessfulExit": False}  # again after a failure, not after a clean stop
    # TRACKER_STARTED_BY: the run knows that macOS's permissions are the service's own, not a terminal's.
    assert loaded["EnvironmentVariables"] == {"TRACKER_HOME": "/Users/me/tracker", "TRACKER_STARTED_BY": "launchd"}


def test_from_a_one_file_binary_the_service_runs_the_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    binary = tmp_path / "dist" / "tracker"
    binary.parent.mkdir()
    binary.write_text("")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(binary))
    assert service.tracker_program() == (str(binary.resolve()),)


def test_from_a_venv_the_service_runs_its_tracker_script():
    assert service.tracker_program() == (this_tracker(),)


# -- install and uninstall (systemd) ------------------------------------------------------------------

def test_install_writes_the_unit_and_enables_it_now_and_twice_is_harmless(home: Path, managers: Managers,
                                                                          tracker_home: Path):
    paths_config = tracker_home / "config"
    paths_config.mkdir(parents=True)
    (paths_config / "config.yaml").write_text("influx:\n  url: http://localhost:8086\n  token: s3cret-token\n")
    code, output = tracker("service", "install")
    assert code == 0, output
    unit = unit_path(home).read_text()
    assert f"ExecStart={this_tracker()} run --quiet --log-file {tracker_home}/data/tracker.log" in unit
    assert f"Environment=TRACKER_HOME={tracker_home}" in unit
    assert "s3cret-token" not in unit and "8086" not in unit  # settings stay in config.yaml
    assert managers.calls() == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "reset-failed", "tracker.service"],
        ["systemctl", "--user", "import-environment", "DISPLAY"],
        ["systemctl", "--user", "enable", "--now", "tracker.service"],
    ]
    assert f"Wrote {unit_path(home)}." in output

    managers.forget_calls()
    code, output = tracker("service", "install")
    assert code == 0, output
    assert unit_path(home).read_text() == unit
    assert ["systemctl", "--user", "enable", "--now", "tracker.service"] in managers.calls()
    assert not any("try-restart" in call for call in managers.calls())  # the same unit: nothing to restart


def test_install_with_another_home_replaces_the_unit_and_restarts_a_running_service(
        home: Path, managers: Managers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert tracker("service", "install")[0] == 0
    monkeypatch.setenv("TRACKER_HOME", str(tmp_path / "other"))
    managers.forget_calls()
    assert tracker("service", "install")[0] == 0
    assert f"Environment=TRACKER_HOME={tmp_path / 'other'}" in unit_path(home).read_text()
    assert managers.calls()[-1] == ["systemctl", "--user", "try-restart", "tracker.service"]


def test_without_a_display_install_enables_for_the_next_login_and_says_so(home: Path, managers: Managers,
                                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DISPLAY")
    code, output = tracker("service", "install")
    assert code == 0, output
    assert managers.calls() == [["systemctl", "--user", "daemon-reload"],
                                ["systemctl", "--user", "reset-failed", "tracker.service"],
                                ["systemctl", "--user", "enable", "tracker.service"]]
    assert "Neither DISPLAY nor WAYLAND_DISPLAY is set here, so it is not started now" in output


def test_in_a_wayland_session_install_hands_the_service_the_compositor_and_starts_it_now(
        home: Path, managers: Managers, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-1")
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "sway")
    code, output = tracker("service", "install")
    assert code == 0, output
    assert managers.calls()[2:] == [
        ["systemctl", "--user", "import-environment", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP"],
        ["systemctl", "--user", "enable", "--now", "tracker.service"],
    ]


def test_dry_run_prints_the_unit_and_the_commands_and_changes_nothing(home: Path, managers: Managers):
    code, output = tracker("service", "install", "--dry-run")
    assert code == 0, output
    assert f"Would write {unit_path(home)}:" in output
    assert "Restart=on-failure" in output
    assert "  systemctl --user enable --now tracker.service" in output
    assert not unit_path(home).exists()
    assert managers.calls() == []


def test_install_refuses_settings_that_live_only_in_the_shell(home: Path, managers: Managers,
                                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRACKER_INFLUX_URL", "http://influx.example:8086")
    monkeypatch.setenv("TRACKER_INFLUX_TOKEN", "s3cret")
    code, output = tracker("service", "install")
    assert code == 2
    assert "TRACKER_INFLUX_URL, TRACKER_INFLUX_TOKEN are set only in this shell" in output
    assert "s3cret" not in output
    assert not unit_path(home).exists()
    assert managers.calls() == [["systemctl", "--user", "show-environment"]]

    # In the user manager's environment too (environment.d), the service sees them: fine.
    managers.answer("show-environment", 0, "HOME=/x\nTRACKER_INFLUX_URL=http://influx.example:8086\n"
                                           "TRACKER_INFLUX_TOKEN=s3cret\n")
    code, output = tracker("service", "install")
    assert code == 0, output
    assert "s3cret" not in unit_path(home).read_text()


def test_a_unit_that_never_failed_installs_although_reset_failed_complains(home: Path, managers: Managers):
    managers.answer("reset-failed", 1, "Unit tracker.service not loaded.")
    code, output = tracker("service", "install")
    assert code == 0, output
    assert ["systemctl", "--user", "enable", "--now", "tracker.service"] in managers.calls()


def test_a_failing_systemctl_is_one_sentence_and_exit_1(home: Path, managers: Managers):
    managers.answer("enable", 1, "")
    code, output = tracker("service", "install")
    assert code == 1
    assert "`systemctl --user enable --now tracker.service` failed (exit status 1)" in output
    assert "Traceback" not in output


def test_uninstall_disables_and_removes_the_unit_and_leaves_the_data(home: Path, managers: Managers,
                                                                     tracker_home: Path):
    data = tracker_home / "data"
    data.mkdir(parents=True)
    (data / "tracker.db").write_text("recorded")
    assert tracker("service", "install")[0] == 0
    managers.forget_calls()
    code, output = tracker("service", "uninstall")
    assert code == 0, output
    assert not unit_path(home).exists()
    assert managers.calls() == [["systemctl", "--user", "disable", "--now", "tracker.service"],
                                ["systemctl", "--user", "daemon-reload"]]
    assert (data / "tracker.db").read_text() == "recorded"
    assert "untouched" in output
    managers.forget_calls()
    code, output = tracker("service", "uninstall")
    assert code == 0 and "No tracker service is installed" in output
    assert managers.calls() == []


# -- status -------------------------------------------------------------------------------------------

def test_status_not_installed(home: Path, managers: Managers):
    code, output = tracker("service", "status")
    assert code == 4
    assert "No tracker service is installed" in output


def test_status_installed_and_running(home: Path, managers: Managers):
    assert tracker("service", "install")[0] == 0
    managers.answer("show tracker.service", 0,
                    "ActiveState=active\nSubState=running\nMainPID=4242\nUnitFileState=enabled\n")
    code, output = tracker("service", "status")
    assert code == 0, output
    assert "The tracker service is running (active, running, enabled, pid 4242)." in output
    code, output = tracker("service", "status", "--json")
    assert json.loads(output)["running"] is True and json.loads(output)["pid"] == 4242


def test_status_installed_but_not_running(home: Path, managers: Managers, tracker_home: Path):
    assert tracker("service", "install")[0] == 0
    managers.answer("show tracker.service", 0,
                    "ActiveState=failed\nSubState=failed\nMainPID=0\nUnitFileState=enabled\n")
    log = tracker_home / "data" / "tracker.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-01-01 09:00:00  Writing +2\nError: No desktop found: DISPLAY is not set.\n\n")
    code, output = tracker("service", "status")
    assert code == 3
    assert "installed but not running (failed, failed, enabled)" in output
    assert "  last line of the log: Error: No desktop found: DISPLAY is not set." in output


# -- launchd (the same code, driven with the launchd plan) ------------------------------------------------

def test_launchd_install_bootstraps_the_agent_and_uninstall_boots_it_out(home: Path, managers: Managers,
                                                                         tmp_path: Path):
    spec = a_spec(tmp_path, str(tmp_path / "th"))
    managers.model_launchd(loaded=False)  # not loaded yet: bootout fails, which is fine
    service.carry_out(service.plan_install(spec, service.LAUNCHD))
    agent = home / "Library" / "LaunchAgents" / "io.github.tracker.plist"
    assert plistlib.loads(agent.read_bytes())["ProgramArguments"][0] == spec.program[0]
    target = f"gui/{os.getuid()}/io.github.tracker"
    assert managers.calls() == [["launchctl", "bootout", target], ["launchctl", "print", target],
                                ["launchctl", "enable", target],
                                ["launchctl", "bootstrap", f"gui/{os.getuid()}", str(agent)],
                                ["launchctl", "print", target]]  # loaded, as checked

    state = service.read_state(service.LAUNCHD)
    assert (state.installed, state.running, state.pid) == (True, True, 977)
    managers.answer("print", 113, "Could not find service")
    state = service.read_state(service.LAUNCHD)
    assert (state.installed, state.running, state.detail) == (True, False, "not loaded")

    managers.forget_calls()
    service.carry_out(service.plan_uninstall(service.LAUNCHD))
    assert not agent.exists()
    assert managers.calls() == [["launchctl", "bootout", target]]
    assert not service.read_state(service.LAUNCHD).installed


@pytest.fixture
def on_a_mac(home: Path, managers: Managers, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`tracker service` as on macOS (launchd and its fake); the agent's plist."""
    monkeypatch.setattr(service, "current_manager", lambda: service.LAUNCHD)
    return home / "Library" / "LaunchAgents" / "io.github.tracker.plist"


def test_a_reinstall_waits_until_launchd_let_go_of_the_old_agent_and_checks_the_new_one_is_loaded(
        on_a_mac: Path, managers: Managers):
    managers.model_launchd()
    assert tracker("service", "install")[0] == 0
    assert managers.launchd()["loaded"] is True
    managers.model_launchd(loaded=True, linger=3, busy=2)  # as reported: "Bootstrap failed: 5" for a while
    managers.forget_calls()
    code, output = tracker("service", "install")
    assert code == 0, output
    verbs = [call[1] for call in managers.calls()]
    # Asked until the old job is gone (3 prints still find it), bootstrapped again while launchd says 5.
    assert verbs == ["bootout", "print", "print", "print", "print", "enable", "bootstrap", "bootstrap",
                     "bootstrap", "print"]
    assert managers.launchd()["loaded"] is True
    assert tracker("service", "status")[0] == 0


def test_an_agent_launchd_never_lets_go_of_ends_in_one_sentence_within_the_bound(
        on_a_mac: Path, managers: Managers, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(service, "SETTLE_SECONDS", 1.0)
    managers.model_launchd(loaded=True, linger=10**6)
    code, output = tracker("service", "install")
    assert code == 1
    assert output == (f"Error: `launchctl bootstrap gui/{os.getuid()} {on_a_mac}` still failed after 1 s (Bootstrap"
                      " failed: 5: Input/output error): launchd has not let go of the old agent yet; run `tracker"
                      " service install` again in a minute.\n")


def test_a_bootstrap_that_loads_nothing_is_not_taken_for_success(on_a_mac: Path, managers: Managers):
    managers.model_launchd(loaded=False, loads=False)
    code, output = tracker("service", "install")
    assert code == 1
    assert output == (f"Error: The agent is not loaded although `launchctl bootstrap gui/{os.getuid()} {on_a_mac}`"
                      f" succeeded (`launchctl print gui/{os.getuid()}/io.github.tracker`: Could not find service in"
                      f" domain for port); check the file with `plutil -lint {on_a_mac}` and run `tracker service"
                      " install` again.\n")


@pytest.mark.slow
def test_what_fails_before_the_log_opens_is_in_the_log_status_shows(on_a_mac: Path, managers: Managers,
                                                                     tracker_home: Path, tmp_path: Path):
    managers.model_launchd()
    assert tracker("service", "install")[0] == 0
    agent = plistlib.loads(on_a_mac.read_bytes())
    log = tracker_home / "data" / "tracker.log"
    assert agent["StandardErrorPath"] == str(log) and log.parent.is_dir()  # launchd makes no directory
    # Started as launchd starts it (stderr appended to StandardErrorPath), from an installation that is broken
    # before tracker can open its log.
    broken = tmp_path / "broken"
    (broken / "tracker").mkdir(parents=True)
    (broken / "tracker" / "__init__.py").write_text("raise ImportError('tracker is half installed')\n")
    with log.open("ab") as stderr:
        subprocess.run(agent["ProgramArguments"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=stderr, cwd=agent["WorkingDirectory"], timeout=60, check=False,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(broken), **agent["EnvironmentVariables"]})
    managers.model_launchd(loaded=False)  # it exited, and launchd waits before starting it again
    code, output = tracker("service", "status")
    assert code == 3
    assert "  last line of the log: ImportError: tracker is half installed" in output


@settings(max_examples=60, deadline=None)
@given(PATH_NAMES, PATH_NAMES)
def test_any_path_reaches_the_plist_as_it_is_or_is_refused_in_one_sentence(home: str, tracker_home: str):
    spec = service.ServiceSpec(("/Applications/tracker/tracker",), {"TRACKER_HOME": f"/Users/{tracker_home}"},
                               Path(f"/Users/{tracker_home}/data/tracker.log"), Path(f"/Users/{home}"))
    try:
        text = service.plist_text(spec)
    except service.ServiceError as refused:
        assert "\n" not in str(refused) and str(refused).startswith("The service cannot be written for launchd: ")
        return
    assert plistlib.loads(text.encode("utf-8")) == service.launchd_plist(spec)


def test_launchd_refuses_settings_launchd_does_not_have(managers: Managers):
    environ = {"TRACKER_INFLUX_TOKEN": "t0ken"}
    assert service.settings_only_in_shell(service.LAUNCHD, environ) == ["TRACKER_INFLUX_TOKEN"]
    managers.answer("getenv TRACKER_INFLUX_TOKEN", 0, "t0ken\n")
    assert service.settings_only_in_shell(service.LAUNCHD, environ) == []


# -- what the unit runs, run as systemd would run it ----------------------------------------------------

def _unit_command(unit: str) -> tuple[list[str], dict[str, str]]:
    """ExecStart and Environment= of a unit, as systemd reads them (our unit's quoting is shell-like)."""
    import shlex

    command: list[str] = []
    environment: dict[str, str] = {}
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            command = shlex.split(value)
        elif key == "Environment":
            name, _, setting = shlex.split(value)[0].partition("=")
            environment[name] = setting
    return command, environment


@pytest.mark.slow
def test_the_installed_service_records_to_influxdb_and_stops_cleanly(home: Path, managers: Managers,
                                                                      tracker_home: Path, desktop, influxdb1,
                                                                      influx_database: str):
    import signal

    from helpers.servers import wait_until

    (tracker_home / "config").mkdir(parents=True)
    (tracker_home / "config" / "config.yaml").write_text(
        f"influx:\n  url: {influxdb1.url}\n  bucket: {influx_database}\nhost: service-test\n")
    assert tracker("service", "install")[0] == 0
    command, environment = _unit_command(unit_path(home).read_text())
    assert environment == {"TRACKER_HOME": str(tracker_home)}
    desktop.activate(desktop.open_window("ServiceApp", "started at login"))
    # The user manager's environment: the session's DISPLAY (imported), the unit's variables, no TRACKER_*.
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "DISPLAY": desktop.display, **environment}
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=home)
    log = tracker_home / "data" / "tracker.log"
    try:
        wait_until(lambda: "ServiceApp" in log.read_text(), 60, "the activity line in the service's log")

        def sent() -> list[dict[str, object]]:
            desktop.touch()  # samples wait while nobody touches anything: they may turn out to be time away
            return influxdb1.rows("SELECT * FROM activity WHERE host = 'service-test'", influx_database)

        wait_until(sent, 60, "points in InfluxDB")
    finally:
        process.send_signal(signal.SIGTERM)  # what `systemctl --user stop` sends
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, log.read_text()
    assert stdout == stderr == b""  # everything went to the log
    rows = influxdb1.rows("SELECT * FROM activity WHERE host = 'service-test'", influx_database)
    assert any(row["app"] == "ServiceApp" for row in rows)


def test_without_tracker_home_the_directories_the_shell_names_are_passed_on(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TRACKER_HOME")
    spec = service.current_spec({"XDG_CONFIG_HOME": "/home/me/conf", "XDG_DATA_HOME": "/home/me/data",
                                 "TRACKER_INFLUX_TOKEN": "secret", "PATH": "/usr/bin"})
    assert spec.environment == {"XDG_CONFIG_HOME": "/home/me/conf", "XDG_DATA_HOME": "/home/me/data"}
    spec = service.current_spec({"TRACKER_HOME": "/srv/t", "XDG_CONFIG_HOME": "/home/me/conf"})
    assert spec.environment == {"TRACKER_HOME": "/srv/t"}  # TRACKER_HOME holds both: nothing else is needed


def test_a_file_where_the_unit_directory_must_be_is_named_with_what_to_do(home: Path, managers: Managers):
    directory = unit_path(home).parent
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.write_text("")  # a file called `user` where systemd looks for the user's units
    code, output = tracker("service", "install")
    assert code == 1
    assert output == (f"Error: Cannot write the service file {unit_path(home)}: file exists; {directory} is a file"
                      " where a directory must be: move it away, then run `tracker service install` again.\n")
    assert "TRACKER_HOME" not in output and ".tmp" not in output
    assert managers.calls() == []
    assert directory.read_text() == ""


# -- what macOS allowed the service's own process (through the fake appscript; not run on a Mac) -------------

@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch) -> Any:
    from helpers.fake_appscript import scripted_mac

    return scripted_mac(monkeypatch)


class OneSample:
    """A clock for Run: one sample, then stop, without waiting."""

    def monotonic(self) -> float:
        return 0.0

    def wait(self, seconds: float) -> bool:
        return True


def run_once(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    """One sample of `tracker run` in this process, with `environment` added (launchd's from the plist, or none)."""
    import io

    from tracker.config import load_settings
    from tracker.recording.runner import Run, open_parts
    from tracker.recording.runstate import write_status
    from tracker.ui.live import ActivityLog

    monkeypatch.delenv("TRACKER_STARTED_BY", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    parts = open_parts(load_settings().settings, "macos", ActivityLog(io.StringIO(), "json"))
    try:
        Run(parts, OneSample(), 1.0, write_status=write_status).run()
    finally:
        parts.close()


def just_now(text: str) -> str:
    """The text with every "checked 2s ago" read as "just now": a busy machine may take a second or two."""
    return re.sub(r"\b\d+s ago\b", "just now", text)


def test_service_status_on_macos_says_what_macos_allowed_the_service_s_own_process(
        on_a_mac: Path, managers: Managers, mac: Any, monkeypatch: pytest.MonkeyPatch, tracker_home: Path):
    from helpers.fake_appscript import Window

    from tracker.macos_privacy import service_entry

    managers.model_launchd()
    assert tracker("service", "install")[0] == 0
    code, output = tracker("service", "status")
    assert code == 0
    assert output.splitlines()[-1] == (
        "  permissions: the service's own process has not recorded any yet (its run records them within seconds of"
        " starting; a service installed by an older tracker, after `tracker service install`).")

    mac.add("TextEdit", "com.apple.TextEdit", windows=[Window("notes.txt")], front=True)
    mac.accessibility = False
    run_once(monkeypatch, plistlib.loads(on_a_mac.read_bytes())["EnvironmentVariables"])
    code, output = tracker("service", "status")
    assert code == 0
    entry = service_entry()  # this venv's Python, as the run saw it (the derivation: tests/test_macos_privacy.py)
    assert just_now(output).splitlines()[3:] == [
        f"  permissions of the service's own process, as its run (pid {os.getpid()}) wrote them just now; System"
        f" Settings lists it as {entry}:",
        "    Automation for System Events: granted (checked just now)",
        "    Accessibility: denied (error -1719, checked just now)",
        f"      fix: In System Settings → Privacy & Security → Accessibility, turn on {entry} (add it with + if it is"
        f" not listed), then restart the service (`launchctl kickstart -k gui/{os.getuid()}/io.github.tracker`)."]
    written = json.loads((tracker_home / "data" / "service-permissions.json").read_text())
    assert (written["pid"], written["entry"]["name"]) == (os.getpid(), entry.name)
    assert [(each["kind"], each["target"], each["state"], each["error"]) for each in written["permissions"]] == [
        ("Automation", "System Events", "granted", None), ("Accessibility", None, "denied", -1719)]

    # A run from a terminal afterwards has its own permissions (its terminal app's): the service's stay.
    mac.accessibility = True
    run_once(monkeypatch, {})
    status = json.loads((tracker_home / "data" / "status.json").read_text())
    assert status["started_by_service"] is False and status["permissions"][1]["state"] == "granted"
    assert json.loads((tracker_home / "data" / "service-permissions.json").read_text()) == written
    assert "    Accessibility: denied" in tracker("service", "status")[1]
    document = json.loads(tracker("service", "status", "--json")[1])
    assert document["permissions"]["permissions"][1]["state"] == "denied"


def test_service_status_on_linux_says_nothing_of_macos_permissions(home: Path, managers: Managers):
    assert tracker("service", "install")[0] == 0
    managers.answer("show tracker.service", 0, "ActiveState=active\nSubState=running\nMainPID=42\n")
    code, output = tracker("service", "status")
    assert code == 0 and "permission" not in output
    assert "permissions" not in json.loads(tracker("service", "status", "--json")[1])
