"""InfluxDB 1.x: POST /write?db=..&rp=..&precision=ms, gzip body, through urllib3.

Credentials go in the Authorization header, never in the URL, so no error or log line can carry them.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from urllib.parse import urlencode

import urllib3

from tracker.config import InfluxSettings
from tracker.sinks import (
    check_header_value,
    check_write,
    display_url,
    error_for_exception,
    error_for_status,
    not_influxdb,
    server_reason,
)
from tracker.sinks.answers import Answer, is_html, read_answer
from tracker.sinks.shown import base_url, credentials

# Level 5 compresses line protocol about as well as 9, several times faster.
_GZIP_LEVEL = 5


def pool(settings: InfluxSettings) -> urllib3.PoolManager:
    """Connections with TLS checked unless the user said otherwise, and no retries of urllib3's own."""
    if not settings.verify_tls:
        # tracker prints its own warning once; urllib3's would repeat on every request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return urllib3.PoolManager(
        num_pools=2,
        maxsize=1,
        retries=False,
        timeout=urllib3.Timeout(connect=settings.timeout, read=settings.timeout),
        cert_reqs="CERT_REQUIRED" if settings.verify_tls else "CERT_NONE",
        ca_certs=settings.ca_file,
    )


def authorization(settings: InfluxSettings) -> dict[str, str]:
    """"user:password" → Basic; a bare token → 1.8+/2.x's v1-compatible "Token"."""
    given = credentials(settings)
    if not given:
        return {}
    if ":" in given:
        return {"Authorization": "Basic " + base64.b64encode(given.encode()).decode()}
    check_header_value(given)
    return {"Authorization": "Token " + given}


def _one_request(settings: InfluxSettings, method: str, path: str, body: str | None = None,
                 headers: dict[str, str] | None = None) -> Answer:
    """One request outside a sink's connection pool, its answer read with bounds; RetryLater when the server
    cannot be reached."""
    http = pool(settings)
    try:
        response = http.request(method, base_url(settings.url) + path, body=body, preload_content=False,
                                headers={**(headers or {}), **authorization(settings)})
        return read_answer(response, settings.timeout)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise error_for_exception(settings, error) from None
    finally:
        http.clear()


def detect_api(settings: InfluxSettings) -> tuple[str, bool]:
    """Which API the server speaks, "v1" or "v2", by its /ping; and whether that is sure. Sure: the server names
    its version (X-Influxdb-Version), or answers 204 as InfluxDB 2.x, 3.x, Cloud and VictoriaMetrics do.
    A web page, a redirect, "busy" or a failure decides nothing: SendError says what answered."""
    answer = _one_request(settings, "GET", "/ping")
    version = answer.headers.get("X-Influxdb-Version")
    if version:
        return ("v1" if version.lstrip("v").startswith("1.") else "v2"), True
    if answer.status == 204:
        return "v2", True
    if 200 <= answer.status < 300 and is_html(answer):
        raise not_influxdb(settings, answer)
    if 300 <= answer.status < 400 or answer.status == 429 or answer.status >= 500:
        raise error_for_status(settings, answer.status, server_reason(answer.text(settings), str(answer.status),
                                                                     settings),
                               answer.headers.get("Retry-After"), answer.headers.get("Location"))
    return "v2", False


def speaks_v1(settings: InfluxSettings) -> bool:
    """True when /ping says the server is InfluxDB 1.x."""
    return detect_api(settings)[0] == "v1"


def execute(settings: InfluxSettings, database: str, statement: str) -> None:
    """Run one InfluxQL statement that changes data (POST /query); SendError when the server refuses it."""
    response = _one_request(settings, "POST", "/query", urlencode({"db": database, "q": statement}),
                            {"Content-Type": "application/x-www-form-urlencoded"})
    if response.status != 200:
        raise error_for_status(settings, response.status, server_reason(response.text(settings),
                                                                        str(response.status), settings))
    # /query answers 200 even when the statement failed: the error is in the result.
    try:
        results = json.loads(response.text(settings)).get("results") or []
    except (ValueError, AttributeError, RecursionError):
        results = []
    failed = next((result["error"] for result in results if isinstance(result, dict) and result.get("error")),
                  None)
    if failed:
        raise error_for_status(settings, 400, server_reason(str(failed), "refused", settings))


class InfluxV1Sink:
    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        database, _, retention_policy = settings.bucket.partition("/")
        query = {"db": database, "precision": "ms"}
        if retention_policy:
            query["rp"] = retention_policy
        self._write_url = f"{base_url(settings.url)}/write?{urlencode(query)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip",
                         **authorization(settings)}
        self._http = pool(settings)

    def write(self, lines: Sequence[str]) -> None:
        body = gzip.compress("\n".join(lines).encode(), compresslevel=_GZIP_LEVEL)
        try:
            response = self._http.request("POST", self._write_url, body=body, headers=self._headers,
                                          preload_content=False)
            answer = read_answer(response, self.settings.timeout)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise error_for_exception(self.settings, error) from None
        check_write(self.settings, answer)

    def close(self) -> None:
        self._http.clear()

    def __repr__(self) -> str:
        return f"InfluxV1Sink({display_url(self.settings.url)}, database={self.settings.bucket!r})"
