"""`tracker run`: the loop that reads, classifies, stores and hands records to the sender.

Each sample is committed to the outbox before anything else happens to it, so a crash, a kill or an
unreachable server loses at most the sample being read at that moment.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from types import FrameType
from typing import TYPE_CHECKING

from tracker import paths
from tracker.config import Settings
from tracker.model import STATE_ACTIVE, Record
from tracker.recorder import Classified, Recorder, Step
from tracker.sources import Source, open_source

if TYPE_CHECKING:
    from tracker.display import ActivityLog, LiveView
    from tracker.sender import Sender, SenderState

# Records kept in memory while the outbox cannot be written (disk full, read-only): one day at 1 Hz.
UNSAVED_LIMIT = 86_400
STATUS_EVERY = 10.0  # seconds between writes of status.json for `tracker status`
NOT_CONFIGURED = (
    "InfluxDB is not configured: recording locally only. Set TRACKER_INFLUX_URL (or run "
    "`tracker config init` and edit the file), then `tracker sync` sends everything recorded."
)


@dataclass
class RunOptions:
    source: str = "auto"
    run_for: float | None = None  # seconds; None runs until stopped
    quiet: bool = False
    log_format: str = "text"


class Run:
    def __init__(self, settings: Settings, options: RunOptions, view: LiveView | ActivityLog) -> None:
        self.settings = settings
        self.options = options
        self.view = view
        self.stop_requested = threading.Event()
        self.samples_taken = 0
        self.started_at = datetime.now(timezone.utc)
        # Records not written yet to the outbox, and final ones not yet to the history (disk full...).
        self._unsaved: deque[Record] = deque(maxlen=UNSAVED_LIMIT)
        self._unfiled: deque[Record] = deque(maxlen=UNSAVED_LIMIT)
        self._away_to_mark: int | None = None  # away declared while the outbox could not be written
        self._told_dropping = False  # the outbox bound: said once per run
        self._store_failing: str | None = None  # why the local database cannot be written now
        self._last_step: Step | None = None
        self._current_key: tuple[str, ...] | None = None
        self._current_since = self.started_at
        self._pointed_to_uncategorized = False  # said once per run, at the first activity without a rule
        self.sender: Sender | None = None

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self.stop_requested.set()

    def execute(self) -> int:
        from tracker.classify import CategoriesWatcher
        from tracker.history import History, default_pulse
        from tracker.outbox import Outbox
        from tracker.privacy import Privacy
        from tracker.status import acquire_run_lock

        settings = self.settings
        lock = acquire_run_lock()  # raises AlreadyRunning before anything is opened
        try:
            self.source: Source = open_source(self.options.source, self.notify)
            self.categories = CategoriesWatcher(None, on_error=self.notify)
            self.privacy = Privacy(settings.privacy)
            database = paths.database_file()
            paths.private_dir(database.parent)
            self.outbox = Outbox(database, max_rows=settings.outbox_max_rows)
            self.history = History(database, retention_days=settings.history_retention_days)
            self.pulse = default_pulse(settings.interval)
            self.recorder = Recorder(settings.host, settings.interval, settings.away_after)
            self.sender = self._start_sender()
            try:
                self._loop()
            finally:
                self._finish()
        finally:
            lock.release()
        return 0

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        import gc

        # Everything made at start-up (modules, compiled rules) lives as long as the process: keep the
        # collector from scanning it again and again once a second for as long as tracker runs.
        gc.freeze()
        interval = self.settings.interval
        start = time.monotonic()
        deadline = start + self.options.run_for if self.options.run_for else None
        next_tick = start
        last_status = 0.0
        while not self.stop_requested.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            self.tick(now)
            if now - last_status >= STATUS_EVERY:
                self._write_status()
                last_status = now
            next_tick += interval
            if next_tick < time.monotonic():
                # We fell behind (the machine slept or was busy): skip the missed ticks, don't catch up.
                next_tick = time.monotonic() + interval
            wait = next_tick - time.monotonic()
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            if wait > 0:
                self.stop_requested.wait(wait)

    def tick(self, monotonic: float) -> Step | None:
        sample = self.source.read()
        if sample is None:
            return None
        # Classify what was read, then drop what must not be kept: an excluded site keeps its category,
        # but its title, URL and domain never leave this function.
        match = self.categories.current.classify(sample)
        sample = self.privacy.apply(sample)
        step = self.recorder.step(sample, monotonic, Classified(match.category, match.score, match.rule))
        self.samples_taken += 1
        self._store(step)
        self._show(step)
        return step

    def _store(self, step: Step) -> None:
        """Commit the record to the outbox and the final ones to the history. While the file cannot be
        written (disk full, read-only), they wait in memory, in order, and go in once it can."""
        from tracker.recorder import mark_away

        self._unsaved.append(step.record)
        self._unfiled.extend(step.final)
        if step.away_since_ms is not None:
            since = step.away_since_ms
            # Rows still in memory become away here; those on disk when the outbox can be written.
            self._unsaved = deque((mark_away(r) if r.time_ms > since else r for r in self._unsaved),
                                  maxlen=UNSAVED_LIMIT)
            self._away_to_mark = since if self._away_to_mark is None else min(self._away_to_mark, since)
        self._write_pending()
        if self.sender is not None:
            self.sender.send_until(step.final_until_ms)
            self.sender.wake()

    def _write_pending(self) -> None:
        from tracker.store import StoreUnavailable

        try:
            if self._away_to_mark is not None:
                self.outbox.mark_away(self._away_to_mark)
                self._away_to_mark = None
            while self._unsaved:
                if self.outbox.append(self._unsaved[0]) and not self._told_dropping:
                    self._told_dropping = True
                    self.notify(f"The outbox is full ({self.outbox.max_rows:,} samples waiting): the oldest are "
                                "dropped to make room. Check InfluxDB; `tracker outbox` counts what was dropped.")
                self._unsaved.popleft()
            while self._unfiled:
                self.history.add(self._unfiled[0], self.pulse)
                self._unfiled.popleft()
        except StoreUnavailable as error:
            if self._store_failing is None:
                self.notify(f"{error} Recording is paused until it can be written; nothing is lost yet.")
            self._store_failing = str(error)
        else:
            if self._store_failing is not None:
                self._store_failing = None
                self.notify("The local database can be written again; recording goes on, nothing was lost.")

    def _show(self, step: Step) -> None:
        from tracker.display import RunView

        record = step.record
        key = (record.app, record.activity, record.category, record.state)
        if key != self._current_key:
            self._current_key, self._current_since = key, record.time
        if self.view.detailed:
            sender = self.sender.state if self.sender is not None else None
            self.view.update(RunView(
                record=record, rule=step.rule, since=self._current_since,
                today=self.history.today_by_category(), pulse=self.history.today_pulse(),
                influx_line=influx_line(sender), waiting=self._waiting()))
        else:  # a log line per change of activity: today's totals and the sender's state are not shown
            self.view.record(record, step.rule)
        self._last_step = step
        if step.rule is None and record.state == STATE_ACTIVE and not self._pointed_to_uncategorized:
            self._pointed_to_uncategorized = True
            self.notify(f"{record.activity} has no category yet: `tracker categories uncategorized` lists what "
                        "took your time without one, `tracker categories edit` adds rules.")

    def _waiting(self) -> int:
        """Samples not sent yet: in the outbox, and in memory while the outbox cannot be written."""
        from tracker.outbox import OutboxUnavailable

        try:
            return self.outbox.waiting() + len(self._unsaved)
        except OutboxUnavailable:
            return len(self._unsaved)

    # -- start and stop ------------------------------------------------------------------------

    def _start_sender(self) -> Sender | None:
        influx = self.settings.influx
        if not influx.configured:
            self.notify(NOT_CONFIGURED)
            return None
        from tracker.sender import Sender

        sender = Sender(paths.database_file(), influx, on_status=self.notify)
        sender.start()
        return sender

    def _finish(self) -> None:
        from tracker.outbox import samples
        from tracker.store import StoreUnavailable

        self._unfiled.extend(self.recorder.flush())
        self._write_pending()  # a last try for what waits in memory
        if self._unsaved:
            self.notify(f"{samples(len(self._unsaved))} could not be saved before stopping: {self._store_failing}")
        if self.sender is not None:
            self.sender.send_until(None)
            self.sender.stop(flush=True, timeout=10.0)
        self._write_status(stopped=True)
        if self._last_step is not None:  # the frame left on screen says how it ended: what was sent, what waits
            self._show(self._last_step)
        try:
            self.history.close()
        except StoreUnavailable as error:
            self.notify(f"The last seconds are missing from the local history: {error}")
        self.outbox.close()
        self.source.close()

    def notify(self, text: str) -> None:
        self.view.notice(text)

    def _write_status(self, stopped: bool = False) -> None:
        import os

        from tracker.status import StatusSnapshot, write_status

        record = self._last_step.record if self._last_step is not None else None
        sender = self.sender.state if self.sender is not None else None
        snapshot = StatusSnapshot(
            pid=os.getpid(), started_at=self.started_at, samples_taken=self.samples_taken,
            activity=record.activity if record else None, app=record.app if record else None,
            category=record.category if record else None, score=record.score if record else None,
            since=self._current_since if record else None,
            waiting=self._waiting(),
            last_send=sender.last_send if sender else None, last_error=sender.last_error if sender else None,
            source=self.source.name, influx_url=self.settings.influx.url,
            stopped_at=datetime.now(timezone.utc) if stopped else None)
        # Disk full or read-only: `tracker status` shows the last one written; recording matters more.
        with suppress(OSError):
            write_status(snapshot)


def influx_line(state: SenderState | None) -> str:
    """The live view's one line about InfluxDB."""
    from tracker.timespec import human_ago

    if state is None:
        return "not configured: recording locally only"
    if state.status == "failing":
        return f"failing: {state.last_error}"
    if state.last_send is not None:
        ago = human_ago((datetime.now(timezone.utc) - state.last_send).total_seconds())
        return f"connected · last send {ago}"
    return "connecting…"


def install_signal_handlers(run: Run) -> None:
    """Ctrl-C and SIGTERM stop cleanly: the loop ends and everything recorded is sent before exit."""
    signal.signal(signal.SIGTERM, run.request_stop)
    signal.signal(signal.SIGINT, run.request_stop)
