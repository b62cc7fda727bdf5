"""The KDE Plasma (KWin) source: the active window, pushed to us by a KWin script over the session bus.

KWin offers ordinary Wayland clients no way to see other windows, so a small script is loaded into KWin
(org.kde.kwin.Scripting, Plasma 5.27 and 6). It calls back to this connection's unique bus name with
(resourceClass, desktopFileName, caption) when it loads, on each activation and on each caption change of
the active window. A read drains those calls without waiting: there is no round trip per sample, only one
every few seconds for the lock state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.callbacks import Notify
from tracker.model import Sample, utc_now
from tracker.recording.sources import Permission, SourceUnavailable
from tracker.session_bus import session_bus_address

if TYPE_CHECKING:
    from jeepney import Message
    from jeepney.io.blocking import DBusConnection

    from tracker.recording.sources.wayland_idle import WaylandIdle

log = logging.getLogger(__name__)

KWIN_SERVICE = "org.kde.KWin"
SCRIPT_NAME = "tracker"  # KWin's plugin name for our script: a stale one from a crashed run is found by it
# Held on the bus by the source whose script is SCRIPT_NAME: while another tracker (a `tracker doctor` next to
# `tracker run`) holds it, that script is alive, and this one loads its own under a name of its own.
SCRIPT_OWNER_NAME = "org.tracker.KWinScript"
# Where the script calls us: any path and interface will do on a unique name; these say who it is for.
CALLBACK_PATH = "/org/tracker/KWin"
CALLBACK_INTERFACE = "org.tracker.KWin"
CALLBACK_METHOD = "ActiveWindow"
# How long one call to KWin or the bus may take before the source gives up on it.
CALL_TIMEOUT = 2.0
# The lock state is asked at most this often (a round trip); in between the last answer stands.
LOCK_CHECK_SECONDS = 2.0
# Where no screen locker answers, it is looked for again this often (it may start after tracker).
NO_LOCKER_SECONDS = 60.0
# How long opening the source waits for the script's first report (it comes within milliseconds).
FIRST_REPORT_SECONDS = 2.0
# How long opening the source waits for a KWin that is still starting, and how often it asks meanwhile.
STARTUP_SECONDS = 10.0
STARTUP_RETRY_SECONDS = 0.25
# A session bus that went away is connected to again this often.
RECONNECT_SECONDS = 5.0
# A KWin that came back and did not run the script yet is asked again this often.
SCRIPT_RETRY_SECONDS = 2.0
# Calls waiting to be read are few (one per focus or title change); a flood keeps only the newest.
MAX_QUEUED_MESSAGES = 1000

# KWin tells windows of the same caption apart by appending " <2>", " <3>"... to the caption it shows (and
# gives scripts): the window's own title is what is recorded, the same in whichever window it is.
KWIN_DUPLICATE_SUFFIX = re.compile(r" <\d+>$")

# Plasma 6 names the window `windowActivated`/`activeWindow`, Plasma 5 `clientActivated`/`activeClient`.
# The window active when the script loads is pushed at once: nothing is activated until the user moves.
SCRIPT_TEMPLATE = """\
(function () {
    var target = %(target)s;
    var watched = null;
    function text(value) {
        return value === undefined || value === null ? "" : String(value);
    }
    function push() {
        if (watched) {
            callDBus(target, %(path)s, %(interface)s, %(method)s,
                     text(watched.resourceClass), text(watched.desktopFileName), text(watched.caption));
        } else {
            callDBus(target, %(path)s, %(interface)s, %(method)s, "", "", "");
        }
    }
    function activated(window) {
        if (watched) {
            try { watched.captionChanged.disconnect(push); } catch (gone) { }
        }
        watched = window || null;
        if (watched) {
            watched.captionChanged.connect(push);
        }
        push();
    }
    (workspace.windowActivated || workspace.clientActivated).connect(activated);
    activated(workspace.activeWindow !== undefined ? workspace.activeWindow : workspace.activeClient);
})();
"""


def script_text(target: str) -> str:
    """Our KWin script, calling back to the bus name `target`."""
    return SCRIPT_TEMPLATE % {name: json.dumps(value) for name, value in (
        ("target", target), ("path", CALLBACK_PATH), ("interface", CALLBACK_INTERFACE), ("method", CALLBACK_METHOD))}


class KWinError(Exception):
    """KWin refused a call; the message says which."""


def call_kwin(connection: DBusConnection, path: str, interface: str, method: str, signature: str = "",
              body: tuple[object, ...] = (), timeout: float = CALL_TIMEOUT) -> tuple[object, ...]:
    """The reply's body of one call to KWin, or KWinError."""
    from jeepney import DBusAddress, MessageType, new_method_call

    address = DBusAddress(path, bus_name=KWIN_SERVICE, interface=interface)
    reply = connection.send_and_get_reply(new_method_call(address, method, signature, body), timeout=timeout)
    if reply.header.message_type == MessageType.error:
        raise KWinError(f"KWin refused {method}: {reply.body[0] if reply.body else 'no reason given'}")
    return tuple(reply.body)


