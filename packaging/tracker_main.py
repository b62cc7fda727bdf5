"""The entry point that `make binary` freezes into dist/tracker."""

from tracker.commands.cli import cli

if __name__ == "__main__":
    cli()
