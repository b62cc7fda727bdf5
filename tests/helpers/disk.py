"""Disks made really full or really read-only."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


class SmallDisk:
    """A tmpfs of our own (as root), to make the disk really full or really read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.mounted = False

    def mount(self, size_kb: int, options: str = "") -> bool:
        """Mounted with `options` besides the size (noexec, ro, nr_inodes=...); False when this may not mount."""
        every_option = f"size={size_kb}k,mode=0700" + (f",{options}" if options else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", every_option, "tmpfs", str(self.path)],
                              capture_output=True)
        self.mounted = done.returncode == 0
        return self.mounted

    def remount(self, options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(self.path)], check=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the disk is full; return it."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(descriptor, b"\0" * 4096):
            pass
    except OSError:  # no space left: that was the point
        pass
    finally:
        os.close(descriptor)
    return filler
