"""A real headless GNOME Shell for the tests, with tracker's extension loaded, on private D-Bus buses.

GNOME Shell needs a session bus and a system bus (it dies on loginManager without one): both are private
dbus-daemons here. Settings are a keyfile (enabled-extensions), and the extension sits in a directory on
XDG_DATA_DIRS, where the Shell treats it as a system extension and looks nothing up on the network.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from helpers.servers import require_program, stop_processes, wait_until
from helpers.wayland_window import WaylandWindow, start_window
from tracker.recording.sources.gnome_extension import INTERFACE, LEGACY, OBJECT_PATH, UUID, extension_files

# Starts of the Shell tried before a start-up that keeps hanging fails the test.
SHELL_STARTS = 3


class ShellHung(Exception):
    """The Shell is running but did not finish its start-up in time."""

# The app with a .desktop file on XDG_DATA_DIRS, and the WM class (Wayland app id) its windows give.
DESKTOP_APP_ID, DESKTOP_APP_CLASS = "org.example.Mapped", "gapp-mapped"
# A second extension, for the tests only: it activates a window by its app id, which nothing outside the Shell
# may do (tracker's own extension offers no such thing on purpose).
TEST_UUID = "activate@tracker-tests.invalid"
TEST_INTERFACE = "org.gnome.Shell.Extensions.TrackerTestActivate"
TEST_PATH = "/org/gnome/Shell/Extensions/TrackerTestActivate"
TEST_EXTENSION = f"""'use strict';
const {{Gio}} = imports.gi;
const XML = `<node><interface name="{TEST_INTERFACE}"><method name="Activate">
  <arg type="s" direction="in" name="wm_class"/><arg type="b" direction="out" name="found"/>
</method></interface></node>`;
class Service {{
    Activate(wmClass) {{
        const window = global.get_window_actors().map(actor => actor.meta_window)
            .find(candidate => candidate.get_wm_class() === wmClass);
        if (window)
            window.activate(global.get_current_time());
        return Boolean(window);
    }}
}}
class Extension {{
    enable() {{
        this._object = Gio.DBusExportedObject.wrapJSObject(XML, new Service());
        this._object.export(Gio.DBus.session, '{TEST_PATH}');
    }}
    disable() {{
        this._object.unexport();
    }}
}}
function init() {{
    return new Extension();
}}
"""


class GnomeDesktop:
    """GNOME Shell 43 `--headless` with tracker's extension, its windows, fake input, and its buses."""

    def __init__(self, directory: Path, with_extension: bool = True) -> None:
        self.directory = directory
        self.gnome_shell = require_program("gnome-shell", "gnome-shell")
        self.dbus_daemon = require_program("dbus-daemon", "dbus-daemon")
        self.with_extension = with_extension
        self.runtime = directory / "runtime"
        self.share = directory / "share"
        self.processes: list[subprocess.Popen[Any]] = []
        self.shell: subprocess.Popen[bytes] | None = None
        self.log = directory / "gnome-shell.log"
        self.env: dict[str, str] = {}
        self._input: Any = None  # the RemoteDesktop session's connection and path, once made
        self.session_bus: subprocess.Popen[Any]

    def start(self) -> GnomeDesktop:
        self.runtime.mkdir(mode=0o700, parents=True)
        extensions = self.share / "gnome-shell" / "extensions"
        enabled = [TEST_UUID]
        if self.with_extension:
            self.install_extension(extensions / UUID)
            enabled.append(UUID)
        (extensions / TEST_UUID).mkdir(parents=True)
        (extensions / TEST_UUID / "extension.js").write_text(TEST_EXTENSION)
        (extensions / TEST_UUID / "metadata.json").write_text(
            f'{{"uuid": "{TEST_UUID}", "name": "tests", "description": "tests", "shell-version": ["43"]}}')
        # An installed app whose windows say another WM class: the Shell matches them by StartupWMClass.
        applications = self.share / "applications"
        applications.mkdir(parents=True)
        (applications / f"{DESKTOP_APP_ID}.desktop").write_text(
            f"[Desktop Entry]\nType=Application\nName=Mapped App\nExec=false\nStartupWMClass={DESKTOP_APP_CLASS}\n")
        settings = self.directory / "config" / "glib-2.0" / "settings"
        settings.mkdir(parents=True)
        listed = ", ".join(f"'{uuid}'" for uuid in enabled)
        (settings / "keyfile").write_text(f"[org/gnome/shell]\nenabled-extensions=[{listed}]\n"
                                          "welcome-dialog-last-shown-version='999'\n")
        session_bus = self._bus("session")
        system_bus = self._bus("system")
        self.env = {
            **{key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")},
            "XDG_RUNTIME_DIR": str(self.runtime),
            "DBUS_SESSION_BUS_ADDRESS": session_bus,
            "DBUS_SYSTEM_BUS_ADDRESS": system_bus,
            "GSETTINGS_BACKEND": "keyfile",
            "XDG_CONFIG_HOME": str(self.directory / "config"),
            "XDG_DATA_HOME": str(self.directory / "data"),
            "XDG_DATA_DIRS": f"{self.share}:/usr/local/share:/usr/share",
            "XDG_CURRENT_DESKTOP": "GNOME",
            "XDG_SESSION_TYPE": "wayland",
            "WAYLAND_DISPLAY": "wayland-gs",
        }
        self.start_shell()
        return self

    def install_extension(self, where: Path) -> None:
        where.mkdir(parents=True, exist_ok=True)
        for name, text in extension_files(LEGACY).items():
            (where / name).write_text(text)

    def _bus(self, name: str) -> str:
        address = f"unix:path={self.directory / (name + '-bus')}"
        daemon = subprocess.Popen([self.dbus_daemon, "--session", "--nofork", "--nopidfile", f"--address={address}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(daemon)
        if name == "session":
            self.session_bus = daemon
        wait_until(lambda: (self.directory / (name + "-bus")).exists(), 10, f"the {name} bus")
        return address

    def restart_session_bus(self) -> None:
        """The session bus gone and back at the same address (as at a new login), with a new Shell on it."""
        self.kill_shell()
        self.session_bus.terminate()
        self.session_bus.wait(10)
        self.processes.remove(self.session_bus)
        (self.directory / "session-bus").unlink(missing_ok=True)
        self._bus("session")
        self.start_shell()

    def start_shell(self) -> None:
        """The Shell (again, after `kill_shell`), up once its start-up is done, its overview hidden and the
        extensions answer. GNOME Shell 43 sometimes hangs for good in its start-up under load (in a fork for
        ibus-daemon, its log stopping before "GNOME Shell started"): then it is killed and started again."""
        for attempt in range(1, SHELL_STARTS + 1):
            try:
                self._start_shell_once()
                return
            except ShellHung:
                self.kill_shell()
                if attempt == SHELL_STARTS:
                    raise AssertionError(f"gnome-shell hung in its start-up {SHELL_STARTS} times: "
                                         f"{self.log.read_text()[-3000:]}") from None

    def _start_shell_once(self) -> None:
        log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.shell = subprocess.Popen(
                [self.gnome_shell, "--headless", "--wayland", "--no-x11", "--virtual-monitor", "1280x800",
                 "--wayland-display=wayland-gs"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._input = None

        def ready() -> bool:
            if self.shell is not None and self.shell.poll() is not None:
                raise AssertionError(f"gnome-shell exited: {self.log.read_text()[-3000:]}")
            with self.log.open("rb") as log:
                log.seek(log_start)
                if b"GNOME Shell started" not in log.read():
                    return False
            self.call(TEST_PATH, TEST_INTERFACE, "Activate", "s", ("none",))
            return True

        try:
            wait_until(ready, 60, "GNOME Shell and its extensions")
        except AssertionError:
            if self.shell is not None and self.shell.poll() is not None:
                raise AssertionError(f"gnome-shell exited: {self.log.read_text()[-3000:]}") from None
            raise ShellHung() from None
        # The Shell starts in the overview, where no window has focus, and shows it again at the end of its
        # start-up animation (later on a busy machine): windows hide it again while they wait for focus.
        wait_until(self.overview_hidden, 30, "the overview hidden")

    def overview_hidden(self) -> bool:
        """True when the overview is hidden; otherwise hide it and say False."""
        properties = ("/org/gnome/Shell", "org.freedesktop.DBus.Properties")
        ((_, active),) = self.call(*properties, "Get", "ss", ("org.gnome.Shell", "OverviewActive"))
        if active:
            self.call(*properties, "Set", "ssv", ("org.gnome.Shell", "OverviewActive", ("b", False)))
        return not active

    def call(self, path: str, interface: str, method: str, signature: str = "", body: tuple[Any, ...] = (),
             destination: str = "org.gnome.Shell") -> tuple[Any, ...]:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        with open_dbus_connection(self.env["DBUS_SESSION_BUS_ADDRESS"]) as connection:
            message = new_method_call(DBusAddress(path, destination, interface), method, signature or None,
                                      body)
            return unwrap_msg(connection.send_and_get_reply(message, timeout=10))  # type: ignore[no-any-return]

    def focused(self) -> tuple[str, str, str, int, bool]:
        """What tracker's extension says now: (app id, WM class, title, idle ms, locked)."""
        return self.call(OBJECT_PATH, INTERFACE, "Get")  # type: ignore[return-value]

    def open_window(self, app_id: str, title: str) -> WaylandWindow:
        """A new window, focused (the Shell gives new windows focus) once this returns."""
        window = start_window(self.env, app_id, title)
        self.processes.append(window.process)
        wait_until(lambda: window.process.poll() is not None
                   or (self.overview_hidden() and self.focused()[1] == app_id), 20, f"window {app_id}")
        assert window.process.poll() is None, f"the window {app_id} exited"
        return window

    def activate(self, window: WaylandWindow) -> None:
        found = self.call(TEST_PATH, TEST_INTERFACE, "Activate", "s", (window.app,))
        assert found == (True,), f"no window {window.app}"
        wait_until(lambda: self.focused()[1] == window.app, 10, f"focus on {window.app}")

    def touch(self) -> None:
        """Input, as a user's mouse gives it (Mutter's RemoteDesktop, on one connection that keeps the session)."""
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        bus_name = "org.gnome.Mutter.RemoteDesktop"
        if self._input is None:
            connection = open_dbus_connection(self.env["DBUS_SESSION_BUS_ADDRESS"])
            created = new_method_call(DBusAddress("/org/gnome/Mutter/RemoteDesktop", bus_name,
                                                  "org.gnome.Mutter.RemoteDesktop"), "CreateSession")
            (session_path,) = unwrap_msg(connection.send_and_get_reply(created, timeout=10))
            session = DBusAddress(session_path, bus_name, "org.gnome.Mutter.RemoteDesktop.Session")
            unwrap_msg(connection.send_and_get_reply(new_method_call(session, "Start"), timeout=10))
            self._input = (connection, session)
        connection, session = self._input
        for step in (1.0, -1.0):
            unwrap_msg(connection.send_and_get_reply(
                new_method_call(session, "NotifyPointerMotionRelative", "dd", (step, step)), timeout=10))

    def kill_shell(self) -> None:
        if self._input is not None:
            self._input[0].close()
            self._input = None
        if self.shell is not None and self.shell.poll() is None:
            # The whole process group: a child it forked (and hung in) goes with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.shell.pid, signal.SIGKILL)
            self.shell.wait(10)

    def stop(self) -> None:
        self.kill_shell()
        stop_processes(self.processes)
