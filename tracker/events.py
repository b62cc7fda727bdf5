"""The event model of the local history, and its rules as pure functions (no I/O).

ActivityWatch's model: an event is a start (UTC ms), a duration (s) and data. A heartbeat (one record)
with the same data as the last event, starting within `pulsetime` seconds of its end, extends that event
(aw-core's `heartbeat_merge`), so a day of work is a few hundred events rather than tens of thousands.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracker.model import AWAY, STATE_ACTIVE, Record

# RescueTime's productivity pulse: the time-weighted mean score mapped from -2..+2 onto 0..100.
_PULSE_PER_SCORE = 25.0
_PULSE_AT_ZERO = 50.0


def pulse_of(score: float) -> float:
    """A score from -2 to +2 as a productivity pulse from 0 to 100 (all neutral is 50)."""
    return _PULSE_AT_ZERO + score * _PULSE_PER_SCORE


def score_of_pulse(pulse: float) -> float:
    """A pulse (0..100) back on the score scale (-2..+2), e.g. for its colour."""
    return (pulse - _PULSE_AT_ZERO) / _PULSE_PER_SCORE


def default_pulsetime(interval: float) -> float:
    """How far apart two samples may be and still merge: ActivityWatch's max(1.5 × poll, poll + 1).

    The margin absorbs a late sample (a slow platform read, a busy machine) without splitting an event.
    """
    return max(1.5 * interval, interval + 1.0)


@dataclass(frozen=True, slots=True)
class EventData:
    """What must be identical for two samples to merge into one event."""

    app: str
    activity: str
    category: str
    score: float
    title: str | None
    url: str | None
    state: str

    @classmethod
    def of(cls, record: Record) -> EventData:
        return cls(record.app, record.activity, record.category, float(record.score), record.title,
                   record.url, record.state)

    @property
    def active(self) -> bool:
        return self.state == STATE_ACTIVE and self.category != AWAY


@dataclass(frozen=True, slots=True)
class Event:
    timestamp_ms: int
    duration: float
    data: EventData
    id: int | None = None  # the row in the history; None until stored

    @property
    def end_ms(self) -> float:
        return self.timestamp_ms + self.duration * 1000.0

    @classmethod
    def of(cls, record: Record) -> Event:
        return cls(record.time_ms, record.duration, EventData.of(record))


def heartbeat_merge(last: Event, heartbeat: Event, pulsetime: float) -> Event | None:
    """`last` extended by `heartbeat`, or None when the heartbeat starts a new event.

    As aw-core's heartbeat_merge: same data, and the heartbeat starts between the last event's start and
    `pulsetime` seconds after its end. The event keeps its start; a gap within the pulsetime is covered.
    A heartbeat from before the last event's start (the clock went back) never stretches it.
    """
    if last.data != heartbeat.data:
        return None
    if not last.timestamp_ms <= heartbeat.timestamp_ms <= last.end_ms + pulsetime * 1000:
        return None
    duration = max(last.duration, (heartbeat.timestamp_ms - last.timestamp_ms) / 1000.0 + heartbeat.duration)
    return Event(last.timestamp_ms, duration, last.data, last.id)
