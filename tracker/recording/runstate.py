"""The tracker's own vitals: one runner per data directory (a lock), and what it last said (status.json).

`tracker run` holds an exclusive flock on data_dir()/run.lock for as long as it runs, so whether it runs is
known for certain, even after a crash (the kernel drops the lock with the process). Every few seconds it
writes a StatusSnapshot to data_dir()/status.json, which `tracker status` shows with CPU and memory read
from the operating system, like gops does for Go programs.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tracker import PlainError
from tracker.paths import data_dir, private_dir, write_private
from tracker.sending.sendlock import lock_exclusively

EXIT_NOT_RUNNING = 3
# A status probe holds the lock for microseconds: a runner starting at that moment waits this long for it.
LOCK_PATIENCE = 0.25


def lock_file() -> Path:
    return data_dir() / "run.lock"


def status_file() -> Path:
    return data_dir() / "status.json"


class AlreadyRunning(PlainError):
    def __init__(self, pid: int, directory: Path) -> None:
        super().__init__(f"tracker run is already running for {directory} (pid {pid})")
        self.pid = pid
        self.directory = directory


class RunLock:
    """The exclusive lock of a running `tracker run`; released on `release()` or when the process ends."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        if self._descriptor is None:
            return
        # The file stays: deleting it could let two runners lock two different files of the same name.
        fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        os.close(self._descriptor)
        self._descriptor = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def acquire_run_lock() -> RunLock:
    """Lock this data directory for this process; AlreadyRunning when another process has it."""
    path = private_dir(data_dir()) / lock_file().name
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if not lock_exclusively(descriptor, LOCK_PATIENCE):
        pid = _read_pid(descriptor)
        os.close(descriptor)
        raise AlreadyRunning(pid, path.parent)
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    except OSError as error:  # a full disk: say which file, as the open would have
        os.close(descriptor)
        raise OSError(error.errno, error.strerror, str(path)) from None
    return RunLock(path, descriptor)


def is_running() -> int | None:
    """The pid of the `tracker run` holding this data directory's lock; None when none does.
    0 when one does but has not written its pid yet."""
    try:
        descriptor = os.open(lock_file(), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(descriptor)
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)


def _read_pid(descriptor: int) -> int:
    # The runner writes its pid just after taking the lock: give it a moment.
    deadline = time.monotonic() + 0.5
    while True:
        text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() >= deadline:
            return 0
        time.sleep(0.02)


# --- status.json --------------------------------------------------------------------------------------


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
    # Filled in by write_status: with them `tracker status` measures CPU over the last few seconds.
    written_at: datetime | None = None
    cpu_seconds: float | None = None


_TIMES = ("started_at", "since", "last_send", "stopped_at", "written_at")


def write_status(snapshot: StatusSnapshot) -> None:
    """Write status.json atomically, stamped with now and this process's CPU time so far."""
    cpu = os.times()
    stamped = replace(snapshot, written_at=datetime.now(timezone.utc), cpu_seconds=cpu.user + cpu.system,
                      influx_url=_without_credentials(snapshot.influx_url))
    # Rewritten every few seconds and only informational: no fsync (a torn file reads as no status).
    write_private(status_file(), json.dumps(snapshot_document(stamped), indent=2) + "\n", durable=False)


def snapshot_document(snapshot: StatusSnapshot) -> dict[str, object]:
    """The snapshot as JSON values (times in ISO 8601): the content of status.json."""
    return {name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in asdict(snapshot).items()}


def read_status() -> StatusSnapshot | None:
    """The last status written, or None when there is none (or it cannot be read)."""
    try:
        document = json.loads(status_file().read_text(encoding="utf-8"))
        known = {field.name for field in fields(StatusSnapshot)}
        values = {name: value for name, value in document.items() if name in known}
        for name in _TIMES:
            if values.get(name):
                values[name] = datetime.fromisoformat(values[name])
        return StatusSnapshot(**values)
    except (OSError, ValueError, TypeError):
        return None


def _without_credentials(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


# --- the operating system's view of the process --------------------------------------------------------


@dataclass(frozen=True)
class Vitals:
    cpu_percent: float | None  # of one core
    memory_bytes: int | None  # resident set size
    uptime_seconds: float | None


def process_vitals(pid: int, snapshot: StatusSnapshot | None = None) -> Vitals:
    """CPU, memory and uptime of `pid`: /proc on Linux, ps elsewhere; None for what cannot be read."""
    if Path(f"/proc/{pid}/stat").exists():
        return _proc_vitals(pid, snapshot)
    return _ps_vitals(pid, snapshot)


def _proc_vitals(pid: int, snapshot: StatusSnapshot | None) -> Vitals:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        boot_time = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                         if line.startswith("btime "))
    except (OSError, StopIteration):
        return Vitals(None, None, None)
    # Fields after the command name, which is in parentheses and may itself contain spaces.
    after_name = stat[stat.rindex(")") + 2:].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_seconds = (int(after_name[11]) + int(after_name[12])) / ticks  # utime + stime
    uptime = time.time() - (boot_time + int(after_name[19]) / ticks)  # starttime
    memory = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return Vitals(_recent_cpu_percent(pid, cpu_seconds, snapshot, uptime), memory, max(uptime, 0.0))


def _recent_cpu_percent(pid: int, cpu_seconds: float, snapshot: StatusSnapshot | None, uptime: float) -> float:
    """CPU since the runner last wrote its status (a few seconds), else the average since it started.

    A 1 Hz runner works in short bursts: a window shorter than a second would say 0% or 50% by chance.
    """
    if snapshot is not None and snapshot.pid == pid and snapshot.cpu_seconds is not None and snapshot.written_at:
        window = (datetime.now(timezone.utc) - snapshot.written_at).total_seconds()
        if window >= 1.0 and cpu_seconds >= snapshot.cpu_seconds:
            return 100.0 * (cpu_seconds - snapshot.cpu_seconds) / window
    return 100.0 * cpu_seconds / uptime if uptime > 0 else 0.0


def _ps_vitals(pid: int, snapshot: StatusSnapshot | None) -> Vitals:
    import subprocess  # here: a run never needs it, and its modules cost memory all day

    try:
        output = subprocess.run(["ps", "-o", "%cpu=,rss=", "-p", str(pid)], capture_output=True, text=True,
                                timeout=5, check=True).stdout.split()
        cpu, rss_kib = float(output[0]), int(output[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return Vitals(None, None, None)
    uptime = None
    if snapshot is not None and snapshot.pid == pid:
        uptime = (datetime.now(timezone.utc) - snapshot.started_at).total_seconds()
    return Vitals(cpu, rss_kib * 1024, uptime)


# --- `tracker status` -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunnerState:
    """Whether `tracker run` runs for a data directory, what it last wrote, and how the process is doing."""

    directory: Path
    pid: int | None  # None when not running; 0 when running but its pid is not written yet
    snapshot: StatusSnapshot | None  # the last status written, by this runner or an earlier one
    vitals: Vitals | None  # None when not running or its pid is unknown

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
