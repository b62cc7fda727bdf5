"""A Windows program of the tests (run by the Windows python.exe under Wine): plain Win32 windows with the
titles the test chooses, made with RegisterClassW/CreateWindowExW through ctypes.

argv: a JSON list of titles, one window each. It prints `{"windows": [hwnd, ...]}` once they are shown, then
takes one JSON command a line on stdin and answers each with `{"done": ...}`:
  {"focus": i}            SetForegroundWindow on window i
  {"title": [i, "text"]}  SetWindowTextW on window i
It ends at the end of its input.
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading
from ctypes import wintypes

user32 = ctypes.WinDLL("user32", use_last_error=True)
kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
WNDPROC = ctypes.WINFUNCTYPE(ctypes.c_ssize_t, wintypes.HWND, wintypes.UINT, wintypes.WPARAM,
                             wintypes.LPARAM)
WS_OVERLAPPEDWINDOW, WS_VISIBLE, SW_SHOW, WM_CLOSE = 0x00CF0000, 0x10000000, 5, 0x0010

user32.DefWindowProcW.restype = ctypes.c_ssize_t
user32.DefWindowProcW.argtypes = (wintypes.HWND, wintypes.UINT, wintypes.WPARAM, wintypes.LPARAM)
user32.CreateWindowExW.restype = wintypes.HWND
user32.CreateWindowExW.argtypes = (wintypes.DWORD, wintypes.LPCWSTR, wintypes.LPCWSTR, wintypes.DWORD, ctypes.c_int,
                                   ctypes.c_int, ctypes.c_int, ctypes.c_int, wintypes.HWND, wintypes.HMENU,
                                   wintypes.HINSTANCE, wintypes.LPVOID)
user32.SetWindowTextW.argtypes = (wintypes.HWND, wintypes.LPCWSTR)
user32.SetForegroundWindow.argtypes = (wintypes.HWND,)
user32.ShowWindow.argtypes = (wintypes.HWND, ctypes.c_int)
user32.GetMessageW.argtypes = (ctypes.POINTER(wintypes.MSG), wintypes.HWND, wintypes.UINT, wintypes.UINT)
user32.TranslateMessage.argtypes = (ctypes.POINTER(wintypes.MSG),)
user32.DispatchMessageW.argtypes = (ctypes.POINTER(wintypes.MSG),)
user32.PostThreadMessageW.argtypes = (wintypes.DWORD, wintypes.UINT, wintypes.WPARAM, wintypes.LPARAM)


class WNDCLASSW(ctypes.Structure):
    _fields_ = (("style", wintypes.UINT), ("lpfnWndProc", WNDPROC), ("cbClsExtra", ctypes.c_int),
                ("cbWndExtra", ctypes.c_int), ("hInstance", wintypes.HINSTANCE), ("hIcon", wintypes.HICON),
                ("hCursor", wintypes.HANDLE), ("hbrBackground", wintypes.HBRUSH), ("lpszMenuName", wintypes.LPCWSTR),
                ("lpszClassName", wintypes.LPCWSTR))


def window_procedure(hwnd: int, message: int, wparam: int, lparam: int) -> int:
    return int(user32.DefWindowProcW(hwnd, message, wparam, lparam))


def say(message: object) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    titles = json.loads(sys.argv[1])
    procedure = WNDPROC(window_procedure)
    window_class = WNDCLASSW(lpfnWndProc=procedure, hInstance=kernel32.GetModuleHandleW(None),
                             lpszClassName="TrackerTestWindow")
    if not user32.RegisterClassW(ctypes.byref(window_class)):
        raise SystemExit(f"RegisterClassW failed: {ctypes.get_last_error()}")
    windows = []
    for index, title in enumerate(titles):
        hwnd = user32.CreateWindowExW(0, "TrackerTestWindow", title, WS_OVERLAPPEDWINDOW | WS_VISIBLE,
                                      40 + 60 * index, 40 + 60 * index, 400, 300, None, None, None, None)
        user32.ShowWindow(hwnd, SW_SHOW)
        windows.append(hwnd)
    main_thread = kernel32.GetCurrentThreadId()

    def commands() -> None:
        for line in sys.stdin:
            command = json.loads(line)
            if "focus" in command:
                say({"done": bool(user32.SetForegroundWindow(windows[command["focus"]]))})
            elif "title" in command:
                index, text = command["title"]
                say({"done": bool(user32.SetWindowTextW(windows[index], text))})
            else:
                break
        user32.PostThreadMessageW(main_thread, 0x0012, 0, 0)  # WM_QUIT ends the message loop

    say({"windows": windows})
    threading.Thread(target=commands, daemon=True).start()
    message = wintypes.MSG()
    while user32.GetMessageW(ctypes.byref(message), None, 0, 0) > 0:
        user32.TranslateMessage(ctypes.byref(message))
        user32.DispatchMessageW(ctypes.byref(message))


if __name__ == "__main__":
    main()
