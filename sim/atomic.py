"""Every file flipclock writes goes through here: atomic, unique, locked, never half-written.

* **Atomic.** Each file is written to a temporary name beside its target and renamed over
  it, so a killed run never leaves a half-written report, table or figure.
* **Unique temporary names** (process id and a random part), so two processes writing the
  same file never trip over each other's temporary.
* **Disk problems are one line.** A full disk, a read-only file system or a missing
  permission raise :class:`~sim.errors.OutputError` naming the file and the fix; the
  temporary is removed.
* **Output folders are claimed and locked.** :func:`output_folder` refuses a folder that
  flipclock did not make (unless forced), marks the ones it makes, and holds an exclusive
  lock while a run writes, so a second run into the same ``--out`` stops with one line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import OutputError

__all__ = [
    "MARKER",
    "MARKER_TEXT",
    "atomic_bytes",
    "atomic_frame",
    "atomic_json",
    "atomic_npz",
    "atomic_text",
    "atomic_write",
    "check_output_path",
    "is_ours",
    "output_folder",
    "read_user_bytes",
    "remove_ours",
    "save_figure",
]

MARKER = ".flipclock"
"""File that marks a folder flipclock created; only such folders are ever cleared."""

_LOCK = ".flipclock.lock"

_REASONS = {
    errno.ENOSPC: "no space left on the device; free some space or choose another --out",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another --out",
    errno.EROFS: "the file system is read-only; choose another --out",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "permission denied; choose a folder you can write to",
    errno.ENOTDIR: "a parent of it is a file, not a folder; choose another --out",
    errno.EISDIR: "it is a folder; choose another name",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter --out",
}


def _os_error(path: Path, exc: OSError) -> OutputError:
    reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return OutputError(f"Cannot write {str(path)!r}: {reason}")


def _tmp(path: Path) -> Path:
    # Keep the suffix last: pandas, numpy and matplotlib pick the format from it.
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"Cannot write into {str(folder)!r}: it is a file, not a folder; "
                          "choose another --out") from None
    except OSError as exc:
        raise _os_error(folder, exc) from None


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` to produce the file at a temporary path, then rename it to
    ``path`` (parent folders created). Any failure removes the temporary."""
    path = Path(path)
    _mkdir(path.parent)
    tmp = _tmp(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _os_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def atomic_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_json(path: Path, data: Any, *, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON atomically; NaN and infinity are refused (not JSON)."""
    return atomic_text(path, json.dumps(data, indent=indent, allow_nan=False) + "\n")


def atomic_npz(path: Path, **arrays: Any) -> Path:
    """Write numpy arrays as a compressed ``.npz`` atomically."""
    import numpy as np

    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def atomic_frame(frame: Any, path: Path) -> Path:
    """Write a pandas DataFrame atomically: CSV for ``*.csv``, else Parquet (no index)."""
    if Path(path).suffix == ".csv":
        return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def save_figure(fig: Any, path: Path) -> Path:
    """Save a matplotlib figure atomically, close it and return ``path``."""
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp))
    finally:
        plt.close(fig)
    return path


MARKER_TEXT = "made by flipclock; safe for flipclock to replace\n"


def is_ours(folder: Path) -> bool:
    """Whether ``folder`` holds flipclock's marker: a plain file with exactly the text
    flipclock writes (an empty or edited ``.flipclock``, or a folder of that name, is not)."""
    marker = Path(folder) / MARKER
    try:
        return marker.is_file() and not marker.is_symlink() and \
            marker.read_text(encoding="utf-8") == MARKER_TEXT
    except (OSError, UnicodeDecodeError):
        return False


def check_output_path(out: Path, *, force: bool = False, design: bool = False,
                      tables: bool = False) -> None:
    """Refuse an output folder before any work starts: an existing file, the current
    folder or a parent of it, a non-empty folder flipclock did not create (unless
    ``force``), a design folder (unless ``design``: only a build writes one) and an error
    table folder (unless ``tables``). Cheap; creates nothing that stays."""
    out = Path(out)
    try:
        _check_output_path(out, force=force, design=design, tables=tables)
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long ...
        if isinstance(exc, OutputError):
            raise
        reason = _REASONS.get(getattr(exc, "errno", 0) or 0) or str(exc).splitlines()[0]
        raise OutputError(f"Cannot use --out {str(out)[:200]!r}: {reason}") from None


def _check_output_path(out: Path, *, force: bool, design: bool, tables: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {str(out)!r} is a file; give a folder name")
    if out.is_dir() and (out / "build.json").exists() and not design:
        raise OutputError(f"--out {str(out)!r} is a design folder; give a new folder for the "
                          "results")
    if out.is_dir() and not tables and any(out.glob("compressed_T*.parquet")):
        raise OutputError(f"--out {str(out)!r} holds error tables; give a new folder for the "
                          "results")
    resolved = out.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise OutputError(f"--out {str(out)!r} is the current folder or above it; give a new "
                          "folder name, e.g. out/run1")
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise OutputError(f"--out {str(out)!r} is a root or home folder; give a new folder name")
    if not out.exists():
        _probe(out)
    if (out.is_dir() and not force and not is_ours(out)
            and any(not p.name.startswith(MARKER) for p in out.iterdir())):
        # (the lock, the marker and the marker's temporary while another run claims it)
        raise OutputError(f"--out {str(out)!r} exists and was not made by flipclock; choose a "
                          "new folder, or pass --force to write into it")


def _probe(out: Path) -> None:
    """Create ``out`` and remove it again, so an unwritable place (a read-only disk, /sys,
    a parent that is a file) is refused before any work, not after it."""
    made: list[Path] = []
    for folder in [out, *out.parents]:
        if folder.exists():
            break
        made.append(folder)
    try:
        for folder in reversed(made):
            folder.mkdir()
    except FileExistsError:
        pass  # another run made it meanwhile: the lock decides later
    except OSError as exc:
        raise _os_error(out, exc) from None
    finally:
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()


@contextlib.contextmanager
def output_folder(out: Path, *, force: bool = False, design: bool = False,
                  tables: bool = False) -> Iterator[Path]:
    """Claim ``out`` for one run: check it (:func:`check_output_path`), create and mark it,
    and hold an exclusive lock until the block ends.

    A second run into the same folder stops at once with one line instead of interleaving
    its files. The lock is released by the kernel when the process dies, so a killed run
    never blocks the next one.
    """
    out = Path(out)
    check_output_path(out, force=force, design=design, tables=tables)
    created = not out.exists()
    for attempt in range(3):
        _mkdir(out)
        try:
            fd = os.open(out / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            break
        except FileNotFoundError as exc:
            # A concurrent run into the same new folder removed or swapped it between our
            # mkdir and open: make it again (the lock below then decides who writes).
            if attempt == 2:
                raise _os_error(out / _LOCK, exc) from None
        except OSError as exc:
            raise _os_error(out / _LOCK, exc) from None
    failed = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            created = False  # the other run's folder: never ours to tidy
            raise OutputError(f"Another flipclock run is writing into {str(out)!r}; wait for it "
                              "to finish or choose another --out") from None
        if not is_ours(out):
            if (out / MARKER).is_dir():
                raise OutputError(f"{str(out / MARKER)!r} is a folder; remove it or choose "
                                  "another --out")
            atomic_text(out / MARKER, MARKER_TEXT)
        yield out
    except BaseException:
        failed = True
        raise
    finally:
        # A run that failed before writing anything leaves no empty folder behind.
        with contextlib.suppress(OSError):  # (the work may have removed it already)
            if failed and created and all(p.name.startswith(MARKER) for p in out.iterdir()):
                shutil.rmtree(out, ignore_errors=True)
        os.close(fd)


def remove_ours(path: Path) -> None:
    """Delete a folder flipclock created (it holds the marker); refuse anything else."""
    path = Path(path)
    if not path.exists():
        return
    if not is_ours(path):
        raise OutputError(f"Refusing to delete {str(path)!r}: flipclock did not create it")
    shutil.rmtree(path)


def read_user_bytes(path: str | os.PathLike[str], what: str,
                    error: type[Exception]) -> bytes:
    """The bytes of a user's input file, or one ``error`` line saying why it cannot be
    read (missing, a folder, no permission); ``what`` names the file in the message."""
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {str(p)!r} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {str(p)!r} is a folder; give a file") from None
    except OSError as exc:
        raise error(f"Cannot read {what} {str(p)!r} ({exc.strerror}); check the path and "
                    "its permissions") from None
