"""`tracker doctor`: everything recording needs, checked in order, each as a `Check` (the CLI prints them).

A check is ok, a warning (recording works, but something is missing or late), or a problem (something blocks
recording, or keeps the samples from reaching InfluxDB). Each one that is not ok says the fix in one sentence.
InfluxDB is asked only by the InfluxDB checks, and the test point they write goes to a measurement of its own,
which the dashboard never reads, and is deleted again where the API allows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tracker.config import InfluxSettings, LoadedSettings, Settings
    from tracker.recording.sources import Permission, Source
    from tracker.sending.sinks import Sink

Verdict = Literal["ok", "warning", "problem"]
OK: Verdict = "ok"
WARNING: Verdict = "warning"
PROBLEM: Verdict = "problem"
# Where the test point goes: the dashboard reads `activity` and `tracker` only.
TEST_MEASUREMENT = "tracker_doctor"
# Samples waiting longer than this have not reached InfluxDB for a reason worth a warning.
WAITING_TOO_LONG = 15 * 60


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Verdict
    detail: str
    fix: str = ""


def blocks_recording(checks: list[Check]) -> bool:
    return any(check.outcome == PROBLEM for check in checks)


def run_checks(source_name: str = "auto") -> list[Check]:
    """Every check, in the order a user would debug by hand."""
    checks = check_desktop(source_name)
    checks.extend(check_gnome_extension())
    loaded, settings_check = check_settings()
    checks.append(settings_check)
    checks.append(check_categories())
    if loaded is not None:
        checks.extend(check_influx(loaded.settings))
    checks.append(check_outbox())
    checks.append(check_running())
    checks.append(check_service())
    checks.extend(check_recorded_permissions())
    return checks


# -- the desktop and idle time ------------------------------------------------------------------------------

# What gives a source its idle time, where it can be missing.
IDLE_TIME_FIX = {
    "x11": "On X11 use a server with the MIT-SCREEN-SAVER extension (Xorg and Xvfb have it).",
    "wayland-wlr": "Use a compositor that offers ext-idle-notify-v1 or org_kde_kwin_idle (sway, Hyprland and river "
                   "do).",
    "kwin": "tracker reads KWin's idle time through Wayland: run it inside the Plasma Wayland session "
            "(WAYLAND_DISPLAY set).",
}


def check_desktop(source_name: str = "auto") -> list[Check]:
    """Whether the foreground can be read (and what it is now), then whether idle time can."""
    from tracker.recording.sources import SourceUnavailable
    from tracker.recording.sources.choose import choose_source

    notices: list[str] = []
    try:
        chosen = choose_source(source_name, notices.append)
    except SourceUnavailable as error:
        return [Check("desktop", PROBLEM, str(error),
                      "Run tracker in your desktop session (a terminal on it, or `tracker service install`, "
                      "which starts it with the session)."),
                Check("idle time", WARNING, "not checked: the desktop cannot be read",
                      "Fix the desktop first.")]
    source = chosen.source
    try:
        sample = source.read()
        granted, replaced = _macos_permissions(source, sample.app if sample is not None else None)
    finally:
        source.close()
    where = source.name + (f" on {display}" if (display := getattr(source, "display_name", None)) else "")
    checks = [_permission_check(notice) for notice in dict.fromkeys(notices) if notice not in replaced]
    checks += granted
    if sample is None and blocks_recording(checks):
        checks.insert(0, Check("desktop", PROBLEM, f"{where} cannot read the foreground app",
                               "Grant the permission below."))
        return [*checks, Check("idle time", WARNING, "not checked: the foreground app cannot be read",
                               "Grant the permission above.")]
    if sample is None:
        checks.insert(0, Check("desktop", WARNING, f"{where} answers, but shows no foreground window now",
                               "Bring a window to the front and run `tracker doctor` again."))
        return [*checks, Check("idle time", WARNING, "not checked: no foreground window was read",
                               "Bring a window to the front and run `tracker doctor` again.")]
    why = f"; chosen because {chosen.why}" if chosen.why else ""
    checks.insert(0, Check("desktop", OK, f"{where}: the foreground app is {sample.app}{why}"))
    if sample.idle_seconds is None:
        checks.append(Check("idle time", WARNING, f"{where} does not tell idle time, so time away counts as active",
                            IDLE_TIME_FIX.get(source.name, "Use a desktop that tells idle time.")))
    else:
        checks.append(Check("idle time", OK, f"{sample.idle_seconds:.0f} s since the last keyboard or mouse input"))
    return checks


def check_gnome_extension() -> list[Check]:
    """On a GNOME session only: tracker's Shell extension, without which GNOME shows tracker no window."""
    from tracker.tasks.gnome_extension import is_gnome_session, report

    if not is_gnome_session():
        return []
    found = report()
    if found.works:
        return [Check("GNOME extension", OK, "installed, enabled and answering")]
    return [Check("GNOME extension", PROBLEM, " ".join(found.lines()[:3]), found.fix)]


