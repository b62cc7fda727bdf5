"""tracker status: whether `tracker run` is running, and how it is doing.

Not in report.py: importing the local history's queries (and sqlite3) for it took 10 ms more than the rest.
"""

from __future__ import annotations

import click

from tracker.recording.runstate import EXIT_NOT_RUNNING, read_runner_state
from tracker.ui import present


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Whether `tracker run` is running for this data directory, and how it is doing (exit 3: not running)."""
    state = read_runner_state()
    click.echo(present.status_json(state) if as_json else present.status_text(state))
    if not state.running:
        raise click.exceptions.Exit(EXIT_NOT_RUNNING)
