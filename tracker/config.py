"""Settings: command-line options, then environment, then config.yaml, then defaults.

Each setting is declared once, as a field of the dataclasses below with a `Setting` in its metadata. The
config file's keys, the environment variables, the command-line options (tracker.commands.options), `tracker config
show` and the template `tracker config init` writes all come from those declarations. Every value
remembers where it came from, so `tracker config show` can say so.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from tracker import PlainError

if TYPE_CHECKING:  # pathlib is slow to import, and `tracker --help` imports this module
    from pathlib import Path

API_CHOICES = ("auto", "v1", "v2")

# How a raw value (from the file, the environment or an option) is read: see _convert.
Kind = Literal["text", "url", "certificate", "choice", "bool", "duration", "duration_or_off", "count", "list",
               "domains", "regexes"]


# A named tuple, not a dataclass: `tracker --help` imports this module, and a dataclass is slower to define.
class Setting(NamedTuple):
    """How the user meets one setting: declared in the metadata of its dataclass field, which holds the default."""

    name: str  # as in config.yaml and `config show`: "influx.url" is `url:` under `influx:`
    kind: Kind
    help: str  # the --help of its option and the template's comment
    example: str  # the value the template shows, as YAML
    note: str = ""  # more for the template's comment only
    variable: str | None = None  # the environment variable that sets it
    # The command-line option that sets it. A bool's is a flag for the opposite of its default, so its --help
    # says the opposite of `help`: option_help.
    option: str | None = None
    option_help: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()  # for kind "choice"
    secret: bool = False  # masked by `config show`, kept out of repr
    # The least and the most a duration (seconds) or count may be: beyond them a value is a slip, and would
    # overflow or stall something later (an interval of 1e10 s never takes its second sample).
    limits: tuple[float, float] | None = None

    @property
    def key(self) -> str:
        """Its key in config.yaml, within its section."""
        return self.name.rpartition(".")[2]


_DECLARED = "setting"  # the metadata key of a field's Setting


def declare(default: Any, setting: Setting, *, default_factory: Any = MISSING, in_repr: bool = True) -> Any:
    """The dataclass field of `setting`, with its default; a secret (or a value that may hold one: `in_repr`
    False) is kept out of repr so no traceback or log can show it."""
    return field(default=default, default_factory=default_factory, repr=in_repr and not setting.secret,
                 metadata={_DECLARED: setting})


def _system_host_name() -> str:
    import socket  # only when no host is set: most commands never need it

    return socket.gethostname()


@dataclass(frozen=True)
class InfluxSettings:
    """Where to send points. url None means InfluxDB is not configured: record locally only."""

    url: str | None = declare(None, Setting(
        "influx.url", "url", help="InfluxDB URL, e.g. http://localhost:8086.", example="http://localhost:8086",
        note="Leave unset to record locally only (nothing is lost; `tracker sync` sends the backlog once it is set).",
        variable="TRACKER_INFLUX_URL", option="--influx-url", metavar="URL"),
        in_repr=False)  # http://user:password@host for 1.x
    token: str | None = declare(None, Setting(
        "influx.token", "text", help="API token (2.x/3.x), or username:password (1.x).", example='""',
        note="A token needs write access to the bucket; leave it unset for InfluxDB 1.x without authentication.",
        variable="TRACKER_INFLUX_TOKEN", option="--influx-token", metavar="TOKEN", secret=True))
    org: str | None = declare(None, Setting(
        "influx.org", "text", help="Organization (2.x).", example="my-org", note="InfluxDB 1.x does not use it.",
        variable="TRACKER_INFLUX_ORG", option="--influx-org", metavar="ORG"))
    bucket: str = declare("tracker", Setting(
        "influx.bucket", "text", help="Bucket (2.x/3.x), or database[/retention_policy] (1.x).", example="tracker",
        variable="TRACKER_INFLUX_BUCKET", option="--influx-bucket", metavar="BUCKET"))
    api: str = declare("auto", Setting(
        "influx.api", "choice", help="Write API (default auto: asks the server).", example="auto",
        note="auto asks the server's /ping and picks; v1 writes to /write, v2 to /api/v2/write.",
        variable="TRACKER_INFLUX_API", option="--influx-api", choices=API_CHOICES))
    verify_tls: bool = declare(True, Setting(
        "influx.verify_tls", "bool", help="Verify the server's TLS certificate; turn this off only if you must.",
        example="true", option="--insecure",
        option_help="Do not verify the server's TLS certificate (prints a warning)."))
    ca_file: str | None = declare(None, Setting(
        "influx.ca_file", "certificate", help="CA certificate for TLS.", example="/path/to/ca.pem",
        note="Give one when a private CA signed the server's certificate.", option="--ca-file"))
    timeout: float = declare(10.0, Setting(
        "influx.timeout", "duration", help="How long one HTTP request to InfluxDB may take.", example="10s",
        limits=(0.1, 3600.0)))

    @property
    def configured(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class PrivacySettings:
    """What never leaves the machine: excluded samples keep the app only; titles can be off entirely."""

    titles: bool = declare(True, Setting(
        "titles", "bool", help="Record window titles at all (URLs are still recorded unless excluded below).",
        example="true", option="--no-titles", option_help="Record no window titles at all."))
    exclude_apps: tuple[str, ...] = declare((), Setting(
        "exclude.apps", "list", example="[KeePassXC, 1Password]",
        help="Apps whose samples keep the app name only: no title and no URL ever leave the machine."))
    exclude_domains: tuple[str, ...] = declare((), Setting(
        "exclude.domains", "domains", example="[mybank.com]",
        help="Sites (and their subdomains) whose samples keep the app name only."))
    exclude_titles: tuple[str, ...] = declare((), Setting(
        "exclude.titles", "regexes", example="['(?i)private', 'salary']",
        help="Regexes, case-insensitive: a sample whose window title matches one keeps the app name only."))


@dataclass(frozen=True)
class Settings:
    # Fields in the order `config show` and the template list the settings: hence privacy in the middle.
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    host: str = declare(MISSING, Setting(
        "host", "text", help="Name of this machine in the host tag (default: the system's host name).",
        example="laptop"), default_factory=_system_host_name)
    interval: float = declare(1.0, Setting(
        "interval", "duration", help="Seconds between samples (default 1; e.g. 0.5, 2s).", example="1s",
        option="--interval", metavar="SECONDS", limits=(0.01, 3600.0)))
    away_after: float = declare(180.0, Setting(
        "away_after", "duration", help="No input for this long counts as away (default 3m).", example="3m",
        note="Input is the keyboard or mouse; away samples have category Away and score 0.",
        option="--away-after", metavar="DURATION", limits=(1.0, 86400.0)))
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    outbox_max_rows: int = declare(30 * 24 * 3600, Setting(
        "outbox_max_rows", "count", example="2592000",
        help="At most this many unsent samples are kept while InfluxDB is unreachable (30 days at 1 per second), "
             "quarantined ones included; beyond it the oldest are dropped (quarantined first), counted and "
             "reported.", limits=(1, 1_000_000_000)))
    vitals_every: float = declare(10.0, Setting(
        "vitals_every", "duration_or_off", example="10s",
        help="While sending to InfluxDB, write the tracker's own vitals (measurement `tracker`: memory, CPU, "
             "outbox, requests) this often; 0 turns them off.", limits=(1.0, 86400.0)))
    history_retention_days: int | None = declare(None, Setting(
        "history_retention_days", "count", example="365",
        help="Keep local event history (for `tracker report`) this many days; unset keeps it forever.",
        limits=(1, 36_500)))
    metrics_listen: str | None = declare(None, Setting(
        "metrics_listen", "text", example="127.0.0.1:9184",
        help="Serve Prometheus metrics at http://HOST:PORT/metrics while `tracker run` runs (off when unset).",
        note="Loopback only (127.0.0.1, ::1, localhost) unless metrics_allow_remote is true: the metrics show "
             "what you are doing and have no authentication. Needs prometheus_client (pip install prometheus_client).",
        option="--metrics-listen", metavar="HOST:PORT"))
    metrics_allow_remote: bool = declare(False, Setting(
        "metrics_allow_remote", "bool", example="false",
        help="Allow metrics_listen on an address other than loopback, where anyone who reaches it sees what you do.",
        option="--metrics-allow-remote",
        option_help="Allow --metrics-listen on an address other than loopback: anyone who reaches it sees what you "
                    "are doing, without authentication."))


def _declarations(section: Any) -> Iterator[tuple[Setting, Any]]:
    """Every setting of a settings dataclass and of its sections, in order, with its default (None when the
    default is computed as the settings are built, like the host name)."""
    for item in fields(section):
        if _DECLARED in item.metadata:
            yield item.metadata[_DECLARED], None if item.default is MISSING else item.default
        else:  # a section: a dataclass of settings
            yield from _declarations(item.default_factory)


# The schema, by dotted name, in the order `config show` and the template list the settings.
_SCHEMA = tuple(_declarations(Settings))
SETTINGS: dict[str, Setting] = {setting.name: setting for setting, _ in _SCHEMA}
DEFAULTS: dict[str, Any] = {setting.name: default for setting, default in _SCHEMA}
# The sections of config.yaml: `influx:` holds influx.url, ...
_SECTIONS = frozenset(name.partition(".")[0] for name in SETTINGS if "." in name)


class ConfigError(PlainError):
    """The settings cannot be used: one plain sentence naming the file or variable and what is wrong."""

    exit_code = 2


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
    from tracker import paths

    path = config_path or paths.config_file()
    values = dict(DEFAULTS)
    origins = dict.fromkeys(SETTINGS, "default")
    for name, raw in _read_config_file(path).items():
        values[name] = _convert(name, raw, f"{path}", config_file=path)
        origins[name] = f"config file {path}"
    for name, setting in SETTINGS.items():
        raw = os.environ.get(setting.variable) if setting.variable else None
        if raw:
            values[name] = _convert(name, raw, f"environment variable {setting.variable}")
            origins[name] = f"environment {setting.variable}"
    for name, raw in (options or {}).items():
        if raw is not None:
            option = SETTINGS[name].option or "--" + name.replace("_", "-")
            values[name] = _convert(name, raw, f"option {option}")
            origins[name] = f"option {option}"
    return LoadedSettings(_build(Settings, values), origins, values)


def _build(section: Any, values: dict[str, Any]) -> Any:
    """The settings dataclass `section` from dotted values; an unset (None) value leaves the field's default."""
    arguments: dict[str, Any] = {}
    for item in fields(section):
        setting = item.metadata.get(_DECLARED)
        if setting is None:  # a section: a dataclass of settings
            arguments[item.name] = _build(item.default_factory, values)
        elif values[setting.name] is not None:
            arguments[item.name] = values[setting.name]
    return section(**arguments)


