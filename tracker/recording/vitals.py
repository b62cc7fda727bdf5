"""The tracker's own vitals: how much it costs and how far behind it is, as points of measurement `tracker`.

`read_vitals` gathers the figures (cheap reads only: it runs in the sampling loop); `VitalsRecorder`, a
runner Observer, commits one point every `vitals_every` seconds to the outbox, so the points go out with
the samples, in order, and a down server loses none of them. `tracker status` shows the same figures.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tracker import __version__
from tracker.lineprotocol import clean_tag, escape_tag, format_float
from tracker.sending.sinks import REQUEST_RESULTS
from tracker.storage.db import StoreUnavailable
from tracker.storage.outbox import Point

if TYPE_CHECKING:
    from tracker.recording.localstore import LocalStore
    from tracker.recording.recorder import Step
    from tracker.recording.sources import Source
    from tracker.sending.sender import RequestCounts

VITALS_MEASUREMENT = "tracker"
# Points kept in memory while the outbox cannot be written (disk full): an hour at the default 10 s.
UNSAVED_POINTS_LIMIT = 360

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Vitals:
    """One reading of the running tracker; None for what this system cannot tell."""

    cpu_seconds: float  # user + system CPU since the process started
    memory_bytes: int | None  # resident set size now (Linux, /proc/self/statm)
    memory_peak_bytes: int | None  # peak resident set size: the fallback where the current one cannot be read
    gc_collections: int  # collections of every generation since start
    # Objects the collector tracks: frozen at start-up (counted once, see freeze_startup_objects) plus those
    # made since, which gc.get_objects() walks; after gc.freeze() that walk takes microseconds (1.1 ms without).
    gc_tracked_objects: int
    threads: int
    open_fds: int | None
    samples_taken: int
    outbox_waiting: int  # rows waiting to be sent: samples and vitals points
    database_bytes: int | None  # the SQLite file shared by the outbox and the history
    database_wal_bytes: int | None  # its write-ahead log, not yet folded into the file
    seconds_behind: float  # now minus the oldest waiting row's time; 0 when nothing waits
    last_send_seconds: float | None  # the last request to InfluxDB: its duration
    last_send_lines: int | None  # and its number of lines
    requests: dict[str, int] = field(default_factory=dict)  # requests since start by result: "ok", "retry", ...
    unreadable_titles: int = 0  # samples recorded with the app only: the source could not read their title

    @property
    def requests_failed(self) -> int:
        return sum(count for result, count in self.requests.items() if result != "ok")


def read_vitals(samples_taken: int, store: LocalStore, requests: RequestCounts | None,
                now_ms: int | None = None, unreadable_titles: int = 0) -> Vitals:
    """The figures now. Reads /proc (or getrusage), the collector's counters, two file sizes and two indexed
    rows of the outbox: well under a millisecond. `unreadable_titles` is the source's count."""
    now_ms = _now_ms() if now_ms is None else now_ms
    memory, peak = _memory()
    database = store.outbox.path
    try:
        oldest_ms = store.outbox.oldest_waiting_ms()
        waiting = store.waiting()
    except StoreUnavailable:
        oldest_ms, waiting = None, store.waiting()
    # Every result is written, 0 until it happens: a Grafana query of a field never written finds nothing.
    by_result = dict.fromkeys(REQUEST_RESULTS, 0)
    if requests is not None:
        by_result.update(requests.by_result)
    return Vitals(
        cpu_seconds=time.process_time(),
        memory_bytes=memory,
        memory_peak_bytes=peak,
        gc_collections=sum(generation["collections"] for generation in gc.get_stats()),
        gc_tracked_objects=_frozen_objects() + len(gc.get_objects()),
        threads=threading.active_count(),
        open_fds=_open_fds(),
        samples_taken=samples_taken,
        outbox_waiting=waiting,
        database_bytes=_size(database),
        database_wal_bytes=_size(database.with_name(database.name + "-wal")),
        seconds_behind=max(0.0, (now_ms - oldest_ms) / 1000) if oldest_ms is not None else 0.0,
        last_send_seconds=requests.last_seconds if requests is not None else None,
        last_send_lines=requests.last_lines if requests is not None else None,
        requests=by_result,
        unreadable_titles=unreadable_titles,
    )


def vitals_document(vitals: Vitals) -> dict[str, object]:
    """The figures as JSON values, for status.json: requests flattened like the point's fields."""
    document = asdict(vitals)
    document.pop("requests")
    document.update(_request_fields(vitals))
    return document


