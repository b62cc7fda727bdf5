"""`tracker recategorize`: today's categories applied to what was recorded before.

Three places hold categories: the local history (events and their rollups), the outbox (rows not sent
yet), and the points already in InfluxDB. The local parts change here, in one transaction each; the points
in InfluxDB are corrected by tracker.sending.corrections, or, when InfluxDB cannot be reached, the
correction is kept in the outbox file (`defer_influx`) for the next sender that reaches it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tracker.categories.files import read_categories_text
from tracker.categories.reclassify import Moves, Reclassifier
from tracker.categories.rules import Categories
from tracker.sending.corrections import InfluxPart
from tracker.storage.history import HistoryWriter, Moved
from tracker.storage.outbox import Outbox


@dataclass
class Outcome:
    history: Moves
    outbox_rows: int  # waiting rows given another category (or score)
    influx: InfluxPart | None  # None: InfluxDB was not touched (see `influx_note`)
    influx_note: str | None = None  # why not, one plain sentence


def recategorize_local(database: Path, categories: Categories, since_ms: int | None, pulsetime: float,
                       apply: bool) -> tuple[Moves, int]:
    """The history's events (and rollups) and the outbox's waiting rows from `since_ms` on: the history's
    moves, and how many outbox rows changed (0 with `apply` False: they are not counted then)."""
    reclassify = Reclassifier(categories)
    with HistoryWriter(database, pulsetime) as history:
        moved = history.recategorize(since_ms, reclassify, apply)
    rows = 0
    if apply:
        with Outbox(database) as outbox:
            rows = outbox.recategorize(since_ms, reclassify)
    return history_moves(moved), rows


def history_moves(moved: Iterable[Moved]) -> Moves:
    moves: Moves = defaultdict(float)
    for event, now in moved:
        if now.category != event.data.category:
            moves[event.data.category, now.category] += event.duration
    return dict(moves)


# -- when InfluxDB cannot be reached: later, by the sender ------------------------------------------

def defer_influx(database_file: Path, host: str, categories: Categories, since_ms: int | None,
                 until_ms: int) -> None:
    """InfluxDB could not be reached: keep the correction of its points, with today's categories as they are
    now, for the next sender that reaches it (`tracker run`'s or `tracker sync`). What this run committed to
    the outbox already goes out with the outbox."""
    text = read_categories_text(categories.file)
    with Outbox(database_file) as outbox:
        outbox.corrections.defer_recategorization(host, since_ms, until_ms, text, str(categories.file))


def forget_covered(database_file: Path, host: str, since_ms: int | None) -> None:
    """A correction of InfluxDB from `since_ms` on just succeeded: those deferred earlier that it covered are
    done (it used today's categories, theirs are older)."""
    with Outbox(database_file) as outbox:
        outbox.corrections.forget_recategorizations([
            deferred.id for deferred in outbox.corrections.deferred_recategorizations() if deferred.host == host and (
                since_ms is None or (deferred.since_ms is not None and deferred.since_ms >= since_ms))])
