"""The Windows source: the foreground window, its program, the idle time and the workstation lock, read through
the Win32 API with ctypes (nothing compiled, nothing to install).

A sample is a handful of calls: GetForegroundWindow, GetWindowTextW, GetWindowThreadProcessId, GetLastInputInfo
and OpenInputDesktop each time; the program's path (OpenProcess + QueryFullProcessImageNameW) only when another
window comes to the front, and its file description (the version resource: "Google Chrome" for chrome.exe) once
per program.

UWP apps (Calculator, Settings, Photos …) draw in a window of ApplicationFrameHost.exe; the app itself owns a
child window of that frame, and that child's process is the one recorded.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from ctypes import wintypes
from functools import lru_cache
from pathlib import PureWindowsPath
from typing import Any

from tracker.callbacks import Notify
from tracker.model import Sample, utc_now
from tracker.recording.sources import Permission, SourceUnavailable

log = logging.getLogger(__name__)

PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
DESKTOP_READOBJECTS = 0x0001
DESKTOP_SWITCHDESKTOP = 0x0100  # what a locked workstation refuses to a user's process
UOI_NAME = 2
# Where ordinary programs run; the lock screen, the sign-in screen and UAC prompts are on "Winlogon".
INPUT_DESKTOP = "default"
FRAME_HOST = "applicationframehost.exe"
LOCK_SCREEN = "Windows lock screen"
# The longest title kept: enough for any real one, and a hostile one costs no more than this.
MAX_TITLE_CHARS = 4096
# Tried after the languages a version resource names: US English in Unicode, then in the Windows code page.
FALLBACK_TRANSLATIONS = ((0x0409, 0x04B0), (0x0409, 0x04E4))


class LASTINPUTINFO(ctypes.Structure):
    _fields_ = (("cbSize", wintypes.UINT), ("dwTime", wintypes.DWORD))


def idle_milliseconds(now_ticks: int, last_input_ticks: int) -> int:
    """Milliseconds between two GetTickCount values, right across the counter's wrap every 49.7 days."""
    return (now_ticks - last_input_ticks) & 0xFFFFFFFF


