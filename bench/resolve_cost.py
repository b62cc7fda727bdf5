"""What bounding name resolution costs (tracker.sending.sinks.resolving), for a literal IP address and "localhost".

Two measures, each the median of many rounds, the old way and the new alternating in every round:
- the lookup alone, inside an exchange: socket.getaddrinfo in the caller's thread, against resolving.addresses (a
  literal address is converted in place, a name is looked up in a thread of its own);
- a whole request on a new connection (InfluxDB 1.x's GET /ping through tracker.sending.sinks.plainhttp, to a
  loopback server): socket.create_connection as before, against resolving.connect. A sink keeps its connection
  open between writes, so this is paid once per connection, not per write.

    .venv/bin/python bench/resolve_cost.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tracker.config import InfluxSettings
from tracker.sending.sinks import plainhttp, resolving
from tracker.sending.sinks.deadline import Exchange, time_left
from tracker.sending.sinks.influx_v1 import one_request

HOSTS = ("127.0.0.1", "localhost")


class _Ping(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(204)
        self.send_header("X-Influxdb-Version", "1.8.10")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def _old_connect(address: tuple[str, int], timeout: float | None, source_address: tuple[str, int] | None = None
                 ) -> socket.socket:
    """How plainhttp connected before: the name resolved in the caller's thread, unbounded."""
    return socket.create_connection(address, time_left(timeout or 10.0), source_address)


def _lookup_old(host: str) -> Callable[[], object]:
    def lookup() -> object:
        with Exchange(10.0):  # as the new one: only the lookup differs
            return socket.getaddrinfo(host, 8086, 0, socket.SOCK_STREAM)
    return lookup


def _lookup_new(host: str) -> Callable[[], object]:
    def lookup() -> object:
        with Exchange(10.0):
            return resolving.addresses(host, 8086, within=10.0)
    return lookup


def _median_microseconds(pairs: list[tuple[Callable[[], object], Callable[[], object]]], rounds: int
                         ) -> list[tuple[float, float]]:
    """For each (old, new) pair: the median microseconds of each, run alternately `rounds` times after a warm-up."""
    results = []
    for old, new in pairs:
        for _ in range(min(50, rounds)):
            old(), new()
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(rounds):
            for action, kept in ((old, times[0]), (new, times[1])):
                started = time.perf_counter()
                action()
                kept.append(time.perf_counter() - started)
        results.append((statistics.median(times[0]) * 1e6, statistics.median(times[1]) * 1e6))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds

    print("the lookup alone (median µs):")
    lookups = _median_microseconds([(_lookup_old(host), _lookup_new(host)) for host in HOSTS], rounds)
    for host, (old, new) in zip(HOSTS, lookups, strict=True):
        print(f"  {host:<10} getaddrinfo here {old:8.1f}   bounded {new:8.1f}   added {new - old:+8.1f}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    new_connect = plainhttp.connect

    def request(host: str, connect: Callable[..., socket.socket]) -> Callable[[], object]:
        settings = InfluxSettings(url=f"http://{host}:{port}", api="v1", timeout=10.0)

        def one() -> object:
            plainhttp.connect = connect
            return one_request(settings, "GET", "/ping")
        return one

    print("a request on a new connection, GET /ping on loopback (median µs):")
    try:
        requests = _median_microseconds([(request(host, _old_connect), request(host, new_connect)) for host in HOSTS],
                                        max(1, rounds // 4))
    finally:
        plainhttp.connect = new_connect
        server.shutdown()
    for host, (old, new) in zip(HOSTS, requests, strict=True):
        print(f"  {host:<10} before {old:8.1f}   bounded {new:8.1f}   added {new - old:+8.1f}"
              f" ({(new - old) / old:+.1%})")


if __name__ == "__main__":
    main()
