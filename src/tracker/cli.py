"""The command line: one click module; the work lives in the modules it calls."""

from __future__ import annotations

import click

from tracker import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracker")
def cli() -> None:
    """A private activity tracker: the foreground app, classified, written to your own InfluxDB."""


# -- settings shared by the commands that talk to InfluxDB ------------------------------------------

def influx_options(command):
    """--influx-* options: they take precedence over the environment and config.yaml."""
    options = [
        click.option("--influx-url", metavar="URL", help="InfluxDB URL, e.g. http://localhost:8086."),
        click.option("--influx-token", metavar="TOKEN",
                     help="API token (2.x/3.x), or username:password (1.x). Prefer TRACKER_INFLUX_TOKEN."),
        click.option("--influx-org", metavar="ORG", help="Organization (2.x)."),
        click.option("--influx-bucket", metavar="BUCKET",
                     help="Bucket (2.x/3.x), or database[/retention_policy] (1.x)."),
        click.option("--influx-api", type=click.Choice(["auto", "v1", "v2"]),
                     help="Write API (default auto: asks the server)."),
        click.option("--ca-file", type=click.Path(dir_okay=False), help="CA certificate for TLS."),
        click.option("--insecure", is_flag=True, default=None,
                     help="Do not verify the server's TLS certificate (prints a warning)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _influx_overrides(kwargs: dict) -> dict:
    insecure = kwargs.pop("insecure", None)
    return {
        "influx.url": kwargs.pop("influx_url", None),
        "influx.token": kwargs.pop("influx_token", None),
        "influx.org": kwargs.pop("influx_org", None),
        "influx.bucket": kwargs.pop("influx_bucket", None),
        "influx.api": kwargs.pop("influx_api", None),
        "influx.ca_file": kwargs.pop("ca_file", None),
        "influx.verify_tls": False if insecure else None,
    }


def load_or_exit(overrides: dict | None = None):
    """The effective settings, or exit 2 with one sentence on what is wrong."""
    from tracker.config import ConfigError, load_settings

    try:
        return load_settings(overrides)
    except ConfigError as error:
        raise click.exceptions.Exit(_fail(str(error), 2)) from None


def _fail(message: str, code: int) -> int:
    click.echo(f"Error: {message}", err=True)
    return code


def _duration_option(value: str | None, what: str) -> float | None:
    if value is None:
        return None
    from tracker.timespec import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=what) from None
    if seconds <= 0:
        raise click.BadParameter("must be more than 0 seconds", param_hint=what)
    return seconds


# -- tracker run -----------------------------------------------------------------------------------

@cli.command()
@click.option("--interval", metavar="SECONDS", help="Seconds between samples (default 1; e.g. 0.5, 2s).")
@click.option("--for", "run_for", metavar="DURATION", help="Stop cleanly after this long (e.g. 30s, 5m, 2h).")
@click.option("--source", type=click.Choice(["auto", "macos", "x11", "demo"]), default="auto",
              show_default=True, help="Where samples come from; demo makes up a believable stream.")
@click.option("--away-after", metavar="DURATION",
              help="No input for this long counts as away (default 3m).")
@click.option("--no-titles", is_flag=True, help="Record no window titles at all.")
@click.option("--quiet", "-q", is_flag=True, help="No live view: one log line per change of activity.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Format of the log lines (when quiet or not on a terminal).")
@influx_options
def run(interval: str | None, run_for: str | None, source: str, away_after: str | None, no_titles: bool,
        quiet: bool, log_format: str, **influx: object) -> None:
    """Record the foreground app every second and send it to InfluxDB."""
    from tracker.runner import Run, RunOptions, install_signal_handlers
    from tracker.sources import SourceUnavailable
    from tracker.status import AlreadyRunning

    overrides = _influx_overrides(influx) | {
        "interval": _duration_option(interval, "--interval"),
        "away_after": _duration_option(away_after, "--away-after"),
        "titles": False if no_titles else None,
    }
    loaded = load_or_exit(overrides)
    options = RunOptions(source=source, run_for=_duration_option(run_for, "--for"), quiet=quiet,
                         log_format=log_format)
    view = _run_view(options)
    runner = Run(loaded.settings, options, view)
    install_signal_handlers(runner)
    try:
        with view:
            code = runner.execute()
    except SourceUnavailable as error:
        code = _fail(str(error), 2)
    except AlreadyRunning as error:
        code = _fail(str(error), 1)
    raise click.exceptions.Exit(code)


def _run_view(options):
    import sys

    from tracker.display import ActivityLog, LiveView

    if options.quiet or not sys.stdout.isatty():
        return ActivityLog(sys.stdout, options.log_format)
    from rich.console import Console

    return LiveView(Console())


# -- tracker config --------------------------------------------------------------------------------

@cli.group()
def config() -> None:
    """Show or create the settings file."""


@config.command("show")
@influx_options
def config_show(**influx: object) -> None:
    """Print the effective settings and where each came from (the token is masked)."""
    from tracker import paths
    from tracker.config import masked

    loaded = load_or_exit(_influx_overrides(influx))
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
    from tracker import paths
    from tracker.config import CONFIG_TEMPLATE

    path = paths.config_file()
    if path.exists() and not force:
        raise click.exceptions.Exit(_fail(f"{path} exists already; use --force to replace it.", 1))
    paths.write_private(path, CONFIG_TEMPLATE)
    click.echo(f"Wrote {path}. Edit it, then `tracker config show` to check.")
