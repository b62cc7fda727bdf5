"""The command line: one click module; the work lives in the modules it calls."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from tracker import EXPORT_FORMATS, LOG_FORMATS, __version__
from tracker.config import DEFAULTS, SETTINGS, Setting
from tracker.recording.sources import SOURCE_NAMES

if TYPE_CHECKING:  # pathlib only where it is used: importing it slows every start, `tracker --help` too
    from datetime import datetime
    from pathlib import Path

    from rich.console import Console

    from tracker.categories.rules import Categories
    from tracker.config import LoadedSettings
    from tracker.recording.runner import View


class Failure(click.ClickException):
    """One plain sentence for the user and an exit code: click prints `Error: <message>` to stderr and exits."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        # click reads the code from the instance; its annotations make it one code per class (a ClassVar).
        self.exit_code = exit_code  # type: ignore[misc]

_Command = TypeVar("_Command", bound=Callable[..., Any])  # a command function, before click makes it a Command


class _Commands(click.Group):
    """The top command group: failures the machine causes rather than tracker (a damaged, foreign or read-only
    database, a full disk, a file that cannot be used) end as one plain sentence and exit 1, whichever command
    met them. Any other exception is a bug, and keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        import sys

        from tracker.ui.output import guard_output

        start = guard_output()
        try:
            try:
                return super().invoke(ctx)
            finally:
                sys.stdout.flush()  # a full disk under `> file` fails here, not at exit past this handler
        except Exception as error:
            # A run's log lines are whole each: those written before the disk filled stay.
            failure = _known_failure(error, None if ctx.invoked_subcommand == "run" else start)
            if failure is None:
                raise
            raise failure from None


def _known_failure(error: Exception, output_start: int | None = None) -> Failure | None:
    """The plain Failure for an exception the machine caused; None for any other (a bug). `output_start`: see
    tracker.ui.output.guard_output."""
    from pathlib import Path

    from tracker.storage.db import StoreUnavailable, advice, plain_reason  # sqlite3: only when something failed
    from tracker.ui.output import refused_output

    refused = refused_output(error, output_start)
    if refused is not None:
        return Failure(refused, 1)
    if isinstance(error, StoreUnavailable):
        return Failure(str(error), 1)
    if isinstance(error, OSError) and error.filename is not None:
        reason = plain_reason(error)
        what_to_do = advice(reason, Path(error.filename)) or "; fix that, or set TRACKER_HOME to another directory"
        return Failure(f"Cannot use {error.filename}: {reason}{what_to_do}.", 1)
    return None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracker")
def cli() -> None:
    """A private activity tracker: the foreground app, classified, written to your own InfluxDB."""


# -- settings given as options: declared in tracker.config, they override the environment and config.yaml ---

def setting_options(*names: str) -> Callable[[_Command], _Command]:
    """A decorator adding the command-line options of these settings (dotted names), in this order.

    Each option's value reaches the command as a keyword argument; setting_overrides() takes them out."""
    def decorate(command: _Command) -> _Command:
        for name in reversed(names):
            command = _setting_option(SETTINGS[name])(command)
        return command

    return decorate


def _setting_option(setting: Setting) -> Callable[[_Command], _Command]:
    assert setting.option, f"{setting.name} has no command-line option"
    declaration = (setting.option, _parameter_name(setting))
    help_text = setting.option_help or setting.help
    if setting.secret and setting.variable:  # other users can see a command line, not the environment
        help_text += f" Prefer {setting.variable}."
    if setting.kind == "bool":
        # A flag sets the opposite of the default (--insecure: verify_tls false); absent, it sets nothing.
        return click.option(*declaration, is_flag=True, flag_value=not DEFAULTS[setting.name], default=None,
                            help=help_text)
    if setting.kind == "choice":
        return click.option(*declaration, type=click.Choice(setting.choices), help=help_text)
    if setting.kind == "certificate":
        return click.option(*declaration, type=click.Path(dir_okay=False), help=help_text)
    if setting.kind == "duration":
        # Parsed here, so a bad value is a usage error naming the option.
        return click.option(*declaration, metavar=setting.metavar, help=help_text,
                            callback=lambda _context, _parameter, value: _duration_option(value, setting.option))
    assert setting.kind in ("text", "url"), f"no command-line option for a setting of kind {setting.kind}"
    return click.option(*declaration, metavar=setting.metavar, help=help_text)


def _parameter_name(setting: Setting) -> str:
    return setting.name.replace(".", "_")


def setting_overrides(kwargs: dict[str, object]) -> dict[str, object]:
    """The setting options out of a command's keyword arguments, as overrides for load_settings (None: not
    given)."""
    return {name: kwargs.pop(_parameter_name(setting)) for name, setting in SETTINGS.items()
            if _parameter_name(setting) in kwargs}


# The settings of the commands that talk to InfluxDB.
influx_options = setting_options("influx.url", "influx.token", "influx.org", "influx.bucket", "influx.api",
                                 "influx.ca_file", "influx.verify_tls")


