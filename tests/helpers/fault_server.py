"""A loopback InfluxDB impostor that answers writes as scripted and records what it accepted;
and the records the sending tests write, and read back from a real InfluxDB 1.x.

Persistent rules model a real server: a wrong token gets 401, a batch holding a bad line gets 400 (only
when that line is in the body, so bisection has to find it), a batch of more than `max_lines` gets 413;
`refuse_all` answers every write that way (a proxy that refuses everything, whatever the body).
Scripted steps (`then(...)`) answer the next writes in order, before the rules: 500, 429 with
Retry-After, slow answers. `stop()` closes the port, so the client sees connection refused.
`catch_all` answers every request, /ping too, with one step: a Wi-Fi login page, a proxy's error page.
A step can echo what the client sent ({authorization}, {path} in its body), and stream a huge or endless
body (`stream`, counted in `streamed` up to when the client hangs up), fast or a byte at a time (`trickle`);
`drip` sends the whole answer, headers first, a byte at a time (`hung_up` is set when the client gives up).
"""

from __future__ import annotations

import base64
import gzip
import json
import ssl
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from helpers.servers import InfluxDB1, free_port, require_program
from tracker.model import Record


@dataclass(frozen=True)
class Step:
    status: int = 204
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds before answering; beyond the client's timeout it gives up, and nothing is stored.
    delay: float = 0.0
    content_type: str = "application/json"
    raw: bytes = b""  # sent after `body` as it is: e.g. gzip, with a Content-Encoding header
    # Bytes sent after `body`, with no Content-Length, until the client hangs up; a byte every `trickle` seconds.
    stream: int = 0
    trickle: float = 0.0
    # The whole answer, status line and headers first, a byte every `drip` seconds: a per-read timeout never trips.
    drip: float = 0.0


@dataclass(frozen=True)
class Request:
    time: float  # time.monotonic() when it arrived
    path: str
    lines: list[str]
    status: int
    headers: dict[str, str]


class FaultServer:
    def __init__(self, version: str = "1.8.10", token: str | None = None, bad_line_marker: str | None = None,
                 max_lines: int | None = None, latency: float = 0.0,
                 tls: tuple[Path, Path] | None = None, refuse_all: Step | None = None) -> None:
        self.port = free_port()
        self.tls = tls  # (certificate, key): answer over HTTPS
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.version = version
        self.token = token
        self.bad_line_marker = bad_line_marker
        self.max_lines = max_lines
        self.refuse_all = refuse_all
        self.latency = latency  # seconds every write takes, accepted or not
        self.accepted: list[str] = []
        self.requests: list[Request] = []
        self.catch_all: Step | None = None
        self.streamed = 0  # bytes of `stream` bodies the client took before it hung up
        self.hung_up = threading.Event()  # a client stopped reading a streamed body
        self.stopped = threading.Event()
        self._script: deque[Step] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def then(self, *steps: Step) -> FaultServer:
        with self._lock:
            self._script.extend(steps)
        return self

    def start(self) -> FaultServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        # A short poll: stop() waits for the loop to notice, half a second a test at the default.
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()  # ends any answer still dripping
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def writes(self) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.path != "/ping"]

    def _answer(self, path: str, headers: dict[str, str], lines: list[str]) -> Step:
        """What a write gets: a wrong token first, then the script, then the rules."""
        if self.catch_all is not None:
            return self.catch_all
        authorization = headers.get("Authorization", "")
        if self.token is not None and _credentials(authorization) != self.token:
            return Step(401, json.dumps({"error": "authorization failed"}))
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self.refuse_all is not None:
            return self.refuse_all
        bad = [line for line in lines if self.bad_line_marker and self.bad_line_marker in line]
        if bad:
            return Step(400, json.dumps({"error": f"unable to parse '{bad[0][:60]}': bad field value"}))
        if self.max_lines is not None and len(lines) > self.max_lines:
            return Step(413, json.dumps({"error": "Request Entity Too Large"}))
        return Step(204)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if server.catch_all is not None:
                    self._record(time.monotonic(), [], server.catch_all.status)
                    self._reply(server.catch_all)
                elif self.path.startswith(("/ping", "/health")):
                    self._record(time.monotonic(), [], 204)
                    self.send_response(204)
                    self.send_header("X-Influxdb-Version", server.version)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._reply(Step(404, "404 page not found"))

            def do_POST(self) -> None:
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                lines = body.decode().split("\n") if body else []
                step = server._answer(self.path, dict(self.headers), lines)
                time.sleep(server.latency)
                if step.delay:
                    time.sleep(step.delay)
                    self._record(arrived, lines, 0)  # the client has given up by now: nothing is stored
                    self.close_connection = True
                    return
                if step.status == 204:
                    with server._lock:
                        server.accepted.extend(lines)
                self._record(arrived, lines, step.status)
                self._reply(step)

            def _record(self, arrived: float, lines: list[str], status: int) -> None:
                with server._lock:
                    server.requests.append(Request(arrived, self.path, lines, status,
                                                   dict(self.headers)))

            def _reply(self, step: Step) -> None:
                echoed = step.body.replace("{authorization}", self.headers.get("Authorization", ""))
                data = echoed.replace("{path}", self.path).encode() + step.raw
                if step.drip:
                    self._drip(step, data)
                    return
                self.send_response(step.status)
                for name, value in step.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", step.content_type)
                if not step.stream:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if step.stream:
                    self._stream(step)

            def _drip(self, step: Step, data: bytes) -> None:
                self.close_connection = True
                head = "".join(f"{name}: {value}\r\n" for name, value in
                               {**step.headers, "Content-Type": step.content_type,
                                "Content-Length": str(len(data))}.items())
                answer = f"HTTP/1.1 {step.status} Dripping\r\n{head}\r\n".encode() + data
                try:
                    for at in range(len(answer)):
                        self.wfile.write(answer[at:at + 1])
                        self.wfile.flush()
                        if server.stopped.wait(step.drip):
                            return
                except OSError:  # the client hung up
                    server.hung_up.set()

            def _stream(self, step: Step) -> None:
                self.close_connection = True
                chunk = b"x" if step.trickle else b"<p>" + b"x" * 65533
                try:
                    while server.streamed < step.stream:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        with server._lock:
                            server.streamed += len(chunk)
                        time.sleep(step.trickle)
                except OSError:  # the client hung up
                    server.hung_up.set()

        return Handler


