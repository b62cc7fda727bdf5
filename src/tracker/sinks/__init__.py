"""Where records are sent: one module per API behind the small `Sink` interface.

Importing this package is cheap; the modules behind it import influxdb-client only when opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SendError(Exception):
    """A batch was not accepted. `str(error)` is one plain sentence for the user, never with the token."""


class RetryLater(SendError):
    """The server could not be reached or was not ready (connection, DNS, TLS, timeout, 5xx, 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthFailed(SendError):
    """401/403: the token or credentials are wrong; keep the rows until the settings are fixed."""


class Rejected(SendError):
    """400 or a partial write error: some point in the batch will never be accepted as it is."""


class TooLarge(SendError):
    """413: the batch is too large; send it in smaller parts."""


class Sink(Protocol):
    def write(self, lines: Sequence[str]) -> None:
        """Send line-protocol lines (ms precision); return only when the server confirmed them."""
        ...

    def close(self) -> None: ...
