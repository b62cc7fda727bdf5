"""`tracker run`: a thin loop over parts passed in.

    source.read() -> classify (categories, then privacy) -> recorder.step -> store.commit -> sender.wake
                                                                                     \\-> view.show

`Run` only paces the loop and keeps what the loop itself needs (the current activity and since when);
`open_parts` builds the real parts from the settings, so a test can pass a fake clock and source instead.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from tracker import paths
from tracker.categories.files import CategoriesWatcher
from tracker.categories.privacy import Privacy, seen_private
from tracker.events import Event, default_pulsetime
from tracker.goals.files import GoalsWatcher
from tracker.macos_privacy import started_by_service
from tracker.model import STATE_ACTIVE, Record, Sample, restamped
from tracker.recording.goalwatch import GoalWatcher, Notifier
from tracker.recording.localstore import LocalStore
from tracker.recording.recorder import Classified, Recorder, Step
from tracker.recording.runlock import acquire_run_lock
from tracker.recording.runstate import StatusSnapshot, write_status
from tracker.recording.sources import Source
from tracker.recording.sources.choose import open_source
from tracker.recording.vitals import (
    Vitals,
    VitalsRecorder,
    freeze_startup_objects,
    read_vitals,
    vitals_document,
)
from tracker.sending.sinks.deadline import all_ending_within
from tracker.storage.history import HistoryWriter
from tracker.storage.outbox import Outbox
from tracker.storage.queries import read_events

if TYPE_CHECKING:
    from tracker.config import Settings
    from tracker.recording.metrics import TrackerMetrics
    from tracker.sending.sender import RequestCounts, SenderState

STATUS_EVERY = 10.0  # seconds between writes of status.json for `tracker status`
# Seconds a stopping run sends what was recorded: the requests on the wire then are cut (systemd waits 90 s).
STOP_SENDING = 10.0
NOT_CONFIGURED = (
    "InfluxDB is not configured: recording locally only. Set TRACKER_INFLUX_URL (or run "
    "`tracker config init` and edit the file), then `tracker sync` sends everything recorded."
)

# A sample's classification, with what privacy rules leave of the sample.
ClassifyAndKeep = Callable[[Sample], tuple[Sample, Classified]]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when a stop was requested meanwhile."""
        ...