def catching_all(step: Step) -> Iterator[FaultServer]:
    """A started server answering every request with `step`, stopped afterwards: the body of a fixture."""
    server = FaultServer()
    server.catch_all = step
    server.start()
    yield server
    server.stop()


def _credentials(authorization: str) -> str:
    """What the client presented: "user:password" from Basic, the token from "Token ..."."""
    scheme, _, value = authorization.partition(" ")
    if scheme == "Basic":
        return base64.b64decode(value).decode()
    return value


def make_records(count: int, start_ms: int = 1_700_000_000_000, step_ms: int = 1000,
                 host: str = "test-host", first: int = 0) -> list[Record]:
    """`count` believable records, one every `step_ms`, all different; numbered from `first`, so record
    number N is the same whichever call makes it."""
    apps = [("Firefox", "github.com", "Work", 1.0), ("Terminal", "Terminal", "Work", 1.0),
            ("Slack", "Slack", "Chat", 0.0), ("Steam", "Steam", "Games", -1.0)]
    records = []
    for number in range(first, first + count):
        app, activity, category, score = apps[number % len(apps)]
        url = f"https://{activity}/page/{number}" if app == "Firefox" else None
        records.append(Record(time_ms=start_ms + number * step_ms, duration=step_ms / 1000, host=host, app=app,
                              activity=activity, category=category, score=score,
                              title=f"{app} window {number}", url=url))
    return records


def stored_records(server: InfluxDB1, database: str, where: str = "") -> list[Record]:
    """The points of the activity measurement (all, or `where` an InfluxQL condition holds), read back
    through InfluxQL, as Records in time order."""
    condition = f" WHERE {where}" if where else ""
    rows = server.rows(f"SELECT * FROM activity{condition} ORDER BY time", database)
    return [Record(time_ms=row["time"], duration=row["duration"], host=row["host"] or "", app=row["app"] or "",
                   activity=row["activity"] or "", category=row["category"] or "", score=row["score"],
                   state=row["state"] or "", title=row.get("title"), url=row.get("url"))
            for row in rows]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with openssl: (certificate, key)."""
    openssl = require_program("openssl", "openssl")
    certificate, key = directory / "server.crt", directory / "server.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(certificate)], check=True, capture_output=True)
    return certificate, key
