"""`tracker run --metrics-listen HOST:PORT`: Prometheus metrics at /metrics, loopback only unless allowed.

Loopback alone does not keep a web page out: a page whose name is made to resolve to 127.0.0.1 (DNS rebinding)
can read it from the user's browser. Such a request still carries the page's name in its Host header, so only
a loopback Host is answered, unless --metrics-allow-remote; and only /metrics. Connections are few and short
(a cap and a timeout): each idle one would hold a descriptor, shared with the database and InfluxDB's sockets.

prometheus_client is an optional extra (`tracker[prometheus]`; it takes 65–85 ms to import): it is imported in
`start_metrics` only, so nothing else pays for it, and the address is checked before it is needed.

Labels are category and state only, never a title, URL or app: the number of series stays bounded by the
number of categories, and the endpoint shows no more than the dashboard's categories.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import select
import shlex
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from tracker import PlainError, __version__
from tracker.events import pulse_of
from tracker.model import STATE_ACTIVE
from tracker.sending.sinks import REQUEST_RESULTS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry, Counter, Histogram

    from tracker.recording.recorder import Step

# Into the environment tracker runs in, whatever installed it: `pip install 'tracker[prometheus]'` would fetch
# whatever PyPI calls "tracker".
INSTALL_HINT = f"{shlex.quote(sys.executable)} -m pip install 'prometheus_client>=0.20'"

METRICS_PATH = "/metrics"
# A scraper opens one connection at a time and sends its request at once: a few connections and a few seconds
# are plenty, and bound what a crowd of idle ones can hold (macOS gives a process 256 descriptors).
MAX_CONNECTIONS = 16
CONNECTION_TIMEOUT = 5.0  # seconds a connection has for its whole request, however slowly its bytes come


class MetricsUnavailable(PlainError):
    """Metrics cannot be served as asked: one plain sentence for the user."""

    exit_code = 2


def listen_address(text: str, allow_remote: bool) -> tuple[str, int]:
    """(host, port) of "HOST:PORT" or "[IPv6]:PORT"; MetricsUnavailable when it is malformed, or not loopback
    without `allow_remote`."""
    bad = MetricsUnavailable(f"The metrics address {text!r} is not HOST:PORT, e.g. 127.0.0.1:9184 or [::1]:9184.")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.rpartition(":")
        if ":" in host:  # IPv6 without brackets: where its port starts is a guess
            raise bad
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise bad
    if not allow_remote and not is_loopback(host):
        raise MetricsUnavailable(
            f"Refusing to serve metrics on {text}, which is not a loopback address: the metrics show what you are "
            "doing and have no authentication, so listen on 127.0.0.1 or add --metrics-allow-remote "
            "(metrics_allow_remote: true) if you mean it.")
    return host, int(port_text)


def host_of(header: str) -> str:
    """The host name of a Host header, without its port or IPv6 brackets: "[::1]:9184" -> "::1"."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost; any other name could resolve anywhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TrackerMetrics:
    """The run's Observer: every committed sample and loop tick updates the metrics a scrape reads."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Info, PlatformCollector, ProcessCollector

        ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        PlatformCollector(registry=registry)
        self.registry = registry
        self.samples = Counter("tracker_samples", "Samples recorded.", registry=registry)
        self.activity_seconds = Counter(
            "tracker_activity_seconds", "Seconds recorded, by category and state (active or away).",
            ["category", "state"], registry=registry)
        # Pulse × seconds, of active time: increase() of it over increase() of active seconds is the
        # time-weighted pulse of any range. Not score × seconds: a score can be negative, a counter cannot.
        self.pulse_seconds = Counter(
            "tracker_pulse_seconds", "Productivity pulse (0-100) times seconds, of active time, by category.",
            ["category"], registry=registry)
        self.score = Gauge("tracker_score", "Productivity score (-2 to 2) of the current sample.", registry=registry)
        self.outbox_waiting = Gauge("tracker_outbox_waiting", "Samples waiting to be sent to InfluxDB.",
                                    registry=registry)
        # Only with InfluxDB configured (watch_sends): a run that records locally has no send metrics.
        self.send_duration: Histogram | None = None
        self.sends: Counter | None = None
        Info("tracker_build", "The tracker version running.", registry=registry).info({"version": __version__})
        self._server: WSGIServer | None = None
        self._server_thread: threading.Thread | None = None
        self._wake: socket.socket | None = None  # written to by close(): the server's thread then ends

    def watch_sends(self) -> None:
        """Add the send metrics; `request` must then be told of every request to InfluxDB."""
        from prometheus_client import Counter, Histogram

        self.send_duration = Histogram("tracker_send_duration_seconds", "Seconds each request to InfluxDB took.",
                                       registry=self.registry)
        self.sends = Counter("tracker_sends", "Requests to InfluxDB, by what they came to.", ["result"],
                             registry=self.registry)
        for result in REQUEST_RESULTS:  # each shows from the start, at 0: a failure count is a number, not absent
            self.sends.labels(result)

    # -- tracker.sending.sender.RequestObserver: called on the sender's thread; prometheus_client is thread-safe

    def request(self, seconds: float, lines: int, result: str) -> None:
        if self.send_duration is not None and self.sends is not None:
            self.send_duration.observe(seconds)
            self.sends.labels(result).inc()

    # -- tracker.recording.runner.Observer ---------------------------------------------------------------------------

    def observe(self, step: Step) -> None:
        record = step.record
        self.samples.inc()
        self.score.set(record.score)
        if record.duration > 0:  # a counter only grows
            self.activity_seconds.labels(record.category, record.state).inc(record.duration)
            if record.state == STATE_ACTIVE:
                self.pulse_seconds.labels(record.category).inc(max(0.0, pulse_of(record.score)) * record.duration)

    def count_waiting(self, waiting: Callable[[], float]) -> None:
        """Where the samples waiting to be sent are counted: the run's store, once it is open."""
        # Counted when scraped, not once a second: most seconds nobody asks (the outbox is thread-safe).
        self.outbox_waiting.set_function(waiting)

    def tick(self, now: float, samples_taken: int) -> None:
        pass

    def close(self) -> None:
        if self._wake is not None:
            self._wake.send(b"x")
        if self._server_thread is not None:
            self._server_thread.join(5)
            self._server_thread = None
        if self._server is not None:
            self._server.server_close()
            self._server = None
        if self._wake is not None:
            self._wake.close()
            self._wake = None


