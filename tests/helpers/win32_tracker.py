"""Run by the Windows python.exe under Wine: the `tracker` command from this repository (argv[1]), with the
rest of argv as its arguments, as `.venv\\Scripts\\tracker` runs it on Windows."""

from __future__ import annotations

import sys

sys.path.insert(0, sys.argv.pop(1))

from tracker.commands import cli

cli(prog_name="tracker")