def _permission_check(notice: str, name: str = "permission") -> Check:
    """A permission the source reported missing (macOS): System Events blocks recording, the rest lose detail."""
    head, _, fix = notice.partition("; ")
    blocking = "no app can be recorded" in head
    return Check(name, PROBLEM if blocking else WARNING, head, fix[:1].upper() + fix[1:])


def _macos_permissions(source: Source, front: str | None) -> tuple[list[Check], set[str]]:
    """On macOS, the permissions granted (System Events, Accessibility), then one line per running browser that
    tracker asks for its tab (Automation), whatever the one read above asked; and the source's notices that
    those lines say instead. A permission refused otherwise comes as the source's own notice; a front window whose
    title could not be read, as a line of its own."""
    from tracker.recording.sources.macos import (
        ALLOWED,
        REFUSED,
        WAITING,
        MacOSSource,
        automation_notice,
        permission_wait_notice,
        unreadable_title_notice,
    )

    if not isinstance(source, MacOSSource):
        return [], set()
    checks = [Check("permission", OK, "may control System Events")] if front is not None else []
    replaced: set[str] = set()
    if source.accessibility_allowed():
        checks.append(Check("permission", OK, "may read window titles (Accessibility)"))
    for browser, state in source.browser_permissions():
        replaced.update((automation_notice(browser), permission_wait_notice(browser)))
        if state == ALLOWED:
            checks.append(Check("browser", OK, f"may control {browser}"))
        elif state == REFUSED:
            checks.append(_permission_check(automation_notice(browser), "browser"))
        elif state == WAITING:
            checks.append(Check("browser", WARNING, f"waits for an answer whether tracker may control {browser}, "
                                f"so {browser} is recorded by app only meanwhile",
                                f"Click OK in the prompt macOS shows about controlling {browser}, then run "
                                "`tracker doctor` again."))
        else:
            checks.append(Check("browser", WARNING, f"{browser} did not answer, so whether tracker may control it "
                                "is not known", "Run `tracker doctor` again once it responds."))
    if source.unreadable_titles and front is not None:
        replaced.add(unreadable_title_notice(front))
        checks.append(Check("window title", WARNING, f"the title of {front}'s front window cannot be read now, so "
                            "it is recorded with the app only", "Nothing else is lost; appscript cannot decode some "
                            "titles (one cut inside an emoji, for one): a window with another title is read again."))
    return checks, replaced


# -- settings and categories --------------------------------------------------------------------------------

def check_settings() -> tuple[LoadedSettings | None, Check]:
    from tracker import paths
    from tracker.config import ConfigError, load_settings

    file = paths.config_file()
    try:
        loaded = load_settings()
    except ConfigError as error:
        return None, Check("settings", PROBLEM, str(error),
                           "Fix that setting (`tracker config show` shows the others), then run `tracker doctor` "
                           "again.")
    by_origin: dict[str, list[str]] = {}
    for name, origin in loaded.origins.items():
        if origin != "default":
            by_origin.setdefault(origin, []).append(name)
    where = "; ".join(f"{', '.join(names)} from {origin}" for origin, names in by_origin.items())
    present = "" if file.exists() else f" (no {file})"
    detail = f"{where}; the rest are defaults{present}" if where else f"all defaults{present}"
    return loaded, Check("settings", OK, detail)


def check_categories() -> Check:
    from tracker.categories.files import load_categories
    from tracker.categories.rules import CategoriesError
    from tracker.paths import display_path

    try:
        rules = load_categories()
    except CategoriesError as error:
        return Check("categories", PROBLEM, str(error),
                     "`tracker categories edit` opens the file and keeps it only once it is valid.")
    return Check("categories", OK,
                 f"{display_path(rules.file)}: {len(rules.categories)} categories, {rules.rule_count} rules")


# -- InfluxDB -----------------------------------------------------------------------------------------------

