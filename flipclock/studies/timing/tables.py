"""The study's uniform error tables: found, checked and planned before any work, built after.

:func:`plan_tables` reads ``--table`` (a ``compressed_T*.parquet`` file or an ``errtable``
folder with ``--period``), refuses stale or unfit tables, and lists the periods still to
build; :func:`build_tables_of` builds them with the timing engine. :func:`design_for`
loads the multiplier a table was built from and refuses a different netlist or delays.
:func:`table_digest` and friends are the hashes stored with every result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import QUICK, StudyError

__all__ = ["TablePlan", "build_tables_of", "default_design", "design_for", "found_periods",
           "plan_tables", "spec_digest", "spec_meta", "table_digest"]


def default_design() -> Path:
    """The committed 8-bit Booth multiplier (``rtl/booth8``), wherever the command runs."""
    from flipclock.defaults import RTL_DIR

    return RTL_DIR / "booth8"


@dataclass
class TablePlan:
    """Uniform-prev tables by period: those read from disk, and those to build.

    Members
    -------
    tables:
        ``period -> (table, source)`` of the tables found.
    missing:
        Periods to build (into the ``--table`` folder, or ``WORK/tables`` for ``--quick``).
    available:
        Periods the ``--table`` folder already holds (kept when tables are built into it).
    mode:
        How to build them: ``"exhaustive"`` (``--build-tables``) or ``"sample"`` (``--quick``
        without ``--table``).
    """

    tables: dict[int, tuple[Any, str]] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)
    available: list[int] = field(default_factory=list)
    mode: str = "exhaustive"

    @property
    def periods(self) -> list[int]:
        """Every period the study will run, ascending."""
        return sorted({*self.tables, *self.missing})


def found_periods(folder: Path) -> list[int]:
    """The periods of the ``compressed_T*.parquet`` tables in ``folder``, ascending."""
    stems = (f.stem.split("_T")[-1] for f in folder.glob("compressed_T*.parquet"))
    return sorted(int(s) for s in stems if s.isdigit())


def plan_tables(table: Path | None, periods: Sequence[int], *, build: bool,
                quick: bool) -> TablePlan:
    """Read and check the ``--table`` input; list the periods left to build (no building).

    Every table is read through :meth:`sim.tables.CompressedTable.read`, which checks its
    hashes against the folder's ``meta.json`` and refuses a stale file (a period
    ``meta.json`` does not list, left by an earlier run).

    Raises
    ------
    StudyError
        No table and not quick, a missing file or folder, a folder without ``--period``, or
        a period the folder lacks (without ``--build-tables``).
    """
    from sim.tables import CompressedTable

    wanted = sorted(set(periods))
    if table is None:
        if not quick:
            raise StudyError("--table is required: a compressed_T*.parquet file, or a table "
                             "folder with --period (build one with `flipclock errtable "
                             "rtl/booth8 --period 32 --out tables/booth8`)")
        return TablePlan(missing=wanted or list(QUICK["periods"]), mode="sample")
    if table.is_file():
        t = CompressedTable.read(table)
        if wanted and wanted != [t.period]:
            raise StudyError(f"{str(table)!r} is the table of period {t.period}, not "
                             f"{wanted}; pass a table folder to study several periods")
        return TablePlan({t.period: (t, str(table))})
    if not table.is_dir() and not build:
        raise StudyError(f"Error table {str(table)!r} does not exist; build it with "
                         "`flipclock errtable` (or add --build-tables)")
    available = found_periods(table) if table.is_dir() else []
    if not wanted:
        raise StudyError(f"{str(table)!r} is a table folder: choose --period (available: "
                         f"{available or 'none'})")
    if available:
        # The whole folder, not only the files used: a missing or edited file beside them,
        # a stale period or a missing meta.json means the folder cannot be trusted.
        from sim.manifest import ManifestError, verify_folder

        try:
            verify_folder(table, "compressed_T*.parquet")
        except ManifestError as exc:
            raise StudyError(str(exc)) from None
    plan = TablePlan(available=list(available))
    for p in wanted:
        f = table / f"compressed_T{p}.parquet"
        if f.is_file():
            plan.tables[p] = (CompressedTable.read(f), str(f))
        elif build:
            plan.missing.append(p)
        else:
            raise StudyError(f"No table for period {p} in {str(table)!r} (periods: "
                             f"{available or 'none'}); build it with `flipclock errtable "
                             f"DESIGN --period {p} --out {table}` or add --build-tables")
    return plan


def design_for(design: Path | None, table: Any | None) -> Any:
    """The multiplier to build tables of: ``design``, else the one ``table`` names, else
    ``rtl/booth8``. It must hold the netlist and delays ``table`` was built from."""
    from sim.design import load_design

    meta = (table.meta or {}) if table is not None else {}
    folder = design or Path(meta.get("design") or default_design())
    if not folder.is_dir():
        raise StudyError(f"Design folder {str(folder)!r} does not exist; pass --design with a "
                         "`flipclock build booth` folder")
    loaded = load_design(folder)
    for key, have, what in (("netlist_hash", loaded.netlist.content_hash, "netlist"),
                            ("delays_hash", loaded.annotation.content_hash, "delays")):
        want = meta.get(key)
        if want and want != have:
            raise StudyError(f"The error table was built from {what} {want[:12]} but "
                             f"{str(folder)!r} holds {have[:12]}; pass --design with the "
                             "build folder the table came from")
    return loaded


def build_tables_of(design: Any, periods: Sequence[int], folder: Path, *, mode: str, seed: int,
                    progress: bool, log: Callable[[str], None] = print
                    ) -> dict[int, tuple[Any, str]]:
    """Uniform-prev tables of ``design`` at ``periods`` into ``folder`` (resumable)."""
    from sim.errtable import TableConfig, build_tables

    cfg = TableConfig(periods=tuple(periods), mode=mode, samples=QUICK["table_samples"],
                      seed=seed)
    what = (f"sampled ({QUICK['table_samples']} previous pairs per current pair)"
            if mode == "sample" else "exhaustive")
    log(f"building {what} error tables of {design.folder} at periods {list(periods)} -> "
        f"{folder}")
    # force replaces the shards of another period list: in a folder of flipclock tables (its
    # periods are all rebuilt) or a new one; a folder of the user's without tables is refused
    force = not folder.exists() or bool(found_periods(folder))
    tset = build_tables(design.netlist, design.annotation, cfg, folder,
                        settings=design.settings(), progress=progress, force=force,
                        log=lambda _m: None)
    return {p: (t, str(folder / f"compressed_T{p}.parquet")) for p, t in tset.tables.items()}


# --- hashes stored with the results ---------------------------------------------------------
def table_digest(table: Any) -> str:
    """SHA-256 of a table's probabilities and wrong outputs (what injection depends on)."""
    h = hashlib.sha256(f"{table.width}:{table.period}".encode())
    for arr in (table.p_wrong, table.offsets, table.wrong_output, table.wrong_prob):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def spec_digest(spec: Any) -> str | dict[str, str]:
    """:func:`table_digest` of one table, or per layer of a ``layer -> table`` mapping."""
    from sim.tables import CompressedTable

    if isinstance(spec, CompressedTable):
        return table_digest(spec)
    return {k: table_digest(t) for k, t in sorted(spec.items())}


_META_KEYS = ("design", "netlist_hash", "delays_hash", "mode", "semantics", "prev", "samples",
              "period", "exact", "critical_path_ticks", "regulation", "source")


def spec_meta(spec: Any) -> Any:
    """The provenance fields of a table's metadata (per layer for a mapping)."""
    from sim.tables import CompressedTable

    if isinstance(spec, CompressedTable):
        return {k: spec.meta.get(k) for k in _META_KEYS if k in spec.meta}
    return {name: {k: t.meta.get(k) for k in _META_KEYS if k in t.meta}
            for name, t in sorted(spec.items())}
