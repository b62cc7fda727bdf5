"""Categories: rules from categories.yaml that turn a sample into a category and a productivity score.

The activity of a sample is its site when it has a URL, otherwise its app. A domain rule beats a title
rule, which beats an app rule; among domains the longest match wins, among titles the first in the file.
The user's categories.yaml in the config directory, when it exists, replaces the bundled one whole.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml import YAMLError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tracker import paths
from tracker.model import AWAY, UNCATEGORIZED, Sample, url_host

SCORE_MIN = -2.0
SCORE_MAX = 2.0
RULE_KINDS = ("apps", "domains", "titles")
CATEGORY_KEYS = ("score", *RULE_KINDS)
RESERVED_NAMES = {
    AWAY.casefold(): "is reserved for idle time",
    UNCATEGORIZED.casefold(): "is reserved for samples no rule matches",
}
_BUNDLED_NAME = "categories.yaml"
_YAML_NULL = "tag:yaml.org,2002:null"


class CategoriesError(ValueError):
    """A categories file that cannot be used; the message names the file, the line and the problem."""

    def __init__(self, file: Path, line: int | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.problem = problem
        where = display_path(file) if line is None else f"{display_path(file)}, line {line}"
        super().__init__(f"{where}: {problem}")


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
        self._titles: list[tuple[re.Pattern[str], Rule]] = []
        for category in categories:
            for rule in category.rules:
                if rule.kind == "app":
                    self._apps[rule.pattern] = rule
                elif rule.kind == "domain":
                    self._domains[rule.pattern] = rule
                else:
                    self._titles.append((re.compile(rule.pattern, re.IGNORECASE), rule))

    @property
    def rule_count(self) -> int:
        return sum(len(category.rules) for category in self.categories)

    def classify(self, sample: Sample) -> Match:
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


def host_suffixes(host: str) -> Iterator[str]:
    """The host, then each domain it belongs to, longest first: a.b.com, b.com, com."""
    yield host
    dot = host.find(".")
    while dot != -1:
        yield host[dot + 1 :]
        dot = host.find(".", dot + 1)


def normalise_domain(text: str) -> str:
    """A domain rule as matched against url_host(): lower-case, no 'www.'; ValueError when it is no domain."""
    domain = text.strip().lower().rstrip(".")
    domain = domain.removeprefix("www.")
    if "*" in domain:
        raise ValueError(f"domain '{text}' has a wildcard, but domains match their subdomains already: "
                         f"write '{domain.lstrip('*.')}'")
    if not domain or domain.startswith(".") or ".." in domain or any(c in domain for c in "/:@?#\\ \t"):
        raise ValueError(f"domain '{text}' should be a bare host name like example.com")
    return domain


def display_path(path: Path) -> str:
    """The path with the home directory shown as ~, the way users recognise it."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except (ValueError, RuntimeError):  # elsewhere, or no home directory
        return str(path)


def bundled_categories_path() -> Path:
    """The default rules shipped inside the package; in a source checkout (or an editable install), the
    categories.yaml at the top of the repository, which the wheel copies into the package."""
    inside = resources.files("tracker").joinpath(_BUNDLED_NAME)
    if inside.is_file():
        return Path(str(inside))
    return Path(__file__).resolve().parent.parent / _BUNDLED_NAME


def active_categories_path() -> Path:
    """The user's categories.yaml when it exists (it replaces the defaults whole), else the bundled one."""
    user_file = paths.user_categories_file()
    return user_file if user_file.exists() else bundled_categories_path()


def read_categories_text(path: Path) -> str:
    """The text of a categories file; CategoriesError when it cannot be read."""
    try:
        inside = resources.files("tracker").joinpath(_BUNDLED_NAME)
        if path == bundled_categories_path() and inside.is_file():
            # Through importlib.resources, so it also loads from a wheel or a zipapp.
            return inside.read_text(encoding="utf-8")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise CategoriesError(path, None, "the file does not exist") from error
    except UnicodeDecodeError as error:
        raise CategoriesError(path, None, "the file is not UTF-8 text") from error
    except OSError as error:
        raise CategoriesError(path, None, f"cannot read the file: {error.strerror or error}") from error


