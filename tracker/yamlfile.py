"""What categories.yaml and goals.yaml share: the file read as YAML nodes (each knows its line, for messages users
can act on), and the error that names the file, the line and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tracker import PlainError
from tracker.paths import display_path

if TYPE_CHECKING:  # PyYAML is imported by the reading, not by the errors: commands that only name them stay fast
    from yaml.nodes import Node


class FileLineError(PlainError, ValueError):
    """A file that cannot be used; the message names the file, the line (when known) and the problem."""

    def __init__(self, file: Path, line: int | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.problem = problem
        where = display_path(file) if line is None else f"{display_path(file)}, line {line}"
        super().__init__(f"{where}: {problem}")


def compose_nodes(text: str, file: Path, error: type[FileLineError], too_deep: str) -> Node | None:
    """The YAML node tree of `text` (None for an empty file); `error` for what is not YAML, with `too_deep` as the
    problem of brackets nested thousands deep."""
    import yaml

    # libyaml's loader when PyYAML has it (its wheels do): several times faster on a file of a few hundred rules.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as failure:
        mark = failure.problem_mark or failure.context_mark
        problem = failure.problem or failure.context or "not valid YAML"
        raise error(file, mark.line + 1 if mark else None, f"YAML syntax error: {problem}") from failure
    except yaml.reader.ReaderError as failure:  # a character YAML does not take, such as NUL or most controls
        line = text.count("\n", 0, failure.position) + 1
        character = failure.character if isinstance(failure.character, str) else chr(failure.character)
        raise error(file, line, f"the character U+{ord(character):04X} is not allowed in YAML; remove it") from None
    except yaml.YAMLError as failure:
        raise error(file, None, "YAML syntax error: " + " ".join(str(failure).split())) from failure
    except RecursionError:  # the pure-Python loader, on brackets nested thousands deep (libyaml stops at 1000)
        raise error(file, None, too_deep) from None
