"""Reading goals.yaml: the YAML node tree walked and validated, every problem reported with its line."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tracker.goals.model import DAY_MINUTES, EVERY_DAY, PERIODS, WEEKDAYS, Goal, Goals, GoalsError, Hours
from tracker.goals.progress import describe_goal
from tracker.redact import printable
from tracker.timespec import parse_duration
from tracker.yamlfile import compose_nodes

TOP_KEYS = ("goals", "quiet_hours", "week_starts")
GOAL_KEYS = ("name", "category", "categories", "pulse", "at_most", "at_least", "per", "days", "hours")
_DAY_SETS = {"weekdays": frozenset(range(5)), "weekends": frozenset({5, 6}), "every day": EVERY_DAY}
_HOURS = re.compile(r"\s*(\d{1,2})(?::(\d\d))?\s*-\s*(\d{1,2})(?::(\d\d))?\s*")
_YAML_NULL = "tag:yaml.org,2002:null"


def parse_goals(text: str, file: Path) -> Goals:
    """The goals of goals YAML, validated; GoalsError names `file`, the line and the problem."""
    root = compose_nodes(text, file, GoalsError, "the YAML is nested too deeply; a goals file is four levels deep")
    return _GoalsParser(file).parse(root)


class _GoalsParser:
    def __init__(self, file: Path) -> None:
        self.file = file
        self.names: dict[str, int] = {}

    def fail(self, node: Node, problem: str) -> NoReturn:
        raise GoalsError(self.file, node.start_mark.line + 1, printable(problem))

    def parse(self, root: Node | None) -> Goals:
        if root is None:
            return Goals((), file=self.file)  # an empty file: no goals yet
        if not isinstance(root, MappingNode):
            self.fail(root, "the file should be a mapping that starts with 'goals:'")
        entries = self.entries(root, "at the top of the file", TOP_KEYS)
        quiet = self.hours(entries["quiet_hours"], "quiet_hours", wrap=True) if "quiet_hours" in entries else None
        week_start = 0
        if "week_starts" in entries:
            node = entries["week_starts"]
            day = self.text(node, "week_starts").strip().lower()[:3]
            if day not in WEEKDAYS:
                self.fail(node, f"week_starts '{node.value}' is not a day of the week; write e.g. monday or sunday")
            week_start = WEEKDAYS.index(day)
        goals_node = entries.get("goals")
        if goals_node is None or (isinstance(goals_node, ScalarNode) and goals_node.tag == _YAML_NULL):
            return Goals((), quiet, week_start, self.file)
        if not isinstance(goals_node, SequenceNode):
            self.fail(goals_node, "'goals' should be a list, each goal starting with '- '")
        return Goals(tuple(self.goal(node) for node in goals_node.value), quiet, week_start, self.file)

    def entries(self, node: MappingNode, where: str, allowed: tuple[str, ...]) -> dict[str, Node]:
        found: dict[str, Node] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self.text(key_node, "a key").strip()
            if key not in allowed:
                import difflib

                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "expected " + ", ".join(allowed)
                self.fail(key_node, f"unknown key '{key}' {where} ({hint})")
            if key in found:
                self.fail(key_node, f"key '{key}' appears twice {where} (first on line {lines[key]})")
            found[key], lines[key] = value_node, key_node.start_mark.line + 1
        return found

    def text(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag == _YAML_NULL or not str(node.value).strip():
            self.fail(node, f"{what} should be plain text")
        return str(node.value)

    def goal(self, node: Node) -> Goal:
        if not isinstance(node, MappingNode):
            self.fail(node, "each goal should be a mapping, like '- category: Social Media' and 'at_most: 30m'")
        entries = self.entries(node, "in a goal", GOAL_KEYS)
        line = node.start_mark.line + 1
        kinds = [key for key in ("category", "categories", "pulse") if key in entries]
        if len(kinds) != 1:
            self.fail(node, "a goal needs one of category, categories or pulse: true"
                      if not kinds else f"a goal takes one of {' and '.join(kinds)}, not both")
        categories: tuple[str, ...] = ()
        pulse = False
        if "pulse" in entries:
            value = entries["pulse"]
            if not (isinstance(value, ScalarNode) and value.value.lower() in ("true", "yes", "on")):
                self.fail(value, "pulse should be 'true': the goal is then on the productivity pulse, 0 to 100")
            pulse = True
        elif "category" in entries:
            categories = (self.text(entries["category"], "category").strip(),)
        else:
            listed = entries["categories"]
            if not isinstance(listed, SequenceNode) or not listed.value:
                self.fail(listed, "categories should be a list, like categories: [Development, Writing]")
            categories = tuple(self.text(item, "each category").strip() for item in listed.value)
        limits = [key for key in ("at_most", "at_least") if key in entries]
        if len(limits) != 1:
            self.fail(node, "a goal needs at_most or at_least, like 'at_most: 30m'"
                      if not limits else "a goal takes at_most or at_least, not both")
        at_most = limits[0] == "at_most"
        target = self.pulse_target(entries[limits[0]]) if pulse else self.duration(entries[limits[0]], limits[0])
        per = "day"
        if "per" in entries:
            per = self.text(entries["per"], "per").strip().lower()
            if per not in PERIODS:
                self.fail(entries["per"], f"per '{per}' should be day or week")
        days = self.days(entries["days"]) if "days" in entries else EVERY_DAY
        hours = self.hours(entries["hours"], "hours", wrap=False) if "hours" in entries else None
        goal = Goal("", categories, pulse, at_most, target, per, days, hours, line)
        name = self.text(entries["name"], "name").strip() if "name" in entries else f"{goal.what} {describe_goal(goal)}"
        folded = name.casefold()
        if folded in self.names:
            self.fail(node, f"goal '{name}' is there twice (first on line {self.names[folded]}); give one a name:")
        self.names[folded] = line
        return replace(goal, name=name)

    def duration(self, node: Node, key: str) -> float:
        written = self.text(node, key)
        try:
            return parse_duration(written)
        except ValueError:
            self.fail(node, f"{key} '{written.strip()}' is not a duration; write e.g. 30m, 4h or 1h30m")

    def pulse_target(self, node: Node) -> float:
        written = self.text(node, "the pulse")
        try:
            value = float(written)
        except ValueError:
            value = math.nan
        if not 0 <= value <= 100:
            self.fail(node, f"a pulse goal takes a number from 0 to 100, not '{written.strip()}'")
        return value

    def days(self, node: Node) -> frozenset[int]:
        if isinstance(node, ScalarNode):
            written = self.text(node, "days").strip().lower()
            if written in _DAY_SETS:
                return _DAY_SETS[written]
            items = [(node, part) for part in written.split(",")]
        elif isinstance(node, SequenceNode) and node.value:
            items = [(item, self.text(item, "each day")) for item in node.value]
        else:
            self.fail(node, "days should be weekdays, weekends or a list like [mon, wed, fri]")
        days = set()
        for item, written in items:
            day = written.strip().lower()[:3]
            if day not in WEEKDAYS:
                self.fail(item, f"'{written.strip()}' is not a day; write weekdays, weekends or days like mon, tue")
            days.add(WEEKDAYS.index(day))
        return frozenset(days)

    def hours(self, node: Node, key: str, wrap: bool) -> Hours:
        written = self.text(node, key)
        match = _HOURS.fullmatch(written)
        if match is None:
            self.fail(node, f"{key} '{written.strip()}' should be two times of day, like 09:00-17:00")
        start_hour, start_minute, end_hour, end_minute = (int(part or 0) for part in match.groups())
        start, end = start_hour * 60 + start_minute, end_hour * 60 + end_minute
        if start_minute >= 60 or end_minute >= 60 or start >= DAY_MINUTES or end > DAY_MINUTES:
            self.fail(node, f"{key} '{written.strip()}' has a time of day that does not exist")
        if start == end or (not wrap and start > end):
            reason = "crosses midnight; a goal's hours lie within one day" if start > end else "is empty"
            self.fail(node, f"{key} '{written.strip()}' {reason}")
        return Hours(start, end)
