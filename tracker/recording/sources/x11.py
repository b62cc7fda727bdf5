"""The X11 source: the active window of an X11 desktop, read in-process with python-xlib.

One connection is opened at start and reused. What was read is kept and read again only when the server
says it changed: the source listens for property changes on the root window (_NET_ACTIVE_WINDOW) and on
the recently active windows (their titles), and for their destruction. So a sample is one round trip
(screensaver info, which also brings in the events sent before it) while nothing changes, one more when the
focus moved to a window seen before, and a few more for a new window or a new title. The active window and
its title are read afresh every REREAD_EVERY seconds as well, so a missed change (a window manager that sets
the active window late) cannot last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracker.callbacks import Notify
from tracker.model import Sample, utc_now
from tracker.recording.sources import Permission, SourceUnavailable

if TYPE_CHECKING:
    from Xlib.xobject.drawable import Window

log = logging.getLogger(__name__)

# Property reads ask for this many 32-bit units at once, so a title is one round trip (titles longer
# than 4 KiB are cut, which no one will miss).
PROPERTY_READ_LONGS = 1024
# A window tree deeper than this is not a real client; stop walking up rather than loop.
MAX_TREE_DEPTH = 32
# Seconds between full reads of the active window and its title, whatever the events said.
REREAD_EVERY = 30.0
# Recently active windows kept with their class and title (see X11Source._known).
WINDOWS_KEPT = 32

# ISO 2022 escape sequences as COMPOUND_TEXT uses them: ESC, intermediate bytes, one final byte.
_ISO2022_ESCAPE = re.compile(rb"\x1b([\x20-\x2f]+[\x30-\x7e])")
# The character sets a COMPOUND_TEXT escape switches to, as Python codecs. xterm and other Xlib
# clients write non-Latin-1 titles as UTF-8 segments (ESC % G); the rest cover older locales.
_COMPOUND_TEXT_CHARSETS = {
    b"%G": "utf-8",
    b"%@": "latin-1",
    b"-A": "latin-1",
    b"-B": "iso8859-2",
    b"-C": "iso8859-3",
    b"-D": "iso8859-4",
    b"-F": "iso8859-7",
    b"-G": "iso8859-6",
    b"-H": "iso8859-8",
    b"-L": "iso8859-5",
    b"-M": "iso8859-9",
    b"$)A": "gb2312",
    b"$)B": "euc_jp",
    b"$)C": "euc_kr",
}


def decode_compound_text(data: bytes) -> str:
    """Text of a COMPOUND_TEXT property: Latin-1 by default, switching charset at each escape sequence."""
    pieces: list[str] = []
    codec = "latin-1"
    position = 0
    for escape in _ISO2022_ESCAPE.finditer(data):
        pieces.append(data[position:escape.start()].decode(codec, "replace"))
        # An unknown switch keeps the current charset: a few wrong characters beat losing the title.
        codec = _COMPOUND_TEXT_CHARSETS.get(escape.group(1), codec)
        position = escape.end()
    pieces.append(data[position:].decode(codec, "replace"))
    return "".join(pieces)


@dataclass
class _Known:
    """A recently active window: its app, its title as last read, and what the server said of it since."""

    app: str
    title: str | None
    title_elsewhere: bool = False  # the title came from an ancestor (or there is none): read it every sample
    title_stale: bool = False  # the server said the title changed
    gone: bool = False  # destroyed while active


class X11Source:
    """The foreground window of an X11 desktop (EWMH window managers: _NET_ACTIVE_WINDOW)."""

    name = "x11"

    def __init__(self, notify: Notify, display: str | None = None) -> None:
        try:
            from Xlib import X, Xatom, error
            from Xlib import display as xdisplay
            from Xlib.ext import screensaver
        except ImportError:
            raise SourceUnavailable(
                "The X11 source needs the python-xlib package, which is not installed; install it with "
                "`pip install python-xlib`, or try `tracker run --source demo`."
            ) from None
        self._notify = notify
        self._errors = error
        self._screensaver_on = screensaver.StateOn
        shown_name = display or os.environ.get("DISPLAY")
        try:
            self._display = xdisplay.Display(display)
        except (error.DisplayError, error.ConnectionClosedError, error.XauthError, error.XNoAuthError,
                OSError) as failure:
            if shown_name:
                problem = f"Cannot open the X11 display {shown_name} ({getattr(failure, 'msg', failure)})"
            else:
                problem = "Cannot open an X11 display because DISPLAY is not set"
            raise SourceUnavailable(
                f"{problem}; check that DISPLAY names a running X server, or try `tracker run --source demo`."
            ) from None
        self.display_name = self._display.get_display_name()
        # Errors of requests without a reply would otherwise be printed to stderr by python-xlib.
        self._display.set_error_handler(self._ignore_error)
        self._root = self._display.screen().root
        self._any_type = X.AnyPropertyType
        self._window_type = Xatom.WINDOW
        self._wm_name = Xatom.WM_NAME
        self._wm_class = Xatom.WM_CLASS
        self._string_type = Xatom.STRING
        self._active_window_atom = self._display.intern_atom("_NET_ACTIVE_WINDOW")
        self._net_wm_name = self._display.intern_atom("_NET_WM_NAME")
        self._utf8_string = self._display.intern_atom("UTF8_STRING")
        self._compound_text = self._display.intern_atom("COMPOUND_TEXT")
        self._has_idle = self._display.has_extension("MIT-SCREEN-SAVER")
        if not self._has_idle:
            notify(
                f"The X server on {self.display_name} has no MIT-SCREEN-SAVER extension, so idle time "
                "cannot be detected and time away from the keyboard counts as active."
            )
        # The recently active windows, each with its class (which does not change while the window exists: ICCCM
        # sets it before mapping) and its title. Each is watched until it is destroyed (a window id may be given
        # again afterwards) or pushed out by newer ones, so going back to a window reads neither again unless
        # the server said its title changed meanwhile.
        self._known: dict[int, _Known] = {}
        self._property_notify = X.PropertyNotify
        self._destroy_notify = X.DestroyNotify
        self._watch_mask = X.PropertyChangeMask | X.StructureNotifyMask
        self._root.change_attributes(event_mask=X.PropertyChangeMask)
        self._active_id: int | None = None
        self._active_stale = True  # _NET_ACTIVE_WINDOW may have changed: read it again
        self._reread_at = 0.0
        self._connection_lost = False
        self._closed = False

    # Titles are decoded with replacement characters (see _decode): a title is never unreadable here.
    unreadable_titles = 0

    def permissions(self) -> list[Permission]:
        return []  # nothing to allow

    def read(self) -> Sample | None:
        if self._closed:
            return None
        try:
            return self._read()
        except self._errors.ConnectionClosedError:
            if not self._connection_lost:
                self._connection_lost = True
                self._notify(
                    f"The connection to the X11 display {self.display_name} was closed, so nothing more "
                    "can be recorded; restart tracker once the desktop is back."
                )
            return None
        except Exception:  # a read never raises: one bad moment must not stop the recording
            log.debug("reading the active X11 window failed", exc_info=True)
            return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(self._errors.ConnectionClosedError):  # the server went first
            self._display.close()

    def _read(self) -> Sample | None:
        sampled_at = utc_now()
        idle_seconds, locked = self._idle_and_locked()
        self._take_events()
        now = time.monotonic()
        if now >= self._reread_at:
            self._reread_at = now + REREAD_EVERY
            self._active_stale = True
            if self._active_id in self._known:
                self._known[self._active_id].title_stale = True
        if self._active_stale:
            self._active_stale = False
            self._activate(self._active_window_id())
        window_id = self._active_id
        if not window_id:
            return None
        known = self._known.get(window_id)
        if known is None:
            app, title, own_title = self._describe(window_id)
            if app is None:
                return None
            known = self._keep(window_id, _Known(app, title, title_elsewhere=not own_title))
        elif (known.title_stale or known.title_elsewhere) and not known.gone:
            known.title_stale = False
            known.title = self._own_title(window_id)
        return Sample(time=sampled_at, app=known.app, title=known.title, idle_seconds=idle_seconds, locked=locked)

    def _take_events(self) -> None:
        """Mark what the events since the last read changed; the screensaver query (or this call) read them in."""
        display = self._display
        for _ in range(display.pending_events()):
            event = display.next_event()
            if event.type == self._property_notify:
                if event.window.id == self._root.id:
                    self._active_stale |= event.atom == self._active_window_atom
                elif event.atom in (self._net_wm_name, self._wm_name) and event.window.id in self._known:
                    self._known[event.window.id].title_stale = True
            elif event.type == self._destroy_notify and event.window.id in self._known:
                if event.window.id == self._active_id:
                    # Gone, while the window manager may still name it active: its app stays, its title is gone.
                    gone = self._known[event.window.id]
                    gone.title, gone.gone = None, True
                    self._active_stale = True
                else:
                    del self._known[event.window.id]

    def _activate(self, window_id: int | None) -> None:
        """The active window is now `window_id`: a window not known yet is watched before anything of it is read,
        so that no change after the read is missed."""
        previous = self._active_id
        if window_id == previous:
            return
        if previous:
            left = self._known.get(previous)
            if left is None:  # never known (no class): not watched any longer
                self._set_events(previous, 0)
            elif left.gone:
                del self._known[previous]
        if window_id:
            known = self._known.pop(window_id, None)
            if known is None:
                self._set_events(window_id, self._watch_mask)
            else:
                self._known[window_id] = known  # the most recent now
        self._active_id = window_id

    def _keep(self, window_id: int, known: _Known) -> _Known:
        self._known[window_id] = known
        if len(self._known) > WINDOWS_KEPT:
            oldest = next(iter(self._known))
            del self._known[oldest]
            self._set_events(oldest, 0)
        return known

    def _set_events(self, window_id: int, mask: int) -> None:
        self._display.create_resource_object("window", window_id).change_attributes(event_mask=mask)

    def _idle_and_locked(self) -> tuple[float | None, bool]:
        if not self._has_idle:
            return None, False
        info = self._root.screensaver_query_info()
        # "A locked screen counts as away" maps to the server's screen saver being on: X screen lockers
        # (xscreensaver, light-locker, xss-lock with i3lock) activate it when they lock. A locker that
        # never engages the server's screen saver is not seen here; its idle time still grows, though.
        return info.idle / 1000, info.state == self._screensaver_on

    def _active_window_id(self) -> int | None:
        active = self._root.get_property(self._active_window_atom, self._window_type, 0, 1)
        if active is None or not active.value:
            return None
        return int(active.value[0]) or None

    def _describe(self, window_id: int) -> tuple[str | None, str | None, bool]:
        """The app (WM_CLASS class, from the window or its nearest ancestor) and title of a window, and whether
        the title is the window's own. A window that is gone (or never was) gives nothing."""
        window = self._display.create_resource_object("window", window_id)
        try:
            title = self._title(window)
            app, found_title = self._walk_up_for_class(window, title)
        except self._errors.XError:  # closed between two requests (BadWindow) or never existed
            return None, None, False
        return app, found_title, title is not None

    def _own_title(self, window_id: int) -> str | None:
        try:
            return self._title(self._display.create_resource_object("window", window_id))
        except self._errors.XError:
            return None

    def _walk_up_for_class(self, window: Window, title: str | None) -> tuple[str | None, str | None]:
        """The nearest class up the tree from `window` (which may be a client's inner window), and the
        nearest title found on the way when `window` has none."""
        for _ in range(MAX_TREE_DEPTH):
            app = self._app_class(window)
            if app is not None:
                return app, title
            parent = window.query_tree().parent
            if not parent or parent.id == self._root.id:
                break
            window = parent
            title = title or self._title(window)
        return None, title

    def _app_class(self, window: Window) -> str | None:
        wm_class = self._text_property(window, self._wm_class, self._string_type)
        if not wm_class:
            return None
        instance, _, rest = wm_class.partition("\0")
        app_class = rest.split("\0", 1)[0]
        return app_class or instance or None

    def _title(self, window: Window) -> str | None:
        return (self._text_property(window, self._net_wm_name, self._utf8_string)
                or self._text_property(window, self._wm_name, self._any_type))

    def _text_property(self, window: Window, atom: int, property_type: int) -> str | None:
        found = window.get_property(atom, property_type, 0, PROPERTY_READ_LONGS)
        if found is None or found.format != 8 or not found.value:
            return None
        return self._decode(found.property_type, found.value) or None

    def _decode(self, property_type: int, value: bytes) -> str:
        if property_type == self._string_type:
            return value.decode("latin-1")  # ICCCM: STRING is ISO Latin-1
        if property_type == self._compound_text:
            return decode_compound_text(value)
        return value.decode("utf-8", "replace")  # UTF8_STRING, and the best guess for anything else

    @staticmethod
    def _ignore_error(error: Any, request: Any) -> None:
        log.debug("X error ignored: %s", error)
