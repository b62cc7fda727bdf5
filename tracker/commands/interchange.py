"""tracker import and tracker export: time recorded by ActivityWatch in, the local history out."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import click

from tracker.callbacks import Progress
from tracker.categories.files import load_categories
from tracker.categories.privacy import Privacy
from tracker.commands import Failure
from tracker.commands.options import period_options, progress_bar, until_option
from tracker.config import load_settings
from tracker.interchange import export
from tracker.interchange.importing import (
    StagedExport,
    file_export,
    import_staged,
    one_import_at_a_time,
    server_export,
)
from tracker.paths import database_file, write_whole
from tracker.recording.runlock import is_running
from tracker.storage.db import StoreUnavailable
from tracker.storage.outbox import OutboxFull
from tracker.storage.queries import read_events
from tracker.timespec import local_now
from tracker.ui import present


@click.group("import")
def import_group() -> None:
    """Bring in time recorded by another tool, into the local history and, through the outbox, InfluxDB."""


@import_group.command("activitywatch")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--server", metavar="URL", help="Read straight from a running aw-server, e.g. http://127.0.0.1:5600.")
def import_activitywatch(file: str | None, server: str | None) -> None:
    """Import an ActivityWatch export FILE (or every bucket of --server URL): window time inside not-AFK time,
    with the browser's URLs, classified with your current categories; AFK time becomes Away."""
    if (file is None) == (server is None):
        raise click.UsageError("give an export FILE or --server URL (one of them)")
    settings = load_settings().settings
    categories = load_categories(remember=True)
    try:
        privacy = Privacy(settings.privacy)
    except ValueError as error:
        raise Failure(f"{error}; fix it in the settings (`tracker config show`).", 2) from None
    source = str(file if file is not None else server)
    try:
        # The export's events wait on disk beside the database, and are combined a day at a time.
        with one_import_at_a_time(database_file()), StagedExport(database_file().parent) as staged:
            with progress_bar(f"Reading {source}") as progress, \
                    (file_export(file) if file is not None else server_export(source)) as (chunks, size):
                staged.read(_counted(chunks, size, progress), source)
            result = None
            if staged.events:
                with progress_bar("Importing from ActivityWatch") as progress:
                    result = import_staged(database_file(), staged, categories, privacy, settings.host,
                                           settings.outbox_max_rows, progress, recording=is_running() is not None)
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


def _counted(chunks: Iterable[bytes], size: int | None, progress: Progress | None) -> Iterator[bytes]:
    """The chunks, telling `progress` how many bytes of `size` went by."""
    done = 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        if progress is not None:
            progress(done, size)


@click.command("export")
@click.option("--format", "file_format", type=click.Choice(export.EXPORT_FORMATS), required=True,
              help="activitywatch: buckets aw-server's import accepts; jsonl, csv: one row per event.")
@click.option("--since", metavar="WHEN", help="today, 7d, a date like 2024-05-01...; default: all the history.")
@click.option("--until", metavar="WHEN", help="A date (included) or a date and time; default now.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE", help="Write to FILE, not stdout.")
@click.option("--no-titles", is_flag=True, help="Leave window titles and URLs out.")
def export_command(file_format: str, since: str | None, until: str | None, output: str | None,
                   no_titles: bool) -> None:
    """Write the local history's events (clipped to the period) as ActivityWatch buckets, JSON lines or CSV."""
    if since is not None:
        start, end = period_options(since, until)
    else:  # all the history: from the epoch
        start, end = datetime.fromtimestamp(0, tz=timezone.utc), until_option(until, local_now())
    events = read_events(start, end)
    if events is None:  # the file still gets its header or buckets: a script reading it needs no special case
        click.echo(present.NO_HISTORY, err=True)
        events = []
    clipped = export.clipped(events, int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    titles = not no_titles
    if file_format == "activitywatch":
        document = export.activitywatch(clipped, load_settings().settings.host, datetime.now(timezone.utc), titles)
        chunks: Iterable[str] = json.JSONEncoder(ensure_ascii=False).iterencode(document)
    else:
        chunks = export.jsonl(clipped, titles) if file_format == "jsonl" else export.csv_lines(clipped, titles)
    _write_out(chunks, output)


def _write_out(chunks: Iterable[str], output: str | None) -> None:
    """Text to stdout, or to the file `output` (written whole, then put in place: never half a file)."""
    if output is None:
        try:
            for chunk in chunks:
                sys.stdout.write(chunk)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head` read what it wanted; what is left to flush at exit goes nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    try:
        write_whole(Path(output), chunks)
    except OSError as error:
        raise Failure(f"Cannot write {output}: {(error.strerror or str(error)).lower()}.", 1) from None
