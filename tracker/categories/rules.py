"""Categories: rules that turn a sample into a category and a productivity score.

The activity of a sample is its site when it has a URL, otherwise its app. A domain rule beats a title
rule, which beats an app rule; among domains the longest match wins, among titles the first in the file.
Reading, checking and watching the files the rules come from is categoryfiles.py's (and rulesfile.py's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.matching import TitleRegex, host_suffixes
from tracker.model import UNCATEGORIZED, Sample, url_host
from tracker.yamlfile import FileLineError

SCORE_MIN = -2.0
SCORE_MAX = 2.0


class CategoriesError(FileLineError):
    """A categories file that cannot be used; the message names the file, the line and the problem."""


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # "app", "domain" or "title"
    pattern: str  # as matched: lower-case app, normalised domain, or the regex as written
    written: str  # as the file spells it, for showing back to the user
    category: str
    score: float
    line: int


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    score: float
    line: int
    rules: tuple[Rule, ...]

    def written(self, kind: str) -> list[str]:
        """The rules of one kind ("app", "domain", "title") as the file spells them."""
        return [rule.written for rule in self.rules if rule.kind == kind]


_RECENT_WINDOWS = 256  # classifications remembered by Categories.classify


@dataclass(frozen=True, slots=True)
class Match:
    """Which category a sample falls in, and which rule decided (rule, file and line are None when none)."""

    category: str
    score: float
    activity: str
    rule: str | None = None
    file: Path | None = None
    line: int | None = None


class Categories:
    """A validated set of categories, indexed so that classifying a sample costs a few dict lookups."""

    def __init__(self, categories: tuple[Category, ...], file: Path) -> None:
        self.categories = categories
        self.file = file
        self._apps: dict[str, Rule] = {}
        self._domains: dict[str, Rule] = {}
        self._title_rules: list[Rule] = []
        # Compiled on the first title to match: `tracker categories list` shows the rules and needs none.
        self._titles: list[tuple[TitleRegex, Rule]] | None = None
        # The windows seen lately and how they were classified: a run reads the same few windows again and
        # again, and every title rule searched costs more than the lookup.
        self._recent: dict[tuple[str, str | None, str | None], Match] = {}
        for category in categories:
            for rule in category.rules:
                if rule.kind == "app":
                    self._apps[rule.pattern] = rule
                elif rule.kind == "domain":
                    self._domains[rule.pattern] = rule
                else:
                    self._title_rules.append(rule)

    @property
    def rule_count(self) -> int:
        return sum(len(category.rules) for category in self.categories)

    def classify(self, sample: Sample) -> Match:
        key = (sample.app, sample.title, sample.url)
        match = self._recent.get(key)
        if match is None:
            if len(self._recent) >= _RECENT_WINDOWS:
                self._recent.clear()
            match = self._recent[key] = self._match(sample)
        return match

    def _match(self, sample: Sample) -> Match:
        rule = self._deciding_rule(sample)
        if rule is None:
            return Match(UNCATEGORIZED, 0.0, sample.activity)
        shown = f"'{rule.written}'" if rule.kind == "title" else rule.written
        return Match(
            category=rule.category,
            score=rule.score,
            activity=sample.activity,
            rule=f"{rule.kind} {shown} ({self.file.name}, line {rule.line})",
            file=self.file,
            line=rule.line,
        )

    def _deciding_rule(self, sample: Sample) -> Rule | None:
        host = url_host(sample.url)
        if host:
            for suffix in host_suffixes(host):
                if suffix in self._domains:
                    return self._domains[suffix]
        if sample.title:
            if self._titles is None:
                self._titles = [(TitleRegex(rule.pattern), rule) for rule in self._title_rules]
            for pattern, rule in self._titles:
                if pattern.search(sample.title):
                    return rule
        return self._apps.get(sample.app.lower())

    def to_dict(self) -> dict[str, Any]:
        """The rules as plain data, the shape `tracker categories list --json` prints."""
        return {
            "file": str(self.file),
            "categories": [
                {
                    "name": category.name,
                    "score": category.score,
                    "apps": category.written("app"),
                    "domains": category.written("domain"),
                    "titles": category.written("title"),
                }
                for category in self.categories
            ],
        }


