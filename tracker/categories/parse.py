"""Reading categories.yaml: the YAML node tree walked and validated, every problem reported with its line.

Apart from tracker.categories.files so that yaml is imported only when a file is read: remembered rules (see
categoryfiles.load_categories) and classifying need none of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from yaml import YAMLError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tracker.categories.rules import SCORE_MAX, SCORE_MIN, CategoriesError, Category, Rule
from tracker.lineprotocol import has_control
from tracker.matching import TITLE_REGEX_BUDGET, TitleRegex, TitleRegexError, normalise_domain
from tracker.model import AWAY, UNCATEGORIZED
from tracker.redact import printable
from tracker.yamlfile import compose_nodes

RULE_KINDS = ("apps", "domains", "titles")
CATEGORY_KEYS = ("score", *RULE_KINDS)
RESERVED_NAMES = {
    AWAY.casefold(): "is reserved for idle time",
    UNCATEGORIZED.casefold(): "is reserved for samples no rule matches",
}
_YAML_NULL = "tag:yaml.org,2002:null"


def parse_rules(text: str, file: Path) -> tuple[Category, ...]:
    """The categories of categories YAML, validated; CategoriesError names `file`, the line and the problem."""
    root = compose_nodes(text, file, CategoriesError,
                         "the YAML is nested too deeply; a categories file is three levels deep")
    return _CategoriesParser(file).parse(root)


class _CategoriesParser:
    """Walks the YAML node tree, refusing anything unexpected with the line it is on."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.names: dict[str, int] = {}  # folded name -> line
        self.seen: dict[str, dict[str, Rule]] = {"apps": {}, "domains": {}}  # kind -> match key -> rule
        self.read_nodes: set[int] = set()  # id() of every node read, to refuse one read twice (an alias)
        self.title_cost = 0  # of the title regexes so far: see TITLE_REGEX_BUDGET

    def fail(self, node: Node, problem: str) -> NoReturn:
        # On one line, whatever the file quoted in it holds (a key written over two lines, a control character).
        raise CategoriesError(self.file, node.start_mark.line + 1, printable(problem))

    def read_once(self, node: Node) -> Node:
        """The node, refused if it was read before: only a YAML alias (*name) puts one node in two places, and
        aliases multiply work (a 'billion laughs' file) without saving a careful user anything here."""
        if id(node) in self.read_nodes:
            self.fail(node, "what is written here is used again through a YAML alias (*); categories files "
                            "take no aliases, so write the rules out where they are used")
        self.read_nodes.add(id(node))
        return node

    def parse(self, root: Node | None) -> tuple[Category, ...]:
        if root is None:
            raise CategoriesError(self.file, 1, "the file is empty; it should start with 'categories:'")
        if not isinstance(root, MappingNode):
            self.fail(root, "the file should be a mapping that starts with 'categories:'")
        entries = self.mapping_entries(root, "at the top of the file", ("categories",))
        if "categories" not in entries:
            self.fail(root, "the file has no 'categories:' key")
        categories_node = entries["categories"][1]
        if not isinstance(categories_node, MappingNode):
            self.fail(categories_node, "'categories' should map category names to a score and rules")
        return tuple(self.category(key, self.read_once(value)) for key, value in categories_node.value)

    def mapping_entries(self, node: Node, where: str, allowed: tuple[str, ...]) -> dict[str, tuple[Node, Node]]:
        """The keys of a mapping, refusing unknown and repeated ones."""
        entries: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            self.read_once(value_node)
            key = self.plain_text(key_node, "a key")
            if key not in allowed:
                import difflib  # only for a typo: a run that parses a good file never loads it

                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "expected " + ", ".join(allowed)
                self.fail(key_node, f"unknown key '{key}' {where} ({hint})")
            if key in entries:
                first_line = entries[key][0].start_mark.line + 1
                self.fail(key_node, f"key '{key}' appears twice {where} (first on line {first_line})")
            entries[key] = (key_node, value_node)
        return entries

    def plain_text(self, node: Node, what: str) -> str:
        self.read_once(node)
        if not isinstance(node, ScalarNode) or node.tag == _YAML_NULL or not node.value.strip():
            self.fail(node, f"{what} should be plain text")
        return node.value

    def category(self, key_node: Node, value_node: Node) -> Category:
        name = self.plain_text(key_node, "a category name").strip()
        line = key_node.start_mark.line + 1
        if has_control(name):
            # It would reach a terminal as an escape sequence, and InfluxDB as another name (see lineprotocol).
            self.fail(key_node, f"the category name {name!r} contains a control character; remove it")
        folded = name.casefold()
        if folded in RESERVED_NAMES:
            self.fail(key_node, f"the category name '{name}' {RESERVED_NAMES[folded]}; pick another name")
        if folded in self.names:
            self.fail(key_node, f"category {name} is defined twice (first on line {self.names[folded]})")
        self.names[folded] = line
        if not isinstance(value_node, MappingNode):
            self.fail(value_node, f"category {name} should be a mapping with a score and apps, domains or titles")
        entries = self.mapping_entries(value_node, f"in category {name}", CATEGORY_KEYS)
        if "score" not in entries:
            self.fail(key_node, f"category {name} has no score (a number from -2 to 2)")
        score = self.score(entries["score"][1])
        rules: list[Rule] = []
        for kind in RULE_KINDS:
            if kind in entries:
                rules.extend(self.rules(kind, entries[kind][1], name, score))
        return Category(name, score, line, tuple(rules))

    def score(self, node: Node) -> float:
        try:
            value = SafeConstructor().construct_object(node) if isinstance(node, ScalarNode) else None
        except YAMLError:  # an unknown !tag
            value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = f" '{node.value}'" if isinstance(node, ScalarNode) else ""
            self.fail(node, f"score{shown} should be a number from -2 to 2")
        if not (math.isfinite(value) and SCORE_MIN <= value <= SCORE_MAX):
            self.fail(node, f"score {node.value} is outside -2..2")
        return float(value)

    def rules(self, kind: str, node: Node, category: str, score: float) -> Iterator[Rule]:
        if not isinstance(node, SequenceNode):
            self.fail(node, f"{kind} in category {category} should be a list, like {kind}: [one, two]")
        singular = kind[:-1]
        for item in node.value:
            written = self.plain_text(item, f"each entry of {kind}")
            line = item.start_mark.line + 1
            if kind == "titles":
                # As written: a regex's spaces matter.
                yield Rule(singular, self.title_pattern(written, item), written, category, score, line)
                continue
            pattern = written.strip().lower() if kind == "apps" else self.domain(written, item)
            seen = self.seen[kind]
            if pattern in seen:
                # With an app or domain in two places, which one decides would be a guess.
                other = seen[pattern]
                self.fail(item, f"{singular} {written.strip()} is already listed in {other.category} "
                                f"on line {other.line}")
            seen[pattern] = Rule(singular, pattern, written.strip(), category, score, line)
            yield seen[pattern]

    def domain(self, written: str, item: Node) -> str:
        try:
            return normalise_domain(written)
        except ValueError as error:
            self.fail(item, str(error))

    def title_pattern(self, written: str, item: Node) -> str:
        if any(ord(character) < 32 for character in written):
            # "\b" in double quotes is a YAML escape (backspace), not a regex word boundary.
            self.fail(item, f"title regex {written!r} contains a control character; "
                            "write regexes in single quotes, like '\\bvim\\b'")
        try:
            compiled = TitleRegex(written)
        except TitleRegexError as error:
            self.fail(item, f"title {error}")
        if compiled.search(""):
            self.fail(item, f"title regex '{written}' matches every title")
        self.title_cost += compiled.cost
        if self.title_cost > TITLE_REGEX_BUDGET:
            self.fail(item, f"title regex '{written}' makes the title regexes too large together to search "
                            "every title quickly; use fewer or simpler ones (apps and domains cost nothing)")
        return written
