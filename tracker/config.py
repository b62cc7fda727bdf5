"""Settings: command-line options, then environment, then config.yaml, then defaults.

Every value remembers where it came from, so `tracker config show` can say so.
"""

from __future__ import annotations

import math
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tracker import paths

API_CHOICES = ("auto", "v1", "v2")


@dataclass(frozen=True)
class InfluxSettings:
    """Where to send points. url None means InfluxDB is not configured: record locally only."""

    url: str | None = None
    # v2: API token; v1: "username:password". Kept out of repr so no traceback or log can show it.
    token: str | None = field(default=None, repr=False)
    org: str | None = None  # v2 only
    bucket: str = "tracker"  # v2: bucket; v1: "database" or "database/retention_policy"
    api: str = "auto"  # auto asks /ping and picks; or v1, v2
    verify_tls: bool = True
    ca_file: str | None = None
    timeout: float = 10.0  # seconds for one HTTP request

    @property
    def configured(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class PrivacySettings:
    """What never leaves the machine: excluded samples keep the app only; titles can be off entirely."""

    titles: bool = True
    exclude_apps: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    exclude_titles: tuple[str, ...] = ()  # case-insensitive regexes


@dataclass(frozen=True)
class Settings:
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    host: str = "localhost"  # the host tag
    interval: float = 1.0
    away_after: float = 180.0  # seconds without input before samples are marked away
    outbox_max_rows: int = 30 * 24 * 3600  # about 30 days of samples at 1 Hz
    history_retention_days: int | None = None  # None keeps event history forever


class ConfigError(Exception):
    """The settings cannot be used: one plain sentence naming the file or variable and what is wrong."""


# Environment variables, by setting name.
ENVIRONMENT = {
    "influx.url": "TRACKER_INFLUX_URL",
    "influx.token": "TRACKER_INFLUX_TOKEN",
    "influx.org": "TRACKER_INFLUX_ORG",
    "influx.bucket": "TRACKER_INFLUX_BUCKET",
    "influx.api": "TRACKER_INFLUX_API",
}

# Every setting the config file may hold: dotted name -> (kind, default).
_KINDS: dict[str, tuple[str, Any]] = {
    "influx.url": ("text", None),
    "influx.token": ("text", None),
    "influx.org": ("text", None),
    "influx.bucket": ("text", "tracker"),
    "influx.api": ("api", "auto"),
    "influx.verify_tls": ("bool", True),
    "influx.ca_file": ("text", None),
    "influx.timeout": ("duration", 10.0),
    "host": ("text", None),
    "interval": ("duration", 1.0),
    "away_after": ("duration", 180.0),
    "titles": ("bool", True),
    "exclude.apps": ("list", ()),
    "exclude.domains": ("domains", ()),
    "exclude.titles": ("regexes", ()),
    "outbox_max_rows": ("count", 30 * 24 * 3600),
    "history_retention_days": ("count", None),
}
SECRET_SETTINGS = frozenset({"influx.token"})
# The command-line option that sets each setting, for `config show`.
OPTIONS = {
    "influx.url": "--influx-url",
    "influx.token": "--influx-token",
    "influx.org": "--influx-org",
    "influx.bucket": "--influx-bucket",
    "influx.api": "--influx-api",
    "influx.ca_file": "--ca-file",
    "influx.verify_tls": "--insecure",
    "interval": "--interval",
    "away_after": "--away-after",
    "titles": "--no-titles",
}


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    # Where each value came from: "default", "config file PATH", "environment NAME", "option --NAME".
    origins: dict[str, str]
    # The value in effect of each setting, the token in clear: kept out of repr, like InfluxSettings.token.
    values: dict[str, Any] = field(repr=False)


def load_settings(options: dict[str, Any] | None = None, config_path: Path | None = None) -> LoadedSettings:
    """Settings from command-line `options` (dotted names; None means not given), then the environment,
    then the config file, then defaults."""
    path = config_path or paths.config_file()
    values: dict[str, Any] = {name: default for name, (_, default) in _KINDS.items()}
    origins = dict.fromkeys(_KINDS, "default")
    for name, raw in _read_config_file(path).items():
        values[name] = _convert(name, raw, f"{path}", config_file=path)
        origins[name] = f"config file {path}"
    for name, variable in ENVIRONMENT.items():
        raw = os.environ.get(variable)
        if raw:
            values[name] = _convert(name, raw, f"environment variable {variable}")
            origins[name] = f"environment {variable}"
    for name, raw in (options or {}).items():
        if raw is not None:
            option = OPTIONS.get(name, "--" + name.replace("_", "-"))
            values[name] = _convert(name, raw, f"option {option}")
            origins[name] = f"option {option}"
    if values["interval"] <= 0:
        raise ConfigError(f"The interval must be more than 0 seconds (from {origins['interval']}).")
    return LoadedSettings(_build(values), origins, values)


def _build(values: dict[str, Any]) -> Settings:
    influx = InfluxSettings(
        url=values["influx.url"],
        token=values["influx.token"],
        org=values["influx.org"],
        bucket=values["influx.bucket"] or "tracker",
        api=values["influx.api"],
        verify_tls=values["influx.verify_tls"],
        ca_file=values["influx.ca_file"],
        timeout=values["influx.timeout"],
    )
    privacy = PrivacySettings(
        titles=values["titles"],
        exclude_apps=tuple(values["exclude.apps"]),
        exclude_domains=tuple(values["exclude.domains"]),
        exclude_titles=tuple(values["exclude.titles"]),
    )
    return Settings(
        influx=influx,
        privacy=privacy,
        host=values["host"] or socket.gethostname(),
        interval=values["interval"],
        away_after=values["away_after"],
        outbox_max_rows=values["outbox_max_rows"],
        history_retention_days=values["history_retention_days"],
    )


def _read_config_file(path: Path) -> dict[str, Any]:
    """The config file flattened to dotted names; {} when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text.") from None
    except OSError as error:
        raise ConfigError(f"{path} cannot be read: {error.strerror}.") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}{where}: {problem}.") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected `key: value` settings, found {_yaml_kind(document)}.")
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if key in ("influx", "exclude") and value is None:
            continue  # a section with every line commented out, as in the template
        if key in ("influx", "exclude"):
            if not isinstance(value, dict):  # the value is not shown: `influx: <token>` is an easy slip
                kind = _yaml_kind(value)
                raise ConfigError(f"{path}: `{key}` must be a section of `key: value` settings, found {kind}.")
            for inner, inner_value in value.items():
                flat[f"{key}.{inner}"] = inner_value
        else:
            flat[str(key)] = value
    for name in flat:
        if name not in _KINDS:
            known = ", ".join(sorted(_KINDS))
            raise ConfigError(f"{path}: unknown setting {name!r}; known settings are {known}.")
    return {name: value for name, value in flat.items() if value is not None}


def _yaml_kind(value: Any) -> str:
    """What YAML made of a value, in a user's words, without the value itself."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "`key: value` settings"
    return type(value).__name__


def _convert(name: str, raw: Any, where: str, config_file: Path | None = None) -> Any:
    """`raw` as setting `name` holds it; `where` names its source for messages, `config_file` when from there."""
    kind = _KINDS[name][0]
    if kind == "text" and config_file is not None and not isinstance(raw, str):
        # YAML turned the unquoted value into something else (0123 -> 83, yes -> True): refuse rather
        # than store a changed password. The value is not shown: it may be a secret.
        key = name.rpartition(".")[2]
        raise ConfigError(f'{name} in {config_file} must be text: put it in quotes, like {key}: "...".')
    try:
        if kind == "text":
            return str(raw).strip() or None
        if kind == "api":
            value = str(raw).strip().lower()
            if value not in API_CHOICES:
                raise ValueError(f"{raw!r} is not one of {', '.join(API_CHOICES)}")
            return value
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "yes", "on", "1"):
                return True
            if text in ("false", "no", "off", "0"):
                return False
            raise ValueError(f"{raw!r} is not true or false")
        if kind == "duration":
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                seconds = float(raw)
            else:
                from tracker.timespec import parse_duration

                seconds = parse_duration(str(raw))
            if not seconds > 0:  # also refuses nan
                raise ValueError(f"{raw!r} must be more than 0 seconds")
            if math.isinf(seconds):  # YAML .inf
                raise ValueError(f"{raw!r} must be a finite number of seconds")
            return seconds
        if kind == "count":
            if isinstance(raw, bool) or int(raw) != float(raw) or int(raw) < 1:
                raise ValueError(f"{raw!r} is not a whole number of 1 or more")
            return int(raw)
        if kind in ("list", "domains", "regexes"):
            items = _text_list(raw)
            for item in items:
                _check_item(kind, item)
            return items
    except OverflowError:  # int(inf)
        raise ConfigError(f"{name} from {where}: {raw!r} is not a whole number of 1 or more.") from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name} from {where}: {error}.") from None
    raise AssertionError(kind)


