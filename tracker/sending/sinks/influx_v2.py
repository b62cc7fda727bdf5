"""InfluxDB 2.x, 3.x and Cloud (and anything speaking /api/v2/write), through influxdb-client.

Synchronous writes only: the client's batching mode keeps points in memory and can lose them
(influxdb-client-python issues #165, #394, #504, #644); the outbox and the sender do that job here.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from tracker.config import InfluxSettings
from tracker.redact import base_url, credentials, display_url
from tracker.sending.sinks import check_header_value, check_write, error_for_exception, error_for_status, server_reason
from tracker.sending.sinks.answers import Answer, read_answer
from tracker.sending.sinks.deadline import Exchange, watch
from tracker.sending.sinks.resolving import NotResolvedInTime, connect


class _NameNotResolvedInTime(urllib3.exceptions.ConnectTimeoutError):
    """NotResolvedInTime through urllib3, which passes it on as it is (an OSError would come out as a dropped
    connection); BoundedPool raises the NotResolvedInTime again."""

    def __init__(self, error: NotResolvedInTime) -> None:
        super().__init__(str(error))
        self.error = error


class _WatchedSocket:
    """For urllib3's connections: the name is resolved within the current exchange's time
    (tracker.sending.sinks.resolving), and the socket joins the exchange (tracker.sending.sinks.deadline) when it
    is opened, before any TLS handshake, and when a kept connection is used again."""

    def _new_conn(self) -> socket.socket:
        # urllib3 2's own, with its connect in place of urllib3.util.connection.create_connection, and its errors.
        conn: urllib3.connection.HTTPConnection = self  # type: ignore[assignment]
        given = conn.timeout
        timeout = float(given) if isinstance(given, (int, float)) else socket.getdefaulttimeout()
        try:
            sock = connect((conn._dns_host, conn.port or 0), timeout, conn.source_address,
                           urllib3.util.connection.allowed_gai_family(), conn.socket_options or ())
        except NotResolvedInTime as error:
            raise _NameNotResolvedInTime(error) from None
        except socket.gaierror as error:
            raise urllib3.exceptions.NameResolutionError(conn.host, conn, error) from error
        except TimeoutError as error:
            raise urllib3.exceptions.ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={given})") from error
        except OSError as error:
            raise urllib3.exceptions.NewConnectionError(
                conn, f"Failed to establish a new connection: {error}") from error
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        watch(sock)
        return sock

    def request(self, *args: Any, **options: Any) -> None:
        kept: socket.socket | None = getattr(self, "sock", None)
        if kept is not None:
            watch(kept)
        super().request(*args, **options)  # type: ignore[misc]


class _HTTPConnection(_WatchedSocket, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedSocket, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class BoundedPool:
    """Stands in for the client's urllib3 pool: every exchange (connect, TLS, headers, body) ends by the timeout,
    however slowly the server sends, and every answer is read with tracker's bounds (at most ANSWER_CAP bytes)
    before the client sees it, and kept, so that write() can check the status of an answer the client counts as
    success (it checks only for 2xx)."""

    def __init__(self, pool: urllib3.PoolManager, seconds: float) -> None:
        # Set before the first request: the manager makes its pools, with their connections, when first asked.
        pool.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        self._pool = pool
        self._seconds = seconds
        self._answers = threading.local()

    def request(self, method: str, url: str, **options: Any) -> urllib3.HTTPResponse:
        options["preload_content"] = False
        with Exchange(self._seconds) as exchange:
            try:
                response = self._pool.request(method, url, **options)
            except _NameNotResolvedInTime as error:
                raise error.error from None  # a TimeoutError: the exchange lets it out as it is
            try:
                exchange.check()  # headers cut at the deadline are no answer
            except TimeoutError:
                response.close()
                raise
            answer = read_answer(response, exchange)
        self._answers.last = answer
        headers = urllib3.HTTPHeaderDict(answer.headers)
        headers.discard("Content-Encoding")  # the body below is decompressed already
        headers.discard("Content-Length")
        # Valid UTF-8 whatever came: the client decodes it strictly.
        body = answer.body.decode("utf-8", "replace").encode()
        return urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=answer.status, reason=answer.reason,
                                    preload_content=True, decode_content=False)

    def last_answer(self) -> Answer | None:
        """The answer to this thread's last request, then forgotten."""
        answer: Answer | None = getattr(self._answers, "last", None)
        self._answers.last = None
        return answer

    def clear(self) -> None:
        self._pool.clear()


class InfluxV2Sink:
    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        token = credentials(settings)
        check_header_value(token or "")  # sent as "Token ..."
        if not settings.verify_tls:
            # tracker prints its own warning once; urllib3's would repeat on every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._client = InfluxDBClient(
            url=base_url(settings.url),
            token=token,  # type: ignore[arg-type]  # None: no Authorization header, for an open server
            org=settings.org or "-",  # InfluxDB 1.8 and VictoriaMetrics ignore the org; the client needs one
            timeout=int(settings.timeout * 1000),
            enable_gzip=True,
            verify_ssl=settings.verify_tls,
            ssl_ca_cert=settings.ca_file,
            retries=False,  # the sender retries, with backoff, and keeps the rows meanwhile
        )
        rest = self._client.api_client.rest_client
        self._pool = BoundedPool(rest.pool_manager, settings.timeout)
        rest.pool_manager = self._pool  # type: ignore[assignment]  # the client calls only request() and clear()
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: Sequence[str]) -> None:
        self._pool.last_answer()
        try:
            self._write_api.write(bucket=self.settings.bucket, record=list(lines),
                                  write_precision=WritePrecision.MS)  # type: ignore[arg-type]  # a str constant
        except ApiException as error:
            if not error.status:  # the client reports a TLS failure as status 0; the cause is its context
                raise error_for_exception(self.settings, error.__context__ or error) from None
            headers: Mapping[str, str] = error.headers or {}
            reason = server_reason(error.body, error.reason or str(error.status), self.settings)
            raise error_for_status(self.settings, error.status or 0, reason, headers.get("Retry-After"),
                                   headers.get("Location")) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise error_for_exception(self.settings, error) from None
        answer = self._pool.last_answer()
        if answer is None:  # never: the client sends through the pool above
            raise RuntimeError("influxdb-client wrote without tracker's connection pool")
        check_write(self.settings, answer)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"InfluxV2Sink({display_url(self.settings.url)}, bucket={self.settings.bucket!r})"
