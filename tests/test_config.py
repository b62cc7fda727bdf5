"""Settings as a user meets them: options over environment over config.yaml over defaults, said by
`tracker config show`; the token never shown; `tracker config init`; one plain line for bad input."""

from __future__ import annotations

import json
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import certifi
import pytest
import yaml
from click.testing import CliRunner, Result

from tracker import paths
from tracker.commands import cli
from tracker.config import SETTINGS, ConfigError, Setting, config_template, load_settings

CONFIG_TEMPLATE = config_template()
ROOT = Path(__file__).resolve().parent.parent

# -- helpers ----------------------------------------------------------------------------------------

_ROW = re.compile(r"(?P<name>\S+) +(?P<value>.*?) +(?P<origin>default|config file \S.*|environment \S+|option \S+)")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def config_path() -> Path:
    return paths.config_file()


def write_config(text: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_influx_config(**influx: str) -> Path:
    return write_config(yaml.safe_dump({"influx": influx}))


def tracker(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def config_show(*args: str) -> Result:
    result = tracker("config", "show", *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result


def shown(result: Result) -> dict[str, tuple[str, str]]:
    """The rows of `config show`: setting -> (value as printed, origin as printed)."""
    rows: dict[str, tuple[str, str]] = {}
    for line in result.stdout.splitlines()[2:]:
        row = _ROW.fullmatch(line)
        assert row, f"not a settings row: {line!r}"
        rows[row["name"]] = (row["value"], row["origin"])
    return rows


def assert_fails_plainly(result: Result, code: int, message: str) -> None:
    """Exit `code` with exactly one line `Error: message` on stderr, nothing on stdout, no traceback."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"
    assert "Traceback" not in result.output


# -- precedence: option > environment > config.yaml > default --------------------------------------


class Layered(NamedTuple):
    name: str  # dotted setting name
    option: str
    variable: str
    key: str  # under `influx:` in config.yaml
    file_value: str
    env_value: str
    option_value: str
    default: str | None  # the value in effect when nothing sets it
    secret: bool = False


LAYERED = [
    Layered("influx.url", "--influx-url", "TRACKER_INFLUX_URL", "url",
            "http://file.example:8086", "http://env.example:8086", "http://option.example:8086", None),
    Layered("influx.token", "--influx-token", "TRACKER_INFLUX_TOKEN", "token",
            "file-token-1a2b3c", "env-token-4d5e6f", "option-token-7a8b9c", None, secret=True),
    Layered("influx.org", "--influx-org", "TRACKER_INFLUX_ORG", "org", "file-org", "env-org", "option-org", None),
    Layered("influx.bucket", "--influx-bucket", "TRACKER_INFLUX_BUCKET", "bucket",
            "file-bucket", "env-bucket/autogen", "option-bucket", "tracker"),
    Layered("influx.api", "--influx-api", "TRACKER_INFLUX_API", "api", "v1", "v2", "auto", "auto"),
]


def _printed(setting: Layered, value: str | None) -> str:
    if value is None:
        return "(not set)"
    return "**** (set)" if setting.secret else value


@pytest.mark.parametrize("setting", LAYERED, ids=[setting.name for setting in LAYERED])
def test_option_beats_environment_and_config_file(setting: Layered, monkeypatch: pytest.MonkeyPatch) -> None:
    write_influx_config(**{setting.key: setting.file_value})
    monkeypatch.setenv(setting.variable, setting.env_value)

    loaded = load_settings({setting.name: setting.option_value})
    assert loaded.values[setting.name] == setting.option_value
    assert loaded.origins[setting.name] == f"option {setting.option}"

    rows = shown(config_show(setting.option, setting.option_value))
    assert rows[setting.name] == (_printed(setting, setting.option_value), f"option {setting.option}")


@pytest.mark.parametrize("setting", LAYERED, ids=[setting.name for setting in LAYERED])
def test_environment_beats_config_file(setting: Layered, monkeypatch: pytest.MonkeyPatch) -> None:
    write_influx_config(**{setting.key: setting.file_value})
    monkeypatch.setenv(setting.variable, setting.env_value)

    # An option that was not given (None) does not hide the environment.
    loaded = load_settings({setting.name: None})
    assert loaded.values[setting.name] == setting.env_value
    assert loaded.origins[setting.name] == f"environment {setting.variable}"

    rows = shown(config_show())
    assert rows[setting.name] == (_printed(setting, setting.env_value), f"environment {setting.variable}")


@pytest.mark.parametrize("setting", LAYERED, ids=[setting.name for setting in LAYERED])
def test_config_file_beats_default(setting: Layered, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_influx_config(**{setting.key: setting.file_value})
    monkeypatch.setenv(setting.variable, "")  # empty counts as unset

    loaded = load_settings()
    assert loaded.values[setting.name] == setting.file_value
    assert loaded.origins[setting.name] == f"config file {path}"

    rows = shown(config_show())
    assert rows[setting.name] == (_printed(setting, setting.file_value), f"config file {path}")


@pytest.mark.parametrize("setting", LAYERED, ids=[setting.name for setting in LAYERED])
def test_setting_set_nowhere_shows_its_default(setting: Layered) -> None:
    write_config("host: laptop\n")

    loaded = load_settings()
    assert loaded.values[setting.name] == setting.default
    assert loaded.origins[setting.name] == "default"

    rows = shown(config_show())
    assert rows[setting.name] == (_printed(setting, setting.default), "default")


def test_settings_reach_the_influx_settings_the_commands_use(monkeypatch: pytest.MonkeyPatch) -> None:
    write_influx_config(url="http://file.example:8086", org="file-org", bucket="file-bucket", api="v1")
    monkeypatch.setenv("TRACKER_INFLUX_ORG", "env-org")
    monkeypatch.setenv("TRACKER_INFLUX_TOKEN", "admin:env-password")

    influx = load_settings({"influx.url": "http://option.example:8086"}).settings.influx

    assert influx.url == "http://option.example:8086"
    assert influx.token == "admin:env-password"
    assert influx.org == "env-org"
    assert influx.bucket == "file-bucket"
    assert influx.api == "v1"
    assert influx.configured


def test_config_show_with_nothing_set_prints_every_default() -> None:
    result = config_show()

    home = paths.config_dir().parent
    host = socket.gethostname()
    assert result.stdout == (
        f"config file: {home}/config/config.yaml (none)\n"
        f"data directory: {home}/data\n"
        "influx.url              (not set)                         default\n"
        "influx.token            (not set)                         default\n"
        "influx.org              (not set)                         default\n"
        "influx.bucket           tracker                           default\n"
        "influx.api              auto                              default\n"
        "influx.verify_tls       true                              default\n"
        "influx.ca_file          (not set)                         default\n"
        "influx.timeout          10.0                              default\n"
        f"host                    {host:<32}  default\n"
        "interval                1.0                               default\n"
        "away_after              180.0                             default\n"
        "titles                  true                              default\n"
        "exclude.apps            (not set)                         default\n"
        "exclude.domains         (not set)                         default\n"
        "exclude.titles          (not set)                         default\n"
        "outbox_max_rows         2592000                           default\n"
        "vitals_every            10.0                              default\n"
        "history_retention_days  (not set)                         default\n"
        "metrics_listen          (not set)                         default\n"
        "metrics_allow_remote    false                             default\n"
    )


def test_config_show_names_the_option_that_turned_tls_verification_off() -> None:
    write_config("influx:\n  verify_tls: true\n")

    rows = shown(config_show("--insecure"))

    assert rows["influx.verify_tls"] == ("false", "option --insecure")
    assert load_settings({"influx.verify_tls": False}).settings.influx.verify_tls is False


def test_config_show_prints_file_settings_as_they_take_effect() -> None:
    path = write_config(
        "host: laptop\n"
        "interval: 2s\n"
        "away_after: 5m\n"
        "titles: no\n"
        "exclude:\n"
        "  apps: [KeePassXC, 1Password]\n"
        "  domains: mybank.com\n"
        "history_retention_days: 365\n"
    )

    rows = shown(config_show())

    origin = f"config file {path}"
    assert rows["host"] == ("laptop", origin)
    assert rows["interval"] == ("2.0", origin)
    assert rows["away_after"] == ("300.0", origin)
    assert rows["titles"] == ("false", origin)
    assert rows["exclude.apps"] == ("KeePassXC, 1Password", origin)
    assert rows["exclude.domains"] == ("mybank.com", origin)
    assert rows["exclude.titles"] == ("(not set)", "default")
    assert rows["history_retention_days"] == ("365", origin)


# -- the token is never shown -----------------------------------------------------------------------

TOKENS = ["v2-Token_9f8e7d6c5b4a3f2e1d0c", "admin:pa55-w0rd!"]


def _set_token(source: str, token: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Set the token from `source`; the `config show` arguments that go with it."""
    if source == "option":
        return ["--influx-token", token]
    if source == "environment":
        monkeypatch.setenv("TRACKER_INFLUX_TOKEN", token)
    else:
        write_influx_config(url="http://localhost:8086", token=token)
    return []


def _assert_token_absent(output: str, token: str) -> None:
    assert token not in output
    for part in token.split(":"):  # neither the user name nor the password of a 1.x token
        assert part not in output


@pytest.mark.parametrize("token", TOKENS, ids=["v2 token", "v1 username:password"])
@pytest.mark.parametrize("source", ["option", "environment", "config file"])
def test_config_show_masks_the_token(source: str, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    arguments = _set_token(source, token, monkeypatch)

    result = config_show(*arguments)

    _assert_token_absent(result.output, token)
    value, origin = shown(result)["influx.token"]
    assert value == "**** (set)"
    assert origin == {
        "option": "option --influx-token",
        "environment": "environment TRACKER_INFLUX_TOKEN",
        "config file": f"config file {config_path()}",
    }[source]


@pytest.mark.parametrize("token", TOKENS, ids=["v2 token", "v1 username:password"])
@pytest.mark.parametrize("source", ["option", "environment", "config file"])
def test_config_show_error_does_not_show_the_token(source: str, token: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    arguments = _set_token(source, token, monkeypatch)
    monkeypatch.setenv("TRACKER_INFLUX_API", "v3")

    result = tracker("config", "show", *arguments)

    assert_fails_plainly(
        result, 2, "influx.api from environment variable TRACKER_INFLUX_API: 'v3' is not one of auto, v1, v2.")
    _assert_token_absent(result.output, token)


@pytest.mark.parametrize("token", TOKENS, ids=["v2 token", "v1 username:password"])
def test_settings_repr_does_not_show_the_token(token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_INFLUX_TOKEN", token)

    settings = load_settings().settings

    assert settings.influx.token == token
    _assert_token_absent(repr(settings), token)


# -- tracker config init ----------------------------------------------------------------------------


def test_config_init_writes_the_commented_template_readable_by_you_only(tracker_home: Path) -> None:
    result = tracker("config", "init")

    path = tracker_home / "config" / "config.yaml"
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote {path}. Edit it, then `tracker config show` to check.\n"
    assert path.read_text(encoding="utf-8") == CONFIG_TEMPLATE
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert [entry.name for entry in path.parent.iterdir()] == ["config.yaml"]  # no temporary file left


def test_config_init_makes_an_existing_config_directory_private(tracker_home: Path) -> None:
    directory = tracker_home / "config"
    directory.mkdir(parents=True, mode=0o755)
    directory.chmod(0o755)

    assert tracker("config", "init").exit_code == 0

    assert mode(directory) == 0o700
    assert mode(directory / "config.yaml") == 0o600


def test_config_init_refuses_to_overwrite_without_force() -> None:
    path = write_config("host: mine\n")

    result = tracker("config", "init")

    assert_fails_plainly(result, 1, f"{path} exists already; use --force to replace it.")
    assert path.read_text(encoding="utf-8") == "host: mine\n"


def test_config_init_force_replaces_the_file_readable_by_you_only() -> None:
    path = write_config("host: mine\n")
    path.chmod(0o644)

    result = tracker("config", "init", "--force")

    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote {path}. Edit it, then `tracker config show` to check.\n"
    assert path.read_text(encoding="utf-8") == CONFIG_TEMPLATE
    assert mode(path) == 0o600


def test_config_template_loads_with_every_value_at_its_default() -> None:
    assert tracker("config", "init").exit_code == 0

    loaded = load_settings()
    assert set(loaded.origins.values()) == {"default"}
    assert not loaded.settings.influx.configured

    rows = shown(config_show())
    assert {origin for _, origin in rows.values()} == {"default"}


def test_config_template_loads_with_every_example_uncommented() -> None:
    """The template says: remove the leading '# ' of a line to use it. Doing that to every setting works."""
    assert tracker("config", "init").exit_code == 0
    path = config_path()
    setting_line = re.compile(r"(\s*)# (\s*[a-z_]+:(?: .*)?)")
    lines = [
        "".join(match.groups()) if (match := setting_line.fullmatch(line)) else line
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    # The CA file must exist: a real one stands in for the example's path.
    path.write_text("\n".join(lines).replace("/path/to/ca.pem", certifi.where()) + "\n", encoding="utf-8")

    loaded = load_settings()

    assert set(loaded.origins.values()) == {f"config file {path}"}  # the template names every setting
    values: dict[str, Any] = loaded.values
    assert values == {
        "influx.url": "http://localhost:8086",
        "influx.token": None,  # token: "" is no token
        "influx.org": "my-org",
        "influx.bucket": "tracker",
        "influx.api": "auto",
        "influx.verify_tls": True,
        "influx.ca_file": certifi.where(),
        "influx.timeout": 10.0,
        "host": "laptop",
        "interval": 1.0,
        "away_after": 180.0,
        "titles": True,
        "exclude.apps": ("KeePassXC", "1Password"),
        "exclude.domains": ("mybank.com",),
        "exclude.titles": ("(?i)private", "salary"),
        "outbox_max_rows": 2592000,
        "vitals_every": 10.0,
        "history_retention_days": 365,
        "metrics_listen": "127.0.0.1:9184",
        "metrics_allow_remote": False,
    }
    assert tracker("config", "show").exit_code == 0


# -- bad input: one plain line, exit 2 --------------------------------------------------------------


class Bad(NamedTuple):
    file: str | None  # config.yaml text, or None for no file
    environment: dict[str, str]
    message: str  # {path} is the config file


BAD = {
    "yaml syntax error": Bad("host: laptop\ninterval: 2s\naway_after: 3m: 4m\n", {},
                             "{path}, line 3: mapping values are not allowed here."),
    "tab in yaml": Bad("host: laptop\n\tinterval: 2s\n", {},
                       "{path}, line 2: found character '\\t' that cannot start any token."),
    "not a mapping": Bad("- host: laptop\n", {}, "{path}: expected `key: value` settings, found list."),
    "bad api in file": Bad("influx:\n  api: v3\n", {}, "influx.api from {path}: 'v3' is not one of auto, v1, v2."),
    "bad api in environment": Bad(None, {"TRACKER_INFLUX_API": "influx3"},
                                  "influx.api from environment variable TRACKER_INFLUX_API: "
                                  "'influx3' is not one of auto, v1, v2."),
    "bad titles bool": Bad("titles: maybe\n", {}, "titles from {path}: 'maybe' is not true or false."),
    "bad verify_tls bool": Bad("influx:\n  verify_tls: sometimes\n", {},
                               "influx.verify_tls from {path}: 'sometimes' is not true or false."),
    "zero interval": Bad("interval: 0\n", {}, "interval from {path}: 0 must be more than 0 seconds."),
    "negative interval": Bad("interval: -1.5\n", {}, "interval from {path}: -1.5 must be more than 0 seconds."),
    "zero interval with unit": Bad("interval: 0s\n", {},
                                   "interval from {path}: '0s' is not a duration: it must be more than zero, "
                                   "e.g. 30s, 5m, 2h."),
    "not-a-number interval": Bad("interval: .nan\n", {}, "interval from {path}: nan must be more than 0 seconds."),
    "bad duration": Bad("away_after: soon\n", {},
                        "away_after from {path}: 'soon' is not a duration: use e.g. 30s, 5m, 2h."),
    "bad timeout": Bad("influx:\n  timeout: 10 secs\n", {},
                       "influx.timeout from {path}: '10 secs' is not a duration: use e.g. 30s, 5m, 2h."),
    "fractional count": Bad("history_retention_days: 1.5\n", {},
                            "history_retention_days from {path}: 1.5 is not a whole number of 1 or more."),
    "infinite count": Bad("outbox_max_rows: .inf\n", {},
                          "outbox_max_rows from {path}: inf is not a whole number of 1 or more."),
    "bad list": Bad("exclude:\n  apps: [1Password, 42]\n", {},
                    "exclude.apps from {path}: ['1Password', 42] is not a list of text."),
    "infinite interval": Bad("interval: .inf\n", {}, "interval from {path}: inf must be a finite number of seconds."),
    "infinite away_after": Bad("away_after: .inf\n", {},
                               "away_after from {path}: inf must be a finite number of seconds."),
    "infinite timeout": Bad("influx:\n  timeout: .inf\n", {},
                            "influx.timeout from {path}: inf must be a finite number of seconds."),
    "influx not a section": Bad("influx: some-text\n", {},
                                "{path}: `influx` must be a section of `key: value` settings, found text."),
    "influx a list": Bad("influx: [a, b]\n", {},
                         "{path}: `influx` must be a section of `key: value` settings, found list."),
    "exclude not a section": Bad("exclude: KeePassXC\n", {},
                                 "{path}: `exclude` must be a section of `key: value` settings, found text."),
    "url a list": Bad("influx:\n  url: [a, b]\n", {},
                      "influx.url in {path} must be text: put it in quotes, like url: \"...\"."),
    "host a number": Bad("host: 42\n", {}, "host in {path} must be text: put it in quotes, like host: \"...\"."),
    "org a bool": Bad("influx:\n  org: yes\n", {},
                      "influx.org in {path} must be text: put it in quotes, like org: \"...\"."),
}


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_bad_setting_is_one_plain_error_line(bad: Bad, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(bad.file) if bad.file is not None else config_path()
    for variable, value in bad.environment.items():
        monkeypatch.setenv(variable, value)
    message = bad.message.format(path=path)

    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value) == message

    assert_fails_plainly(tracker("config", "show"), 2, message)


def test_unknown_setting_is_named_with_the_known_ones() -> None:
    path = write_config("influx:\n  url: http://localhost:8086\n  tokn: abc\n")

    result = tracker("config", "show")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {path}: unknown setting 'influx.tokn'; known settings are ")
    assert result.stderr.endswith(", titles, vitals_every.\n")
    assert result.stderr.count("\n") == 1
    assert "influx.token" in result.stderr
    assert "abc" not in result.stderr


# Unquoted, YAML reads these as something other than the text typed: 0123 is octal 83, yes is true.
UNQUOTED_TOKENS = {"octal": ("0123", "83"), "yes": ("yes", "True"), "number": ("123456", "123456"),
                   "list": ("[abc, def]", "abc"), "float": ("1.50", "1.5")}


@pytest.mark.parametrize(("written", "parsed"), UNQUOTED_TOKENS.values(), ids=UNQUOTED_TOKENS.keys())
def test_unquoted_token_that_is_not_text_is_refused_without_showing_it(written: str, parsed: str) -> None:
    path = write_config(f"influx:\n  url: http://localhost:8086\n  token: {written}\n")
    message = f'influx.token in {path} must be text: put it in quotes, like token: "...".'

    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value) == message

    result = tracker("config", "show")
    assert_fails_plainly(result, 2, message)
    output = result.output.replace(str(path), "")  # the temporary path may hold any digits
    assert written not in output
    assert parsed not in output


def test_quoted_token_is_kept_as_typed() -> None:
    write_config('influx:\n  token: "0123"\n')

    assert load_settings().settings.influx.token == "0123"


@pytest.mark.parametrize("token", TOKENS, ids=["v2 token", "v1 username:password"])
@pytest.mark.parametrize("source", ["option", "environment", "config file"])
def test_loaded_settings_repr_does_not_show_the_token(source: str, token: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _set_token(source, token, monkeypatch)
    options = {"influx.token": token} if source == "option" else None

    loaded = load_settings(options)

    assert loaded.values["influx.token"] == token
    _assert_token_absent(repr(loaded), token)
    _assert_token_absent(str(loaded), token)


def test_config_file_not_in_utf8_is_one_plain_error_line() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_bytes("host: café\n".encode("latin-1"))

    assert_fails_plainly(tracker("config", "show"), 2, f"{path} is not UTF-8 text.")


def test_non_positive_interval_option_names_the_option() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"interval": 0})

    assert str(raised.value) == "interval from option --interval: 0 must be more than 0 seconds."


# -- TRACKER_HOME -----------------------------------------------------------------------------------


def test_tracker_home_holds_config_and_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "elsewhere"
    monkeypatch.setenv("TRACKER_HOME", str(home))

    result = config_show()
    assert result.stdout.splitlines()[:2] == [
        f"config file: {home}/config/config.yaml (none)",
        f"data directory: {home}/data",
    ]
    assert not home.exists()  # showing settings creates nothing

    assert tracker("config", "init").exit_code == 0
    assert (home / "config" / "config.yaml").read_text(encoding="utf-8") == CONFIG_TEMPLATE
    (home / "config" / "config.yaml").write_text("host: from-home\n", encoding="utf-8")

    result = config_show()
    assert result.stdout.splitlines()[:2] == [
        f"config file: {home}/config/config.yaml",
        f"data directory: {home}/data",
    ]
    assert shown(result)["host"] == ("from-home", f"config file {home}/config/config.yaml")


BAD_EXCLUDES = {
    "url-as-domain": ('exclude:\n  domains: ["https://x.com/path"]\n',
                      "exclude.domains from {path}: domain 'https://x.com/path' should be a bare host name like "
                      "example.com."),
    "broken-regex": ('exclude:\n  titles: ["fine", "(unclosed"]\n',
                     "exclude.titles from {path}: regex '(unclosed' is invalid: missing ) in '(unclosed'."),
}


@pytest.mark.parametrize(("text", "message"), BAD_EXCLUDES.values(), ids=BAD_EXCLUDES.keys())
def test_a_broken_exclude_rule_stops_every_command_with_one_line(text: str, message: str) -> None:
    path = write_config(text)
    expected = message.format(path=path)
    assert_fails_plainly(tracker("config", "show"), 2, expected)
    # tracker run refuses it before recording anything, rather than failing with a traceback.
    assert_fails_plainly(tracker("run", "--source", "demo", "--for", "1s"), 2, expected)
    assert not paths.database_file().exists()


# -- every declared setting reaches the user: environment, options, template, docs -------------------

ENVIRONMENT_SETTINGS = [setting for setting in SETTINGS.values() if setting.variable]
# The settings whose options `tracker config show` takes (those of every command that talks to InfluxDB).
INFLUX_OPTION_SETTINGS = [setting for setting in SETTINGS.values()
                          if setting.option and setting.name.startswith("influx.")]


def _given(setting: Setting) -> str:
    """A valid value to give a text, certificate or choice setting, not its default."""
    if setting.kind == "certificate":
        return certifi.where()  # it must be a readable certificate
    if setting.kind == "url":
        return "http://given.example:8086"
    return setting.choices[-1] if setting.choices else f"/given/{setting.key}"


@pytest.mark.parametrize("setting", ENVIRONMENT_SETTINGS, ids=[setting.name for setting in ENVIRONMENT_SETTINGS])
def test_every_environment_variable_is_honoured_and_documented(setting: Setting,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(setting.variable, _given(setting))

    value, origin = shown(config_show())[setting.name]

    assert value == ("**** (set)" if setting.secret else _given(setting))
    assert origin == f"environment {setting.variable}"
    assert f"`{setting.variable}`" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("setting", INFLUX_OPTION_SETTINGS, ids=[setting.name for setting in INFLUX_OPTION_SETTINGS])
def test_every_influx_option_is_honoured_by_config_show(setting: Setting) -> None:
    arguments = [setting.option] if setting.kind == "bool" else [setting.option, _given(setting)]

    value, origin = shown(config_show(*arguments))[setting.name]

    if setting.kind == "bool":
        assert value == "false"  # --insecure: a flag turns off what is on by default
    else:
        assert value == ("**** (set)" if setting.secret else _given(setting))
    assert origin == f"option {setting.option}"


def _template_comment_above(lines: list[str], index: int) -> str:
    """The comment lines right above lines[index], joined as one text."""
    start = index
    while start > 0 and lines[start - 1].strip().startswith("# "):
        start -= 1
    return " ".join(line.strip().removeprefix("# ") for line in lines[start:index])


@pytest.mark.parametrize("setting", SETTINGS.values(), ids=list(SETTINGS))
def test_the_template_explains_every_setting_and_names_what_overrides_it(setting: Setting) -> None:
    assert tracker("config", "init").exit_code == 0
    lines = config_path().read_text(encoding="utf-8").splitlines()
    section, _, key = setting.name.rpartition(".")
    indent = "  " if section else ""

    index = lines.index(f"{indent}# {key}: {setting.example}")

    comment = _template_comment_above(lines, index)
    assert comment.startswith(setting.help)
    for overridden_by in (setting.variable, setting.option):
        assert overridden_by is None or overridden_by in comment
    if section:
        assert [line for line in lines[:index] if line and not line.startswith((" ", "#"))][-1] == f"{section}:"


def _run_demo_titles(*options: str) -> list[str | None]:
    """The titles of the activities `tracker run --source demo` logs as JSON, with these options."""
    result = tracker("run", "--source", "demo", "--interval", "0.05", "--for", "0.6s", "--quiet",
                     "--log-format", "json", *options)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    return [event["title"] for event in events if event["event"] == "activity"]


@pytest.mark.slow
def test_no_titles_option_of_run_records_no_titles() -> None:
    assert any(_run_demo_titles()), "the demo has titles to drop"

    titles = _run_demo_titles("--no-titles")

    assert titles and not any(titles)


# Which modules a command loaded; yaml is slow to import, and only a command that reads settings needs it.
_LOADS_YAML = """
import sys
from tracker.commands import cli
cli.main(sys.argv[1:], prog_name="tracker", standalone_mode=False)
print("yaml" in sys.modules)
"""


YAML_LOADED = {"--help": (["--help"], False), "run --help": (["run", "--help"], False),
               "config show --help": (["config", "show", "--help"], False),
               "config show": (["config", "show"], True)}


@pytest.mark.slow
@pytest.mark.parametrize(("command", "reads_settings"), YAML_LOADED.values(), ids=YAML_LOADED.keys())
def test_only_commands_that_read_settings_import_yaml(command: list[str], reads_settings: bool) -> None:
    done = subprocess.run([sys.executable, "-c", _LOADS_YAML, *command], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(reads_settings)


@pytest.mark.parametrize("written, seconds", [("0", 0.0), ("'0s'", 0.0), ("off", 0.0), ("1s", 1.0), ("2.5", 2.5)])
def test_vitals_every_takes_a_duration_or_0_for_off(written: str, seconds: float) -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(f"vitals_every: {written}\n")

    assert load_settings().settings.vitals_every == seconds


def test_vitals_every_refuses_a_negative_duration() -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("vitals_every: -5\n")

    with pytest.raises(ConfigError, match="vitals_every"):
        load_settings()
