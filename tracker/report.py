"""`tracker report` and `tracker categories uncategorized`: time from the local history, no InfluxDB needed."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from tracker.events import pulse_of
from tracker.history import History, Summary, Total
from tracker.model import UNCATEGORIZED
from tracker.timespec import human_duration, local_midnight, local_now

if TYPE_CHECKING:
    from rich.console import Console

TOP_ACTIVITIES = 10
UNCATEGORIZED_SHOWN = 20
# Uncategorized time worth a hint: enough minutes and enough of the whole to be worth a rule.
NOTABLE_UNCATEGORIZED_SECONDS = 10 * 60
NOTABLE_UNCATEGORIZED_SHARE = 0.05
NO_HISTORY = "No history yet: start recording with `tracker run`, then ask again."


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    by: str
    rows: list[Total]
    summary: Summary
    top_activities: list[Total]  # only for the default report, by category

    @property
    def total_seconds(self) -> float:
        return self.summary.active_seconds

    def share(self, total: Total) -> float:
        """Percent of the active time."""
        return 100.0 * total.seconds / self.total_seconds if self.total_seconds else 0.0

    @property
    def uncategorized_is_notable(self) -> bool:
        uncategorized = self.summary.uncategorized_seconds
        return (uncategorized >= NOTABLE_UNCATEGORIZED_SECONDS
                and uncategorized >= NOTABLE_UNCATEGORIZED_SHARE * self.total_seconds)


def build_report(history: History, since: datetime, until: datetime, by: str = "category",
                 top_activities: bool = False) -> Report:
    return Report(
        since=since, until=until, by=by,
        rows=history.totals(since, until, by),
        summary=history.summary(since, until),
        top_activities=history.totals(since, until, "activity")[:TOP_ACTIVITIES] if top_activities else [],
    )


def uncategorized_activities(history: History, since: datetime, until: datetime) -> list[Total]:
    """Activities in the Uncategorized category, the longest first."""
    return history.totals(since, until, "activity", category=UNCATEGORIZED)


# --- output ------------------------------------------------------------------------------------------


def report_json(report: Report) -> str:
    summary = report.summary
    document: dict[str, object] = {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "by": report.by,
        "total_seconds": round(report.total_seconds, 3),
        "away_seconds": round(summary.away_seconds, 3),
        "uncategorized_seconds": round(summary.uncategorized_seconds, 3),
        "pulse": None if summary.pulse is None else round(summary.pulse, 1),
        "rows": [_json_row(report, total) for total in report.rows],
    }
    if report.top_activities:
        document["top_activities"] = [_json_row(report, total) for total in report.top_activities]
    return json.dumps(document, indent=2, ensure_ascii=False)


def _json_row(report: Report, total: Total) -> dict[str, object]:
    row: dict[str, object] = {"name": total.name, "seconds": round(total.seconds, 3),
                              "share": round(report.share(total), 2),
                              "score": None if total.score is None else round(total.score, 3)}
    if total.detail is not None:
        row["app"] = total.detail
    return row


def report_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    with_app = report.by == "activity"
    writer.writerow([report.by, *(["app"] if with_app else []), "seconds", "share_percent", "score"])
    for total in report.rows:
        writer.writerow([total.name, *([total.detail] if with_app else []), f"{total.seconds:.3f}",
                         f"{report.share(total):.2f}", "" if total.score is None else f"{total.score:.3f}"])
    return out.getvalue()


def render_report(report: Report, console: Console, now: datetime | None = None) -> None:
    from rich.text import Text

    from tracker.display import score_style
    from tracker.events import score_of_pulse

    console.print(Text(describe_period(report.since, report.until, now or local_now()), style="bold"))
    if not report.rows:
        console.print("Nothing was recorded in this period.")
        return
    console.print(_totals_table(report, report.rows, report.by))
    if report.top_activities:
        console.print(_totals_table(report, report.top_activities, "activity", title="Top activities",
                                    footer=False))
    summary = report.summary
    line = Text()
    if summary.pulse is not None:
        line.append("Pulse ")
        line.append(f"{summary.pulse:.0f}", style=f"bold {score_style(score_of_pulse(summary.pulse))}")
        line.append(" / 100", style="dim")
    if summary.away_seconds >= 60:
        line.append(f"   Away {human_duration(summary.away_seconds)}", style="dim")
    console.print(line)
    if report.uncategorized_is_notable:
        console.print(Text(
            f"{human_duration(summary.uncategorized_seconds)} had no category: "
            "`tracker categories uncategorized` shows what to add.", style="yellow"))


_HEADINGS = {"category": "Category", "activity": "Activity", "app": "App", "hour": "Hour", "day": "Day"}


def _totals_table(report: Report, rows: list[Total], by: str, title: str | None = None, footer: bool = True):
    from rich.table import Table
    from rich.text import Text

    from tracker.display import bar, score_style

    table = Table(title=title, title_justify="left", title_style="bold", show_footer=footer,
                  box=None, padding=(0, 1), pad_edge=False)
    longest = max(total.seconds for total in rows)
    table.add_column(_HEADINGS[by], footer="Total", no_wrap=True, overflow="ellipsis", max_width=40)
    if by == "activity":
        table.add_column("App", style="dim", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("Time", footer=human_duration(report.total_seconds), justify="right", no_wrap=True)
    table.add_column("Share", footer="100%" if report.total_seconds else "", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    timeline = by in ("hour", "day")
    if timeline:
        table.add_column("Pulse", justify="right", no_wrap=True)
    for total in rows:
        name = _row_name(total.name, by)
        cells = [Text(name, style="" if timeline else score_style(total.score))]
        if by == "activity":
            cells.append(total.detail or "")
        cells += [human_duration(total.seconds), f"{report.share(total):.0f}%",
                  Text(bar(total.seconds / longest), style=score_style(total.score))]
        if timeline:
            cells.append(f"{pulse_of(total.score or 0.0):.0f}")
        table.add_row(*cells)
    return table


def _row_name(name: str, by: str) -> str:
    if by == "hour":
        return f"{name}:00"
    if by == "day":
        return f"{date.fromisoformat(name):%a %Y-%m-%d}"
    return name


def describe_period(since: datetime, until: datetime, now: datetime) -> str:
    """`Today`, `Yesterday`, `Mon 06 May 2024`, `Mon 06 May 2024 – Sun 12 May 2024`, or with times."""
    today = local_midnight(now.date())
    ends_now = until >= now - timedelta(minutes=1)  # "now" was read a moment before this
    if since == today and ends_now:
        return "Today"
    if since == local_midnight(now.date() - timedelta(days=1)) and until == today:
        return "Yesterday"

    def moment(value: datetime, is_end: bool) -> str:
        value = value.astimezone()
        if value == local_midnight(value.date()):
            return f"{(value - timedelta(days=1) if is_end else value):%a %d %b %Y}"
        return f"{value:%a %d %b %Y %H:%M}"

    start = moment(since, is_end=False)
    end = "now" if ends_now else moment(until, is_end=True)
    return start if start == end else f"{start} – {end}"


def render_uncategorized(activities: list[Total], since: datetime, until: datetime, console: Console,
                         now: datetime | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    period = describe_period(since, until, now or local_now())
    if not activities:
        console.print(f"{period}: every activity had a category. Nothing to add.")
        return
    total = sum(activity.seconds for activity in activities)
    console.print(Text(f"{period}: {human_duration(total)} without a category", style="bold"))
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    table.add_column("Activity", no_wrap=True, overflow="ellipsis", max_width=48)
    table.add_column("App", style="dim", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("Time", justify="right", no_wrap=True)
    for activity in activities[:UNCATEGORIZED_SHOWN]:
        table.add_row(activity.name, activity.detail or "", human_duration(activity.seconds))
    console.print(table)
    hidden = len(activities) - UNCATEGORIZED_SHOWN
    if hidden > 0:
        console.print(f"… and {hidden} more.", style="dim")
    console.print(f"Add rules for them with `tracker categories edit` (e.g. for {activities[0].name}).")


# --- the commands ------------------------------------------------------------------------------------


def open_history() -> History | None:
    """The local history, or None when nothing was ever recorded (without creating the database)."""
    from tracker.paths import database_file

    path = database_file()
    if not path.exists():
        return None
    history = History(path)
    if history.is_empty():
        history.close()
        return None
    return history


def run_report(since: datetime, until: datetime, by: str, output: str, console: Console | None = None) -> int:
    """Print a report as `output` (table, json or csv); the exit code."""
    history = open_history()
    if history is None:
        if output == "table":
            _console(console).print(NO_HISTORY)
            return 0
        empty = Report(since, until, by, [], Summary(0.0, 0.0, 0.0, None), [])
        print(report_json(empty) if output == "json" else report_csv(empty), end="\n" if output == "json" else "")
        return 0
    with history:
        report = build_report(history, since, until, by, top_activities=by == "category")
    if output == "json":
        print(report_json(report))
    elif output == "csv":
        print(report_csv(report), end="")
    else:
        render_report(report, _console(console))
    return 0


def run_uncategorized(since: datetime, until: datetime, console: Console | None = None) -> int:
    history = open_history()
    if history is None:
        _console(console).print(NO_HISTORY)
        return 0
    with history:
        activities = uncategorized_activities(history, since, until)
    render_uncategorized(activities, since, until, _console(console))
    return 0


def _console(console: Console | None) -> Console:
    if console is not None:
        return console
    from rich.console import Console

    return Console(highlight=False)
