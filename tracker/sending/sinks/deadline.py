"""A deadline over a whole HTTP exchange (connect, TLS, request, headers, body), whatever the library reads with.

A socket timeout bounds each recv, not the exchange: a server sending a byte a second never trips it. So a
watchdog thread shuts down the exchange's sockets when its deadline passes; whatever blocks on them wakes at
once (end of file, or an error), and the exchange ends in TimeoutError. Sockets join the exchange of the thread
that opens or reuses them (`watch`), which the HTTP clients' hooks do (tracker.sending.sinks.plainhttp, and the
urllib3 pool of tracker.sending.sinks.influx_v2).

`all_ending_within` caps every exchange, running or to come, at one moment: a stopping `tracker run` cuts what is
still on the wire there, whatever influx.timeout says.

A wait on no socket (a name lookup, tracker.sending.sinks.resolving) is woken at the deadline through
`woken_at_deadline`.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType

_NO_CAP = math.inf


class Exchange:
    """One exchange's deadline, for the thread that enters it (`with Exchange(seconds) as exchange:`).

    Leaving it after the deadline passed raises TimeoutError in place of whatever the cut sockets raised; an
    exchange that ended normally meanwhile (a body read cut short, see `fired`) is left to its reader."""

    def __init__(self, seconds: float | None) -> None:
        self._due = math.inf if seconds is None else time.monotonic() + seconds
        self.fired = False  # the deadline passed and the sockets were shut down
        self._sockets: list[socket.socket] = []  # duplicates: shutting one down ends the connection for all
        self._watched: set[int] = set()  # file descriptors already watched
        self._wakers: set[threading.Event] = set()  # waits on something else than a socket: set at the deadline
        self._outer: Exchange | None = None  # the exchange this one is inside, if any

    def renew(self, seconds: float | None) -> None:
        """The deadline from now on: `seconds` from now, or none (while the reader does other work)."""
        with _watchdog.condition:
            self._due = math.inf if seconds is None else time.monotonic() + seconds
            _watchdog.condition.notify()

    def left(self) -> float:
        """Seconds until the deadline (0 when it passed): a timeout for one blocking call."""
        return max(0.0, self.due() - time.monotonic())

    def due(self) -> float:
        return min(self._due, _watchdog.cap)

    def check(self) -> None:
        """TimeoutError when the deadline has passed: what was read meanwhile may be cut anywhere."""
        if self.fired or time.monotonic() >= self.due():
            raise TimeoutError("the exchange's deadline passed")

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down at the deadline (at once when it has passed)."""
        try:
            descriptor = sock.fileno()
            if descriptor < 0 or descriptor in self._watched:
                return
            duplicate = socket.fromfd(descriptor, sock.family, sock.type)
        except OSError:  # closed meanwhile: nothing to wait on
            return
        with _watchdog.condition:
            self._watched.add(descriptor)
            self._sockets.append(duplicate)
            if self.fired:
                _shut(duplicate)
            _watchdog.condition.notify()

    def wake(self, event: threading.Event) -> None:
        """Set `event` at the deadline (at once when it has passed), until `unwake`."""
        with _watchdog.condition:
            self._wakers.add(event)
            if self.fired:
                event.set()

    def unwake(self, event: threading.Event) -> None:
        with _watchdog.condition:
            self._wakers.discard(event)

    def fire(self) -> None:
        """The deadline passed: wake whatever waits on the sockets, or on a waker (called with the watchdog's lock
        held)."""
        self.fired = True
        for sock in self._sockets:
            _shut(sock)
        for event in self._wakers:
            event.set()

    def __enter__(self) -> Exchange:
        self.check()
        self._outer = getattr(_current, "exchange", None)
        _current.exchange = self
        _watchdog.add(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _watchdog.remove(self)
        _current.exchange = self._outer
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        self._watched.clear()
        # A TimeoutError already says what ran out (e.g. resolving.NotResolvedInTime): kept as it is.
        if self.fired and isinstance(error, Exception) and not isinstance(error, TimeoutError):
            raise TimeoutError("the exchange's deadline passed") from None


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected (yet, or any more): a connect is bounded by its own timeout
        sock.shutdown(socket.SHUT_RDWR)


def watch(sock: socket.socket) -> None:
    """Let the current thread's exchange, if any, shut `sock` down at its deadline."""
    exchange: Exchange | None = getattr(_current, "exchange", None)
    if exchange is not None:
        exchange.watch(sock)


def time_left(default: float) -> float:
    """What is left of the current thread's exchange (`default` outside one, or when more is left): a timeout
    for one blocking call, e.g. a connect, which the watchdog cannot cut before it has a socket."""
    exchange: Exchange | None = getattr(_current, "exchange", None)
    return default if exchange is None else min(default, exchange.left())


@contextlib.contextmanager
def woken_at_deadline(event: threading.Event) -> Iterator[None]:
    """Inside: the current thread's exchange, if any, sets `event` when its deadline passes; a wait on `event`
    ends then, as a wait on a watched socket would (the watchdog has no socket to shut while a name is looked up).
    """
    exchange: Exchange | None = getattr(_current, "exchange", None)
    if exchange is None:
        yield
        return
    exchange.wake(event)
    try:
        yield
    finally:
        exchange.unwake(event)


@contextlib.contextmanager
def all_ending_within(seconds: float) -> Iterator[None]:
    """Inside: no exchange, running or to come, lasts past `seconds` from now (a stop that must end in time)."""
    with _watchdog.condition:
        before = _watchdog.cap
        _watchdog.cap = min(before, time.monotonic() + seconds)
        _watchdog.condition.notify()
    try:
        yield
    finally:
        with _watchdog.condition:
            _watchdog.cap = before


class _Watchdog:
    """One daemon thread, started at the first exchange, firing each exchange whose deadline passed."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.cap = _NO_CAP
        self._exchanges: set[Exchange] = set()
        self._thread: threading.Thread | None = None

    def add(self, exchange: Exchange) -> None:
        with self.condition:
            self._exchanges.add(exchange)
            if self._thread is None or not self._thread.is_alive():  # none yet, or a fork left it behind
                self._thread = threading.Thread(target=self._run, name="tracker-deadline", daemon=True)
                self._thread.start()
            self.condition.notify()

    def remove(self, exchange: Exchange) -> None:
        with self.condition:
            self._exchanges.discard(exchange)

    def _run(self) -> None:
        with self.condition:
            while True:
                now = time.monotonic()
                for exchange in [exchange for exchange in self._exchanges if exchange.due() <= now]:
                    exchange.fire()
                    self._exchanges.discard(exchange)
                next_due = min((exchange.due() for exchange in self._exchanges), default=math.inf)
                self.condition.wait(None if next_due == math.inf else next_due - now)


_watchdog = _Watchdog()
_current = threading.local()
