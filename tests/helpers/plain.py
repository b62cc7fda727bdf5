"""What "plain text" means: no escape sequence, no hidden or control character; and the ones to try."""

from __future__ import annotations

import unicodedata

HIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
ESCAPES = ["\x1b[31m", "\x1b]0;pwned\x07", "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "\x9b2J", "\x1bP+q\x1b\\",
           "\x1b[?1049h", "\x1bc", "\x07", "\x08", "\r", "\u202e", "\u2066", "\u200f", "\x00", "\x85", "\ud800",
           "\x1b]52;c;aGVsbG8=\x07", "\x1b["]


def assert_plain(text: str) -> None:
    assert "\x1b" not in text and all(unicodedata.category(char) not in HIDDEN for char in text), repr(text)
