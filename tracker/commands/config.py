"""tracker config: the effective settings and where each came from, and a settings file to start from."""

from __future__ import annotations

import click

from tracker import paths
from tracker.commands import Failure
from tracker.commands.options import influx_options, setting_overrides
from tracker.config import config_template, load_settings, masked


@click.group()
def config() -> None:
    """Show or create the settings file."""


@config.command("show")
@influx_options
def config_show(**setting_values: object) -> None:
    """Print the effective settings and where each came from (the token is masked)."""
    loaded = load_settings(setting_overrides(setting_values))
    click.echo(f"config file: {paths.config_file()}" + ("" if paths.config_file().exists() else " (none)"))
    click.echo(f"data directory: {paths.data_dir()}")
    width = max(map(len, loaded.values))
    for name, value in loaded.values.items():
        if name == "host" and value is None:
            value = loaded.settings.host
        click.echo(f"{name:<{width}}  {masked(name, value):<32}  {loaded.origins[name]}")


@config.command("init")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def config_init(force: bool) -> None:
    """Write a commented config.yaml template, readable by you only."""
    path = paths.config_file()
    if path.exists() and not force:
        raise Failure(f"{path} exists already; use --force to replace it.", 1)
    paths.write_private(path, config_template())
    click.echo(f"Wrote {path}. Edit it, then `tracker config show` to check.")
