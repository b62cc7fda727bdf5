"""A Wayland test window (xdg-shell, through pywayland): `python wl_window.py APP_ID TITLE`.

foot dies under a virtual KWin (SIGFPE), so the KWin tests open these instead. It prints "mapped" once its
first frame is committed; each line on stdin is a command: "title NEW TITLE" renames it, "quit" (or the end
of stdin) closes it.
"""

from __future__ import annotations

import mmap
import os
import selectors
import sys
from typing import Any

from pywayland.client import Display
from pywayland.protocol.wayland import WlCompositor, WlShm
from pywayland.protocol.xdg_shell import XdgWmBase

WIDTH, HEIGHT = 320, 200


class Window:
    def __init__(self, app_id: str, title: str) -> None:
        self.display = Display(os.environ.get("WAYLAND_DISPLAY"))
        self.display.connect()
        self.globals: dict[str, Any] = {}
        registry = self.display.get_registry()
        registry.dispatcher["global"] = self._global
        self.display.roundtrip()
        self.surface = self.globals["wl_compositor"].create_surface()
        self.xdg_surface = self.globals["xdg_wm_base"].get_xdg_surface(self.surface)
        self.xdg_surface.dispatcher["configure"] = self._configure
        self.toplevel = self.xdg_surface.get_toplevel()
        self.toplevel.dispatcher["close"] = lambda *_: self.quit()
        self.toplevel.set_app_id(app_id)
        self.toplevel.set_title(title)
        self.surface.commit()
        self.buffer = self._white_buffer()
        self.mapped = False
        self.running = True

    def _global(self, registry: Any, name: int, interface: str, version: int) -> None:
        kinds = {"wl_compositor": (WlCompositor, 4), "wl_shm": (WlShm, 1), "xdg_wm_base": (XdgWmBase, 1)}
        if interface in kinds:
            kind, wanted = kinds[interface]
            self.globals[interface] = registry.bind(name, kind, min(version, wanted))
            if interface == "xdg_wm_base":
                self.globals[interface].dispatcher["ping"] = lambda base, serial: base.pong(serial)

    def _white_buffer(self) -> Any:
        stride = WIDTH * 4
        size = stride * HEIGHT
        fd = os.memfd_create("wl_window")
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size) as pixels:
            pixels.write(b"\xff" * size)
        pool = self.globals["wl_shm"].create_pool(fd, size)
        buffer = pool.create_buffer(0, WIDTH, HEIGHT, stride, WlShm.format.argb8888.value)
        pool.destroy()
        os.close(fd)
        return buffer

    def _configure(self, xdg_surface: Any, serial: int) -> None:
        xdg_surface.ack_configure(serial)
        self.surface.attach(self.buffer, 0, 0)
        self.surface.damage(0, 0, WIDTH, HEIGHT)
        self.surface.commit()
        if not self.mapped:
            self.mapped = True
            print("mapped", flush=True)

    def command(self, line: str) -> None:
        verb, _, argument = line.rstrip("\n").partition(" ")
        if verb == "title":
            self.toplevel.set_title(argument)
            self.surface.commit()
        elif verb == "quit":
            self.quit()

    def quit(self) -> None:
        self.running = False

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.display.get_fd(), selectors.EVENT_READ, "display")
        selector.register(sys.stdin, selectors.EVENT_READ, "stdin")
        while self.running:
            self.display.flush()
            for key, _ in selector.select():
                if key.data == "display":
                    if self.display.dispatch(block=True) < 0:
                        return
                else:
                    line = sys.stdin.readline()
                    if not line:
                        return
                    self.command(line)
        self.toplevel.destroy()
        self.xdg_surface.destroy()
        self.surface.destroy()
        self.display.flush()
        self.display.disconnect()


if __name__ == "__main__":
    Window(sys.argv[1], sys.argv[2]).run()