def to_point(vitals: Vitals, time_ms: int, tags: dict[str, str]) -> str:
    """One line of measurement `tracker`: counts as integers, seconds as floats; absent figures left out
    (a field's type never changes from point to point, or InfluxDB would refuse the point)."""
    integers: dict[str, int | None] = {
        "memory_bytes": vitals.memory_bytes, "memory_peak_bytes": vitals.memory_peak_bytes,
        "gc_collections": vitals.gc_collections, "gc_tracked_objects": vitals.gc_tracked_objects,
        "threads": vitals.threads, "open_fds": vitals.open_fds, "samples_taken": vitals.samples_taken,
        "outbox_waiting": vitals.outbox_waiting, "database_bytes": vitals.database_bytes,
        "database_wal_bytes": vitals.database_wal_bytes, "last_send_lines": vitals.last_send_lines,
        "unreadable_titles": vitals.unreadable_titles, **_request_fields(vitals)}
    floats: dict[str, float | None] = {
        "cpu_seconds": vitals.cpu_seconds, "seconds_behind": vitals.seconds_behind,
        "last_send_seconds": vitals.last_send_seconds}
    fields = sorted([f"{name}={value}i" for name, value in integers.items() if value is not None]
                    + [f"{name}={format_float(value)}" for name, value in floats.items() if value is not None])
    tag_text = "".join(f",{key}={escape_tag(clean_tag(value))}" for key, value in sorted(tags.items())
                       if clean_tag(value))
    return f"{VITALS_MEASUREMENT}{tag_text} {','.join(fields)} {time_ms}"


def _request_fields(vitals: Vitals) -> dict[str, int | None]:
    return {**{f"requests_{result}": count for result, count in sorted(vitals.requests.items())},
            "requests_failed": vitals.requests_failed}


class Sending(Protocol):
    """What vitals need of the run's tracker.sending.sender.Sender: its request counts, and a wake-up for new points."""

    requests: RequestCounts

    def wake(self) -> None: ...


class VitalsRecorder:
    """A runner Observer: every `every` seconds of the run's clock, one `tracker` point into the outbox.

    Only while the run sends to InfluxDB (open_parts adds it then): the points are for the server.
    """

    def __init__(self, every: float, host: str, api: str, store: LocalStore, sender: Sending,
                 source: Source) -> None:
        self.every = every
        self.host = host
        self.api = api
        self.store = store
        self.sender = sender
        self.source = source
        self.latest: Vitals | None = None
        self.latest_at_sample = -1  # samples_taken when `latest` was read
        self._last_at: float | None = None
        self._unsaved: deque[Point] = deque(maxlen=UNSAVED_POINTS_LIMIT)  # while the outbox cannot be written

    def observe(self, step: Step) -> None:
        pass

    def tick(self, now: float, samples_taken: int) -> None:
        if self._last_at is not None and now - self._last_at < self.every:
            return
        self._last_at = now
        time_ms = _now_ms()
        vitals = read_vitals(samples_taken, self.store, self.sender.requests, time_ms, self.source.unreadable_titles)
        self.latest, self.latest_at_sample = vitals, samples_taken
        tags = {"host": self.host, "version": __version__, "source": self.source.name, "api": self.api}
        self._unsaved.append(Point(VITALS_MEASUREMENT, time_ms, self.host, to_point(vitals, time_ms, tags)))
        try:
            self.store.outbox.append_points(self._unsaved)
        except StoreUnavailable:
            return  # the runner tells about the local file (it writes samples there too); kept for next time
        self._unsaved.clear()
        self.sender.wake()

    def close(self) -> None:
        pass


_frozen_at_start: int | None = None  # objects frozen by freeze_startup_objects, counted then


def freeze_startup_objects() -> None:
    """gc.freeze() what start-up made (modules, compiled rules), which lives as long as the process: the
    collector no longer scans it again and again. Counted once here: gc.get_freeze_count() walks every frozen
    object (1.6 ms each time here), and the count only changes at a freeze."""
    global _frozen_at_start
    gc.freeze()
    _frozen_at_start = gc.get_freeze_count()


def _frozen_objects() -> int:
    return _frozen_at_start if _frozen_at_start is not None else gc.get_freeze_count()


def _memory() -> tuple[int | None, int | None]:
    """(resident bytes now, peak resident bytes): the first on Linux, the second only where it is missing."""
    try:
        # os.read rather than open(): a tenth of the CPU, which counts in a loop that wakes once a second.
        statm = os.open("/proc/self/statm", os.O_RDONLY)
        try:
            return int(os.read(statm, 200).split()[1]) * _PAGE_SIZE, None
        finally:
            os.close(statm)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None, None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Bytes on macOS, kibibytes on the other systems that have getrusage.
    return None, peak if sys.platform == "darwin" else peak * 1024


def _open_fds() -> int | None:
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            # Listing the directory opens one descriptor itself, which the listing includes.
            return len(os.listdir(directory)) - 1
        except OSError:
            continue
    return None


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)
