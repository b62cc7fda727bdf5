"""What several commands share: the options of the settings (declared in tracker.config), --since and --until,
durations, the progress bar and the console of the report tables.

Most commands import this module, `tracker categories list` too: what only some of them need (rich, and
tracker.timespec, which compiles its patterns on import) is imported inside the function that needs it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tracker.callbacks import Progress
from tracker.config import DEFAULTS, SETTINGS, Setting

if TYPE_CHECKING:
    from rich.console import Console


_Command = TypeVar("_Command", bound=Callable[..., Any])  # a command function, before click makes it a Command

# progress(done, total): how far a long task is; total None while it is not known.


# -- settings given as options: they override the environment and config.yaml ---------------------------------

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
                            callback=lambda _context, _parameter, value: duration_option(value, setting.option))
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


# -- durations and periods: a bad one is a usage error naming its option --------------------------------------

def duration_option(value: str | None, what: str, limits: tuple[float, float] | None = None) -> float | None:
    """The option `what`'s duration in seconds (None when not given), more than 0 and within `limits`."""
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


def period_options(since: str, until: str | None) -> tuple[datetime, datetime]:
    """--since and --until as local, timezone-aware moments; a usage error names the bad one."""
    from tracker.timespec import local_now

    now = local_now()
    start = since_option(since, now)
    end = until_option(until, now)
    if end <= start:
        raise click.BadParameter(f"must be after --since ({start:%Y-%m-%d %H:%M})", param_hint="--until")
    return start, end


def since_option(since: str, now: datetime) -> datetime:
    """--since as a local, timezone-aware moment; a usage error when it is bad."""
    from tracker.timespec import parse_since

    try:
        return parse_since(since, now)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None


def until_option(until: str | None, now: datetime) -> datetime:
    """--until as a local, timezone-aware moment (now when not given); a usage error when it is bad."""
    from tracker.timespec import parse_until

    try:
        return parse_until(until, now) if until else now
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--until") from None


# -- output ------------------------------------------------------------------------------------------------

def plain_console() -> Console:
    """A rich console for the report tables that does not colour the numbers and dates in plain text."""
    from rich.console import Console  # rich takes long to import: only the commands that draw with it

    return Console(highlight=False)


def progress_bar(description: str) -> contextlib.AbstractContextManager[Progress | None]:
    """A context giving a progress(done, total) callback: a rich bar on a terminal, nothing otherwise."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.console import Console  # only on a terminal: a pipe or a file gets no bar
    from rich.progress import Progress as RichProgress

    @contextlib.contextmanager
    def bar() -> Iterator[Progress]:
        with RichProgress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task(description, total=None)
            yield lambda done, total: progress.update(task, completed=done, total=total)

    return bar()
