"""Run by the Windows python.exe under Wine: tracker's WindowsSource, read once per line on stdin, each sample
printed as one JSON line; what the source notifies goes to stderr. argv[1]: the repository (a Windows path)."""

from __future__ import annotations

import json
import sys

sys.path.insert(0, sys.argv[1])

from tracker.recording.sources.choose import choose_source

chosen = choose_source(sys.argv[2] if len(sys.argv) > 2 else "auto", lambda notice: print(notice, file=sys.stderr))
print(json.dumps({"source": chosen.source.name, "why": chosen.why}), flush=True)
for _ in sys.stdin:
    sample = chosen.source.read()
    found = None if sample is None else {
        "app": sample.app, "title": sample.title, "idle_seconds": sample.idle_seconds, "locked": sample.locked}
    print(json.dumps({"sample": found}), flush=True)
