"""The few system calls that differ on Windows: advisory file locks, reading and writing at an offset, whether
a process exists, and another process's CPU time, memory and start.

On POSIX a lock is an flock on the whole file. On Windows it is LockFileEx on one byte far beyond any content
(Windows locks are mandatory: a lock on the bytes themselves would keep others from reading the pid the run
lock holds); like an flock, it goes with the handle, so the system drops it when the process ends.
"""

from __future__ import annotations

import os
import sys
from typing import Any

WINDOWS = sys.platform == "win32"
# The byte Windows locks stand on: no lock file ever grows this far.
_LOCKED_OFFSET = 1 << 40
_LOCKFILE_FAIL_IMMEDIATELY, _LOCKFILE_EXCLUSIVE_LOCK = 0x1, 0x2
_ERROR_LOCK_VIOLATION = 33
_PROCESS_QUERY_LIMITED_INFORMATION, _STILL_ACTIVE, _ERROR_ACCESS_DENIED = 0x1000, 259, 5


# FILETIME counts 100 ns steps since 1601-01-01; the Unix epoch is this many of them later.
_FILETIME_UNIX_EPOCH = 116444736000000000


if WINDOWS:  # ctypes only where it is used: a run on Linux or macOS keeps its memory
    import ctypes

    class _ProcessMemoryCounters(ctypes.Structure):
        _fields_ = (("cb", ctypes.c_uint32), ("PageFaultCount", ctypes.c_uint32),
                    ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
                    ("QuotaPeakPagedPoolUsage", ctypes.c_size_t), ("QuotaPagedPoolUsage", ctypes.c_size_t),
                    ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t), ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
                    ("PagefileUsage", ctypes.c_size_t), ("PeakPagefileUsage", ctypes.c_size_t))

    class _Overlapped(ctypes.Structure):
        _fields_ = (("Internal", ctypes.c_void_p), ("InternalHigh", ctypes.c_void_p), ("Offset", ctypes.c_uint32),
                    ("OffsetHigh", ctypes.c_uint32), ("hEvent", ctypes.c_void_p))


def _kernel32() -> Any:
    return getattr(ctypes, "WinDLL")("kernel32", use_last_error=True)  # noqa: B009 (Windows only)


def _windows_handle(descriptor: int) -> int:
    import msvcrt

    return int(getattr(msvcrt, "get_osfhandle")(descriptor))  # noqa: B009 (Windows only)


def _overlapped() -> _Overlapped:
    return _Overlapped(Offset=_LOCKED_OFFSET & 0xFFFFFFFF, OffsetHigh=_LOCKED_OFFSET >> 32)


def try_lock(descriptor: int, shared: bool = False) -> bool:
    """Take the lock of the open file `descriptor` without waiting: shared (many may hold it) or exclusive;
    False when another process holds it in a way that excludes this."""
    if not WINDOWS:
        import fcntl

        try:
            fcntl.flock(descriptor, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    flags = _LOCKFILE_FAIL_IMMEDIATELY | (0 if shared else _LOCKFILE_EXCLUSIVE_LOCK)
    kernel32 = _kernel32()
    overlapped = _overlapped()
    if kernel32.LockFileEx(ctypes.c_void_p(_windows_handle(descriptor)), flags, 0, 1, 0, ctypes.byref(overlapped)):
        return True
    error = getattr(ctypes, "get_last_error")()  # noqa: B009 (Windows only)
    if error == _ERROR_LOCK_VIOLATION:
        return False
    raise OSError(error, f"LockFileEx failed (error {error})")


def unlock(descriptor: int) -> None:
    """Release what try_lock took (closing the file releases it too)."""
    if not WINDOWS:
        import fcntl

        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return
    overlapped = _overlapped()
    _kernel32().UnlockFileEx(ctypes.c_void_p(_windows_handle(descriptor)), 0, 1, 0, ctypes.byref(overlapped))


def read_at(descriptor: int, size: int, offset: int) -> bytes:
    """Up to `size` bytes at `offset` (os.pread, which Windows lacks: there the file position moves)."""
    if hasattr(os, "pread"):
        return os.pread(descriptor, size, offset)
    os.lseek(descriptor, offset, os.SEEK_SET)
    return os.read(descriptor, size)


def write_at(descriptor: int, data: bytes, offset: int) -> None:
    if hasattr(os, "pwrite"):
        os.pwrite(descriptor, data, offset)
        return
    os.lseek(descriptor, offset, os.SEEK_SET)
    os.write(descriptor, data)


def process_exists(pid: int) -> bool:
    """Whether process `pid` is running (another user's too). On Windows os.kill(pid, 0) would end it."""
    if not WINDOWS:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # PermissionError: it exists, as another user's
            return True
        return True
    kernel32 = _kernel32()
    kernel32.OpenProcess.restype = ctypes.c_void_p
    process = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not process:
        return getattr(ctypes, "get_last_error")() == _ERROR_ACCESS_DENIED  # noqa: B009 (Windows only)
    try:
        code = ctypes.c_ulong(0)
        if not kernel32.GetExitCodeProcess(ctypes.c_void_p(process), ctypes.byref(code)):
            return True
        return code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(ctypes.c_void_p(process))


def windows_process_figures(pid: int) -> tuple[float, int, float] | None:
    """Process `pid`'s CPU seconds (user and kernel), resident bytes (working set) and start (Unix time), on
    Windows; None when it cannot be opened."""
    kernel32 = _kernel32()
    kernel32.OpenProcess.restype = ctypes.c_void_p
    process = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not process:
        return None
    handle = ctypes.c_void_p(process)
    try:
        created, exited, kernel, user = (ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint64(), ctypes.c_uint64())
        if not kernel32.GetProcessTimes(handle, *(ctypes.byref(each) for each in (created, exited, kernel, user))):
            return None
        memory = _ProcessMemoryCounters(cb=ctypes.sizeof(_ProcessMemoryCounters))
        resident = memory.WorkingSetSize if kernel32.K32GetProcessMemoryInfo(
            handle, ctypes.byref(memory), memory.cb) else 0
        started = (created.value - _FILETIME_UNIX_EPOCH) / 1e7
        return (kernel.value + user.value) / 1e7, int(resident), started
    finally:
        kernel32.CloseHandle(handle)
