"""Hostile rules and rules files: regexes built to backtrack, files built to expand or to be huge, odd paths,
names with markup, and `tracker categories edit` with odd editors and edits. Each is refused with one
sentence naming the file (and line), or handled, and recording never stops because of it."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers.desktop_run import TrackerOnDesktop, points, points_after_input
from helpers.servers import Desktop, InfluxDB1, wait_until
from helpers.terminal import StartTracker, ended
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tracker import paths
from tracker.categories.files import MAX_CATEGORIES_BYTES, decode_categories, load_categories, parse_categories
from tracker.categories.privacy import Privacy
from tracker.categories.rules import CategoriesError
from tracker.commands import cli
from tracker.config import PrivacySettings
from tracker.matching import TITLE_REGEX_BUDGET, TitleRegex, TitleRegexError
from tracker.model import Record, Sample, utc_now
from tracker.recording.runner import Details, RunView
from tracker.ui.live import LiveView

# Far above what any search takes (milliseconds), far below what a backtracking engine takes on these (hours);
# counted in CPU seconds of this process, so that a busy machine does not stretch it.
GENEROUS_SECONDS = 5.0
EVIL_PATTERNS = ["(a+)+$", "(a|a)*b", "(.*)*x", "(a|aa)+$", r"^(\w+\s?)+$", "(x+x+)+y", ".*.*.*.*.*=x",
                 "^(([a-z])+.)+[A-Z]([a-z])+$"]
EVIL_TITLES = ["a" * 2048 + "!", "x" * 2047 + "!", "ab " * 682 + "!", "=" * 2048]


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def one_sentence(text: str) -> bool:
    """A message a user can read: one line, no traceback."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return len(lines) == 1 and "Traceback" not in text


def users_file(text: str | bytes) -> Path:
    file = paths.user_categories_file()
    file.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        file.write_bytes(text)
    else:
        file.write_text(text, encoding="utf-8")
    return file


def title_rules(*patterns: str) -> str:
    listed = "".join(f"      - '{pattern}'\n" for pattern in patterns)
    return f"categories:\n  Evil:\n    score: -2\n    titles:\n{listed}"


def slowest_search(regex: TitleRegex, titles: list[str]) -> float:
    slowest = 0.0
    for title in titles:
        started = time.process_time()
        regex.search(title)
        slowest = max(slowest, time.process_time() - started)
    return slowest


# -- regexes built to backtrack ---------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", EVIL_PATTERNS)
def test_a_backtracking_title_rule_classifies_an_adversarial_title_at_once(pattern: str) -> None:
    rules = parse_categories(title_rules(pattern, "never"), Path("categories.yaml"))
    started = time.process_time()
    matches = [rules.classify(Sample(time=utc_now(), app="Browser", title=title)) for title in EVIL_TITLES]
    assert time.process_time() - started < GENEROUS_SECONDS
    # Still a regex: it matches what it describes.
    assert [match.category for match in matches] == [
        "Evil" if TitleRegex(pattern).search(title) else "Uncategorized" for title in EVIL_TITLES]


def test_a_backtracking_exclude_pattern_decides_at_once_and_rightly() -> None:
    privacy = Privacy(PrivacySettings(exclude_titles=("(a+)+$", "(x+x+)+y")))
    started = time.process_time()
    near_miss = privacy.apply(Sample(time=utc_now(), app="Browser", title="a" * 2047 + "!", url="https://a.example/"))
    hit = privacy.apply(Sample(time=utc_now(), app="Browser", title="a" * 2048, url="https://a.example/"))
    assert time.process_time() - started < GENEROUS_SECONDS
    assert near_miss.title == "a" * 2047 + "!" and near_miss.url == "https://a.example/"
    assert hit.title is None and hit.url is None


# Nested quantifiers over overlapping alternatives: the shapes that make backtracking engines exponential.
_ATOMS = st.sampled_from(["a", "a?", "a*", "a+", ".", ".*", r"\w", r"\s?", "[ab]", "(a|a)", "(a|aa)", "(a|ab)",
                          r"\d*", "[^b]"])
_QUANTIFIERS = st.sampled_from(["*", "+", "?", "{2,}", "{1,5}", "{0,30}", "*?", "+?"])