def script_loaded(connection: DBusConnection, name: str) -> bool:
    return bool(call_kwin(connection, "/Scripting", "org.kde.kwin.Scripting", "isScriptLoaded", "s", (name,))[0])


def unload_script(connection: DBusConnection, name: str) -> bool:
    return bool(call_kwin(connection, "/Scripting", "org.kde.kwin.Scripting", "unloadScript", "s", (name,))[0])


def load_script(connection: DBusConnection, text: str, name: str) -> None:
    """Load `text` into KWin as the script `name` and run it, replacing a script of that name.

    The file KWin reads is private to the user (mode 0600) and deleted once KWin has read it. Plasma 6 puts
    the script object at /Scripting/Script{N}, Plasma 5 at /{N}: both are tried, so no version is guessed.
    """
    if script_loaded(connection, name):
        unload_script(connection, name)
    directory = os.environ.get("XDG_RUNTIME_DIR")
    if not directory or not os.path.isdir(directory):
        directory = None  # a private temporary file instead
    descriptor, path = tempfile.mkstemp(prefix="tracker-kwin-", suffix=".js", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        number = call_kwin(connection, "/Scripting", "org.kde.kwin.Scripting", "loadScript", "ss", (path, name))[0]
        if not isinstance(number, int) or number < 0:
            raise KWinError(f"KWin did not load the script (answer {number!r})")
        failures = []
        for script_path in (f"/Scripting/Script{number}", f"/{number}"):
            try:
                call_kwin(connection, script_path, "org.kde.kwin.Script", "run")
                return
            except KWinError as failure:
                failures.append(str(failure))
        raise KWinError("; ".join(failures))
    finally:
        with contextlib.suppress(OSError):
            Path(path).unlink()


class KWinSource:
    """The active window of a KDE Plasma session (KWin, Wayland or X11), reported by a KWin script."""

    name = "kwin"
    # KWin gives every caption as text: a title is never unreadable here.
    unreadable_titles = 0

    def __init__(self, notify: Notify, bus: str = "SESSION", wayland_display: str | None = None) -> None:
        """On the session bus (or the bus address `bus`); idle time from the Wayland display `wayland_display`
        ($WAYLAND_DISPLAY when None)."""
        try:
            import jeepney  # noqa: F401  # the methods import what they use from it
        except ImportError:
            raise SourceUnavailable(
                "The KWin source needs the jeepney package, which is not installed; install it with "
                "`pip install jeepney`, or try `tracker run --source demo`."
            ) from None
        self._notify = notify
        address = session_bus_address() if bus == "SESSION" else bus
        if address is None:
            raise SourceUnavailable(
                "DBUS_SESSION_BUS_ADDRESS is not set, so KWin cannot be asked for the active window; run tracker "
                "inside the Plasma session, or try `tracker run --source demo`."
            )
        self._address = address
        self._incoming: deque[Message] = deque(maxlen=MAX_QUEUED_MESSAGES)
        self._app: str | None = None
        self._title: str | None = None
        self._locked = False
        self._next_lock_check = 0.0  # monotonic time
        self._connection_lost = False
        self._next_reconnect = 0.0
        self._closed = False
        self._script_pending = False  # KWin came back and our script is not running in it yet
        self._next_script_try = 0.0
        self._connect(STARTUP_SECONDS)
        self._wait_for_first_report(FIRST_REPORT_SECONDS)
        self._idle = self._open_idle(wayland_display)

    def _connect(self, wait_for_kwin: float) -> None:
        """Connect to the bus, find KWin (waiting up to `wait_for_kwin` seconds for one still starting) and run
        our script in it; SourceUnavailable, in one sentence, where a step fails."""
        from jeepney import DBusErrorResponse, MatchRule
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import Proxy, open_dbus_connection

        try:
            self._connection = open_dbus_connection(self._address)
        except (OSError, ValueError, RuntimeError) as failure:
            raise SourceUnavailable(
                f"Cannot reach the session bus ({failure or type(failure).__name__}), so KWin cannot be asked "
                "for the active window; run tracker inside the Plasma session, or try `tracker run --source demo`."
            ) from None
        self._bus = Proxy(message_bus, self._connection, timeout=CALL_TIMEOUT)
        self._incoming.clear()
        try:
            self._kwin_owner = self._owner_of_kwin()
            if self._kwin_owner is None:
                raise SourceUnavailable(
                    "KWin is not on the session bus (no owner of org.kde.KWin), so this is not a KDE Plasma "
                    "session; choose the source for your desktop, or try `tracker run --source demo`."
                )
            self._script_name = self._claim_script_name()
            # Everything we wait for: KWin's calls to us, and KWin leaving or coming back. The filter is open
            # before the script loads, since the first push may come before loadScript's reply (and would be
            # dropped without a filter).
            owner_changes = MatchRule(type="signal", sender="org.freedesktop.DBus", interface="org.freedesktop.DBus",
                                      member="NameOwnerChanged", path="/org/freedesktop/DBus")
            owner_changes.add_arg_condition(0, KWIN_SERVICE)
            self._bus.AddMatch(owner_changes)
            self._filters = [self._connection.filter(MatchRule(type="method_call"), queue=self._incoming),
                             self._connection.filter(owner_changes, queue=self._incoming)]
        except (DBusErrorResponse, OSError) as failure:
            self._connection.close()
            raise SourceUnavailable(
                f"The session bus did not answer as expected ({failure}), so KWin cannot be asked for the active "
                "window; try `tracker run --source demo`."
            ) from None
        except SourceUnavailable:
            self._connection.close()
            raise
        try:
            self._load_script_when_kwin_is_ready(wait_for_kwin)
        except (KWinError, OSError) as failure:
            self._connection.close()
            raise SourceUnavailable(
                f"KWin did not run the tracker's script ({failure}); check that KWin scripting is enabled, or "
                "try `tracker run --source demo`."
            ) from None

    def _open_idle(self, wayland_display: str | None) -> WaylandIdle | None:
        """Idle time from KWin's ext-idle-notify (Wayland sessions); None, said once, where there is none."""
        from tracker.recording.sources.wayland_idle import WaylandIdle
        from tracker.recording.sources.wayland_wire import WaylandError

        try:
            idle = WaylandIdle.open(wayland_display)
        except WaylandError as failure:
            reason = failure.reason
        else:
            if idle is not None:
                return idle
            reason = "KWin offers no idle protocol"
        self._notify(f"Idle time cannot be read ({reason}), so time away from the keyboard counts as active.")
        return None

    def permissions(self) -> list[Permission]:
        return []  # any client on the session bus may load a KWin script

    def read(self) -> Sample | None:
        if self._closed or (self._connection_lost and not self._reconnected()):
            return None
        try:
            self._drain()
            if self._script_pending and time.monotonic() >= self._next_script_try:
                self._try_loading_script()
            if self._kwin_owner is None or self._script_pending or not self._app:
                return None
            idle_seconds = self._idle.idle_seconds() if self._idle is not None else None
            return Sample(time=utc_now(), app=self._app, title=self._title or None, idle_seconds=idle_seconds,
                          locked=self._lock_state())
        except TimeoutError:  # a call KWin or its locker did not answer in time: the next read tries again
            log.debug("KWin did not answer in time", exc_info=True)
            return None
        except (OSError, ConnectionError):
            self._connection_lost = True
            self._next_reconnect = time.monotonic() + RECONNECT_SECONDS
            self._app = self._title = None
            for handle in self._filters:
                handle.close()
            self._connection.close()
            self._notify("The connection to the session bus was closed, so KWin's windows cannot be read until "
                         "it is back; tracker connects again by itself.")
            return None
        except Exception:  # a read never raises: one bad moment must not stop the recording
            log.debug("reading the active KWin window failed", exc_info=True)
            return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._idle is not None:
            self._idle.close()
        if self._connection_lost:
            return  # closed when it was lost
        if self._kwin_owner is not None:
            with contextlib.suppress(Exception):  # KWin or the bus may have gone first
                unload_script(self._connection, self._script_name)
        for handle in self._filters:
            handle.close()
        self._connection.close()

    def _load_script(self) -> None:
        load_script(self._connection, script_text(self._connection.unique_name), self._script_name)

    def _claim_script_name(self) -> str:
        """SCRIPT_NAME if no other live source uses it (a script of that name is then left from a crash);
        else a name of this connection's own."""
        from jeepney.bus_messages import DBusNameFlags

        answer = self._bus.RequestName(SCRIPT_OWNER_NAME, DBusNameFlags.do_not_queue)[0]
        if answer in (1, 4):  # the primary owner now, or already
            return SCRIPT_NAME
        return f"{SCRIPT_NAME}-{self._connection.unique_name.lstrip(':').replace('.', '-')}"

    def _load_script_when_kwin_is_ready(self, wait_for_kwin: float) -> None:
        """Load the script, waiting up to `wait_for_kwin` seconds for a KWin that is still starting: it owns its
        bus name before it serves /Scripting (seen with --xwayland; a tracker started with the session can come
        first)."""
        deadline = time.monotonic() + wait_for_kwin
        while True:
            try:
                self._load_script()
                return
            except KWinError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(STARTUP_RETRY_SECONDS)

    def _wait_for_first_report(self, timeout: float) -> None:
        """Wait (briefly) for the script's first push, so the first read already knows the active window:
        KWin runs the script after it answered `run`."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(TimeoutError):
            while not self._incoming:
                self._connection.recv_messages(timeout=max(0.0, deadline - time.monotonic()))

    def _reconnected(self) -> bool:
        """Whether a new connection to the bus (and KWin) is open, tried every RECONNECT_SECONDS."""
        if time.monotonic() < self._next_reconnect:
            return False
        self._next_reconnect = time.monotonic() + RECONNECT_SECONDS
        try:
            self._connect(wait_for_kwin=0.0)
        except SourceUnavailable as failure:
            log.debug("reconnecting to the session bus failed: %s", failure)
            return False
        self._connection_lost = False
        self._script_pending = False
        self._next_lock_check = 0.0
        return True

    def _owner_of_kwin(self) -> str | None:
        from jeepney import DBusErrorResponse

        try:
            return str(self._bus.GetNameOwner(KWIN_SERVICE)[0])
        except DBusErrorResponse:
            return None

    def _drain(self) -> None:
        """Handle every message that came since the last read, without waiting for more."""
        # Bounded, so a caller flooding us cannot hold the loop here: the rest waits for the next read.
        for _ in range(MAX_QUEUED_MESSAGES):
            try:
                self._connection.recv_messages(timeout=0)
            except TimeoutError:
                break
        from jeepney import MessageType

        while self._incoming:
            message = self._incoming.popleft()
            if message.header.message_type == MessageType.method_call:
                self._answer(message)
            else:
                self._kwin_moved(*message.body)

    def _answer(self, call: Message) -> None:
        """Take KWin's report of the active window; refuse any other caller, and any other method."""
        from jeepney import HeaderFields, new_error, new_method_return

        fields = call.header.fields
        if fields.get(HeaderFields.sender) != self._kwin_owner or self._kwin_owner is None:
            reply = new_error(call, "org.freedesktop.DBus.Error.AccessDenied", "s",
                              ("Only KWin may report the active window to tracker.",))
        elif (fields.get(HeaderFields.member) != CALLBACK_METHOD or fields.get(HeaderFields.signature) != "sss"
              or fields.get(HeaderFields.interface) not in (CALLBACK_INTERFACE, None)):
            reply = new_error(call, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                              ("tracker takes ActiveWindow(resource class, desktop file name, caption) only.",))
        else:
            resource_class, desktop_file_name, caption = call.body
            self._app = desktop_file_name or resource_class or None
            self._title = KWIN_DUPLICATE_SUFFIX.sub("", caption) or None
            reply = new_method_return(call)
        if not call.header.flags & 1:  # NO_REPLY_EXPECTED unset: the caller waits for an answer
            self._connection.send(reply)

    def _kwin_moved(self, name: str, old_owner: str, new_owner: str) -> None:
        """KWin left the bus (it crashed or is restarting), or came back: our script went with the old one."""
        if name != KWIN_SERVICE:
            return
        self._app = self._title = None
        self._next_lock_check = 0.0  # a new KWin may have a screen locker where the old one had none
        if not new_owner:
            if self._kwin_owner is not None:
                self._notify("KWin left the session bus (it crashed or is restarting), so no window is recorded "
                             "until it is back; tracker picks it up again by itself.")
            self._kwin_owner = None
            return
        self._kwin_owner = new_owner
        self._script_pending = True
        self._try_loading_script()

    def _try_loading_script(self) -> None:
        """Load the script into a KWin that came back; tried again every SCRIPT_RETRY_SECONDS until it runs (a
        KWin just started may not serve /Scripting yet)."""
        try:
            self._load_script()
            self._script_pending = False
        except (KWinError, TimeoutError) as failure:
            self._next_script_try = time.monotonic() + SCRIPT_RETRY_SECONDS
            log.info("KWin is back but did not run the tracker's script yet: %s", failure)

    def _lock_state(self) -> bool:
        """Whether the screen is locked (org.freedesktop.ScreenSaver, which KWin's locker serves), asked at
        most every LOCK_CHECK_SECONDS; False where nothing answers (asked again after NO_LOCKER_SECONDS)."""
        now = time.monotonic()
        if now < self._next_lock_check:
            return self._locked
        self._next_lock_check = now + LOCK_CHECK_SECONDS
        from jeepney import DBusAddress, MessageType, new_method_call

        address = DBusAddress("/ScreenSaver", bus_name="org.freedesktop.ScreenSaver",
                              interface="org.freedesktop.ScreenSaver")
        try:
            reply = self._connection.send_and_get_reply(new_method_call(address, "GetActive"), timeout=0.5)
        except TimeoutError:
            return self._locked
        if reply.header.message_type == MessageType.error:  # no screen locker (yet): KWin --no-lockscreen
            self._next_lock_check = now + NO_LOCKER_SECONDS
            self._locked = False
        else:
            self._locked = bool(reply.body[0])
        return self._locked
