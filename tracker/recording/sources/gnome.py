"""The GNOME source: the focused window of a GNOME Shell session (Wayland or X11), through tracker's extension.

GNOME Shell lets no outside process read its windows, so tracker ships a small extension
(tracker.recording.sources.gnome_extension) that exports one read-only method, `Get`, on the session bus. A
sample is one D-Bus call to it (about 0.5 ms), which also brings idle time (Mutter's idle monitor) and whether
the screen is locked.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracker.callbacks import Notify
from tracker.model import Sample, utc_now
from tracker.recording.sources import Permission, SourceUnavailable
from tracker.recording.sources.gnome_extension import (
    INTERFACE,
    OBJECT_PATH,
    SHELL_BUS_NAME,
    UUID,
    user_extension_dir,
)
from tracker.session_bus import session_bus_address

if TYPE_CHECKING:
    from jeepney.io.blocking import DBusConnection

log = logging.getLogger(__name__)

# A Shell that takes longer than this to answer is busy or hung: the sample is skipped, the loop goes on.
CALL_TIMEOUT = 1.0
INSTALL_COMMAND = "tracker gnome-extension install"
# org.gnome.Shell.Extensions' states (js/misc/extensionUtils.js): what GetExtensionInfo says in "state".
EXTENSION_STATES = {1: "enabled", 2: "disabled", 3: "failed to load", 4: "out of date for this GNOME Shell",
                    5: "downloading", 6: "initialized but not enabled", 7: "being disabled", 8: "being enabled",
                    99: "uninstalled"}
ENABLED_STATE = 1
# The errors a bus gives when the Shell is there but our object is not: the extension is not loaded.
NO_SUCH_OBJECT = {"org.freedesktop.DBus.Error.UnknownMethod", "org.freedesktop.DBus.Error.UnknownObject",
                  "org.freedesktop.DBus.Error.UnknownInterface"}
# ... and when the Shell itself is not on the bus.
NO_SHELL = {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"}


class ShellError(Exception):
    """A call to GNOME Shell failed: `reason` is what went wrong, `name` the D-Bus error name when it said one;
    `bus_lost` when the session bus connection itself is gone (a new one is needed)."""

    def __init__(self, reason: str, name: str = "", bus_lost: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name
        self.bus_lost = bus_lost


class ShellBus:
    """A connection to the session bus for calls to GNOME Shell, each with a bounded wait."""

    def __init__(self, address: str = "SESSION") -> None:
        try:
            from jeepney.io.blocking import open_dbus_connection
        except ImportError:
            raise SourceUnavailable(
                "Reading GNOME needs the jeepney package, which is not installed; install it with "
                "`pip install jeepney`, or try `tracker run --source demo`."
            ) from None
        found = session_bus_address() if address == "SESSION" else address
        if found is None:
            raise SourceUnavailable(
                "There is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set); run tracker inside your "
                "desktop session, from a terminal on it or through `tracker service install`."
            )
        try:
            self.connection: DBusConnection = open_dbus_connection(found)
        except (OSError, ValueError) as error:
            raise SourceUnavailable(
                f"Cannot connect to the D-Bus session bus ({error}); run tracker inside your desktop session, "
                "from a terminal on it or through `tracker service install`."
            ) from None

    def call(self, path: str, interface: str, method: str, signature: str = "", body: tuple[Any, ...] = (),
             destination: str = SHELL_BUS_NAME, timeout: float = CALL_TIMEOUT) -> tuple[Any, ...]:
        """The reply's values; ShellError when the call fails or takes longer than `timeout`."""
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        message = new_method_call(DBusAddress(path, destination, interface), method, signature or None, body)
        try:
            return tuple(unwrap_msg(self.connection.send_and_get_reply(message, timeout=timeout)))
        except DBusErrorResponse as error:
            said = error.data[0] if error.data and isinstance(error.data[0], str) else error.name
            raise ShellError(said, error.name) from None
        except TimeoutError:
            raise ShellError(f"no answer within {timeout:g} s") from None
        except (OSError, EOFError, ValueError) as error:  # the bus went away or sent something broken
            raise ShellError(f"the session bus connection failed ({error})", bus_lost=True) from None

    def get_focus(self) -> tuple[str, str, str, int, bool]:
        """The extension's answer: app id, WM class, title, idle milliseconds, locked."""
        app_id, wm_class, title, idle_ms, locked = self.call(OBJECT_PATH, INTERFACE, "Get")
        return str(app_id), str(wm_class), str(title), int(idle_ms), bool(locked)

    def extension_info(self) -> dict[str, Any]:
        """What the Shell knows of tracker's extension ({} when it knows nothing of it)."""
        (info,) = self.call("/org/gnome/Shell", "org.gnome.Shell.Extensions", "GetExtensionInfo", "s", (UUID,))
        return {key: value for key, (_signature, value) in info.items()}

    def close(self) -> None:
        self.connection.close()


@dataclass(frozen=True)
class ExtensionState:
    """What the running Shell says of tracker's extension."""

    known: bool  # the Shell found it installed
    state: str  # EXTENSION_STATES' word, or "" when unknown
    enabled: bool
    error: str  # the Shell's reason when it failed to load it
    path: str  # where the Shell found it, "" when it did not


