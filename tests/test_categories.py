"""`tracker categories`: list, test, path, validate and edit, driven as a user would, with a scripted editor."""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tracker import paths
from tracker.categories.files import bundled_categories_path
from tracker.commands import cli
from tracker.ui.colours import score_label, score_style

BUNDLED = bundled_categories_path().read_text(encoding="utf-8")
MINE = "categories:\n  Mine:\n    score: 1\n    apps: [Mail, Notes]\n  Fun:\n    score: -1.5\n    domains: [x.com]\n"
GARDENING = "  Gardening:\n    score: 1.5\n    apps: [Gardener]\n"

# A stand-in for $EDITOR: each run performs the next step from a JSON list (append text, replace text,
# exit with a status), so a test can script what the "user" does in the editor, run after run.
EDITOR_SCRIPT = """\
import json, pathlib, sys
steps_file, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
steps = json.loads(steps_file.read_text())
step = steps.pop(0)
steps_file.write_text(json.dumps(steps))
text = target.read_text() + step.get("append", "")
if "replace" in step:
    text = text.replace(*step["replace"])
target.write_text(text)
sys.exit(step.get("exit", 0))
"""


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["categories", *args], input=input)


def bundled_line(fragment: str) -> int:
    return next(number for number, line in enumerate(BUNDLED.splitlines(), 1) if fragment in line)


@pytest.fixture
def editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Script the editor's runs; returns the steps file, empty once every step has run."""

    def script(*steps: dict) -> Path:
        program = tmp_path / "editor.py"
        program.write_text(EDITOR_SCRIPT)
        steps_file = tmp_path / "steps.json"
        steps_file.write_text(json.dumps(steps))
        monkeypatch.delenv("VISUAL", raising=False)
        monkeypatch.setenv("EDITOR", shlex.join([sys.executable, str(program), str(steps_file)]))
        return steps_file

    return script


def steps_left(steps_file: Path) -> list:
    return json.loads(steps_file.read_text())


def category_names() -> list[str]:
    return [category["name"] for category in json.loads(run("list", "--json").output)["categories"]]


# -- list, test, path, validate ----------------------------------------------------------------------

def test_list_json_shows_the_bundled_categories_and_their_rules() -> None:
    result = run("list", "--json")
    assert result.exit_code == 0
    listed = json.loads(result.output)
    assert listed["file"] == str(bundled_categories_path())
    development = next(category for category in listed["categories"] if category["name"] == "Development")
    assert development["score"] == 2
    assert "Xcode" in development["apps"] and "github.com" in development["domains"]


def test_list_shows_a_table_of_categories_scores_and_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich's width: one row per rule kind, unwrapped
    paths.write_private(paths.user_categories_file(), MINE)
    result = run("list")
    assert result.exit_code == 0
    assert "Mine" in result.output and "+1" in result.output and "apps: Mail, Notes" in result.output
    assert "Fun" in result.output and "-1.5" in result.output and "domains: x.com" in result.output
    assert f"{paths.user_categories_file()}: 3 rules" in result.output


def test_list_shortens_long_rule_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = run("list")
    assert "apps: Terminal, iTerm2, Warp, Ghostty, … (+" in result.output


def test_score_colours_run_from_red_through_yellow_to_green() -> None:
    assert [score_style(score) for score in (-2, -1, -0.4, 0, 0.5, 1.4, 2)] == [
        "bold red", "red", "yellow", "yellow", "green", "green", "bold green"]
    assert score_label(-1.5) == "very distracting" and score_label(1) == "productive"


def test_test_names_category_score_activity_and_deciding_rule_with_file_and_line() -> None:
    result = run("test", "Safari", "--url", "https://old.reddit.com/r/python")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "Social, score -2 (very distracting)",
        "  activity: old.reddit.com",
        f"  rule:     domain reddit.com (categories.yaml, line {bundled_line('[reddit.com,')})",
        f"  rules in: {bundled_categories_path()}",
    ]


