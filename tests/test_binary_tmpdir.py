"""dist/tracker and its TMPDIR: a directory that cannot take the unpacked program gets one sentence saying what to
set, and no run leaves anything behind in it (issue 23). Real file systems: tmpfs mounts, as root."""

from __future__ import annotations

import math
import os
import shutil
import signal
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.binary import built_binary, clean_environment, run
from helpers.disk import SmallDisk
from helpers.servers import require_program, wait_until


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield built_binary(tmp_path_factory)


def needed_mb(binary: Path) -> int:
    """What the binary says it needs on disk: the last field of the trailer packaging/launcher.c reads."""
    with binary.open("rb") as file:
        file.seek(-8, os.SEEK_END)
        (needed,) = struct.unpack("<Q", file.read(8))
    return math.ceil(needed / 2**20)


def advice(binary: Path) -> str:
    return (f"set TMPDIR to a directory on a file system that allows running programs and has {needed_mb(binary)} "
            "MB free, e.g. TMPDIR=~/.cache")


def mounted(disk: SmallDisk, size_kb: int, options: str = "") -> Path:
    """`disk` mounted as a tmpfs; skipped where this may not mount (not root), failed when CI=true."""
    if not disk.mount(size_kb, options):
        message = f"mounting a tmpfs ({options or 'plain'}) needs root or CAP_SYS_ADMIN"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return disk.path


def assert_refused(result: subprocess.CompletedProcess[str], sentence: str, directory: Path) -> None:
    assert (result.returncode, result.stdout, result.stderr) == (1, "", sentence + "\n")
    assert list(directory.iterdir()) == []  # nothing unpacked, nothing left behind


def test_a_noexec_tmpdir_is_named_with_what_to_set(binary: Path, small_disk: SmallDisk, tmp_path: Path) -> None:
    tmpdir = mounted(small_disk, 64 * 1024, "noexec")
    result = run(binary, "--version", home=tmp_path, env={"TMPDIR": str(tmpdir)})
    assert_refused(result, f"Error: Cannot unpack tracker into TMPDIR={tmpdir}: it is on a file system mounted "
                           f"noexec, which does not allow running programs; {advice(binary)}", tmpdir)


def test_a_tmpdir_with_too_little_room_says_how_much_it_has(binary: Path, small_disk: SmallDisk,
                                                             tmp_path: Path) -> None:
    tmpdir = mounted(small_disk, 2048)
    result = run(binary, "report", home=tmp_path, env={"TMPDIR": str(tmpdir)})
    assert_refused(result, f"Error: Cannot unpack tracker into TMPDIR={tmpdir}: it has only 2.0 MB free; "
                           f"{advice(binary)}", tmpdir)


def test_a_tmpdir_that_fills_up_while_unpacking_is_left_empty(binary: Path, small_disk: SmallDisk,
                                                               tmp_path: Path) -> None:
    # Room for every byte but not for every file: the launcher's check passes and the unpacking fails half way,
    # the way a disk that another program fills at the same moment would.
    tmpdir = mounted(small_disk, 200 * 1024, "nr_inodes=40")
    result = run(binary, "--version", home=tmp_path, env={"TMPDIR": str(tmpdir)})
    assert_refused(result, f"Error: Cannot unpack tracker into TMPDIR={tmpdir}: it ran out of room while tracker "
                           f"was unpacked; {advice(binary)}", tmpdir)


def test_a_read_only_tmpdir_is_named(binary: Path, small_disk: SmallDisk, tmp_path: Path) -> None:
    tmpdir = mounted(small_disk, 1024, "ro")
    result = run(binary, "--version", home=tmp_path, env={"TMPDIR": str(tmpdir)})
    assert_refused(result, f"Error: Cannot unpack tracker into TMPDIR={tmpdir}: it is on a read-only file system; "
                           f"{advice(binary)}", tmpdir)


def test_a_tmpdir_the_user_may_not_write_to_is_named(binary: Path) -> None:
    # Root may write anywhere, so the binary runs as nobody, from a directory nobody can read (pytest's are not).
    setpriv = require_program("setpriv", "util-linux")
    if os.geteuid() != 0:
        pytest.skip("running the binary as another user needs root")
    shared = Path(tempfile.mkdtemp(prefix="tracker-nobody-"))
    try:
        shared.chmod(0o755)
        copy = shared / "tracker"
        shutil.copy(binary, copy)
        tmpdir = shared / "not yours"
        tmpdir.mkdir(mode=0o555)
        result = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", str(copy), "--version"],
                                capture_output=True, text=True, env=clean_environment(shared, {"TMPDIR": str(tmpdir)}),
                                cwd=shared, timeout=60)
        assert_refused(result, f"Error: Cannot unpack tracker into TMPDIR={tmpdir}: it is not writable; "
                               f"{advice(binary)}", tmpdir)
    finally:
        shutil.rmtree(shared)


def test_a_missing_tmpdir_is_named_not_replaced_by_tmp(binary: Path, tmp_path: Path) -> None:
    # PyInstaller's bootloader would quietly use /tmp instead, which may be the very noexec /tmp the user avoided.
    missing = tmp_path / "no such directory"
    result = run(binary, "categories", "list", home=tmp_path, env={"TMPDIR": str(missing)})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"Error: Cannot unpack tracker into TMPDIR={missing}: it does not exist; "
                             f"{advice(binary)}\n")
    assert not missing.exists()


def test_a_tmpdir_that_is_a_file_is_named(binary: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a file"
    a_file.write_text("")
    result = run(binary, "--version", home=tmp_path, env={"TMPDIR": str(a_file)})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"Error: Cannot unpack tracker into TMPDIR={a_file}: it is not a directory; "
                             f"{advice(binary)}\n")


def test_a_run_leaves_its_tmpdir_as_it_found_it(binary: Path, tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    result = run(binary, "categories", "list", home=tmp_path, env={"TMPDIR": str(tmpdir)})
    assert result.returncode == 0, result.stderr
    assert "Development" in result.stdout
    failed = run(binary, "report", "--since", "not a time", home=tmp_path, env={"TMPDIR": str(tmpdir)})
    assert failed.returncode == 2, failed.stderr  # the program's own exit code comes through
    assert list(tmpdir.iterdir()) == []


def test_a_stopped_run_leaves_its_tmpdir_empty_and_stops_cleanly(binary: Path, tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {"TMPDIR": str(tmpdir)}
    recording = subprocess.Popen([str(binary), "run", "--source", "demo", "--quiet"], cwd=tmp_path,
                                 env=clean_environment(tmp_path, env), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: run(binary, "status", home=tmp_path, env=env).returncode == 0, 60, "tracker run to run")
        assert [entry.name[:8] for entry in tmpdir.iterdir()] == ["tracker-"]
        recording.send_signal(signal.SIGTERM)  # to the launcher, which passes it on
        _, err = recording.communicate(timeout=30)
    finally:
        recording.kill()
        recording.wait()
    assert recording.returncode == 0, err
    assert "Traceback" not in err
    assert list(tmpdir.iterdir()) == []


def test_a_copy_cut_short_says_so_and_blames_no_directory(binary: Path, tmp_path: Path) -> None:
    cut = tmp_path / "tracker"
    cut.write_bytes(binary.read_bytes()[:-1000])  # a download or copy that stopped early
    cut.chmod(0o755)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    result = run(cut, "--version", home=tmp_path, env={"TMPDIR": str(tmpdir)})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"Error: {cut} is damaged: build it again with make binary, or copy it again\n"
    assert list(tmpdir.iterdir()) == []