def extension_state(bus: ShellBus) -> ExtensionState:
    """The running Shell's view of tracker's extension; ShellError when the Shell cannot be asked."""
    info = bus.extension_info()
    if not info:
        return ExtensionState(known=False, state="", enabled=False, error="", path="")
    code = int(info.get("state", 0))
    return ExtensionState(known=True, state=EXTENSION_STATES.get(code, f"in state {code}"),
                          enabled=code == ENABLED_STATE, error=str(info.get("error", "") or ""),
                          path=str(info.get("path", "")))


def why_not_answering(bus: ShellBus, failure: ShellError) -> str:
    """One sentence: why the extension's Get failed with `failure`, and what the user does about it."""
    if failure.name in NO_SHELL:
        return ("GNOME Shell is not running on this session bus, so there is no GNOME window to read; run tracker "
                "inside your GNOME session, or choose another source with --source.")
    if failure.name not in NO_SUCH_OBJECT:
        return f"GNOME Shell did not answer tracker's extension call ({failure.reason}); try again in a moment."
    try:
        state = extension_state(bus)
    except ShellError:
        state = ExtensionState(known=False, state="", enabled=False, error="", path="")
    if not state.known and (user_extension_dir() / "metadata.json").exists():
        return ("tracker's GNOME Shell extension is installed, but the running GNOME Shell has not loaded it yet; "
                "log out and in once (GNOME Shell on Wayland loads new extensions only at login).")
    if not state.known:
        return ("GNOME lets no program see its windows without an extension, and tracker's is not installed in "
                f"this session; run `{INSTALL_COMMAND}`, then log out and in once.")
    if state.error:
        return (f"tracker's GNOME Shell extension failed to load ({state.error}); run `{INSTALL_COMMAND}` "
                "again, then log out and in once.")
    if not state.enabled:
        return (f"tracker's GNOME Shell extension is installed but {state.state}; run `{INSTALL_COMMAND}` to "
                "enable it, then log out and in once.")
    return ("tracker's GNOME Shell extension is enabled but does not answer yet; log out and in once (GNOME "
            "Shell on Wayland loads new extensions only at login).")


class GnomeSource:
    """The focused window of GNOME Shell, read through tracker's extension."""

    name = "gnome"
    # Titles come as text from the Shell: never unreadable.
    unreadable_titles = 0

    def __init__(self, notify: Notify, bus_address: str = "SESSION") -> None:
        """`bus_address`: the session bus (its D-Bus address; "SESSION" reads DBUS_SESSION_BUS_ADDRESS)."""
        self._notify = notify
        self._bus_address = bus_address
        self._bus: ShellBus | None = ShellBus(bus_address)
        try:
            self._bus.get_focus()
        except ShellError as failure:
            reason = why_not_answering(self._bus, failure)
            self._bus.close()
            raise SourceUnavailable(reason) from None
        self._lost = False
        self._closed = False

    def permissions(self) -> list[Permission]:
        return []  # the extension, once installed, is all it needs

    def read(self) -> Sample | None:
        if self._closed:
            return None
        time = utc_now()
        try:
            if self._bus is None:  # the session bus went: connect again
                self._bus = ShellBus(self._bus_address)
            app_id, wm_class, title, idle_ms, locked = self._bus.get_focus()
        except (ShellError, SourceUnavailable) as failure:
            self._lose(failure)
            return None
        except Exception:  # a read never raises: one bad moment must not stop the recording
            log.debug("reading GNOME Shell's focused window failed", exc_info=True)
            return None
        if self._lost:
            self._lost = False
            self._notify("GNOME Shell answers again; recording goes on.")
        app = app_id or wm_class
        if not app:
            return None  # no window has focus (the overview, an empty workspace)
        return Sample(time=time, app=app, title=title or None, idle_seconds=idle_ms / 1000, locked=locked)

    def _lose(self, failure: ShellError | SourceUnavailable) -> None:
        """Said once per loss: the Shell crashed, restarts, or the extension went away."""
        if isinstance(failure, ShellError) and failure.bus_lost:
            self._drop_bus()
        if self._lost:
            return
        self._lost = True
        if isinstance(failure, SourceUnavailable):
            detail = str(failure)
        elif failure.name in NO_SHELL:
            detail = ("GNOME Shell stopped answering (it crashed or restarts), so nothing is recorded until it is "
                      "back; recording resumes by itself.")
        elif failure.name in NO_SUCH_OBJECT:
            detail = ("tracker's GNOME Shell extension stopped answering (it was disabled, or the Shell restarts), "
                      "so nothing is recorded until it is back; `tracker gnome-extension status` says why.")
        else:
            detail = f"GNOME Shell stopped answering ({failure.reason}); recording resumes when it answers again."
        self._notify(detail)

    def _drop_bus(self) -> None:
        if self._bus is not None:
            with contextlib.suppress(OSError):
                self._bus.close()
            self._bus = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_bus()
