"""The X11 source: the active window of an X11 desktop, read in-process with python-xlib.

One connection is opened at start and reused. What was read is kept and read again only when the server
says it changed: the source listens for property changes on the root window (_NET_ACTIVE_WINDOW) and on
the active window (its title), and for the active window's destruction. So a sample is one round trip
(screensaver info, which also brings in the events sent before it) while nothing changes, and a few more
when the focus or the title changed. Everything is read afresh every REREAD_EVERY seconds as well, so a
missed change (a window manager that sets the active window late) cannot last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
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
# Windows whose class is kept (see X11Source._classes).
CLASSES_KEPT = 32

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
        # A window's class does not change while it exists (ICCCM sets it before mapping), so the classes of
        # recently active windows are kept, each until the server says its window was destroyed (a window id
        # may be given again afterwards): going back to a window skips reading its class.
        self._classes: dict[int, str] = {}
        # What the last read found, kept until an event (or REREAD_EVERY) says to read it again.
        self._property_notify = X.PropertyNotify
        self._destroy_notify = X.DestroyNotify
        self._structure_mask = X.StructureNotifyMask
        self._watch_mask = X.PropertyChangeMask | X.StructureNotifyMask
        self._root.change_attributes(event_mask=X.PropertyChangeMask)
        self._active_id: int | None = None
        self._active_app: str | None = None
        self._active_title: str | None = None
        self._active_stale = True
        self._title_stale = True
        self._title_elsewhere = False  # the title came from another window (or none): read it every sample
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
            self._active_stale = self._title_stale = True
        if self._active_stale:
            self._active_stale = False
            window_id = self._active_window_id()
            if window_id != self._active_id:
                self._watch(window_id)
                self._title_stale = True
        if not self._active_id:
            return None
        if self._title_stale or self._title_elsewhere:
            self._title_stale = False
            self._active_app, self._active_title = self._describe(self._active_id)
        if self._active_app is None:
            return None
        return Sample(time=sampled_at, app=self._active_app, title=self._active_title, idle_seconds=idle_seconds,
                      locked=locked)

    def _take_events(self) -> None:
        """Mark what the events since the last read changed; the screensaver query (or this call) read them in."""
        display = self._display
        for _ in range(display.pending_events()):
            event = display.next_event()
            if event.type == self._property_notify:
                if event.window.id == self._root.id:
                    self._active_stale |= event.atom == self._active_window_atom
                elif event.window.id == self._active_id:
                    self._title_stale |= event.atom in (self._net_wm_name, self._wm_name)
            elif event.type == self._destroy_notify:
                self._classes.pop(event.window.id, None)
                if event.window.id == self._active_id:
                    # Gone, while the window manager may still name it active: its app stays, its title is gone.
                    self._active_title = None
                    self._active_stale = True

    def _watch(self, window_id: int | None) -> None:
        """Listen to the new active window instead of the old one: before its title is read, so that no change
        after the read is missed."""
        if self._active_id:
            # A window whose class is kept is still watched for its destruction only.
            self._set_events(self._active_id, self._structure_mask if self._active_id in self._classes else 0)
        if window_id:
            self._set_events(window_id, self._watch_mask)
        self._active_id = window_id

    def _set_events(self, window_id: int, mask: int) -> None:
        self._display.create_resource_object("window", window_id).change_attributes(event_mask=mask)

    def _keep_class(self, window_id: int, app: str) -> None:
        self._classes[window_id] = app
        if len(self._classes) > CLASSES_KEPT:
            oldest = next(iter(self._classes))
            del self._classes[oldest]
            if oldest != self._active_id:
                self._set_events(oldest, 0)

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

    def _describe(self, window_id: int) -> tuple[str | None, str | None]:
        """The app (WM_CLASS class, from the window or its nearest ancestor) and title of a window.

        A window that is gone gives what was read before it went: the app if it was known, or nothing.
        """
        app = self._classes.get(window_id)
        title: str | None = None
        window = self._display.create_resource_object("window", window_id)
        try:
            title = self._title(window)
            self._title_elsewhere = title is None
            if app is None:
                app, title = self._walk_up_for_class(window, title)
                if app is not None:
                    self._keep_class(window_id, app)
        except self._errors.XError:  # closed between two requests (BadWindow) or never existed
            pass
        return app, title

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
