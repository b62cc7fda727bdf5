"""python -m tracker: the same as the `tracker` command."""

from tracker.commands import cli

cli(prog_name="tracker")
