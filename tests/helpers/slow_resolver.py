"""A resolver that is slow, hangs for ever, or fails, on names a test chooses; every other name goes to the real
one. It is real for whatever calls socket.getaddrinfo: installed in this process (`SlowResolver.install`, undone by
`restore`), or at the start of a `tracker` child process through a sitecustomize.py (`child_environment`), with
nothing of the machine's configuration changed. A slow name answers with the loopback address once its time is
up, so tests talk to loopback only.

This file is copied beside that sitecustomize.py as it is: it imports the standard library only.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

MODULE = "slow_resolver_for_tests"  # its name in the child process


class SlowResolver:
    def __init__(self, slow: dict[str, float] | None = None, failing: set[str] | frozenset[str] = frozenset(),
                 log: Path | None = None) -> None:
        self.slow = slow or {}  # name: seconds before it answers 127.0.0.1 (math.inf: never)
        self.failing = failing  # names that do not resolve (gaierror, as the C library says it)
        self.log = log  # a line per lookup of a slow name as it starts, for another process to wait on
        self.calls: list[tuple[str, str]] = []  # every lookup: the name, and the thread that asked
        self.started: list[str] = []  # lookups of slow names started, and those finished
        self.finished: list[str] = []
        self.released = threading.Event()  # set: every wait ends at once
        self._real = socket.getaddrinfo

    def install(self) -> SlowResolver:
        socket.getaddrinfo = self.getaddrinfo
        return self

    def restore(self) -> None:
        socket.getaddrinfo = self._real
        self.released.set()

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **options: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.calls.append((name, threading.current_thread().name))
        if name in self.failing:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if name not in self.slow:
            return self._real(host, port, *args, **options)
        self.started.append(name)
        if self.log is not None:
            with open(self.log, "a") as log:
                log.write(f"{name}\n")
        seconds = self.slow[name]
        self.released.wait(None if math.isinf(seconds) else seconds)
        self.finished.append(name)
        return self._real("127.0.0.1", port, *args, **options)


def child_environment(directory: Path, slow: dict[str, float], log: Path,
                      server_wait: float | None = None) -> dict[str, str]:
    """The environment for a child process whose resolver is slow on `slow` (see SlowResolver), logging to `log`;
    `server_wait`: ActivityWatch's `--server` bound (tracker.interchange.importing.SERVER_WAIT) in place of 120 s."""
    shutil.copy(__file__, directory / f"{MODULE}.py")
    (directory / "sitecustomize.py").write_text(f"import {MODULE}\n{MODULE}.install_from_environment()\n")
    settings = {"slow": slow, "log": str(log), "server_wait": server_wait}
    return {**os.environ, "PYTHONPATH": str(directory), "SLOW_RESOLVER": json.dumps(settings)}


def install_from_environment() -> None:
    """In the child, at startup (sitecustomize.py): what `child_environment` said."""
    settings = json.loads(os.environ.get("SLOW_RESOLVER", "null"))
    if not settings:
        return
    SlowResolver(settings["slow"], log=Path(settings["log"])).install()
    if settings["server_wait"] is not None:
        from tracker.interchange import importing

        importing.SERVER_WAIT = settings["server_wait"]
