"""`tracker service`: `tracker run --quiet` started at login, by launchd on macOS, by a script in the Startup
folder on Windows (no administrator needed; Wine's schtasks cannot make a logon task, so a Scheduled Task could not
be tried here) and by systemd elsewhere.

The unit file and the plist are made by pure functions from a `ServiceSpec` (which program, which
TRACKER_HOME, which log); `plan_install` and `plan_uninstall` say what would be written and run, and
`carry_out` does it. No setting goes into the files but TRACKER_HOME and where the files live (and, for the
one-file binary, the TMPDIR it unpacks into): the token stays in config.yaml (or in the environment the service
manager gives its services).
"""

from __future__ import annotations

import contextlib
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tracker import PlainError, paths
from tracker.macos_privacy import STARTED_BY_LAUNCHD, STARTED_BY_VARIABLE

LABEL = "io.github.tracker"
UNIT_NAME = "tracker.service"
LOG_NAME = "tracker.log"
Manager = Literal["systemd", "launchd", "startup-folder"]
SYSTEMD: Manager = "systemd"
LAUNCHD: Manager = "launchd"
STARTUP_FOLDER: Manager = "startup-folder"
STARTUP_SCRIPT = "tracker.cmd"
# Seconds before a service that failed is started again: long enough that a broken setting costs little.
RESTART_AFTER = 10
# systemd gives up after this many starts within this many seconds: long enough for a desktop that hands over
# DISPLAY late at login, short enough that a wrong setting does not start Python every 10 s all day.
START_LIMIT_BURST = 10
START_LIMIT_SECONDS = 600
# What a service needs from the graphical session to find its desktop (X11, or Wayland and which compositor), and
# never a secret.
DESKTOP_VARIABLES = ("DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP", "XDG_SESSION_TYPE")
# Where the files live when TRACKER_HOME is not set: passed on when the installing shell sets them.
DIRECTORY_VARIABLES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME")
# launchd lets go of a booted-out job only after a few seconds, and `bootstrap` fails meanwhile with 5 (EIO,
# "Bootstrap failed: 5: Input/output error") or 37 (EALREADY): install waits, within this bound, for the old job
# to go and for bootstrap to succeed, asking every POLL_SECONDS.
SETTLE_SECONDS = 20.0
POLL_SECONDS = 0.25
BOOTSTRAP_BUSY = frozenset({5, 37})
SECRET_VARIABLES = ("TRACKER_INFLUX_URL", "TRACKER_INFLUX_TOKEN", "TRACKER_INFLUX_ORG", "TRACKER_INFLUX_BUCKET",
                    "TRACKER_INFLUX_API")


