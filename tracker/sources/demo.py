"""A made-up desktop: apps and browser tabs from the demo catalogue, for trying tracker anywhere."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime

from tracker.demo import ActivityStream, Page
from tracker.model import Sample, utc_now

# The catalogue's stretches last minutes to half an hour; live, a switch every few tens of seconds
# shows the pipeline working sooner. Bounds in seconds.
_LIVE_SPEEDUP = 6.0
_SHORTEST_STAY, _LONGEST_STAY = 12.0, 240.0
# A break lasts longer than the default away threshold (180 s), so the stream shows away time too.
_BREAK_SECONDS = (200.0, 420.0)


class DemoSource:
    """Switches between believable apps and sites; during a break the input goes idle."""

    name = "demo"

    def __init__(self, seed: int | None = None, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = utc_now) -> None:
        self._rng = random.Random(seed)
        self._stream = ActivityStream(self._rng)
        self._clock = clock
        self._now = now
        self._app = ""
        self._page = Page("")
        self._switch_at = float("-inf")
        self._break_started: float | None = None

    def read(self) -> Sample:
        moment = self._clock()
        if moment >= self._switch_at:
            self._switch(moment)
        idle = 0.0 if self._break_started is None else moment - self._break_started
        return Sample(time=self._now(), app=self._app, title=self._page.title, url=self._page.url,
                      idle_seconds=idle)

    def _switch(self, moment: float) -> None:
        if self._break_started is None and self._app and self._stream.takes_a_break():
            self._break_started = moment
            self._switch_at = moment + self._rng.uniform(*_BREAK_SECONDS)
            return
        self._break_started = None
        activity, self._page, seconds = self._stream.next()
        self._app = activity.app
        self._switch_at = moment + min(_LONGEST_STAY, max(_SHORTEST_STAY, seconds / _LIVE_SPEEDUP))

    def close(self) -> None:
        """Nothing to release."""