def load_or_exit(overrides: dict[str, object] | None = None) -> LoadedSettings:
    """The effective settings, or exit 2 with one sentence on what is wrong."""
    from tracker.config import ConfigError, load_settings

    try:
        return load_settings(overrides)
    except ConfigError as error:
        raise Failure(str(error), 2) from None


def _duration_option(value: str | None, what: str, limits: tuple[float, float] | None = None) -> float | None:
    if value is None:
        return None
    from tracker.timespec import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=what) from None
    if seconds <= 0:
        raise click.BadParameter("must be more than 0 seconds", param_hint=what)
    if limits is not None and not limits[0] <= seconds <= limits[1]:
        raise click.BadParameter(f"{value!r} is out of range: use from {limits[0]:g}s to {limits[1]:g}s",
                                 param_hint=what)
    return seconds


# -- tracker run -----------------------------------------------------------------------------------

@cli.command(short_help='Record the foreground app and send it to InfluxDB.')
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
@influx_options
def run(run_for: str | None, source: str, quiet: bool, log_format: str, log_file: str | None,
        log_max_bytes: int, **setting_values: object) -> None:
    """Record the foreground app every second and send it to InfluxDB."""
    log_stream: TextIO | None = None
    if log_file is not None:  # first: a settings error must reach the file too
        from pathlib import Path
        from typing import cast

        from tracker.ui.logfile import CappedLog

        # A text stream like a file's, written through at once: what ActivityLog needs of a TextIO.
        log_stream = cast("TextIO", CappedLog(Path(log_file), log_max_bytes, take_over_output=True))
    from tracker.recording.metrics import MetricsUnavailable
    from tracker.recording.runlock import AlreadyRunning
    from tracker.recording.runner import record_until_stopped
    from tracker.recording.sources import SourceUnavailable

    loaded = load_or_exit(setting_overrides(setting_values))
    seconds = _duration_option(run_for, "--for")
    view = _run_view(quiet, log_format, log_stream)
    try:
        with view:
            record_until_stopped(loaded.settings, source, seconds, view)
    except SourceUnavailable as error:
        raise Failure(str(error), 2) from None
    except AlreadyRunning as error:
        raise Failure(str(error), 1) from None
    except MetricsUnavailable as error:
        raise Failure(str(error), 2) from None


def _run_view(quiet: bool, log_format: str, log_stream: TextIO | None = None) -> View:
    import sys

    from tracker.ui.live import ActivityLog, LiveView

    if log_stream is not None:
        return ActivityLog(log_stream, log_format)
    if quiet or not sys.stdout.isatty():
        return ActivityLog(sys.stdout, log_format)
    from rich.console import Console

    return LiveView(Console())


# -- tracker report and status ---------------------------------------------------------------------

def _period_options(since: str, until: str | None):
    """--since and --until as local, timezone-aware moments; a usage error names the bad one."""
    from tracker.timespec import local_now

    now = local_now()
    start = _since_option(since, now)
    end = _until_option(until, now)
    if end <= start:
        raise click.BadParameter(f"must be after --since ({start:%Y-%m-%d %H:%M})", param_hint="--until")
    return start, end


def _since_option(since: str, now: datetime) -> datetime:
    """--since as a local, timezone-aware moment; a usage error when it is bad."""
    from tracker.timespec import parse_since

    try:
        return parse_since(since, now)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None


def _until_option(until: str | None, now: datetime) -> datetime:
    """--until as a local, timezone-aware moment (now when not given); a usage error when it is bad."""
    from tracker.timespec import parse_until

    try:
        return parse_until(until, now) if until else now
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--until") from None


def _plain_console() -> Console:
    """A rich console for the report tables that does not colour the numbers and dates in plain text."""
    from rich.console import Console

    return Console(highlight=False)


@cli.command(short_help='Where your time went, from local history.')
@click.option("--since", default="today", show_default=True, metavar="WHEN",
              help="today, yesterday, 7d (today and the 6 days before), 2h, or a date like 2024-05-01.")
@click.option("--until", metavar="WHEN", help="A date (included), yesterday, or a date and time; default now.")
@click.option("--by", type=click.Choice(["category", "activity", "app", "hour", "day"]), default="category",
              show_default=True, help="What each row is: hour means hour of the day.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of tables.")
def report(since: str, until: str | None, by: str, as_json: bool, as_csv: bool) -> None:
    """Where your time went, from the local history (no InfluxDB needed)."""
    from tracker.storage.queries import empty_report, read_report
    from tracker.ui import present

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    start, end = _period_options(since, until)
    found = read_report(start, end, by)
    if as_json or as_csv:
        # Scripts get the same keys or columns before anything was recorded, with nothing in them.
        shown = empty_report(start, end, by) if found is None else found
        if as_json:
            click.echo(present.report_json(shown))
        else:
            click.echo(present.report_csv(shown), nl=False)
    elif found is None:
        _plain_console().print(present.NO_HISTORY)
    else:
        present.render_report(found, _plain_console())