class ServiceError(PlainError):
    """The service cannot be installed, removed or asked: one plain sentence saying what to do."""


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs: `program` (the binary, or the venv's `tracker` script), with these variables."""

    program: tuple[str, ...]
    environment: Mapping[str, str]  # TRACKER_HOME (or the XDG directories) when set, nothing else
    log_file: Path
    working_directory: Path

    @property
    def arguments(self) -> list[str]:
        return [*self.program, "run", "--quiet", "--log-file", str(self.log_file)]


@dataclass(frozen=True)
class Plan:
    """What `install` or `uninstall` does: write (or remove) one file, then run commands, in order."""

    manager: Manager
    file: Path
    content: str | None  # None: the file is removed
    commands: list[list[str]]
    # Commands whose failure does not matter (unloading what may not be loaded), by index in `commands`.
    may_fail: frozenset[int] = frozenset()
    notes: list[str] = field(default_factory=list)
    settle: Settle | None = None
    directories: tuple[Path, ...] = ()  # made before the commands run (where launchd opens the log)


@dataclass(frozen=True)
class Settle:
    """Waiting for a service manager that acts late (launchd): after command `after`, `gone` is asked until it
    fails (the old job is gone); a command in `retry` runs again while it fails with those codes; `loaded`
    must succeed at the end. All within SETTLE_SECONDS of `after`."""

    after: int
    gone: list[str]
    retry: Mapping[int, frozenset[int]]
    loaded: list[str]


def current_manager() -> Manager:
    if sys.platform == "darwin":
        return LAUNCHD
    return STARTUP_FOLDER if sys.platform == "win32" else SYSTEMD


def tracker_program() -> tuple[str, ...]:
    """The `tracker` of this installation: the one-file binary itself, or the script next to this Python."""
    if getattr(sys, "frozen", False):  # a PyInstaller binary: sys.executable is the binary
        return (str(Path(sys.executable).resolve()),)
    if sys.platform == "win32":
        # pythonw.exe: no console window stays open on the desktop for a run started at login.
        windowless = Path(sys.executable).with_name("pythonw.exe")
        return (str(windowless if windowless.is_file() else Path(sys.executable)), "-m", "tracker")
    beside = Path(sys.executable).parent / "tracker"
    if beside.is_file() and os.access(beside, os.X_OK):
        return (str(beside.absolute()),)  # not resolved: a venv's python is a link out of the venv
    found = shutil.which("tracker")
    if found:
        return (str(Path(found).absolute()),)
    raise ServiceError(f"No `tracker` program was found next to {sys.executable} or on PATH; install tracker "
                       "with pip (or use the one-file binary), then run `tracker service install` from it.")


def log_file() -> Path:
    """Where the service's run writes its log."""
    return paths.data_dir() / LOG_NAME


def current_spec(environ: Mapping[str, str] | None = None) -> ServiceSpec:
    """The service as this installation, with this TRACKER_HOME, would run it."""
    environ = os.environ if environ is None else environ
    names = ("TRACKER_HOME",) if environ.get("TRACKER_HOME") else DIRECTORY_VARIABLES
    if getattr(sys, "frozen", False):
        # The binary unpacks itself into TMPDIR at every start: one set because /tmp cannot run programs must
        # reach the service too, which systemd would start without it.
        names = (*names, "TMPDIR")
    environment = {name: str(Path(environ[name]).absolute()) for name in names if environ.get(name)}
    return ServiceSpec(tracker_program(), environment, log_file(), Path.home())


# -- the files -----------------------------------------------------------------------------------------

def unit_file() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user" / UNIT_NAME


def plist_file() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def startup_script() -> Path:
    """The script in the user's Startup folder, which Windows runs at every login of this user."""
    roaming = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
    return Path(roaming) / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup" / STARTUP_SCRIPT


def service_file(manager: Manager) -> Path:
    if manager == STARTUP_FOLDER:
        return startup_script()
    return plist_file() if manager == LAUNCHD else unit_file()


def startup_cmd(spec: ServiceSpec) -> str:
    """The Startup folder's script: the variables, then the run started minimised (or windowless: pythonw)."""
    lines = ["@echo off", "rem Written by `tracker service install`; `tracker service uninstall` removes it."]
    lines += [f'set "{name}={_cmd_word(value)}"' for name, value in spec.environment.items()]
    lines.append(f'cd /d "{_cmd_word(str(spec.working_directory))}"')
    lines.append('start "tracker" /min ' + " ".join(f'"{_cmd_word(argument)}"' for argument in spec.arguments))
    return "\r\n".join(lines) + "\r\n"


def _cmd_word(text: str) -> str:
    """`text` inside double quotes of a .cmd script: % doubled; what cannot be quoted there is refused."""
    if '"' in text or any(_is_control(character) for character in text):
        raise ServiceError(f"{text!r} cannot be written into a .cmd script (it holds a double quote or a control "
                           "character); set TRACKER_HOME to a plainer directory and install again.")
    return text.replace("%", "%%")


def systemd_unit(spec: ServiceSpec) -> str:
    """A systemd user unit that starts with the graphical session and again after a crash; ServiceError when
    a path cannot be written in a unit file."""
    _refuse_what_systemd_cannot_read(spec)
    environment = "".join(f"Environment={_systemd_word(f'{name}={value}', expands_variables=False)}\n"
                          for name, value in sorted(spec.environment.items()))
    return f"""[Unit]
Description=tracker: records the foreground app and sends it to InfluxDB
# The desktop's DISPLAY reaches the user manager with the graphical session.
PartOf=graphical-session.target
After=graphical-session.target
# Restarted after a failure, but not forever: a setting that stays wrong shows as failed within minutes.
StartLimitIntervalSec={START_LIMIT_SECONDS}
StartLimitBurst={START_LIMIT_BURST}

[Service]
Type=simple
ExecStart={_exec_start(spec.arguments)}
WorkingDirectory={_without_specifiers(str(spec.working_directory))}
{environment}Restart=on-failure
RestartSec={RESTART_AFTER}
# Everything it prints goes to its own log file, which it keeps small.
StandardOutput=null
StandardError=journal

[Install]
WantedBy=graphical-session.target
"""


# How systemd reads a unit (systemd.syntax(7), systemd.service(5) "Command lines", systemd.exec(5)), as the
# tests check against systemd itself: ExecStart= and Environment= are split into words, unquoted and C-unescaped
# ("\\n", "\\x01"), then `%` specifiers are expanded; ExecStart= also expands `$NAME` when it runs (`$$` is one
# `$`), Environment= never does. WorkingDirectory= is taken as it stands, quotes and backslashes included: only
# specifiers are expanded, and the line's leading and trailing blanks dropped.
_QUOTE_WHEN = frozenset(' \t"\'\\;')  # and control characters: a bare `;` separates commands in ExecStart=


def _systemd_word(word: str, *, expands_variables: bool) -> str:
    """One word of ExecStart= (`expands_variables`) or of Environment=, read back by systemd as `word`."""
    escaped = _without_specifiers(word)
    if expands_variables:
        escaped = escaped.replace("$", "$$")
    if escaped and not any(character in _QUOTE_WHEN or _is_control(character) for character in escaped):
        return escaped
    return '"' + "".join(_c_escaped(character) for character in escaped) + '"'


def _exec_start(arguments: Sequence[str]) -> str:
    words = [_systemd_word(argument, expands_variables=True) for argument in arguments]
    if "$" in arguments[0]:
        # systemd runs the program's path as written, `$` and all, but expands `$` in argv[0]: `@PATH ARGV0`
        # gives each its own word.
        words.insert(0, _systemd_word(f"@{arguments[0]}", expands_variables=False))
    return " ".join(words)


def _without_specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _is_control(character: str) -> bool:
    return character < " " or character == "\x7f"


def _c_escaped(character: str) -> str:
    """A character inside a double-quoted word: a line break must not end the line, nor a quote the word."""
    if character in '"\\':
        return "\\" + character
    return f"\\x{ord(character):02x}" if _is_control(character) else character


def _refuse_what_systemd_cannot_read(spec: ServiceSpec) -> None:
    """ServiceError, in one sentence, for what no unit file can hold: every value must be UTF-8, the program's
    path must hold no quote, backslash or control character (systemd refuses them there), and WorkingDirectory=
    (read as it stands) no line break, nor blanks or a backslash at its end (dropped with the line's end); and
    systemd refuses `.` and `..` steps in either path."""
    home, program = str(spec.working_directory), spec.program[0]
    for value, (label, fix) in _values_written(spec).items():
        if not _is_utf8(value):
            raise _unexpressible(SYSTEMD, label, value, "bytes that are not UTF-8", fix)
        if value in (program, home) and not _is_normalized(value):
            raise _unexpressible(SYSTEMD, label, value, "a `.` or `..` step", fix)
        if value == program and any(character in "\"'\\" or _is_control(character) for character in value):
            raise _unexpressible(SYSTEMD, label, value, "a quote, a backslash or a control character", fix)
        if value == home and ("\n" in value or "\r" in value or value != value.rstrip(" \t\\")):
            raise _unexpressible(SYSTEMD, label, value, "a line break, or blanks or a backslash at its end", fix)


def _values_written(spec: ServiceSpec) -> dict[str, tuple[str, str]]:
    """Every path the service's file holds: what it is, and what the user can do when it cannot be written."""
    values = {value: (f"the variable {name}", "set it to another directory")
              for name, value in spec.environment.items()}
    values[str(spec.log_file)] = ("the log file", "set TRACKER_HOME to another directory")
    values[str(spec.working_directory)] = ("the home directory (the service's working directory)",
                                           "set HOME to another directory")
    values[spec.program[0]] = ("the tracker program", "install tracker in another directory")
    return values


def _unexpressible(manager: Manager, label: str, value: str, problem: str, fix: str) -> ServiceError:
    kind = "a unit file" if manager == SYSTEMD else "a plist"
    return ServiceError(f"The service cannot be written for {manager}: {label}, {value!r}, holds {problem}, which "
                        f"{kind} cannot express; {fix} and run `tracker service install` again.")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a name that is not UTF-8, kept by Python as lone surrogates
        return False
    return True


def _is_normalized(path: str) -> bool:
    return path.startswith("/") and "//" not in path and not {".", ".."} & set(path.split("/"))


def launchd_plist(spec: ServiceSpec) -> dict[str, Any]:
    """A LaunchAgent that starts at login and again when tracker exits with a failure (not when stopped);
    ServiceError when a path cannot be written in a plist."""
    _refuse_what_launchd_cannot_read(spec)
    plist: dict[str, Any] = {
        "Label": LABEL,
        "ProgramArguments": spec.arguments,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_AFTER * 3,  # launchd cannot tell "cannot start" apart: try less often
        "LimitLoadToSessionType": "Aqua",  # the logged-in desktop only, where the foreground can be read
        "ProcessType": "Interactive",
        "WorkingDirectory": str(spec.working_directory),
        # What goes wrong before tracker opens its log (Python missing, an import failing) lands in the same log,
        # where `tracker service status` shows its last line. launchd opens it at every start.
        "StandardErrorPath": str(spec.log_file),
    }
    # The run learns from it that the permissions macOS gives it are the service's own (tracker.macos_privacy).
    plist["EnvironmentVariables"] = {**spec.environment, STARTED_BY_VARIABLE: STARTED_BY_LAUNCHD}
    return plist


def _refuse_what_launchd_cannot_read(spec: ServiceSpec) -> None:
    """A plist is XML: it holds no control character but tab and line feed (a carriage return comes back as a
    line feed), and only UTF-8."""
    for value, (label, fix) in _values_written(spec).items():
        if not _is_utf8(value):
            raise _unexpressible(LAUNCHD, label, value, "bytes that are not UTF-8", fix)
        if any(_is_control(character) and character not in "\t\n" for character in value):
            raise _unexpressible(LAUNCHD, label, value, "a control character", fix)


def plist_text(spec: ServiceSpec) -> str:
    return plistlib.dumps(launchd_plist(spec)).decode("utf-8")


# -- what install and uninstall do ---------------------------------------------------------------------

def _systemctl(*arguments: str) -> list[str]:
    return ["systemctl", "--user", *arguments]


def _gui_domain() -> str:
    return f"gui/{os.getuid()}"


def plan_install(spec: ServiceSpec, manager: Manager, environ: Mapping[str, str] | None = None) -> Plan:
    environ = os.environ if environ is None else environ
    file = service_file(manager)
    if manager == STARTUP_FOLDER:
        from tracker.recording.runlock import is_running

        running = is_running()
        notes = [f"It starts at every login of yours (your Startup folder: no administrator needed); its log is "
                 f"{spec.log_file}."]
        if running is not None:
            notes.append(f"tracker run is already running (pid {running}), so it is not started now.")
        return Plan(manager, file, startup_cmd(spec), [] if running is not None else [["cmd.exe", "/c", str(file)]],
                    notes=notes, directories=(spec.log_file.parent,))
    if manager == LAUNCHD:
        target = f"{_gui_domain()}/{LABEL}"
        # bootout first: a loaded agent keeps its old definition, and bootstrap refuses to load it twice. launchd
        # needs a moment to let go of the old job (bootstrap fails meanwhile), and a bootstrap that says nothing
        # may still leave the agent unloaded: wait for the one, retry, and check the other.
        print_job = ["launchctl", "print", target]
        return Plan(manager, file, plist_text(spec),
                    [["launchctl", "bootout", target], ["launchctl", "enable", target],
                     ["launchctl", "bootstrap", _gui_domain(), str(file)]],
                    may_fail=frozenset({0}),
                    notes=[f"It starts at every login; its log is {spec.log_file}."],
                    settle=Settle(after=0, gone=print_job, retry={2: BOOTSTRAP_BUSY}, loaded=print_job),
                    directories=(spec.log_file.parent,))
    unit = systemd_unit(spec)
    # reset-failed: a unit that gave up (too many failed starts) starts again once the cause is fixed.
    commands = [_systemctl("daemon-reload"), _systemctl("reset-failed", UNIT_NAME)]
    notes = [f"It starts with your graphical session (graphical-session.target); its log is {spec.log_file}."]
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        present = [name for name in DESKTOP_VARIABLES if environ.get(name)]
        commands.append(_systemctl("import-environment", *present))
        commands.append(_systemctl("enable", "--now", UNIT_NAME))
        if file.exists() and file.read_text(encoding="utf-8", errors="replace") != unit:
            # A unit that was running keeps its old command line until started again.
            commands.append(_systemctl("try-restart", UNIT_NAME))
    else:
        commands.append(_systemctl("enable", UNIT_NAME))
        notes.append("Neither DISPLAY nor WAYLAND_DISPLAY is set here, so it is not started now: it starts at your "
                     "next graphical login, or run `tracker service install` again from a terminal on your desktop.")
    notes.append("If your desktop does not start graphical-session.target (a bare window manager, or sway), add "
                 "`systemctl --user import-environment DISPLAY XAUTHORITY WAYLAND_DISPLAY XDG_CURRENT_DESKTOP; "
                 f"systemctl --user start {UNIT_NAME}` to the commands your session runs at start.")
    return Plan(manager, file, unit, commands, may_fail=frozenset({1}), notes=notes)


def plan_uninstall(manager: Manager) -> Plan:
    file = service_file(manager)
    if manager == STARTUP_FOLDER:
        from tracker.recording.runlock import is_running

        running = is_running()
        notes = [] if not running else [
            f"The tracker run started by it (pid {running}) goes on until you log out, or `taskkill /PID {running}`."]
        return Plan(manager, file, None, [], notes=notes)
    if manager == LAUNCHD:
        return Plan(manager, file, None, [["launchctl", "bootout", f"{_gui_domain()}/{LABEL}"]],
                    may_fail=frozenset({0}))
    return Plan(manager, file, None, [_systemctl("disable", "--now", UNIT_NAME), _systemctl("daemon-reload")],
                may_fail=frozenset({0}))


def restart_command(manager: Manager) -> list[str]:
    """What starts the service again, for instance after config.yaml changed."""
    if manager == LAUNCHD:
        return ["launchctl", "kickstart", "-k", f"{_gui_domain()}/{LABEL}"]
    if manager == STARTUP_FOLDER:  # after the running one was stopped: there is no manager to restart it
        return ["cmd.exe", "/c", str(startup_script())]
    return _systemctl("restart", UNIT_NAME)


def describe_command(command: Sequence[str]) -> str:
    """A command as this system's shell would take it."""
    return subprocess.list2cmdline(command) if sys.platform == "win32" else shlex.join(command)


Run = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def run_command(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a service manager's command; ServiceError when the program is not there."""
    try:
        return subprocess.run(list(command), capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ServiceError(f"`{command[0]}` was not found: tracker's service needs "
                           f"{'launchd' if command[0] == 'launchctl' else 'systemd'} to start it at login."
                           ) from None
    except subprocess.TimeoutExpired:
        raise ServiceError(f"`{describe_command(command)}` did not finish within 60 s; try again.") from None


def carry_out(plan: Plan, run: Run = run_command) -> None:
    """Write (or remove) the plan's file and run its commands; ServiceError at the first that fails."""
    if plan.content is not None:
        _write_atomically(plan.file, plan.content)
    for directory in plan.directories:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ServiceError(f"Cannot make {directory}, where the service writes its log: "
                               f"{(error.strerror or str(error)).lower()}.") from None
    settle = plan.settle
    deadline = time.monotonic() + SETTLE_SECONDS
    for index, command in enumerate(plan.commands):
        done = run(command)
        retry_on = settle.retry.get(index, frozenset()) if settle else frozenset()
        while done.returncode in retry_on and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            done = run(command)
        if done.returncode != 0 and index not in plan.may_fail:
            said = _said(done)
            if done.returncode in retry_on:
                raise ServiceError(f"`{describe_command(command)}` still failed after {SETTLE_SECONDS:g} s ({said}): "
                                   "launchd has not let go of the old agent yet; run `tracker service install` "
                                   "again in a minute.")
            raise ServiceError(f"`{describe_command(command)}` failed ({said}); the service file is "
                               f"{plan.file}: fix the cause and run the command again.")
        if settle and index == settle.after:
            deadline = time.monotonic() + SETTLE_SECONDS
            while run(settle.gone).returncode == 0 and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)  # the old job is still there; launchd offers nothing to wait on
    if settle:
        done = run(settle.loaded)
        if done.returncode != 0:
            raise ServiceError(f"The agent is not loaded although `{describe_command(plan.commands[-1])}` "
                               f"succeeded (`{describe_command(settle.loaded)}`: {_said(done)}); check the file "
                               f"with `plutil -lint {plan.file}` and run `tracker service install` again.")
    if plan.content is None:
        plan.file.unlink(missing_ok=True)


def _said(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join((done.stderr or done.stdout or "").split())[:300] or f"exit status {done.returncode}"


def _write_atomically(path: Path, text: str) -> None:
    """Write `path` whole or not at all; its directory (~/.config/systemd/user, ~/Library/LaunchAgents) is
    the user's and keeps its permissions. The file holds no secret, but nobody else need write it."""
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o644)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):  # nothing half-written stays behind
            temporary.unlink(missing_ok=True)
        # Named as the user knows it (not the temporary file), and fixed where it is: the service manager reads
        # only this directory, so no setting of tracker's (TRACKER_HOME) can move it.
        reason = (error.strerror or str(error)).lower()
        in_the_way = next((folder for folder in (path.parent, *path.parent.parents) if folder.is_file()), None)
        fix = (f"{in_the_way} is a file where a directory must be: move it away" if in_the_way is not None
               else f"make {path.parent} writable")
        raise ServiceError(f"Cannot write the service file {path}: {reason}; {fix}, then run"
                           " `tracker service install` again.") from None


def settings_only_in_shell(manager: Manager, environ: Mapping[str, str] | None = None,
                           run: Run = run_command) -> list[str]:
    """The TRACKER_INFLUX_ variables set here that the service would not see (the service manager's
    environment lacks them or holds another value)."""
    environ = os.environ if environ is None else environ
    here = {name: environ[name] for name in SECRET_VARIABLES if environ.get(name)}
    if not here:
        return []
    if manager == STARTUP_FOLDER:
        seen: dict[str, str] = {}  # what Explorer hands the Startup folder's programs is not looked up
    elif manager == LAUNCHD:
        seen = {name: run(["launchctl", "getenv", name]).stdout.rstrip("\n") for name in here}
    else:
        listed = run(_systemctl("show-environment"))
        seen = dict(line.partition("=")[::2] for line in listed.stdout.splitlines()) if listed.returncode == 0 else {}
    return [name for name, value in here.items() if seen.get(name) != value]


# -- status --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceState:
    manager: Manager
    file: Path
    installed: bool
    running: bool
    pid: int | None
    detail: str  # what the service manager says, in a few words
    log_file: Path

    @property
    def last_log_line(self) -> str | None:
        """The last line of the service's log: when it is not running, usually why."""
        return last_line(self.log_file)


def last_line(path: Path, tail: int = 4096) -> str | None:
    """The last non-empty line of a file (read from its last `tail` bytes); None when there is none."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - tail))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    return next((line.strip() for line in reversed(lines) if line.strip()), None)


def read_state(manager: Manager, run: Run = run_command) -> ServiceState:
    """Whether the service is installed, and whether the service manager has it running."""
    file = service_file(manager)
    log = log_file()
    if not file.exists():
        return ServiceState(manager, file, False, False, None, "not installed", log)
    if manager == STARTUP_FOLDER:
        from tracker.recording.runlock import is_running

        pid = is_running()  # no service manager to ask: the run lock says whether a run records this directory
        if pid is None:
            return ServiceState(manager, file, True, False, None, "no tracker run since the last login", log)
        return ServiceState(manager, file, True, True, pid or None, "tracker run holds the data directory", log)
    if manager == LAUNCHD:
        done = run(["launchctl", "print", f"{_gui_domain()}/{LABEL}"])
        if done.returncode != 0:
            return ServiceState(manager, file, True, False, None, "not loaded", log)
        facts = _launchctl_facts(done.stdout)
        pid = int(facts["pid"]) if facts.get("pid", "").isdigit() else None
        state = facts.get("state", "unknown")
        return ServiceState(manager, file, True, state == "running" and pid is not None, pid, state, log)
    done = run(_systemctl("show", UNIT_NAME, "--property=ActiveState,SubState,MainPID,UnitFileState"))
    if done.returncode != 0:
        said = " ".join((done.stderr or "").split())[:200] or "no answer from systemctl --user"
        return ServiceState(manager, file, True, False, None, said, log)
    facts = dict(line.partition("=")[::2] for line in done.stdout.splitlines())
    pid = int(facts["MainPID"]) if facts.get("MainPID", "0").isdigit() and facts.get("MainPID") != "0" else None
    words = [facts.get("ActiveState", "unknown"), facts.get("SubState", ""), facts.get("UnitFileState", "")]
    detail = ", ".join(word for word in words if word)
    return ServiceState(manager, file, True, facts.get("ActiveState") == "active", pid, detail, log)


def _launchctl_facts(printed: str) -> dict[str, str]:
    """`state = running` and `pid = 123` from `launchctl print` (the service's own lines, not nested ones)."""
    facts: dict[str, str] = {}
    for line in printed.splitlines():
        name, equals, value = line.strip().partition(" = ")
        if equals and name in ("state", "pid") and name not in facts:
            facts[name] = value.strip()
    return facts
