"""Grafana's substitutions in a raw InfluxQL query, done as Grafana 11 does them, so tests can run a
dashboard's queries on a real InfluxDB.

Two steps, in Grafana's order:
- the browser fills in dashboard variables (public/app/plugins/datasource/influxdb/datasource.ts,
  `interpolateQueryExpr`): a multi-value variable becomes `(a|b)`, each value regex-escaped, and All
  (without a custom all value) is every value; a custom all value such as `.*` goes in as it is;
  `${name:raw}` is never escaped;
- the server fills in time and interval macros (pkg/tsdb/influxdb/influxql/models/query.go, `Build`):
  `$timeFilter` becomes `time >= {from}ms and time <= {to}ms`, then `$interval`, `$__interval_ms`,
  `$__interval`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Grafana's variable reference syntax: $name, [[name:format]], ${name:format}.
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.[^:^}]+)?(?::([^}]+))?\}")
# What Grafana's escapeRegex (@grafana/data) puts a backslash before.
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
# A regex literal after =~ or !~, as the data source looks for them.
_REGEX_LITERAL = re.compile(r"[=!]~\s*/((?:[^\r\n\[/\\]|\\.|\[(?:[^\r\n\]\\]|\\.)*\])+)/")


@dataclass(frozen=True)
class Raw:
    """A value Grafana inserts untouched: a variable's custom all value, such as `.*`."""

    text: str


# A single value (text box, single-select), the values picked in a multi-select (All: every value), or Raw.
VariableValue = str | Sequence[str] | Raw


def escape_regex(value: str) -> str:
    return _REGEX_SPECIAL.sub(lambda match: "\\" + match.group(), value)


def _is_number(value: str) -> bool:
    # JavaScript's parseFloat reads a leading number and ignores the rest.
    return re.match(r"\s*[-+]?(\d+\.?\d*|\.\d+|Infinity)", value) is not None


def _format(name: str, value: VariableValue, query: str, style: str | None) -> str:
    if isinstance(value, Raw):
        return value.text
    if style == "raw":
        return value if isinstance(value, str) else ",".join(value)
    if isinstance(value, str):
        if _is_number(value):
            return value
        # A single value is escaped only where it stands in a regex literal.
        used_in_regex = any(re.search(rf"\${name}\b|\$\{{{name}\b", literal)
                            for literal in _REGEX_LITERAL.findall(query))
        return escape_regex(value) if used_in_regex else value
    return "(" + "|".join(escape_regex(item) for item in value) + ")"


def fill_variables(query: str, variables: Mapping[str, VariableValue]) -> str:
    """The query with dashboard variables filled in; other references ($timeFilter, ...) stay."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        if name not in variables:
            return match.group()
        return _format(name, variables[name], query, match.group(3) or match.group(5))

    return _VARIABLE.sub(replace, query)


def format_interval(milliseconds: int) -> str:
    """Grafana's text for an interval (gtime.FormatInterval): the largest whole unit."""
    for unit, size in (("y", 365 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000),
                       ("s", 1000), ("ms", 1)):
        if milliseconds >= size:
            return f"{milliseconds // size}{unit}"
    return "1ms"


@dataclass(frozen=True)
class PanelRequest:
    """One panel refresh: its time range, Grafana's interval for it, and the dashboard's variables."""

    from_ms: int
    to_ms: int
    interval_ms: int
    variables: Mapping[str, VariableValue] = field(default_factory=dict)

    def render(self, query: str) -> str:
        """The query as InfluxDB receives it from Grafana."""
        text = fill_variables(query, self.variables)
        interval = format_interval(self.interval_ms)
        text = text.replace("$timeFilter", f"time >= {self.from_ms}ms and time <= {self.to_ms}ms")
        text = text.replace("$interval", interval)
        text = text.replace("$__interval_ms", str(self.interval_ms))
        return text.replace("$__interval", interval)