@st.composite
def nested_quantifiers(draw: st.DrawFn) -> str:
    pattern = draw(_ATOMS)
    for _ in range(draw(st.integers(1, 4))):
        neighbours = draw(st.lists(_ATOMS, max_size=2))
        pattern = f"({''.join([pattern, *neighbours])}){draw(_QUANTIFIERS)}"
    return pattern + draw(st.sampled_from(["", "$", "b", "!", "x$", r"\b"]))


_ADVERSARIAL_TITLES = st.builds(
    lambda unit, count, tail: (unit * count)[:2048] + tail, st.sampled_from(["a", "ab", "aab", "a ", "1", "é"]),
    st.integers(20, 2048), st.sampled_from(["", "!", "b", "\udcff"]))


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=nested_quantifiers(), titles=st.lists(_ADVERSARIAL_TITLES, min_size=1, max_size=3))
def test_nested_quantifiers_either_match_fast_or_are_refused_with_one_sentence(pattern: str,
                                                                                titles: list[str]) -> None:
    try:
        rules = parse_categories(title_rules(pattern), Path("categories.yaml"))
    except CategoriesError as error:
        assert str(error).startswith("categories.yaml, line 5: title regex") and one_sentence(str(error))
        return
    started = time.process_time()
    for title in titles:
        rules.classify(Sample(time=utc_now(), app="Browser", title=title))
    assert time.process_time() - started < GENEROUS_SECONDS


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 1000), nesting=st.integers(1, 4), atom=st.sampled_from(["a", ".", r"\pL", "[a-z]", r"\w"]))
def test_counted_repeats_either_match_fast_or_are_refused_for_size(count: int, nesting: int, atom: str) -> None:
    pattern = atom
    for _ in range(nesting):
        pattern = f"(?:{pattern}){{0,{count}}}"
    pattern += "!x"
    try:
        regex = TitleRegex(pattern)
    except TitleRegexError as error:
        assert str(error).startswith(f"regex '{pattern}'") and one_sentence(str(error))
        return
    assert slowest_search(regex, ["a" * 2048 + "!", "é" * 2048]) < GENEROUS_SECONDS


def test_many_heavy_title_rules_are_refused_at_the_one_that_goes_over_the_budget() -> None:
    heavy = ".{0,1000}.{0,1000}x"
    assert TitleRegex(heavy).cost * 20 > TITLE_REGEX_BUDGET  # else the test proves nothing
    file = users_file(title_rules(*[f"{heavy}{number}" for number in range(20)]))
    result = run("categories", "validate")
    assert result.exit_code == 1 and one_sentence(result.output)
    assert f"{file.name}, line " in result.output and "too large together" in result.output


REFUSED_BY_RE2 = {
    r"(\w)\1": "uses a backreference (\\1)",
    "(?P<x>a)(?P=x)": "uses a backreference (?P=…)",
    "foo(?=bar)": "uses a lookahead (?=…)",
    "(?<!un)done": "uses a negative lookbehind (?<!…)",
    r"end\Z": "uses \\Z, which RE2 spells \\z",
    "a{1001}": "repeats more than 1000 times",
    r"\pL{1000}x": "is too large to search every title quickly",
    "[unclosed": "is invalid: missing ]",
}


@pytest.mark.parametrize(("pattern", "problem"), REFUSED_BY_RE2.items(), ids=list(REFUSED_BY_RE2))
def test_a_rule_re2_cannot_run_is_refused_with_file_line_and_what_to_do(pattern: str, problem: str) -> None:
    users_file(title_rules("fine", pattern))
    result = run("categories", "validate")
    assert result.exit_code == 1 and one_sentence(result.output), result.output
    assert f"categories.yaml, line 6: title regex '{pattern}' {problem}" in result.output


@pytest.mark.parametrize(("pattern", "problem"), REFUSED_BY_RE2.items(), ids=list(REFUSED_BY_RE2))
def test_an_exclude_pattern_re2_cannot_run_stops_the_command_with_one_sentence(pattern: str, problem: str) -> None:
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"exclude:\n  titles: ['{pattern}']\n")
    result = run("config", "show")
    assert result.exit_code != 0 and one_sentence(result.output), result.output
    assert f"exclude.titles from {config}: regex '{pattern}' {problem}" in result.output


