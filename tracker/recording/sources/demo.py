"""A made-up desktop: apps and browser tabs from the demo catalogue, for trying tracker anywhere.

The catalogue and the ActivityStream that draws from it are here, not in tracker.tasks.demo, which writes a made-up
week to InfluxDB from them: the live source needs none of InfluxDB.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from tracker.model import UNCATEGORIZED, Sample, url_host, utc_now
from tracker.recording.sources import Permission

# RescueTime's scale, +2 very productive ... -2 very distracting, as the bundled categories.yaml scores
# the categories the demo uses (a test holds every catalogue entry to those rules). Away always scores 0.
CATEGORY_SCORES: dict[str, float] = {
    "Development": 2.0,
    "Writing": 2.0,
    "Design": 2.0,
    "Communication": 1.0,
    "Productivity": 1.0,
    "Reference & Learning": 1.0,
    "Utilities": 0.0,
    "Browsing": 0.0,
    UNCATEGORIZED: 0.0,
    "News": -1.0,
    "Entertainment": -2.0,
    "Social": -2.0,
    "Shopping": -2.0,
}


@dataclass(frozen=True)
class Page:
    """One window title, with the address when it is a browser tab."""

    title: str
    url: str | None = None


@dataclass(frozen=True)
class DemoActivity:
    """An app, or a site in a browser, with the titles its windows show."""

    app: str
    category: str
    pages: tuple[Page, ...]

    @property
    def activity(self) -> str:
        """The site for a browser tab, otherwise the app: what the `activity` tag holds."""
        return url_host(self.pages[0].url) or self.app

    @property
    def score(self) -> float:
        return CATEGORY_SCORES[self.category]


def _app(app: str, category: str, *titles: str) -> DemoActivity:
    return DemoActivity(app, category, tuple(Page(title) for title in titles))


def _site(browser: str, category: str, origin: str, *pages: tuple[str, str]) -> DemoActivity:
    return DemoActivity(browser, category, tuple(Page(title, origin + path) for path, title in pages))


CATALOGUE: tuple[DemoActivity, ...] = (
    _app("Code", "Development",
         "model.py — tracker — Visual Studio Code",
         "test_sinks.py — tracker — Visual Studio Code",
         "pyproject.toml — tracker — Visual Studio Code",
         "outbox.py — tracker — Visual Studio Code"),
    _app("Terminal", "Development",
         "~/src/tracker — pytest -x", "~/src/tracker — git rebase -i main", "~/src/tracker — htop"),
    _site("Firefox", "Development", "https://github.com",
          ("/acme/tracker/pull/42", "Write points in batches · Pull Request #42 · acme/tracker"),
          ("/acme/tracker/issues/17", "Dashboard shows UTC days · Issue #17 · acme/tracker"),
          ("/acme/tracker/actions", "Actions · acme/tracker")),
    _site("Firefox", "Development", "https://docs.python.org",
          ("/3/library/zoneinfo.html", "zoneinfo — IANA time zone support — Python 3.12 documentation"),
          ("/3/library/dataclasses.html", "dataclasses — Data Classes — Python 3.12 documentation")),
    _site("Firefox", "Development", "https://stackoverflow.com",
          ("/questions/4563272", "How to convert a UTC datetime to a local datetime - Stack Overflow"),
          ("/questions/2720319", "Python: figure out local timezone - Stack Overflow")),
    _app("Pages", "Writing", "Quarterly report", "Design notes"),
    _site("Google Chrome", "Writing", "https://docs.google.com",
          ("/document/d/1x2y3z/edit", "Project proposal - Google Docs"),
          ("/document/d/9a8b7c/edit", "Meeting notes 2024 - Google Docs")),
    _app("Figma", "Design", "Dashboard mock-ups – Figma", "Icons – Figma"),
    _app("Slack", "Communication", "#team-tracker | Acme - Slack", "Direct message with Sam | Acme - Slack"),
    _app("Thunderbird", "Communication", "Inbox - Mozilla Thunderbird",
         "Re: Release plan for 0.2 - Mozilla Thunderbird"),
    _site("Google Chrome", "Communication", "https://mail.google.com",
          ("/mail/u/0/#inbox", "Inbox (3) - alex@example.com - Gmail")),
    _app("zoom.us", "Communication", "Zoom Meeting", "Weekly sync - Zoom"),
    _app("Obsidian", "Productivity", "Daily note - Vault - Obsidian", "Reading list - Vault - Obsidian"),
    _site("Firefox", "Productivity", "https://calendar.google.com",
          ("/calendar/r/week", "Google Calendar - Week of 10 June 2024")),
    _site("Firefox", "Reference & Learning", "https://en.wikipedia.org",
          ("/wiki/Time_series_database", "Time series database - Wikipedia"),
          ("/wiki/Pomodoro_Technique", "Pomodoro Technique - Wikipedia")),
    _site("Firefox", "Reference & Learning", "https://arxiv.org",
          ("/abs/2401.00001", "[2401.00001] Measuring attention at work - arXiv")),
    _app("Preview", "Reference & Learning", "Designing Data-Intensive Applications.pdf"),
    _app("Finder", "Utilities", "Downloads", "Screenshots"),
    _app("KeePassXC", "Utilities", "Passwords.kdbx - KeePassXC"),
    _site("Firefox", "Browsing", "https://www.timeanddate.com",
          ("/worldclock/", "World Clock — current time around the world")),
    _app("Simple Scan", UNCATEGORIZED, "Document Scanner"),
    _app("Transmission", UNCATEGORIZED, "Transmission"),
    _app("VirtualBox", UNCATEGORIZED, "Oracle VM VirtualBox Manager"),
    _site("Firefox", "News", "https://news.ycombinator.com",
          ("/", "Hacker News"), ("/item?id=39000000", "Show HN: A tiny time tracker | Hacker News")),
    _site("Firefox", "News", "https://www.theguardian.com",
          ("/international", "News, sport and opinion from the Guardian's global edition | The Guardian")),
    _site("Firefox", "Social", "https://www.reddit.com",
          ("/r/Python/", "Python - Reddit"), ("/r/productivity/", "productivity - Reddit")),
    _site("Google Chrome", "Social", "https://x.com", ("/home", "Home / X")),
    _site("Firefox", "Social", "https://www.linkedin.com", ("/feed/", "Feed | LinkedIn")),
    _site("Firefox", "Entertainment", "https://www.youtube.com",
          ("/watch?v=dQw4w9WgXcQ", "Relaxing lofi beats to code to - YouTube"),
          ("/watch?v=9bZkp7q19f0", "Top 10 goals of the season - YouTube")),
    _app("Spotify", "Entertainment", "Spotify Premium", "Discover Weekly - Spotify"),
    _site("Google Chrome", "Entertainment", "https://www.netflix.com", ("/browse", "Home - Netflix")),
    _site("Firefox", "Shopping", "https://www.amazon.com",
          ("/gp/cart/view.html", "Amazon.com Shopping Cart")),
)

# How a working session and a free-time session share their time between categories (relative weights).
WORK_MIX: dict[str, float] = {
    "Development": 30, "Writing": 8, "Design": 4, "Communication": 18, "Productivity": 6,
    "Reference & Learning": 8, "Utilities": 3, "Browsing": 2, UNCATEGORIZED: 5,
    "News": 6, "Social": 6, "Entertainment": 3, "Shopping": 1,
}
LEISURE_MIX: dict[str, float] = {
    "Development": 8, "Writing": 6, "Design": 2, "Communication": 5, "Productivity": 2,
    "Reference & Learning": 8, "Utilities": 2, "Browsing": 4, UNCATEGORIZED: 2,
    "News": 14, "Social": 20, "Entertainment": 24, "Shopping": 6,
}

# Minutes one stretch of an activity lasts, by score: focus lasts, chat and distraction are short.
_STRETCH_MINUTES: dict[float, tuple[float, float]] = {
    2.0: (4, 30), 1.0: (1, 10), 0.0: (0.5, 4), -1.0: (1, 6), -2.0: (1, 12),
}
# After one distraction, how likely the next pick is a distraction too: bursts, not single visits.
_BURST_CHANCE = 0.55
# How likely a short break (away from the desk) follows a stretch of work.
_BREAK_CHANCE = 0.04


class ActivityStream:
    """What someone does next: activity after activity, with distraction bursts, drawn from a mix."""

    def __init__(self, rng: random.Random, mix: Mapping[str, float] = WORK_MIX) -> None:
        self._rng = rng
        self._mix = mix
        self._in_burst = False

    def next(self) -> tuple[DemoActivity, Page, float]:
        """The next activity, the window it shows, and for how many seconds."""
        categories = list(self._mix)
        if self._in_burst:
            categories = [name for name in categories if CATEGORY_SCORES[name] < 0]
        category = self._rng.choices(categories, weights=[self._mix[name] for name in categories])[0]
        activity = self._rng.choice([entry for entry in CATALOGUE if entry.category == category])
        self._in_burst = activity.score < 0 and self._rng.random() < _BURST_CHANCE
        low, high = _STRETCH_MINUTES[activity.score]
        return activity, self._rng.choice(activity.pages), 60 * self._rng.uniform(low, high)

    def takes_a_break(self) -> bool:
        return self._rng.random() < _BREAK_CHANCE


# The catalogue's stretches last minutes to half an hour; live, a switch every few tens of seconds
# shows the pipeline working sooner. Bounds in seconds.
_LIVE_SPEEDUP = 6.0
_SHORTEST_STAY, _LONGEST_STAY = 12.0, 240.0
# A break lasts longer than the default away threshold (180 s), so the stream shows away time too.
_BREAK_SECONDS = (200.0, 420.0)


class DemoSource:
    """Switches between believable apps and sites; during a break the input goes idle."""

    name = "demo"
    unreadable_titles = 0

    def permissions(self) -> list[Permission]:
        return []  # nothing to allow

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
