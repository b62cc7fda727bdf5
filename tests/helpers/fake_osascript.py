"""A fake `osascript` for notifications on macOS, put first on PATH: it takes only what tracker should run,
`osascript -e 'display notification "…" with title "…"'`, reads the two string literals as AppleScript does and
records them; anything else (another argument, a literal broken by bad escaping) fails with a syntax error,
as osascript would. FAKE_OSASCRIPT_MODE=hang makes it never end, =fail makes it fail."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

# AppleScript's escapes in a string literal; a backslash before anything else does not compile.
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_CONTROLS = re.compile("[\x00-\x1f\x7f]")


class ScriptError(Exception):
    """What osascript says of a script that does not compile."""


def read_string_literal(script: str, start: int) -> tuple[str, int]:
    """The text of the literal opening at `start` (a quote), and where the script goes on after it."""
    if script[start:start + 1] != '"':
        raise ScriptError(f"{start}:{start + 1}: syntax error: Expected string but found something else. (-2741)")
    text, position = [], start + 1
    while position < len(script):
        character = script[position]
        if character == '"':
            return "".join(text), position + 1
        if _CONTROLS.match(character):  # tracker escapes line breaks and tabs; nothing else reaches a literal
            raise ScriptError(f"{position}:{position + 1}: control character {character!r} in a string literal")
        if character == "\\":
            escaped = script[position + 1:position + 2]
            if escaped not in _ESCAPES:
                raise ScriptError(f"{position}:{position + 2}: syntax error: unknown escape \\{escaped}. (-2741)")
            text.append(_ESCAPES[escaped])
            position += 2
            continue
        text.append(character)
        position += 1
    raise ScriptError(f"{start}:{len(script)}: syntax error: Expected “\"” but found end of script. (-2741)")


def parse_display_notification(script: str) -> tuple[str, str]:
    """(body, title) of `display notification "body" with title "title"`; ScriptError for anything else."""
    command = "display notification "
    if not script.startswith(command):
        raise ScriptError("0:1: syntax error: not a display notification command. (-2741)")
    body, position = read_string_literal(script, len(command))
    if not script.startswith(" with title ", position):
        raise ScriptError(f"{position}:{position + 1}: syntax error: Expected end of line. (-2741)")
    title, position = read_string_literal(script, position + len(" with title "))
    if position != len(script):
        raise ScriptError(f"{position}:{len(script)}: syntax error: Expected end of line but found more. (-2741)")
    return body, title


def main(arguments: list[str]) -> int:
    mode = os.environ.get("FAKE_OSASCRIPT_MODE", "ok")
    if mode == "hang":
        time.sleep(600)
    if mode == "fail":
        print("execution error: Notifications are turned off for Script Editor. (-1)", file=sys.stderr)
        return 1
    if len(arguments) != 2 or arguments[0] != "-e":
        print(f"osascript: unexpected arguments {arguments!r}", file=sys.stderr)
        return 1
    try:
        body, title = parse_display_notification(arguments[1])
    except ScriptError as failure:
        print(failure, file=sys.stderr)
        return 1
    with Path(os.environ["FAKE_OSASCRIPT_LOG"]).open("a", encoding="utf-8") as log:
        log.write(json.dumps({"title": title, "body": body}) + "\n")
    return 0


def install(bin_directory: Path) -> Path:
    """Put the fake `osascript` in `bin_directory`; it runs with this Python."""
    bin_directory.mkdir(parents=True, exist_ok=True)
    program = bin_directory / "osascript"
    tests_directory = Path(__file__).resolve().parent.parent
    program.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(tests_directory)!r})\n"
                       "from helpers.fake_osascript import main\nsys.exit(main(sys.argv[1:]))\n")
    program.chmod(0o755)
    return program


def shown(log: Path) -> list[dict[str, str]]:
    """What the fake showed, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