def test_a_title_with_a_lone_surrogate_is_matched_not_a_crash() -> None:
    rules = parse_categories(title_rules("secret", r"\bvim\b"), Path("categories.yaml"))
    assert rules.classify(Sample(time=utc_now(), app="x", title="\udcff vim \ud800")).category == "Evil"
    privacy = Privacy(PrivacySettings(exclude_titles=("secret",)))
    assert privacy.apply(Sample(time=utc_now(), app="x", title="my \udcffSecret")).title is None


# -- a real run: evil rules, titles a web page could choose, and SIGTERM -------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_real_run_with_backtracking_rules_and_evil_titles_keeps_sampling_and_stops_on_a_signal(
        desktop: Desktop, influxdb1: InfluxDB1, influx_database: str, signum: int) -> None:
    # In Python's re, each of these runs for hours on the titles below, and SIGTERM waits for it.
    users_file("categories:\n"
               "  Evil:\n    score: -2\n    titles: ['(a+)+$', '(x+x+)+y']\n"
               "  Plain:\n    score: 1\n    apps: [EvilApp]\n")
    config = paths.config_file()
    config.write_text("exclude:\n  titles: ['(a|aa)+c$']\n")
    near_miss = desktop.open_window("EvilApp", "a" * 300 + "!")  # no rule's title: the app rule decides
    hit = desktop.open_window("EvilApp", "a" * 300)
    desktop.activate(near_miss)
    desktop.touch()
    tracker = TrackerOnDesktop(desktop, influxdb1, influx_database, "--away-after", "1h")
    try:
        def categories_seen() -> set[str]:
            return {point["category"] for point in points_after_input(desktop, influxdb1, influx_database)}

        wait_until(lambda: "Plain" in categories_seen(), 30, "samples of the near miss")
        desktop.activate(hit)
        wait_until(lambda: "Evil" in categories_seen(), 30, "samples of the hit")
        # Still sampling: many more points come, one per interval (0.25 s).
        before = len(points_after_input(desktop, influxdb1, influx_database))
        wait_until(lambda: len(points_after_input(desktop, influxdb1, influx_database)) >= before + 8, 30,
                   "more samples")
    finally:
        asked = time.monotonic()
        code, err = tracker.stop(signum)
        stopped_after = time.monotonic() - asked
        for window in (near_miss, hit):  # the desktop is shared with later tests
            desktop.close_window(window)
    assert code == 0, err
    assert stopped_after < 15  # it stops at once; the margin is for a busy machine
    titles = {(point["category"], point.get("title")) for point in points(influxdb1, influx_database)}
    assert ("Plain", "a" * 300 + "!") in titles and ("Evil", "a" * 300) in titles  # excluded neither


# -- files built to expand, or huge --------------------------------------------------------------------------

LAUGHS = "".join(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]\n" for level in range(1, 10))
ALIASED = {
    "billion laughs at the top": ("l0: &l0 lol\n" + LAUGHS + "categories:\n  Dev:\n    score: 1\n", 1),
    "billion laughs as titles": ("categories:\n  Dev:\n    score: 1\n    titles:\n      - &l0 lol\n"
                                 + "".join(f"      - &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]\n"
                                           for n in range(1, 10)), 6),
    "a category used twice": ("categories:\n  Dev: &dev\n    score: 1\n    titles: [x]\n  Fun: *dev\n", 2),
    "one rule list in every category": (
        "categories:\n  C0:\n    score: 1\n    titles: &titles [" + ", ".join(f"t{n}" for n in range(3000))
        + "]\n" + "".join(f"  C{n}:\n    score: 1\n    titles: *titles\n" for n in range(1, 3000)), 4),
    "a scalar used twice": ("categories:\n  Dev:\n    score: 1\n    apps: [&a Terminal]\n    titles: [*a]\n", 4),
}


@pytest.mark.parametrize(("text", "line"), ALIASED.values(), ids=list(ALIASED))
def test_a_file_built_to_expand_is_refused_at_once_with_one_sentence(text: str, line: int) -> None:
    file = users_file(text)
    started = time.process_time()
    result = run("categories", "validate")
    assert time.process_time() - started < GENEROUS_SECONDS
    assert result.exit_code == 1 and one_sentence(result.output), result.output
    assert f"{file}, line {line}: " in result.output


