"""The entry point that `make binary` freezes into dist/tracker."""

import os
import sys

from tracker.commands import cli

if __name__ == "__main__":
    # packaging/launcher.c runs this program from the directory it unpacked it into, and names itself here:
    # dist/tracker is what `service install` must run and what messages name, not the unpacked copy.
    sys.executable = os.environ.pop("TRACKER_LAUNCHER_PATH", sys.executable)
    cli()
