"""The table `tracker categories list` prints to a pipe is drawn without rich: character for character rich's."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tracker.categories.files import load_categories
from tracker.commands.categories import shortened
from tracker.ui import plaintable

COLUMNS = [plaintable.Column("Category", no_wrap=True), plaintable.Column("Score", justify="right"),
           plaintable.Column("Rules")]


def drawn_by_rich(rows: list[tuple[str, str, str]], width: int) -> str:
    """What `tracker categories list` printed before, on a pipe: rich's Console() without colour."""
    table = Table()
    for column in COLUMNS:
        table.add_column(column.header, justify=column.justify, no_wrap=column.no_wrap)
    for name, score, rules in rows:
        table.add_row(Text(name, style="bold red"), Text(score, style="bold red"), Text(rules))
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False).print(table)
    return out.getvalue()


def bundled_rows() -> list[tuple[str, str, str]]:
    return [(category.name, f"{category.score:+g}",
             "\n".join(f"{kind}s: {shortened(category.written(kind))}" for kind in ("app", "domain", "title")
                       if category.written(kind)) or "(no rules)")
            for category in load_categories().categories]


@pytest.mark.parametrize("width", [40, 57, 80, 101, 132, 200])
def test_the_bundled_categories_are_drawn_as_rich_draws_them(width: int) -> None:
    rows = bundled_rows()
    assert plaintable.draw(COLUMNS, rows, width) == drawn_by_rich(rows, width)


# Words of every kind the table meets: regexes with brackets, wide characters, the ellipsis, long hosts.
WORDS = st.sampled_from(["apps:", "domains:", "titles:", "Mail", "Microsoft", "Outlook", "…", "(+104", "more)",
                         r"\b(n?vim|neovim)\b", r"\s[-–—·|]\s(GitHub|GitLab|Stack", "Überblick", "漢字",
                         "📚", "a", "x" * 30, "very-long-host-name.example.com,", "[brackets]", "+2", "-1.5"])
NAMES = st.lists(WORDS, max_size=3).map(" ".join)
CELLS = st.lists(st.lists(WORDS, max_size=14).map(" ".join), min_size=1, max_size=4).map("\n".join)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(NAMES, st.sampled_from(["+2", "-1.5", "+0.25", "0"]), CELLS), max_size=6),
       width=st.integers(min_value=1, max_value=160))
def test_any_table_is_drawn_as_rich_draws_it_or_left_to_rich(rows: list[tuple[str, str, str]], width: int) -> None:
    drawn = plaintable.draw(COLUMNS, rows, width)
    if drawn is not None:  # too narrow for its longest names: rich draws it, its own way
        assert drawn == drawn_by_rich(rows, width)


def test_colour_forced_or_a_terminal_leaves_the_table_to_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        monkeypatch.delenv(variable, raising=False)
    assert plaintable.plain_width(pipe) is not None
    monkeypatch.setenv("COLUMNS", "123")
    assert plaintable.plain_width(pipe) == 123 == Console(file=pipe).width
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert plaintable.plain_width(pipe) is None
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert plaintable.plain_width(pipe) == 123
    monkeypatch.setattr(pipe, "isatty", lambda: True)
    monkeypatch.delenv("TTY_COMPATIBLE")
    monkeypatch.delenv("FORCE_COLOR")
    assert plaintable.plain_width(pipe) is None
