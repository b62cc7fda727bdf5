"""Desktop notifications (goal nudges), shown by the desktop's own notification service.

- Linux and other freedesktop desktops: org.freedesktop.Notifications.Notify on the session bus (jeepney).
- macOS: `osascript -e 'display notification "…" with title "…"'`.
- Windows: a toast through Windows PowerShell's Windows.UI.Notifications (written to Microsoft's documentation,
  never run on Windows).

Each notification is handed to a thread of the notifier's own, so `notify` returns at once: a notification
server that hangs, a bus that went away or an osascript that never ends costs that thread's time, never the
recording loop's. What keeps notifications from being shown is said once per kind of problem, in one sentence.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from tracker.session_bus import session_bus_address

if TYPE_CHECKING:
    from jeepney import Message
    from jeepney.io.blocking import DBusConnection

SayOnce = Callable[[str], None]

APP_NAME = "tracker"
# Longer text is cut (with "…"): a nudge is read at a glance, and some servers choke on huge messages.
MAX_TITLE_CHARS = 200
MAX_BODY_CHARS = 1000
# Nudges waiting while one is being shown; when more come meanwhile, the oldest are dropped.
MAX_WAITING = 8
# How long `close` waits for a notification being shown to finish.
CLOSE_WAIT = 1.0

# Freedesktop: how long a nudge stays on screen (where the server lets the sender choose), and how long one
# call to the bus or the server may take (a server started on demand by the bus needs a moment).
EXPIRE_MILLISECONDS = 10_000
CALL_TIMEOUT = 5.0
# Nudges remember the notification they replace (by key) for this many keys at most.
MAX_REPLACED_KEYS = 100
NOTIFICATIONS_SERVICE = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"
# The bus answers these when no one owns the name (and none can be started for it).
NO_SERVER_ERRORS = ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner")
# The bus answers this when the server it started for us did not answer in time.
NO_REPLY_ERROR = "org.freedesktop.DBus.Error.NoReply"

# macOS and Windows: how long the program showing a notification may take.
PROGRAM_TIMEOUT = 5.0

IN_THE_LOG = "so goal nudges are shown in the log only"

_SURROGATES = re.compile("[\ud800-\udfff]")
# Control characters other than tab and line feed, and the two non-characters XML forbids: D-Bus refuses NUL,
# markup parsers choke on the rest.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")


class NotShown(Exception):
    """The notification was not shown: `str` is the sentence for the user, `kind` what is said only once."""

    def __init__(self, kind: str, sentence: str) -> None:
        super().__init__(sentence)
        self.kind = kind


class Backend(Protocol):
    def show(self, title: str, body: str, key: str) -> None:
        """Show one notification, replacing the one last shown with the same `key` where that is possible;
        NotShown when it cannot be."""
        ...

    def close(self) -> None: ...


def clean_text(text: str, limit: int) -> str:
    """`text` as every notification service takes it: lone surrogates (undecodable bytes) as U+FFFD, line
    breaks as line feeds, no other control characters but tabs, at most `limit` characters."""
    text = _SURROGATES.sub("\ufffd", text)
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text if len(text) <= limit else text[:limit - 1] + "…"


class Notifier:
    """Shows notifications through `backend` on a thread of its own (started by the first one)."""

    def __init__(self, backend: Backend, say_once: SayOnce) -> None:
        self._backend = backend
        self._say_once = say_once
        self._said: set[str] = set()
        self._waiting: deque[tuple[str, str, str]] = deque(maxlen=MAX_WAITING)
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None

    def notify(self, title: str, body: str, key: str | None = None) -> None:
        """Show a notification; returns at once and never raises. A later one with the same `key` (the title
        when None) replaces it on screen where the desktop allows."""
        with self._wake:
            if self._closing:
                return
            self._waiting.append((title, body, title if key is None else key))
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="tracker-notifications", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # no thread to be had now (the process is at its limit): the next nudge tries
                    return
                self._thread = thread
            self._wake.notify()

    def close(self) -> None:
        """Drop what still waits; a notification being shown gets CLOSE_WAIT seconds to finish."""
        with self._wake:
            self._closing = True
            self._waiting.clear()
            self._wake.notify()
            thread = self._thread
        if thread is None:
            self._backend.close()
        else:
            thread.join(CLOSE_WAIT)  # the thread closes the backend once it is done

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    while not self._waiting and not self._closing:
                        self._wake.wait()
                    if self._closing:
                        return
                    title, body, key = self._waiting.popleft()
                self._show(title, body, key)
        finally:
            with contextlib.suppress(Exception):
                self._backend.close()

    def _show(self, title: str, body: str, key: str) -> None:
        try:
            self._backend.show(clean_text(title, MAX_TITLE_CHARS), clean_text(body, MAX_BODY_CHARS), key)
        except NotShown as failure:
            self._say(failure.kind, str(failure))
        except Exception as failure:  # a notification is never worth more than a sentence
            self._say("unexpected", f"Showing a notification failed unexpectedly ({failure!r}), {IN_THE_LOG}.")

    def _say(self, kind: str, sentence: str) -> None:
        if kind in self._said:
            return
        self._said.add(kind)
        with contextlib.suppress(Exception):
            self._say_once(sentence)


def open_notifier(say_once: SayOnce, platform: str | None = None) -> Notifier:
    """Notifications the way this platform (sys.platform, or `platform`) shows them. Nothing is opened before
    the first notification, so a run that never notifies pays nothing; what cannot work is said then, through
    `say_once` called from the notifier's own thread."""
    platform = sys.platform if platform is None else platform
    backend: Backend
    if platform == "darwin":
        backend = ProgramNotifications(osascript_command, "osascript")
    elif platform == "win32":
        backend = ProgramNotifications(powershell_command, "Windows PowerShell")
    else:
        backend = FreedesktopNotifications()
    return Notifier(backend, say_once)


