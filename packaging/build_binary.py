"""Build dist/tracker: one executable, made by PyInstaller in one-file mode, for this machine's OS and CPU.

    .venv/bin/python packaging/build_binary.py [--dist DIR]

`make binary` runs this; so do the tests (tests/test_binary.py), into a directory of their own.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Never imported by tracker: test tools, rich's syntax highlighting and Markdown (unused), and setuptools, which
# PyInstaller's hooks would otherwise pull in.
EXCLUDED = ("tkinter", "pytest", "hypothesis", "mypy", "pygments", "markdown_it", "pydoc_data", "setuptools",
            "pkg_resources")


def build(dist: Path) -> Path:
    """The path of the built executable in `dist`."""
    try:
        import PyInstaller.__main__
    except ImportError:
        sys.exit("Building the binary needs PyInstaller: run `make binary`, which installs it into .venv.")
    with tempfile.TemporaryDirectory(prefix="tracker-build-") as work:
        PyInstaller.__main__.run([
            "--onefile", "--name", "tracker", "--noconfirm", "--clean", "--log-level", "ERROR",
            "--strip",  # symbols off libpython and the extensions: 26 MB → 16 MB, and a faster start
            "--distpath", str(dist), "--workpath", work, "--specpath", work,
            # The default rules, where tracker.categories.files looks for them inside the package.
            "--add-data", f"{ROOT / 'categories.yaml'}:tracker",
            # The commands are imported by name when they are run (tracker.commands.COMMANDS), which PyInstaller
            # cannot follow.
            "--collect-submodules", "tracker.commands",
            *(option for name in EXCLUDED for option in ("--exclude-module", name)),
            str(ROOT / "packaging" / "tracker_main.py"),
        ])
    return dist / "tracker"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where to put the executable")
    built = build(parser.parse_args().dist)
    print(f"Built {built} ({built.stat().st_size / 1e6:.1f} MB): copy it anywhere on a machine of this OS and CPU.")


if __name__ == "__main__":
    main()