def test_test_uses_the_title_when_there_is_no_url() -> None:
    result = run("test", "firefox", "--title", "Issues · rust-lang/rust · GitHub — Mozilla Firefox")
    assert result.output.startswith("Development, score 2 (very productive)\n  activity: firefox\n")
    assert f"(categories.yaml, line {bundled_line('(GitHub|GitLab')})" in result.output


def test_test_says_when_nothing_matched() -> None:
    result = run("test", "Some Unknown App", "--title", "whatever")
    assert result.exit_code == 0
    assert result.output.splitlines()[:2] == [
        "No rule matched: Uncategorized, score 0.", "  activity: Some Unknown App"]


def test_path_prints_the_bundled_file_then_the_users_once_it_exists() -> None:
    result = run("path")
    assert result.stdout == f"{bundled_categories_path()}\n"
    assert "bundled default" in result.stderr
    paths.write_private(paths.user_categories_file(), MINE)
    result = run("path")
    assert result.stdout == f"{paths.user_categories_file()}\n"
    assert "Your own file" in result.stderr


def test_validate_counts_categories_and_rules() -> None:
    paths.write_private(paths.user_categories_file(), MINE)
    result = run("validate")
    assert result.exit_code == 0
    assert result.output == f"OK: 2 categories, 3 rules ({paths.user_categories_file()})\n"