_MAX_CONFIG_CHARACTERS = 100_000  # the template is 3 kB


def _read_config_file(path: Path) -> dict[str, Any]:
    """The config file flattened to dotted names; {} when there is none."""
    import yaml  # here, not at the top: `tracker --help` and the commands that read no settings stay fast

    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read(_MAX_CONFIG_CHARACTERS + 1)  # never more into memory, whatever the file is
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text.") from None
    except OSError as error:
        raise ConfigError(f"{path} cannot be read: {error.strerror}.") from None
    if len(text) > _MAX_CONFIG_CHARACTERS:
        raise ConfigError(f"{path} is larger than 100 kB, far more than any settings need; keep the settings you use.")
    class WithoutAliases(yaml.SafeLoader):
        """Refuses an alias (*name) where it stands: it can make a few lines a billion values ("billion
        laughs"), and settings need none."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                where = f", line {mark.line + 1}" if mark else ""
                raise ConfigError(f"{path}{where}: YAML aliases (*name) are not taken in the config file; write"
                                  " the value out.")
            return super().compose_node(parent, index)

    try:
        loader = WithoutAliases(text)
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
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
        if key in _SECTIONS and value is None:
            continue  # a section with every line commented out, as in the template
        if key in _SECTIONS:
            if not isinstance(value, dict):  # the value is not shown: `influx: <token>` is an easy slip
                kind = _yaml_kind(value)
                raise ConfigError(f"{path}: `{key}` must be a section of `key: value` settings, found {kind}.")
            for inner, inner_value in value.items():
                flat[f"{key}.{inner}"] = inner_value
        else:
            flat[str(key)] = value
    for name in flat:
        if name not in SETTINGS:
            known = ", ".join(sorted(SETTINGS))
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
    setting = SETTINGS[name]
    kind = setting.kind
    if kind in ("text", "url", "certificate") and config_file is not None and not isinstance(raw, str):
        # YAML turned the unquoted value into something else (0123 -> 83, yes -> True): refuse rather
        # than store a changed password. The value is not shown: it may be a secret.
        raise ConfigError(f'{name} in {config_file} must be text: put it in quotes, like {setting.key}: "...".')
    if isinstance(raw, str) and _UNPRINTABLE.search(raw):
        # Not shown: it may be a secret. Undecodable bytes (an environment variable) arrive as lone surrogates.
        raise ConfigError(f"{name} from {where} holds a control character or bytes that are not UTF-8 text:"
                          " write it again in plain text.")
    try:
        if kind == "text":
            return str(raw).strip() or None
        if kind == "url":
            return _web_url(str(raw).strip()) or None
        if kind == "certificate":
            return _certificate_file(str(raw).strip()) if str(raw).strip() else None
        if kind == "choice":
            value = str(raw).strip().lower()
            if value not in setting.choices:
                raise ValueError(f"{raw!r} is not one of {', '.join(setting.choices)}")
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
        if kind == "duration_or_off" and str(raw).strip().lower() in ("0", "0s", "0.0", "off", "false"):
            return 0.0  # off (YAML reads an unquoted off as false)
        if kind in ("duration", "duration_or_off"):
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                seconds = float(raw)
            else:
                from tracker.timespec import parse_duration

                seconds = parse_duration(str(raw))
            if not seconds > 0:  # also refuses nan
                raise ValueError(f"{raw!r} must be more than 0 seconds")
            if math.isinf(seconds):  # YAML .inf
                raise ValueError(f"{raw!r} must be a finite number of seconds")
            return _within_limits(setting, seconds, raw)
        if kind == "count":
            if isinstance(raw, bool) or int(raw) != float(raw) or int(raw) < 1:
                raise ValueError(f"{raw!r} is not a whole number of 1 or more")
            return _within_limits(setting, int(raw), raw)
        if kind in ("list", "domains", "regexes"):
            items = _text_list(raw)
            for item in items:
                _check_item(kind, item)
            if kind == "regexes":
                from tracker.matching import compile_title_regexes

                compile_title_regexes(items)  # TitleRegexError (a ValueError): those that RE2 refuses, or too many
            return items
    except OverflowError:  # int(inf)
        raise ConfigError(f"{name} from {where}: {raw!r} is not a whole number of 1 or more.") from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name} from {where}: {error}.") from None
    raise AssertionError(kind)


# Characters no setting holds: control characters (a newline would split `config show`'s line) and lone surrogates.
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


def _web_url(text: str) -> str:
    """`text` if it is an http(s) URL with a host, written so that its credentials are sent and hidden right
    (redact.url_problem), else ValueError saying what is wrong without showing the URL, which may hold a
    password."""
    if not text:
        return text
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        host, _port = parts.hostname, parts.port  # .port raises ValueError beyond 0..65535 or when not a number
    except ValueError:
        host, parts = None, None
    if parts is None:
        problem = "is not valid (a port is a number up to 65535; an IPv6 address goes in [brackets])"
    elif parts.scheme.lower() not in ("http", "https"):
        problem = "must start with http:// or https://"
    elif not host or any(character.isspace() for character in text):
        problem = "names no valid host"
    else:
        from tracker.redact import url_problem  # could it send or show its credentials wrongly?

        unsafe = url_problem(text)
        if unsafe:
            raise ValueError(f"the URL {unsafe}")
        return text
    raise ValueError(f"the URL {problem}: give one like http://localhost:8086")


def _certificate_file(text: str) -> str:
    """The path of a readable file of PEM certificates (with ~ expanded), or ValueError saying what it is not:
    checked when settings load, so a missing CA file is named at once and not as a failed TLS handshake."""
    import ssl

    path = os.path.expanduser(text)
    try:
        ssl.create_default_context(cafile=path)
    except OSError as error:  # ssl.SSLError is one too, for a file that holds no certificate
        if not isinstance(error, ssl.SSLError):
            raise ValueError(f"{text!r} cannot be read ({(error.strerror or str(error)).lower()}): give the path of"
                             " your CA's certificate, a PEM file") from None
        raise ValueError(f"{text!r} holds no PEM certificate: give your CA's certificate, a file that starts"
                         " with -----BEGIN CERTIFICATE-----") from None
    return path


def _within_limits(setting: Setting, value: float, raw: Any) -> Any:
    """`value`, or ValueError naming the setting's limits when it lies beyond them."""
    if setting.limits is not None:
        least, most = setting.limits
        if not least <= value <= most:
            shown = _duration_text if setting.kind.startswith("duration") else "{:,.0f}".format
            raise ValueError(f"{raw!r} is out of range: use from {shown(least)} to {shown(most)}")
    return value