def test_aliases_are_refused_with_what_to_do() -> None:
    users_file(ALIASED["a category used twice"][0])
    assert "used again through a YAML alias (*); categories files take no aliases, so write the rules out" in run(
        "categories", "validate").output


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.sampled_from(["Dev", "Fun", "[bold]", "&x", "*x", "a: b", "- c"]), min_size=1,
                      max_size=4, unique=True),
       uses=st.lists(st.integers(0, 3), max_size=6), nesting=st.integers(0, 40))
def test_generated_files_with_anchors_aliases_and_nesting_give_rules_or_one_sentence(
        names: list[str], uses: list[int], nesting: int) -> None:
    lines = ["categories:"]
    for number, name in enumerate(names):
        lines.append(f"  {name!r}:")
        lines.append("    score: 1")
        lines.append(f"    titles: &t{number} ['{'[' * nesting}t{number}{']' * nesting}']")
    for use in uses:
        lines.append(f"  Alias{use}:\n    score: 0\n    titles: *t{use}")
    file = users_file("\n".join(lines) + "\n")
    started = time.process_time()
    try:
        load_categories(file)
    except CategoriesError as error:
        assert str(error).startswith(f"{file}") and one_sentence(str(error))
    assert time.process_time() - started < GENEROUS_SECONDS


def test_a_huge_file_is_refused_before_it_is_read_whole() -> None:
    file = users_file(MINE + "#" * (MAX_CATEGORIES_BYTES + 1))
    started = time.process_time()
    result = run("categories", "list")
    assert time.process_time() - started < GENEROUS_SECONDS
    assert result.exit_code == 1 and one_sentence(result.output)
    assert f"{file}: the file is larger than 1 MB, more than any set of rules needs; keep the rules you use" in (
        result.output)


def test_a_file_of_nearly_a_megabyte_of_rules_loads() -> None:
    apps = "".join(f"      - app{number}\n" for number in range(50_000))
    assert len(apps) < MAX_CATEGORIES_BYTES
    users_file("categories:\n  Many:\n    score: 1\n    apps:\n" + apps)
    result = run("categories", "validate")
    assert result.exit_code == 0 and "50000 rules" in result.output


# -- odd paths and bytes --------------------------------------------------------------------------------------

MINE = "categories:\n  Mine:\n    score: 1\n    apps: [Mail]\n"


def test_a_symlinked_file_is_used_and_an_edit_goes_to_the_file_it_points_at(tmp_path: Path) -> None:
    target = tmp_path / "dotfiles" / "categories.yaml"
    target.parent.mkdir()
    target.write_text(MINE)
    link = paths.user_categories_file()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    assert run("categories", "test", "Mail").output.startswith("Mine, score 1")
    script = tmp_path / "editor.sh"
    script.write_text('#!/bin/sh\nprintf "  Fun:\\n    score: -1\\n    apps: [Game]\\n" >> "$1"\n')
    script.chmod(0o755)
    result = CliRunner(env={"VISUAL": "", "EDITOR": str(script)}).invoke(cli, ["categories", "edit"])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and "Fun" in target.read_text()  # the user's dotfiles link stays
    assert run("categories", "test", "Game").output.startswith("Fun, score -1")


def broken_link(kind: str, tmp_path: Path) -> Path:
    link = paths.user_categories_file()
    link.parent.mkdir(parents=True, exist_ok=True)
    if kind == "loop":
        other = link.with_name("other.yaml")
        other.symlink_to(link)
        link.symlink_to(other)
    elif kind == "dangling":
        link.symlink_to(tmp_path / "gone.yaml")
    elif kind == "directory":
        link.mkdir()
    elif kind == "fifo":
        os.mkfifo(link)
    elif kind == "device":
        link.symlink_to("/dev/zero")
    return link


ODD_PATHS = {
    "loop": "the file is a loop of symbolic links; point the link at a real file or remove it",
    "dangling": "the file is a symbolic link to {tmp}/gone.yaml, which does not exist; point it at a real file "
                "or remove it",
    "directory": "this is a directory; remove it or put a categories file in its place",
    "fifo": "this is not a regular file (a device, pipe or socket); remove it or put a categories file in its place",
    "device": "this is not a regular file (a device, pipe or socket); remove it or put a categories file in its "
              "place",
}


