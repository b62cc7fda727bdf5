"""From samples to records: classification, privacy, honest durations and away time.

Pure logic with no I/O, so every rule about time is tested on its own:
- a sample stands for the time since the previous one, never more than twice the interval (a laptop
  that slept for an hour records no hour of activity);
- timestamps never go backwards, so a clock that jumps back makes no duplicate points;
- after `away_after` without input, samples are Away, and so is the time since the last input: records
  since the last input stay *provisional* until input shows they were active, or away is declared
  (`settle`, applied by the one owner of local state, tracker.localstore).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tracker.lineprotocol import clean_tag, clean_text
from tracker.model import AWAY, STATE_AWAY, Record, Sample


@dataclass(frozen=True)
class Classified:
    """What the classifier says of one sample (the fields of classify.Match the recorder needs)."""

    category: str
    score: float
    rule: str | None = None


Classify = Callable[[Sample], Classified]


@dataclass(frozen=True)
class Step:
    """The outcome of one sample."""

    record: Record
    rule: str | None
    # Set when away was just declared: records after this time (ms, the last input) are away,
    # including earlier ones that are still provisional.
    away_since_ms: int | None
    # Every record up to this time (ms) is final: it can no longer change.
    final_until_ms: int


def settle(provisional: Sequence[Record], step: Step) -> tuple[list[Record], list[Record]]:
    """The records that are final after `step`, and those still provisional, each oldest first.

    `provisional` are the records of earlier steps not final yet; away rewrites those after its start.
    """
    records = [*provisional, step.record]
    if step.away_since_ms is not None:
        records = [mark_away(r) if r.time_ms > step.away_since_ms else r for r in records]
    final = [r for r in records if r.time_ms <= step.final_until_ms]
    return final, [r for r in records if r.time_ms > step.final_until_ms]


def mark_away(record: Record) -> Record:
    return replace(record, category=AWAY, score=0.0, state=STATE_AWAY)


class Recorder:
    def __init__(self, host: str, interval: float, away_after: float | None) -> None:
        self.host = clean_tag(host) or "unknown"
        self.interval = interval
        self.away_after = away_after
        self._last_time_ms: int | None = None
        self._last_monotonic: float | None = None
        self._away = False

    @property
    def away(self) -> bool:
        return self._away

    def step(self, sample: Sample, monotonic: float, classified: Classified) -> Step:
        """Turn one (privacy-filtered) sample, read at `monotonic` seconds, into a record."""
        previous = self._last_monotonic
        elapsed = self.interval if previous is None else max(0.0, monotonic - previous)
        self._last_monotonic = monotonic
        duration = round(min(elapsed, 2 * self.interval), 3)
        time_ms = self._timestamp(sample, elapsed)
        app = clean_tag(sample.app) or "unknown"
        activity = clean_tag(sample.activity) or app
        record = Record(
            time_ms=time_ms,
            duration=duration,
            host=self.host,
            app=app,
            activity=activity,
            category=clean_tag(classified.category) or "Uncategorized",
            score=float(classified.score),
            title=clean_text(sample.title),
            url=clean_text(sample.url),
        )
        # The last input happened this long before the sample; None when the platform cannot tell.
        idle = sample.idle_seconds
        last_input_ms = time_ms - int(idle * 1000) if idle is not None else time_ms
        away_now = sample.locked or (
            self.away_after is not None and idle is not None and idle >= self.away_after
        )
        away_since_ms: int | None = None
        if away_now:
            record = mark_away(record)
            if not self._away:
                # Everything since the last input was away time too, not just what follows the threshold.
                away_since_ms = last_input_ms if not sample.locked else time_ms - 1
            self._away = True
            final_until = time_ms
        else:
            self._away = False
            # Input after a record proves it was active time; with no idle information all is final.
            final_until = last_input_ms if self.away_after is not None and idle is not None else time_ms
        return Step(record, classified.rule, away_since_ms, final_until)

    def _timestamp(self, sample: Sample, elapsed: float) -> int:
        time_ms = int(sample.time.timestamp() * 1000)
        if self._last_time_ms is not None and time_ms <= self._last_time_ms:
            # The wall clock went back: carry on from the last timestamp by the time that really passed.
            time_ms = self._last_time_ms + max(1, int(elapsed * 1000))
        self._last_time_ms = time_ms
        return time_ms