@cli.command(short_help='Is `tracker run` running, and how is it doing.')
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Whether `tracker run` is running for this data directory, and how it is doing (exit 3: not running)."""
    from tracker.recording.runstate import EXIT_NOT_RUNNING, read_runner_state
    from tracker.ui import present

    state = read_runner_state()
    click.echo(present.status_json(state) if as_json else present.status_text(state))
    if not state.running:
        raise click.exceptions.Exit(EXIT_NOT_RUNNING)


# -- tracker outbox and sync -----------------------------------------------------------------------

@cli.command(short_help='What waits to be sent, and what was refused.')
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--retry-quarantined", is_flag=True,
              help="Put the rows the server refused back in the queue, for `tracker sync` to send again.")
def outbox(as_json: bool, retry_quarantined: bool) -> None:
    """What waits to be sent, the last send, and what the server refused."""
    from tracker.paths import database_file
    from tracker.storage.outbox import read_stats, retry_quarantined_rows
    from tracker.ui import present

    if as_json and retry_quarantined:
        raise click.UsageError("choose one of --json and --retry-quarantined")
    path = database_file()
    if retry_quarantined:
        click.echo(present.retried_text(*retry_quarantined_rows(path)))
        return
    stats = read_stats(path)
    click.echo(present.outbox_json(stats, path) if as_json else present.outbox_text(stats, path))


@cli.command(short_help='Send every waiting sample to InfluxDB now.')
@influx_options
def sync(**setting_values: object) -> None:
    """Send every waiting sample to InfluxDB now."""
    from tracker.paths import database_file
    from tracker.recording.localstore import settle_leftovers
    from tracker.sending.corrections import correcting_sender
    from tracker.sending.sinks import InfluxSettingsError, require_configured
    from tracker.storage.outbox import samples

    settings = load_or_exit(setting_overrides(setting_values)).settings.influx
    try:
        require_configured(settings)
    except InfluxSettingsError as error:
        raise Failure(str(error), 2) from None
    settle_leftovers(database_file())
    with _progress_bar("Sending to InfluxDB") as progress:
        sender = correcting_sender(database_file(), settings, lambda line: click.echo(line, err=True))
        result = sender.send_all(progress)
    done = f"sent {samples(result.sent)} to {result.url}"
    if result.quarantined:
        done += f"; {result.quarantined} refused by the server (see `tracker outbox`)"
    if not result.ok:
        prefix = f"{done[0].upper()}{done[1:]}, then: " if result.sent else ""
        raise Failure(f"{prefix}{result.error} {samples(result.waiting)} still waiting.", 1)
    click.echo(done if result.sent or result.quarantined else "Nothing to send: no samples are waiting.")


# -- tracker import and export --------------------------------------------------------------------

@cli.group("import", short_help='Bring in time recorded by ActivityWatch.')
def import_group() -> None:
    """Bring in time recorded by another tool, into the local history and, through the outbox, InfluxDB."""


@import_group.command("activitywatch")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--server", metavar="URL", help="Read straight from a running aw-server, e.g. http://127.0.0.1:5600.")
def import_activitywatch(file: str | None, server: str | None) -> None:
    """Import an ActivityWatch export FILE (or every bucket of --server URL): window time inside not-AFK time,
    with the browser's URLs, classified with your current categories; AFK time becomes Away."""
    from tracker.categories.privacy import Privacy
    from tracker.interchange.activitywatch import ExportError
    from tracker.interchange.importing import StagedExport, file_export, import_staged, server_export
    from tracker.paths import database_file
    from tracker.recording.runlock import is_running
    from tracker.storage.db import StoreUnavailable
    from tracker.storage.outbox import OutboxFull
    from tracker.ui import present

    if (file is None) == (server is None):
        raise click.UsageError("give an export FILE or --server URL (one of them)")
    settings = load_or_exit().settings
    categories = _categories_or_exit(remember=True)
    try:
        privacy = Privacy(settings.privacy)
    except ValueError as error:
        raise Failure(f"{error}; fix it in the settings (`tracker config show`).", 2) from None
    source = str(file if file is not None else server)
    try:
        # The export's events wait on disk beside the database, and are combined a day at a time.
        with StagedExport(database_file().parent) as staged:
            with _progress_bar(f"Reading {source}") as progress, \
                    (file_export(file) if file is not None else server_export(source)) as (chunks, size):
                staged.read(_counted(chunks, size, progress), source)
            result = None
            if staged.events:
                with _progress_bar("Importing from ActivityWatch") as progress:
                    result = import_staged(database_file(), staged, categories, privacy, settings.host,
                                           settings.outbox_max_rows, progress, recording=is_running() is not None)
    except ExportError as error:
        raise Failure(str(error), 1) from None
    except OutboxFull as error:
        raise Failure(f"The import makes {error.adding:,} points for InfluxDB but the outbox has room for "
                      f"{error.room:,} (outbox_max_rows): send what waits with `tracker sync`, or raise "
                      "outbox_max_rows, and import again; nothing was imported.", 1) from None
    except StoreUnavailable as error:
        raise Failure(f"{error} Nothing was imported.", 1) from None
    if result is None or not result.spans:
        click.echo(f"{source} holds no window time (aw-watcher-window buckets): nothing to import.")
        return
    click.echo(present.import_text(result, source))


