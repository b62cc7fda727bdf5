"""The one owner of local state while `tracker run` records: the outbox and the history, kept in step.

Each step is committed to the outbox before anything else happens to it. Records since the last input
stay provisional (tracker.recording.recorder.settle) until input shows they were active or away is declared; the
outbox holds them as not final, so no sender (the runner's, or `tracker sync`) sends a version that may
still change, and the history receives only final records. While the file cannot be written (disk full,
read-only), records wait here in memory, in order, and go in once it can.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from tracker.callbacks import Notify
from tracker.model import Record, Restamp, restamped
from tracker.recording.recorder import Step, mark_away, settle
from tracker.recording.runlock import is_running
from tracker.storage.db import StoreUnavailable
from tracker.storage.history import HistoryWriter
from tracker.storage.outbox import Outbox, OutboxUnavailable
from tracker.timespec import human_duration
from tracker.wording import lost_text, samples

# Records kept in memory while the outbox cannot be written (disk full, read-only): one day at 1 Hz.
UNSAVED_LIMIT = 86_400
# Seconds a write of the loop waits for a lock another tracker command holds (an import, a recategorisation):
# a moment, then the records wait in memory and go in at the next sample's write; the loop never stalls.
LOOP_LOCK_WAIT = 0.1
# Seconds the records may wait for such a lock before the user is told why they are not written.
TELL_LOCKED_AFTER = 30.0
# A time after every record: at a clean stop everything is final as it stands.
_END_OF_TIME_MS = sys.maxsize



@dataclass
class Loss:
    """Samples lost before they could be written, and the seconds they stood for."""

    samples: int = 0
    seconds: float = 0.0

    def add(self, record: Record) -> None:
        self.samples += 1
        self.seconds += record.duration

    def __bool__(self) -> bool:
        return self.samples > 0

    def __str__(self) -> str:
        return lost_text(self.samples, self.seconds)


class LocalStore:
    def __init__(self, outbox: Outbox, history: HistoryWriter, notify: Notify,
                 unsaved_limit: int = UNSAVED_LIMIT) -> None:
        self.outbox = outbox
        self.history = history
        self._notify = notify
        self.unsaved_limit = unsaved_limit
        self._provisional: list[Record] = []  # not final yet: in the outbox (or unsaved), not in the history
        self._unsaved: deque[Record] = deque()  # not in the outbox yet; at most unsaved_limit
        self._unfiled: deque[Record] = deque(maxlen=unsaved_limit)  # final, not in the history yet
        # Samples lost (and their seconds) because the file could not be written for longer than the bound:
        # this run's total, what this failure lost, and what is not counted in the file yet.
        self.lost = Loss()
        self._lost_while_failing = Loss()
        self._lost_uncounted = Loss()
        self._final_until_ms: int | None = None  # rows up to here are final; the outbox is told at the next write
        self._away_since_ms: int | None = None  # away declared and not yet written to the outbox
        self._told_dropping = False  # the outbox bound: said once per run
        # Moves of rows on disk (the clock was set back), made at the next write of each file's part.
        self._outbox_restamps: list[Restamp] = []
        self._history_restamps: list[Restamp] = []
        self._host = ""  # whose points sent with the clock ahead move back in InfluxDB too
        self.failing: str | None = None  # why the local database cannot be written now
        self._locked_since: float | None = None  # monotonic: another command has held the lock since then
        self._told_locked = False

    def recover(self) -> int:
        """Rows a run that died left provisional are final as they stand (a clean stop does the same). Waits
        for another command's lock like any command; from then on, the loop's writes wait a moment only."""
        made_final = self.outbox.make_final()
        self.outbox.set_lock_wait(LOOP_LOCK_WAIT)
        self.history.set_lock_wait(LOOP_LOCK_WAIT)
        return made_final

    def commit(self, step: Step) -> None:
        """Keep one step: its record, away time declared by it, and what it made final."""
        if step.restamps:
            self._host = step.record.host
            self._restamp(step.restamps)
        final, self._provisional = settle(self._provisional, step)
        self._unfiled.extend(final)
        self._unsaved.append(step.record)
        if step.away_since_ms is not None:
            since = step.away_since_ms
            # Rows still in memory become away here; those on disk at the next write.
            self._unsaved = deque(mark_away(r) if r.time_ms > since else r for r in self._unsaved)
            self._away_since_ms = since if self._away_since_ms is None else min(self._away_since_ms, since)
        self._final_until_ms = step.final_until_ms
        self._write()
        while len(self._unsaved) > self.unsaved_limit:  # could not be written, and no room left to wait in
            self._lose(self._unsaved.popleft())

    def _restamp(self, restamps: tuple[Restamp, ...]) -> None:
        """The wall clock was set back: records it stamped ahead move back, in memory now, on disk at the write."""
        def moved(records: Iterable[Record]) -> list[Record]:
            return [replace(r, time_ms=restamped(r.time_ms, restamps)) for r in records]

        self._provisional = moved(self._provisional)
        self._unsaved = deque(moved(self._unsaved))
        self._unfiled = deque(moved(self._unfiled), maxlen=self.unsaved_limit)
        if self._away_since_ms is not None:
            self._away_since_ms = restamped(self._away_since_ms, restamps)
        self._outbox_restamps.extend(restamps)
        self._history_restamps.extend(restamps)
        moved_by = human_duration(max(-restamp.shift_ms for restamp in restamps) / 1000)
        self._notify(f"The system clock was set back by {moved_by}: what was recorded while it was ahead moves back "
                     "with it, so times follow the clock again (in InfluxDB too, before anything more is sent).")

    def _lose(self, record: Record) -> None:
        """The oldest sample in memory makes room: counted, and said when the loss starts."""
        if not self._lost_while_failing:
            self._notify(f"The local database still cannot be written and {samples(self.unsaved_limit)} wait in "
                         "memory, all it holds: from now on the oldest are lost (counted in `tracker outbox` and "
                         "`tracker status`); free space on the disk to keep recording.")
        for loss in (self.lost, self._lost_while_failing, self._lost_uncounted):
            loss.add(record)

    def finish(self) -> None:
        """At a clean stop: what is provisional is final as it stands; a last try for what waits in memory."""
        self._unfiled.extend(self._provisional)
        self._provisional = []
        self._final_until_ms = _END_OF_TIME_MS
        self._write()
        if self._unsaved:
            lost = f", and {self._lost_while_failing} were lost before" if self._lost_while_failing else ""
            self._notify(f"{samples(len(self._unsaved))} could not be saved before stopping{lost}: {self.failing}")

    def close(self) -> None:
        try:
            self.history.close()
        except StoreUnavailable as error:
            self._notify(f"The last seconds are missing from the local history: {error}")
        finally:
            self.outbox.close()

    def waiting(self) -> int:
        """Samples not sent yet: in the outbox, and in memory while the outbox cannot be written."""
        try:
            return self.outbox.waiting() + len(self._unsaved)
        except OutboxUnavailable:
            return len(self._unsaved)

    def waiting_samples(self) -> int:
        """`waiting` without the tracker's own vitals points, for what counts samples."""
        try:
            return self.outbox.waiting() - self.outbox.waiting_other() + len(self._unsaved)
        except OutboxUnavailable:
            return len(self._unsaved)

    def today_by_category(self) -> dict[str, float]:
        return self.history.today_by_category()

    def today_pulse(self) -> float | None:
        return self.history.today_pulse()

    def _write(self) -> None:
        try:
            # Before the rows in memory go in: they are stamped right already.
            if self._outbox_restamps:
                self.outbox.restamp(self._outbox_restamps, self._host)
                self._outbox_restamps = []
            if self._history_restamps:
                self.history.restamp(self._history_restamps)
                self._history_restamps = []
            if self._unsaved or self._final_until_ms is not None:
                dropped = self.outbox.commit(self._unsaved, self._final_until_ms, self._away_since_ms)
                self._unsaved.clear()
                self._final_until_ms = self._away_since_ms = None
                if dropped and not self._told_dropping:
                    self._told_dropping = True
                    self._notify(f"The outbox is full ({self.outbox.max_rows:,} samples waiting): the oldest are "
                                 "dropped to make room. Check InfluxDB; `tracker outbox` counts what was dropped.")
            if self._lost_uncounted:
                self.outbox.count_lost(self._lost_uncounted.samples, self._lost_uncounted.seconds)
                self._lost_uncounted = Loss()
            while self._unfiled:
                self.history.add(self._unfiled[0])
                self._unfiled.popleft()
        except StoreUnavailable as error:
            if error.busy:
                self._wait_for_lock(str(error))
                return
            if self.failing is None:
                self._notify(f"{error} Recording is paused until it can be written; nothing is lost yet.")
            self.failing = str(error)
        else:
            self._lock_released()
            if self.failing is not None:
                self.failing = None
                if not self._lost_while_failing:
                    self._notify("The local database can be written again; recording goes on, nothing was lost.")
                else:
                    self._notify(f"The local database can be written again; recording goes on; "
                                 f"{self._lost_while_failing} were lost while it could not be written.")
                    self._lost_while_failing = Loss()


    def _wait_for_lock(self, error: str) -> None:
        """Another tracker command holds the file: the records wait in memory, said only if it lasts."""
        now = time.monotonic()
        if self._locked_since is None:
            self._locked_since = now
        if not self._told_locked and now - self._locked_since >= TELL_LOCKED_AFTER:
            self._told_locked = True
            held = human_duration(now - self._locked_since)
            self._notify(f"Another tracker command has held the local database for {held}: the samples wait in"
                         " memory and are written when it is done.")

    def _lock_released(self) -> None:
        if self._told_locked:
            lost = f"; {self._lost_while_failing} were lost" if self._lost_while_failing else ", nothing was lost"
            self._notify(f"The local database is free again: the samples that waited are written{lost}.")
            self._lost_while_failing = Loss()
        self._locked_since, self._told_locked = None, False


def settle_leftovers(database: Path) -> None:
    """For `tracker sync`: rows a run that died left provisional are final as they stand, unless a run holds
    this data directory now (its rows may still turn out away; it settled the leftovers when it started)."""
    if is_running() is None and database.exists():
        with Outbox(database) as outbox:
            outbox.make_final()