def load_categories(path: Path | None = None) -> Categories:
    """Load and validate a categories file; None means the user's file if present, else the bundled one."""
    path = path or active_categories_path()
    return parse_categories(read_categories_text(path), path)


def parse_categories(text: str, file: Path) -> Categories:
    """Validate categories YAML; `file` is the name errors and matches report (the text may come from a copy)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        # The node tree, not plain data: every node knows its line, for messages users can act on.
        root = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "not valid YAML"
        raise CategoriesError(file, mark.line + 1 if mark else None, f"YAML syntax error: {problem}") from error
    except yaml.YAMLError as error:
        raise CategoriesError(file, None, f"YAML syntax error: {error}") from error
    return Categories(_CategoriesParser(file).parse(root), file)


class _CategoriesParser:
    """Walks the YAML node tree, refusing anything unexpected with the line it is on."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.names: dict[str, int] = {}  # folded name -> line
        self.seen: dict[str, dict[str, Rule]] = {"apps": {}, "domains": {}}  # kind -> match key -> rule

    def fail(self, node: Node, problem: str) -> NoReturn:
        raise CategoriesError(self.file, node.start_mark.line + 1, problem)

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
        return tuple(self.category(key, value) for key, value in categories_node.value)

    def mapping_entries(self, node: Node, where: str, allowed: tuple[str, ...]) -> dict[str, tuple[Node, Node]]:
        """The keys of a mapping, refusing unknown and repeated ones."""
        entries: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.plain_text(key_node, "a key")
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "expected " + ", ".join(allowed)
                self.fail(key_node, f"unknown key '{key}' {where} ({hint})")
            if key in entries:
                first_line = entries[key][0].start_mark.line + 1
                self.fail(key_node, f"key '{key}' appears twice {where} (first on line {first_line})")
            entries[key] = (key_node, value_node)
        return entries

    def plain_text(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag == _YAML_NULL or not node.value.strip():
            self.fail(node, f"{what} should be plain text")
        return node.value

    def category(self, key_node: Node, value_node: Node) -> Category:
        name = self.plain_text(key_node, "a category name").strip()
        line = key_node.start_mark.line + 1
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
            compiled = re.compile(written, re.IGNORECASE)
        except re.error as error:
            self.fail(item, f"title regex '{written}' is invalid: {error.msg}")
        if compiled.search(""):
            self.fail(item, f"title regex '{written}' matches every title")
        return written


class CategoriesWatcher:
    """The rules in force while tracker runs, reloaded when the file changes.

    Checks the active file's size and modification time at most every `check_every` seconds, and notices
    the user's file appearing or disappearing (path None). A change that is valid is swapped in; one that
    is not is reported to on_error once and the last good rules stay. If the file is invalid at start,
    that is reported too and the bundled defaults are used until it is fixed.
    """

    def __init__(self, path: Path | None, on_error: Callable[[str], None], check_every: float = 2.0) -> None:
        self._path = path
        self._on_error = on_error
        self._check_every = check_every
        active = self._active_path()
        self._signature = _file_signature(active)
        try:
            self._current = load_categories(active)
        except CategoriesError as error:
            on_error(str(error))
            self._current = load_categories(bundled_categories_path())
        self._next_check = time.monotonic() + check_every

    @property
    def current(self) -> Categories:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_every
            self._reload_if_changed()
        return self._current

    def _active_path(self) -> Path:
        return self._path or active_categories_path()

    def _reload_if_changed(self) -> None:
        path = self._active_path()
        signature = _file_signature(path)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            self._current = load_categories(path)
        except CategoriesError as error:
            self._on_error(str(error))


def _file_signature(path: Path) -> tuple[object, ...]:
    try:
        status = path.stat()
    except OSError:  # missing, or the bundled file inside a zip: either way, unchanged until that changes
        return (path, None)
    return (path, status.st_mtime_ns, status.st_size, status.st_ino)