def start_metrics(listen: str, allow_remote: bool) -> TrackerMetrics:
    """The metrics, served at http://`listen`/metrics from a thread of their own until closed;
    MetricsUnavailable (one sentence) when the address is refused or taken, or prometheus_client is missing."""
    host, port = listen_address(listen, allow_remote)
    try:
        import prometheus_client
    except ImportError:
        raise MetricsUnavailable(
            f"Serving metrics needs prometheus_client, which is not installed: {INSTALL_HINT}.") from None
    from prometheus_client import make_wsgi_app

    prometheus_client.disable_created_metrics()  # no *_created series beside each counter: half the series
    # A registry of our own: only our metrics, and tests can make several in one process.
    metrics = TrackerMetrics(prometheus_client.CollectorRegistry(auto_describe=True))
    try:
        server = _make_server(host, port, _guarded(make_wsgi_app(metrics.registry), allow_remote))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise MetricsUnavailable(
                f"Cannot serve metrics on {listen}: the port is in use; stop what listens there or choose another "
                "port with --metrics-listen.") from None
        reason = (error.strerror or str(error)).rstrip(".")
        raise MetricsUnavailable(f"Cannot serve metrics on {listen}: {reason}.") from None
    wake_reader, metrics._wake = socket.socketpair()
    metrics._server = server
    metrics._server_thread = threading.Thread(target=_serve, args=(server, wake_reader), name="tracker-metrics",
                                              daemon=True)
    metrics._server_thread.start()
    return metrics


_WSGIApp = Any  # a WSGI application: (environ, start_response) -> iterable of bytes


def _guarded(app: _WSGIApp, allow_remote: bool) -> _WSGIApp:
    """`app` at /metrics only, and, unless `allow_remote`, only for a loopback Host header (see the module)."""
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")  # absent from an HTTP/1.0 request, which no browser sends
        if not allow_remote and host is not None and not is_loopback(host_of(host)):
            return _refuse(start_response, "403 Forbidden", "Metrics are served to a loopback host name only.")
        if environ.get("PATH_INFO") != METRICS_PATH:
            return _refuse(start_response, "404 Not Found", f"Metrics are at {METRICS_PATH}.")
        return app(environ, start_response)

    return guarded


def _refuse(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    body = f"{text}\n".encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def _make_server(host: str, port: int, app: _WSGIApp) -> WSGIServer:
    """A threading HTTP server for `app` bound to (host, port), logging nothing, its connections capped at
    MAX_CONNECTIONS and each closed when its request is not in within CONNECTION_TIMEOUT seconds."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client.exposition import ThreadingWSGIServer

    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    class Server(ThreadingWSGIServer):
        address_family = family

        def verify_request(self, request: Any, client_address: Any) -> bool:
            # False closes the connection at once: beyond the cap it holds no descriptor and no thread.
            return slots.acquire(blocking=False)

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                slots.release()

        def handle_error(self, request: Any, client_address: Any) -> None:
            """A client that timed out or went away is no news for the run's log."""

    class QuietHandler(WSGIRequestHandler):
        def setup(self) -> None:
            super().setup()
            self.rfile.close()  # read through the deadline instead: see _ReadBefore
            self.rfile = io.BufferedReader(_ReadBefore(self.connection, time.monotonic() + CONNECTION_TIMEOUT))

        def log_message(self, format: str, *args: object) -> None:
            """A scrape a second must not fill the run's log."""

    return make_server(host, port, app, Server, handler_class=QuietHandler)


class _ReadBefore(io.RawIOBase):
    """A connection's bytes until a deadline: a timeout on each read alone would let a client that sends a byte
    every few seconds hold its connection for ever. The answer's writes are bounded by what is left, too."""

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        self._connection = connection
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took longer than its deadline")
        self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


def _serve(server: WSGIServer, wake: socket.socket) -> None:
    """Answer requests until `wake` is written to. Unlike prometheus_client's start_http_server, which polls
    twice a second, the thread sleeps until a scrape comes: an idle endpoint costs no CPU."""
    with wake:
        while True:
            readable, _, _ = select.select([server.socket, wake], [], [])
            if wake in readable:
                return
            server.handle_request()
