"""HTTP/1.1 on one kept-alive connection, with the standard library's http.client.

The InfluxDB 1.x sink needs one POST a second at most; urllib3 would bring with it importlib.metadata, email
and zipfile (about 3 MB of a run's resident memory) for nothing a single connection needs. Answers are read
with the bounds of tracker.sending.sinks.answers, whatever the server sends.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

from tracker.sending.sinks.answers import ANSWER_CAP, Answer, answer_of, read_body
from tracker.sending.sinks.deadline import Exchange, watch
from tracker.sending.sinks.noroute import why_unreachable
from tracker.sending.sinks.resolving import NotResolvedInTime, connect


class Unreachable(Exception):
    """The request got no HTTP answer; `str(error)` says why, in a few plain words, and `advice` what to do when
    that is not plain (see tracker.sending.sinks.noroute)."""

    def __init__(self, words: str, advice: str | None = None) -> None:
        super().__init__(words)
        self.advice = advice


class BadCAFile(Exception):
    """The CA file to check the server's certificate with cannot be used; `str(error)` says why."""


class Connection:
    """Requests to one server, one at a time, on a connection that is kept open between them."""

    def __init__(self, url: str, timeout: float, verify_tls: bool = True, ca_file: str | None = None) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.base_path = parts.path.rstrip("/")
        self.timeout = timeout
        self.verify_tls = verify_tls
        self.ca_file = ca_file
        self._connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, cap: int = ANSWER_CAP) -> Answer:
        """The server's answer to one request, at most `cap` bytes of its body; Unreachable when there is none.
        The whole exchange (connect, TLS, request, headers, body) takes at most the timeout."""
        connection = self._connection
        if connection is None or not _still_open(connection):
            connection = self._open()
        phase = "connect" if connection.sock is None else "answer"
        try:
            with Exchange(self.timeout) as exchange:
                if connection.sock is None:
                    connection.connect()
                    phase = "answer"
                else:
                    exchange.watch(connection.sock)
                connection.request(method, self.base_path + path, body=body, headers=headers or {})
                response = connection.getresponse()
                exchange.check()  # headers cut at the deadline are no answer
                raw, complete = read_body(response.read1, exchange, cap)
            if complete:
                response.read()  # nothing is left: this marks the response done, so the connection takes the next
            else:  # a longer or slower body than anyone needs: drop the connection, not read on
                self.close()
            # An email.message.Message: read like a mapping, its names case-insensitive as HTTP's are.
            answer_headers = cast(Mapping[str, str], response.headers)
            return answer_of(response.status, response.reason, answer_headers, raw, complete, cap)
        except ssl.SSLCertVerificationError as error:
            self.close()
            raise Unreachable(f"TLS failed: {error.verify_message or 'the certificate is not trusted'}") from None
        except ssl.SSLError as error:
            self.close()
            raise Unreachable(f"TLS failed: {error.reason or 'handshake failed'}") from None
        except socket.gaierror:
            self.close()
            raise Unreachable(f"the name {self.host} does not resolve") from None
        except NotResolvedInTime as error:
            self.close()
            raise Unreachable(error.within(self.timeout)) from None
        except TimeoutError:
            self.close()
            raise Unreachable(f"no connection within {self.timeout:g} s" if phase == "connect"
                              else f"no answer within {self.timeout:g} s") from None
        except ConnectionRefusedError:
            self.close()
            raise Unreachable("connection refused") from None
        except (http.client.HTTPException, ConnectionError) as error:
            self.close()
            raise Unreachable("the connection was dropped" if phase == "answer" else "cannot connect") from error
        except OSError as error:
            self.close()
            why = why_unreachable(error, self.host)
            raise Unreachable(why.words, why.advice) from None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> http.client.HTTPConnection:
        self.close()
        if self.https:
            self._connection = WatchedHTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                      context=self._tls_context())
        else:
            self._connection = WatchedHTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._connection

    def _tls_context(self) -> ssl.SSLContext:
        if not self.verify_tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as error:
            why = error.strerror if isinstance(error, OSError) and error.strerror else "it holds no certificate"
            raise BadCAFile(f"{why.rstrip('.').lower()}") from None


class WatchedHTTPConnection(http.client.HTTPConnection):
    """http.client's connection, its socket watched by the deadline of the exchange that opens it."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        # http.client opens its socket through this attribute (3.10 to 3.13); TLS wraps that socket afterwards.
        self._create_connection = _watched_socket


class WatchedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS: the watched socket is the one the handshake runs on, so a slow handshake is cut too."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self._create_connection = _watched_socket


def _watched_socket(address: tuple[str, int], timeout: object = None,
                    source_address: tuple[str, int] | None = None) -> socket.socket:
    """A connected socket, its name resolved and connected within what is left of the current exchange, which then
    watches it. `timeout` may be http.client's "the default" object: the socket module's default timeout."""
    seconds = float(timeout) if isinstance(timeout, (int, float)) else socket.getdefaulttimeout()
    sock = connect(address, seconds, source_address)
    watch(sock)
    return sock


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """True when a kept connection can take another request: a server that closed it in the meantime
    makes its socket readable (at end of file), and a request written to it would be lost."""
    if connection.sock is None:
        return False
    try:
        readable, _, _ = select.select([connection.sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
