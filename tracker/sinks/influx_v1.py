"""InfluxDB 1.x: POST /write?db=..&rp=..&precision=ms, gzip body, through urllib3.

Credentials go in the Authorization header, never in the URL, so no error or log line can carry them.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

from tracker.config import InfluxSettings
from tracker.sinks import display_url, error_for_exception, error_for_status, server_reason

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
    credentials = settings.token or urlsplit(settings.url or "").netloc.rpartition("@")[0]
    if not credentials:
        return {}
    if ":" in credentials:
        return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    return {"Authorization": "Token " + credentials}


def _one_request(settings: InfluxSettings, method: str, path: str, body: str | None = None,
                 headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    """One request outside a sink's connection pool; RetryLater when the server cannot be reached."""
    http = pool(settings)
    try:
        return http.request(method, display_url(settings.url) + path, body=body,
                            headers={**(headers or {}), **authorization(settings)})
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise error_for_exception(settings, error) from None
    finally:
        http.clear()


def server_version(settings: InfluxSettings) -> str | None:
    """What /ping says in X-Influxdb-Version (None when it says nothing); RetryLater when unreachable."""
    return _one_request(settings, "GET", "/ping").headers.get("X-Influxdb-Version")


def speaks_v1(settings: InfluxSettings) -> bool:
    """True when /ping says the server is InfluxDB 1.x; 2.x, 3.x, Cloud and servers that do not say are not."""
    return (server_version(settings) or "").lstrip("v").startswith("1.")


def execute(settings: InfluxSettings, database: str, statement: str) -> list[dict[str, Any]]:
    """Run one InfluxQL statement (POST /query): its results; SendError when the server refuses it."""
    response = _one_request(settings, "POST", "/query", urlencode({"db": database, "q": statement}),
                            {"Content-Type": "application/x-www-form-urlencoded"})
    if response.status != 200:
        raise error_for_status(settings, response.status, server_reason(response.data, str(response.status)))
    # /query answers 200 even when the statement failed: the error is in the result.
    try:
        results = json.loads(response.data).get("results") or []
    except (ValueError, AttributeError):
        results = []
    failed = next((result["error"] for result in results if isinstance(result, dict) and result.get("error")),
                  None)
    if failed:
        raise error_for_status(settings, 400, server_reason(str(failed), "refused"))
    return [result for result in results if isinstance(result, dict)]


class InfluxV1Sink:
    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        database, _, retention_policy = settings.bucket.partition("/")
        query = {"db": database, "precision": "ms"}
        if retention_policy:
            query["rp"] = retention_policy
        self._write_url = f"{display_url(settings.url)}/write?{urlencode(query)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip",
                         **authorization(settings)}
        self._http = pool(settings)

    def write(self, lines: Sequence[str]) -> None:
        body = gzip.compress("\n".join(lines).encode(), compresslevel=_GZIP_LEVEL)
        try:
            response = self._http.request("POST", self._write_url, body=body, headers=self._headers)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise error_for_exception(self.settings, error) from None
        if response.status in (200, 204):
            return
        reason = server_reason(response.data, response.reason or str(response.status))
        raise error_for_status(self.settings, response.status, reason, response.headers.get("Retry-After"),
                               response.headers.get("Location"))

    def close(self) -> None:
        self._http.clear()

    def __repr__(self) -> str:
        return f"InfluxV1Sink({display_url(self.settings.url)}, database={self.settings.bucket!r})"
