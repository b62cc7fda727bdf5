"""What the `tracker recategorize` tests share, on InfluxDB 1.x (test_recategorize.py) and 2.x
(test_recategorize_v2.py): days of records, the rules BEFORE and AFTER, what each gives, and runs killed part-way."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tracker import paths
from tracker.commands import cli
from tracker.events import default_pulsetime
from tracker.model import AWAY, STATE_ACTIVE, STATE_AWAY, UNCATEGORIZED, Record
from tracker.storage.history import HistoryWriter
from tracker.storage.outbox import Outbox

HOST, OTHER_HOST = "laptop", "desktop"
STEP = 10.0  # seconds per record
START = datetime(2024, 5, 6, 8, 0, tzinfo=timezone.utc)

BEFORE = """categories:
  Development: {score: 2, apps: [Code], domains: [github.com]}
  Communication: {score: 0, apps: [Slack]}
  Social: {score: -2, domains: [reddit.com]}
"""
# reddit.com becomes Learning; Slack's stand-ups become Meetings (a title rule); the rest stays.
AFTER = """categories:
  Development: {score: 2, apps: [Code], domains: [github.com]}
  Communication: {score: 0, apps: [Slack]}
  Meetings: {score: 1, titles: ['standup']}
  Learning: {score: 1, domains: [reddit.com]}
"""
# (app, activity, title, url, category before, category after, score after)
KINDS = [
    ("Code", "Code", "model.py — Code", None, "Development", "Development", 2.0),
    ("Firefox", "reddit.com", "r/python", "https://www.reddit.com/r/python", "Social", "Learning", 1.0),
    ("Slack", "Slack", "#standup | Acme", None, "Communication", "Meetings", 1.0),
    ("Slack", "Slack", "#general | Acme", None, "Communication", "Communication", 0.0),
    ("Firefox", "github.com", "tracker", "https://github.com/x/tracker", "Development", "Development", 2.0),
    ("Gimp", "Gimp", None, None, UNCATEGORIZED, UNCATEGORIZED, 0.0),
]
SCORES_BEFORE = {"Development": 2.0, "Communication": 0.0, "Social": -2.0, UNCATEGORIZED: 0.0}


def day_of_records(host: str = HOST, days: int = 1, per_stretch: int = 30, start: datetime = START) -> list[Record]:
    """Stretches of each kind in turn, an away stretch among them, over `days` days (a record every STEP s)."""
    records: list[Record] = []
    moment = int(start.timestamp() * 1000)
    for day in range(days):
        moment = int((start + timedelta(days=day)).timestamp() * 1000)
        for round_number in range(4):
            for app, activity, title, url, category, _, _ in KINDS:
                for _ in range(per_stretch):
                    records.append(Record(moment, STEP, host, app, activity, category, SCORES_BEFORE[category],
                                          title=title, url=url))
                    moment += int(STEP * 1000)
            if round_number == 1:  # away: stays away, whatever the rules
                for _ in range(per_stretch):
                    records.append(Record(moment, STEP, host, "Slack", "Slack", AWAY, 0.0, STATE_AWAY,
                                          title="#standup | Acme"))
                    moment += int(STEP * 1000)
    return records


def after(record: Record) -> str:
    """The category a record has under AFTER, computed here from KINDS (not by the code under test)."""
    if record.state != STATE_ACTIVE:
        return record.category
    return next(kind[5] for kind in KINDS if (kind[0], kind[2]) == (record.app, record.title))


def write_rules(text: str) -> None:
    paths.user_categories_file().parent.mkdir(parents=True, exist_ok=True)
    paths.user_categories_file().write_text(text, encoding="utf-8")


def record_locally(records: list[Record]) -> None:
    """As `tracker run` keeps them: merged into the history and committed to the outbox."""
    with HistoryWriter(paths.database_file(), default_pulsetime(STEP)) as history:
        for record in records:
            history.add(record)
    with Outbox(paths.database_file()) as outbox:
        outbox.append_many(records)


def tracker(*args: str, **environment: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=environment)
    return result.exit_code, result.output


def seconds_by(records: list[Record], key: Any = lambda r: r.category, active_only: bool = True) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for record in records:
        if record.state == STATE_ACTIVE or not active_only:
            totals[key(record)] += record.duration
    return dict(totals)


def report_by_category(since: str = "2024-05-01", until: str = "2024-06-30") -> dict[str, float]:
    code, output = tracker("report", "--since", since, "--until", until, "--json")
    assert code == 0, output
    return {row["name"]: row["seconds"] for row in json.loads(output)["rows"]}


def write_host(host: str) -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(f"host: {host}\n", encoding="utf-8")


def recorded_and_sent(records: list[Record], env: dict[str, str]) -> None:
    """Recorded as HOST under BEFORE, kept locally and sent to InfluxDB with `tracker sync`."""
    write_host(HOST)
    write_rules(BEFORE)
    record_locally(records)
    code, output = tracker("sync", **env)
    assert code == 0, output


# Kills: half at random moments, half once InfluxDB shows a part-way state (which three at least must catch), each
# kind in both directions (the rules swapped each round).
ROUNDS = 6


def killed_and_rerun(records: list[Record], env: dict[str, str], totals: Callable[[], tuple[float, int]],
                     shown_per_category: Callable[[], dict[str, float]], earliest: float = 0.0) -> None:
    """`tracker recategorize --all` killed at random moments (from `earliest` of a full run's time on) with the
    rules swapped each round, then run again: the same totals, and what InfluxDB shows is what the rules give."""
    total = totals()
    expected = {BEFORE: seconds_by(records), AFTER: seconds_by(records, after)}
    command = [str(Path(sys.executable).parent / "tracker"), "recategorize", "--all"]
    environment = {**os.environ, **env}

    start = time.monotonic()
    subprocess.run(command, env=environment, check=True, capture_output=True)
    write_rules(BEFORE)
    subprocess.run(command, env=environment, check=True, capture_output=True)
    full_run = (time.monotonic() - start) / 2
    print(f"a full run moving {sum(1 for r in records if after(r) != r.category)} points took {full_run:.2f} s")
    rng = random.Random(12)
    part_way = 0

    def is_part_way(shown: dict[str, float], previous: str, rules: str) -> bool:
        return shown != pytest.approx(expected[previous]) and shown != pytest.approx(expected[rules])

    for round_number in range(ROUNDS):
        previous, rules = (BEFORE, AFTER) if round_number % 2 == 0 else (AFTER, BEFORE)
        write_rules(rules)
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if round_number % 4 in (0, 3):  # at a random moment
            time.sleep(rng.uniform(earliest, 1.0) * full_run)
        else:  # once InfluxDB shows a part-way state: on a busy machine, random moments may all miss it
            while process.poll() is None and not is_part_way(shown_per_category(), previous, rules):
                time.sleep(0.005)
        process.kill()
        process.wait()
        # What InfluxDB shows part-way: never more time than recorded.
        assert totals()[0] <= total[0] + 1e-6
        part_way += is_part_way(shown_per_category(), previous, rules)
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert totals() == (pytest.approx(total[0]), total[1])
        assert shown_per_category() == pytest.approx(expected[rules]), f"round {round_number}"
        assert report_by_category() == pytest.approx(expected[rules])
    print(f"{part_way} of {ROUNDS} kills came part-way")
    assert part_way >= 3, "no kill came while InfluxDB was being corrected: nothing was tested"


def not_trackers_line(kind: str, record: Record) -> str:
    from tracker.lineprotocol import to_line
    from tracker.tasks.demo import demo_line

    return demo_line(record) if kind == "demo" else to_line(replace(record, app=""))
