"""What `tracker outbox`, `status`, `report` and `categories uncategorized` show: text, JSON, CSV and rich tables.

The domain modules return data; these functions turn it into what the CLI prints. Rich is imported inside
the functions that draw tables, so that commands printing text or JSON do not pay for it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.timespec import human_ago, human_duration, local_midnight, local_now

# Types only: each command imports the one domain module it needs, not the others' (nor rich) with this one.
if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from tracker.interchange.importing import ImportResult
    from tracker.recording.runstate import ProcessVitals, RunnerState, ServicePermissions, StatusSnapshot
    from tracker.storage.outbox import OutboxStats
    from tracker.storage.queries import Report, Total
    from tracker.tasks.doctor import Check
    from tracker.tasks.recategorize import Outcome as RecategorizeOutcome
    from tracker.tasks.service import Plan, ServiceState

NO_HISTORY = "No history yet: start recording with `tracker run`, then ask again."
UNCATEGORIZED_SHOWN = 20
RETRY_HINT = "`tracker outbox --retry-quarantined` puts them back in the queue, to send them again"


# --- tracker outbox ------------------------------------------------------------------------------------


def outbox_text(stats: OutboxStats, path: Path) -> str:
    """`tracker outbox` as plain text."""
    from tracker.redact import printable  # what a server said, stored by an older tracker perhaps
    from tracker.wording import lost_text, samples

    lines = [f"Outbox:        {path}"]
    if stats.waiting:
        other = f" and {_vitals_points(stats.waiting_other)}" if stats.waiting_other else ""
        lines.append(f"Waiting:       {samples(stats.waiting_samples)}{other}, the oldest from"
                     f" {_local(stats.oldest_waiting)}")
    else:
        lines.append("Waiting:       nothing")
    if stats.last_attempt is not None:
        lines.append(f"Last send:     {_local(stats.last_attempt)}: {printable(stats.last_result or '')}")
        if stats.last_success is not None and stats.last_success != stats.last_attempt:
            lines.append(f"Last success:  {_local(stats.last_success)}")
    else:
        lines.append("Last send:     never")
    if stats.dropped:
        lines.append(f"Dropped:       {samples(stats.dropped)}: the outbox was full, so the oldest were dropped,"
                     " quarantined ones first")
    if stats.lost:
        lines.append(f"Lost:          {lost_text(stats.lost, stats.lost_seconds)} while the local database could"
                     " not be written (the disk was full or read-only)")
    if stats.clock_fixes:
        lines.append("Clock fix:     the samples sent while the clock was ahead move back in InfluxDB first;"
                     " nothing more is sent until then")
    if stats.recategorizations:
        asked = "one recategorisation waits" if stats.recategorizations == 1 else \
            f"{stats.recategorizations} recategorisations wait"
        lines.append(f"Recategorise:  {asked} for InfluxDB (made once everything waiting is sent)")
    if stats.quarantined_count:
        lines.append(f"Quarantined:   {samples(stats.quarantined_count)} the server refused for good:")
        for row in stats.quarantined:
            title = f" {row.record.title[:60]!r}" if row.record.title else ""
            lines.append(f"  {_local(row.record.time)}  {row.record.app}{title}: {printable(row.reason)}")
        if stats.quarantined_count > len(stats.quarantined):
            lines.append(f"  and {stats.quarantined_count - len(stats.quarantined)} more")
    if stats.quarantined_other:
        lines.append(f"Quarantined:   {_vitals_points(stats.quarantined_other)} the server refused for good")
    if stats.quarantined_count or stats.quarantined_other:
        lines.append(f"               {RETRY_HINT}")
    return "\n".join(lines)


def retried_text(released_samples: int, released_other: int) -> str:
    """What `tracker outbox --retry-quarantined` did."""
    from tracker.wording import samples

    if not released_samples and not released_other:
        return "Nothing is quarantined."
    parts = [samples(released_samples)] if released_samples else []
    parts += [_vitals_points(released_other)] if released_other else []
    return (f"Put {' and '.join(parts)} back in the queue: `tracker sync` sends them now, a running tracker"
            " within seconds.")


def _vitals_points(count: int) -> str:
    return f"{count} vitals point" + ("" if count == 1 else "s")


def outbox_json(stats: OutboxStats, path: Path) -> str:
    """`tracker outbox --json`: times in ISO 8601, UTC."""
    document = {
        "database": str(path),
        "waiting": stats.waiting,  # samples and vitals points
        "waiting_samples": stats.waiting_samples,
        "waiting_vitals": stats.waiting_other,
        "oldest_waiting": _iso(stats.oldest_waiting),
        "last_attempt": _iso(stats.last_attempt),
        "last_result": stats.last_result,
        "last_success": _iso(stats.last_success),
        "dropped": stats.dropped,
        "lost": stats.lost,
        "lost_seconds": stats.lost_seconds,
        "quarantined_count": stats.quarantined_count,
        "quarantined_vitals": stats.quarantined_other,
        "quarantined": [{"reason": row.reason, "quarantined_at": _iso(row.quarantined_at),
                         "time": _iso(row.record.time)} | asdict(row.record) for row in stats.quarantined],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _local(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- tracker status ------------------------------------------------------------------------------------


def status_json(state: RunnerState) -> str:
    """`tracker status --json`: the last status written is included even when the runner has stopped."""
    from tracker.recording.runstate import snapshot_document

    document: dict[str, object] = {"running": state.running, "data_dir": str(state.directory), "pid": state.pid}
    if state.vitals is not None:
        document.update(uptime_seconds=state.vitals.uptime_seconds, cpu_percent=state.vitals.cpu_percent,
                        memory_bytes=state.vitals.memory_bytes)
    document["status"] = None if state.snapshot is None else snapshot_document(state.snapshot)
    return json.dumps(document, indent=2)


def status_text(state: RunnerState) -> str:
    """`tracker status`: one line when the runner is not running, else its vitals and last status."""
    if state.pid is None:
        return _not_running_line(state.directory, state.snapshot)
    return _running_text(state.directory, state.pid, state.current, state.vitals)


def _not_running_line(directory: Path, snapshot: StatusSnapshot | None) -> str:
    line = f"tracker run is not running for {directory}."
    if snapshot is None:
        return line + " Start it with `tracker run`."
    last = snapshot.stopped_at or snapshot.written_at
    how = "stopped" if snapshot.stopped_at else "was last seen"
    when = f" {human_ago(_seconds_since(last))}" if last else ""
    text = f"{line} It {how}{when} (pid {snapshot.pid}, {snapshot.samples_taken:,} samples)."
    if snapshot.lost:
        from tracker.wording import lost_text

        lost = lost_text(snapshot.lost, snapshot.lost_seconds)
        text += f" It lost {lost} while the local database could not be written."
    return text


def _running_text(directory: Path, pid: int, snapshot: StatusSnapshot | None, vitals: ProcessVitals | None) -> str:
    from tracker.redact import printable
    from tracker.wording import lost_text

    lines = [f"tracker run is running for {directory} (pid {pid})"]
    rows: list[tuple[str, str]] = []
    if vitals is not None:
        rows += [("uptime", human_duration(vitals.uptime_seconds) if vitals.uptime_seconds is not None else "?"),
                 ("CPU", f"{vitals.cpu_percent:.1f}%" if vitals.cpu_percent is not None else "?"),
                 ("memory", f"{vitals.memory_bytes / 1e6:.1f} MB" if vitals.memory_bytes is not None else "?")]
    if snapshot is None:
        rows.append(("status", "not written yet (it is written every few seconds)"))
    else:
        rows += [("samples", f"{snapshot.samples_taken:,}"),
                 ("now", _current_activity(snapshot)),
                 ("waiting", f"{snapshot.waiting:,} samples to send"),
                 ("last send", human_ago(_seconds_since(snapshot.last_send)) if snapshot.last_send else "never"),
                 ("last error", printable(snapshot.last_error or "") or "none"),
                 *([("lost", f"{lost_text(snapshot.lost, snapshot.lost_seconds)} this run, while the local"
                              " database could not be written")] if snapshot.lost else []),
                 ("source", snapshot.source or "?"),
                 ("InfluxDB", snapshot.influx_url or "not configured: recording locally only"),
                 *_permission_rows(snapshot)]
        if snapshot.vitals:
            rows += _vitals_rows(snapshot.vitals)
    width = max(len(label) for label, _ in rows)
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines)


def _permission_rows(snapshot: StatusSnapshot) -> list[tuple[str, str]]:
    """One row per permission the run needed (macOS), after a row saying whom macOS granted them to."""
    if not snapshot.permissions:
        return []
    whose = ("the service's own program (`tracker service status` says where to change them)"
             if snapshot.started_by_service else "the app that started it (your terminal app), not the service")
    from tracker.redact import outward

    now = datetime.now(timezone.utc)
    # App names come from System Events, as the apps name their processes: shown through the one door.
    return [("granted to", whose), *(("permission", outward(each.said_at(now), None)) for each in snapshot.permissions)]


def _vitals_rows(vitals: dict[str, Any]) -> list[tuple[str, str]]:
    """The runner's own figures, as its `tracker` points carry them (see tracker.recording.vitals)."""
    def megabytes(name: str) -> str:
        value = vitals.get(name)
        return f"{value / 1e6:.1f} MB" if isinstance(value, int | float) else "?"

    memory = (megabytes("memory_bytes") + " resident" if vitals.get("memory_bytes") is not None
              else megabytes("memory_peak_bytes") + " resident at peak")
    requests = {name.removeprefix("requests_"): count for name, count in vitals.items()
                if name.startswith("requests_") and name != "requests_failed" and count}
    last_seconds, last_lines = vitals.get("last_send_seconds"), vitals.get("last_send_lines")
    from tracker.wording import unreadable_titles_text

    unreadable = vitals.get("unreadable_titles")
    return [
        ("CPU used", f"{vitals.get('cpu_seconds', 0):.1f} s since start"),
        ("memory (own)", memory),
        ("Python GC", f"{vitals.get('gc_collections', '?')} collections,"
                      f" {vitals.get('gc_tracked_objects', '?'):,} objects tracked"),
        ("threads, fds", f"{vitals.get('threads', '?')} threads, {vitals.get('open_fds', '?')} open files"),
        ("database", f"{megabytes('database_bytes')} + {megabytes('database_wal_bytes')} write-ahead log"),
        ("behind", f"{vitals.get('seconds_behind', 0):.0f} s (oldest waiting point)"),
        ("requests", ", ".join(f"{count} {result}" for result, count in requests.items()) or "none yet"),
        ("last request", f"{last_lines} lines in {last_seconds:.3f} s" if isinstance(last_seconds, float)
         else "none yet"),
        *([("titles unread", unreadable_titles_text(unreadable))] if isinstance(unreadable, int) and unreadable
          else []),
    ]



