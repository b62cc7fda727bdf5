"""tracker goals: each goal's progress today and this week, from the local history; where the file is; check it."""

from __future__ import annotations

import click

from tracker.goals.files import goals_file, load_goals
from tracker.paths import display_path


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def goals(context: click.Context, as_json: bool) -> None:
    """Each goal's progress today and this week, from the local history (no InfluxDB needed)."""
    if context.invoked_subcommand is not None:
        return
    from tracker.commands.options import plain_console
    from tracker.tasks.goals import goals_now
    from tracker.timespec import local_now
    from tracker.ui import goalstext

    loaded = load_goals()
    now = local_now()
    found = goals_now(loaded, now)
    if as_json:
        click.echo(goalstext.goals_json(found))
    elif not found:
        click.echo(goalstext.no_goals(loaded))
    else:
        goalstext.render_goals(found, now.date(), plain_console())


@goals.command("path")
def goals_path() -> None:
    """Print where your goals.yaml is (beside categories.yaml; it may not exist yet)."""
    click.echo(goals_file())


@goals.command("validate")
def goals_validate() -> None:
    """Check goals.yaml (and that each category it names exists): exit 1 with the line of the first mistake."""
    from tracker.categories.files import load_categories
    from tracker.tasks.goals import check_categories_named

    loaded = load_goals()  # a GoalsError ends as its sentence, exit 1
    check_categories_named(loaded, load_categories())
    where = display_path(goals_file())
    count = len(loaded.goals)
    click.echo(f"{where} is valid: {count} goal{'' if count == 1 else 's'}." if goals_file().exists()
               else f"{where} does not exist yet: no goals.")
