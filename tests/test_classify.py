"""Classification rules: precedence, matching, validation with line numbers, hot reload, the bundled file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tracker import paths
from tracker.categories.files import CategoriesWatcher, active_categories_path, bundled_categories_path, load_categories
from tracker.categories.rules import Categories, CategoriesError
from tracker.model import UNCATEGORIZED, Sample, utc_now
from tracker.paths import display_path

RULES = """\
categories:
  Development:
    score: 2
    apps: [Code, iTerm2]
    domains: [github.com, docs.python.org]
    titles: ['\\bvim\\b']
  Reading:
    score: 1.5
    domains: [python.org]
    titles: ['manual', 'vim']
  Social:
    score: -2
    apps: [Slack]
    domains: [reddit.com, x.com]
"""


def write(path: Path, text: str) -> Path:
    paths.write_private(path, textwrap.dedent(text))
    return path


@pytest.fixture
def rules(tmp_path: Path) -> Categories:
    return load_categories(write(tmp_path / "categories.yaml", RULES))


def classify(rules: Categories, app: str, title: str | None = None, url: str | None = None):
    return rules.classify(Sample(time=utc_now(), app=app, title=title, url=url))


def test_an_app_rule_names_category_score_rule_file_and_line(rules: Categories) -> None:
    match = classify(rules, "code")
    assert (match.category, match.score, match.activity) == ("Development", 2.0, "code")
    assert match.rule == "app Code (categories.yaml, line 4)"
    assert (match.file, match.line) == (rules.file, 4)


def test_a_domain_beats_a_title_which_beats_an_app(rules: Categories) -> None:
    # Slack (an app rule) showing a vim title (a title rule) on reddit.com (a domain rule).
    assert classify(rules, "Slack", "vim", "https://reddit.com/r/vim").rule.startswith("domain reddit.com")
    assert classify(rules, "Slack", "editing with vim").rule.startswith("title '\\bvim\\b'")
    assert classify(rules, "Slack", "general").rule.startswith("app Slack")


def test_domains_match_themselves_and_subdomains_but_not_lookalikes(rules: Categories) -> None:
    assert classify(rules, "Safari", url="https://old.reddit.com/r/python").category == "Social"
    assert classify(rules, "Safari", url="https://www.reddit.com/").activity == "reddit.com"
    assert classify(rules, "Safari", url="https://notreddit.com/").category == UNCATEGORIZED
    assert classify(rules, "Safari", url="https://fox.com/").category == UNCATEGORIZED
    assert classify(rules, "Safari", url="https://X.COM/home").category == "Social"


def test_the_longest_domain_wins(rules: Categories) -> None:
    assert classify(rules, "Safari", url="https://docs.python.org/3/").category == "Development"
    assert classify(rules, "Safari", url="https://python.org/").category == "Reading"
    assert classify(rules, "Safari", url="https://wiki.python.org/").category == "Reading"


def test_the_first_title_in_the_file_wins_and_titles_are_searched_case_insensitively(rules: Categories) -> None:
    assert classify(rules, "Preview", "VIM manual").category == "Development"
    assert classify(rules, "Preview", "The Manual").category == "Reading"
    # \bvim\b is not in "Vimeo", but the later, looser 'vim' is.
    assert classify(rules, "Preview", "Vimeo").rule.startswith("title 'vim' (categories.yaml, line 10)")


def test_nothing_matched_is_uncategorized_with_score_zero(rules: Categories) -> None:
    match = classify(rules, "Unheard Of", "A title", "https://example.org/")
    assert (match.category, match.score, match.activity) == (UNCATEGORIZED, 0.0, "example.org")
    assert (match.rule, match.file, match.line) == (None, None, None)


def test_a_url_without_a_host_leaves_the_app_as_activity(rules: Categories) -> None:
    match = classify(rules, "iTerm2", url="file:///Users/me/notes.txt")
    assert (match.activity, match.category) == ("iTerm2", "Development")


def test_the_users_file_replaces_the_bundled_one_whole(tracker_home: Path) -> None:
    assert active_categories_path() == bundled_categories_path()
    user_file = write(paths.user_categories_file(), "categories:\n  Mine:\n    score: 1\n    apps: [Mail]\n")
    rules = load_categories()
    assert active_categories_path() == user_file
    assert [category.name for category in rules.categories] == ["Mine"]
    assert classify(rules, "Safari", url="https://github.com/").category == UNCATEGORIZED


INVALID = [
    ("categories:\n  Dev:\n    score: 5\n", 3, "score 5 is outside -2..2"),
    ("categories:\n  Dev:\n    score: -2.5\n", 3, "score -2.5 is outside -2..2"),
    ("categories:\n  Dev:\n    score: high\n", 3, "score 'high' should be a number from -2 to 2"),
    ("categories:\n  Dev:\n    score: true\n", 3, "score 'true' should be a number from -2 to 2"),
    ("categories:\n  Dev:\n    apps: [Code]\n", 2, "category Dev has no score (a number from -2 to 2)"),
    ("categories:\n  Dev:\n    score: 1\n    app: [Code]\n", 4,
     "unknown key 'app' in category Dev (did you mean 'apps'?)"),
    ("categorys:\n  Dev:\n    score: 1\n", 1,
     "unknown key 'categorys' at the top of the file (did you mean 'categories'?)"),
    ("categories:\n  Dev:\n    score: 1\n    apps: Code\n", 4,
     "apps in category Dev should be a list, like apps: [one, two]"),
    ("categories:\n  Dev:\n    score: 1\n    apps: [[Code]]\n", 4, "each entry of apps should be plain text"),
    ("categories:\n  Dev:\n    score: 1\n\n    titles:\n      - 'ok'\n      - '[unclosed'\n", 7,
     "title regex '[unclosed' is invalid: missing ] in '[unclosed'"),
    ("categories:\n  Dev:\n    score: 1\n    titles: ['x|']\n", 4, "title regex 'x|' matches every title"),
    ("categories:\n  Dev:\n    score: 1\n    titles: [\"\\bvim\\b\"]\n", 4,
     "title regex '\\x08vim\\x08' contains a control character; write regexes in single quotes, like '\\bvim\\b'"),
    ("categories:\n  Dev:\n    score: 1\n  Social:\n    score: -1\n  Dev:\n    score: 2\n", 6,
     "category Dev is defined twice (first on line 2)"),
    ("categories:\n  away:\n    score: 0\n", 2,
     "the category name 'away' is reserved for idle time; pick another name"),
    ("categories:\n  Uncategorized:\n    score: 0\n", 2,
     "the category name 'Uncategorized' is reserved for samples no rule matches; pick another name"),
    ("categories:\n  Dev:\n    score: 1\n    apps: [Code]\n  Other:\n    score: 0\n    apps: [code]\n", 7,
     "app code is already listed in Dev on line 4"),
    ("categories:\n  A:\n    score: 1\n    domains: [reddit.com]\n  B:\n    score: 0\n    domains: [www.Reddit.com]\n",
     7, "domain www.Reddit.com is already listed in A on line 4"),
    ("categories:\n  A:\n    score: 1\n    domains: ['https://reddit.com/']\n", 4,
     "domain 'https://reddit.com/' should be a bare host name like example.com"),
    ("categories:\n  A:\n    score: 1\n    domains: ['*.reddit.com']\n", 4,
     "domain '*.reddit.com' has a wildcard, but domains match their subdomains already: write 'reddit.com'"),
    ("categories:\n  A:\n    score: 1\n    score: 2\n", 4, "key 'score' appears twice in category A (first on line 3)"),
    ("categories:\n  A: 1\n", 2, "category A should be a mapping with a score and apps, domains or titles"),
    ("categories: [A, B]\n", 1, "'categories' should map category names to a score and rules"),
    ("- A\n- B\n", 1, "the file should be a mapping that starts with 'categories:'"),
    ("# nothing yet\n", 1, "the file is empty; it should start with 'categories:'"),
    ("other: 1\n", 1, "unknown key 'other' at the top of the file (expected categories)"),
    ("categories:\n  Dev:\n    score: 1\n   apps: [Code]\n", 4, "YAML syntax error: "),
    ("categories:\n  Dev:\n    score: 1\n    apps: [Code\n", 5, "YAML syntax error: "),
]


@pytest.mark.parametrize(("text", "line", "problem"), INVALID)
def test_an_invalid_file_is_refused_naming_file_line_and_problem(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    file = write(tmp_path / "categories.yaml", text)
    with pytest.raises(CategoriesError) as raised:
        load_categories(file)
    assert str(raised.value).startswith(f"{display_path(file)}, line {line}: {problem}")
    assert (raised.value.file, raised.value.line) == (file, line)


def test_a_missing_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(CategoriesError, match=r"nowhere\.yaml: the file does not exist; check the path$"):
        load_categories(tmp_path / "nowhere.yaml")


def test_a_path_under_home_is_shown_with_a_tilde() -> None:
    assert display_path(Path.home() / ".config" / "tracker" / "categories.yaml") == (
        "~/.config/tracker/categories.yaml"
    )


# -- hot reload ------------------------------------------------------------------------------------

def test_the_watcher_picks_up_a_valid_change(tmp_path: Path) -> None:
    file = write(tmp_path / "categories.yaml", RULES)
    errors: list[str] = []
    watcher = CategoriesWatcher(file, errors.append, check_every=0)
    assert classify(watcher.current, "Slack").category == "Social"
    write(file, RULES.replace("Social:", "Chat:"))
    assert classify(watcher.current, "Slack").category == "Chat"
    assert errors == []


def test_the_watcher_reports_an_invalid_change_once_and_keeps_the_last_good_rules(tmp_path: Path) -> None:
    file = write(tmp_path / "categories.yaml", RULES)
    errors: list[str] = []
    watcher = CategoriesWatcher(file, errors.append, check_every=0)
    write(file, RULES.replace("score: -2", "score: -3"))
    for _ in range(3):
        assert classify(watcher.current, "Slack").category == "Social"
    assert errors == [f"{display_path(file)}, line 12: score -3 is outside -2..2"]
    write(file, RULES.replace("score: -2", "score: -1"))
    assert classify(watcher.current, "Slack").score == -1.0
    assert len(errors) == 1


def test_the_watcher_checks_no_more_often_than_asked(tmp_path: Path) -> None:
    file = write(tmp_path / "categories.yaml", RULES)
    watcher = CategoriesWatcher(file, lambda message: None, check_every=3600)
    write(file, RULES.replace("Social:", "Chat:"))
    assert classify(watcher.current, "Slack").category == "Social"


def test_the_watcher_notices_the_users_file_appearing_and_disappearing() -> None:
    watcher = CategoriesWatcher(None, lambda message: None, check_every=0)
    assert watcher.current.file == bundled_categories_path()
    user_file = write(paths.user_categories_file(), RULES)
    assert watcher.current.file == user_file
    assert classify(watcher.current, "Code").rule == "app Code (categories.yaml, line 4)"
    user_file.unlink()
    assert watcher.current.file == bundled_categories_path()


def test_an_invalid_users_file_at_start_is_reported_and_the_defaults_used() -> None:
    write(paths.user_categories_file(), "categories:\n  Dev:\n    score: 9\n")
    errors: list[str] = []
    watcher = CategoriesWatcher(None, errors.append)
    assert watcher.current.file == bundled_categories_path()
    assert len(errors) == 1 and errors[0].endswith(", line 3: score 9 is outside -2..2")


# -- the bundled defaults ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundled() -> Categories:
    return load_categories(bundled_categories_path())


def test_the_bundled_file_loads_with_at_least_300_rules_in_the_promised_categories(bundled: Categories) -> None:
    assert bundled.rule_count >= 300
    names = {category.name for category in bundled.categories}
    assert names >= {"Development", "Writing", "Communication", "Design", "Productivity",
                     "Reference & Learning", "Business", "Entertainment", "Social", "News", "Shopping",
                     "Utilities"}


def test_the_top_level_categories_yaml_is_the_bundled_file_itself_not_a_link() -> None:
    top = Path(__file__).resolve().parents[1] / "categories.yaml"
    assert not top.is_symlink() and top.is_file()
    # From a checkout (an editable install) the bundled rules are this file; the wheel carries a copy of it
    # (tests/test_packaging.py).
    assert bundled_categories_path().resolve() == top


@pytest.mark.parametrize(("app", "category"), [
    ("Safari", "Browsing"), ("Google Chrome", "Browsing"), ("Mail", "Communication"),
    ("Slack", "Communication"), ("zoom.us", "Communication"), ("Xcode", "Development"),
    ("Finder", "Utilities"), ("Notes", "Productivity"), ("Microsoft Word", "Writing"), ("Figma", "Design"),
    ("Spotify", "Entertainment"), ("iTerm2", "Development"), ("Terminal", "Development"),
    # Linux WM_CLASS class names, in either case
    ("Code", "Development"), ("code", "Development"), ("firefox", "Browsing"), ("Firefox", "Browsing"),
    ("Google-chrome", "Browsing"), ("google-chrome", "Browsing"), ("gnome-terminal-server", "Development"),
    ("Gnome-terminal", "Development"), ("org.gnome.Nautilus", "Utilities"), ("jetbrains-idea", "Development"),
    ("discord", "Communication"), ("Thunderbird", "Communication"), ("libreoffice-writer", "Writing"),
    ("Gimp", "Design"), ("Inkscape", "Design"), ("kitty", "Development"), ("Alacritty", "Development"),
    ("XTerm", "Development"), ("Emacs", "Development"),
])
def test_common_apps_have_a_sensible_category(bundled: Categories, app: str, category: str) -> None:
    assert classify(bundled, app).category == category


def test_browsers_without_a_url_are_neutral(bundled: Categories) -> None:
    assert classify(bundled, "Firefox", "New Tab").score == 0


@pytest.mark.parametrize(("app", "title", "url", "category"), [
    # The Slack app and slack.com in a browser are the same thing.
    ("Slack", None, None, "Communication"),
    ("Safari", None, "https://app.slack.com/client/T01", "Communication"),
    # x.com is not fox.com, nor any other name ending in x.com.
    ("Safari", None, "https://x.com/home", "Social"),
    ("Safari", None, "https://fox.com/", "Entertainment"),
    ("Safari", None, "https://dropbox.com/", "Productivity"),
    # Longest domain: AWS is work, amazon.com shopping; Gmail is mail, google.com search.
    ("Safari", None, "https://eu-west-1.console.aws.amazon.com/ec2", "Development"),
    ("Safari", None, "https://www.amazon.com/dp/B0", "Shopping"),
    ("Safari", None, "https://mail.google.com/mail/u/0", "Communication"),
    ("Safari", None, "https://www.google.com/search?q=x", "Reference & Learning"),
    # vim is not Vimeo.
    ("XTerm", "vim notes.txt", None, "Development"),
    ("firefox", "Vimeo — Mozilla Firefox", None, "Browsing"),
    ("firefox", "Cats on Vimeo — Mozilla Firefox", None, "Entertainment"),
    # Site names count only where browsers put them, not in an email's subject.
    ("Mail", "Your YouTube Premium receipt", None, "Communication"),
    ("firefox", "Lo-fi beats - YouTube — Mozilla Firefox", None, "Entertainment"),
    ("Google-chrome", "Inbox (3) - me@example.com - Gmail - Google Chrome", None, "Communication"),
    ("Notes", "Chain mail and other scams", None, "Productivity"),
    ("firefox", "Issues · rust-lang/rust · GitHub — Mozilla Firefox", None, "Development"),
    ("firefox", "Home / X — Mozilla Firefox", None, "Social"),
    ("firefox", "Chapter 3 - X-rays — Mozilla Firefox", None, "Browsing"),
    ("firefox", "Rust is great : r/rust — Mozilla Firefox", None, "Social"),
])
def test_bundled_rules_avoid_over_matching(
    bundled: Categories, app: str, title: str | None, url: str | None, category: str
) -> None:
    assert classify(bundled, app, title, url).category == category
