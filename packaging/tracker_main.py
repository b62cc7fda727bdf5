"""The entry point that `make binary` freezes into dist/tracker."""

from tracker.commands import cli

if __name__ == "__main__":
    cli()
