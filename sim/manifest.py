"""``meta.json``: the manifest of a result folder, sealed by content hashes.

A table run (``errtable``, ``variation``, ``stuckat``) ends by writing ``meta.json``: its
settings, ``files`` (the SHA-256 of every file the run wrote, by name relative to the
folder) and ``meta_sha256`` (the SHA-256 of the rest of ``meta.json``). Readers check all
three before using a file (:func:`verify_file`, :func:`verify_folder`):

* ``meta.json`` itself was not edited or damaged (its own hash);
* the file is one the run wrote (a table of another period left by an earlier run into
  the same folder is *stale* and refused);
* its bytes are the ones written (one flipped bit is an error, never a changed result).

A folder without ``meta.json`` has no manifest: a run that has not finished yet, or a file
copied elsewhere. Single files are then checked by their own embedded hash only (see
:meth:`sim.tables.CompressedTable.read`); whole folders are refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .atomic import atomic_json
from .errors import SimError

__all__ = ["META", "ManifestError", "file_sha256", "read_meta", "verify_file",
           "verify_folder", "write_meta"]

META = "meta.json"

_COMMANDS = {"flipclock-errtable": "errtable", "flipclock-variation": "variation",
             "flipclock-stuckat": "stuckat"}


class ManifestError(SimError, ValueError):
    """A result folder's ``meta.json`` or a file it lists fails its hash check."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _meta_digest(meta: Mapping[str, Any]) -> str:
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_meta(folder: Path, meta: Mapping[str, Any], files: Iterable[str]) -> dict[str, Any]:
    """Hash ``files`` (names relative to ``folder``), seal ``meta`` with them and write it
    as ``folder/meta.json`` (atomically). Returns the sealed dict."""
    folder = Path(folder)
    sealed = dict(meta)
    sealed["files"] = {name: file_sha256(folder / name) for name in sorted(set(files))}
    sealed["meta_sha256"] = _meta_digest(sealed)
    atomic_json(folder / META, sealed)
    return sealed


def _rebuild(meta: Mapping[str, Any] | None, folder: Path) -> str:
    cmd = _COMMANDS.get(str((meta or {}).get("format")), "errtable")
    return f"rebuild it with `flipclock {cmd} ... --out {folder}` (the same command)"


def read_meta(folder: Path) -> dict[str, Any]:
    """Read ``folder/meta.json`` and check its own hash."""
    path = Path(folder) / META
    try:
        meta = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"{str(path)!r} is missing: the run into {str(folder)!r} did not "
                            "finish; run the same command again to complete it") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{str(path)!r} is damaged ({exc}); "
                            f"{_rebuild(None, Path(folder))}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
        raise ManifestError(f"{str(path)!r} lists no file hashes (written by an older "
                            f"flipclock, or damaged); {_rebuild(None, Path(folder))}")
    if meta.get("meta_sha256") != _meta_digest(meta):
        raise ManifestError(f"{str(path)!r} does not match its own hash (edited or damaged); "
                            f"{_rebuild(meta, Path(folder))}")
    return meta


def _check(folder: Path, meta: Mapping[str, Any], name: str) -> None:
    want = meta["files"].get(name)
    path = folder / name
    if want is None:
        raise ManifestError(f"Table file {str(path)!r} is not listed in {META} (a stale file "
                            "of an earlier run with other settings); delete it, or "
                            f"{_rebuild(meta, folder)} with --force")
    try:
        got = file_sha256(path)
    except OSError as exc:
        raise ManifestError(f"Table file {str(path)!r} cannot be read ({exc.strerror}); "
                            f"{_rebuild(meta, folder)}") from None
    if got != want:
        raise ManifestError(f"Table file {str(path)!r} does not match its hash in {META}; "
                            f"{_rebuild(meta, folder)}")


def verify_file(path: Path) -> dict[str, Any] | None:
    """Check one file against the ``meta.json`` beside it; return that meta, or ``None``
    when the folder has no ``meta.json``."""
    path = Path(path)
    if not (path.parent / META).is_file():
        return None
    meta = read_meta(path.parent)
    _check(path.parent, meta, path.name)
    return meta


def verify_folder(folder: Path, pattern: str = "*.parquet") -> dict[str, Any]:
    """Check ``meta.json`` and every file it lists, and refuse files matching ``pattern``
    that it does not list (stale). Returns the meta."""
    folder = Path(folder)
    meta = read_meta(folder)
    for name in sorted(meta["files"]):
        _check(folder, meta, name)
    for path in sorted(folder.glob(pattern)):
        if path.name not in meta["files"]:
            _check(folder, meta, path.name)  # refuses it as stale
    return meta
