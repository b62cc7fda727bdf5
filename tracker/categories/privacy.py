"""Privacy rules: what is dropped from a sample once it is classified, before it is stored or sent."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import replace

from tracker.config import PrivacySettings
from tracker.matching import TitleRegexError, compile_title_regexes, host_suffixes, normalise_domain
from tracker.model import Sample, url_host

# What browsers put in a private window's title, compared after folding (see `_folded`): Firefox and its kin
# "Private Browsing" (German "Privater Modus", French "Navigation privée", Spanish "Navegación privada");
# Chrome, Chromium and Vivaldi "Incognito" ("Incógnito", German "Inkognito"); Brave and Opera "(Private)" or
# "Private Window" (Brave's "Private Window with Tor" too); Edge "InPrivate"; DuckDuckGo "Fire Window". Looked
# for in every title of every app and source, known browser or not: a page in a normal window titled
# "Private Browsing explained" loses its title too, which is the safe side.
PRIVATE_TITLE_MARKERS = ("private browsing", "privater modus", "navigation privee", "navegacion privada",
                         "incognito", "inkognito", "inprivate", "(private)", "private window", "fire window")
# Browsers whose every window is private, by their app name as X11, macOS and Windows give it, folded and
# without spaces, hyphens or dots ("Tor Browser", "tor-browser", "TorBrowser").
ALWAYS_PRIVATE_APPS = frozenset({"torbrowser", "mullvadbrowser"})


# Left out before comparing: combining accents (after NFKD, "ó" is "o" and one of them) and invisible format
# characters (soft hyphen, zero-width spaces and joiners, direction marks, BOM; Edge writes a zero-width space
# into its own name). A regex rather than a walk over unicodedata categories: 4 µs a title, not 17.
_INVISIBLE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
                        "\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+")


def _folded(text: str) -> str:
    """Text as markers are compared: case and accents folded ("Incógnito" -> "incognito"), invisible
    characters dropped and every run of spaces one space."""
    return " ".join(_INVISIBLE.sub("", unicodedata.normalize("NFKD", text)).casefold().split())


# A run reads the same few windows again and again: each title and app is folded once (an import, a year of
# them, keeps only the latest in the cache).
@functools.lru_cache(maxsize=256)
def has_private_marker(title: str | None) -> bool:
    folded = _folded(title or "")
    return any(marker in folded for marker in PRIVATE_TITLE_MARKERS)


@functools.lru_cache(maxsize=256)
def is_always_private_app(app: str) -> bool:
    return "".join(char for char in _folded(app) if char.isalnum()) in ALWAYS_PRIVATE_APPS


def seen_private(sample: Sample) -> Sample:
    """The sample as a private one (app only, classified by its app) when its title or app says it comes from a
    private window, whichever source read it; otherwise as it is."""
    if sample.private:
        return sample
    if has_private_marker(sample.title) or is_always_private_app(sample.app):
        return replace(sample.without_details(), private=True)
    return sample


class Privacy:
    """Applies the privacy settings to samples.

    - A sample whose app is in exclude_apps (case-insensitive, exact), whose URL's host is in
      exclude_domains (a domain and its subdomains, as in categories.yaml), or whose title matches an
      exclude_titles regex (case-insensitive search, in RE2 like title rules) keeps its app only: no title,
      no URL.
    - With titles off, every title is dropped; URLs are still kept unless the domain is excluded.
    - Private (incognito) samples always come out with no title and no URL, those a source marked and those
      whose title or app says so (`seen_private`).

    Invalid settings (a bad regex or domain) raise ValueError with a message naming the entry.
    """

    def __init__(self, settings: PrivacySettings) -> None:
        self._keep_titles = settings.titles
        self._apps = frozenset(app.strip().lower() for app in settings.exclude_apps)
        try:
            self._domains = frozenset(normalise_domain(domain) for domain in settings.exclude_domains)
        except ValueError as error:
            raise ValueError(f"privacy exclude_domains: {error}") from error
        try:
            self._titles = compile_title_regexes(settings.exclude_titles)
        except TitleRegexError as error:
            raise ValueError(f"privacy exclude_titles: {error}") from error

    def apply(self, sample: Sample) -> Sample:
        if seen_private(sample).private or self.excludes(sample):
            return sample.without_details()
        if not self._keep_titles and sample.title is not None:
            return replace(sample, title=None)
        return sample

    def excludes(self, sample: Sample) -> bool:
        """True when a rule says this sample keeps its app only."""
        if sample.app.lower() in self._apps:
            return True
        host = url_host(sample.url)
        if host and any(suffix in self._domains for suffix in host_suffixes(host)):
            return True
        title = sample.title
        if not title:
            return False
        return any(pattern.search(title) for pattern in self._titles)

