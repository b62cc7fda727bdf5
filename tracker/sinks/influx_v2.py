"""InfluxDB 2.x, 3.x and Cloud (and anything speaking /api/v2/write), through influxdb-client.

Synchronous writes only: the client's batching mode keeps points in memory and can lose them
(influxdb-client-python issues #165, #394, #504, #644); the outbox and the sender do that job here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from tracker.config import InfluxSettings
from tracker.sinks import display_url, error_for_exception, error_for_status, server_reason


class InfluxV2Sink:
    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        if not settings.verify_tls:
            # tracker prints its own warning once; urllib3's would repeat on every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._client = InfluxDBClient(
            url=display_url(settings.url),
            token=settings.token,  # type: ignore[arg-type]  # None: no Authorization header, for an open server
            org=settings.org or "-",  # InfluxDB 1.8 and VictoriaMetrics ignore the org; the client needs one
            timeout=int(settings.timeout * 1000),
            enable_gzip=True,
            verify_ssl=settings.verify_tls,
            ssl_ca_cert=settings.ca_file,
            retries=False,  # the sender retries, with backoff, and keeps the rows meanwhile
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: Sequence[str]) -> None:
        try:
            self._write_api.write(bucket=self.settings.bucket, record=list(lines),
                                  write_precision=WritePrecision.MS)  # type: ignore[arg-type]  # a str constant
        except ApiException as error:
            if not error.status:  # the client reports a TLS failure as status 0; the cause is its context
                raise error_for_exception(self.settings, error.__context__ or error) from None
            headers: Mapping[str, str] = error.headers or {}
            reason = server_reason(error.body, error.reason or str(error.status))
            raise error_for_status(self.settings, error.status or 0, reason, headers.get("Retry-After"),
                                   headers.get("Location")) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise error_for_exception(self.settings, error) from None

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"InfluxV2Sink({display_url(self.settings.url)}, bucket={self.settings.bucket!r})"
