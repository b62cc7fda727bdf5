"""tracker outbox and tracker sync: what waits to be sent to InfluxDB, and sending it now."""

from __future__ import annotations

import click

from tracker.commands import Failure
from tracker.commands.options import influx_options, progress_bar, setting_overrides
from tracker.config import load_settings
from tracker.paths import database_file
from tracker.recording.localstore import settle_leftovers
from tracker.sending.corrections import correcting_sender
from tracker.sending.sinks import require_configured
from tracker.storage.outbox import read_stats, retry_quarantined_rows
from tracker.ui import present
from tracker.wording import samples


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--retry-quarantined", is_flag=True,
              help="Put the rows the server refused back in the queue, for `tracker sync` to send again.")
def outbox(as_json: bool, retry_quarantined: bool) -> None:
    """What waits to be sent, the last send, and what the server refused."""
    if as_json and retry_quarantined:
        raise click.UsageError("choose one of --json and --retry-quarantined")
    path = database_file()
    if retry_quarantined:
        click.echo(present.retried_text(*retry_quarantined_rows(path)))
        return
    stats = read_stats(path)
    click.echo(present.outbox_json(stats, path) if as_json else present.outbox_text(stats, path))


@click.command()
@influx_options
def sync(**setting_values: object) -> None:
    """Send every waiting sample to InfluxDB now."""
    settings = load_settings(setting_overrides(setting_values)).settings.influx
    require_configured(settings)
    settle_leftovers(database_file())
    with progress_bar("Sending to InfluxDB") as progress:
        sender = correcting_sender(database_file(), settings, lambda line: click.echo(line, err=True))
        result = sender.send_all(progress)
    done = f"sent {samples(result.sent)} to {result.url}"
    if result.quarantined:
        done += f"; {result.quarantined} refused by the server (see `tracker outbox`)"
    if not result.ok:
        prefix = f"{done[0].upper()}{done[1:]}, then: " if result.sent else ""
        raise Failure(f"{prefix}{result.error} {samples(result.waiting)} still waiting.", 1)
    click.echo(done if result.sent or result.quarantined else "Nothing to send: no samples are waiting.")
