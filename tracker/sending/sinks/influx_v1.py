"""InfluxDB 1.x: POST /write?db=..&rp=..&precision=ms, gzip body, on one kept-alive connection.

Credentials go in the Authorization header, never in the URL, so no error or log line can carry them.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from tracker.config import InfluxSettings
from tracker.redact import base_url, credentials, display_url
from tracker.sending.sinks import (
    InfluxSettingsError,
    TooLarge,
    check_header_value,
    check_write,
    error_for_answer,
    error_for_status,
    not_influxdb,
    server_reason,
    unreachable,
)
from tracker.sending.sinks.answers import ANSWER_CAP, Answer, is_html
from tracker.sending.sinks.plainhttp import BadCAFile, Connection, Unreachable

# Level 5 compresses line protocol about as well as 9, several times faster.
_GZIP_LEVEL = 5
# Bodies from this many bytes are gzipped. A running tracker's batch of a few seconds' samples is smaller: there
# zlib's set-up costs more CPU (about 0.2 ms) than the bytes it saves on the wire are worth.
GZIP_FROM_BYTES = 4096


def connection(settings: InfluxSettings) -> Connection:
    """A connection to the server, TLS checked unless the user said otherwise; it never retries by itself."""
    return Connection(base_url(settings.url), settings.timeout, settings.verify_tls, settings.ca_file)


def request(settings: InfluxSettings, to: Connection, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, cap: int = ANSWER_CAP) -> Answer:
    """The server's answer, read with bounds (`cap` bytes of body); RetryLater when it cannot be reached,
    InfluxSettingsError for a CA file that cannot be used."""
    try:
        return to.request(method, path, body, {**(headers or {}), **authorization(settings)}, cap)
    except Unreachable as error:
        raise unreachable(settings, str(error), error.advice) from None
    except BadCAFile as error:
        raise InfluxSettingsError(f"influx.ca_file {settings.ca_file} cannot be used ({error}): point it at the"
                                 " PEM file of the certificate authority that signed the server's certificate"
                                 ) from None


def check_whole(settings: InfluxSettings, answer: Answer, cap: int) -> None:
    """TooLarge when a query's 200 answer was cut (longer than `cap` bytes, or too slow to read whole): what was
    read is no whole answer."""
    if answer.status == 200 and not answer.complete:
        raise TooLarge(f"InfluxDB at {display_url(settings.url)} answered a query with more than {cap:,}"
                       " bytes, or too slowly to read it whole")


def authorization(settings: InfluxSettings) -> dict[str, str]:
    """"user:password" → Basic; a bare token → 1.8+/2.x's v1-compatible "Token"."""
    given = credentials(settings)
    if not given:
        return {}
    if ":" in given:
        return {"Authorization": "Basic " + base64.b64encode(given.encode()).decode()}
    check_header_value(given)
    return {"Authorization": "Token " + given}


def one_request(settings: InfluxSettings, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, cap: int = ANSWER_CAP) -> Answer:
    """One request on a connection of its own, closed after it."""
    to = connection(settings)
    try:
        return request(settings, to, method, path, body, headers, cap)
    finally:
        to.close()


def detect_api(settings: InfluxSettings) -> tuple[str, bool]:
    """Which API the server speaks, "v1" or "v2", by its /ping; and whether that is sure (see `detect_version`)."""
    version, _, sure = detect_version(settings)
    return ("v1" if major_version(version) == "1" else "v2"), sure


def major_version(version: str | None) -> str:
    """"1" for "1.8.10", "2" for "v2.7.12"; "" for no version."""
    return (version or "").lstrip("v").partition(".")[0]


def detect_version(settings: InfluxSettings) -> tuple[str | None, str | None, bool]:
    """The version and build the server names on /ping (X-Influxdb-Version, X-Influxdb-Build; None when it names
    none: InfluxDB Cloud names its build only), and whether the answer is sure to be InfluxDB's. Sure: it names
    its version, or answers 204 as InfluxDB 2.x, 3.x, Cloud and VictoriaMetrics do. A web page, a redirect,
    "busy" or a failure decides nothing: SendError says what answered."""
    answer = one_request(settings, "GET", "/ping")
    version, build = answer.headers.get("X-Influxdb-Version"), answer.headers.get("X-Influxdb-Build")
    if version:
        return version, build, True
    if answer.status == 204:
        return None, build, True
    if 200 <= answer.status < 300 and is_html(answer):
        raise not_influxdb(settings, answer)
    if 300 <= answer.status < 400 or answer.status == 429 or answer.status >= 500:
        raise error_for_answer(settings, answer)
    return None, None, False


def server_version(settings: InfluxSettings) -> str | None:
    """What /ping says in X-Influxdb-Version (None when it says nothing); RetryLater when unreachable."""
    return one_request(settings, "GET", "/ping").headers.get("X-Influxdb-Version")


def speaks_v1(settings: InfluxSettings) -> bool:
    """True when /ping says the server is InfluxDB 1.x."""
    return detect_api(settings)[0] == "v1"


def execute(settings: InfluxSettings, database: str, statement: str, epoch: str | None = None,
            body_cap: int = ANSWER_CAP) -> list[dict[str, Any]]:
    """Run one InfluxQL statement (POST /query): its results, times in `epoch` units (e.g. "ms") when given,
    else RFC 3339; SendError when the server refuses it, or when its answer is longer than `body_cap` bytes."""
    form = {"db": database, "q": statement, **({"epoch": epoch} if epoch else {})}
    response = one_request(settings, "POST", "/query", urlencode(form).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"}, body_cap)
    check_whole(settings, response, body_cap)
    if response.status != 200:
        raise error_for_answer(settings, response, headers=False)
    # /query answers 200 even when the statement failed: the error is in the result.
    try:
        results = json.loads(response.text(settings)).get("results") or []
    except (ValueError, AttributeError, RecursionError):
        results = []
    failed = next((result["error"] for result in results if isinstance(result, dict) and result.get("error")),
                  None)
    if failed:
        raise error_for_status(settings, 400, server_reason(str(failed), "refused", settings))
    return [result for result in results if isinstance(result, dict)]


class InfluxV1Sink:
    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        database, _, retention_policy = settings.bucket.partition("/")
        query = {"db": database, "precision": "ms"}
        if retention_policy:
            query["rp"] = retention_policy
        self._write_path = f"/write?{urlencode(query)}"
        self._plain_headers = {"Content-Type": "text/plain; charset=utf-8"}
        self._gzip_headers = self._plain_headers | {"Content-Encoding": "gzip"}
        self._connection = connection(settings)

    def write(self, lines: Sequence[str]) -> None:
        body = "\n".join(lines).encode()
        headers = self._plain_headers
        if len(body) >= GZIP_FROM_BYTES:
            body, headers = gzip.compress(body, compresslevel=_GZIP_LEVEL), self._gzip_headers
        check_write(self.settings, request(self.settings, self._connection, "POST", self._write_path, body, headers))

    def close(self) -> None:
        self._connection.close()

    def __repr__(self) -> str:
        return f"InfluxV1Sink({display_url(self.settings.url)}, database={self.settings.bucket!r})"