def _current_activity(snapshot: StatusSnapshot) -> str:
    if not snapshot.activity:
        return "nothing yet"
    text = snapshot.activity
    if snapshot.app and snapshot.app != snapshot.activity:
        text += f" ({snapshot.app})"
    if snapshot.category:
        text += f" · {snapshot.category}"
        if snapshot.score is not None:
            text += f" {snapshot.score:+g}"
    if snapshot.since:
        text += f" · for {human_duration(_seconds_since(snapshot.since))}"
    return text


def _seconds_since(moment: datetime) -> float:
    return max(0.0, (datetime.now(timezone.utc) - moment).total_seconds())


# --- tracker report ------------------------------------------------------------------------------------


def report_json(report: Report, goals: list[dict[str, object]] | None = None) -> str:
    """The report as JSON; `goals`, each goal's days or weeks in the period (see goalstext.report_goals_json)."""
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
    document["goals"] = goals or []
    return json.dumps(document, indent=2, ensure_ascii=False)


def _json_row(report: Report, total: Total) -> dict[str, object]:
    row: dict[str, object] = {"name": total.name, "seconds": round(total.seconds, 3),
                              "share": round(report.share(total), 2),
                              "score": None if total.score is None else round(total.score, 3)}
    if total.detail is not None:
        row["app"] = total.detail
    return row


