"""The command line: one click module; the work lives in the modules it calls."""

from __future__ import annotations

import click

from tracker import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracker")
def cli() -> None:
    """A private activity tracker: the foreground app, classified, written to your own InfluxDB."""