# -- Linux and other freedesktop desktops: the session bus ---------------------------------------------------


def escape_markup(text: str) -> str:
    """`text` as literal text in the body markup of the Desktop Notifications Specification (an XML subset)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class FreedesktopNotifications:
    """org.freedesktop.Notifications on the session bus: one connection, opened again when the bus went away."""

    def __init__(self) -> None:
        self._connection: DBusConnection | None = None
        self._body_markup: bool | None = None  # what the server said of itself, asked once per connection
        self._shown_ids: dict[str, int] = {}  # key -> the server's id of the notification last shown for it
        self._bus_lost = False  # a connection that worked broke, and none has worked since

    def show(self, title: str, body: str, key: str) -> None:
        try:
            import jeepney  # noqa: F401  # the methods import what they use from it
        except ImportError:
            raise NotShown("no-jeepney", f"Notifications need the jeepney package, which is not installed, "
                                         f"{IN_THE_LOG}.") from None
        for _attempt in (1, 2):
            connection = self._connected()
            try:
                self._show_on(connection, title, body, key)
                return
            except TimeoutError:
                self._drop()  # a reply may still come, or half a message be written: start afresh next time
                raise NotShown("no-answer", f"The notification server on the session bus did not answer within "
                                            f"{CALL_TIMEOUT:g} s, so goal nudges may not be shown; they are in "
                                            "the log.") from None
            except OSError:  # the bus went away (restarted, logged out): connect again, once
                self._drop()
                self._bus_lost = True
                self._shown_ids.clear()  # a server on a new bus knows none of them
        raise NotShown("bus-lost", f"The session bus went away, {IN_THE_LOG} until it is back.")

    def _connected(self) -> DBusConnection:
        if self._connection is not None:
            return self._connection
        from jeepney import DBusErrorResponse
        from jeepney.io.blocking import open_dbus_connection

        address = session_bus_address()
        if address is None:
            raise NotShown("no-bus", f"There is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set), "
                                     f"{IN_THE_LOG}.")
        try:
            connection = open_dbus_connection(address, auth_timeout=CALL_TIMEOUT)
            # A bus that stops answering must not hold a send forever either.
            connection.sock.settimeout(CALL_TIMEOUT)
        except TimeoutError:  # a bus that hangs (said once with a server that hangs: the user sees the same)
            raise NotShown("no-answer", f"The session bus did not answer within {CALL_TIMEOUT:g} s, so goal "
                                        "nudges may not be shown; they are in the log.") from None
        except (OSError, ValueError, RuntimeError, DBusErrorResponse) as failure:
            if self._bus_lost:
                raise NotShown("bus-lost", f"The session bus went away, {IN_THE_LOG} until it is back.") from None
            raise NotShown("no-bus", f"Cannot reach the session bus ({failure or type(failure).__name__}), "
                                     f"{IN_THE_LOG}.") from None
        self._connection, self._body_markup, self._bus_lost = connection, None, False
        return connection

    def _show_on(self, connection: DBusConnection, title: str, body: str, key: str) -> None:
        if self._body_markup is None:
            capabilities = self._call(connection, "GetCapabilities", "", ())
            offered = capabilities[0] if capabilities else ()
            self._body_markup = isinstance(offered, (list, tuple)) and "body-markup" in offered
        text = escape_markup(body) if self._body_markup else body
        replaces = self._shown_ids.get(key, 0)
        answer = self._call(connection, "Notify", "susssasa{sv}i",
                            (APP_NAME, replaces, "", title, text, [], {}, EXPIRE_MILLISECONDS))
        shown_id = answer[0] if answer else 0
        self._shown_ids.pop(key, None)  # the newest key goes last, so the oldest is dropped first
        if isinstance(shown_id, int) and shown_id > 0:
            self._shown_ids[key] = shown_id
            while len(self._shown_ids) > MAX_REPLACED_KEYS:
                del self._shown_ids[next(iter(self._shown_ids))]

    def _call(self, connection: DBusConnection, method: str, signature: str,
              body: tuple[object, ...]) -> tuple[object, ...]:
        from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call

        server = DBusAddress(NOTIFICATIONS_PATH, bus_name=NOTIFICATIONS_SERVICE, interface=NOTIFICATIONS_SERVICE)
        reply: Message = connection.send_and_get_reply(new_method_call(server, method, signature, body),
                                                       timeout=CALL_TIMEOUT)
        if reply.header.message_type != MessageType.error:
            return tuple(reply.body)
        error = str(reply.header.fields.get(HeaderFields.error_name, ""))
        if error in NO_SERVER_ERRORS:
            raise NotShown("no-server", f"No notification server answers on the session bus, {IN_THE_LOG}.")
        if error == NO_REPLY_ERROR:
            raise TimeoutError(error)
        reason = reply.body[0] if reply.body and isinstance(reply.body[0], str) else error
        raise NotShown("refused", f"The notification server refused to show a notification ({reason}), "
                                  f"{IN_THE_LOG}.")

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.close()
        self._connection = None

    def close(self) -> None:
        self._drop()


# -- macOS and Windows: a program that shows it --------------------------------------------------------------


def applescript_string(text: str) -> str:
    """`text` as an AppleScript string literal: backslashes and quotes escaped, line feeds and tabs as \\n, \\t."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def osascript_script(title: str, body: str) -> str:
    return f"display notification {applescript_string(body)} with title {applescript_string(title)}"