def report_csv(report: Report) -> str:
    """One line per row, each ending in CRLF as RFC 4180 has it (so a CR in a name is quoted, not a line break),
    after a header line; names a spreadsheet would take for a
    formula start with an apostrophe (an app or site names itself)."""
    from tracker.interchange.export import spreadsheet_safe

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    with_app = report.by == "activity"
    writer.writerow([report.by, *(["app"] if with_app else []), "seconds", "share_percent", "score"])
    for total in report.rows:
        writer.writerow([spreadsheet_safe(total.name), *([spreadsheet_safe(total.detail)] if with_app else []),
                         f"{total.seconds:.3f}",
                         f"{report.share(total):.2f}", "" if total.score is None else f"{total.score:.3f}"])
    return out.getvalue()


def render_report(report: Report, console: Console, now: datetime | None = None) -> None:
    """Print the report's tables, pulse and uncategorized hint on `console`."""
    from rich.text import Text

    from tracker.events import score_of_pulse
    from tracker.ui.colours import score_style

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


def _totals_table(report: Report, rows: list[Total], by: str, title: str | None = None,
                  footer: bool = True) -> Table:
    from rich.table import Table
    from rich.text import Text

    from tracker.events import pulse_of
    from tracker.ui.colours import score_style
    from tracker.ui.live import bar

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
    # One row whose cells hold a line per total: the same layout as a row per total (every cell is one line,
    # no_wrap), at a fraction of the cost; rich takes ~0.3 ms a row, too long for a year of days.
    cells = [Text() for _ in table.columns]

    def add_line(column: int, text: str, style: str = "") -> None:
        if cells[column]:
            cells[column].append("\n")
        cells[column].append(text.replace("\n", " "), style=style)  # a newline would shift the rows below

    for total in rows:
        column = iter(range(len(cells)))
        add_line(next(column), _row_name(total.name, by), "" if timeline else score_style(total.score))
        if by == "activity":
            add_line(next(column), total.detail or "")
        add_line(next(column), human_duration(total.seconds))
        add_line(next(column), f"{report.share(total):.0f}%")
        add_line(next(column), bar(total.seconds / longest), score_style(total.score))
        if timeline:
            add_line(next(column), f"{pulse_of(total.score or 0.0):.0f}")
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


