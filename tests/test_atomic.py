"""The one writer path: atomic, unique temporaries, disk errors in one line, claimed and
locked output folders. Full and read-only disks are real (a tiny tmpfs), not simulated."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.atomic import (
    MARKER,
    atomic_bytes,
    atomic_text,
    check_output_path,
    output_folder,
    remove_ours,
)
from sim.errors import OutputError


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, unmounted afterwards (CI runs as root, so it always runs there)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_one_line_and_leaves_nothing(tiny_disk: Path) -> None:
    atomic_text(tiny_disk / "small.txt", "fits")
    with pytest.raises(OutputError) as exc:
        atomic_bytes(tiny_disk / "big.bin", b"x" * 200_000)
    msg = str(exc.value)
    assert "no space left on the device" in msg and "\n" not in msg
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["small.txt"]
    assert (tiny_disk / "small.txt").read_text() == "fits"


def test_read_only_disk_is_one_line(tiny_disk: Path) -> None:
    atomic_text(tiny_disk / "old.txt", "old")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    with pytest.raises(OutputError, match="read-only; choose another --out"):
        atomic_text(tiny_disk / "old.txt", "new")
    assert (tiny_disk / "old.txt").read_text() == "old"


def _write_many(path: str, tag: str) -> None:
    for i in range(200):
        atomic_text(Path(path), f"{tag} {i}\n" * 100)


def test_concurrent_writers_never_collide(tmp_path: Path) -> None:
    target = tmp_path / "shared.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(str(target), t)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    lines = target.read_text().splitlines()
    assert len(lines) == 100 and len(set(lines)) == 1  # one whole write, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["shared.txt"]


def test_output_folder_refuses_what_is_not_ours(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(OutputError, match="was not made by flipclock"):
        check_output_path(mine)
    with pytest.raises(OutputError, match="is a file"):
        check_output_path(mine / "notes.txt")
    with pytest.raises(OutputError, match="Refusing to delete"):
        remove_ours(mine)
    assert (mine / "notes.txt").read_text() == "keep"
    with output_folder(mine, force=True):  # --force: the user said so
        pass
    assert (mine / MARKER).is_file() and (mine / "notes.txt").is_file()


def test_output_folder_refuses_the_working_folder(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for out in (".", "..", str(tmp_path)):
        with pytest.raises(OutputError, match="current folder or above it"):
            check_output_path(Path(out))


def test_output_folder_is_locked_and_ours_is_reusable(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with output_folder(out):
        atomic_text(out / "a.txt", "1")
        # A second claim while the first holds it (another process in real life: flock
        # locks are per open file, so a second open in this process conflicts too).
        with pytest.raises(OutputError, match="Another flipclock run is writing"), \
                output_folder(out):
            pass
    with output_folder(out):  # released: the same folder is ours and can be reused
        pass
    remove_ours(out)
    assert not out.exists()


def test_a_failed_run_leaves_no_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "new"
    with pytest.raises(RuntimeError), output_folder(out):
        raise RuntimeError("work failed before writing")
    assert not out.exists()
    with pytest.raises(RuntimeError), output_folder(out):
        atomic_text(out / "partial.txt", "kept: resumable work")
        raise RuntimeError("work failed after writing")
    assert (out / "partial.txt").is_file()
