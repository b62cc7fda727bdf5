"""The callbacks parts are handed, each meaning one thing wherever it is used."""

from __future__ import annotations

from collections.abc import Callable

# Tells the user one plain sentence they should know or act on (a missing permission, a server that refuses).
Notify = Callable[[str], None]
# How far a long job is: (done, total), in whatever unit the job counts (rows, points, bytes); total None when
# not known (a stream of unknown length).
Progress = Callable[[int, int | None], None]
