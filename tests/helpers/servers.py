"""Real servers for the tests: each started on 127.0.0.1, on a free port, in a temporary directory.

Used through the fixtures in conftest.py. When CI=true a missing server program fails the test run;
elsewhere it skips, with the Debian package to install named.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def require_program(program: str, package: str) -> str:
    path = shutil.which(program)
    if path:
        return path
    message = f"{program} not found: install the Debian package {package} (make test does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_module(module: str, package: str) -> None:
    """Skip (fail in CI) when a Python package a test server needs is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} not found: install {package} (the test extra does: pip install -e '.[test]')"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    """What `action()` returns, or the exception it raises, and the seconds it took."""
    started = time.monotonic()
    try:
        return action(), time.monotonic() - started
    except Exception as error:
        return error, time.monotonic() - started


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except Exception:  # the thing being waited for is not there yet
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def http(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Server:
    """A child process with a data directory, stopped (and its port freed) on `stop()`."""

    process: subprocess.Popen[bytes] | None = None

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "server.log"

    def _spawn(self, argv: list[str]) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_ready(self) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            return self.ping()

        try:
            wait_until(ready, 30, f"{type(self).__name__} on {self.url}")
        except RuntimeError as error:
            raise AssertionError(str(error)) from None

    def ping(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class InfluxDB1(Server):
    """InfluxDB 1.x (Debian's influxdb): the v1 API, /write and /query with InfluxQL."""

    def __init__(self, directory: Path, auth: bool = False) -> None:
        super().__init__(directory)
        self.program = require_program("influxd", "influxdb")
        self.auth = auth
        self.config = directory / "influxdb.conf"
        rpc_port = free_port()
        self.config.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{directory}/meta"
  logging-enabled = false
[data]
  dir = "{directory}/data"
  wal-dir = "{directory}/wal"
  query-log-enabled = false
  max-values-per-tag = 0
[coordinator]
  log-queries-after = "0s"
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = {str(auth).lower()}
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""
        )

    def start(self) -> InfluxDB1:
        self._spawn([self.program, "-config", str(self.config)])
        self._wait_ready()
        return self

    def ping(self) -> bool:
        return http("GET", self.url + "/ping", timeout=2)[0] == 204

    def query(self, q: str, database: str | None = None, auth: tuple[str, str] | None = None,
              method: str = "GET") -> dict[str, Any]:
        params = {"q": q, "epoch": "ms"}
        if database:
            params["db"] = database
        if auth:
            params["u"], params["p"] = auth
        encoded = urllib.parse.urlencode(params)
        if method == "POST":
            status, body = http("POST", f"{self.url}/query", encoded.encode(),
                                {"Content-Type": "application/x-www-form-urlencoded"})
        else:
            status, body = http("GET", f"{self.url}/query?{encoded}")
        result = json.loads(body)
        if status != 200 or "error" in result:
            raise AssertionError(f"InfluxQL {q!r} failed ({status}): {body[:500]!r}")
        for statement in result.get("results", []):
            if "error" in statement:
                raise AssertionError(f"InfluxQL {q!r} failed: {statement['error']}")
        return result

    def create_database(self, name: str, auth: tuple[str, str] | None = None) -> None:
        self.query(f'CREATE DATABASE "{name}"', auth=auth, method="POST")

    def rows(self, q: str, database: str) -> list[dict[str, Any]]:
        """The rows of the first series of the first statement, as dicts keyed by column."""
        result = self.query(q, database)
        series = result["results"][0].get("series", [])
        return [dict(zip(s["columns"], values, strict=True)) | s.get("tags", {})
                for s in series for values in s["values"]]


class VictoriaMetrics(Server):
    """VictoriaMetrics (Debian's victoria-metrics): takes InfluxDB's /api/v2/write, reads back by export."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.program = require_program("victoria-metrics", "victoria-metrics")

    def start(self) -> VictoriaMetrics:
        self._spawn([self.program, f"-storageDataPath={self.directory}/data",
                     f"-httpListenAddr=127.0.0.1:{self.port}", "-retentionPeriod=100y",
                     "-loggerLevel=ERROR", "-search.disableCache"])
        self._wait_ready()
        return self

    def ping(self) -> bool:
        return http("GET", self.url + "/health", timeout=2)[0] == 200

    def export(self, match: str = '{__name__=~"activity_.*"}') -> list[dict[str, Any]]:
        """Every series matching `match` as VictoriaMetrics' JSON lines (metric, values, timestamps)."""
        http("GET", self.url + "/internal/force_flush")
        status, body = http("GET", f"{self.url}/api/v1/export?" + urllib.parse.urlencode(
            {"match[]": match, "start": "0"}))
        assert status == 200, body
        return [json.loads(line) for line in body.splitlines() if line.strip()]


def stop_processes(processes: list[subprocess.Popen[Any]], grace: float = 5) -> None:
    """Stop each process started (by its PID), the last first: SIGTERM, then SIGKILL after `grace` seconds; empty
    the list."""
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    processes.clear()


