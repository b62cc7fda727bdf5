"""The sender: moves rows from the outbox to InfluxDB, oldest first, and forgets them only once confirmed.

Failures keep the rows and are retried with exponential backoff; a batch the server refuses goes to
tracker.sending.deliver, which finds the rows it refuses for good (quarantined with the server's reason) and
those it takes. Only one sender sends at a time per data directory (an flock on send.lock), so `tracker sync`
during `tracker run` never doubles a row. This module is the scheduling: the thread, backoff, locks and the
maintenance jobs between batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from tracker.callbacks import Progress
from tracker.config import InfluxSettings
from tracker.redact import display_url, outward
from tracker.sending.deliver import Accepted, Quarantined, RefusedEverything, deliver
from tracker.sending.sendlock import SYNC_LOCK_WAIT, sending_held
from tracker.sending.sinks import Rejected, RetryLater, SendError, Sink, TooLarge, request_result
from tracker.sending.sinks.connect import open_sink
from tracker.storage.outbox import Outbox, OutboxUnavailable
from tracker.wording import samples

# Longest wait honoured from a Retry-After header, in seconds.
RETRY_AFTER_CAP = 3600.0
# Seconds between send rounds of a running tracker: each costs an HTTP request and two SQLite commits,
# several times the CPU of a sample, and Grafana refreshes far less often anyway.
SEND_EVERY = 10.0
# Until the first send, rounds come this often (seconds).
FIRST_LOOK_EVERY = 1.0

Row = tuple[int, str]  # an outbox row's id and its line



@dataclass(frozen=True)
class SenderState:
    """What the live view shows about sending."""

    status: str  # "unknown" (nothing tried yet), "connected" or "failing"
    last_send: datetime | None  # when the server last confirmed a batch
    last_error: str | None  # one plain line, while failing


@dataclass(frozen=True)
class SyncResult:
    sent: int
    quarantined: int
    waiting: int  # rows still waiting afterwards
    url: str
    error: str | None = None  # one plain sentence when not everything could be sent

    @property
    def ok(self) -> bool:
        return self.error is None


# A maintenance job of the sender, given to it by whoever makes it (corrections.correcting_sender): called with
# the open outbox and the sender's way of telling the user (each line goes out through `outward`). One runs inside
# send.lock before any row is read for sending (`before_batches`: the clock-fix moves, which Outbox.pending_lines
# waits for), the other outside it once nothing waits to be sent (`when_drained`: deferred recategorisations).
# A failure raised by the first (SendError, OutboxUnavailable) is the send's failure.
Job = Callable[[Outbox, Callable[[str], None]], None]


# Told of every request to the server: its seconds, its number of lines, and what it came to.
RequestObserver = Callable[[float, int, str], None]


@dataclass
class RequestCounts:
    """Requests to the server since the sender started, for vitals and metrics."""

    by_result: dict[str, int] = field(default_factory=dict)  # "ok", "auth", "rejected", "retry", ...
    last_seconds: float | None = None  # the last request's duration
    last_lines: int | None = None  # and its size


@dataclass
class _Tally:
    sent: int = 0
    quarantined: int = 0
    total: int = 0


class _Busy(Exception):
    """Another sender holds send.lock."""


class Sender:
    def __init__(self, database: Path, settings: InfluxSettings, on_status: Callable[[str], None],
                 batch_size: int = 5000, *, before_batches: Job, when_drained: Job | None = None,
                 first_retry: float = 1.0, max_retry: float = 60.0, min_interval: float = SEND_EVERY,
                 poll_interval: float = 5.0) -> None:
        self.database = database
        self.settings = settings
        self.url = display_url(settings.url)
        self.batch_size = batch_size
        # Every line the sender says goes out through `outward`: the run log, `tracker sync`, the live view.
        self._on_status: Callable[[str], None] = lambda line: on_status(outward(line, settings))
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._min_interval = min_interval  # at most one send round this often, unless a batch is full
        self._poll_interval = poll_interval  # look for rows this often even without wake()
        self._outbox: Outbox | None = None
        self._sink: Sink | None = None
        self._wire: ThreadPoolExecutor | None = None  # the thread a batch is sent from (see _drain)
        self._open_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._flush_deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._status = "unknown"
        self._failure: type[Exception] | None = None  # the kind of failure last reported
        self._last_send: datetime | None = None
        self._last_error: str | None = None
        self._waiting = 0
        self._retry_delay = first_retry
        # The maintenance between batches, given by whoever makes the sender (see Job). `before_batches` is
        # required: without the clock-fix moves, Outbox.pending_lines hands out nothing while a fix waits.
        self._before_batches = before_batches
        self._when_drained = when_drained
        self.requests = RequestCounts()
        self.request_observers: list[RequestObserver] = []  # e.g. a metrics histogram

    # -- the runner's side -------------------------------------------------------------------------

    def start(self) -> None:
        self._wake.set()  # rows left from an earlier run go first
        self._thread = threading.Thread(target=self._run, name="tracker-sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New rows are waiting: send them soon (at most one round per min_interval)."""
        if not self._wake.is_set():  # set() takes a lock each time; once set, every second until the round
            self._wake.set()

    def stop(self, flush: bool = True, timeout: float = 10.0) -> None:
        """Stop sending; with `flush`, first try to send what is waiting, for at most `timeout` seconds."""
        if self._thread is None:
            self._close()
            return
        self._flush_deadline = time.monotonic() + timeout if flush else None
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout + 0.5)
        self._thread = None

    @property
    def state(self) -> SenderState:
        return SenderState(self._status, self._last_send, self._last_error)

    # -- tracker sync ------------------------------------------------------------------------------

    def send_all(self, progress: Progress | None = None) -> SyncResult:
        """Send everything waiting now, in batches; one attempt, no backoff."""
        tally = _Tally()
        error: str | None = None
        try:
            outbox = self._open_outbox()
            tally.total = outbox.waiting()
            self._drain(tally, progress, lock_wait=SYNC_LOCK_WAIT)
            self._after_drain()
            if tally.sent or tally.quarantined:  # `tracker outbox` tells of the last send, whoever made it
                self._note(f"sent {samples(tally.sent)} to {self.url}", success=True)
        except _Busy:
            error = "Another tracker kept sending for too long; try again in a moment."
        except (SendError, OutboxUnavailable) as failure:
            error = outward(f"{failure}.", self.settings)
            if isinstance(failure, SendError):
                self._note(error, success=False)
        finally:
            waiting = self._safe_waiting()
            if self._thread is None:  # a running thread still needs the outbox and the sink
                self._close()
        return SyncResult(tally.sent, tally.quarantined, waiting, self.url, error)

    # -- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            pause, need_wake = 0.0, True
            while not self._stopping.is_set():
                # Backoff or pacing: only stop() cuts it short.
                if pause and self._stopping.wait(pause):
                    break
                if need_wake:
                    self._wake.wait(self._poll_interval)  # new rows, or a periodic look
                self._wake.clear()
                if self._stopping.is_set():
                    break
                pause, need_wake = self._round(deadline=None)
            if self._flush_deadline is not None:
                self._round(deadline=self._flush_deadline)
        finally:
            self._close()

    def _round(self, deadline: float | None) -> tuple[float, bool]:
        """Send what is waiting; return how long to pause next, and whether to wait for wake() after."""
        tally = _Tally()
        try:
            self._drain(tally, None, lock_wait=0.0, deadline=deadline)
        except _Busy:
            return self._min_interval / 2, False  # another process is sending; look again shortly
        except (SendError, OutboxUnavailable) as error:
            return self._failed(error, tally), False
        except Exception as error:  # never let the thread die: report it like any other failure
            unexpected = RetryLater(outward(f"Sending failed unexpectedly ({error!r})", self.settings, 500))
            return self._failed(unexpected, tally), False
        if not self._stopping.is_set():  # what waited is sent: the server answers, or nothing needed it
            self._after_drain()
        if tally.sent or tally.quarantined:
            self._succeeded(tally)
        elif self._status == "unknown":
            # Nothing was ready yet and nothing was ever sent: look again soon, so that the first send (which
            # shows the settings work, or what is wrong with them) comes within seconds of starting.
            return min(self._min_interval, FIRST_LOOK_EVERY), True
        return self._min_interval, True

    def _succeeded(self, tally: _Tally) -> None:
        was = self._status
        self._status, self._failure, self._last_error = "connected", None, None
        self._last_send = datetime.now(timezone.utc)
        self._retry_delay = self._first_retry
        self._note(f"sent {samples(tally.sent)} to {self.url}", success=True)
        if was == "failing":
            self._on_status(f"InfluxDB at {self.url} is reachable again; sent {samples(tally.sent)}")
        elif was == "unknown":
            self._on_status(f"Sending to InfluxDB at {self.url}; sent {samples(tally.sent)}")

    def _failed(self, error: Exception, tally: _Tally) -> float:
        message = outward(str(error), self.settings)  # status.json and the outbox keep it
        self._note(message, success=False)
        if tally.sent:
            self._last_send = datetime.now(timezone.utc)
        # In `tracker run` the runner tells about the local file itself (it shares it); say the rest once.
        told_by_runner = self._thread is not None and isinstance(error, OutboxUnavailable)
        if (self._status != "failing" or type(error) is not self._failure) and not told_by_runner:
            waiting = self._safe_waiting()
            self._on_status(f"{message.rstrip('.')}; retrying, {samples(waiting)} waiting")
        self._status, self._failure, self._last_error = "failing", type(error), message
        retry_after = getattr(error, "retry_after", None)
        # The server may ask for a longer wait, never a shorter one: Retry-After 0 or a date in the past
        # must not become a tight loop of requests.
        pause = max(self._retry_delay, min(retry_after, RETRY_AFTER_CAP)) if retry_after is not None \
            else self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self._max_retry)
        return pause

    # -- sending -----------------------------------------------------------------------------------

    def _drain(self, tally: _Tally, progress: Progress | None, lock_wait: float,
               deadline: float | None = None) -> None:
        """Send batches, oldest first, until nothing is waiting (or the deadline passes).

        One batch is on the wire while the one before is forgotten and the next one read: the server's time
        and the local file's time overlap instead of adding up. send.lock is held throughout, so no other
        sender reads these rows meanwhile. Only final rows come out: those the runner may still rewrite as
        away wait (see tracker.recording.localstore).
        """
        outbox = self._open_outbox()
        with sending_held(self.database, lock_wait, _Busy):
            self._before_batches(outbox, self._on_status)
            # Read inside the lock: rows another sender just confirmed are gone by now.
            rows = outbox.pending_lines(self.batch_size)
            sending = self._send_async(rows) if rows and self._may_go_on(deadline) else None
            try:
                while sending is not None:
                    sent = rows
                    more = len(sent) >= self.batch_size and self._may_go_on(deadline)
                    rows = outbox.pending_lines(self.batch_size, after_id=sent[-1][0]) if more else []
                    try:
                        sending.result()
                    except (TooLarge, Rejected) as refusal:
                        sending = None
                        self._deliver(outbox, sent, refusal, tally, progress)  # bisect it, one request at a time
                        sending = self._send_async(rows) if rows else None
                        continue
                    sending = self._send_async(rows) if rows else None
                    self._confirmed(outbox, [row_id for row_id, _ in sent], tally, progress)
            finally:
                if sending is not None:  # a failure here: the rows on the wire stay, and go out again later
                    with suppress(Exception):
                        sending.result()

    def _after_drain(self) -> None:
        """Nothing waits to be sent (or all that could be is): the job for then, outside send.lock."""
        if self._when_drained is not None:
            self._when_drained(self._open_outbox(), self._on_status)

    def _may_go_on(self, deadline: float | None) -> bool:
        if deadline is None:
            return not self._stopping.is_set()
        return time.monotonic() < deadline

    def _send_async(self, rows: Sequence[tuple[int, str]]) -> Future[None]:
        sink = self._open_sink()
        if self._wire is None:
            self._wire = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-wire")
        return self._wire.submit(self._write, sink, [line for _, line in rows])

    def _write(self, sink: Sink, lines: list[str]) -> None:
        """One request, timed and counted by what it came to."""
        started = time.monotonic()
        result = "ok"
        try:
            sink.write(lines)
        except Exception as error:
            result = request_result(error)
            raise
        finally:
            seconds = time.monotonic() - started
            counts = self.requests
            counts.by_result[result] = counts.by_result.get(result, 0) + 1
            counts.last_seconds, counts.last_lines = seconds, len(lines)
            for observe in self.request_observers:
                observe(seconds, len(lines), result)

    def _confirmed(self, outbox: Outbox, ids: list[int], tally: _Tally, progress: Progress | None) -> None:
        """The server confirmed these rows: forget them."""
        outbox.mark_sent(ids)
        tally.sent += len(ids)
        if progress is not None:
            progress(tally.sent, max(tally.total, tally.sent))

    def _deliver(self, outbox: Outbox, rows: Sequence[Row], refusal: SendError, tally: _Tally,
                 progress: Progress | None) -> None:
        """The server refused this batch (`refusal`): deliver.deliver finds what it takes, one request at a time;
        confirmed rows are forgotten and refused ones quarantined as it goes. RefusedEverything: the rest wait."""
        configured_batch = self.batch_size
        try:
            for outcome in deliver([line for _, line in rows], partial(self._write, self._open_sink()), self.url,
                                   refusal):
                if isinstance(outcome, Accepted):
                    self._confirmed(outbox, [rows[position][0] for position in outcome.positions], tally, progress)
                elif isinstance(outcome, Quarantined):
                    outbox.quarantine([rows[outcome.position][0]], outward(outcome.reason, self.settings))
                    tally.quarantined += 1
                else:
                    self.batch_size = outcome.size  # later batches start small enough
        except RefusedEverything:
            self.batch_size = configured_batch
            raise

    # -- resources ---------------------------------------------------------------------------------

    def _open_outbox(self) -> Outbox:
        with self._open_lock:
            if self._outbox is None:
                self._outbox = Outbox(self.database, durable=False)
            return self._outbox

    def _open_sink(self) -> Sink:
        with self._open_lock:
            if self._sink is None:
                self._sink = open_sink(self.settings)
                if not self.settings.verify_tls and self.url.startswith("https:"):
                    self._on_status(f"Warning: TLS certificates are not checked for InfluxDB at {self.url}"
                                    " (influx.verify_tls is false): anyone on the way could read or change"
                                    " the samples")
            return self._sink

    def _note(self, result: str, success: bool) -> None:
        # When it fails the status line says so; the note is only for `tracker outbox`.
        with suppress(OutboxUnavailable):
            self._open_outbox().note_send(result, success)

    def _safe_waiting(self) -> int:
        """Rows waiting now; the last count read when the outbox cannot be read."""
        with suppress(OutboxUnavailable):
            self._waiting = self._open_outbox().waiting()
        return self._waiting

    def _close(self) -> None:
        if self._wire is not None:
            self._wire.shutdown(wait=True)
            self._wire = None
        with self._open_lock:
            if self._sink is not None:
                self._sink.close()
                self._sink = None
            if self._outbox is not None:
                self._outbox.close()
                self._outbox = None

