"""Matching in window titles and domains: RE2 title regexes that no title can make slow, and domains as rules
and settings spell them.

Used by the categories (classify.py, rulesfile.py) and the privacy settings alike, so it imports nothing of
tracker's.
"""

from __future__ import annotations

from collections.abc import Iterator

# What all title regexes of one file (or of the exclude settings) may cost together, in RE2 program
# instructions. Searching a 2,048-character title costs up to ~3.5 µs per instruction (measured here, 2 cores),
# so a sample's title rules take at most ~0.2 s whatever they are; the bundled file's title rules take ~1,000.
TITLE_REGEX_BUDGET = 50_000


class TitleRegexError(ValueError):
    """A title regex that cannot be used; the message is one sentence about the regex, without file or line."""


class TitleRegex:
    """A case-insensitive regex searched in window titles, in RE2: its time grows with the title's length only,
    so no rule and no title (a web page chooses its own) can hang the 1 Hz loop or keep Ctrl-C from working.
    Python's re backtracks: '(a+)+$' on forty a's and a '!' runs for hours, with signals held off."""

    def __init__(self, pattern: str) -> None:
        import re2  # only once a title is matched or a rule checked: `tracker --help` needs none of it

        options = re2.Options()
        options.case_sensitive = False
        options.log_errors = False  # RE2 logs to stderr by default; the user gets our one sentence instead
        try:
            self._compiled = re2.compile(pattern, options)
        except re2.error as error:
            raise TitleRegexError(_title_regex_problem(pattern, error)) from None
        self.pattern = pattern
        self.cost: int = self._compiled.programsize  # see TITLE_REGEX_BUDGET

    def search(self, title: str) -> bool:
        try:
            return self._compiled.search(title) is not None
        except UnicodeEncodeError:  # a lone surrogate, which RE2's UTF-8 cannot carry: matched as U+FFFD
            return self._compiled.search(title.encode("utf-8", "replace").decode("utf-8")) is not None


def compile_title_regexes(patterns: tuple[str, ...]) -> tuple[TitleRegex, ...]:
    """The regexes compiled; TitleRegexError for the first that RE2 refuses, or the one that goes over the budget."""
    compiled: list[TitleRegex] = []
    cost = 0
    for pattern in patterns:
        compiled.append(TitleRegex(pattern))
        cost += compiled[-1].cost
        if cost > TITLE_REGEX_BUDGET:
            raise TitleRegexError(f"regex '{pattern}' makes the title regexes too large together to search "
                                  "every title quickly; use fewer or simpler ones")
    return tuple(compiled)


def _title_regex_problem(pattern: str, error: Exception) -> str:
    """One sentence for what RE2 refused in `pattern`."""
    detail = error.args[0] if error.args else str(error)
    message = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    _, _, fragment = message.partition(": ")
    unsupported = {"(?=": "a lookahead (?=…)", "(?!": "a negative lookahead (?!…)",
                   "(?<=": "a lookbehind (?<=…)", "(?<!": "a negative lookbehind (?<!…)",
                   "(?P=": "a backreference (?P=…)", "(?>": "an atomic group (?>…)"}
    what = next((name for prefix, name in unsupported.items() if fragment.startswith(prefix)), None)
    if what is None and message.startswith("invalid escape sequence") and fragment[1:2].isdigit():
        what = f"a backreference ({fragment})"
    if what is None and fragment == "(?P" and "(?P=" in pattern:
        what = "a backreference (?P=…)"
    if what is not None:
        return (f"regex '{pattern}' uses {what}, which tracker's regex engine (RE2, chosen because no title "
                "can make it hang) does not support; rewrite it without")
    if fragment == "\\Z":
        return f"regex '{pattern}' uses \\Z, which RE2 spells \\z (the end of the title); write \\z"
    if message.startswith("invalid repetition size"):
        return f"regex '{pattern}' repeats more than 1000 times ({fragment}); use a smaller count"
    if message.startswith("pattern too large"):
        return f"regex '{pattern}' is too large to search every title quickly; make it simpler or shorter"
    what, _, fragment = message.partition(": ")
    where = f" in '{fragment}'" if fragment else ""
    return f"regex '{pattern}' is invalid: {what}{where}"


def host_suffixes(host: str) -> Iterator[str]:
    """The host, then each domain it belongs to, longest first: a.b.com, b.com, com."""
    yield host
    dot = host.find(".")
    while dot != -1:
        yield host[dot + 1 :]
        dot = host.find(".", dot + 1)


def normalise_domain(text: str) -> str:
    """A domain rule as matched against url_host(): lower-case, no 'www.'; ValueError when it is no domain."""
    domain = text.strip().lower().rstrip(".")
    domain = domain.removeprefix("www.")
    if "*" in domain:
        raise ValueError(f"domain '{text}' has a wildcard, but domains match their subdomains already: "
                         f"write '{domain.lstrip('*.')}'")
    if not domain or domain.startswith(".") or ".." in domain or any(c in domain for c in "/:@?#\\ \t"):
        raise ValueError(f"domain '{text}' should be a bare host name like example.com")
    return domain


