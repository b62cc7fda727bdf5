"""Build dist/tracker: one executable, made with PyInstaller, for this machine's OS and CPU.

    .venv/bin/python packaging/build_binary.py [--dist DIR]

`make binary` runs this; so do the tests (tests/test_binary.py), into a directory of their own.

On Linux and macOS the file is packaging/launcher.c, compiled here, followed by PyInstaller's one-folder build
packed behind it: the launcher checks TMPDIR before it unpacks, says in one sentence what to set when TMPDIR
cannot serve, and removes what it unpacked whatever happens (PyInstaller's own one-file bootloader does neither).
On Windows it is PyInstaller's one-file build itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER_SOURCE = ROOT / "packaging" / "launcher.c"

# Never imported by tracker: test tools, rich's syntax highlighting and Markdown (unused), and setuptools, which
# PyInstaller's hooks would otherwise pull in.
EXCLUDED = ("tkinter", "pytest", "hypothesis", "mypy", "pygments", "markdown_it", "pydoc_data", "setuptools",
            "pkg_resources")

# The layout launcher.c reads: see the comment at its top.
TRAILER_MAGIC = b"TRKPACK1"
ENTRY_HEADER = struct.Struct("<cIIQQ")
TRAILER = struct.Struct("<8sQQQ")
# What one file or directory takes on disk beyond its bytes, at most: file systems allocate whole blocks.
BLOCK = 4096


def pyinstaller(mode: str, dist: Path, work: str) -> None:
    try:
        import PyInstaller.__main__
    except ImportError:
        sys.exit("Building the binary needs PyInstaller: run `make binary`, which installs it into .venv.")
    PyInstaller.__main__.run([
        mode, "--name", "tracker", "--noconfirm", "--clean", "--log-level", "ERROR",
        "--strip",  # symbols off libpython and the extensions: 26 MB → 16 MB, and a faster start
        "--distpath", str(dist), "--workpath", work, "--specpath", work,
        # The default rules, where tracker.categories.files looks for them inside the package.
        "--add-data", f"{ROOT / 'categories.yaml'}:tracker",
        # The GNOME Shell extension's parts, which `tracker gnome-extension install` joins and copies.
        "--collect-data", "tracker.recording.sources.gnome_extension",
        # The commands are imported by name when they are run (tracker.commands.COMMANDS), which PyInstaller
        # cannot follow.
        "--collect-submodules", "tracker.commands",
        *(option for name in EXCLUDED for option in ("--exclude-module", name)),
        str(ROOT / "packaging" / "tracker_main.py"),
    ])


def compile_launcher(output: Path) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    command = [compiler or "cc", "-O2", "-Wall", "-o", str(output), str(LAUNCHER_SOURCE), "-lz"]
    try:
        compiled = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        compiled = None
    if compiled is None or compiled.returncode != 0:
        sys.exit("Building the binary needs a C compiler and zlib's headers for packaging/launcher.c (Debian, "
                 "Ubuntu: apt install gcc zlib1g-dev; macOS: xcode-select --install)"
                 + (f":\n{compiled.stderr}" if compiled else ""))


def packed(folder: Path) -> tuple[bytes, int, int]:
    """The payload for launcher.c from PyInstaller's one-folder build: its bytes, entry count, bytes needed."""
    entries: list[bytes] = []
    needed = 0
    # Sorted, so that every directory comes before what it holds.
    for path in sorted(folder.rglob("*"), key=lambda found: found.relative_to(folder).parts):
        name = path.relative_to(folder).as_posix().encode()
        mode = path.lstat().st_mode & 0o7777
        if path.is_symlink():
            kind, data, size = b"l", os.readlink(path).encode(), 0
        elif path.is_dir():
            kind, data, size = b"d", b"", 0
        else:
            kind, raw = b"f", path.read_bytes()
            size = len(raw)
            compressed = zlib.compress(raw, 9)
            # Stored as is when zlib saves little (the Python archive inside is compressed already): copying
            # is faster than inflating. Equal lengths mean "stored" to the launcher, so a tie stays raw.
            data = compressed if len(compressed) < size * 0.95 else raw
        needed += -(-size // BLOCK) * BLOCK + BLOCK
        entries.append(ENTRY_HEADER.pack(kind, mode, len(name), len(data), size) + name + data)
    return b"".join(entries), len(entries), needed


def build(dist: Path) -> Path:
    """The path of the built executable in `dist`."""
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tracker-build-") as work:
        if sys.platform == "win32":
            pyinstaller("--onefile", dist, work)
            return dist / "tracker.exe"
        folders = Path(work) / "dist"
        pyinstaller("--onedir", folders, work)
        launcher = Path(work) / "launcher"
        compile_launcher(launcher)
        payload, entry_count, needed = packed(folders / "tracker")
        front = launcher.read_bytes()
        partial = dist / "tracker.partial"
        with partial.open("wb") as output:
            output.write(front)
            output.write(payload)
            output.write(TRAILER.pack(TRAILER_MAGIC, len(front), entry_count, needed))
        partial.chmod(0o755)
        partial.replace(dist / "tracker")  # never a half-written dist/tracker
    return dist / "tracker"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where to put the executable")
    built = build(parser.parse_args().dist)
    print(f"Built {built} ({built.stat().st_size / 1e6:.1f} MB): copy it anywhere on a machine of this OS and CPU.")


if __name__ == "__main__":
    main()
