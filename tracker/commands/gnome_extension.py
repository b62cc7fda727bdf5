"""tracker gnome-extension: install, remove or check tracker's GNOME Shell extension (GNOME lets no program
read its windows without one)."""

from __future__ import annotations

import click

from tracker.tasks import gnome_extension


@click.group("gnome-extension")
def gnome_extension_group() -> None:
    """Install, remove or check the GNOME Shell extension that lets tracker see the focused window."""


@gnome_extension_group.command()
def install() -> None:
    """Copy the extension for this GNOME Shell into your extensions and enable it (log out and in once after)."""
    for line in gnome_extension.install():
        click.echo(line)


@gnome_extension_group.command()
def uninstall() -> None:
    """Disable the extension and remove it from your extensions."""
    for line in gnome_extension.uninstall():
        click.echo(line)


@gnome_extension_group.command()
def status() -> None:
    """Whether the extension is installed, enabled and answering (exit 1 when tracker cannot use it yet)."""
    report = gnome_extension.report()
    for line in report.lines():
        click.echo(line)
    if not report.works:
        raise click.exceptions.Exit(1)