# --- tracker categories uncategorized ------------------------------------------------------------------


def render_uncategorized(activities: list[Total], since: datetime, until: datetime, console: Console,
                         now: datetime | None = None) -> None:
    """Print the longest activities without a category on `console`, and how to add rules for them."""
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
        table.add_row(Text(activity.name), Text(activity.detail or ""), human_duration(activity.seconds))
    console.print(table)
    hidden = len(activities) - UNCATEGORIZED_SHOWN
    if hidden > 0:
        console.print(f"… and {hidden} more.", style="dim")
    console.print(f"Add rules for them with `tracker categories edit` (e.g. for {activities[0].name}).",
                  markup=False)


# --- tracker service -----------------------------------------------------------------------------------


def service_plan_text(plan: Plan, done: bool) -> str:
    """What `tracker service install/uninstall` did (`done`) or, with --dry-run, would do."""
    from tracker.tasks.service import describe_command

    lines: list[str] = []
    if plan.content is not None:
        lines.append(f"Wrote {plan.file}." if done else f"Would write {plan.file}:\n")
        if not done:
            lines.append(plan.content.rstrip("\n") + "\n")
    lines.append("Ran:" if done else "Would run:")
    lines.extend(f"  {describe_command(command)}" for command in plan.commands)
    if plan.content is None:
        lines.append(f"Removed {plan.file}." if done else f"Would remove {plan.file}.")
    lines.extend(plan.notes)
    return "\n".join(lines)


def service_status_text(state: ServiceState, permissions: ServicePermissions | None = None) -> str:
    """Whether the service is installed and runs; under launchd, also what macOS allowed its own process."""
    if not state.installed:
        return f"No tracker service is installed (no {state.file}). `tracker service install` starts one at login."
    if state.running:
        pid = f", pid {state.pid}" if state.pid else ""
        head = f"The tracker service is running ({state.detail}{pid})."
    else:
        head = f"The tracker service is installed but not running ({state.detail}); its log may say why."
    text = f"{head}\n  file: {state.file}\n  log:  {state.log_file}"
    last = state.last_log_line
    text += f"\n  last line of the log: {last}" if last and not state.running else ""
    if state.manager == "launchd":
        from tracker.redact import outward

        # App names and the program's path, as another process wrote them: shown through the one door.
        text += "".join(f"\n{line[:len(line) - len(line.lstrip())]}{outward(line, None)}"
                        for line in _service_permission_lines(permissions))
    return text


def _service_permission_lines(record: ServicePermissions | None) -> list[str]:
    """What macOS allowed the service's own process, as its run last wrote it, with the fix under each denied."""
    from tracker.macos_privacy import allow_sentence, rebuild_note
    from tracker.recording.sources import DENIED
    from tracker.tasks.service import LAUNCHD, describe_command, restart_command

    if record is None:
        return ["  permissions: the service's own process has not recorded any yet (its run records them within"
                " seconds of starting; a service installed by an older tracker, after `tracker service install`)."]
    written = human_ago(_seconds_since(record.written_at))
    lines = [f"  permissions of the service's own process, as its run (pid {record.pid}) wrote them {written};"
             f" System Settings lists it as {record.entry}:"]
    restart = describe_command(restart_command(LAUNCHD))
    now = datetime.now(timezone.utc)
    for permission in record.permissions:
        lines.append(f"    {permission.said_at(now)}")
        if permission.state == DENIED:
            lines.append(f"      fix: {allow_sentence(permission.kind, permission.target, record.entry, restart)}")
    if record.entry.rebuilt_voids_grant and not any(each.state == DENIED for each in record.permissions):
        lines.append(f"    note: {rebuild_note(record.entry)}.")
    return lines


