"""Privacy rules: what is left of a sample once it is classified, before it is stored or sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.categories.privacy import PRIVATE_TITLE_MARKERS, Privacy, seen_private
from tracker.config import PrivacySettings
from tracker.model import Sample, utc_now

TITLE = "Quarterly report.xlsx"
URL = "https://bank.example.com/accounts"


def sample(app: str = "Safari", title: str | None = TITLE, url: str | None = URL, private: bool = False) -> Sample:
    return Sample(time=utc_now(), app=app, title=title, url=url, private=private)


def details(privacy: Privacy, kept: Sample) -> tuple[str, str | None, str | None]:
    result = privacy.apply(kept)
    return (result.app, result.title, result.url)


def test_by_default_a_sample_keeps_title_and_url() -> None:
    assert details(Privacy(PrivacySettings()), sample()) == ("Safari", TITLE, URL)


def test_an_excluded_app_keeps_its_name_only_whatever_its_case() -> None:
    privacy = Privacy(PrivacySettings(exclude_apps=("1password", "KeePassXC")))
    assert details(privacy, sample("1Password")) == ("1Password", None, None)
    assert details(privacy, sample("keepassxc")) == ("keepassxc", None, None)
    assert details(privacy, sample("1Password 7")) == ("1Password 7", TITLE, URL)


def test_an_excluded_domain_covers_its_subdomains_but_not_lookalikes() -> None:
    privacy = Privacy(PrivacySettings(exclude_domains=("example.com", "www.Health.org")))
    assert details(privacy, sample()) == ("Safari", None, None)
    assert details(privacy, sample(url="https://example.com/")) == ("Safari", None, None)
    assert details(privacy, sample(url="https://health.org/x")) == ("Safari", None, None)
    assert details(privacy, sample(url="https://notexample.com/")) == ("Safari", TITLE, "https://notexample.com/")


def test_a_title_matching_an_excluded_regex_loses_title_and_url() -> None:
    privacy = Privacy(PrivacySettings(exclude_titles=(r"\breport\b", "diagnosis")))
    assert details(privacy, sample()) == ("Safari", None, None)
    assert details(privacy, sample(title="My DIAGNOSIS")) == ("Safari", None, None)
    assert details(privacy, sample(title="Reporter's notebook")) == ("Safari", "Reporter's notebook", URL)


def test_with_titles_off_titles_go_but_urls_stay_unless_excluded() -> None:
    privacy = Privacy(PrivacySettings(titles=False, exclude_domains=("secret.org",)))
    assert details(privacy, sample()) == ("Safari", None, URL)
    assert details(privacy, sample(url="https://secret.org/")) == ("Safari", None, None)


def test_a_private_window_never_keeps_title_or_url() -> None:
    assert details(Privacy(PrivacySettings()), sample(private=True)) == ("Safari", None, None)


def test_an_invalid_regex_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"exclude_titles: regex '\(unclosed' is invalid: missing \)"):
        Privacy(PrivacySettings(exclude_titles=("fine", "(unclosed")))


def test_a_url_instead_of_a_domain_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"exclude_domains: domain 'https://x\.org/' should be a bare host"):
        Privacy(PrivacySettings(exclude_domains=("https://x.org/",)))


@given(before=st.text(max_size=30), marker=st.sampled_from(PRIVATE_TITLE_MARKERS), after=st.text(max_size=30),
       app=st.text(min_size=1, max_size=20), upper=st.booleans())
def test_a_private_marker_anywhere_in_any_app_s_title_keeps_the_app_only(
        before: str, marker: str, after: str, app: str, upper: bool) -> None:
    title = before + (marker.upper() if upper else marker.title()) + after
    sample = Sample(utc_now(), app, title, "https://example.com/secret")
    seen = seen_private(sample)
    assert (seen.app, seen.title, seen.url, seen.private) == (app, None, None, True)
    kept = Privacy(PrivacySettings()).apply(sample)
    assert (kept.title, kept.url) == (None, None)


@pytest.mark.parametrize(("app", "title"), [
    ("Firefox", "Secret search — Mozilla Firefox Private Browsing"),
    ("Google-chrome", "Secret page - Google Chrome (Incognito)"),
    ("Microsoft-edge", "[InPrivate] Secret page - Microsoft​ Edge"),
    ("Brave-browser", "Secret page - Brave (Private)"),
    ("Tor Browser", "Secret onion — Tor Browser"),
    ("Mullvad Browser", "Secret page — Mullvad Browser"),
    ("SomeNewBrowser", "Secret page (incognito)"),
    ("tor-browser", "Secret onion"),
    ("Brave-browser", "Secret page - Brave (Private Window with Tor)"),
    ("Firefox", "Secret – Mozilla Firefox (Navigation privée)"),
    ("Firefox", "Secret – Mozilla Firefox Privater Modus"),
    ("Firefox", "Secret — Mozilla Firefox Navegación privada"),
    ("Google-chrome", "Secret - Google Chrome (Incógnito)"),
    ("Google-chrome", "Secret - Google Chrome (Inkognito)"),
    ("Opera", "Secret - Opera (Private)"),
    ("DuckDuckGo", "Secret — Fire Window"),
])
def test_private_windows_of_known_and_unknown_browsers_keep_the_app_only(app: str, title: str) -> None:
    seen = seen_private(Sample(utc_now(), app, title, None))
    assert (seen.title, seen.private) == (None, True)


# What may come between a marker's letters without hiding it: accents, zero-width and direction characters.
_HIDERS = st.sampled_from(["\u0301", "\u0308", "\u200b", "\u200d", "\u2060", "\u200e", "\ufeff", "\u00ad"])


@given(marker=st.sampled_from(PRIVATE_TITLE_MARKERS), data=st.data())
def test_a_marker_with_accents_or_invisible_characters_between_its_letters_is_still_seen(
        marker: str, data: st.DataObject) -> None:
    hidden = "".join(char + data.draw(st.lists(_HIDERS, max_size=2).map("".join)) for char in marker)
    spaced = hidden.replace(" ", data.draw(st.sampled_from([" ", "\u00a0", "  ", "\t"])))
    assert seen_private(Sample(utc_now(), "Browser", f"Secret — {spaced}", None)).private


@pytest.mark.parametrize("title", ["Privacy policy — Mozilla Firefox", "Private equity funds - Google Search",
                                   "Cognitive science - Wikipedia", "Windows 11 settings", "firewall rules"])
def test_titles_near_a_marker_but_without_one_stay(title: str) -> None:
    assert seen_private(Sample(utc_now(), "Firefox", title, None)).title == title


def test_an_ordinary_window_stays_as_it_is() -> None:
    sample = Sample(utc_now(), "Firefox", "Privacy policy — Mozilla Firefox", "https://example.com/privacy")
    assert seen_private(sample) == sample
