"""From samples to records: classification, privacy, honest durations and away time.

Pure logic with no I/O, so every rule about time is tested on its own:
- a sample stands for the time since the previous one, never more than twice the interval (a laptop
  that slept for an hour records no hour of activity);
- timestamps never go backwards and records never overlap, and after the wall clock is set back (a jump
  forward corrected by NTP), the records it stamped ahead are moved back to their real time (`Restamp`) so
  that timestamps follow the wall clock again at once;
- after `away_after` without input, samples are Away, and so is the time since the last input: records
  since the last input stay *provisional* until input shows they were active, or away is declared
  (`settle`, applied by the one owner of local state, tracker.recording.localstore).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tracker.events import default_pulsetime
from tracker.lineprotocol import clean_tag, clean_text
from tracker.model import AWAY, STATE_AWAY, Record, Restamp, Sample


@dataclass(frozen=True)
class Classified:
    """What the classifier says of one sample (the fields of classify.Match the recorder needs)."""

    category: str
    score: float
    rule: str | None = None


Classify = Callable[[Sample], Classified]


# Segments of the wall clock's settings kept for a run; more are merged (see Recorder._merge_oldest).
_MAX_SEGMENTS = 64
# Changes of (wall - monotonic) up to this are the jitter of reading two clocks, not another setting (ms).
_SAME_SETTING_MS = 250


@dataclass
class _Segment:
    """Records stamped with one setting of the wall clock: stamp = monotonic + offset (all in ms)."""

    first_ms: int
    first_duration_ms: int
    last_ms: int
    offset_ms: int


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
    # Set when the wall clock was set back: records of earlier steps to move, before this step's record is kept.
    restamps: tuple[Restamp, ...] = ()


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
    def __init__(self, host: str, interval: float, away_after: float | None, not_before_ms: int | None = None) -> None:
        """`not_before_ms`: where the records kept before this run end; a correction of the clock never moves
        this run's records before it."""
        self.host = clean_tag(host) or "unknown"
        self.interval = interval
        self.away_after = away_after
        self.not_before_ms = not_before_ms
        # A change of (wall - monotonic) beyond this is the wall clock being set, not a late or slow read; no
        # more than the pulsetime, so a jump always starts a new event in the history.
        self._jump_ms = int(default_pulsetime(interval) * 1000)
        self._last_time_ms: int | None = None
        self._last_monotonic: float | None = None
        self._segments: list[_Segment] = []
        self._away = False
        self._last_read: tuple[str | None, ...] = ()
        self._last_cleaned: tuple[str, str, str, str | None, str | None] = ("", "", "", None, None)

    @property
    def away(self) -> bool:
        return self._away

    def step(self, sample: Sample, monotonic: float, classified: Classified) -> Step:
        """Turn one (privacy-filtered) sample, read at `monotonic` seconds, into a record."""
        previous = self._last_monotonic
        elapsed = self.interval if previous is None else max(0.0, monotonic - previous)
        self._last_monotonic = monotonic
        duration = round(min(elapsed, 2 * self.interval), 3)
        time_ms, restamps = self._timestamp(sample, monotonic, elapsed, duration)
        app, activity, category, title, url = self._cleaned(sample, classified)
        record = Record(
            time_ms=time_ms,
            duration=duration,
            host=self.host,
            app=app,
            activity=activity,
            category=category,
            score=float(classified.score),
            title=title,
            url=url,
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
        return Step(record, classified.rule, away_since_ms, final_until, restamps)

    def _cleaned(self, sample: Sample, classified: Classified) -> tuple[str, str, str, str | None, str | None]:
        """The sample's text as records keep it; the last sample's again while the same window stays in front."""
        read = (sample.app, sample.activity, classified.category, sample.title, sample.url)
        if read != self._last_read:
            app = clean_tag(sample.app) or "unknown"
            self._last_read = read
            self._last_cleaned = (app, clean_tag(sample.activity) or app,
                                  clean_tag(classified.category) or "Uncategorized",
                                  clean_text(sample.title), clean_text(sample.url))
        return self._last_cleaned

    def _timestamp(self, sample: Sample, monotonic: float, elapsed: float,
                   duration: float) -> tuple[int, tuple[Restamp, ...]]:
        """The sample's timestamp, and the moves of earlier records a clock set back calls for.

        The wall clock is followed wherever that overlaps no record: forward at once (a clock set right, or a
        machine that slept), and back by moving the records stamped while it read later to where the monotonic
        clock puts them, no further back than the record before them (or this run's start) allows. A late read
        (the process stalled between the two clocks) looks like a jump forward and back by a second or so; it
        moves nothing, as following the wall clock then overlaps nothing.
        """
        wall_ms = int(sample.time.timestamp() * 1000)
        monotonic_ms = int(monotonic * 1000)
        duration_ms = int(duration * 1000)
        offset_ms = wall_ms - monotonic_ms
        restamps: tuple[Restamp, ...] = ()
        last_ms = self._last_time_ms
        if last_ms is None:
            if self.not_before_ms is not None:
                wall_ms = max(wall_ms, self.not_before_ms + duration_ms)
            self._segments.append(_Segment(wall_ms, duration_ms, wall_ms, wall_ms - monotonic_ms))
            self._last_time_ms = wall_ms
            return wall_ms, restamps
        if offset_ms < self._segments[-1].offset_ms - self._jump_ms and wall_ms + self._jump_ms < last_ms + duration_ms:
            restamps = self._set_back(offset_ms)
            last_ms = self._segments[-1].last_ms
            time_ms = max(wall_ms, last_ms + duration_ms)
        elif wall_ms > last_ms:
            time_ms = wall_ms
        else:
            # A little back, within a read's delay: carry on by the time that really passed.
            time_ms = last_ms + max(1, int(elapsed * 1000))
        segment = self._segments[-1]
        # A segment holds records of one setting: a step smaller than a jump (or a late read) starts another
        # too, so that a later set-back moves each record to where the monotonic clock puts it. One segment
        # moved by its last setting would move its first records too far, and be held back as a whole.
        if abs(offset_ms - segment.offset_ms) > _SAME_SETTING_MS:
            self._segments.append(_Segment(time_ms, duration_ms, time_ms, time_ms - monotonic_ms))
            if len(self._segments) > _MAX_SEGMENTS:
                self._merge_oldest()
        else:
            segment.last_ms, segment.offset_ms = time_ms, time_ms - monotonic_ms
        self._last_time_ms = time_ms
        return time_ms, restamps

    def _set_back(self, offset_ms: int) -> tuple[Restamp, ...]:
        """The wall clock now reads `offset_ms` ahead of the monotonic clock, less than some records were
        stamped with: move each of those segments back to the new setting, in order, each no further than
        the (moved) record before it allows; a segment moves as a whole, so its own records never overlap."""
        moved: list[Restamp] = []
        floor_ms = self.not_before_ms
        for segment in self._segments:
            shift = 0
            if segment.offset_ms > offset_ms:
                shift = offset_ms - segment.offset_ms
                if floor_ms is not None:  # never onto the record before
                    shift = min(0, max(shift, floor_ms + segment.first_duration_ms - segment.first_ms))
            if shift:
                moved.append(Restamp(segment.first_ms, segment.last_ms, shift))
                segment.first_ms += shift
                segment.last_ms += shift
                segment.offset_ms += shift
            floor_ms = segment.last_ms
        self._last_time_ms = self._segments[-1].last_ms
        return tuple(moved)

    def _merge_oldest(self) -> None:
        """Keep the list short (each late read adds two): the two oldest segments become one that moves as a
        whole, by the smaller move of the two; still no overlap, as a segment keeps its records' spacing."""
        first, second = self._segments[:2]
        self._segments[:2] = [_Segment(first.first_ms, first.first_duration_ms, second.last_ms,
                                       min(first.offset_ms, second.offset_ms))]
