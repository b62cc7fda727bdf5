"""The command line: the root group, which imports only the module of the command it runs.

Each command lives in its own module here (run.py, report.py, ...); COMMANDS names them. `tracker --help`
imports none of them (the short help is in COMMANDS), `tracker categories list` only categories.py.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib import import_module
from typing import Any, NamedTuple

import click

from tracker import PlainError, __version__
from tracker.ui.output import guard_output, refused_output, replace_unencodable


class Failure(click.ClickException):
    """One plain sentence for the user and an exit code: click prints `Error: <message>` to stderr and exits."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        # click reads the code from the instance; its annotations make it one code per class (a ClassVar).
        self.exit_code = exit_code  # type: ignore[misc]


class CommandInfo(NamedTuple):
    """Where a command is defined, and its line in the group's help (shown without importing the module)."""

    module: str
    attribute: str
    short_help: str | None = None  # None: the group's help imports the module and asks the command


class LazyGroup(click.Group):
    """A group whose commands in `lazy_commands` are imported when they are run or asked for, not before."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, CommandInfo], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        info = self.lazy_commands.get(cmd_name)
        if info is not None and cmd_name not in self.commands:
            command = getattr(import_module(info.module), info.attribute)
            assert isinstance(command, click.Command), f"{info.module}.{info.attribute} is not a click command"
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                              list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as error:
            # click suggests close names from the commands loaded so far: offer all of them, as before.
            raise click.exceptions.NoSuchCommand(error.command_name, possibilities=self.list_commands(ctx),
                                                 ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        short_helps = [self.lazy_commands[name].short_help if name in self.lazy_commands else None for name in names]
        if None in short_helps:
            super().format_commands(ctx, formatter)
            return
        # As click lays them out, with the short help from the registry rather than from the modules.
        with formatter.section("Commands"):
            formatter.write_dl([(name, text or "") for name, text in zip(names, short_helps, strict=True)])


# pip's commands_dict, for tracker: each command, the module that defines it, and its line in `tracker --help`.
COMMANDS: dict[str, CommandInfo] = {
    "run": CommandInfo("tracker.commands.run", "run", "Record the foreground app and send it to InfluxDB."),
    "report": CommandInfo("tracker.commands.report", "report", "Where your time went, from local history."),
    "status": CommandInfo("tracker.commands.status", "status", "Is `tracker run` running, and how is it doing."),
    "outbox": CommandInfo("tracker.commands.outbox", "outbox", "What waits to be sent, and what was refused."),
    "sync": CommandInfo("tracker.commands.outbox", "sync", "Send every waiting sample to InfluxDB now."),
    "import": CommandInfo("tracker.commands.interchange", "import_group", "Bring in time recorded by ActivityWatch."),
    "export": CommandInfo("tracker.commands.interchange", "export_command",
                          "Write the history for ActivityWatch or pandas."),
    "recategorize": CommandInfo("tracker.commands.recategorize", "recategorize",
                                "Apply today's categories to recorded history."),
    "demo": CommandInfo("tracker.commands.demo", "demo", "Write a synthetic week to InfluxDB."),
    "service": CommandInfo("tracker.commands.service", "service", "Start `tracker run` at login, or stop doing so."),
    "doctor": CommandInfo("tracker.commands.doctor", "doctor", "Check everything recording needs; say how to fix it."),
    "config": CommandInfo("tracker.commands.config", "config", "Show or create the settings file."),
    "categories": CommandInfo("tracker.commands.categories", "categories", "See, test and edit your categories."),
    "goals": CommandInfo("tracker.commands.goals", "goals", "Your goals' progress today and this week; check them."),
    "gnome-extension": CommandInfo("tracker.commands.gnome_extension", "gnome_extension_group",
                                   "Install or check the GNOME Shell extension tracker reads windows with."),
}


class _Commands(LazyGroup):
    """The top command group: a PlainError ends as its sentence and its exit code, and failures the machine
    causes rather than tracker (a damaged, foreign or read-only database, a full disk, a file that cannot be
    used) as one plain sentence and exit 1, whichever command met them. Any other exception is a bug, and keeps
    its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        for stream in (sys.stdout, sys.stderr):
            replace_unencodable(stream)
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
    """The plain Failure for a PlainError or an exception the machine caused; None for any other (a bug).
    `output_start`: see tracker.ui.output.guard_output."""
    refused = refused_output(error, output_start)
    if refused is not None:
        return Failure(refused, 1)
    if isinstance(error, PlainError):
        return Failure(str(error), error.exit_code)
    # Imported only when something failed: pathlib and sqlite3 would slow every start, `tracker --help` too.
    from pathlib import Path

    from tracker.storage.db import advice, plain_reason

    if isinstance(error, OSError) and error.filename is not None:
        reason = plain_reason(error)
        what_to_do = advice(reason, Path(error.filename)) or "; fix that, or set TRACKER_HOME to another directory"
        return Failure(f"Cannot use {error.filename}: {reason}{what_to_do}.", 1)
    return None


@click.group(cls=_Commands, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracker")
def cli() -> None:
    """A private activity tracker: the foreground app, classified, written to your own InfluxDB."""
