"""tracker recategorize: today's categories applied to the time already recorded, here and in InfluxDB."""

from __future__ import annotations

from pathlib import Path

import click

from tracker.categories.files import load_categories
from tracker.categories.rules import Categories, CategoriesError
from tracker.commands import Failure
from tracker.commands.options import influx_options, progress_bar, setting_overrides, since_option
from tracker.config import load_settings
from tracker.events import default_pulsetime
from tracker.lineprotocol import clean_tag
from tracker.paths import database_file
from tracker.redact import display_url
from tracker.sending import corrections
from tracker.sending.sinks import SendError
from tracker.storage.db import StoreUnavailable
from tracker.tasks import recategorize as recategorizing
from tracker.timespec import local_now
from tracker.ui import present


@click.command()
@click.option("--since", default="30d", show_default=True, metavar="WHEN",
              help="From when: 30d (today and the 29 days before), yesterday, or a date like 2024-05-01.")
@click.option("--all", "everything", is_flag=True, help="All recorded history, however old.")
@click.option("--dry-run", is_flag=True, help="Print what would move from which category to which; change nothing.")
@influx_options
def recategorize(since: str, everything: bool, dry_run: bool, **setting_values: object) -> None:
    """Apply today's categories to the local history, the outbox and this host's points in InfluxDB."""
    if everything and click.get_current_context().get_parameter_source("since") != click.core.ParameterSource.DEFAULT:
        raise click.UsageError("choose one of --since and --all")
    now = local_now()
    since_ms = None if everything else int(since_option(since, now).timestamp() * 1000)
    loaded = load_settings(setting_overrides(setting_values)).settings
    categories = load_categories()
    database = database_file()
    history, outbox_rows = ({}, 0) if not database.exists() else recategorizing.recategorize_local(
        database, categories, since_ms, default_pulsetime(loaded.interval), apply=not dry_run)
    outcome = recategorizing.Outcome(history, outbox_rows, None)
    host, until_ms = clean_tag(loaded.host) or "unknown", int(now.timestamp() * 1000)
    if not loaded.influx.configured:
        outcome.influx_note = "InfluxDB is not configured: only the local history was recategorised."
    else:
        try:
            with progress_bar("Reading InfluxDB" if dry_run else "Correcting InfluxDB") as progress:
                outcome.influx = corrections.recategorize_influx(
                    loaded.influx, database, host, categories, since_ms, until_ms, apply=not dry_run,
                    send=corrections.outbox_sender(loaded.influx, database), progress=progress)
        except corrections.NotSupported as error:
            outcome.influx_note = f"{error}."
        except SendError as error:
            if dry_run:
                outcome.influx_note = f"{error}; InfluxDB's points were not read."
            else:
                _defer_recategorization(database, host, categories, since_ms, until_ms, error)
                outcome.influx_note = (f"{str(error).rstrip('.')}. The local history was recategorised; the points"
                                       " in InfluxDB will be when it answers again (`tracker run` or `tracker sync`"
                                       " does it on its own).")
        else:
            if not dry_run:
                recategorizing.forget_covered(database, host, since_ms)
    click.echo(present.recategorize_text(outcome, dry_run, display_url(loaded.influx.url)))


def _defer_recategorization(database: Path, host: str, categories: Categories, since_ms: int | None,
                            until_ms: int, error: Exception) -> None:
    """Keep the correction of InfluxDB for a sender to make later; exit 1 when it cannot be kept."""
    try:
        recategorizing.defer_influx(database, host, categories, since_ms, until_ms)
    except (StoreUnavailable, CategoriesError) as problem:
        raise Failure(f"{str(error).rstrip('.')}, and the correction of its points could not be kept for later"
                      f" ({problem}); the local history was recategorised: run `tracker recategorize` again when"
                      " InfluxDB answers.", 1) from None
