"""tracker demo: a synthetic week in InfluxDB, to see the dashboard at once, and removing it again."""

from __future__ import annotations

import click

from tracker.commands import Failure
from tracker.commands.options import duration_option, influx_options, progress_bar, setting_overrides
from tracker.config import load_settings
from tracker.redact import display_url
from tracker.sending.sinks import SendError
from tracker.tasks import demo as demo_week


@click.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366),
              help="How many days back the synthetic history goes.")
@click.option("--step", default="1s", show_default=True, metavar="DURATION",
              help="Time between points, 1s to 1h (1s like `tracker run`; 10s writes a tenth as many).")
@click.option("--remove", is_flag=True, help="Delete the demo points (host=demo, demo=true) again instead.")
@influx_options
def demo(days: int, step: str, remove: bool, **setting_values: object) -> None:
    """Write a synthetic week (host=demo, demo=true) to InfluxDB, to see the dashboard at once."""
    loaded = load_settings(setting_overrides(setting_values)).settings
    settings = loaded.influx
    where = display_url(settings.url)
    try:
        if remove:
            kept = demo_week.remove_week(settings)
            if kept is None:
                click.echo("tracker removes demo points on InfluxDB 1.x only. "
                           f"{demo_week.remove_instructions(settings)}")
                raise click.exceptions.Exit(1)
            click.echo(f"Removed the demo points (host={demo_week.DEMO_HOST}, demo=true) from {where}.")
            if kept:
                click.echo(f"Kept {kept:,} series of host={demo_week.DEMO_HOST} without the demo=true tag: they "
                           "are a real machine's (or demo points written before tracker tagged them), which only "
                           f"you can tell; if they are demo points, run {demo_week.drop_untagged_query()} in the "
                           "influx shell.")
            return
        # At least a second: a smaller step makes billions of points, and stalls for hours.
        seconds = duration_option(step, "--step", (1.0, 3600.0))
        with progress_bar(f"Writing {days} days of demo activity") as progress:
            written = demo_week.write_week(settings, days, step=seconds or 1.0, progress=progress,
                                           own_host=loaded.host)
    except SendError as error:
        raise Failure(f"{error}.", 1) from None
    click.echo(f"Wrote {written:,} demo points (host={demo_week.DEMO_HOST}) to {where}, bucket "
               f"{settings.bucket}. Remove them with `tracker demo --remove`.")
