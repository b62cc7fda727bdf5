"""tracker service: start `tracker run` at login (launchd or a systemd user unit), or stop doing so."""

from __future__ import annotations

import click

from tracker import paths
from tracker.commands import Failure
from tracker.config import load_settings
from tracker.recording.runstate import EXIT_NOT_RUNNING, read_service_permissions
from tracker.tasks import service as services
from tracker.ui import present

EXIT_SERVICE_NOT_INSTALLED = 4  # and 3 (status's "not running") when installed but not running


@click.group()
def service() -> None:
    """Start `tracker run --quiet` at login (launchd on macOS, a systemd user unit on Linux, the Startup folder on
    Windows)."""


@service.command("install")
@click.option("--dry-run", is_flag=True, help="Print the file it would write and the commands it would run.")
def service_install(dry_run: bool) -> None:
    """Start `tracker run` at every login, from this installation, and now when a desktop is there."""
    loaded = load_settings()  # settings that do not load would fail at every login
    manager = services.current_manager()
    spec = services.current_spec()
    shell_only = services.settings_only_in_shell(manager)
    if shell_only:
        names = ", ".join(shell_only)
        raise Failure(f"{names} {'is' if len(shell_only) == 1 else 'are'} set only in this shell, which a "
                      "service started at login does not see: put the InfluxDB settings in config.yaml "
                      "(`tracker config init`), unset the variables, and install again.", 2)
    plan = services.plan_install(spec, manager)
    if not loaded.settings.influx.configured:
        restart = services.describe_command(services.restart_command(manager))
        plan.notes.append("InfluxDB is not configured in config.yaml, so the service records locally only "
                          f"until it is; then restart it (`{restart}`).")
    if not dry_run:
        services.carry_out(plan)
    click.echo(present.service_plan_text(plan, done=not dry_run))


@service.command("uninstall")
def service_uninstall() -> None:
    """Stop the service and remove it; the recorded data and the settings stay."""
    manager = services.current_manager()
    plan = services.plan_uninstall(manager)
    if not plan.file.exists():
        click.echo(f"No tracker service is installed (no {plan.file}); nothing to do.")
        return
    services.carry_out(plan)
    click.echo(present.service_plan_text(plan, done=True))
    click.echo(f"Your recorded data in {paths.data_dir()} and your settings are untouched.")


@service.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def service_status(as_json: bool) -> None:
    """Whether the service is installed and running (exit 3: installed, not running; 4: not installed)."""
    state = services.read_state(services.current_manager())
    # What macOS allowed the service's own process, as its run wrote it (macOS only).
    permissions = read_service_permissions() if state.manager == services.LAUNCHD and state.installed else None
    click.echo(present.service_status_json(state, permissions) if as_json
               else present.service_status_text(state, permissions))
    if not state.installed:
        raise click.exceptions.Exit(EXIT_SERVICE_NOT_INSTALLED)
    if not state.running:
        raise click.exceptions.Exit(EXIT_NOT_RUNNING)
