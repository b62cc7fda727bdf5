"""tracker categories: see, test and check the rules that put apps and sites into categories.

`categories list` and `categories test` are typed again and again while writing rules, so this module stays
quick to import: rich (only on a terminal), the table drawn without it (only `list`), the local history (only
`uncategorized`) and the editor session (edit.py, only `edit`) are imported when they are used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tracker.categories.files import active_categories_path, bundled_categories_path, load_categories
from tracker.commands import CommandInfo, LazyGroup
from tracker.commands.options import period_options, plain_console
from tracker.model import Sample, utc_now
from tracker.paths import display_path
from tracker.ui.colours import score_label, score_style


@click.group(cls=LazyGroup, lazy_commands={"edit": CommandInfo("tracker.commands.edit", "categories_edit")})
def categories() -> None:
    """See, test and edit the rules that put apps and sites into categories."""


@categories.command("uncategorized")
@click.option("--since", default="7d", show_default=True, metavar="WHEN",
              help="today, yesterday, 7d, 30d, or a date like 2024-05-01.")
@click.option("--until", metavar="WHEN", help="A date (included) or a date and time; default now.")
def categories_uncategorized(since: str, until: str | None) -> None:
    """The activities that took the most time without a category, to write rules for."""
    from tracker.storage.queries import read_uncategorized
    from tracker.ui import present

    start, end = period_options(since, until)
    activities = read_uncategorized(start, end)
    if activities is None:
        plain_console().print(present.NO_HISTORY)
    else:
        present.render_uncategorized(activities, start, end, plain_console())


def shortened(items: list[str], limit: int = 4) -> str:
    """The first `limit` items, and how many more there are."""
    shown = ", ".join(items[:limit])
    return shown + (f", … (+{len(items) - limit} more)" if len(items) > limit else "")


@categories.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def categories_list(as_json: bool) -> None:
    """Show each category, its score and its rules."""
    rules = load_categories(remember=True)
    if as_json:
        click.echo(json.dumps(rules.to_dict(), indent=2, ensure_ascii=False))
        return
    from tracker.ui import plaintable  # not for `categories test`: it loads part of rich

    columns = [plaintable.Column("Category", no_wrap=True), plaintable.Column("Score", justify="right"),
               plaintable.Column("Rules")]
    rows = [(category.name, f"{category.score:+g}",
             "\n".join(f"{kind}s: {shortened(category.written(kind))}" for kind in ("app", "domain", "title")
                       if category.written(kind)) or "(no rules)")
            for category in rules.categories]
    # Without colour (a pipe, a file), the same table drawn without rich, which takes long to import.
    width = plaintable.plain_width(sys.stdout)
    drawn = None if width is None else plaintable.draw(columns, rows, width)
    if drawn is not None:
        click.echo(drawn, nl=False)
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table()
        for column in columns:
            table.add_column(column.header, justify=column.justify, no_wrap=column.no_wrap)
        for category, (name, score, rule_lines) in zip(rules.categories, rows, strict=True):
            style = score_style(category.score)
            # Text, not markup: a regex's [brackets] must show as written.
            table.add_row(Text(name, style=style), Text(score, style=style), Text(rule_lines))
        Console().print(table)
    # Below, not as a caption: a caption wraps a long path at the table's width.
    click.echo(f"{display_path(rules.file)}: {rules.rule_count} rules")


@categories.command("test")
@click.argument("app")
@click.option("--title", metavar="TITLE", help="The window title.")
@click.option("--url", metavar="URL", help="The page's URL, for a browser.")
def categories_test(app: str, title: str | None, url: str | None) -> None:
    """Show which category APP (with this title and URL) falls in, and which rule decides."""
    rules = load_categories(remember=True)
    match = rules.classify(Sample(time=utc_now(), app=app, title=title, url=url))
    if match.rule is None:
        click.echo(f"No rule matched: {match.category}, score 0.")
    else:
        click.echo(f"{match.category}, score {match.score:g} ({score_label(match.score)})")
    click.echo(f"  activity: {match.activity}")
    if match.rule is not None:
        click.echo(f"  rule:     {match.rule}")
    click.echo(f"  rules in: {display_path(rules.file)}")


@categories.command("path")
def categories_path() -> None:
    """Print the path of the categories file in force."""
    path = active_categories_path()
    click.echo(str(path))
    # The note goes to stderr so that $(tracker categories path) is just the path.
    if path == bundled_categories_path():
        click.echo("The bundled default; `tracker categories edit` makes your own copy.", err=True)
    else:
        click.echo("Your own file; it replaces the bundled default.", err=True)


@categories.command("validate")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def categories_validate(file: str | None) -> None:
    """Check FILE (default: the file in force); exit 1 if it has an error."""
    rules = load_categories(None if file is None else Path(file))
    click.echo(f"OK: {len(rules.categories)} categories, {rules.rule_count} rules ({display_path(rules.file)})")
