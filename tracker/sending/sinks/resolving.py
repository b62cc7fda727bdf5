"""Name resolution within an exchange's deadline (tracker.sending.sinks.deadline), and connecting with it.

socket.getaddrinfo blocks in the C library for as long as the resolver takes: several 5 s timeouts for each
nameserver, or for ever with a broken NSS module, and the watchdog has no socket to shut meanwhile. So a name is
looked up in a daemon thread, and the exchange waits for it at most the time it has left; then NotResolvedInTime.
A lookup that never ends stays stuck in its thread, so they are kept from piling up: one lookup at a time per
query (host, port, family, type), which later attempts wait on in turn, and at most MAX_LOOKUPS at once; an
answer that comes after everyone gave up waiting is kept for the next attempt (for LATE_ANSWER_KEPT), so a
resolver slower than the timeout still gets a connection made. The threads never keep the process from exiting.

A literal IP address is no lookup: it is converted in the caller's thread, with no thread started.
"""

from __future__ import annotations

import copy
import math
import os
import socket
import threading
import time
from collections.abc import Sequence

from tracker.sending.sinks.deadline import time_left, woken_at_deadline

# Lookups running at once: each may hold a thread stuck in the C library for ever.
MAX_LOOKUPS = 8
# An answer that nobody waited for any more answers the next attempt if it comes within this (the sender's
# longest backoff is 60 s); an older one is looked up again.
LATE_ANSWER_KEPT = 120.0

# What getaddrinfo gives for each address: family, type, protocol, canonical name, the address to connect to.
AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str,
                    tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]]
_Query = tuple[str, int, int, int]  # host, port, family, type: what getaddrinfo is asked


class NotResolvedInTime(TimeoutError):
    """The name was not resolved within the time the exchange had left for it."""

    def __init__(self, host: str) -> None:
        super().__init__(f"the name {host} could not be resolved in time")
        self.host = host

    def within(self, seconds: float) -> str:
        """What happened, in a few words, for a bound of `seconds` (the timeout the user set)."""
        return f"the name {self.host} could not be resolved within {seconds:g} s"


def addresses(host: str, port: int, family: int = socket.AF_UNSPEC, kind: int = socket.SOCK_STREAM,
              within: float | None = None) -> Sequence[AddressInfo]:
    """socket.getaddrinfo(host, port, family, kind), waiting at most `within` seconds (None: as long as it takes)
    for a name's lookup; NotResolvedInTime when that passed, or when the current exchange's deadline did."""
    if _is_literal(host):  # converted by the C library with no lookup: cheap, no thread
        return socket.getaddrinfo(host, port, family, kind, 0, socket.AI_NUMERICHOST)
    if within is None:
        return socket.getaddrinfo(host, port, family, kind)
    return _resolve((host, port, family, kind), within)


def connect(address: tuple[str, int], timeout: float | None, source_address: tuple[str, int] | None = None,
            family: int = socket.AF_UNSPEC, options: Sequence[tuple[int, int, int | bytes]] = ()) -> socket.socket:
    """socket.create_connection, but the name is resolved, and each of its addresses tried, within what is left of
    `timeout` and of the current exchange. The socket keeps `timeout` for its reads. `options` are set before
    connecting (urllib3's socket_options)."""
    host, port = address
    if host.startswith("["):
        host = host.strip("[]")
    answers = addresses(host, port, family, socket.SOCK_STREAM, _bound(timeout))
    failed: OSError = OSError("getaddrinfo returns an empty list")
    for tried, (address_family, kind, proto, _, where) in enumerate(answers):
        left = _bound(timeout)
        if left is not None and left <= 0:  # no time left for this address, nor any after it
            failed = failed if tried else TimeoutError("timed out")
            break
        sock = socket.socket(address_family, kind, proto)
        try:
            for option in options:
                sock.setsockopt(*option)
            sock.settimeout(left)
            if source_address:
                sock.bind(source_address)
            sock.connect(where)
        except OSError as error:
            sock.close()
            failed = error
            continue
        sock.settimeout(timeout)
        return sock
    raise failed


def _bound(timeout: float | None) -> float | None:
    """What is left of `timeout` and of the current exchange; None when neither bounds anything."""
    left = time_left(math.inf if timeout is None else timeout)
    return None if left == math.inf else left


def _is_literal(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return True
    return False


class _Lookup:
    """One getaddrinfo call in a thread of its own, and those waiting for its outcome."""

    def __init__(self, query: _Query) -> None:
        self.query = query
        self.finished_at: float | None = None
        self.answers: Sequence[AddressInfo] = ()
        self.error: Exception | None = None
        self.waiting: set[threading.Event] = set()

    def run(self) -> None:
        try:
            answers = socket.getaddrinfo(*self.query)
        except Exception as error:  # gaierror, UnicodeError (an IDNA name): the waiting attempt raises it
            error.__traceback__ = None  # kept for a while: not with this thread's frames
            self.error = error
        else:
            self.answers = answers
        with _lock:
            self.finished_at = time.monotonic()
            if self.waiting:  # they take the outcome; a later attempt looks the name up afresh
                if _lookups.get(self.query) is self:
                    del _lookups[self.query]
                for event in self.waiting:
                    event.set()
            # else it stays in _lookups: a late answer, for the next attempt

    def outcome(self) -> Sequence[AddressInfo]:
        if self.error is not None:
            raise copy.copy(self.error)  # each attempt its own: several may raise it at once
        return self.answers


_lock = threading.Lock()
_lookups: dict[_Query, _Lookup] = {}  # running, or finished with nobody waiting (a late answer)


def _resolve(query: _Query, within: float) -> Sequence[AddressInfo]:
    if within <= 0:
        raise NotResolvedInTime(query[0])
    woken = threading.Event()
    with _lock:
        lookup = _lookups.get(query)
        if lookup is not None and lookup.finished_at is not None:  # a late answer: taken once, if recent
            del _lookups[query]
            if time.monotonic() - lookup.finished_at <= LATE_ANSWER_KEPT:
                return lookup.outcome()
            lookup = None
        if lookup is None:
            now = time.monotonic()
            for old in [old for old in _lookups.values()
                        if old.finished_at is not None and now - old.finished_at > LATE_ANSWER_KEPT]:
                del _lookups[old.query]
            if sum(1 for running in _lookups.values() if running.finished_at is None) >= MAX_LOOKUPS:
                raise NotResolvedInTime(query[0])  # so many stuck already that one more would not end either
            lookup = _Lookup(query)
            try:
                threading.Thread(target=lookup.run, name=f"tracker-resolve {query[0]}", daemon=True).start()
            except RuntimeError:  # no thread to be had (the process is at its limit): no lookup either
                raise NotResolvedInTime(query[0]) from None
            _lookups[query] = lookup
        lookup.waiting.add(woken)
    try:
        with woken_at_deadline(woken):
            woken.wait(within)
    finally:
        with _lock:
            lookup.waiting.discard(woken)
    if lookup.finished_at is None:
        raise NotResolvedInTime(query[0])
    return lookup.outcome()


def _forget_lookups() -> None:
    """In a forked child: the lookups' threads are not there, nor is anyone holding the lock."""
    global _lock
    _lock = threading.Lock()
    _lookups.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_lookups)
