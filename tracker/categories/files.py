"""Categories files: the bundled categories.yaml and the user's, read, remembered and watched.

The user's categories.yaml in the config directory, when it exists, replaces the bundled one whole.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tracker import __version__, paths
from tracker.categories.rules import Categories, CategoriesError, Category, Rule

if TYPE_CHECKING:
    from importlib.abc import Traversable  # importlib.resources.abc from Python 3.11

# The bundled file is 16 kB; a file of 1 MB holds some 20,000 rules. Larger is a mistake or an attack, and is
# refused before YAML reads it.
MAX_CATEGORIES_BYTES = 1_000_000
_BUNDLED_NAME = "categories.yaml"
_REMEMBERED_NAME = "categories.remembered.json"  # in the data directory: see load_categories


def bundled_categories_path() -> Path:
    """The default rules shipped inside the package; in a source checkout (or an editable install), the
    categories.yaml at the top of the repository, which the wheel copies into the package."""
    # Files on disk first: importlib.resources, needed only when the package is inside a zip, takes longer to
    # import than reading the rules.
    package = Path(__file__).parent.parent  # tracker/, where the wheel puts the file
    inside = package / _BUNDLED_NAME
    if inside.is_file():
        return inside
    checkout = package.resolve().parent / _BUNDLED_NAME
    if checkout.is_file():
        return checkout
    packaged = _packaged_categories()
    return Path(str(packaged)) if packaged is not None else checkout


def _packaged_categories() -> Traversable | None:
    """The bundled file as a resource of the package, wherever it is (a wheel or a zipapp too); None if absent."""
    from importlib import resources

    inside = resources.files("tracker").joinpath(_BUNDLED_NAME)
    return inside if inside.is_file() else None


def active_categories_path(user_file: Path | None = None, bundled_file: Path | None = None) -> Path:
    """The user's categories.yaml when it exists (it replaces the defaults whole), else the bundled one; either
    path may be given, worked out already (see CategoriesWatcher)."""
    user_file = user_file or paths.user_categories_file()
    # lexists: a broken or looping symlink is the user's file too, to be reported, not silently replaced
    if os.path.lexists(user_file):
        return user_file
    return bundled_file or bundled_categories_path()


def read_categories_text(path: Path) -> str:
    """The text of a categories file; CategoriesError when it cannot be read, is not UTF-8 or is too large."""
    if not path.is_file() and path == bundled_categories_path():
        # Inside a wheel or a zipapp: through importlib.resources.
        packaged = _packaged_categories()
        if packaged is not None:
            return packaged.read_text(encoding="utf-8")
    return decode_categories(read_categories_bytes(path), path)


def read_categories_bytes(path: Path) -> bytes:
    """The bytes of a categories file on disk, one more than decode_categories takes at most; CategoriesError when
    it cannot be read."""
    try:
        kind = stat.S_IFMT(path.stat().st_mode)
        if kind != stat.S_IFREG:
            # A pipe would block the read forever, a device never end: neither holds rules.
            what = "a directory" if kind == stat.S_IFDIR else "not a regular file (a device, pipe or socket)"
            raise CategoriesError(path, None, f"this is {what}; remove it or put a categories file in its place")
        with path.open("rb") as handle:
            # Never more than the limit into memory, however large the file.
            data = handle.read(MAX_CATEGORIES_BYTES + 1)
    except OSError as error:
        raise CategoriesError(path, None, _unreadable(path, error)) from None
    return data


def decode_categories(data: bytes, path: Path) -> str:
    """Categories text from bytes; CategoriesError when there are too many, or naming the line of the first byte
    that is not UTF-8."""
    if len(data) > MAX_CATEGORIES_BYTES:
        raise CategoriesError(path, None, f"the file is larger than {MAX_CATEGORIES_BYTES // 1_000_000} MB, "
                                          "more than any set of rules needs; keep the rules you use")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise CategoriesError(path, line, "the file is not UTF-8 text; save it as UTF-8 in your editor") from None


def _unreadable(path: Path, error: OSError) -> str:
    """Why the categories file at `path` cannot be read, and what to do, in words."""
    import errno

    if error.errno == errno.ELOOP:
        return "the file is a loop of symbolic links; point the link at a real file or remove it"
    if isinstance(error, FileNotFoundError):
        if path.is_symlink():
            return (f"the file is a symbolic link to {os.readlink(path)}, which does not exist; "
                    "point it at a real file or remove it")
        return "the file does not exist; check the path"
    return f"cannot read the file ({error.strerror or error}); check its permissions"


def load_categories(path: Path | None = None, *, remember: bool = False) -> Categories:
    """Load and validate a categories file; None means the user's file if present, else the bundled one.

    With `remember`, the rules of the last valid file are kept in the data directory, and a file with the
    same text is not parsed again: `tracker categories list` and `test` then start without yaml.
    """
    path = path or active_categories_path()
    text = read_categories_text(path)
    if not remember:
        return parse_categories(text, path)
    remembered_file = paths.data_dir() / _REMEMBERED_NAME
    identity = _parser_identity()
    remembered = _remembered_categories(remembered_file, text, identity)
    if remembered is not None:
        return Categories(remembered, path)
    rules = parse_categories(text, path)  # an invalid file raises here: only valid rules are remembered
    _remember_categories(remembered_file, text, identity, rules.categories)
    return rules


def _parser_identity() -> str:
    """What else decides whether a text is valid and what it means: this tracker (its version, and the size and
    time of the modules that read and check the file, for a checkout between versions) and this Python (a
    regex valid in one may not be in another)."""
    modules = []
    here = os.path.dirname(__file__)
    for module in (__file__, *(os.path.join(here, name) for name in ("classify.py", "matching.py", "rulesfile.py"))):
        try:
            status = os.stat(module)
        except OSError:  # inside a zip: the version says it all
            continue
        modules.append(f"{status.st_size}:{status.st_mtime_ns}")
    return " ".join([__version__, *modules, sys.version])


def _remembered_categories(remembered_file: Path, text: str, identity: str) -> tuple[Category, ...] | None:
    """The categories remembered for exactly this text and parser; None when there are none (or they are unreadable)."""
    import json

    try:
        if remembered_file.stat().st_size > 8 * MAX_CATEGORIES_BYTES:  # more than valid rules ever take
            return None
        document = json.loads(remembered_file.read_text(encoding="utf-8"))
        if document["text"] != text or document["parser"] != identity:
            return None
        return tuple(
            Category(name, score, line, tuple(Rule(kind, pattern, written, name, score, rule_line)
                                              for kind, pattern, written, rule_line in rules))
            for name, score, line, rules in document["categories"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):  # none yet, or damaged: parse the file again
        return None


def _remember_categories(remembered_file: Path, text: str, identity: str, categories: tuple[Category, ...]) -> None:
    import json

    document = {"text": text, "parser": identity, "categories": [
        [category.name, category.score, category.line,
         [[rule.kind, rule.pattern, rule.written, rule.line] for rule in category.rules]]
        for category in categories]}
    # A read-only data directory: the rules are still right, only parsed again next time.
    with contextlib.suppress(OSError):
        paths.write_private(remembered_file, json.dumps(document, ensure_ascii=False), durable=False)


def parse_categories(text: str, file: Path) -> Categories:
    """Validate categories YAML; `file` is the name errors and matches report (the text may come from a copy)."""
    from tracker.categories.parse import (
        parse_rules,  # with yaml: only when a file is read, not when rules are remembered
    )

    return Categories(parse_rules(text, file), file)


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
        # Where the files are does not change while tracker runs: worked out once, a check is then two stats.
        self._user_file = paths.user_categories_file()
        self._bundled_file = bundled_categories_path()
        active = self._active_path()
        self._signature = _file_signature(active)
        try:
            self._current = load_categories(active)
        except CategoriesError as error:
            on_error(str(error))
            self._current = load_categories(self._bundled_file)
        self._next_check = time.monotonic() + check_every

    @property
    def current(self) -> Categories:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_every
            self._reload_if_changed()
        return self._current

    def _active_path(self) -> Path:
        return self._path or active_categories_path(self._user_file, self._bundled_file)

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
