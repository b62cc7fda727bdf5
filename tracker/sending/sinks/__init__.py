"""Where records are sent: one module per API behind the small `Sink` interface.

Importing this package is cheap; the modules behind it import influxdb-client only when opened (by
tracker.sending.sinks.connect.open_sink).
"""

from __future__ import annotations

import errno
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urljoin, urlsplit

from tracker import PlainError
from tracker.redact import display_url, outward
from tracker.sending.sinks.answers import Answer, confirms_write, describe
from tracker.sending.sinks.resolving import NotResolvedInTime

if TYPE_CHECKING:
    from tracker.config import InfluxSettings


# Longest server reason kept in a message or a quarantine note.
REASON_CAP = 500


class SendError(Exception):
    """A batch was not accepted. `str(error)` is one plain sentence for the user, never with the token: the sinks
    make every message through `outward`, and whatever a message holds, it reaches no terminal as a control."""

    def __init__(self, message: str) -> None:
        super().__init__(outward(message, None))


class RetryLater(SendError):
    """The server could not be reached or was not ready (connection, DNS, TLS, timeout, 5xx, 429)."""

    def __init__(self, message: str, retry_after: float | None = None, advice: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.advice = advice  # what to do, when the message says more than "try again" (it holds it already)


class AuthFailed(SendError):
    """401/403: the token or credentials are wrong; keep the rows until the settings are fixed."""


class Rejected(SendError):
    """400 or a partial write error: some point in the batch will never be accepted as it is."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message  # the server's own words, kept with quarantined rows


class TooLarge(SendError):
    """413: the batch is too large; send it in smaller parts."""


class InfluxSettingsError(SendError, PlainError):
    """The InfluxDB settings are wrong: they point at something that is not there (database, bucket, org, URL),
    or cannot be sent as they are. Keep the rows. (config.ConfigError is the settings file that cannot be used.)"""

    exit_code = 2


# What a request to the server can come to, as vitals and metrics count them.
REQUEST_RESULTS = ("ok", "auth", "rejected", "too_large", "retry", "config", "error")
_RESULT_OF_ERROR: dict[type[Exception], str] = {
    AuthFailed: "auth", Rejected: "rejected", TooLarge: "too_large", RetryLater: "retry", InfluxSettingsError: "config"}


def request_result(error: Exception | None) -> str:
    """What a request came to: "ok" when confirmed (no error), else its kind of failure."""
    return "ok" if error is None else _RESULT_OF_ERROR.get(type(error), "error")


class Sink(Protocol):
    def write(self, lines: Sequence[str]) -> None:
        """Send line-protocol lines (ms precision); return only when the server confirmed them."""
        ...

    def close(self) -> None: ...


def require_configured(settings: InfluxSettings) -> None:
    """InfluxSettingsError, saying how to configure InfluxDB, when no URL is set."""
    if not settings.configured:
        raise InfluxSettingsError(
            "InfluxDB is not configured: set TRACKER_INFLUX_URL, or influx.url in config.yaml"
            " (`tracker config init` writes one to edit).")


def check_header_value(token: str) -> None:
    """InfluxSettingsError, without the token, when it cannot travel in an HTTP header as it is."""
    try:
        token.encode("latin-1")
    except UnicodeEncodeError:
        raise InfluxSettingsError("influx.token has characters an HTTP header cannot carry (beyond Latin-1):"
                                 " check it, or give user:password for InfluxDB 1.x") from None
    if any(ord(char) < 32 or ord(char) == 127 for char in token):
        raise InfluxSettingsError("influx.token has control characters (a line break?): check it")


# -- what both sinks say when something goes wrong -----------------------------------------------

def server_reason(body: bytes | str | None, fallback: str, settings: InfluxSettings | None = None) -> str:
    """The server's own explanation, fit to show: 1.x's {"error": ...}, 2.x's {"message": ...}, or the text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            text = str(parsed.get("error") or parsed.get("message") or text)
    except (ValueError, RecursionError):  # not JSON, or nested beyond what json parses
        pass
    return outward(text, settings, REASON_CAP) or fallback


def check_write(settings: InfluxSettings, answer: Answer) -> None:
    """Return when `answer` is InfluxDB's confirmation of a write; else raise what it means (see sinks)."""
    if confirms_write(answer):
        return
    if 200 <= answer.status < 300:
        raise not_influxdb(settings, answer)
    raise error_for_answer(settings, answer, answer.reason)


def error_for_answer(settings: InfluxSettings, answer: Answer, fallback: str = "", headers: bool = True
                     ) -> SendError:
    """`error_for_status` for an answer that refused: the server's reason (else `fallback`, else the status),
    with its Retry-After and Location when `headers`."""
    reason = server_reason(answer.text(settings), fallback or str(answer.status), settings)
    if not headers:
        return error_for_status(settings, answer.status, reason)
    return error_for_status(settings, answer.status, reason, answer.headers.get("Retry-After"),
                            answer.headers.get("Location"))


def retry_after_seconds(header: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


# The paths tracker adds to influx.url: a redirect's Location ends in one of them, which influx.url must not.
_API_PATHS = ("/api/v2/write", "/write", "/ping")


def error_for_status(settings: InfluxSettings, status: int, reason: str, retry_after: str | None = None,
                     location: str | None = None) -> SendError:
    """The error class and plain sentence for a write answered with HTTP `status`."""
    url = display_url(settings.url)
    reason = outward(reason, settings, REASON_CAP)
    lowered = reason.lower()
    target = f"{settings.org}/{settings.bucket}" if settings.org else settings.bucket
    error: SendError
    if status in (401, 403):
        error = AuthFailed(f"InfluxDB refused the token/credentials for {target}: check TRACKER_INFLUX_TOKEN"
                           " or influx.token in config.yaml")
    elif "not found" in lowered and any(word in lowered for word in ("database", "bucket", "retention", "org")):
        error = InfluxSettingsError(f"InfluxDB at {url} says: {reason}; create it, or fix influx.bucket"
                                   " (and influx.org) in config.yaml; the samples are kept")
    elif status == 400 and ("orgid or org" in lowered or "organization" in lowered):
        error = InfluxSettingsError(f"InfluxDB at {url} needs an organization ({reason}): set influx.org"
                                   " in config.yaml or TRACKER_INFLUX_ORG; the samples are kept")
    elif status == 413:
        error = TooLarge(f"InfluxDB at {url} found the batch too large ({reason})")
    elif status in (400, 422):
        error = Rejected(f"InfluxDB at {url} rejected the batch: {reason}", reason)
    elif status == 429 or status >= 500:
        words = "is busy" if status == 429 else "failed"
        error = RetryLater(f"InfluxDB at {url} {words} ({status}: {reason})", retry_after_seconds(retry_after))
    elif 300 <= status < 400:
        error = InfluxSettingsError(_redirect_sentence(settings.url or "", location))
    elif status == 404:
        error = InfluxSettingsError(f"InfluxDB at {url} has no write endpoint here (404: {reason}): check"
                                   " influx.url and influx.api")
    else:
        error = InfluxSettingsError(f"InfluxDB at {url} answered {status} ({reason}); the samples are kept")
    error.args = (outward(str(error), settings),)
    return error


def _redirect_sentence(url: str, location: str | None) -> str:
    """Advice that works: a server that moved is followed by changing influx.url to its new base; a redirect
    anywhere else (a Wi-Fi login page) is no address to write to."""
    shown = display_url(url)
    if not location:
        return f"InfluxDB at {shown} redirects elsewhere without saying where: check influx.url"
    # Resolved against the request, without the query (the database, credentials) or user:password@.
    try:
        target = display_url(urljoin(f"{shown}/write", location))
    except ValueError:  # a Location no URL parser takes: a broken or hostile server
        target = "(not a valid URL)"
    base = next((target.removesuffix(path).rstrip("/") for path in _API_PATHS if target.endswith(path)), None)
    if base and base.startswith(("http://", "https://")):
        # The influx.url it points at, fit to set as it is: without the API path tracker adds.
        return f"InfluxDB at {shown} redirects to {base}: set influx.url to {base}"
    return (f"The server at {shown} redirects to {target}, which is not an InfluxDB write address"
            " (a Wi-Fi login page or a proxy?): the samples are kept; log in to the network if it asks you to,"
            " or check influx.url")


def not_influxdb(settings: InfluxSettings, answer: Answer) -> InfluxSettingsError:
    """The error for an answer that is not InfluxDB's: what answered, in one sentence; the rows stay."""
    return InfluxSettingsError(outward(
        f"Something other than InfluxDB answered at {display_url(settings.url)} ({describe(answer, settings)}):"
        " the samples are kept until InfluxDB itself answers; log in to the network if it asks you to, or check"
        " influx.url", settings))


def error_for_exception(settings: InfluxSettings, error: BaseException) -> SendError:
    """RetryLater with a plain reason for a failure to talk to the server at all."""
    from urllib3 import exceptions

    if isinstance(error, exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    host = urlsplit(settings.url or "").hostname or "?"
    advice = None
    if isinstance(error, exceptions.NameResolutionError):
        why = f"the name {host} does not resolve"
    elif isinstance(error, NotResolvedInTime):
        why = error.within(settings.timeout)
    elif isinstance(error, exceptions.NewConnectionError) and isinstance(error.__cause__, OSError) \
            and error.__cause__.errno == errno.EHOSTUNREACH:  # urllib3 raises it from the socket's error
        from tracker.sending.sinks.noroute import why_unreachable

        why, advice = why_unreachable(error.__cause__, host)
    elif isinstance(error, exceptions.NewConnectionError):
        why = "connection refused" if "refused" in str(error).lower() else "cannot connect"
    elif isinstance(error, exceptions.ConnectTimeoutError):
        why = f"no connection within {settings.timeout:g} s"
    elif isinstance(error, exceptions.ReadTimeoutError | TimeoutError):
        why = f"no answer within {settings.timeout:g} s"
    elif isinstance(error, exceptions.SSLError):
        # urllib3 wraps the ssl module's error, whose verify_message is the readable part.
        inner = error.args[0] if error.args else error
        detail = getattr(inner, "verify_message", None) or getattr(inner, "reason", None)
        why = f"TLS failed: {detail or 'handshake failed'}"
    elif isinstance(error, exceptions.ProtocolError | ConnectionError):
        why = "the connection was dropped"
    else:
        why = type(error).__name__
    return unreachable(settings, why, advice)


def unreachable(settings: InfluxSettings, why: str, advice: str | None = None) -> RetryLater:
    """RetryLater saying that the server could not be reached, and `why`; then `advice`, when there is some."""
    sentence = f"InfluxDB at {display_url(settings.url)} is unreachable ({why})"
    return RetryLater(outward(f"{sentence}; {advice}" if advice else sentence, settings), advice=advice)