def test_validate_a_broken_file_prints_file_line_and_problem_and_exits_1(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(MINE.replace("-1.5", "-7"))
    result = run("validate", str(broken))
    assert result.exit_code == 1
    assert result.output == f"Error: {broken}, line 6: score -7 is outside -2..2\n"


def test_every_command_refuses_a_broken_users_file() -> None:
    paths.write_private(paths.user_categories_file(), "categories:\n  Away:\n    score: 0\n")
    for args in (["list"], ["list", "--json"], ["test", "Mail"], ["validate"]):
        result = run(*args)
        assert result.exit_code == 1
        assert "line 2: the category name 'Away' is reserved for idle time" in result.output


def test_a_changed_file_shows_at_once_even_with_the_same_size_and_time() -> None:
    # list and test remember the rules they read (in the data directory), by the file's text.
    user_file = paths.user_categories_file()
    paths.write_private(user_file, MINE + "    titles: ['^Inbox']\n")
    before = user_file.stat()
    assert "apps: Mail, Notes" in run("list").output
    assert run("test", "Browser", "--title", "Inbox (3)").output.startswith("Fun, score -1.5")
    paths.write_private(user_file, MINE.replace("Notes", "Notez") + "    titles: ['^Outbx']\n")
    os.utime(user_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert user_file.stat().st_size == before.st_size
    assert "apps: Mail, Notez" in run("list").output
    assert run("test", "Notez").output.startswith("Mine, score 1 (productive)")
    assert run("test", "Browser", "--title", "Inbox (3)").output.startswith("No rule matched")
    assert run("test", "Browser", "--title", "Outbx").output.startswith("Fun, score -1.5")


def test_a_file_broken_after_a_good_one_is_refused() -> None:
    user_file = paths.user_categories_file()
    paths.write_private(user_file, MINE)
    assert run("list").exit_code == 0 and run("test", "Mail").exit_code == 0
    paths.write_private(user_file, MINE.replace("-1.5", "-7"))
    for args in (["list"], ["test", "Mail"], ["validate"]):
        result = run(*args)
        assert result.exit_code == 1
        assert result.output == f"Error: {user_file}, line 6: score -7 is outside -2..2\n"


# -- edit --------------------------------------------------------------------------------------------

def test_a_valid_edit_starts_from_the_defaults_and_is_saved_privately(editor: Callable[..., Path]) -> None:
    steps = editor({"append": GARDENING})
    result = run("edit")
    assert result.exit_code == 0, result.output
    user_file = paths.user_categories_file()
    assert result.output.startswith(f"Saved {user_file}: 14 categories, ")
    assert user_file.read_text() == BUNDLED + GARDENING
    assert stat.S_IMODE(user_file.stat().st_mode) == 0o600
    assert "Gardening" in category_names()
    assert run("test", "Gardener").output.startswith("Gardening, score 1.5 (very productive)")
    assert steps_left(steps) == []


def test_an_invalid_edit_then_keep_leaves_the_file_as_it_was(editor: Callable[..., Path]) -> None:
    user_file = paths.user_categories_file()
    paths.write_private(user_file, MINE)
    editor({"append": "  Broken:\n    score: 5\n"})
    result = run("edit", input="k\n")
    assert result.exit_code == 1
    assert f"Error: {user_file}, line 9: score 5 is outside -2..2" in result.output
    assert "[e]dit again or [k]eep the previous version?" in result.output
    assert f"Kept {user_file}." in result.output
    assert user_file.read_text() == MINE
    rejected = user_file.with_name("categories.rejected.yaml")
    assert f"Your edit is in {rejected}." in result.output
    assert rejected.read_text() == MINE + "  Broken:\n    score: 5\n"


def test_an_invalid_edit_then_edit_again_with_a_fix_is_saved(editor: Callable[..., Path]) -> None:
    paths.write_private(paths.user_categories_file(), MINE)
    steps = editor({"append": "  Broken:\n    score: 5\n"}, {"replace": ["score: 5", "score: 0.5"]})
    result = run("edit", input="e\n")
    assert result.exit_code == 0, result.output
    assert "line 9: score 5 is outside -2..2" in result.output
    assert "Saved " in result.output and ": 3 categories, 3 rules." in result.output
    assert category_names() == ["Mine", "Fun", "Broken"]
    assert steps_left(steps) == []


def test_without_an_answer_an_invalid_edit_is_not_kept(editor: Callable[..., Path]) -> None:
    steps = editor({"append": "  Away:\n    score: 0\n"})
    result = run("edit", input="")
    assert result.exit_code == 1
    assert "is reserved for idle time" in result.output and "Kept the bundled defaults." in result.output
    assert not paths.user_categories_file().exists()
    assert steps_left(steps) == []


def test_an_answer_other_than_e_or_k_is_asked_again(editor: Callable[..., Path]) -> None:
    editor({"append": "  Broken:\n    score: 5\n"})
    result = run("edit", input="maybe\nk\n")
    assert result.exit_code == 1
    assert result.output.count("[e]dit again or [k]eep the previous version?") == 2


def test_an_abandoned_edit_is_not_put_in_use_but_kept_aside(editor: Callable[..., Path]) -> None:
    editor({"append": GARDENING, "exit": 1})
    result = run("edit")
    assert result.exit_code == 1
    rejected = paths.user_categories_file().with_name("categories.rejected.yaml")
    assert result.stderr == (f"Error: the editor exited with status 1, so your edit was not put in use; it is in "
                             f"{rejected}.\nKept the bundled defaults.\n")
    assert result.stdout == ""
    assert not paths.user_categories_file().exists()
    assert "Gardening" not in category_names()
    assert rejected.read_text().endswith(GARDENING)


def test_an_abandoned_edit_without_changes_saves_nothing(editor: Callable[..., Path]) -> None:
    editor({"exit": 1})
    result = run("edit")
    assert result.exit_code == 1
    assert result.stderr == "Error: the editor exited with status 1; nothing was saved.\nKept the bundled defaults.\n"
    assert not paths.user_categories_file().exists()
    assert not paths.user_categories_file().with_name("categories.rejected.yaml").exists()


def test_an_unchanged_edit_saves_nothing(editor: Callable[..., Path]) -> None:
    paths.write_private(paths.user_categories_file(), MINE)
    editor({})
    result = run("edit")
    assert result.exit_code == 0
    assert result.output == f"No changes; kept {paths.user_categories_file()}.\n"
    assert paths.user_categories_file().read_text() == MINE


def test_a_missing_editor_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "no-such-editor-anywhere --wait")
    result = run("edit")
    assert result.exit_code == 1
    assert "cannot start the editor 'no-such-editor-anywhere --wait'" in result.output
    assert not paths.user_categories_file().exists()