def _duration_text(seconds: float) -> str:
    """A limit as the user would type it: 0.1s, 1m, 1h, 1d."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _text_list(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ValueError(f"{raw!r} is not a list of text")
    return tuple(raw)


def _check_item(kind: str, item: str) -> None:
    """Exclude rules are checked when settings load, so no command meets a broken one later."""
    if kind == "domains":
        from tracker.matching import normalise_domain

        normalise_domain(item)  # ValueError says what is wrong with it


def masked(name: str, value: Any) -> str:
    """A value fit to print: secrets are masked, never shown."""
    if value is None or value == ():
        return "(not set)"
    if SETTINGS[name].secret:
        return "**** (set)"
    if name == "influx.url":
        from tracker.redact import masked_url

        return masked_url(value)
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_TEMPLATE_HEADER = """\
# tracker settings. The environment variables and command-line options named with a setting override it.
# Remove the leading '# ' of a line to use it. `tracker config show` prints what is in effect."""
_TEMPLATE_WIDTH = 104


def config_template() -> str:
    """The config.yaml `tracker config init` writes: every setting under its help, commented out at an example
    value. As written it loads as all defaults; with every setting line uncommented, as the examples."""
    import textwrap

    lines = [_TEMPLATE_HEADER]
    section = ""
    for setting in SETTINGS.values():
        parent = setting.name.rpartition(".")[0]
        # A blank line before each setting, or before the section it opens.
        lines += ["", f"{parent}:"] if parent and parent != section else [""]
        section = parent
        indent = "  " if parent else ""
        overridden_by = " and ".join(filter(None, (setting.variable, setting.option)))
        text = " ".join(filter(None, (setting.help, setting.note, overridden_by and f"Overridden by {overridden_by}.")))
        lines += textwrap.wrap(text, _TEMPLATE_WIDTH, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# ",
                               break_long_words=False, break_on_hyphens=False)
        lines.append(f"{indent}# {setting.key}: {setting.example}")
    return "\n".join(lines) + "\n"
