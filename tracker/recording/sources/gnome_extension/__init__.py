"""tracker's own GNOME Shell extension: the files, built from the parts shipped next to this module.

GNOME Shell lets no outside process read its windows (Eval and Introspect.GetWindows are locked since 41), so
the extension exports one read-only method on the session bus, under the Shell's own name. Two flavours: the
`imports` style GNOME 40–44 loads, and the ES modules GNOME 45 and later load. Both are service.js between a
head and a tail of their own, so the D-Bus interface is written once.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

UUID = "tracker-focus@tracker.invalid"
SHELL_BUS_NAME = "org.gnome.Shell"
OBJECT_PATH = "/org/gnome/Shell/Extensions/TrackerFocus"
INTERFACE = "org.gnome.Shell.Extensions.TrackerFocus"

LEGACY, ESM = "legacy", "esm"
# Every major release each flavour is declared for: the Shell refuses an extension whose metadata does not
# name its release, so each new GNOME release needs one more entry here (tests pin these lists).
SHELL_VERSIONS = {
    LEGACY: ("40", "41", "42", "43", "44"),
    ESM: ("45", "46", "47", "48", "49", "50"),
}


def flavour_for(shell_major: int) -> str | None:
    """The flavour GNOME Shell `shell_major` loads; None before 40 (not supported)."""
    if shell_major < 40:
        return None
    return LEGACY if shell_major < 45 else ESM


def extension_files(flavour: str) -> dict[str, str]:
    """The extension's files (name -> text) in `flavour`, as they go into extensions/UUID/."""
    parts = resources.files(__package__)
    script = "".join(parts.joinpath(name).read_text(encoding="utf-8")
                     for name in (f"{flavour}_head.js", "service.js", f"{flavour}_tail.js"))
    metadata = {
        "uuid": UUID,
        "name": "tracker focus",
        "description": "Tells tracker (a personal activity tracker) the focused window's app and title, idle "
                       "time and whether the screen is locked, on the session bus. It cannot control windows.",
        "shell-version": list(SHELL_VERSIONS[flavour]),
    }
    return {"extension.js": script, "metadata.json": json.dumps(metadata, indent=2) + "\n"}


def user_extension_dir() -> Path:
    """Where a user's copy of the extension goes, and where GNOME Shell looks for it (XDG_DATA_HOME respected)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "gnome-shell" / "extensions" / UUID