def check_influx(settings: Settings) -> list[Check]:
    """Reachable, which API, credentials, database, and a test point; what cannot be reached is not asked."""
    from tracker.redact import display_url
    from tracker.sending.sinks import InfluxSettingsError, RetryLater
    from tracker.sending.sinks.influx_v1 import major_version, server_version

    influx = settings.influx
    if not influx.configured:
        return [Check("InfluxDB", WARNING, "not configured: recording locally only",
                      "Run `tracker config init` and set influx.url (and influx.token); `tracker sync` then "
                      "sends everything recorded so far.")]
    url = display_url(influx.url)
    try:
        version = server_version(influx)
    except RetryLater as error:
        # The advice (macOS's Local Network privacy) is in the message already: the fix points to it.
        fix = ("Allow it in Local Network as the line says, or, if that is not it, check the network's route to the"
               " server" if error.advice else "Start InfluxDB, or fix influx.url in config.yaml")
        return [Check("InfluxDB reachable", PROBLEM, str(error), f"{fix}; samples wait in the outbox meanwhile.")]
    except InfluxSettingsError as error:
        return [Check("InfluxDB reachable", PROBLEM, str(error), "Fix it in config.yaml.")]
    said = f"InfluxDB {version}" if version else "a server that does not say its version"
    checks = [Check("InfluxDB reachable", OK, f"{url} answers: {said}")]
    api = influx.api if influx.api != "auto" else ("v1" if major_version(version) == "1" else "v2")
    how = "set by influx.api" if influx.api != "auto" else "what the server's /ping says"
    checks.append(Check("InfluxDB API", OK, f"{api} ({'/write' if api == 'v1' else '/api/v2/write'}), {how}"))
    return checks + _write_test_point(settings, api)


def _write_test_point(settings: Settings, api: str) -> list[Check]:
    from tracker.lineprotocol import escape_tag
    from tracker.sending.sinks import AuthFailed, InfluxSettingsError, SendError

    influx = settings.influx
    where = f"database {influx.bucket}" if api == "v1" else f"bucket {influx.bucket}"
    line = f"{TEST_MEASUREMENT},host={escape_tag(settings.host) or 'unknown'} ok=1i {int(time.time() * 1000)}"
    sink = _open_sink(influx, api)
    try:
        sink.write([line])
    except AuthFailed as error:
        return [Check("InfluxDB credentials", PROBLEM, str(error),
                      f"Set influx.token in config.yaml to a token (2.x, 3.x) or username:password (1.x) that "
                      f"may write to {where}.")]
    except InfluxSettingsError as error:
        create = ("`influx -execute 'CREATE DATABASE \"" + influx.bucket.partition("/")[0] + "\"'`" if api == "v1"
                  else "`influx bucket create --name " + influx.bucket + "`")
        return [_credentials_accepted(influx),
                Check("InfluxDB database", PROBLEM, str(error),
                      f"Create it ({create}), or fix influx.bucket in config.yaml.")]
    except SendError as error:
        return [Check("InfluxDB test point", PROBLEM, f"{error}",
                      "Check the server's log; samples wait in the outbox meanwhile.")]
    finally:
        sink.close()
    return [_credentials_accepted(influx), Check("InfluxDB database", OK, f"{where} exists and takes points"),
            Check("InfluxDB test point", OK, _remove_test_point(influx, api))]


def _open_sink(influx: InfluxSettings, api: str) -> Sink:
    if api == "v1":
        from tracker.sending.sinks.influx_v1 import InfluxV1Sink

        return InfluxV1Sink(influx)
    from tracker.sending.sinks.influx_v2 import InfluxV2Sink  # influxdb-client: only when the server speaks v2

    return InfluxV2Sink(influx)


def _credentials_accepted(influx: InfluxSettings) -> Check:
    return Check("InfluxDB credentials", OK, "accepted" if influx.token else "none set, and none asked for")


def _remove_test_point(influx: InfluxSettings, api: str) -> str:
    """Delete the test point where the API allows; say what became of it."""
    written = f"written to measurement {TEST_MEASUREMENT}"
    if api != "v1":
        return f"{written}, which the dashboard ignores (tracker deletes nothing through the v2 API)"
    from tracker.sending.sinks import SendError
    from tracker.sending.sinks.influx_v1 import execute

    try:
        execute(influx, influx.bucket.partition("/")[0], f'DROP MEASUREMENT "{TEST_MEASUREMENT}"')
    except SendError as error:
        return f"{written}, which the dashboard ignores; not deleted ({error})"
    return f"{written} and deleted again"


# -- the local state ----------------------------------------------------------------------------------------

def check_outbox(now: Callable[[], float] = time.time) -> Check:
    from tracker.paths import database_file
    from tracker.storage.outbox import OutboxUnavailable, read_stats
    from tracker.wording import samples

    try:
        stats = read_stats(database_file())
    except OutboxUnavailable as error:
        return Check("outbox", PROBLEM, str(error), "Free disk space or fix the file's permissions.")
    waiting = f"{samples(stats.waiting_samples)} waiting"
    if stats.oldest_waiting is not None:
        waiting += f", the oldest from {stats.oldest_waiting.astimezone():%Y-%m-%d %H:%M}"
    refused = f"{stats.quarantined_count} refused by the server" if stats.quarantined_count else "none refused"
    detail = f"{waiting}; {refused}" + (f"; {stats.dropped} dropped at the size bound" if stats.dropped else "")
    if stats.quarantined_count or stats.dropped:
        return Check("outbox", WARNING, detail, "`tracker outbox` shows what was refused and why.")
    if stats.oldest_waiting is not None and now() - stats.oldest_waiting.timestamp() > WAITING_TOO_LONG:
        return Check("outbox", WARNING, detail,
                     "InfluxDB has not confirmed them: see the InfluxDB checks; `tracker sync` sends them now.")
    return Check("outbox", OK, detail)