def clean_utf16(text: str) -> str:
    """`text` with any lone surrogate (a title cut inside an emoji) replaced, so it can be stored as UTF-8."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class Win32:
    """The few Win32 functions the source calls, with their argument types declared (64-bit handles)."""

    def __init__(self) -> None:
        loader: Any = getattr(ctypes, "WinDLL", None)
        if loader is None:
            raise SourceUnavailable(
                f"The windows source reads the Windows desktop, and this is {sys.platform}; "
                "try `tracker run --source auto`.")
        self.user32 = loader("user32", use_last_error=True)
        self.kernel32 = loader("kernel32", use_last_error=True)
        self.version = loader("version", use_last_error=True)
        function_type: Any = getattr(ctypes, "WINFUNCTYPE", None)  # Windows only, like WinDLL
        self.callback_type: Any = function_type(wintypes.BOOL, wintypes.HWND, wintypes.LPARAM)
        self._declare()

    def _declare(self) -> None:
        u, k, v = self.user32, self.kernel32, self.version
        signatures: list[tuple[Any, Any, list[Any]]] = [
            (u.GetForegroundWindow, wintypes.HWND, []),
            (u.GetWindowTextLengthW, ctypes.c_int, [wintypes.HWND]),
            (u.GetWindowTextW, ctypes.c_int, [wintypes.HWND, wintypes.LPWSTR, ctypes.c_int]),
            (u.GetClassNameW, ctypes.c_int, [wintypes.HWND, wintypes.LPWSTR, ctypes.c_int]),
            (u.GetWindowThreadProcessId, wintypes.DWORD, [wintypes.HWND, ctypes.POINTER(wintypes.DWORD)]),
            (u.EnumChildWindows, wintypes.BOOL, [wintypes.HWND, self.callback_type, wintypes.LPARAM]),
            (u.GetLastInputInfo, wintypes.BOOL, [ctypes.POINTER(LASTINPUTINFO)]),
            (u.OpenInputDesktop, wintypes.HANDLE, [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]),
            (u.CloseDesktop, wintypes.BOOL, [wintypes.HANDLE]),
            (u.GetUserObjectInformationW, wintypes.BOOL,
             [wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p, wintypes.DWORD, ctypes.POINTER(wintypes.DWORD)]),
            (k.GetTickCount, wintypes.DWORD, []),
            (k.OpenProcess, wintypes.HANDLE, [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]),
            (k.CloseHandle, wintypes.BOOL, [wintypes.HANDLE]),
            (k.QueryFullProcessImageNameW, wintypes.BOOL,
             [wintypes.HANDLE, wintypes.DWORD, wintypes.LPWSTR, ctypes.POINTER(wintypes.DWORD)]),
            (v.GetFileVersionInfoSizeW, wintypes.DWORD, [wintypes.LPCWSTR, ctypes.POINTER(wintypes.DWORD)]),
            (v.GetFileVersionInfoW, wintypes.BOOL, [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, ctypes.c_void_p]),
            (v.VerQueryValueW, wintypes.BOOL,
             [ctypes.c_void_p, wintypes.LPCWSTR, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(wintypes.UINT)]),
        ]
        for function, result, arguments in signatures:
            function.restype, function.argtypes = result, arguments

    @staticmethod
    def last_error() -> int:
        return int(getattr(ctypes, "get_last_error", lambda: 0)())

    def window_text(self, hwnd: int) -> str:
        length = min(max(self.user32.GetWindowTextLengthW(hwnd), 0), MAX_TITLE_CHARS)
        buffer = ctypes.create_unicode_buffer(length + 1)
        copied = self.user32.GetWindowTextW(hwnd, buffer, length + 1)
        return clean_utf16(buffer.value[:max(copied, 0)])

    def class_name(self, hwnd: int) -> str:
        buffer = ctypes.create_unicode_buffer(257)  # class names are at most 256 characters
        self.user32.GetClassNameW(hwnd, buffer, 257)
        return buffer.value

    def process_id(self, hwnd: int) -> int:
        pid = wintypes.DWORD(0)
        self.user32.GetWindowThreadProcessId(hwnd, ctypes.byref(pid))
        return int(pid.value)

    def child_of_other_process(self, hwnd: int, pid: int) -> int | None:
        """The process of the first child window of `hwnd` that another process than `pid` owns (the UWP app
        inside an ApplicationFrameHost frame), or None."""
        found: list[int] = []

        def visit(child: int, _: int) -> bool:
            child_pid = self.process_id(child)
            if child_pid and child_pid != pid:
                found.append(child_pid)
                return False  # stop enumerating
            return True

        self.user32.EnumChildWindows(hwnd, self.callback_type(visit), 0)
        return found[0] if found else None

    def executable(self, pid: int) -> str | None:
        """The full path of process `pid`'s program; None (GetLastError tells why) when it cannot be opened."""
        process = self.kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not process:
            return None
        try:
            size = wintypes.DWORD(32768)
            buffer = ctypes.create_unicode_buffer(size.value)
            if not self.kernel32.QueryFullProcessImageNameW(process, 0, buffer, ctypes.byref(size)):
                return None
            return buffer.value
        finally:
            self.kernel32.CloseHandle(process)

    def idle_seconds(self) -> float | None:
        info = LASTINPUTINFO(ctypes.sizeof(LASTINPUTINFO), 0)
        if not self.user32.GetLastInputInfo(ctypes.byref(info)):
            return None
        return idle_milliseconds(self.kernel32.GetTickCount(), info.dwTime) / 1000

    def input_desktop_is_default(self) -> bool:
        """Whether keyboard and mouse go to the user's desktop: not while locked, at sign-in or in a UAC
        prompt (then the input desktop is Winlogon's, which a user's process cannot even open)."""
        desktop = self.user32.OpenInputDesktop(0, False, DESKTOP_READOBJECTS | DESKTOP_SWITCHDESKTOP)
        if not desktop:
            return False
        try:
            needed = wintypes.DWORD(0)
            buffer = ctypes.create_unicode_buffer(256)
            if not self.user32.GetUserObjectInformationW(desktop, UOI_NAME, buffer, ctypes.sizeof(buffer),
                                                         ctypes.byref(needed)):
                return True  # opened, so it is ours; its name does not matter
            return buffer.value.lower() == INPUT_DESKTOP
        finally:
            self.user32.CloseDesktop(desktop)

    def file_description(self, path: str) -> str | None:
        """The FileDescription of a program's version resource, in the first language it has one in."""
        size = self.version.GetFileVersionInfoSizeW(path, None)
        if not size:
            return None
        data = ctypes.create_string_buffer(size)
        if not self.version.GetFileVersionInfoW(path, 0, size, data):
            return None
        for language, codepage in (*self._translations(data), *FALLBACK_TRANSLATIONS):
            value = self._query(data, f"\\StringFileInfo\\{language:04x}{codepage:04x}\\FileDescription")
            if value:
                text = ctypes.wstring_at(value[0], max(value[1] - 1, 0)).strip().strip("\0")
                if text:
                    return clean_utf16(text)
        return None

    def _translations(self, data: ctypes.Array[ctypes.c_char]) -> list[tuple[int, int]]:
        value = self._query(data, "\\VarFileInfo\\Translation")
        if not value:
            return []
        pointer, length = value
        words = (ctypes.c_uint16 * (length // 2)).from_address(pointer)
        return [(words[index], words[index + 1]) for index in range(0, len(words) - 1, 2)]

    def _query(self, data: ctypes.Array[ctypes.c_char], sub_block: str) -> tuple[int, int] | None:
        pointer, length = ctypes.c_void_p(), wintypes.UINT(0)
        if not self.version.VerQueryValueW(data, sub_block, ctypes.byref(pointer), ctypes.byref(length)):
            return None
        if not pointer.value or not length.value:
            return None
        return pointer.value, int(length.value)


class WindowsSource:
    """The foreground window of the Windows desktop this process runs on."""

    name = "windows"
    unreadable_titles = 0  # GetWindowTextW always gives a title (lone surrogates are replaced)

    def __init__(self, notify: Notify, api: Win32 | None = None) -> None:
        self._api = api or Win32()
        self._notify = notify
        self._notified: set[str] = set()
        # The foreground window's program is looked up again only when another window comes to the front.
        self._last_window: tuple[int, int] | None = None  # (window, its process)
        self._last_app = ""
        self._closed = False

    def permissions(self) -> list[Permission]:
        return []  # nothing to allow

    def read(self) -> Sample | None:
        if self._closed:
            return None
        try:
            return self._read()
        except Exception:  # a read never raises: one bad moment must not stop the recording
            log.debug("reading the foreground window failed", exc_info=True)
            self._notify_once("read", "Reading the foreground window failed; tracker goes on trying every second.")
            return None

    def close(self) -> None:
        self._closed = True

    def _read(self) -> Sample | None:
        time = utc_now()
        idle = self._api.idle_seconds()
        if idle is None:
            self._notify_once("idle", "Windows did not tell the time of the last input (GetLastInputInfo "
                              "failed), so time away from the keyboard counts as active until it does.")
        locked = not self._api.input_desktop_is_default()
        window = self._api.user32.GetForegroundWindow()
        if locked:
            return Sample(time=time, app=LOCK_SCREEN, idle_seconds=idle, locked=True)
        if not window:
            return None  # nothing in front: a moment between two windows, or the desktop being switched
        title = self._api.window_text(window)
        app = self._app(window)
        return Sample(time=time, app=app, title=title or None, idle_seconds=idle)

    def _app(self, window: int) -> str:
        pid = self._api.process_id(window)
        if self._last_window == (window, pid):
            return self._last_app
        path = self._api.executable(pid) if pid else None
        if path and PureWindowsPath(path).name.lower() == FRAME_HOST:
            inner = self._api.child_of_other_process(window, pid)
            path = (self._api.executable(inner) if inner else None) or path
        if path:
            app = self._program_name(path)
        else:
            # A process this user may not open (a protected one): its window class still names something.
            error = self._api.last_error()
            self._notify_once("process", f"Windows did not tell which program owns a window (error {error}); "
                              "such windows are recorded by their window class.")
            app = self._api.class_name(window) or "unknown"
        self._last_window, self._last_app = (window, pid), app
        return app

    @lru_cache(maxsize=256)  # noqa: B019 (one source per run: the cache lives as long as the run)
    def _program_name(self, path: str) -> str:
        """The program's file description ("Google Chrome"), or the file name without .exe ("chrome")."""
        try:
            description = self._api.file_description(path)
        except OSError:
            description = None
        return description or PureWindowsPath(path).stem

    def _notify_once(self, kind: str, notice: str) -> None:
        if kind not in self._notified:
            self._notified.add(kind)
            self._notify(notice)
