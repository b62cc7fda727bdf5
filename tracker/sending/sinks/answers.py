"""A server's answer, read with bounds, and whether it is InfluxDB's.

Whatever a server sends, at most ANSWER_CAP bytes of its body are read into memory (decompressed with the same
bound), and until the exchange's deadline (tracker.sending.sinks.deadline): a 1 GB body, an endless stream or a
trickle costs nothing more.
"""

from __future__ import annotations

import html
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tracker.redact import outward, without_secret_tail

if TYPE_CHECKING:
    from tracker.config import InfluxSettings
    from tracker.sending.sinks.deadline import Exchange

# Most bytes of a body read (and kept after decompressing): an error of InfluxDB 3 lists up to 100 lines.
ANSWER_CAP = 64 * 1024
_CHUNK = 16 * 1024
# Longest page title or text excerpt quoted when something else than InfluxDB answers.
EXCERPT_CAP = 100


class Response(Protocol):
    """The part of urllib3's HTTPResponse read here (opened with preload_content=False)."""

    status: int
    reason: str | None

    @property
    def headers(self) -> Mapping[str, str]: ...

    def read1(self, amt: int | None = None, decode_content: bool | None = None) -> bytes: ...

    def close(self) -> None: ...

    def release_conn(self) -> None: ...


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)
    body: bytes  # at most ANSWER_CAP bytes (unless the request asked for more), decompressed
    complete: bool  # False when the body went on beyond what was read

    def text(self, settings: InfluxSettings | None) -> str:
        """The body as text, a cut-off secret at its end removed; not yet fit to show (see redact.outward)."""
        text = self.body.decode("utf-8", "replace")
        return text if self.complete else without_secret_tail(text, settings)


def read_body(read1: Callable[[int], bytes], exchange: Exchange, cap: int = ANSWER_CAP) -> tuple[bytes, bool]:
    """At most `cap` (and a chunk) bytes of a body, read until the exchange's deadline; and whether that was all
    of it. A body cut at the deadline (its socket shut down: the end, or an error) is what arrived until then."""
    chunks: list[bytes] = []
    size = 0
    while size <= cap and exchange.left() > 0:
        try:
            chunk = read1(_CHUNK)
        except Exception:
            if exchange.fired:
                break
            raise
        if not chunk:
            return b"".join(chunks), not exchange.fired
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def answer_of(status: int, reason: str | None, headers: Mapping[str, str], raw: bytes, complete: bool,
              cap: int = ANSWER_CAP) -> Answer:
    """The answer, its body decompressed (with the same bound, `cap`) as its Content-Encoding says."""
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    body, decoded_all = _decoded(raw, encoding, cap)
    return Answer(status, reason or "", headers, body[:cap], complete and decoded_all and len(body) <= cap)


def read_answer(response: Response, exchange: Exchange) -> Answer:
    """Status, headers and at most ANSWER_CAP bytes of the body of a urllib3 response, read until the exchange's
    deadline; the connection is closed when the body goes on (it cannot be reused), else returned to its pool."""
    complete = False
    try:
        raw, complete = read_body(lambda size: response.read1(size, decode_content=False), exchange)
    finally:
        if not complete:
            response.close()
        response.release_conn()
    return answer_of(response.status, response.reason, response.headers, raw, complete)


def _decoded(raw: bytes, encoding: str, cap: int) -> tuple[bytes, bool]:
    """The body decompressed to at most `cap` + 1 bytes (a small bomb cannot grow big); and whether all of it
    was. An encoding tracker cannot read leaves no body."""
    if encoding in ("identity", ""):
        return raw, True
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(encoding)
    if wbits is None:
        return b"", False
    try:
        decompressor = zlib.decompressobj(wbits)
        body = decompressor.decompress(raw, cap + 1)
        return body, not decompressor.unconsumed_tail
    except zlib.error:
        return b"", False


def confirms_write(answer: Answer) -> bool:
    """Whether a write's answer is InfluxDB's confirmation. InfluxDB 1.x, 2.x, 3.x and Cloud and VictoriaMetrics
    answer 204 on /write and /api/v2/write; another 2xx counts only when the server says it speaks InfluxDB
    (X-Influxdb-Version) and sends no web page. A Wi-Fi login page or a catch-all answers 200 with HTML."""
    if answer.status == 204:
        return True
    return 200 <= answer.status < 300 and "X-Influxdb-Version" in answer.headers and not is_html(answer)


def is_html(answer: Answer) -> bool:
    content_type = (answer.headers.get("Content-Type") or "").lower()
    start = answer.body[:512].lstrip().lower()
    return "html" in content_type or start.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def describe(answer: Answer, settings: InfluxSettings | None) -> str:
    """What answered, for a message: status, content type and what the body is (a page's title, or its start)."""
    status = f"{answer.status} {answer.reason[:EXCERPT_CAP]}".strip()
    content_type = (answer.headers.get("Content-Type") or "")[:EXCERPT_CAP]
    heading = f"{status}, {content_type}" if content_type else status
    text = answer.text(settings)
    if is_html(answer):
        title = re.search(r"<title[^>]*>(.*?)</title", text, re.IGNORECASE | re.DOTALL)
        shown_title = outward(html.unescape(title[1]), settings, EXCERPT_CAP) if title else ""
        what = f"an HTML page titled '{shown_title}'" if shown_title else "an HTML page"
    else:
        excerpt = outward(text, settings, EXCERPT_CAP)
        what = f"'{excerpt}'" if excerpt else "an empty answer"
    return outward(f"{heading}: {what}", settings)
