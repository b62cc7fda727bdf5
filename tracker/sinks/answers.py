"""A server's answer, read with bounds, and whether it is InfluxDB's.

Whatever a server sends, at most ANSWER_CAP bytes of its body are read into memory (decompressed with the same
bound), and for at most the request timeout: a 1 GB body, an endless stream or a trickle costs nothing more.
"""

from __future__ import annotations

import html
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tracker.sinks.shown import outward, without_secret_tail

if TYPE_CHECKING:
    from tracker.config import InfluxSettings

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
    body: bytes  # at most ANSWER_CAP bytes, decompressed
    complete: bool  # False when the body went on beyond what was read

    def text(self, settings: InfluxSettings | None) -> str:
        """The body as text, a cut-off secret at its end removed; not yet fit to show (see shown.outward)."""
        text = self.body.decode("utf-8", "replace")
        return text if self.complete else without_secret_tail(text, settings)


def read_answer(response: Response, seconds: float) -> Answer:
    """Status, headers and at most ANSWER_CAP bytes of the body, read for at most `seconds`; the connection is
    closed when the body goes on (it cannot be reused), else returned to its pool."""
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    size = 0
    complete = False
    try:
        while size <= ANSWER_CAP and time.monotonic() < deadline:
            chunk = response.read1(_CHUNK, decode_content=False)  # read1: a trickle cannot hold it past the deadline
            if not chunk:
                complete = True
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        if not complete:
            response.close()
        response.release_conn()
    raw = b"".join(chunks)
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    body, decoded_all = _decoded(raw, encoding)
    return Answer(response.status, response.reason or "", response.headers, body[:ANSWER_CAP],
                  complete and decoded_all and len(body) <= ANSWER_CAP)


def _decoded(raw: bytes, encoding: str) -> tuple[bytes, bool]:
    """The body decompressed to at most ANSWER_CAP + 1 bytes (a small bomb cannot grow big); and whether all of
    it was. An encoding tracker cannot read leaves no body."""
    if encoding in ("identity", ""):
        return raw, True
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}.get(encoding)
    if wbits is None:
        return b"", False
    try:
        decompressor = zlib.decompressobj(wbits)
        body = decompressor.decompress(raw, ANSWER_CAP + 1)
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
