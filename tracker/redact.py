"""What may leave tracker's hands: text fit for a terminal, a log or a file, with every form of the credentials masked.

`outward(text, settings)` is the one door: every message about sending, every reason a server gave, and every
status line pass through it before they are printed, logged, or stored in the outbox or status.json. A server
may echo what it received (the Authorization header, the query string), so the credentials count in every form
a request or a server could put them in: in clear, percent-encoded, base64 (Basic), JSON- and HTML-escaped.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re
import unicodedata
from typing import Protocol
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

# What stands for a secret in a message.
MASK = "(hidden)"
# Query parameters of influx.url that carry credentials (tracker sends none of the query; it may still leak).
SECRET_PARAMETERS = frozenset({"u", "p", "user", "username", "password", "pass", "pwd", "token", "auth",
                               "authorization", "key", "apikey", "api_key", "access_token", "secret"})

# Terminal escape sequences: CSI (ESC [ or 0x9b) ... final byte; OSC, DCS, SOS, PM, APC (ESC ] P X ^ _, or their
# 8-bit forms) up to BEL or ST, or to the end when never terminated; any other ESC sequence.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[\x20-\x3f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?",
    re.DOTALL)
# Unicode categories never shown: controls, format characters (bidi overrides, zero-width), surrogates, private
# use, unassigned, line and paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class Credentials(Protocol):
    """Where requests go and what they authenticate with: the InfluxDB settings (config.InfluxSettings), or any
    other holder of a URL and a token."""

    @property
    def url(self) -> str | None: ...

    @property
    def token(self) -> str | None: ...


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control, format or bidi characters, on one line."""
    text = _ESCAPES.sub(" ", text)
    kept = "".join(" " if unicodedata.category(char) in _HIDDEN_CATEGORIES else char for char in text)
    return " ".join(kept.split())


def outward(text: str, settings: Credentials | None, limit: int | None = None) -> str:
    """`text` fit to show or store: printable, every form of the settings' credentials masked, at most `limit`
    characters (cut only after masking, so no cut can leave part of a secret behind a mask)."""
    forms = secret_forms(settings.token, settings.url) if settings is not None else ()
    text = _mask(printable(_mask(text, forms)), forms)
    return text if limit is None or len(text) <= limit else text[:limit - 1].rstrip() + "…"


def without_secret_tail(text: str, settings: Credentials | None) -> str:
    """`text` that was cut off (a server's answer read only in part), without a secret's beginning at its end."""
    for form in secret_forms(settings.token, settings.url) if settings is not None else ():
        for length in range(min(len(form) - 1, len(text)), 0, -1):
            if text.endswith(form[:length]):
                text = text[:-length]
                break
    return text


def _mask(text: str, forms: tuple[str, ...]) -> str:
    for form in forms:  # longest first, so a secret inside a longer one goes with it
        text = text.replace(form, MASK)
    return text


@functools.lru_cache(maxsize=64)
def secret_forms(token: str | None, url: str | None) -> tuple[str, ...]:
    """The credentials of the settings (the token; user and password in influx.url; credentials in its query
    string), each as written and decoded, in every encoding a request or a server's echo could give them."""
    plain: set[str] = set()
    if token:
        plain.add(token)
        plain.add(token.partition(":")[2])
    userinfo = userinfo_of(url)
    if userinfo:
        user, _, password = userinfo.partition(":")
        plain |= {userinfo, password, unquote(password), f"{unquote(user)}:{unquote(password)}"}
    for _name, value in query_credentials(url):
        plain.add(value)
    plain |= set(_raw_query_values(url))
    plain.discard("")
    # What a request or an echo makes of them: Basic (base64), then any of these escaped or percent-encoded.
    encoded = set(plain)
    for secret in plain:
        raw = secret.encode("utf-8", "surrogatepass")
        for form in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            encoded |= {form.decode(), form.decode().rstrip("=")}
    forms: set[str] = set()
    for secret in encoded:
        percent = {quote(secret, safe=""), quote(secret), quote_plus(secret)}
        escaped = {html.escape(secret), html.escape(secret, quote=False), json.dumps(secret)[1:-1],
                   json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1]}
        forms |= {secret, printable(secret)} | escaped | percent
    # A server may write percent escapes in lower case, those of an encoding or any the secret itself holds.
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda match: match[0].lower(), form) for form in forms}
    forms.discard("")
    return tuple(sorted(forms, key=len, reverse=True))


def credentials(settings: Credentials) -> str | None:
    """What the requests authenticate with: influx.token; else "user:password" from the URL, its user info or
    its u= and p= (as InfluxDB 1.x reads them); else its token=. None: no credentials."""
    if settings.token:
        return settings.token
    userinfo = userinfo_of(settings.url)
    if userinfo:
        user, _, password = userinfo.partition(":")
        return f"{unquote(user)}:{unquote(password)}"
    query = {name.lower(): value for name, value in query_credentials(settings.url)}
    if "u" in query and "p" in query:
        return f"{query['u']}:{query['p']}"
    return query.get("token")


def userinfo_of(url: str | None) -> str:
    """The "user:password" part of a URL as written (percent-encoded), "" when there is none."""
    if not url:
        return ""
    try:
        return urlsplit(url).netloc.rpartition("@")[0]
    except ValueError:
        return ""


def query_credentials(url: str | None) -> list[tuple[str, str]]:
    """The (name, value) pairs of the URL's query string that carry credentials, values decoded."""
    if not url:
        return []
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return [(name, value) for name, value in parse_qsl(query, keep_blank_values=False)
            if name.lower() in SECRET_PARAMETERS]


def _raw_query_values(url: str | None) -> list[str]:
    """The values of the credential parameters as written in the URL, still percent-encoded."""
    try:
        query = urlsplit(url or "").query
    except ValueError:
        return []
    pairs = (item.partition("=") for item in query.split("&"))
    return [value for name, _, value in pairs if unquote(name).lower() in SECRET_PARAMETERS and value]


def url_problem(url: str) -> str | None:
    """Why `url` cannot be used as influx.url without a risk of sending or showing its credentials wrongly, in
    words that do not repeat it; None when it is fine."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        return ("is not a valid URL (if it holds a user name or password, write / ? # @ in them as %2F %3F %23"
                " %40)")
    if "@" in parts.path + parts.query + parts.fragment:
        return "has an @ after the host name: write / ? # @ in a user name or password as %2F %3F %23 %40"
    return None


def base_url(url: str | None) -> str:
    """The server's address: scheme, host, port and path, without user:password@, query or fragment."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def display_url(url: str | None) -> str:
    """The URL without user:password@, query or fragment, printable: safe to print."""
    if not url:
        return "(not configured)"
    if url_problem(url):
        return "(not a valid URL)"
    return printable(base_url(url))


def masked_url(url: str) -> str:
    """The URL as `tracker config show` prints it: user:password@ and every query value masked."""
    if url_problem(url):
        return "(not a valid URL)"
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    query = "&".join(f"{name}={MASK}" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return printable(urlunsplit((parts.scheme, netloc, parts.path, query, "")))
