"""A real wlroots desktop for the tests: sway headless (pixman renderer, no input devices), foot windows of any
app id and title, input through wtype, and optionally Xwayland with xterm windows.

sway refuses to run as root, so as root it runs as `nobody` (setpriv) in a runtime directory nobody owns; the
tests, as root, can still reach its sockets.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from helpers.servers import require_program, stop_processes, wait_until

WAYLAND_NAME = "wayland-test"


class SwayWindow:
    """A foot window whose title can be changed (lines written to a FIFO become OSC 2 title sequences)."""

    def __init__(self, process: subprocess.Popen[bytes], fifo: Path, app_id: str) -> None:
        self.process = process
        self.app_id = app_id
        self._fifo = os.open(fifo, os.O_RDWR)  # read-write: never blocks, and keeps the reader's loop open

    def set_title(self, title: str) -> None:
        os.write(self._fifo, title.encode() + b"\n")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self._fifo >= 0:
            os.close(self._fifo)
            self._fifo = -1


class SwayDesktop:
    def __init__(self, directory: Path, xwayland: bool = False) -> None:
        self.directory = directory
        self.sway = require_program("sway", "sway")
        self.swaymsg = require_program("swaymsg", "sway")
        self.foot = require_program("foot", "foot")
        self.wtype = require_program("wtype", "wtype")
        self.xwayland = xwayland
        if xwayland:
            require_program("Xwayland", "xwayland")
            self.xterm = require_program("xterm", "xterm")
        self.process: subprocess.Popen[bytes] | None = None
        self.windows: list[SwayWindow] = []
        self.extra_pids: list[int] = []  # windows sway started (xterm): stopped by the pid its tree gives
        # A directory of its own the compositor's user can reach (/tmp/pytest-of-root is root's only).
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="sway-runtime-"))
        self.runtime_dir.chmod(0o700)
        self._as_nobody = os.geteuid() == 0
        if self._as_nobody:
            shutil.chown(self.runtime_dir, "nobody", "nogroup")
        self.log = directory / "sway.log"

    @property
    def socket(self) -> str:
        return str(self.runtime_dir / WAYLAND_NAME)

    @property
    def env(self) -> dict[str, str]:
        """For clients of this desktop (and tracker): its Wayland display, no X display."""
        env = dict(os.environ, XDG_RUNTIME_DIR=str(self.runtime_dir), WAYLAND_DISPLAY=WAYLAND_NAME)
        env.pop("DISPLAY", None)
        env.pop("SWAYSOCK", None)
        return env

    def start(self) -> SwayDesktop:
        config = self.runtime_dir / "sway.config"
        config.write_text(
            "output HEADLESS-1 resolution 1280x800\n"
            f"xwayland {'enable' if self.xwayland else 'disable'}\n"
            "focus_follows_mouse no\n"
        )
        config.chmod(0o644)
        env = self.env | {"WLR_BACKENDS": "headless", "WLR_LIBINPUT_NO_DEVICES": "1", "WLR_RENDERER": "pixman",
                          "WAYLAND_DISPLAY": WAYLAND_NAME}
        env.pop("WAYLAND_DISPLAY")  # sway picks its own name: WAYLAND_DISPLAY would make it nest
        argv = [self.sway, "-c", str(config)]
        if self._as_nobody:
            argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        wait_until(self._ready, 30, "sway")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"sway exited: {self.log.read_text()[-2000:]}")
        sockets = glob.glob(str(self.runtime_dir / "wayland-*"))
        ipc = glob.glob(str(self.runtime_dir / "sway-ipc.*.sock"))
        if not sockets or not ipc:
            return False
        name = Path(sorted(s for s in sockets if not s.endswith(".lock"))[0]).name
        if name != WAYLAND_NAME:  # one name for every test: link it
            link = self.runtime_dir / WAYLAND_NAME
            if not link.exists():
                link.symlink_to(name)
        self.ipc_socket = ipc[0]
        return self.message("-t", "get_version") is not None

    def message(self, *args: str, check: bool = True) -> Any:
        """swaymsg's JSON answer."""
        # X11 titles reach sway's JSON as they are, Latin-1 included.
        done = subprocess.run([self.swaymsg, "-s", self.ipc_socket, "-r", *args], capture_output=True, text=True,
                              errors="replace", timeout=15)
        if done.returncode != 0:
            if check:
                raise AssertionError(f"swaymsg {' '.join(args)} failed: {done.stdout} {done.stderr}")
            return None
        return json.loads(done.stdout) if done.stdout.strip() else None

    def tree_views(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def walk(node: dict[str, Any]) -> None:
            if node.get("pid") and node.get("type") in ("con", "floating_con"):
                found.append(node)
            for child in node.get("nodes", []) + node.get("floating_nodes", []):
                walk(child)

        walk(self.message("-t", "get_tree"))
        return found

    def open_window(self, app_id: str, title: str) -> SwayWindow:
        """A foot window with this app id and title, mapped (not necessarily focused)."""
        fifo = Path(tempfile.mkdtemp(dir=self.directory)) / "title"
        os.mkfifo(fifo)
        script = 'while read -r title; do printf "\\033]2;%s\\007" "$title"; done < "$0"'
        process = subprocess.Popen([self.foot, f"--app-id={app_id}", f"--title={title}", "sh", "-c", script,
                                    str(fifo)], env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        window = SwayWindow(process, fifo, app_id)
        self.windows.append(window)
        wait_until(lambda: any(view.get("app_id") == app_id for view in self.tree_views()), 20,
                   f"the window {app_id}")
        return window

    def open_x11_window(self, app_class: str, title: str, prefix: str = "") -> int:
        """An xterm of this class through Xwayland (started by sway, which knows DISPLAY); its pid. The title
        goes through sh in double quotes."""
        self.message("exec", f'{prefix}{self.xterm} -class {app_class} -T "{title}" -e sleep 3600')

        def view() -> dict[str, Any] | None:
            return next((v for v in self.tree_views()
                         if (v.get("window_properties") or {}).get("class") == app_class), None)

        pid = int(wait_until(view, 30, f"the X11 window {app_class}")["pid"])
        self.extra_pids.append(pid)
        return pid

    def open_x11_latin1_window(self, app_class: str, title: str) -> int:
        """An xterm in the C locale: it sets WM_NAME as STRING, Latin-1, which wlroots passes on unconverted."""
        octal = "".join(f"\\{byte:03o}" for byte in title.encode("latin-1"))
        return self.open_x11_window(app_class, f"$(printf '{octal}')", prefix="LC_ALL=C ")

    def x_display(self) -> str:
        """The X display of sway's Xwayland (set in sway's own environment once it started)."""
        answer = self.runtime_dir / "x-display"
        self.message("exec", f"echo $DISPLAY > {answer}")
        return str(wait_until(lambda: answer.read_text().strip(), 10, "Xwayland's DISPLAY"))

    def focus(self, app_id: str) -> None:
        self.message(f'[app_id="{app_id}"] focus')

    def focus_x11(self, app_class: str) -> None:
        self.message(f'[class="{app_class}"] focus')

    def workspace(self, name: str) -> None:
        self.message("workspace", name)

    def touch(self) -> None:
        """Keyboard input, as the user would type (a key nobody notices)."""
        done = subprocess.run([self.wtype, "-k", "Shift_L"], env=self.env, capture_output=True, text=True,
                              timeout=15)
        if done.returncode != 0:
            raise AssertionError(f"wtype failed: {done.stderr}")

    def kill(self) -> None:
        """The compositor gone at once, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> SwayDesktop:
        """A new sway on the same display name, after `kill`: its windows went with the old one."""
        for window in self.windows:
            window.close()
        self.windows.clear()
        for leftover in self.runtime_dir.glob("wayland-*"):
            if not leftover.is_symlink():
                leftover.unlink()
        for leftover in self.runtime_dir.glob("sway-ipc.*.sock"):
            leftover.unlink()
        return self.start()

    def stop(self) -> None:
        """Every window, then sway: sway is stopped even when a window will not go."""
        try:
            for window in self.windows:
                window.close()
            for pid in self.extra_pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        finally:
            self.windows.clear()
            self.extra_pids.clear()
            if self.process is not None:
                stop_processes([self.process], grace=10)
            self.process = None
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
