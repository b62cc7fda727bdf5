"""tracker report: where the time went, from the local history."""

from __future__ import annotations

from datetime import datetime

import click

from tracker.commands.options import period_options, plain_console
from tracker.goals.files import load_goals
from tracker.goals.model import Goal, GoalsError
from tracker.goals.progress import Progress
from tracker.storage.queries import empty_report, read_report
from tracker.tasks.goals import goals_between
from tracker.timespec import local_now
from tracker.ui import goalstext, present


@click.command()
@click.option("--since", default="today", show_default=True, metavar="WHEN",
              help="today, yesterday, 7d (today and the 6 days before), 2h, or a date like 2024-05-01.")
@click.option("--until", metavar="WHEN", help="A date (included), yesterday, or a date and time; default now.")
@click.option("--by", type=click.Choice(["category", "activity", "app", "hour", "day"]), default="category",
              show_default=True, help="What each row is: hour means hour of the day.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of tables.")
def report(since: str, until: str | None, by: str, as_json: bool, as_csv: bool) -> None:
    """Where your time went, from the local history (no InfluxDB needed)."""
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    start, end = period_options(since, until)
    found = read_report(start, end, by)
    goals = _goals_in(start, end) if found is not None else []
    if as_json or as_csv:
        # Scripts get the same keys or columns before anything was recorded, with nothing in them.
        shown = empty_report(start, end, by) if found is None else found
        if as_json:
            click.echo(present.report_json(shown, goalstext.report_goals_json(goals)))
        else:
            click.echo(present.report_csv(shown), nl=False)
    elif found is None:
        plain_console().print(present.NO_HISTORY)
    else:
        console = plain_console()
        present.render_report(found, console)
        goalstext.render_report_goals(goals, local_now().date(), console)


def _goals_in(start: datetime, end: datetime) -> list[tuple[Goal, list[Progress]]]:
    """Each goal's days or weeks in the period; none, and the goals file's mistake said, when it is not valid."""
    try:
        goals = load_goals()
    except GoalsError as error:
        click.echo(f"Goals left out: {error}", err=True)
        return []
    return goals_between(goals, start, end, local_now()) if goals.goals else []