@pytest.mark.parametrize(("kind", "problem"), ODD_PATHS.items(), ids=list(ODD_PATHS))
@pytest.mark.parametrize("command", [("categories", "list"), ("categories", "test", "Mail"),
                                     ("categories", "validate"), ("categories", "edit")])
def test_an_odd_users_file_gets_one_sentence_from_every_command(tmp_path: Path, kind: str, problem: str,
                                                                command: tuple[str, ...]) -> None:
    file = broken_link(kind, tmp_path)
    result = CliRunner(env={"VISUAL": "", "EDITOR": "false"}).invoke(cli, list(command))
    assert result.exit_code == 1 and one_sentence(result.output), result.output
    assert f"Error: {file}: {problem.format(tmp=tmp_path)}" in result.output


def test_a_missing_file_to_validate_is_named(tmp_path: Path) -> None:
    result = run("categories", "validate", str(tmp_path / "nowhere.yaml"))
    assert result.exit_code == 1 and one_sentence(result.output)
    assert f"{tmp_path}/nowhere.yaml: the file does not exist; check the path" in result.output


def test_a_file_with_bytes_that_are_not_utf8_names_the_line() -> None:
    file = users_file("categories:\n  Caf\xe9:\n    score: 1\n".encode("latin-1"))
    result = run("categories", "list")
    assert result.exit_code == 1 and one_sentence(result.output)
    assert f"{file}, line 2: the file is not UTF-8 text; save it as UTF-8 in your editor" in result.output


# -- names with markup ----------------------------------------------------------------------------------------

MARKUP_NAMES = ["[bold]Loud", "[/]", "[link=https://evil.example]click[/link]", "[red", "x[/bold]y", "\\[escaped]"]
MARKUP_FILE = "categories:\n" + "".join(
    f"  '{name}':\n    score: {score}\n    apps: [App{number}]\n"
    for number, (name, score) in enumerate(zip(MARKUP_NAMES, [2, 1, 0, -1, -2, 1], strict=True)))


@pytest.mark.parametrize("colour", ["", "1"], ids=["plain", "rich"])
def test_category_names_with_markup_print_as_written_in_categories_list(colour: str) -> None:
    users_file(MARKUP_FILE)
    result = CliRunner(env={"FORCE_COLOR": colour or None, "TTY_COMPATIBLE": "1" if colour else "0",
                            "COLUMNS": "200"}).invoke(cli, ["categories", "list"])
    assert result.exit_code == 0, result.output
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    for name in MARKUP_NAMES:
        assert name in plain, (name, plain)
    assert ("\x1b[" in result.output) == bool(colour)  # both ways of drawing were tried


def test_category_names_with_markup_print_as_written_in_categories_test() -> None:
    users_file(MARKUP_FILE)
    for number, name in enumerate(MARKUP_NAMES):
        result = run("categories", "test", f"App{number}")
        assert result.exit_code == 0 and result.output.startswith(f"{name}, score"), result.output


def test_category_names_with_markup_show_as_written_in_the_live_view() -> None:
    screen = io.StringIO()
    view = LiveView(Console(file=screen, force_terminal=True, width=120))
    record = Record(time_ms=1_714_986_000_000, duration=1.0, host="laptop", app="App1", activity="App1",
                    category="[/]", score=1.0, title="[bold]not bold[/bold]")
    today = {name: 60.0 * (number + 1) for number, name in enumerate(MARKUP_NAMES)}
    with view:
        view.show(RunView(record=record, rule="app App1 (categories.yaml, line 5)", since=record.time,
                          changed=True, details=lambda: Details(today=today, pulse=50.0, sender=None, waiting=0)))
    drawn = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen.getvalue())
    for name in MARKUP_NAMES:
        assert name in drawn, (name, drawn)
    assert "[bold]not bold[/bold]" in drawn


# -- tracker categories edit: odd editors and odd edits ---------------------------------------------------

GARDEN = "  Garden:\n    score: 1\n    apps: [Gärtner]\n"


