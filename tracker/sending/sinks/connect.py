"""Opening a sink: the one influx.api names, or, for "auto", the one the server turns out to speak.

Apart from tracker.sending.sinks, which both sinks import (the errors, the Sink protocol): the sinks are imported here
only when opened, and never import this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tracker.redact import display_url, url_problem
from tracker.sending.sinks import InfluxSettingsError, Sink, require_configured

if TYPE_CHECKING:
    from tracker.config import InfluxSettings


def open_sink(settings: InfluxSettings) -> Sink:
    """The sink for `settings.api`; "auto" asks the server which API it speaks on the first write."""
    require_configured(settings)
    problem = url_problem(settings.url or "")
    if problem:  # the URL is not repeated: it may hold a password
        raise InfluxSettingsError(f"influx.url {problem}.")
    if urlsplit(settings.url or "").scheme not in ("http", "https"):
        raise InfluxSettingsError(f"influx.url {display_url(settings.url)} must start with http:// or https://.")
    if settings.api == "v1":
        from tracker.sending.sinks.influx_v1 import InfluxV1Sink

        return InfluxV1Sink(settings)
    if settings.api == "v2":
        from tracker.sending.sinks.influx_v2 import InfluxV2Sink

        return InfluxV2Sink(settings)
    if settings.api == "auto":
        return AutoSink(settings)
    raise InfluxSettingsError(f"influx.api is {settings.api!r}; it must be auto, v1 or v2.")


class AutoSink:
    """Asks /ping which InfluxDB answers, on the first write and again until it is sure: a server that is down
    when tracker starts, or a Wi-Fi login page answering in its place, decides nothing."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self.chosen: Sink | None = None

    def write(self, lines: Sequence[str]) -> None:
        if self.chosen is not None:
            self.chosen.write(lines)
            return
        from tracker.sending.sinks.influx_v1 import InfluxV1Sink, detect_api

        api, sure = detect_api(self.settings)
        if api == "v1":
            sink: Sink = InfluxV1Sink(self.settings)
        else:  # 2.x, 3.x, Cloud, and anything that takes the v2 API without saying what it is
            from tracker.sending.sinks.influx_v2 import InfluxV2Sink

            sink = InfluxV2Sink(self.settings)
        try:
            sink.write(lines)
        except BaseException:
            if not sure:  # ask again next time: the answer to /ping may not have been InfluxDB's
                sink.close()
                raise
            self.chosen = sink
            raise
        self.chosen = sink  # sure, or it confirmed a write as InfluxDB does

    def close(self) -> None:
        if self.chosen is not None:
            self.chosen.close()

    def __repr__(self) -> str:
        return f"AutoSink({display_url(self.settings.url)}, chosen={self.chosen!r})"
