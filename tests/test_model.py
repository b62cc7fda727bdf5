"""The activity of a sample: the site of a web page, otherwise the app."""

from datetime import datetime, timezone

import pytest

from tracker.model import Sample, url_host


@pytest.mark.parametrize(("url", "host"), [
    ("https://www.GitHub.com/pulls", "github.com"),
    ("github.com/x", "github.com"),
    ("http://localhost:8080/x", "localhost"),
    ("HTTPS://Example.COM./a?b=c", "example.com"),
    ("about:blank", None),
    ("chrome://settings", None),
    ("file:///home/me/notes.html", None),
    ("mailto:someone@example.com", None),
    ("", None),
    (None, None),
])
def test_url_host(url, host):
    assert url_host(url) == host


def test_activity_is_the_site_for_web_pages_and_the_app_otherwise():
    now = datetime.now(timezone.utc)
    assert Sample(now, "Firefox", url="https://news.ycombinator.com/").activity == "news.ycombinator.com"
    assert Sample(now, "Firefox", url="about:newtab").activity == "Firefox"
    assert Sample(now, "Code").activity == "Code"
