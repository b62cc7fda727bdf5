"""What a running `tracker run` last said of itself (status.json), and how its process looks from outside.

Every few seconds the runner writes a StatusSnapshot to data_dir()/status.json, which `tracker status` shows
with CPU and memory read from the operating system, like gops does for Go programs. Whether it runs at all is
tracker.recording.runlock's.

On macOS the snapshot carries the permissions the run was granted. macOS grants them to whatever it holds
responsible for the process (a terminal app, or for the service the program itself), so a run the service started
also keeps its own in service-permissions.json beside it: a later run from a terminal does not overwrite them, and
`tracker service status` can say what the service itself may do.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tracker.macos_privacy import SettingsEntry, service_entry
from tracker.paths import data_dir, write_private
from tracker.portable import WINDOWS, windows_process_figures
from tracker.recording.runlock import is_running
from tracker.recording.sources import Permission
from tracker.redact import base_url

EXIT_NOT_RUNNING = 3
# The entry System Settings lists this process under: it cannot change while the process runs.
_this_process_entry = functools.cache(service_entry)


# --- status.json --------------------------------------------------------------------------------------

def status_file() -> Path:
    return data_dir() / "status.json"


def service_permissions_file() -> Path:
    return data_dir() / "service-permissions.json"


@dataclass(frozen=True)
class StatusSnapshot:
    """What the runner says about itself; times are timezone-aware."""

    pid: int
    started_at: datetime
    samples_taken: int
    activity: str | None = None
    app: str | None = None
    category: str | None = None
    score: float | None = None
    since: datetime | None = None  # when the current activity started
    waiting: int = 0  # samples in the outbox not yet sent
    # Samples this run lost, and the seconds they stood for, because the local database could not be written.
    lost: int = 0
    lost_seconds: float = 0.0
    last_send: datetime | None = None
    last_error: str | None = None
    source: str | None = None  # e.g. "x11", "macos", "demo"
    influx_url: str | None = None  # never with credentials: write_status removes them
    stopped_at: datetime | None = None  # set by the last write of a clean stop
    # The runner's own figures, as in its `tracker` points (tracker.recording.vitals.vitals_document).
    vitals: dict[str, object] | None = None
    # What macOS allowed this run (empty elsewhere), and whether the service started it (see the module's doc).
    permissions: tuple[Permission, ...] = ()
    started_by_service: bool = False
    # Filled in by write_status: with them `tracker status` measures CPU over the last few seconds.
    written_at: datetime | None = None
    cpu_seconds: float | None = None


_TIMES = ("started_at", "since", "last_send", "stopped_at", "written_at")


def write_status(snapshot: StatusSnapshot) -> None:
    """Write status.json atomically, stamped with now and this process's CPU time so far; for a run the service
    started, with permissions, also service-permissions.json, naming the entry System Settings lists it under."""
    cpu = os.times()
    stamped = replace(snapshot, written_at=datetime.now(timezone.utc), cpu_seconds=cpu.user + cpu.system,
                      influx_url=base_url(snapshot.influx_url) or None)
    # Rewritten every few seconds and only informational: no fsync (a torn file reads as no status). On one line:
    # json's C encoder then writes it, at a fifth of the CPU of its indenting one.
    write_private(status_file(), json.dumps(snapshot_document(stamped)) + "\n", durable=False)
    if stamped.started_by_service and stamped.permissions:
        record = ServicePermissions(stamped.pid, stamped.written_at or datetime.now(timezone.utc),
                                    _this_process_entry(), stamped.permissions)
        write_private(service_permissions_file(), json.dumps(_service_document(record), indent=2) + "\n",
                      durable=False)


def snapshot_document(snapshot: StatusSnapshot) -> dict[str, object]:
    """The snapshot as JSON values (times in ISO 8601): the content of status.json."""
    # Field by field rather than asdict(), which copies the vitals deeply each time for nothing.
    document: dict[str, object] = {}
    for field in fields(snapshot):
        if field.name == "permissions":
            continue  # last, as documents of their own
        value = getattr(snapshot, field.name)
        document[field.name] = value.isoformat() if isinstance(value, datetime) else value
    document["permissions"] = [permission_document(permission) for permission in snapshot.permissions]
    return document


def permission_document(permission: Permission) -> dict[str, object]:
    return {"kind": permission.kind, "target": permission.target, "state": permission.state,
            "checked_at": permission.checked_at.isoformat() if permission.checked_at else None,
            "error": permission.error}


def _permission_of(document: dict[str, Any]) -> Permission:
    checked = document.get("checked_at")
    return Permission(str(document["kind"]), document.get("target"), str(document["state"]),
                      datetime.fromisoformat(checked) if checked else None, document.get("error"))


def read_status() -> StatusSnapshot | None:
    """The last status written, or None when there is none (or it cannot be read)."""
    try:
        document = json.loads(status_file().read_text(encoding="utf-8"))
        known = {field.name for field in fields(StatusSnapshot)}
        values = {name: value for name, value in document.items() if name in known}
        for name in _TIMES:
            if values.get(name):
                values[name] = datetime.fromisoformat(values[name])
        values["permissions"] = tuple(_permission_of(each) for each in values.get("permissions") or ())
        return StatusSnapshot(**values)
    except (OSError, ValueError, TypeError, KeyError):
        return None


# --- service-permissions.json ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServicePermissions:
    """What macOS allowed the last run the service started: the entry System Settings lists it under, and each
    permission as that run last checked it."""

    pid: int
    written_at: datetime
    entry: SettingsEntry
    permissions: tuple[Permission, ...]


def _service_document(record: ServicePermissions) -> dict[str, object]:
    return {"pid": record.pid, "written_at": record.written_at.isoformat(), "entry": asdict(record.entry),
            "permissions": [permission_document(permission) for permission in record.permissions]}


def read_service_permissions() -> ServicePermissions | None:
    """What the service's run last wrote of its permissions; None when no run of the service has (or unreadable)."""
    try:
        document = json.loads(service_permissions_file().read_text(encoding="utf-8"))
        return ServicePermissions(int(document["pid"]), datetime.fromisoformat(document["written_at"]),
                                  SettingsEntry(**document["entry"]),
                                  tuple(_permission_of(each) for each in document["permissions"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


# --- the operating system's view of the process --------------------------------------------------------


@dataclass(frozen=True)
class ProcessVitals:
    cpu_percent: float | None  # of one core
    memory_bytes: int | None  # resident set size
    uptime_seconds: float | None


def process_vitals(pid: int, snapshot: StatusSnapshot | None = None) -> ProcessVitals:
    """CPU, memory and uptime of `pid`: /proc on Linux, the Win32 API on Windows, ps elsewhere; None for what
    cannot be read."""
    if WINDOWS:
        return _windows_vitals(pid, snapshot)
    if Path(f"/proc/{pid}/stat").exists():
        return _proc_vitals(pid, snapshot)
    return _ps_vitals(pid, snapshot)


def _windows_vitals(pid: int, snapshot: StatusSnapshot | None) -> ProcessVitals:
    figures = windows_process_figures(pid)
    if figures is None:
        return ProcessVitals(None, None, None)
    cpu_seconds, memory, started = figures
    uptime = max(time.time() - started, 0.0)
    return ProcessVitals(_recent_cpu_percent(pid, cpu_seconds, snapshot, uptime), memory or None, uptime)


def _proc_vitals(pid: int, snapshot: StatusSnapshot | None) -> ProcessVitals:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        boot_time = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                         if line.startswith("btime "))
    except (OSError, StopIteration):
        return ProcessVitals(None, None, None)
    # Fields after the command name, which is in parentheses and may itself contain spaces.
    after_name = stat[stat.rindex(")") + 2:].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_seconds = (int(after_name[11]) + int(after_name[12])) / ticks  # utime + stime
    uptime = time.time() - (boot_time + int(after_name[19]) / ticks)  # starttime
    memory = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return ProcessVitals(_recent_cpu_percent(pid, cpu_seconds, snapshot, uptime), memory, max(uptime, 0.0))


def _recent_cpu_percent(pid: int, cpu_seconds: float, snapshot: StatusSnapshot | None, uptime: float) -> float:
    """CPU since the runner last wrote its status (a few seconds), else the average since it started.

    A 1 Hz runner works in short bursts: a window shorter than a second would say 0% or 50% by chance.
    """
    if snapshot is not None and snapshot.pid == pid and snapshot.cpu_seconds is not None and snapshot.written_at:
        window = (datetime.now(timezone.utc) - snapshot.written_at).total_seconds()
        if window >= 1.0 and cpu_seconds >= snapshot.cpu_seconds:
            return 100.0 * (cpu_seconds - snapshot.cpu_seconds) / window
    return 100.0 * cpu_seconds / uptime if uptime > 0 else 0.0


def _ps_vitals(pid: int, snapshot: StatusSnapshot | None) -> ProcessVitals:
    import subprocess  # here: a run never needs it, and its modules cost memory all day

    try:
        output = subprocess.run(["ps", "-o", "%cpu=,rss=", "-p", str(pid)], capture_output=True, text=True,
                                timeout=5, check=True).stdout.split()
        cpu, rss_kib = float(output[0]), int(output[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return ProcessVitals(None, None, None)
    uptime = None
    if snapshot is not None and snapshot.pid == pid:
        uptime = (datetime.now(timezone.utc) - snapshot.started_at).total_seconds()
    return ProcessVitals(cpu, rss_kib * 1024, uptime)


# --- `tracker status` -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunnerState:
    """Whether `tracker run` runs for a data directory, what it last wrote, and how the process is doing."""

    directory: Path
    pid: int | None  # None when not running; 0 when running but its pid is not written yet
    snapshot: StatusSnapshot | None  # the last status written, by this runner or an earlier one
    vitals: ProcessVitals | None  # None when not running or its pid is unknown

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def current(self) -> StatusSnapshot | None:
        """The snapshot if the running process wrote it: an earlier runner's says nothing about this one."""
        snapshot = self.snapshot
        return snapshot if snapshot is not None and self.pid and snapshot.pid == self.pid else None


def read_runner_state() -> RunnerState:
    """What `tracker status` shows, for this data directory."""
    pid = is_running()
    state = RunnerState(data_dir(), pid, read_status(), vitals=None)
    # The CPU over the last few seconds needs the running process's own last snapshot.
    return replace(state, vitals=process_vitals(pid, state.current)) if pid else state
