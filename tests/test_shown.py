"""What leaves tracker's hands, without a server: server text made plain, credentials masked in every form."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus

import pytest
from helpers.plain import ESCAPES, assert_plain
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tracker.config import InfluxSettings
from tracker.redact import display_url, masked_url, outward, printable, url_problem, without_secret_tail
from tracker.sending.sinks import error_for_status, retry_after_seconds, server_reason
from tracker.sending.sinks.answers import Answer, describe

body_text = st.lists(st.sampled_from(ESCAPES) | st.text(max_size=8), max_size=30).map("".join)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(body=body_text, status=st.sampled_from([200, 302, 400, 401, 404, 413, 429, 500, 503]),
       as_json=st.booleans(), reason=body_text)
@example(body="\x1b]0;title\x07\x1b[2J\u202egnp.exe", status=400, as_json=True, reason="OK")
@example(body="A://\x1b[31m\x1b]0;pwned\x07", status=302, as_json=False, reason="")  # a Location urljoin refuses
def test_whatever_a_server_says_is_shown_as_plain_text(body, status, as_json, reason):
    settings_ = InfluxSettings(url="http://127.0.0.1:8086", token="user:Pa55word-9")
    text = json.dumps({"error": body}) if as_json else body
    error = error_for_status(settings_, status, server_reason(text, "fallback", settings_), "0", body)
    assert_plain(str(error))
    assert len(str(error)) < 1000
    answer = Answer(status, reason, {"Content-Type": body[:50]}, text.encode("utf-8", "surrogatepass"), True)
    assert_plain(describe(answer, settings_))
    assert len(describe(answer, settings_)) < 400


def test_escape_sequences_go_whole_and_the_text_around_them_stays():
    assert printable("a\x1b[1;31mred\x1b[0m b") == "a red b"
    assert printable("x\x1b]0;new title\x07y\x1b]8;;http://evil\x1b\\z") == "x y z"
    assert printable("evil\u202etxt.exe\u2066 \x00\x85 done\r\nnext") == "evil txt.exe done next"
    assert printable("unterminated \x1b]0;title to the end") == "unterminated"


ODD = ["%", "@", ":", "/", "?", "#", "&", "=", "+", " ", '"', "'", "\\", "<", ">", "é", "😀", "\u00a0", "\x1b"]
credential = st.lists(st.sampled_from(ODD) | st.characters(min_codepoint=33, max_codepoint=0x2FFF,
                                                           blacklist_categories=("Cc", "Cs")),
                      min_size=8, max_size=24).map("".join).filter(lambda text: len(set(text)) >= 4)


def leaks(*secrets: str) -> set[str]:
    """How these could come back from a server: in clear, percent-encoded, as Basic, JSON- or HTML-escaped."""
    found: set[str] = set()
    for secret in secrets:
        basic = base64.b64encode(secret.encode()).decode()
        for form in (secret, quote(secret, safe=""), quote_plus(secret), basic, quote(basic, safe=""),
                     json.dumps(secret)[1:-1], html.escape(secret), html.escape(secret, quote=False)):
            found |= {form, re.sub(r"%[0-9A-F]{2}", lambda match: match[0].lower(), form)}
    return found


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@example(user="%%%%%@:0", password="%%%%%@:0", query_secret="\x1bX%%%%%@", token=None, noise="", cut=0)
@example(user="%%%%%@:/", password="%%%%%@:/", query_secret="%%%%%0A@", token=None, noise="", cut=0)
@given(user=credential, password=credential, query_secret=credential, token=st.none() | credential,
       noise=body_text, cut=st.integers(0, 40))
def test_no_form_of_a_credential_survives_outward(user, password, query_secret, token, noise, cut):
    url = (f"http://{quote(user, safe='')}:{quote(password, safe='')}@influx.example:8086"
           f"?u={quote(user, safe='')}&p={quote_plus(query_secret)}")
    settings_ = InfluxSettings(url=url, token=token)
    secrets = [password, f"{user}:{password}", query_secret] + ([token] if token else [])
    forms = leaks(*secrets)
    echoed = noise.join(sorted(forms))
    shown = outward(echoed, settings_)
    for form in forms:
        # A secret that is all escape sequence prints as nothing: nothing of it can show.
        assert not printable(form) or printable(form) not in shown
    # A body read only in part may end inside a secret: that beginning goes too.
    partial = "x " + password[:max(1, len(password) - 1 - cut % len(password))]
    assert not without_secret_tail(partial, settings_).endswith(partial[2:])


def test_urls_are_shown_without_credentials_and_ambiguous_ones_refused():
    url = "http://admin:s%2Fcret@influx.example:8086/?u=admin&p=pw&db=x#frag"
    assert display_url(url) == "http://influx.example:8086"
    assert masked_url(url) == "http://(hidden)@influx.example:8086/?u=(hidden)&p=(hidden)&db=(hidden)"
    for ambiguous in ("http://admin:s/cret@influx.example", "http://admin:12?x@influx.example",
                      "http://admin:12#x@influx.example", "http://[::1"):
        assert url_problem(ambiguous) and "cret" not in display_url(ambiguous) + masked_url(ambiguous)
        assert "12" not in display_url(ambiguous)


def test_settings_never_show_the_url_in_their_repr():
    settings_ = InfluxSettings(url="http://admin:s3cret-pw@influx.example:8086", token="user:t0ken-pw")
    assert "s3cret-pw" not in repr(settings_) and "t0ken-pw" not in repr(settings_)


@settings(max_examples=300, deadline=None)
@given(header=st.text(max_size=40) | st.sampled_from([
    "0", "-5", "nan", "inf", "1e999", "Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 99 Foo 2015 99:99:99 GMT",
    "Mon, 1 Jan 0001 00:00:00 GMT"]))
def test_any_retry_after_is_a_pause_of_zero_or_more_seconds_or_none(header):
    seconds = retry_after_seconds(header)
    assert seconds is None or seconds >= 0
