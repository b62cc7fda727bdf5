"""A Wayland test window (pywayland, xdg-shell): `python gnome_window.py APP_ID TITLE`.

It maps one small window whose app id and title are the arguments, and reads lines on stdin: `title TEXT`
renames it, `quit` (or the end of stdin) closes it. It prints `mapped` once the compositor showed it.
"""

from __future__ import annotations

import mmap
import os
import select
import sys

from pywayland.client import Display
from pywayland.protocol.wayland import WlCompositor, WlShm
from pywayland.protocol.xdg_shell import XdgWmBase

WIDTH, HEIGHT = 320, 200


def main(app_id: str, title: str) -> None:
    display = Display()
    display.connect()
    globals_found: dict[str, object] = {}

    def on_global(registry: object, name: int, interface: str, version: int) -> None:
        wanted = {"wl_compositor": (WlCompositor, 4), "wl_shm": (WlShm, 1), "xdg_wm_base": (XdgWmBase, 1)}
        if interface in wanted:
            kind, most = wanted[interface]
            globals_found[interface] = registry.bind(name, kind, min(version, most))  # type: ignore[attr-defined]

    registry = display.get_registry()
    registry.dispatcher["global"] = on_global
    display.roundtrip()
    compositor, shm, wm_base = (globals_found[name] for name in ("wl_compositor", "wl_shm", "xdg_wm_base"))
    wm_base.dispatcher["ping"] = lambda base, serial: base.pong(serial)  # type: ignore[attr-defined]

    size = WIDTH * HEIGHT * 4
    fd = os.memfd_create("gnome-window")
    os.ftruncate(fd, size)
    pixels = mmap.mmap(fd, size)
    pixels.write(b"\x80\x40\x20\xff" * (WIDTH * HEIGHT))
    pool = shm.create_pool(fd, size)  # type: ignore[attr-defined]
    buffer = pool.create_buffer(0, WIDTH, HEIGHT, WIDTH * 4, WlShm.format.argb8888.value)

    surface = compositor.create_surface()  # type: ignore[attr-defined]
    xdg_surface = wm_base.get_xdg_surface(surface)  # type: ignore[attr-defined]
    toplevel = xdg_surface.get_toplevel()
    toplevel.set_app_id(app_id)
    toplevel.set_title(title)
    mapped = False

    def on_configure(xdg: object, serial: int) -> None:
        nonlocal mapped
        xdg.ack_configure(serial)  # type: ignore[attr-defined]
        if not mapped:
            surface.attach(buffer, 0, 0)
            surface.damage(0, 0, WIDTH, HEIGHT)
            mapped = True
        surface.commit()
        print("mapped", flush=True)

    xdg_surface.dispatcher["configure"] = on_configure
    toplevel.dispatcher["close"] = lambda *args: sys.exit(0)
    surface.commit()
    display.flush()
    while True:
        display.flush()
        ready, _, _ = select.select([display.get_fd(), sys.stdin], [], [])
        if display.get_fd() in ready:
            display.dispatch(block=True)
        if sys.stdin in ready:
            line = sys.stdin.readline()
            if not line or line.strip() == "quit":
                break
            if line.startswith("title "):
                toplevel.set_title(line[len("title "):].rstrip("\n"))
                surface.commit()
    toplevel.destroy()
    xdg_surface.destroy()
    surface.destroy()
    display.roundtrip()
    display.disconnect()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
