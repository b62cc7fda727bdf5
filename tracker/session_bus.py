"""Where the D-Bus session bus is: what the KDE and GNOME sources, auto-detection and desktop notifications
connect to."""

from __future__ import annotations

import os
from pathlib import Path


def session_bus_address() -> str | None:
    """$DBUS_SESSION_BUS_ADDRESS, else the bus systemd's user instance puts at $XDG_RUNTIME_DIR/bus (where
    libdbus and sd-bus look too; a service started outside the session may lack the variable)."""
    if address := os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return address
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and Path(runtime_dir, "bus").is_socket():
        return f"unix:path={Path(runtime_dir, 'bus')}"
    return None
