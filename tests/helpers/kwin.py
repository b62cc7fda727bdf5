"""A real KDE Plasma window manager for the tests: KWin (`kwin_wayland --virtual`) on a private session bus, in
a private XDG_RUNTIME_DIR, with Wayland test windows (wl_window.py) of any app id and title."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.dbus_bus import private_bus
from helpers.servers import require_module, require_program, stop_processes, wait_until
from helpers.wayland_window import WaylandWindow, start_window
from tracker.recording.sources.kwin import load_script, script_loaded, unload_script

if TYPE_CHECKING:
    from jeepney.io.blocking import DBusConnection

SOCKET = "wayland-kwin"
TEST_INTERFACE = "org.tracker.Test"


class KWinDesktop:
    """KWin on a virtual output, or in a window of an Xvfb (`nested_in_x`: its only way to get input here, from
    xdotool). kwin_wayland carries a file capability this container does not allow, so a plain copy of it
    (shutil.copy drops the capability) is what runs; the copy keeps the name, which KWin checks before it
    uses its own Qt platform plugin."""

    def __init__(self, directory: Path, lockscreen: bool = False, nested_in_x: bool = False,
                 xwayland: bool = False) -> None:
        self.directory = directory
        # With its screen locker KWin serves org.freedesktop.ScreenSaver; without, nothing does. Once locked
        # it stays locked (the greeter cannot start here), so the tests that lock have a KWin of their own.
        self.lockscreen = lockscreen
        self.nested_in_x = nested_in_x
        self.xwayland = xwayland
        self.x_display = ""
        self.xvfb_process: subprocess.Popen[bytes] | None = None
        self._pointer_positions = itertools.cycle([(300, 200), (400, 300)])
        require_module("pywayland", "pywayland")
        installed = require_program("kwin_wayland", "kwin-wayland")
        self.dbus_daemon = require_program("dbus-daemon", "dbus-daemon")
        self.kwin = str(directory / "kwin_wayland")
        shutil.copy(installed, self.kwin)
        self.runtime_dir = directory / "runtime"
        self.runtime_dir.mkdir(mode=0o700)
        self.bus_address = ""
        self.bus_pid: int | None = None
        self.kwin_process: subprocess.Popen[bytes] | None = None
        self.windows: list[WaylandWindow] = []
        self._script_numbers = itertools.count()

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.bus_address, XDG_RUNTIME_DIR=str(self.runtime_dir),
                   WAYLAND_DISPLAY=SOCKET, XDG_CURRENT_DESKTOP="KDE", XDG_SESSION_TYPE="wayland")
        env.pop("DISPLAY", None)
        return env

    @property
    def wayland_socket(self) -> str:
        return str(self.runtime_dir / SOCKET)

    def start(self) -> KWinDesktop:
        self.bus_address, self.bus_pid = private_bus(self.dbus_daemon, self.directory / "bus")
        if self.nested_in_x:
            self._start_xvfb()
        self.start_kwin()
        return self

    def _start_xvfb(self) -> None:
        xvfb = require_program("Xvfb", "xvfb")
        self.xdotool = require_program("xdotool", "xdotool")
        read_fd, write_fd = os.pipe()
        self.xvfb_process = subprocess.Popen(
            [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise AssertionError("Xvfb did not start")
        self.x_display = f":{number}"

    def start_kwin(self) -> None:
        if self.nested_in_x:
            backend, env = ["--x11-display", self.x_display], self.env | {"DISPLAY": self.x_display}
        else:
            backend, env = ["--virtual", "--width", "1280", "--height", "800"], self.env
        with (self.directory / "kwin.log").open("ab") as log:
            self.kwin_process = subprocess.Popen(
                [self.kwin, *backend, *([] if self.lockscreen else ["--no-lockscreen"]),
                 *(["--xwayland"] if self.xwayland else []), "--socket", SOCKET],
                env=env | {"KWIN_COMPOSE": "Q"}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._kwin_ready, 30, "KWin on the session bus")

    def _kwin_ready(self) -> bool:
        if self.kwin_process is not None and self.kwin_process.poll() is not None:
            raise AssertionError(f"KWin exited: {(self.directory / 'kwin.log').read_text()[-2000:]}")
        with self.connection() as connection:
            script_loaded(connection, "none")  # raises until KWin serves /Scripting (it owns its name earlier)
        return (self.runtime_dir / SOCKET).exists() and (not self.xwayland or bool(self.xwayland_display()))

    def xwayland_display(self) -> str | None:
        """The X display of KWin's Xwayland (xwayland only): from the command line KWin started it with."""
        assert self.kwin_process is not None
        for process in Path("/proc").iterdir():
            try:
                if (process.name.isdigit() and (process / "comm").read_text().strip() == "Xwayland"
                        and (process / "stat").read_text().rsplit(")", 1)[1].split()[1]
                        == str(self.kwin_process.pid)):
                    return (process / "cmdline").read_text().split("\0")[1]
            except OSError:  # gone meanwhile
                continue
        return None

    def kill_kwin(self) -> None:
        """KWin gone as if it crashed (SIGKILL), its name released on the bus."""
        assert self.kwin_process is not None
        self.kwin_process.kill()
        self.kwin_process.wait(10)
        self.kwin_process = None

    def touch(self) -> None:
        """Input, as a user's mouse gives it (nested_in_x only): the pointer moves inside KWin's window."""
        # KWin's window is the only one on the Xvfb, at its top left: these positions are inside it.
        x, y = next(self._pointer_positions)
        subprocess.run([self.xdotool, "mousemove", str(x), str(y)], env=dict(os.environ, DISPLAY=self.x_display),
                       check=True, timeout=15)

    def lock(self) -> None:
        """Lock the screen, as the user's shortcut would."""
        from jeepney import DBusAddress, MessageType, new_method_call

        address = DBusAddress("/ScreenSaver", bus_name="org.freedesktop.ScreenSaver",
                              interface="org.freedesktop.ScreenSaver")
        with self.connection() as connection:
            reply = connection.send_and_get_reply(new_method_call(address, "Lock"), timeout=10)
        assert reply.header.message_type == MessageType.method_return, reply.body

    def connection(self) -> DBusConnection:
        from jeepney.io.blocking import open_dbus_connection

        return open_dbus_connection(self.bus_address)

    def open_window(self, app: str, title: str) -> WaylandWindow:
        """A Wayland window whose app id is `app` and title `title`, once KWin shows it."""
        window = start_window(self.env, app, title)
        self.windows.append(window)
        wait_until(lambda: app in self.run_script("apps()"), 15, f"KWin to list {app}")
        return window

    def activate(self, app: str) -> None:
        """Focus the window of `app`, as a click on it would."""
        wait_until(lambda: self.run_script(f"activate({json.dumps(app)})") == [app], 15, f"{app} activated")

    def run_script(self, expression: str) -> list[str]:
        """What `expression` gives (a list of texts) in a one-shot KWin script, with the helpers
        apps() -> the app ids of every window, and activate(app) -> [app] once it is focused."""
        from jeepney import MatchRule, new_method_return

        name = f"tracker-test-{next(self._script_numbers)}"
        with self.connection() as connection, connection.filter(MatchRule(type="method_call")) as calls:
            text = f"""
            var windows = workspace.windowList ? workspace.windowList() : workspace.clientList();
            function apps() {{
                var found = [];
                for (var i = 0; i < windows.length; i++) found.push(String(windows[i].resourceClass));
                return found;
            }}
            function activate(app) {{
                for (var i = 0; i < windows.length; i++) {{
                    if (String(windows[i].resourceClass) === app) {{
                        if (workspace.activeWindow !== undefined) workspace.activeWindow = windows[i];
                        else workspace.activeClient = windows[i];
                    }}
                }}
                var active = workspace.activeWindow !== undefined ? workspace.activeWindow : workspace.activeClient;
                return active ? [String(active.resourceClass)] : [];
            }}
            callDBus({json.dumps(connection.unique_name)}, "/", "{TEST_INTERFACE}", "Result",
                     JSON.stringify({expression}));
            """
            try:
                load_script(connection, text, name)
                answer = connection.recv_until_filtered(calls, timeout=10)
                connection.send(new_method_return(answer))
            finally:
                unload_script(connection, name)
        return list(json.loads(answer.body[0]))

    def stop(self) -> None:
        for window in self.windows:
            if window.process.poll() is None:
                window.process.kill()
                window.process.wait()
        self.windows.clear()
        stop_processes([process for process in (self.xvfb_process, self.kwin_process) if process is not None],
                       grace=10)  # KWin first, then the Xvfb it may be nested in
        self.xvfb_process = None
        if self.bus_pid is not None:
            os.kill(self.bus_pid, signal.SIGTERM)
            self.bus_pid = None