def _text_list(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ValueError(f"{raw!r} is not a list of text")
    return tuple(raw)


def _check_item(kind: str, item: str) -> None:
    """Exclude rules are checked when settings load, so no command meets a broken one later."""
    if kind == "domains":
        from tracker.classify import normalise_domain

        normalise_domain(item)  # ValueError says what is wrong with it
    elif kind == "regexes":
        try:
            re.compile(item)
        except re.error as error:
            raise ValueError(f"the regex {item!r} is invalid: {error.msg}") from None


def masked(name: str, value: Any) -> str:
    """A value fit to print: secrets are masked, never shown."""
    if value is None or value == ():
        return "(not set)"
    if name in SECRET_SETTINGS:
        return "**** (set)"
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


CONFIG_TEMPLATE = """\
# tracker settings. Command-line options and TRACKER_INFLUX_* environment variables override these.
# Remove the leading '# ' of a line to use it. `tracker config show` prints what is in effect.

influx:
  # Where your InfluxDB answers. Leave unset to record locally only (nothing is lost; `tracker sync`
  # sends the backlog once it is set).
  # url: http://localhost:8086
  #
  # InfluxDB 2.x, 3.x, Cloud: an API token with write access, your org, and the bucket.
  # InfluxDB 1.x: token is "username:password" (or unset without auth); bucket is "database" or
  # "database/retention_policy"; org is not used.
  # token: ""
  # org: my-org
  # bucket: tracker
  #
  # auto asks the server's /ping and picks; or v1 (/write) or v2 (/api/v2/write).
  # api: auto
  #
  # TLS is verified by default. Give a CA file for a private CA; turn verification off only if you must.
  # ca_file: /path/to/ca.pem
  # verify_tls: true
  # timeout: 10s

# Name of this machine in the host tag (default: the system's host name).
# host: laptop

# How often the foreground is read.
# interval: 1s

# No keyboard or mouse input for this long counts as away (category Away, score 0).
# away_after: 3m

# Record window titles at all (URLs are still recorded unless excluded below).
# titles: true

# Samples matching any of these keep the app name only: no title and no URL ever leave the machine.
# exclude:
#   apps: [KeePassXC, 1Password]
#   domains: [mybank.com]
#   titles: ['(?i)private', 'salary']

# At most this many unsent samples are kept while InfluxDB is unreachable (30 days at 1 per second);
# beyond it the oldest are dropped, counted and reported.
# outbox_max_rows: 2592000

# Keep local event history (for `tracker report`) this many days; unset keeps it forever.
# history_retention_days: 365
"""