class Desktop:
    """A real X11 desktop: Xvfb with openbox, and xterm windows of any app name and title."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.xvfb = require_program("Xvfb", "xvfb")
        self.openbox = require_program("openbox", "openbox")
        self.xdotool = require_program("xdotool", "xdotool")
        self.xterm = require_program("xterm", "xterm")
        self.processes: list[subprocess.Popen[bytes]] = []
        self.display = ""
        self._windows: set[str] = set()  # every window open_window returned: a later one is never one of these

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, DISPLAY=self.display)
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def start(self) -> Desktop:
        read_fd, write_fd = os.pipe()
        xvfb = subprocess.Popen(
            [self.xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        os.close(write_fd)
        self.processes.append(xvfb)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise AssertionError("Xvfb did not start")
        self.display = f":{number}"
        self._spawn([self.openbox, "--sm-disable"])
        wait_until(self._window_manager_running, 15, "openbox")
        return self

    def _window_manager_running(self) -> bool:
        from Xlib import display as xdisplay

        connection = xdisplay.Display(self.display)
        try:
            root = connection.screen().root
            check = root.get_full_property(connection.intern_atom("_NET_SUPPORTING_WM_CHECK"), 0)
            return bool(check and check.value)
        finally:
            connection.close()

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def _run(self, *args: str, check: bool = True) -> str | None:
        done = subprocess.run([self.xdotool, *args], env=self.env, capture_output=True, text=True, timeout=15)
        if done.returncode != 0:
            if check:
                raise AssertionError(f"xdotool {' '.join(args)} failed: {done.stderr}")
            return None
        return done.stdout.strip()

    def open_window(self, app: str, title: str) -> str:
        """An xterm whose WM_CLASS class is `app` and whose title is `title`; returns its window id."""
        process = self._spawn([self.xterm, "-class", app, "-T", title, "-e", "sleep", "3600"])

        def window() -> str | None:
            if process.poll() is not None:
                raise AssertionError("xterm exited")
            # Mapped windows only, and a new one: an earlier test's window of the same class, or one not
            # mapped yet, would never become active, and `windowactivate --sync` would wait for it in vain.
            found = self._run("search", "--onlyvisible", "--class", f"^{app}$", check=False) or ""
            new = [window for window in found.split() if window not in self._windows]
            return new[0] if new else None

        opened = wait_until(window, 20, f"window of {app}")
        self._windows.add(opened)
        return opened

    def activate(self, window: str) -> None:
        self._run("windowactivate", "--sync", window)

    def touch(self) -> None:
        """Input, as a user's mouse gives it: the X server's idle counter starts again from 0."""
        self._run("mousemove_relative", "--", "1", "1")

    def active_window(self) -> str | None:
        return self._run("getactivewindow", check=False)

    def close_window(self, window: str) -> None:
        self._run("windowkill", window, check=False)
        self._windows.discard(window)  # X reuses the ids of a client that went: a new window may get this one

    def stop(self) -> None:
        stop_processes(self.processes)


class Prometheus(Server):
    """Prometheus (Debian's prometheus), scraping one target every second; queried through /api/v1/query."""

    def __init__(self, directory: Path, target: str) -> None:
        super().__init__(directory)
        self.program = require_program("prometheus", "prometheus")
        self.target = target  # HOST:PORT whose /metrics it scrapes
        self.config = directory / "prometheus.yml"
        self.config.write_text(
            f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: tracker
    static_configs:
      - targets: ["{target}"]
"""
        )

    def start(self) -> Prometheus:
        self._spawn([self.program, f"--config.file={self.config}", f"--storage.tsdb.path={self.directory}/data",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"])
        self._wait_ready()
        return self

    def ping(self) -> bool:
        return http("GET", self.url + "/-/ready", timeout=2)[0] == 200

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result of an instant query (at `at`, seconds since the epoch, or now); fails on an error."""
        params = {"query": promql} | ({"time": f"{at:.3f}"} if at is not None else {})
        status, body = http("GET", f"{self.url}/api/v1/query?" + urllib.parse.urlencode(params))
        answer = json.loads(body)
        if status != 200 or answer.get("status") != "success":
            raise AssertionError(f"PromQL {promql!r} failed ({status}): {body[:500]!r}")
        return answer["data"]["result"]

    def value(self, promql: str) -> float:
        """The one number an instant query gives; fails when it gives none."""
        result = self.query(promql)
        assert len(result) == 1, f"{promql!r} gave {result!r}"
        return float(result[0]["value"][1])


class ActivityWatch(Server):
    """aw-server from PyPI in testing mode, with HOME and the XDG directories in its own directory."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        require_module("aw_server", "aw-server (with peewee<4)")
        home = directory / "home"
        self.env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_CACHE_HOME": str(home / "cache"), "XDG_STATE_HOME": str(home / "state")}

    def _spawn(self, argv: list[str]) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            env=dict(os.environ, **self.env))

    def start(self) -> ActivityWatch:
        self._spawn([sys.executable, "-m", "aw_server", "--testing", "--host", "127.0.0.1",
                     "--port", str(self.port)])
        self._wait_ready()
        return self

    def ping(self) -> bool:
        return http("GET", self.url + "/api/0/info", timeout=2)[0] == 200

    def get(self, path: str) -> Any:
        status, body = http("GET", self.url + path, timeout=60)
        assert status == 200, f"GET {path}: {status} {body[:500]!r}"
        return json.loads(body)

    def post(self, path: str, document: Any) -> Any:
        status, body = http("POST", self.url + path, json.dumps(document).encode(),
                            {"Content-Type": "application/json"}, timeout=120)
        assert status == 200, f"POST {path}: {status} {body[:500]!r}"
        return json.loads(body) if body.strip() else None