def osascript_command(title: str, body: str) -> tuple[list[str], dict[str, str] | None]:
    return ["osascript", "-e", osascript_script(title, body)], None


# Windows PowerShell 5.1 (powershell.exe, in every Windows 10 and 11) can load WinRT types; PowerShell 7 cannot.
# The text comes in through the environment, so nothing in it is ever read as script. A toast needs an
# AppUserModelID the Start menu knows: PowerShell's own is used, so the toast says "Windows PowerShell".
POWERSHELL_TOAST = r"""
$ErrorActionPreference = 'Stop'
[Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, ContentType = WindowsRuntime] > $null
$kind = [Windows.UI.Notifications.ToastTemplateType]::ToastText02
$toast = [Windows.UI.Notifications.ToastNotificationManager]::GetTemplateContent($kind)
$lines = $toast.GetElementsByTagName('text')
$lines.Item(0).AppendChild($toast.CreateTextNode($env:TRACKER_NOTIFICATION_TITLE)) > $null
$lines.Item(1).AppendChild($toast.CreateTextNode($env:TRACKER_NOTIFICATION_BODY)) > $null
$app = '{1AC14E77-02E7-4E5D-B744-2EB1AE5198B7}\WindowsPowerShell\v1.0\powershell.exe'
[Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier($app).Show(
    [Windows.UI.Notifications.ToastNotification]::new($toast))
"""


def powershell_command(title: str, body: str) -> tuple[list[str], dict[str, str] | None]:
    import base64

    encoded = base64.b64encode(POWERSHELL_TOAST.encode("utf-16-le")).decode("ascii")
    environment = dict(os.environ, TRACKER_NOTIFICATION_TITLE=title, TRACKER_NOTIFICATION_BODY=body)
    return ["powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand", encoded], environment


class ProgramNotifications:
    """A notification shown by running a program (`command` builds its arguments and environment)."""

    def __init__(self, command: Callable[[str, str], tuple[Sequence[str], dict[str, str] | None]],
                 program_name: str) -> None:
        self._command = command
        self._program_name = program_name

    def show(self, title: str, body: str, key: str) -> None:
        import subprocess  # macOS and Windows only: a Linux run never needs it

        arguments, environment = self._command(title, body)
        try:
            done = subprocess.run(arguments, env=environment, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=PROGRAM_TIMEOUT, check=False,
                                  creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # Windows: no console
        except FileNotFoundError:
            raise NotShown("no-program", f"{self._program_name} was not found, {IN_THE_LOG}.") from None
        except subprocess.TimeoutExpired:
            raise NotShown("no-answer", f"{self._program_name} did not show a notification within "
                                        f"{PROGRAM_TIMEOUT:g} s, so goal nudges may not be shown; they are in "
                                        "the log.") from None
        except OSError as failure:
            raise NotShown("failed", f"{self._program_name} could not be started ({failure.strerror or failure}), "
                                     f"{IN_THE_LOG}.") from None
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = said[-1].strip() if said else f"exit status {done.returncode}"
            raise NotShown("failed", f"{self._program_name} could not show a notification ({reason}), {IN_THE_LOG}.")

    def close(self) -> None:
        pass
