"""tracker categories edit: categories.yaml edited in $VISUAL or $EDITOR, put in place only when it is valid."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import click

from tracker import paths
from tracker.categories.files import (
    MAX_CATEGORIES_BYTES,
    active_categories_path,
    bundled_categories_path,
    decode_categories,
    parse_categories,
    read_categories_bytes,
    read_categories_text,
)
from tracker.categories.rules import CategoriesError
from tracker.commands import Failure
from tracker.paths import display_path

_REJECTED_NAME = "categories.rejected.yaml"  # beside the user's categories.yaml: an edit not put in use


@click.command("edit")
def categories_edit() -> None:
    """Edit your categories.yaml in $VISUAL or $EDITOR; a file with an error is never put in place.

    The first time, you start from the bundled defaults.
    """
    editor = _editor_command()  # before anything else: an unusable $EDITOR changes nothing
    user_file = paths.user_categories_file()
    active = active_categories_path()
    previous = "the bundled defaults" if active == bundled_categories_path() else display_path(user_file)
    # The user's file as bytes: one saved in another encoding opens as it is, to be fixed in the editor.
    original = (read_categories_text(active).encode("utf-8") if active == bundled_categories_path()
                else read_categories_bytes(active))
    if len(original) > MAX_CATEGORIES_BYTES:
        decode_categories(original, active)  # refused: too large to open
    try:
        # The copy sits next to the real file: private, and named .yaml for the editor's highlighting.
        descriptor, name = tempfile.mkstemp(prefix=".categories-edit-", suffix=".yaml",
                                            dir=paths.private_dir(user_file.parent))
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(original)
    except OSError as error:
        raise Failure(f"cannot write a copy to edit in {display_path(user_file.parent)} "
                      f"({error.strerror or error}); check that the directory is writable", 1) from None
    draft = Path(name)
    try:
        code = _edit_categories_draft(editor, draft, original, user_file, previous)
    finally:
        # Whatever happened, the edit stays somewhere: the draft goes only when it holds nothing new.
        if _draft_is_kept_elsewhere(draft, original, user_file):
            draft.unlink(missing_ok=True)
    if code:
        click.echo(f"Kept {previous}.", err=True)
    raise click.exceptions.Exit(code)


def _edit_categories_draft(editor: list[str], draft: Path, original: bytes, user_file: Path, previous: str) -> int:
    """Edit `draft` until it is valid and saved (0), or the user keeps the previous version (1).

    Failure when the editor fails: nothing is put in use then either, and a changed draft is kept aside.
    """
    # Saved through a symlink (a dotfiles repository, say), not over it.
    target = user_file.resolve() if user_file.is_symlink() else user_file
    while True:
        status = _run_editor(editor, draft)
        try:
            edited = draft.read_bytes()
        except OSError as error:
            raise Failure(f"the editor left no readable file at {display_path(draft)} ({error.strerror or error}); "
                          f"nothing was saved.\nKept {previous}.", 1) from None
        if status != 0:
            how = f"was stopped by signal {-status}" if status < 0 else f"exited with status {status}"
            if edited == original:
                raise Failure(f"the editor {how}; nothing was saved.\nKept {previous}.", 1)
            kept = _keep_rejected(edited, user_file, draft)
            raise Failure(f"the editor {how}, so your edit was not put in use; it is in {kept}.\n"
                          f"Kept {previous}.", 1)
        if edited == original:
            click.echo(f"No changes; kept {previous}.")
            return 0
        try:
            rules = parse_categories(decode_categories(edited, user_file), user_file)
        except CategoriesError as error:
            click.echo(f"Error: {error}", err=True)
            if _ask_edit_again():
                continue
            # Not in force, but not lost either: an hour of edits may hang on one typo.
            kept = _keep_rejected(edited, user_file, draft)
            click.echo(f"Your edit is in {kept}.", err=True)
            return 1
        try:
            paths.write_private(target, edited)
        except OSError as error:
            raise Failure(f"cannot save {display_path(target)} ({error.strerror or error}); your edit is in "
                          f"{display_path(draft)}", 1) from None
        click.echo(f"Saved {display_path(user_file)}: {len(rules.categories)} categories, "
                   f"{rules.rule_count} rules. A running tracker picks it up within seconds.")
        return 0


def _draft_is_kept_elsewhere(draft: Path, original: bytes, user_file: Path) -> bool:
    """True when what the draft holds is the original, or was saved in place or as categories.rejected.yaml."""
    try:
        edited = draft.read_bytes()
    except OSError:  # gone (the editor moved it?): nothing to remove
        return True
    if edited == original:
        return True
    for copy in (user_file, user_file.with_name(_REJECTED_NAME)):
        try:
            if copy.read_bytes() == edited:
                return True
        except OSError:
            continue
    return False


def _keep_rejected(edited: bytes, user_file: Path, draft: Path) -> str:
    """Where an edit that is not put in use is kept, as the user should be told: categories.rejected.yaml,
    or the draft itself when that cannot be written."""
    rejected = user_file.with_name(_REJECTED_NAME)
    try:
        paths.write_private(rejected, edited)
    except OSError:
        return display_path(draft)
    return display_path(rejected)


def _editor_command() -> list[str]:
    """$VISUAL, else $EDITOR (either may carry arguments and quotes, like `code --wait`), else nano or vi, as
    arguments to run; Failure when the variable cannot be split into them."""
    for variable in ("VISUAL", "EDITOR"):
        value = os.environ.get(variable, "")
        if not value.strip():  # unset or empty: the next choice
            continue
        try:
            return shlex.split(value)
        except ValueError as error:  # an unclosed quote
            raise Failure(f"${variable} ({value}) cannot be read as a command: {error}; fix its quotes", 1) from None
    return ["nano" if shutil.which("nano") else "vi"]


def _run_editor(editor: list[str], file: Path) -> int:
    """Run the editor on `file`; return its exit status (negative: the signal that stopped it)."""
    try:
        return subprocess.run([*editor, str(file)], check=False).returncode
    except OSError as error:
        raise Failure(f"cannot start the editor '{shlex.join(editor)}' ({error.strerror or error}); "
                      "set $EDITOR to an installed editor, like EDITOR=nano", 1) from None


def _ask_edit_again() -> bool:
    """True for [e]dit again; [k]eep is the default, also when there is no answer (stdin closed)."""
    while True:
        try:
            answer = click.prompt("[e]dit again or [k]eep the previous version?", default="k",
                                  show_default=False)
        except click.Abort:
            return False
        choice = answer.strip().lower()[:1]
        if choice in ("e", "k"):
            return choice == "e"
