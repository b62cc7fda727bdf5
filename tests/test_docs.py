"""The README against the CLI and the Makefile: what it names exists, and every command is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tracker.commands import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group = cli, prefix: str = "tracker") -> dict[str, click.Command]:
    """Every command by its full name, e.g. "tracker categories edit"."""
    found: dict[str, click.Command] = {}
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        full = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found |= commands(command, full)
        else:
            found[full] = command
    return found


def table_rows() -> list[str]:
    return [line for line in README.splitlines() if line.startswith("| `tracker ")]


def test_every_command_is_in_the_readme_command_table():
    table = "\n".join(table_rows())
    for name in commands():
        words = name.split()
        # "tracker categories list|test|edit" documents a group's commands in one row.
        pattern = rf"`tracker {words[1]}" + (rf"[^`]*\b{words[2]}\b" if len(words) > 2 else r"\b")
        assert re.search(pattern, table), f"{name} is not in the README's command table"


def test_every_option_the_command_table_names_exists():
    options = {option for command in commands().values() for param in command.params
               for option in getattr(param, "opts", []) if option.startswith("--")}
    named = {option for row in table_rows() for option in re.findall(r"(--[a-z][a-z-]*)", row)}
    assert named, "the table names options"
    assert named <= options, f"the README names options the CLI does not have: {sorted(named - options)}"


def test_the_two_setup_commands_come_first_and_the_debian_packages_match_the_makefile():
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[0:2] for line in first_block.strip().splitlines()] == [["make", "run"], ["make", "test"]]
    makefile = (ROOT / "Makefile").read_text()
    debs = re.search(r"^DEBS := ((?:.*\\\n)*.*)$", makefile, re.MULTILINE)  # with its continued lines
    assert debs is not None
    packages = " ".join(debs.group(1).replace("\\\n", " ").split())
    assert f"`{packages}`" in " ".join(README.split()), "README lists other Debian packages"
