"""tracker doctor: everything recording needs, checked, with how to fix what is wrong."""

from __future__ import annotations

import click

from tracker.tasks.doctor import blocks_recording, run_checks
from tracker.ui import present


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def doctor(as_json: bool) -> None:
    """Check the desktop, idle time, settings, categories, InfluxDB, the outbox, the run and the service
    (exit 1 when something blocks recording)."""
    checks = run_checks()
    click.echo(present.doctor_json(checks) if as_json else present.doctor_text(checks))
    if blocks_recording(checks):
        raise click.exceptions.Exit(1)
