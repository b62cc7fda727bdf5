"""tracker run: record the foreground app, show it, and send it to InfluxDB."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO, cast

import click

from tracker.commands.options import duration_option, influx_options, setting_options, setting_overrides
from tracker.config import load_settings
from tracker.recording.goalwatch import Notifier
from tracker.recording.runner import View, record_until_stopped
from tracker.recording.sources import SOURCE_NAMES
from tracker.ui.live import LOG_FORMATS, ActivityLog, LiveView
from tracker.ui.logfile import CappedLog


@click.command()
@setting_options("interval")
@click.option("--for", "run_for", metavar="DURATION", help="Stop cleanly after this long (e.g. 30s, 5m, 2h).")
@click.option("--source", type=click.Choice(SOURCE_NAMES), default="auto",
              show_default=True, help="Where samples come from; demo makes up a believable stream.")
@setting_options("away_after", "titles", "metrics_listen", "metrics_allow_remote")
@click.option("--quiet", "-q", is_flag=True, help="No live view: one log line per change of activity.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True,
              help="Format of the log lines (when quiet or not on a terminal).")
@click.option("--log-file", type=click.Path(dir_okay=False), metavar="PATH",
              help="Write the log lines, and every error, to PATH instead, keeping at most PATH and PATH.1.")
@click.option("--log-max-bytes", type=click.IntRange(min=1000), default=1_000_000, show_default=True,
              help="With --log-file: start a new file (the old one becomes PATH.1) before this size.")
@click.option("--no-notify", is_flag=True,
              help="No desktop notifications when a goal is crossed or met (the view and the log still say it).")
@influx_options
def run(run_for: str | None, source: str, quiet: bool, log_format: str, log_file: str | None,
        log_max_bytes: int, no_notify: bool, **setting_values: object) -> None:
    """Record the foreground app every second and send it to InfluxDB."""
    log_stream: TextIO | None = None
    if log_file is not None:  # first: a settings error must reach the file too
        # A text stream like a file's, written through at once: what ActivityLog needs of a TextIO.
        log_stream = cast("TextIO", CappedLog(Path(log_file), log_max_bytes, take_over_output=True))
    loaded = load_settings(setting_overrides(setting_values))
    seconds = duration_option(run_for, "--for")
    view = _run_view(quiet, log_format, log_stream)
    with view:
        notifier = None if no_notify else _desktop_notifier(view)
        record_until_stopped(loaded.settings, source, seconds, view, notifier)


def _desktop_notifier(view: View) -> Notifier:
    """Where goal nudges are shown on the desktop besides the view; what cannot be shown is said once there."""
    from tracker.ui.notifications import open_notifier  # connects to nothing until the first nudge

    return open_notifier(view.notice)


def _run_view(quiet: bool, log_format: str, log_stream: TextIO | None = None) -> View:
    if log_stream is not None:
        return ActivityLog(log_stream, log_format)
    if quiet or not sys.stdout.isatty():
        return ActivityLog(sys.stdout, log_format)
    from rich.console import Console  # only for the live view: 7 MB a quiet run or a service never needs

    return LiveView(Console())