def service_status_json(state: ServiceState, permissions: ServicePermissions | None = None) -> str:
    from tracker.recording.runstate import permission_document

    document: dict[str, object] = {
        "manager": state.manager, "file": str(state.file), "installed": state.installed, "running": state.running,
        "pid": state.pid, "detail": state.detail, "log_file": str(state.log_file),
        "last_log_line": state.last_log_line}
    if state.manager == "launchd":
        document["permissions"] = None if permissions is None else {
            "pid": permissions.pid, "written_at": permissions.written_at.isoformat(),
            "entry": asdict(permissions.entry),
            "permissions": [permission_document(each) for each in permissions.permissions]}
    return json.dumps(document, indent=2)


# --- tracker doctor ------------------------------------------------------------------------------------


def doctor_text(checks: list[Check]) -> str:
    """One line per check (outcome, name, what was found), the fix below each that is not ok, and a verdict."""
    width = max(len(check.name) for check in checks)
    lines: list[str] = []
    for check in checks:
        lines.append(f"{check.outcome:<8} {check.name:<{width}}  {check.detail}")
        if check.outcome != "ok" and check.fix:
            lines.append(f"{'':<8} {'':<{width}}  fix: {check.fix}")
    problems = sum(check.outcome == "problem" for check in checks)
    warnings = sum(check.outcome == "warning" for check in checks)
    if problems:
        verdict = f"{problems} problem{'s' if problems > 1 else ''} {'block' if problems > 1 else 'blocks'} recording"
    else:
        verdict = "Nothing blocks recording"
    lines.append(f"{verdict}; {warnings} warning{'' if warnings == 1 else 's'}.")
    return "\n".join(lines)


def doctor_json(checks: list[Check]) -> str:
    from tracker.tasks.doctor import blocks_recording

    return json.dumps({"blocks_recording": blocks_recording(checks), "checks": [asdict(check) for check in checks]},
                      indent=2, ensure_ascii=False)


def import_text(result: ImportResult, source: str) -> str:
    """What an import added, where it goes next, and what it skipped."""
    hosts = ", ".join(sorted(result.hosts))
    if not result.events:
        text = f"Nothing new in {source}: all its time is in the local history already."
    else:
        text = (f"Imported {result.events:,} events ({human_duration(result.seconds)}) of {hosts} from {source} "
                f"into the local history; {result.points:,} points wait in the outbox for InfluxDB "
                "(`tracker sync` sends them now, a running `tracker run` on its own).")
    if result.skipped_seconds >= 1:
        text += (f" Skipped {human_duration(result.skipped_seconds)} that was there already (imported before, "
                 "or recorded by tracker itself, which wins).")
    if result.left_out:
        events = "1 event" if result.left_out == 1 else f"{result.left_out:,} events"
        text += (f" Left out {events} with impossible times (before 1970, after 2199, longer than a"
                 f" year, or not a number; the first, in {result.first_left_out}).")
    return text


# --- tracker recategorize ------------------------------------------------------------------------------

def recategorize_text(outcome: RecategorizeOutcome, dry_run: bool, where: str) -> str:
    """What moved (or would move) from which category to which, in hours, locally and in InfluxDB."""
    from tracker.wording import samples

    lines = [f"Local history: {_moves_text(outcome.history, dry_run)}"]
    if outcome.outbox_rows:
        lines.append(f"Outbox: {samples(outcome.outbox_rows)} waiting to be sent now carry today's categories.")
    if outcome.influx is not None:
        lines.append(f"InfluxDB at {where}: {_moves_text(outcome.influx.moves, dry_run)}")
        if outcome.influx.skipped:
            lines.append(f"  {outcome.influx.skipped:,} points with tags tracker does not write (such as"
                         " demo=true), or without one it always writes, were left as they are.")
    if outcome.influx_note:
        lines.append(outcome.influx_note)
    if dry_run:
        lines.append("Nothing was changed (--dry-run).")
    return "\n".join(lines)


def _moves_text(moves: dict[tuple[str, str], float], dry_run: bool) -> str:
    if not moves:
        return "no time would change category." if dry_run else "no time changed category."
    rows = sorted(moves.items(), key=lambda item: (-item[1], item[0]))
    return ("would move" if dry_run else "moved") + "".join(
        f"\n  {source} → {target}: {seconds / 3600:.2f} h" for (source, target), seconds in rows)