def check_running() -> Check:
    from tracker.paths import data_dir
    from tracker.recording.runlock import is_running
    from tracker.recording.runstate import read_status
    from tracker.wording import unreadable_titles_text

    pid = is_running()
    if pid is None:
        return Check("tracker run", WARNING, f"not running for {data_dir()}: nothing is being recorded",
                     "Start it with `tracker run`, or at every login with `tracker service install`.")
    running = f"running for {data_dir()}" + (f" (pid {pid})" if pid else "")
    # The run's own counters, as it last wrote them to status.json (every few seconds).
    status = read_status() if pid else None
    vitals = status.vitals if status is not None and status.pid == pid else None
    unreadable = (vitals or {}).get("unreadable_titles")
    if isinstance(unreadable, int) and unreadable > 0:
        return Check("tracker run", WARNING, f"{running}; {unreadable_titles_text(unreadable)}",
                     "Nothing but those titles is lost: the run said once which app's title it could not read "
                     "(appscript cannot decode a title cut inside an emoji, for one).")
    return Check("tracker run", OK, running)


def check_service() -> Check:
    from tracker.tasks import service

    try:
        state = service.read_state(service.current_manager())
    except service.ServiceError as error:
        return Check("service", WARNING, str(error), "Start `tracker run` at login in your desktop's own way.")
    if not state.installed:
        return Check("service", WARNING, "not installed: tracker does not start at login",
                     "`tracker service install` starts it at every login.")
    if not state.running:
        last = state.last_log_line
        said = f"; the last line of its log: {last}" if last else ""
        return Check("service", WARNING, f"installed ({state.file}) but not running: {state.detail}{said}",
                     f"Fix what its log ({state.log_file}) says, then `tracker service install` again.")
    return Check("service", OK, f"running ({state.detail})")


# -- what macOS allowed the service and the running tracker, as they wrote it ------------------------------

def check_recorded_permissions() -> list[Check]:
    """One line per permission of the service's own process (macOS grants it to the service's program, not to
    the terminal doctor runs in), as its run last wrote them; and of a `tracker run` started from a terminal."""
    from tracker.macos_privacy import ANY_TERMINAL, allow_sentence
    from tracker.recording.runlock import is_running
    from tracker.recording.runstate import read_service_permissions, read_status
    from tracker.tasks import service

    checks: list[Check] = []
    if service.current_manager() == service.LAUNCHD and service.plist_file().exists():
        record = read_service_permissions()
        if record is None:
            checks.append(Check("service permission", WARNING, "the service's own process has not recorded its "
                                "permissions yet", "Run `tracker service install` (it starts the service), then "
                                "`tracker doctor` again a few seconds later."))
        else:
            restart = service.describe_command(service.restart_command(service.LAUNCHD))
            checks += [_recorded_permission_check("service permission", permission, allow_sentence(
                permission.kind, permission.target, record.entry, restart)) for permission in record.permissions]
    pid = is_running()
    status = read_status() if pid else None
    if status is not None and status.pid == pid and not status.started_by_service:
        checks += [_recorded_permission_check("run permission", permission, _allow_terminal(permission, ANY_TERMINAL))
                   for permission in status.permissions]
    return checks


def _recorded_permission_check(name: str, permission: Permission, fix: str) -> Check:
    """Granted or not asked yet: ok. Denied: a problem for System Events (nothing is recorded), else a warning."""
    from tracker.recording.sources import AWAITING_ANSWER, DENIED
    from tracker.recording.sources.macos import SYSTEM_EVENTS
    from tracker.redact import outward

    detail = outward(permission.said_at(datetime.now(timezone.utc)), None)  # app names, as another process wrote them
    if permission.state == DENIED:
        return Check(name, PROBLEM if permission.target == SYSTEM_EVENTS else WARNING, detail, fix)
    if permission.state == AWAITING_ANSWER:
        return Check(name, WARNING, detail, "Answer the prompt macOS shows (OK allows it).")
    return Check(name, OK, detail)


def _allow_terminal(permission: Permission, terminal: str) -> str:
    from tracker.macos_privacy import ACCESSIBILITY_PANE, AUTOMATION, AUTOMATION_PANE

    if permission.kind == AUTOMATION:
        return f"Allow {terminal} to control {permission.target} in {AUTOMATION_PANE}, then restart tracker."
    return f"Allow {terminal} in {ACCESSIBILITY_PANE}, then restart tracker."