class SystemClock:
    """The real clock; `stop` (set by Ctrl-C or SIGTERM) cuts a wait short."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float) -> bool:
        return self.stop.wait(seconds) if seconds > 0 else self.stop.is_set()


class SenderPart(Protocol):
    """What the loop needs of tracker.sending.sender.Sender."""

    url: str
    requests: RequestCounts

    @property
    def state(self) -> SenderState: ...

    def wake(self) -> None: ...

    def stop(self, flush: bool = True, timeout: float = 10.0) -> None: ...


class Observer(Protocol):
    """Watches a run without taking part in it (the tracker's own vitals, a metrics endpoint)."""

    def observe(self, step: Step) -> None:
        """One step, once committed."""
        ...

    def tick(self, now: float, samples_taken: int) -> None:
        """Once per loop, after the step; `now` is the run's clock (monotonic seconds), `samples_taken` the
        samples read so far."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Details:
    """What the live view shows beside the sample: it costs queries, so it is asked for only to draw."""

    today: dict[str, float]  # active seconds per category today
    pulse: float | None  # today's productivity pulse, 0..100
    sender: SenderState | None  # None when InfluxDB is not configured
    waiting: int  # samples not sent yet


@dataclass(frozen=True)
class RunView:
    """One sample as the runner knows it."""

    record: Record
    rule: str | None  # the rule that matched, e.g. "domain github.com"; None for no rule
    since: datetime  # when the current activity started
    changed: bool  # this sample starts a new activity
    details: Callable[[], Details]


class View(Protocol):
    """What the runner shows through; used as a context manager around the run."""

    def show(self, view: RunView) -> None:
        """One sample, every sample."""
        ...

    def notice(self, text: str) -> None:
        """Something the user should know or act on; may come from another thread."""
        ...

    def __enter__(self) -> View: ...

    def __exit__(self, *exc_info: object) -> None: ...


@dataclass
class Parts:
    source: Source
    classify: ClassifyAndKeep
    recorder: Recorder
    store: LocalStore
    sender: SenderPart | None  # None when InfluxDB is not configured
    view: View
    observers: list[Observer] = field(default_factory=list)

    def close(self) -> None:
        try:
            for observer in self.observers:
                observer.close()
        finally:
            self.store.close()
            self.source.close()


def activity_key(record: Record) -> tuple[object, ...]:
    """What must change for a record to start a new activity, in the live view and the log alike."""
    return (record.app, record.activity, record.category, record.score, record.state)


class Run:
    def __init__(self, parts: Parts, clock: Clock, interval: float, run_for: float | None = None,
                 write_status: Callable[[StatusSnapshot], None] | None = None) -> None:
        self.parts = parts
        self.clock = clock
        self.interval = interval
        self.run_for = run_for
        self.write_status = write_status
        self.samples_taken = 0
        self.started_at = datetime.now(timezone.utc)
        # Whose permissions these are: macOS grants them to the service's own program, or to the terminal app.
        self.started_by_service = started_by_service()
        self._last_step: Step | None = None
        self._current_key: tuple[object, ...] | None = None
        self._current_since = self.started_at
        self._pointed_to_uncategorized = False  # said once per run, at the first activity without a rule

    def run(self) -> None:
        """Sample every `interval` until the clock says stop (or `run_for` passed), then finish cleanly."""
        try:
            self._loop()
        finally:
            self._finish()

    def _loop(self) -> None:
        start = self.clock.monotonic()
        deadline = start + self.run_for if self.run_for else None
        next_tick = start
        last_status: float | None = None
        while True:
            now = self.clock.monotonic()
            if deadline is not None and now >= deadline:
                return
            self.tick(now)
            for observer in self.parts.observers:
                observer.tick(now, self.samples_taken)
            if last_status is None or now - last_status >= STATUS_EVERY:
                self._write_status()
                last_status = now
            next_tick += self.interval
            if next_tick < self.clock.monotonic():
                # We fell behind (the machine slept or was busy): skip the missed ticks, don't catch up.
                next_tick = self.clock.monotonic() + self.interval
            wait = next_tick - self.clock.monotonic()
            if deadline is not None:
                wait = min(wait, deadline - self.clock.monotonic())
            if self.clock.wait(wait):
                return

    def tick(self, monotonic: float) -> Step | None:
        """Read, classify, record, commit and show one sample; None when nothing could be read."""
        parts = self.parts
        sample = parts.source.read()
        if sample is None:
            return None
        sample, classified = parts.classify(sample)
        step = parts.recorder.step(sample, monotonic, classified)
        self.samples_taken += 1
        parts.store.commit(step)
        if parts.sender is not None:
            parts.sender.wake()
        for observer in parts.observers:
            observer.observe(step)
        self._show(step)
        return step

    def _show(self, step: Step) -> None:
        record = step.record
        key = activity_key(record)
        if step.restamps:  # the clock was set back: the current activity began earlier than it said
            since_ms = restamped(int(self._current_since.timestamp() * 1000), step.restamps)
            self._current_since = datetime.fromtimestamp(since_ms / 1000, tz=timezone.utc)
        changed = key != self._current_key
        if changed:
            self._current_key, self._current_since = key, record.time
        self.parts.view.show(RunView(record=record, rule=step.rule, since=self._current_since, changed=changed,
                                     details=self.details))
        self._last_step = step
        if step.rule is None and record.state == STATE_ACTIVE and not self._pointed_to_uncategorized:
            self._pointed_to_uncategorized = True
            self.notify(f"{record.activity} has no category yet: `tracker categories uncategorized` lists what "
                        "took your time without one, `tracker categories edit` adds rules.")

    def details(self) -> Details:
        """What the live view shows beside the sample; it costs queries, so views ask only when they draw."""
        store, sender = self.parts.store, self.parts.sender
        return Details(today=store.today_by_category(), pulse=store.today_pulse(),
                       sender=sender.state if sender is not None else None, waiting=store.waiting_samples())

    def _finish(self) -> None:
        parts = self.parts
        parts.store.finish()
        if parts.sender is not None:
            # A request still unanswered then is cut, whatever influx.timeout says: its rows stay in the outbox.
            with all_ending_within(STOP_SENDING):
                parts.sender.stop(flush=True, timeout=STOP_SENDING)
        self._write_status(stopped=True)
        if self._last_step is not None:  # the frame left on screen says how it ended: what was sent, what waits
            self._show(self._last_step)

    def notify(self, text: str) -> None:
        self.parts.view.notice(text)

    def _vitals_read_now(self) -> Vitals | None:
        """The vitals point's reading when it was taken at this sample: status.json shows the same figures."""
        for observer in self.parts.observers:
            if isinstance(observer, VitalsRecorder) and observer.latest_at_sample == self.samples_taken:
                return observer.latest
        return None

    def _write_status(self, stopped: bool = False) -> None:
        if self.write_status is None:
            return
        record = self._last_step.record if self._last_step is not None else None
        sender = self.parts.sender
        state = sender.state if sender is not None else None
        vitals = self._vitals_read_now() or read_vitals(
            self.samples_taken, self.parts.store, getattr(sender, "requests", None),
            unreadable_titles=self.parts.source.unreadable_titles)
        self.write_status(StatusSnapshot(
            pid=os.getpid(), started_at=self.started_at, samples_taken=self.samples_taken,
            activity=record.activity if record else None, app=record.app if record else None,
            category=record.category if record else None, score=record.score if record else None,
            since=self._current_since if record else None,
            waiting=self.parts.store.waiting_samples(), lost=self.parts.store.lost.samples,
            lost_seconds=self.parts.store.lost.seconds,
            last_send=state.last_send if state else None, last_error=state.last_error if state else None,
            source=self.parts.source.name, influx_url=sender.url if sender is not None else None,
            stopped_at=datetime.now(timezone.utc) if stopped else None, vitals=vitals_document(vitals),
            permissions=tuple(self.parts.source.permissions()), started_by_service=self.started_by_service))


# -- the real parts ------------------------------------------------------------------------------------


def open_parts(settings: Settings, source_name: str, view: View, notifier: Notifier | None = None) -> Parts:
    """The parts of a real run, from the settings; SourceUnavailable when no desktop can be read,
    MetricsUnavailable when metrics were asked for and cannot be served. `notifier` shows goal nudges on the
    desktop (None: in the view and the log only)."""
    # First, so a refused or taken address stops the run before anything else is opened.
    metrics = _start_metrics(settings) if settings.metrics_listen else None
    try:
        return _open_parts(settings, source_name, view, metrics, notifier)
    except BaseException:
        if metrics is not None:
            metrics.close()
        if notifier is not None:
            notifier.close()
        raise


def _open_parts(settings: Settings, source_name: str, view: View, metrics: TrackerMetrics | None,
                notifier: Notifier | None) -> Parts:
    notify = view.notice
    source = open_source(source_name, notify)
    categories = CategoriesWatcher(None, on_error=notify)
    privacy = Privacy(settings.privacy)

    # The last window's outcome: while the same window stays in front (most seconds), a sample costs a comparison.
    last_window: tuple[object, ...] = ()
    last_outcome: tuple[str | None, str | None, bool, Classified] = (None, None, False, Classified("", 0.0))

    def classify(sample: Sample) -> tuple[Sample, Classified]:
        # Classify what was read, then drop what must not be kept: an excluded site keeps its category,
        # but its title, URL and domain never leave this function.
        nonlocal last_window, last_outcome
        rules = categories.current
        window = (rules, sample.app, sample.title, sample.url, sample.private)
        if window != last_window:
            seen = seen_private(sample)  # a private window is classified by its app only, on every source
            match = rules.classify(seen)
            kept = privacy.apply(seen)
            last_window = window
            last_outcome = (kept.title, kept.url, kept.private, Classified(match.category, match.score, match.rule))
        title, url, private, classified = last_outcome
        if (title, url, private) != (sample.title, sample.url, sample.private):
            sample = replace(sample, title=title, url=url, private=private)
        return sample, classified

    database = paths.database_file()
    paths.private_dir(database.parent)
    outbox = Outbox(database, max_rows=settings.outbox_max_rows)
    history = HistoryWriter(database, default_pulsetime(settings.interval),
                            retention_days=settings.history_retention_days)
    store = LocalStore(outbox, history, notify)
    store.recover()
    # A clock set back never moves this run's records onto those of an earlier run.
    recorder = Recorder(settings.host, settings.interval, settings.away_after, store.history.last_end_ms())
    sender = _start_sender(settings, notify, metrics)
    observers: list[Observer] = []
    if metrics is not None:
        metrics.count_waiting(store.waiting)
        observers.append(metrics)
    # Vitals points are for the server: none when recording locally only (status.json has the figures).
    if sender is not None and settings.vitals_every > 0:
        observers.append(VitalsRecorder(settings.vitals_every, settings.host, settings.influx.api,
                                        store, sender, source))
    observers.append(GoalWatcher(GoalsWatcher(None, on_error=notify), _history_events, notify, notifier,
                                 points=(store, sender, settings.host) if sender is not None else None))
    return Parts(source, classify, recorder, store, sender, view, observers)


def _history_events(since: datetime, until: datetime) -> list[Event]:
    """The local history's events in [since, until), for the goals' sums at start; none when there is none."""
    return read_events(since, until) or []


def _start_metrics(settings: Settings) -> TrackerMetrics:
    # Only when asked for: prometheus_client is an optional extra, and slow to import.
    from tracker.recording.metrics import start_metrics

    assert settings.metrics_listen is not None
    return start_metrics(settings.metrics_listen, settings.metrics_allow_remote)


def _start_sender(settings: Settings, notify: Callable[[str], None],
                  metrics: TrackerMetrics | None = None) -> SenderPart | None:
    if not settings.influx.configured:
        notify(NOT_CONFIGURED)
        return None
    # Only with InfluxDB configured: the sender's modules are not loaded for a run that records locally.
    from tracker.sending.corrections import correcting_sender

    sender = correcting_sender(paths.database_file(), settings.influx, on_status=notify)
    if metrics is not None:  # before it starts, so its first requests are counted too
        metrics.watch_sends()
        sender.request_observers.append(metrics.request)
    sender.start()
    return sender


def write_status_quietly(snapshot: StatusSnapshot) -> None:
    """Disk full or read-only: `tracker status` shows the last one written; recording matters more."""
    with suppress(OSError):
        write_status(snapshot)


def record_until_stopped(settings: Settings, source_name: str, run_for: float | None, view: View,
                         notifier: Notifier | None = None) -> None:
    """`tracker run`: lock the data directory, open the parts, run until Ctrl-C, SIGTERM, SIGHUP or `run_for`.

    AlreadyRunning when another `tracker run` has this data directory; SourceUnavailable when no desktop
    can be read.
    """
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C, SIGTERM and SIGHUP (its terminal closed) stop cleanly: the loop ends, the last event is settled
    # and everything recorded is sent before exit. Windows has no SIGHUP; there Ctrl-Break (SIGBREAK) stops it
    # the same way.
    for stopping in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None),
                     getattr(signal, "SIGBREAK", None)):
        if stopping is not None:
            signal.signal(stopping, request_stop)
    try:
        lock = acquire_run_lock()  # raises AlreadyRunning before anything is opened
    except BaseException:
        if notifier is not None:  # from here on the run's parts close it
            notifier.close()
        raise
    try:
        parts = open_parts(settings, source_name, view, notifier)
        try:
            freeze_startup_objects()
            Run(parts, SystemClock(stop), settings.interval, run_for, write_status_quietly).run()
        finally:
            parts.close()
    finally:
        lock.release()