def editor_script(directory: Path, body: str) -> Path:
    """A small editor: Python that gets the file to edit as its last argument (`path`), and its arguments."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "editor.py"
    script.write_text(f"#!{sys.executable}\nimport pathlib, sys, os, signal\npath = pathlib.Path(sys.argv[-1])\n"
                      + body)
    script.chmod(0o755)
    return script


def edit(editor: str, input: str | None = None, path: str | None = None) -> Result:
    env = {"VISUAL": None, "EDITOR": editor} | ({"PATH": path} if path is not None else {})
    return CliRunner(env=env).invoke(cli, ["categories", "edit"], input=input)


def drafts_left() -> list[Path]:
    return list(paths.user_categories_file().parent.glob(".categories-edit-*"))


REJECTED = "categories.rejected.yaml"


def test_an_edit_saved_as_latin1_names_the_line_and_is_kept_byte_for_byte(tmp_path: Path) -> None:
    users_file(MINE)
    script = editor_script(tmp_path, "path.write_bytes(path.read_bytes() + '  Garden:\\n    score: 1\\n"
                                     "    apps: [G\\xe4rtner]\\n'.encode('latin-1'))\n")
    result = edit(str(script))
    assert result.exit_code == 1
    file = paths.user_categories_file()
    assert f"Error: {file}, line 7: the file is not UTF-8 text; save it as UTF-8 in your editor" in result.output
    assert "Traceback" not in result.output
    assert file.read_text() == MINE
    assert file.with_name(REJECTED).read_bytes() == (MINE + GARDEN).encode("latin-1")
    assert f"Your edit is in {file.with_name(REJECTED)}." in result.output and not drafts_left()


def test_a_latin1_edit_fixed_on_the_second_try_is_saved(tmp_path: Path) -> None:
    users_file(MINE)
    # First run: Latin-1. Second run (after [e]dit again): the same text in UTF-8.
    script = editor_script(tmp_path, "text = path.read_bytes()\n"
                                     "if b'G' not in text:\n"
                                     "    path.write_bytes(text + '" + GARDEN.encode("unicode_escape").decode()
                                     + "'.encode('latin-1'))\n"
                                     "else:\n"
                                     "    path.write_bytes(text.decode('latin-1').encode('utf-8'))\n")
    result = edit(str(script), input="e\n")
    assert result.exit_code == 0, result.output
    assert paths.user_categories_file().read_text(encoding="utf-8") == MINE + GARDEN
    assert run("categories", "test", "Gärtner").output.startswith("Garden, score 1")


def test_a_users_file_in_latin1_opens_as_it_is_and_can_be_fixed(tmp_path: Path) -> None:
    users_file((MINE + GARDEN).encode("latin-1"))
    script = editor_script(tmp_path, "path.write_bytes(path.read_bytes().decode('latin-1').encode('utf-8'))\n")
    result = edit(str(script))
    assert result.exit_code == 0, result.output
    assert run("categories", "test", "Gärtner").output.startswith("Garden, score 1")


def test_an_editor_with_arguments_and_quotes_in_its_path_is_run_as_written(tmp_path: Path) -> None:
    script = editor_script(tmp_path / "my editors", "assert sys.argv[1:3] == ['--wait', 'two words'], sys.argv\n"
                                                    "path.write_text(path.read_text() + " + repr(GARDEN) + ")\n")
    result = edit(f'"{script}" --wait \'two words\'')
    assert result.exit_code == 0, result.output
    assert paths.user_categories_file().read_text(encoding="utf-8").endswith(GARDEN)


ODD_EDITORS = {
    "missing": ("no-such-editor-anywhere --wait", None,
                "Error: cannot start the editor 'no-such-editor-anywhere --wait' (No such file or directory); set "
                "$EDITOR to an installed editor, like EDITOR=nano"),
    "unclosed quote": ('code --wait "', None,
                       "Error: $EDITOR (code --wait \") cannot be read as a command: No closing quotation; fix its "
                       "quotes"),
    "empty, and no nano or vi": ("  ", "{empty}",
                                 "Error: cannot start the editor 'vi' (No such file or directory); set $EDITOR to "
                                 "an installed editor, like EDITOR=nano"),
}


@pytest.mark.parametrize(("value", "search_path", "message"), ODD_EDITORS.values(), ids=list(ODD_EDITORS))
def test_an_odd_editor_gets_one_sentence_and_changes_nothing(tmp_path: Path, value: str, search_path: str | None,
                                                             message: str) -> None:
    users_file(MINE)
    (tmp_path / "empty").mkdir()
    result = edit(value, path=None if search_path is None else str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert result.output.startswith(message + "\n"), result.output
    assert "Traceback" not in result.output
    assert paths.user_categories_file().read_text() == MINE and not drafts_left()


def test_an_empty_visual_falls_back_to_editor(tmp_path: Path) -> None:
    script = editor_script(tmp_path, "path.write_text(path.read_text() + " + repr(GARDEN) + ")\n")
    result = CliRunner(env={"VISUAL": "", "EDITOR": str(script)}).invoke(cli, ["categories", "edit"])
    assert result.exit_code == 0, result.output
    assert paths.user_categories_file().read_text(encoding="utf-8").endswith(GARDEN)


def test_an_editor_killed_after_an_edit_keeps_the_edit_aside(tmp_path: Path) -> None:
    users_file(MINE)
    script = editor_script(tmp_path, "path.write_text(path.read_text() + " + repr(GARDEN) + ")\n"
                                     "os.kill(os.getpid(), signal.SIGKILL)\n")
    result = edit(str(script))
    file = paths.user_categories_file()
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: the editor was stopped by signal 9, so your edit was not put in use; "
                                    f"it is in {file.with_name(REJECTED)}.\n")
    assert file.read_text() == MINE and file.with_name(REJECTED).read_text(encoding="utf-8") == MINE + GARDEN


def test_a_broken_edit_stays_in_the_draft_when_it_cannot_be_put_aside(tmp_path: Path) -> None:
    users_file(MINE)
    paths.user_categories_file().with_name(REJECTED).mkdir()  # the place for a rejected edit is taken
    script = editor_script(tmp_path, "path.write_text(path.read_text() + '  Broken: [\\n')\n")
    result = edit(str(script))
    assert result.exit_code == 1
    [draft] = drafts_left()
    assert f"Your edit is in {draft}." in result.output
    assert draft.read_text() == MINE + "  Broken: [\n"


# -- the exclude patterns' file, config.yaml, built to expand or huge ---------------------------------------

def test_a_config_file_built_to_expand_is_refused_at_once_with_one_sentence() -> None:
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    # Nine levels of nine aliases: 387 million titles, were they expanded (and printed in an error).
    config.write_text("exclude:\n  apps: [&l0 lol]\n  titles:\n" + "".join(
        f"    - &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]\n" for level in range(1, 10)))
    started = time.process_time()
    result = run("config", "show")
    assert time.process_time() - started < GENEROUS_SECONDS
    assert result.exit_code != 0 and one_sentence(result.output), result.output[:500]
    assert (f"{config}, line 4: YAML aliases (*name) are not taken in the config file; write the value out."
            in result.output)


def test_a_huge_config_file_is_refused_before_it_is_read_whole() -> None:
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("host: laptop\n" + "#" * 2_000_000)
    result = run("config", "show")
    assert result.exit_code != 0 and one_sentence(result.output)
    assert f"{config} is larger than 100 kB, far more than any settings need; keep the settings you use." in (
        result.output)


def test_a_category_name_with_a_control_character_is_refused() -> None:
    file = users_file('categories:\n  "Red\\e[31m":\n    score: 1\n    apps: [Mail]\n')
    result = run("categories", "list")
    assert result.exit_code == 1 and one_sentence(result.output) and "\x1b" not in result.output
    assert f"{file}, line 2: the category name 'Red\\x1b[31m' contains a control character; remove it" in (
        result.output)


@pytest.mark.slow
def test_title_rules_filling_the_budget_still_classify_an_adversarial_title_at_once() -> None:
    heavy = ".{0,1000}.{0,1000}x"
    count = TITLE_REGEX_BUDGET // TitleRegex(heavy).cost
    rules = parse_categories(title_rules(*[f"{heavy}{number}" for number in range(count)]), Path("c.yaml"))
    started = time.process_time()
    for title in EVIL_TITLES:
        rules.classify(Sample(time=utc_now(), app="Browser", title=title))
    assert time.process_time() - started < GENEROUS_SECONDS


def test_an_edit_that_makes_the_file_huge_is_refused_and_kept_aside(tmp_path: Path) -> None:
    users_file(MINE)
    script = editor_script(tmp_path, "path.write_text(path.read_text() + '#' * 1_500_000)\n")
    result = edit(str(script))
    file = paths.user_categories_file()
    assert result.exit_code == 1
    assert f"Error: {file}: the file is larger than 1 MB" in result.output and "Traceback" not in result.output
    assert file.read_text() == MINE and len(file.with_name(REJECTED).read_bytes()) == len(MINE) + 1_500_000


def test_editing_a_huge_file_is_refused_before_the_editor_starts(tmp_path: Path) -> None:
    users_file(MINE + "#" * (MAX_CATEGORIES_BYTES + 1))
    script = editor_script(tmp_path, "raise SystemExit('the editor must not start')\n")
    result = edit(str(script))
    assert result.exit_code == 1 and one_sentence(result.output)
    assert f"{paths.user_categories_file()}: the file is larger than 1 MB" in result.output and not drafts_left()


def test_an_editor_that_removes_the_file_gets_one_sentence(tmp_path: Path) -> None:
    users_file(MINE)
    result = edit(str(editor_script(tmp_path, "path.unlink()\n")))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("Error: the editor left no readable file at ")
    assert paths.user_categories_file().read_text() == MINE and not drafts_left()


_YAML_PIECES = st.sampled_from(["categories:", "\n", "  ", "    ", "Dev:", "score:", "1", "-2.5", "1e400", "nan",
                                "apps:", "domains:", "titles:", "[", "]", "{", "}", ",", "- ", "&a ", "*a", "!!str ",
                                "!!python/object:os.system ", "<<: ", "'", '"', "\\x", "~", "null", "? ", ": ", "#",
                                "[/]", "(a+)+$", "\t", "\ufeff", "\x00", "é", "Away", "example.com", "*.x.com"])


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@example(pieces=["{", "1", "\n", "\n", "1", "}"], raw=b"")  # a key over two lines, quoted in the sentence
@given(pieces=st.lists(_YAML_PIECES, max_size=40), raw=st.binary(max_size=64))
def test_any_categories_file_gives_rules_or_one_sentence(pieces: list[str], raw: bytes) -> None:
    for data in ("".join(pieces).encode("utf-8", "surrogatepass"), raw):
        try:
            rules = parse_categories(decode_categories(data, Path("c.yaml")), Path("c.yaml"))
        except CategoriesError as error:
            assert str(error).startswith("c.yaml") and one_sentence(str(error)), str(error)
        else:
            assert all(category.name for category in rules.categories)


@pytest.mark.parametrize("damage", ["[" * 100_000, '{"text": ' + '"x" ' * 10, "\xff", "{}" + " " * 9_000_000],
                         ids=["nested", "truncated", "not utf-8", "huge"])
def test_damaged_remembered_rules_are_read_again_from_the_file(damage: str) -> None:
    users_file(MINE)
    assert run("categories", "test", "Mail").output.startswith("Mine, score 1")  # remembers them
    remembered = paths.data_dir() / "categories.remembered.json"
    assert remembered.exists()
    remembered.write_bytes(damage.encode("latin-1"))
    result = run("categories", "test", "Mail")
    assert result.exit_code == 0 and result.output.startswith("Mine, score 1"), result.output


def test_exclude_patterns_too_large_together_stop_the_command_with_one_sentence() -> None:
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("exclude:\n  titles: [" + ", ".join(f"'.{{0,1000}}.{{0,1000}}x{n}'" for n in range(20)) + "]\n")
    result = run("config", "show")
    assert result.exit_code != 0 and one_sentence(result.output)
    assert "makes the title regexes too large together to search every title quickly; use fewer or simpler ones" in (
        result.output)


def test_a_category_named_with_markup_shows_as_written_in_a_real_live_view(
        tracker_terminal: StartTracker) -> None:
    users_file("categories:\n  '[/]':\n    score: 1\n    titles: ['\\pL']\n"
               "  '[link=https://evil.example]x[/link]':\n    score: -1\n    apps: [never]\n")
    pane = tracker_terminal("run", "--source", "demo", "--interval", "0.2", "--for", "8s")
    shown = wait_until(lambda: (screen := pane.screen()) and any("│ Today     [/]" in line for line in screen)
                       and screen, timeout=20, what="the category [/] in Today")
    assert any(re.search(r"│\s+\[/\]  \+1  for \d+s", line) for line in shown), "\n".join(shown)
    final = ended(pane)
    assert final[-1] == "EXIT=0", "\n".join(final)
    assert not any("Traceback" in line or "MarkupError" in line for line in final)
