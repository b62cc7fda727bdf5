"""`tracker` as a process of its own: `tracker run` in the background, and one-off commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from helpers.servers import wait_until

TRACKER = str(Path(sys.executable).with_name("tracker"))


class RunningTracker:
    """`tracker run` in the background, its output lines collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen([TRACKER, "run", *args], env=env or os.environ.copy(), text=True,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> str | None:
        return next((line for line in self.lines if text in line), None)

    def logged_after(self, start: int, *texts: str) -> str | None:
        """The first output line from line `start` on that holds all `texts`."""
        return next((line for line in self.lines[start:] if all(text in line for text in texts)), None)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str]:
        self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=timeout)
        self._reader.join(5)
        return self.process.returncode, err


def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRACKER, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def configure_influx(tracker_home: Path, url: str, timeout: str = "1s", api: str = "auto") -> None:
    """A config.yaml under `tracker_home` sending to InfluxDB at `url`."""
    config = tracker_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.yaml").write_text(f"influx:\n  url: {url}\n  api: {api}\n  timeout: {timeout}\n")


def stopped_once(run: RunningTracker, ready: Callable[[], object], what: str) -> tuple[int, str, float]:
    """SIGTERM to the run once `ready()` holds (within a minute): its exit code, its standard error, and the seconds
    it took to stop. A run that does not stop within a minute is killed."""
    try:
        wait_until(ready, timeout=60, what=what)
        stopping = time.monotonic()
        code, errors = run.stop(signal.SIGTERM, timeout=60)
        return code, errors, time.monotonic() - stopping
    finally:
        if run.process.poll() is None:
            run.process.kill()
