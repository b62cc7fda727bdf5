"""What systemd itself makes of unit files, without a running manager: `systemd --test --user` loads them and
dumps every setting as it will use it (`Environment: NAME=value`, `WorkingDirectory: …`, the command line), and
`systemd-analyze --user verify` says what it refuses. Both take a few hundredths of a second, for many units."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from helpers.servers import require_program

SYSTEMD = shutil.which("systemd", path="/lib/systemd:/usr/lib/systemd")
# `systemd --test` refuses to run as root ("Don't run test mode as root"): as root, it runs as nobody.
NOBODY = 65534
# Units every user unit is ordered against (DefaultDependencies=yes), and the one ours is wanted by.
STUB_TARGETS = ("basic", "shutdown", "default", "graphical-session")


@dataclass(frozen=True)
class LoadedUnit:
    """One unit as systemd loaded it: `section` is its dump; `command` is ExecStart= as it is run."""

    section: str
    command: list[str]

    def has_environment(self, name: str, value: str) -> bool:
        return f"\n\t\tEnvironment: {name}={value}\n" in self.section

    def has_working_directory(self, path: str) -> bool:
        return f"\n\t\tWorkingDirectory: {path}\n" in self.section


def require_systemd() -> tuple[str, str]:
    """systemd and systemd-analyze (and setpriv as root); a skip without them, a failure in CI."""
    analyze = require_program("systemd-analyze", "systemd")
    if os.geteuid() == 0:
        require_program("setpriv", "util-linux")
    if SYSTEMD is None:
        require_program("/lib/systemd/systemd", "systemd")  # says what is missing, and fails in CI
    assert SYSTEMD is not None
    return SYSTEMD, analyze


def load_units(units: Mapping[str, str]) -> tuple[dict[str, LoadedUnit], str]:
    """Each unit (name: text) as `systemd --test --user` loads it, and what it said of the files."""
    systemd, _ = require_systemd()
    directory = Path(tempfile.mkdtemp(prefix="units-", dir="/tmp"))
    runtime = Path(tempfile.mkdtemp(prefix="runtime-", dir="/tmp"))
    try:
        directory.chmod(0o755)  # readable by nobody
        for target in STUB_TARGETS:
            (directory / f"{target}.target").write_text(f"[Unit]\nDescription={target}\n")
        wants = "".join(f"Wants={name}\n" for name in units)
        (directory / "all.target").write_text(f"[Unit]\nDescription=all\n{wants}")
        for name, text in units.items():
            (directory / name).write_bytes(text.encode("utf-8"))
            (directory / name).chmod(0o644)
        command = [systemd, "--test", "--user", "--unit=all.target", "--no-pager"]
        if os.geteuid() == 0:
            os.chown(runtime, NOBODY, NOBODY)
            command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
        environment = {"PATH": "/usr/bin:/bin", "HOME": str(directory), "XDG_RUNTIME_DIR": str(runtime),
                       "SYSTEMD_UNIT_PATH": str(directory), "SYSTEMD_LOG_TARGET": "console", "LANG": "C.UTF-8"}
        done = subprocess.run(command, env=environment, capture_output=True, timeout=60, check=False)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)
    dump = done.stdout.decode("utf-8", "replace")
    said = "\n".join(line for line in done.stderr.decode("utf-8", "replace").splitlines()
                     if any(name in line for name in units))
    loaded: dict[str, LoadedUnit] = {}
    for name in units:
        start = dump.find(f"\t-> Unit {name}:\n")
        if start < 0:
            continue
        end = dump.find("\n\t-> Unit ", start + 1)
        section = dump[start:end if end >= 0 else len(dump)] + "\n"
        found = re.search(r"\n\t\t\tCommand Line: (.*)\n", section)
        loaded[name] = LoadedUnit(section, as_run(split_dumped_command(found.group(1))) if found else [])
    return loaded, said


def verify(units: Mapping[str, str], directory: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze --user verify` over all the units at once."""
    _, analyze = require_systemd()
    runtime = directory / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    files = []
    for name, text in units.items():
        (directory / name).write_bytes(text.encode("utf-8"))
        files.append(str(directory / name))
    return subprocess.run([analyze, "--user", "verify", *files], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)}, check=False)


_DUMP_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def split_dumped_command(line: str) -> list[str]:
    """The words of the dump's `Command Line:`, which systemd writes with shell_maybe_quote(): a word with
    anything special is double-quoted, `"\\`$` are backslashed, other characters below 32 or from 127 are C escapes
    (\\n) or octal bytes (\\377)."""
    words: list[str] = []
    index = 0
    while index < len(line):
        if line[index] == " ":
            index += 1
            continue
        if line[index] != '"':
            end = line.find(" ", index)
            end = len(line) if end < 0 else end
            words.append(line[index:end])
            index = end
            continue
        word = bytearray()
        index += 1
        while line[index] != '"':
            if line[index] != "\\":
                word += line[index].encode("utf-8")
                index += 1
                continue
            escaped = line[index + 1]
            if escaped in "01234567":
                word.append(int(line[index + 1:index + 4], 8))
                index += 4
            else:
                word += _DUMP_ESCAPES.get(escaped, escaped).encode("utf-8")
                index += 2
        words.append(word.decode("utf-8"))
        index += 1
    return words


def as_run(words: list[str]) -> list[str]:
    """The command as systemd runs it: in each word `$$` becomes `$`; any other `$` is a variable systemd
    would replace, which a unit written for a path must never hold."""
    def one_dollar(found: re.Match[str]) -> str:
        if found.group(1) != "$":
            raise AssertionError(f"systemd would expand a variable in {found.string!r}")
        return "$"

    return [re.sub(r"\$(\$|.|$)", one_dollar, word) for word in words]
