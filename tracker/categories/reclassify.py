"""Today's category and score for time recorded before: what `tracker recategorize` and the sender's deferred
corrections give every recorded sample, event and point."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import TypeVar

from tracker.categories.rules import Categories
from tracker.events import EventData
from tracker.lineprotocol import clean_tag
from tracker.model import AWAY, STATE_ACTIVE, UNCATEGORIZED, Record, Sample

# (from category, to category) -> seconds
Moves = dict[tuple[str, str], float]
_Recorded = TypeVar("_Recorded", Record, EventData)


def new_category(categories: Categories, app: str, title: str | None, url: str | None) -> tuple[str, float]:
    """The category and score today's rules give a recorded sample, from what was kept of it."""
    match = categories.classify(Sample(time=datetime.now(timezone.utc), app=app, title=title, url=url))
    return clean_tag(match.category) or UNCATEGORIZED, float(match.score)


def is_away(category: str, state: str) -> bool:
    """Away time stays away: it was decided by input, not by rules."""
    return state != STATE_ACTIVE or category == AWAY


class Reclassifier:
    """Today's category and score for recorded time, from what was kept of each sample."""

    def __init__(self, categories: Categories) -> None:
        self.categories = categories
        # Categories that a title or domain rule can decide: time in one with neither title nor URL kept may
        # have been decided by details that privacy settings dropped (a private window on github.com).
        self._decided_by_details = {category.name for category in categories.categories
                                    if any(rule.kind != "app" for rule in category.rules)}

    def __call__(self, recorded: _Recorded) -> _Recorded | None:
        """The record or event with today's category and score; None when it stays as it is: away time, and
        time with no title or URL kept whose category a title or domain rule can decide, which its app
        alone cannot tell again."""
        if is_away(recorded.category, recorded.state):
            return None
        category, score = new_category(self.categories, recorded.app, recorded.title, recorded.url)
        if (recorded.title is None and recorded.url is None and category != recorded.category
                and recorded.category in self._decided_by_details):
            return None
        return replace(recorded, category=category, score=score)