@cli.command("export", short_help='Write the history for ActivityWatch or pandas.')
@click.option("--format", "file_format", type=click.Choice(EXPORT_FORMATS), required=True,
              help="activitywatch: buckets aw-server's import accepts; jsonl, csv: one row per event.")
@click.option("--since", metavar="WHEN", help="today, 7d, a date like 2024-05-01...; default: all the history.")
@click.option("--until", metavar="WHEN", help="A date (included) or a date and time; default now.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE", help="Write to FILE, not stdout.")
@click.option("--no-titles", is_flag=True, help="Leave window titles and URLs out.")
def export_command(file_format: str, since: str | None, until: str | None, output: str | None,
                   no_titles: bool) -> None:
    """Write the local history's events (clipped to the period) as ActivityWatch buckets, JSON lines or CSV."""
    import json
    from datetime import datetime, timezone

    from tracker.interchange import export
    from tracker.storage.queries import read_events
    from tracker.timespec import local_now
    from tracker.ui import present

    if since is not None:
        start, end = _period_options(since, until)
    else:  # all the history: from the epoch
        start, end = datetime.fromtimestamp(0, tz=timezone.utc), _until_option(until, local_now())
    events = read_events(start, end)
    if events is None:  # the file still gets its header or buckets: a script reading it needs no special case
        click.echo(present.NO_HISTORY, err=True)
        events = []
    clipped = export.clipped(events, int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    titles = not no_titles
    if file_format == "activitywatch":
        document = export.activitywatch(clipped, load_or_exit().settings.host, datetime.now(timezone.utc), titles)
        chunks: Iterable[str] = json.JSONEncoder(ensure_ascii=False).iterencode(document)
    else:
        chunks = export.jsonl(clipped, titles) if file_format == "jsonl" else export.csv_lines(clipped, titles)
    _write_out(chunks, output)


def _write_out(chunks: Iterable[str], output: str | None) -> None:
    """Text to stdout, or to the file `output` (written whole, then put in place: never half a file)."""
    import os
    import sys

    if output is None:
        try:
            for chunk in chunks:
                sys.stdout.write(chunk)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head` read what it wanted; what is left to flush at exit goes nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    from pathlib import Path

    from tracker.paths import write_whole

    try:
        write_whole(Path(output), chunks)
    except OSError as error:
        raise Failure(f"Cannot write {output}: {(error.strerror or str(error)).lower()}.", 1) from None


# -- tracker recategorize -------------------------------------------------------------------------

@cli.command(short_help="Apply today's categories to recorded history.")
@click.option("--since", default="30d", show_default=True, metavar="WHEN",
              help="From when: 30d (today and the 29 days before), yesterday, or a date like 2024-05-01.")
@click.option("--all", "everything", is_flag=True, help="All recorded history, however old.")
@click.option("--dry-run", is_flag=True, help="Print what would move from which category to which; change nothing.")
@influx_options
def recategorize(since: str, everything: bool, dry_run: bool, **setting_values: object) -> None:
    """Apply today's categories to the local history, the outbox and this host's points in InfluxDB."""
    from tracker.events import default_pulsetime
    from tracker.lineprotocol import clean_tag
    from tracker.paths import database_file
    from tracker.redact import display_url
    from tracker.sending import corrections
    from tracker.sending.sinks import SendError
    from tracker.tasks import recategorize as recategorizing
    from tracker.timespec import local_now
    from tracker.ui import present

    if everything and click.get_current_context().get_parameter_source("since") != click.core.ParameterSource.DEFAULT:
        raise click.UsageError("choose one of --since and --all")
    now = local_now()
    since_ms = None if everything else int(_since_option(since, now).timestamp() * 1000)
    loaded = load_or_exit(setting_overrides(setting_values)).settings
    categories = _categories_or_exit()
    database = database_file()
    history, outbox_rows = ({}, 0) if not database.exists() else recategorizing.recategorize_local(
        database, categories, since_ms, default_pulsetime(loaded.interval), apply=not dry_run)
    outcome = recategorizing.Outcome(history, outbox_rows, None)
    host, until_ms = clean_tag(loaded.host) or "unknown", int(now.timestamp() * 1000)
    if not loaded.influx.configured:
        outcome.influx_note = "InfluxDB is not configured: only the local history was recategorised."
    else:
        try:
            with _progress_bar("Reading InfluxDB" if dry_run else "Correcting InfluxDB") as progress:
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
    from tracker.categories.rules import CategoriesError
    from tracker.storage.db import StoreUnavailable
    from tracker.tasks import recategorize as recategorizing

    try:
        recategorizing.defer_influx(database, host, categories, since_ms, until_ms)
    except (StoreUnavailable, CategoriesError) as problem:
        raise Failure(f"{str(error).rstrip('.')}, and the correction of its points could not be kept for later"
                      f" ({problem}); the local history was recategorised: run `tracker recategorize` again when"
                      " InfluxDB answers.", 1) from None


# -- tracker demo ----------------------------------------------------------------------------------

@cli.command(short_help='Write a synthetic week to InfluxDB.')
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366),
              help="How many days back the synthetic history goes.")
@click.option("--step", default="1s", show_default=True, metavar="DURATION",
              help="Time between points, 1s to 1h (1s like `tracker run`; 10s writes a tenth as many).")
@click.option("--remove", is_flag=True, help="Delete the demo points (host=demo, demo=true) again instead.")
@influx_options
def demo(days: int, step: str, remove: bool, **setting_values: object) -> None:
    """Write a synthetic week (host=demo, demo=true) to InfluxDB, to see the dashboard at once."""
    from tracker.redact import display_url
    from tracker.sending.sinks import SendError
    from tracker.tasks import demo as demo_module

    loaded = load_or_exit(setting_overrides(setting_values)).settings
    settings = loaded.influx
    where = display_url(settings.url)
    try:
        if remove:
            kept = demo_module.remove_week(settings)
            if kept is None:
                click.echo("tracker removes demo points on InfluxDB 1.x only. "
                           f"{demo_module.remove_instructions(settings)}")
                raise click.exceptions.Exit(1)
            click.echo(f"Removed the demo points (host={demo_module.DEMO_HOST}, demo=true) from {where}.")
            if kept:
                click.echo(f"Kept {kept:,} series of host={demo_module.DEMO_HOST} without the demo=true tag: they "
                           "are a real machine's (or demo points written before tracker tagged them), which only "
                           f"you can tell; if they are demo points, run {demo_module.drop_untagged_query()} in the "
                           "influx shell.")
            return
        # At least a second: a smaller step makes billions of points, and stalls for hours.
        seconds = _duration_option(step, "--step", (1.0, 3600.0))
        with _progress_bar(f"Writing {days} days of demo activity") as progress:
            written = demo_module.write_week(settings, days, step=seconds or 1.0, progress=progress,
                                             own_host=loaded.host)
    except demo_module.DemoRefused as error:
        raise Failure(str(error), 1) from None
    except SendError as error:
        raise Failure(f"{error}.", 1) from None
    click.echo(f"Wrote {written:,} demo points (host={demo_module.DEMO_HOST}) to {where}, bucket "
               f"{settings.bucket}. Remove them with `tracker demo --remove`.")


def _counted(chunks: Iterable[bytes], size: int | None, progress: Callable[[int, int | None], None] | None
             ) -> Iterator[bytes]:
    """The chunks, telling `progress` how many bytes of `size` went by."""
    done = 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        if progress is not None:
            progress(done, size)


def _progress_bar(description: str):
    """A context giving a progress(done, total) callback: a rich bar on a terminal, nothing otherwise."""
    import contextlib
    import sys

    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import Progress

    @contextlib.contextmanager
    def bar():
        with Progress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task(description, total=None)
            yield lambda done, total: progress.update(task, completed=done, total=total)

    return bar()


# -- tracker service -------------------------------------------------------------------------------

EXIT_SERVICE_NOT_INSTALLED = 4  # and 3 (status's "not running") when installed but not running


@cli.group(short_help='Start `tracker run` at login, or stop doing so.')
def service() -> None:
    """Start `tracker run --quiet` at login (launchd on macOS, a systemd user unit on Linux)."""


@service.command("install")
@click.option("--dry-run", is_flag=True, help="Print the file it would write and the commands it would run.")
def service_install(dry_run: bool) -> None:
    """Start `tracker run` at every login, from this installation, and now when a desktop is there."""
    from tracker.tasks import service as services
    from tracker.ui import present

    loaded = load_or_exit()  # settings that do not load would fail at every login
    manager = services.current_manager()
    try:
        spec = services.current_spec()
        shell_only = services.settings_only_in_shell(manager)
        if shell_only:
            names = ", ".join(shell_only)
            raise Failure(f"{names} {'is' if len(shell_only) == 1 else 'are'} set only in this shell, which a "
                          "service started at login does not see: put the InfluxDB settings in config.yaml "
                          "(`tracker config init`), unset the variables, and install again.", 2)
        plan = services.plan_install(spec, manager)
        if not loaded.settings.influx.configured:
            restart = services.describe_command(services.restart_command(manager))
            plan.notes.append("InfluxDB is not configured in config.yaml, so the service records locally only "
                              f"until it is; then restart it (`{restart}`).")
        if not dry_run:
            services.carry_out(plan)
    except services.ServiceError as error:
        raise Failure(str(error), 1) from None
    click.echo(present.service_plan_text(plan, done=not dry_run))


@service.command("uninstall")
def service_uninstall() -> None:
    """Stop the service and remove it; the recorded data and the settings stay."""
    from tracker import paths
    from tracker.tasks import service as services
    from tracker.ui import present

    manager = services.current_manager()
    plan = services.plan_uninstall(manager)
    if not plan.file.exists():
        click.echo(f"No tracker service is installed (no {plan.file}); nothing to do.")
        return
    try:
        services.carry_out(plan)
    except services.ServiceError as error:
        raise Failure(str(error), 1) from None
    click.echo(present.service_plan_text(plan, done=True))
    click.echo(f"Your recorded data in {paths.data_dir()} and your settings are untouched.")


@service.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def service_status(as_json: bool) -> None:
    """Whether the service is installed and running (exit 3: installed, not running; 4: not installed)."""
    from tracker.recording.runstate import EXIT_NOT_RUNNING
    from tracker.tasks import service as services
    from tracker.ui import present

    try:
        state = services.read_state(services.current_manager())
    except services.ServiceError as error:
        raise Failure(str(error), 1) from None
    click.echo(present.service_status_json(state) if as_json else present.service_status_text(state))
    if not state.installed:
        raise click.exceptions.Exit(EXIT_SERVICE_NOT_INSTALLED)
    if not state.running:
        raise click.exceptions.Exit(EXIT_NOT_RUNNING)


# -- tracker doctor --------------------------------------------------------------------------------

@cli.command(short_help='Check everything recording needs; say how to fix it.')
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def doctor(as_json: bool) -> None:
    """Check the desktop, idle time, settings, categories, InfluxDB, the outbox, the run and the service
    (exit 1 when something blocks recording)."""
    from tracker.tasks.doctor import blocks_recording, run_checks
    from tracker.ui import present

    checks = run_checks()
    click.echo(present.doctor_json(checks) if as_json else present.doctor_text(checks))
    if blocks_recording(checks):
        raise click.exceptions.Exit(1)


# -- tracker config --------------------------------------------------------------------------------

@cli.group(short_help='Show or create the settings file.')
def config() -> None:
    """Show or create the settings file."""


@config.command("show")
@influx_options
def config_show(**setting_values: object) -> None:
    """Print the effective settings and where each came from (the token is masked)."""
    from tracker import paths
    from tracker.config import masked

    loaded = load_or_exit(setting_overrides(setting_values))
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
    from tracker.config import config_template

    path = paths.config_file()
    if path.exists() and not force:
        raise Failure(f"{path} exists already; use --force to replace it.", 1)
    paths.write_private(path, config_template())
    click.echo(f"Wrote {path}. Edit it, then `tracker config show` to check.")


# -- tracker categories ----------------------------------------------------------------------------

@cli.group(short_help='See, test and edit your categories.')
def categories() -> None:
    """See, test and edit the rules that put apps and sites into categories."""


@categories.command("uncategorized")
@click.option("--since", default="7d", show_default=True, metavar="WHEN",
              help="today, yesterday, 7d, 30d, or a date like 2024-05-01.")
@click.option("--until", metavar="WHEN", help="A date (included) or a date and time; default now.")
def categories_uncategorized(since: str, until: str | None) -> None:
    """The activities that took the most time without a category, to write rules for."""
    from tracker.storage.queries import read_uncategorized
    from tracker.ui import present

    start, end = _period_options(since, until)
    activities = read_uncategorized(start, end)
    if activities is None:
        _plain_console().print(present.NO_HISTORY)
    else:
        present.render_uncategorized(activities, start, end, _plain_console())


def _categories_or_exit(path: Path | None = None, remember: bool = False) -> Categories:
    """The categories in force (or those in `path`), or exit 1 with the file, line and problem; `remember`:
    see load_categories."""
    from tracker.categories.files import load_categories
    from tracker.categories.rules import CategoriesError

    try:
        return load_categories(path, remember=remember)
    except CategoriesError as error:
        raise Failure(str(error), 1) from None


def _shortened(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … (+{len(items) - limit} more)" if len(items) > limit else "")


@categories.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def categories_list(as_json: bool) -> None:
    """Show each category, its score and its rules."""
    import sys

    rules = _categories_or_exit(remember=True)
    if as_json:
        import json

        click.echo(json.dumps(rules.to_dict(), indent=2, ensure_ascii=False))
        return
    from tracker.paths import display_path
    from tracker.ui import plaintable
    from tracker.ui.colours import score_style

    columns = [plaintable.Column("Category", no_wrap=True), plaintable.Column("Score", justify="right"),
               plaintable.Column("Rules")]
    rows = [(category.name, f"{category.score:+g}",
             "\n".join(f"{kind}s: {_shortened(category.written(kind))}" for kind in ("app", "domain", "title")
                       if category.written(kind)) or "(no rules)")
            for category in rules.categories]
    # Without colour (a pipe, a file), the same table drawn without rich, which takes long to import.
    width = plaintable.plain_width(sys.stdout)
    drawn = None if width is None else plaintable.draw(columns, rows, width)
    if drawn is not None:
        click.echo(drawn, nl=False)
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table()
        for column in columns:
            table.add_column(column.header, justify=column.justify, no_wrap=column.no_wrap)
        for category, (name, score, rule_lines) in zip(rules.categories, rows, strict=True):
            style = score_style(category.score)
            # Text, not markup: a regex's [brackets] must show as written.
            table.add_row(Text(name, style=style), Text(score, style=style), Text(rule_lines))
        Console().print(table)
    # Below, not as a caption: a caption wraps a long path at the table's width.
    click.echo(f"{display_path(rules.file)}: {rules.rule_count} rules")


@categories.command("test")
@click.argument("app")
@click.option("--title", metavar="TITLE", help="The window title.")
@click.option("--url", metavar="URL", help="The page's URL, for a browser.")
def categories_test(app: str, title: str | None, url: str | None) -> None:
    """Show which category APP (with this title and URL) falls in, and which rule decides."""
    from tracker.model import Sample, utc_now
    from tracker.paths import display_path
    from tracker.ui.colours import score_label

    rules = _categories_or_exit(remember=True)
    match = rules.classify(Sample(time=utc_now(), app=app, title=title, url=url))
    if match.rule is None:
        click.echo(f"No rule matched: {match.category}, score 0.")
    else:
        click.echo(f"{match.category}, score {match.score:g} ({score_label(match.score)})")
    click.echo(f"  activity: {match.activity}")
    if match.rule is not None:
        click.echo(f"  rule:     {match.rule}")
    click.echo(f"  rules in: {display_path(rules.file)}")


@categories.command("path")
def categories_path() -> None:
    """Print the path of the categories file in force."""
    from tracker.categories.files import active_categories_path, bundled_categories_path

    path = active_categories_path()
    click.echo(str(path))
    # The note goes to stderr so that $(tracker categories path) is just the path.
    if path == bundled_categories_path():
        click.echo("The bundled default; `tracker categories edit` makes your own copy.", err=True)
    else:
        click.echo("Your own file; it replaces the bundled default.", err=True)


@categories.command("validate")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def categories_validate(file: str | None) -> None:
    """Check FILE (default: the file in force); exit 1 if it has an error."""
    from pathlib import Path

    from tracker.paths import display_path

    rules = _categories_or_exit(None if file is None else Path(file))
    click.echo(f"OK: {len(rules.categories)} categories, {rules.rule_count} rules ({display_path(rules.file)})")


@categories.command("edit")
def categories_edit() -> None:
    """Edit your categories.yaml in $VISUAL or $EDITOR; a file with an error is never put in place.

    The first time, you start from the bundled defaults.
    """
    import os
    import tempfile
    from pathlib import Path

    from tracker import paths
    from tracker.categories.files import (
        MAX_CATEGORIES_BYTES,
        active_categories_path,
        bundled_categories_path,
        decode_categories,
        read_categories_bytes,
        read_categories_text,
    )
    from tracker.categories.rules import CategoriesError
    from tracker.paths import display_path

    editor = _editor_command()  # before anything else: an unusable $EDITOR changes nothing
    user_file = paths.user_categories_file()
    active = active_categories_path()
    previous = "the bundled defaults" if active == bundled_categories_path() else display_path(user_file)
    try:
        # The user's file as bytes: one saved in another encoding opens as it is, to be fixed in the editor.
        original = (read_categories_text(active).encode("utf-8") if active == bundled_categories_path()
                    else read_categories_bytes(active))
        if len(original) > MAX_CATEGORIES_BYTES:
            decode_categories(original, active)  # refused: too large to open
    except CategoriesError as error:
        raise Failure(str(error), 1) from None
    try:
        # The copy sits next to the real file: private, and named .yaml for the editor's highlighting.
        descriptor, name = tempfile.mkstemp(prefix=".categories-edit-", suffix=".yaml",
                                            dir=paths.private_dir(user_file.parent))
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(original)
    except OSError as error:
        raise Failure(f"cannot write a copy to edit in {display_path(user_file.parent)} "
                      f"({error.strerror or error}); check that the directory is writable", 1) from None
    draft = Path(name)
    try:
        code = _edit_categories_draft(editor, draft, original, user_file, previous)
    finally:
        # Whatever happened, the edit stays somewhere: the draft goes only when it holds nothing new.
        if _draft_is_kept_elsewhere(draft, original, user_file):
            draft.unlink(missing_ok=True)
    if code:
        click.echo(f"Kept {previous}.", err=True)
    raise click.exceptions.Exit(code)


def _edit_categories_draft(editor: list[str], draft: Path, original: bytes, user_file: Path, previous: str) -> int:
    """Edit `draft` until it is valid and saved (0), or the user keeps the previous version (1).

    Failure when the editor fails: nothing is put in use then either, and a changed draft is kept aside.
    """
    from tracker import paths
    from tracker.categories.files import decode_categories, parse_categories
    from tracker.categories.rules import CategoriesError
    from tracker.paths import display_path

    # Saved through a symlink (a dotfiles repository, say), not over it.
    target = user_file.resolve() if user_file.is_symlink() else user_file
    while True:
        status = _run_editor(editor, draft)
        try:
            edited = draft.read_bytes()
        except OSError as error:
            raise Failure(f"the editor left no readable file at {display_path(draft)} ({error.strerror or error}); "
                          f"nothing was saved.\nKept {previous}.", 1) from None
        if status != 0:
            how = f"was stopped by signal {-status}" if status < 0 else f"exited with status {status}"
            if edited == original:
                raise Failure(f"the editor {how}; nothing was saved.\nKept {previous}.", 1)
            kept = _keep_rejected(edited, user_file, draft)
            raise Failure(f"the editor {how}, so your edit was not put in use; it is in {kept}.\n"
                          f"Kept {previous}.", 1)
        if edited == original:
            click.echo(f"No changes; kept {previous}.")
            return 0
        try:
            rules = parse_categories(decode_categories(edited, user_file), user_file)
        except CategoriesError as error:
            click.echo(f"Error: {error}", err=True)
            if _ask_edit_again():
                continue
            # Not in force, but not lost either: an hour of edits may hang on one typo.
            kept = _keep_rejected(edited, user_file, draft)
            click.echo(f"Your edit is in {kept}.", err=True)
            return 1
        try:
            paths.write_private(target, edited)
        except OSError as error:
            raise Failure(f"cannot save {display_path(target)} ({error.strerror or error}); your edit is in "
                          f"{display_path(draft)}", 1) from None
        click.echo(f"Saved {display_path(user_file)}: {len(rules.categories)} categories, "
                   f"{rules.rule_count} rules. A running tracker picks it up within seconds.")
        return 0


_REJECTED_NAME = "categories.rejected.yaml"  # beside the user's categories.yaml: an edit not put in use


def _draft_is_kept_elsewhere(draft: Path, original: bytes, user_file: Path) -> bool:
    """True when what the draft holds is the original, or was saved in place or as categories.rejected.yaml."""
    try:
        edited = draft.read_bytes()
    except OSError:  # gone (the editor moved it?): nothing to remove
        return True
    if edited == original:
        return True
    for copy in (user_file, user_file.with_name(_REJECTED_NAME)):
        try:
            if copy.read_bytes() == edited:
                return True
        except OSError:
            continue
    return False


def _keep_rejected(edited: bytes, user_file: Path, draft: Path) -> str:
    """Where an edit that is not put in use is kept, as the user should be told: categories.rejected.yaml,
    or the draft itself when that cannot be written."""
    from tracker import paths
    from tracker.paths import display_path

    rejected = user_file.with_name(_REJECTED_NAME)
    try:
        paths.write_private(rejected, edited)
    except OSError:
        return display_path(draft)
    return display_path(rejected)


def _editor_command() -> list[str]:
    """$VISUAL, else $EDITOR (either may carry arguments and quotes, like `code --wait`), else nano or vi, as
    arguments to run; Failure when the variable cannot be split into them."""
    import os
    import shlex
    import shutil

    for variable in ("VISUAL", "EDITOR"):
        value = os.environ.get(variable, "")
        if not value.strip():  # unset or empty: the next choice
            continue
        try:
            return shlex.split(value)
        except ValueError as error:  # an unclosed quote
            raise Failure(f"${variable} ({value}) cannot be read as a command: {error}; fix its quotes", 1) from None
    return ["nano" if shutil.which("nano") else "vi"]


def _run_editor(editor: list[str], file: Path) -> int:
    """Run the editor on `file`; return its exit status (negative: the signal that stopped it)."""
    import shlex
    import subprocess

    try:
        return subprocess.run([*editor, str(file)], check=False).returncode
    except OSError as error:
        raise Failure(f"cannot start the editor '{shlex.join(editor)}' ({error.strerror or error}); "
                      "set $EDITOR to an installed editor, like EDITOR=nano", 1) from None


def _ask_edit_again() -> bool:
    """True for [e]dit again; [k]eep is the default, also when there is no answer (stdin closed)."""
    while True:
        try:
            answer = click.prompt("[e]dit again or [k]eep the previous version?", default="k",
                                  show_default=False)
        except click.Abort:
            return False
        choice = answer.strip().lower()[:1]
        if choice in ("e", "k"):
            return choice == "e"
