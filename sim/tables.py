"""Error-table objects and files: the interface between the timing engine and ``nnmap``.

Three tables, after Wu et al. (Tables I-III of the timing-error paper):

* **full table** (Table I): one row per transition ``(prev_a, prev_b, cur_a, cur_b) -> output``
  at a clock period. Exhaustive tables (``2**32`` rows for 8-bit operands) are not stored;
  sampled runs and filtered views (only the wrong captures) are, as Parquet.
* **compressed table** (Table II, :class:`CompressedTable`): for every current operand pair
  ``(a, b)``, every distinct *wrong* captured output with its probability under a stated
  previous-input distribution. The exact product is implied: its probability is
  ``1 - p_wrong``.
* **weight error probability** (Table III, :meth:`CompressedTable.weight_error_probability`):
  per value of the weight operand, the probability of a wrong product, marginalised over an
  activation distribution (uniform by default).

Operand codes
-------------
Operands are ``width``-bit values of the design's two operand ports, two's complement when
the table is ``signed`` (the Booth multipliers) and plain binary otherwise. Arrays indexed
by operand use the *unsigned code* ``v & (2**width - 1)`` (so ``-1`` is code 255 for 8
bits); :func:`signed_values` maps codes back. The flat pair index is
``code(a) << width | code(b)``.

The correct output of a pair (``golden``) is the design's own settled output, read from
the engine, never an assumed product; tables built before it was recorded, and tables
made without one, take the signed product.

Files
-----
:meth:`CompressedTable.write` stores one Parquet file whose rows are
``a, b, output, probability, correct, n_prev`` (signed ints; one row for the exact product of
every pair and one per distinct wrong output) and whose schema metadata holds
``flipclock.meta`` (JSON: netlist and delay hashes, delay model, semantics, period, tick,
previous-input distribution, sample counts, seed, tool versions, and ``content_sha256``,
the hash of the decoded columns). A CSV export is written beside it on request.

:meth:`CompressedTable.read` refuses a file whose decoded columns do not match its embedded
hash, and, when a ``meta.json`` lies beside it, a file that manifest does not list or whose
bytes do not match the hash it records (:mod:`sim.manifest`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .atomic import atomic_frame, atomic_write
from .errors import SimError
from .manifest import ManifestError, verify_file

__all__ = [
    "CompressedTable",
    "compress",
    "TableError",
    "pair_index",
    "regulate",
    "regulation_factor",
    "signed_values",
    "operand_values",
]

FORMAT = "flipclock-compressed-table"
VERSION = 2  # 2: content_sha256 of the decoded columns

_COLUMNS = ("a", "b", "output", "probability", "correct", "n_prev")


MAX_WIDTH = 12
"""Widest operands a compressed table can hold (it has 4**width operand pairs)."""


class TableError(SimError, ValueError):
    """A table file or object is malformed or does not fit its use (message names the fix)."""


def _frame_sha256(df: Any) -> str:
    """Hash of a table frame's columns as decoded (what a reader would use)."""
    h = hashlib.sha256()
    for col in _COLUMNS:
        h.update(col.encode())
        h.update(np.ascontiguousarray(df[col].to_numpy()).tobytes())
    return h.hexdigest()


def signed_values(width: int) -> npt.NDArray[np.int64]:
    """Signed operand value of every unsigned code ``0 .. 2**width - 1``."""
    codes = np.arange(1 << width, dtype=np.int64)
    return np.where(codes >= 1 << (width - 1), codes - (1 << width), codes)


def operand_values(width: int, signed: bool) -> npt.NDArray[np.int64]:
    """Operand value of every unsigned code (two's complement when ``signed``)."""
    return signed_values(width) if signed else np.arange(1 << width, dtype=np.int64)


def pair_index(a: npt.ArrayLike, b: npt.ArrayLike, width: int) -> npt.NDArray[np.int64]:
    """Flat pair index ``code(a) << width | code(b)`` of signed (or unsigned) operands."""
    mask = (1 << width) - 1
    return ((np.asarray(a, np.int64) & mask) << width) | (np.asarray(b, np.int64) & mask)


@dataclass
class CompressedTable:
    """Table II: for each current operand pair, the wrong outputs and their probabilities.

    Parameters
    ----------
    width:
        Operand width ``W`` of ports ``a`` and ``b``.
    period:
        Clock period in delay ticks at which the outputs were captured.
    p_wrong:
        ``float64 [2**W, 2**W]`` indexed ``[code(a), code(b)]``: probability that the
        captured product is wrong.
    offsets:
        ``int64 [2**(2W) + 1]``: CSR offsets over the flat pair index into the two arrays
        below (the wrong outputs of pair ``i`` are ``offsets[i]:offsets[i+1]``).
    wrong_output:
        ``int64 [nnz]``: a distinct wrong (signed) output.
    wrong_prob:
        ``float64 [nnz]``: its unconditional probability; per pair they sum to ``p_wrong``.
    n_prev:
        ``int64 [2**W, 2**W]``: previous-input samples behind each pair (``2**(2W)`` when
        exhaustive) -- the ``n`` of the confidence intervals.
    meta:
        Settings that produced the table (recorded in every file).
    golden:
        ``int64 [2**W, 2**W]``: the correct output value of each pair (the design's own
        settled output); the signed product when ``None``.
    signed:
        Whether operands and outputs are two's complement (how values are read).
    """

    width: int
    period: int
    p_wrong: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64]
    wrong_output: npt.NDArray[np.int64]
    wrong_prob: npt.NDArray[np.float64]
    n_prev: npt.NDArray[np.int64]
    meta: dict[str, Any] = field(default_factory=dict)
    golden: npt.NDArray[np.int64] | None = None
    signed: bool = True

    def __post_init__(self) -> None:
        n = 1 << self.width
        if self.golden is None:
            v = signed_values(self.width)
            self.golden = np.multiply.outer(v, v)
        if np.shape(self.golden) != (n, n):
            raise TableError(f"Compressed table for width {self.width} needs [{n}, {n}] golden "
                             f"outputs, got {np.shape(self.golden)}")
        if self.p_wrong.shape != (n, n) or self.n_prev.shape != (n, n):
            raise TableError(f"Compressed table for width {self.width} needs [{n}, {n}] arrays, "
                             f"got {self.p_wrong.shape} and {self.n_prev.shape}")
        if self.offsets.shape != (n * n + 1,) or self.offsets[-1] != len(self.wrong_output):
            raise TableError("Compressed table offsets do not match its wrong outputs; "
                             "rebuild the table")
        if len(self.wrong_prob) != len(self.wrong_output):
            raise TableError("Compressed table has unequal wrong-output and probability arrays")
        # probabilities summed from weights can overshoot 1 by a rounding step; more than
        # that is a damaged table
        for name in ("p_wrong", "wrong_prob"):
            arr = getattr(self, name)
            if arr.size and (arr.min() < -1e-9 or arr.max() > 1 + 1e-9 or np.isnan(arr).any()):
                raise TableError(f"Compressed table {name} has values outside [0, 1]; rebuild "
                                 "the table")
            setattr(self, name, np.clip(arr, 0.0, 1.0))

    # --- derived tables -------------------------------------------------------------------
    def exact(self) -> npt.NDArray[np.int64]:
        """``int64 [2**W, 2**W]``: the correct (settled) output value of every pair."""
        assert self.golden is not None  # set in __post_init__
        return np.asarray(self.golden, np.int64)

    def values(self) -> npt.NDArray[np.int64]:
        """Operand value of every code (two's complement when :attr:`signed`)."""
        return operand_values(self.width, self.signed)

    def weight_error_probability(
        self, weight_port: str = "a", act_hist: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.float64]:
        """Table III: per weight code, the probability of a wrong product.

        Parameters
        ----------
        weight_port:
            ``"a"`` or ``"b"``: the multiplier port that carries the weight.
        act_hist:
            Histogram (any non-negative weights) over the ``2**W`` activation *codes*;
            uniform when ``None``.
        """
        if weight_port not in ("a", "b"):
            raise TableError(f"weight_port must be 'a' or 'b', not {weight_port!r}")
        n = 1 << self.width
        if act_hist is None:
            h = np.full(n, 1.0 / n)
        else:
            h = np.asarray(act_hist, np.float64)
            if h.shape != (n,) or (h < 0).any() or h.sum() <= 0:
                raise TableError(f"Activation histogram must have {n} non-negative entries "
                                 "with a positive sum")
            h = h / h.sum()
        p = self.p_wrong if weight_port == "a" else self.p_wrong.T
        return np.asarray(p @ h, dtype=np.float64)

    # --- files ----------------------------------------------------------------------------
    def to_frame(self) -> Any:
        """The table as a pandas DataFrame (Table II layout, signed operands)."""
        import pandas as pd

        n = 1 << self.width
        v = self.values()
        counts = np.diff(self.offsets)
        pair = np.repeat(np.arange(n * n), counts)
        a_all, b_all = np.divmod(np.arange(n * n), n)
        exact = self.exact().ravel()
        frames = [
            pd.DataFrame({"a": v[a_all], "b": v[b_all], "output": exact,
                          "probability": 1.0 - self.p_wrong.ravel(), "correct": True,
                          "n_prev": self.n_prev.ravel()}),
            pd.DataFrame({"a": v[pair // n], "b": v[pair % n], "output": self.wrong_output,
                          "probability": self.wrong_prob, "correct": False,
                          "n_prev": self.n_prev.ravel()[pair]}),
        ]
        df = pd.concat(frames, ignore_index=True)
        return df.sort_values(["a", "b", "correct", "output"], ascending=[True, True, False, True],
                              kind="stable").reset_index(drop=True)

    def write(self, path: str | os.PathLike[str], *, csv: bool = False) -> Path:
        """Write the table as Parquet (atomically), and a CSV beside it if ``csv``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        df = self.to_frame()
        table = pa.Table.from_pandas(df, preserve_index=False)
        meta = {**self.meta, "format": FORMAT, "version": VERSION, "width": self.width,
                "period": self.period, "signed": self.signed,
                "content_sha256": _frame_sha256(df)}
        table = table.replace_schema_metadata({b"flipclock.meta": json.dumps(meta).encode()})
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        if csv:
            atomic_frame(df, path.with_suffix(".csv"))
        return path

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> CompressedTable:
        """Read a table written by :meth:`write`, checking its hashes (module doc); a
        damaged, stale or foreign file is a :class:`TableError`."""
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.is_file():
            raise TableError(f"Error table {str(path)!r} does not exist; build it with "
                             "`flipclock errtable`")
        try:
            verify_file(path)
        except ManifestError as exc:
            raise TableError(str(exc)) from None
        try:
            table = pq.read_table(path)
            raw = (table.schema.metadata or {}).get(b"flipclock.meta")
            meta = json.loads(raw) if raw else None
            df = table.to_pandas()
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise TableError(f"Error table {str(path)!r} is corrupted or truncated ({exc}); "
                             "rebuild it with `flipclock errtable`") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise TableError(f"{str(path)!r} is not a flipclock compressed error table; "
                             "build one with `flipclock errtable`")
        if meta.get("version") != VERSION:
            raise TableError(f"Error table {str(path)!r} has format version "
                             f"{meta.get('version')!r}, not {VERSION}; rebuild it with this "
                             "flipclock")
        try:
            ok = meta.get("content_sha256") == _frame_sha256(df)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise TableError(f"Error table {str(path)!r} does not match its embedded content "
                             "hash (damaged); rebuild it with `flipclock errtable`")
        width, period = meta.get("width"), meta.get("period")
        # The content hash covers the rows, not the header: check the header's own fields.
        if (type(width) is not int or not 1 <= width <= MAX_WIDTH or type(period) is not int
                or period < 0):
            raise TableError(f"Error table {str(path)!r} has a damaged header (width "
                             f"{width!r}, period {period!r}); rebuild it with "
                             "`flipclock errtable`")
        try:
            return cls.from_frame(df, meta)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise TableError(f"Error table {str(path)!r} is damaged ({exc!r}); rebuild it "
                             "with `flipclock errtable`") from None

    @classmethod
    def from_frame(cls, df: Any, meta: Mapping[str, Any]) -> CompressedTable:
        """Rebuild from the :meth:`to_frame` layout and the file's metadata."""
        width = int(meta["width"])
        n = 1 << width
        mask = n - 1
        a = df["a"].to_numpy(np.int64) & mask
        b = df["b"].to_numpy(np.int64) & mask
        idx = (a << width) | b
        correct = df["correct"].to_numpy(bool)
        if np.bincount(idx[correct], minlength=n * n).max(initial=0) != 1 or correct.sum() != n * n:
            raise TableError(f"Error table for width {width} must have exactly one exact-product "
                             "row per operand pair; rebuild it with `flipclock errtable`")
        n_prev = np.empty(n * n, np.int64)
        n_prev[idx[correct]] = df["n_prev"].to_numpy(np.int64)[correct]
        golden = np.empty(n * n, np.int64)
        golden[idx[correct]] = df["output"].to_numpy(np.int64)[correct]
        signed = meta.get("signed", True)
        if not isinstance(signed, bool):
            raise TableError(f"Error table header has signed={signed!r}, not true or false")
        wrong = ~correct
        order = np.argsort(idx[wrong], kind="stable")
        w_idx = idx[wrong][order]
        offsets = np.zeros(n * n + 1, np.int64)
        np.cumsum(np.bincount(w_idx, minlength=n * n), out=offsets[1:])
        wrong_prob = df["probability"].to_numpy(np.float64)[wrong][order]
        p_wrong = np.bincount(w_idx, weights=wrong_prob, minlength=n * n).astype(np.float64)
        rest = {k: v for k, v in meta.items()
                if k not in ("format", "version", "width", "period", "content_sha256", "signed")}
        return cls(
            width=width,
            period=int(meta["period"]),
            p_wrong=p_wrong.reshape(n, n),
            offsets=offsets,
            wrong_output=df["output"].to_numpy(np.int64)[wrong][order],
            wrong_prob=wrong_prob,
            n_prev=n_prev.reshape(n, n),
            meta=rest,
            golden=golden.reshape(n, n),
            signed=signed,
        )


def compress(rows: Any, width: int, *, weights: npt.ArrayLike | None = None,
             period: int = 0, meta: Mapping[str, Any] | None = None,
             golden: npt.ArrayLike | None = None, signed: bool = True) -> CompressedTable:
    """Table I -> Table II: compress full-table rows into a :class:`CompressedTable`.

    ``rows`` has columns ``prev_a, prev_b, cur_a, cur_b, output`` (signed or unsigned
    operands); every current pair must appear. ``weights`` (one per row) is the
    probability of each row's previous pair; uniform over the rows of a pair when
    ``None`` (the paper's assumption). ``golden`` (``[2**W, 2**W]`` values) is the correct
    output of each pair, the signed product when ``None``; outputs are read as
    two's complement when ``signed``.
    """
    n = 1 << width
    mask = n - 1
    ca = rows["cur_a"].to_numpy(np.int64) & mask
    cb = rows["cur_b"].to_numpy(np.int64) & mask
    idx = (ca << width) | cb
    out = rows["output"].to_numpy(np.int64)
    omask = (1 << (2 * width)) - 1
    half = 1 << (2 * width - 1)
    out = out & omask
    if signed:
        out = np.where(out >= half, out - 2 * half, out)
    v = operand_values(width, signed)
    gold = (np.multiply.outer(signed_values(width), signed_values(width)) if golden is None
            else np.asarray(golden, np.int64).reshape(n, n))
    exact = gold[ca, cb]
    w = np.ones(len(idx)) if weights is None else np.asarray(weights, np.float64)
    per_pair = np.bincount(idx, weights=w, minlength=n * n)
    if (per_pair <= 0).any():
        missing = int(np.flatnonzero(per_pair <= 0)[0])
        raise TableError(f"Current pair a={v[missing >> width]}, b={v[missing & mask]} has no "
                         "rows; a full table must cover every current pair")
    prob = w / per_pair[idx]
    wrong = out != exact
    key = idx[wrong] * (4 * half) + (out[wrong] + 2 * half)
    uniq, inv = np.unique(key, return_inverse=True)
    p_wrong_out = np.bincount(inv, weights=prob[wrong], minlength=len(uniq))
    u_pair = uniq // (4 * half)
    offsets = np.zeros(n * n + 1, np.int64)
    np.cumsum(np.bincount(u_pair, minlength=n * n), out=offsets[1:])
    n_prev = np.bincount(idx, minlength=n * n).astype(np.int64)
    return CompressedTable(
        width=width, period=period,
        p_wrong=np.bincount(u_pair, weights=p_wrong_out,
                            minlength=n * n).reshape(n, n).astype(np.float64),
        offsets=offsets, wrong_output=(uniq % (4 * half)) - 2 * half,
        wrong_prob=p_wrong_out.astype(np.float64), n_prev=n_prev.reshape(n, n),
        meta=dict(meta or {}), golden=gold, signed=signed)


# --- the paper's scalar "regulation" of error probabilities ----------------------------------
_SIGMA_NAME = re.compile(r"^([0-9]*\.?[0-9]+)(?:sigma|σ)$")


def regulation_factor(value: float | str, *, exact: bool = False) -> float:
    """The regulation factor ``r`` in ``(0, 1]`` of Wu et al. (section IV-A).

    The paper multiplies every error probability of the nominal table by the Gaussian tail
    ``P(Z > k)``: the chance that a chip's path delay exceeds ``mean + k sigma``. Its two
    settings are ``"1.5sigma"`` -> 0.0668 and ``"2sigma"`` -> 0.0227.

    Parameters
    ----------
    value:
        A number in ``(0, 1]`` (or its text), or a name ``"<k>sigma"`` (``"σ"`` may
        replace ``"sigma"``; spaces and case are ignored) for any ``k > 0``.
    exact:
        For a name, return the unrounded tail ``1 - Phi(k)`` instead of the paper's
        rounding.

    Notes
    -----
    The paper's numbers are reproduced by reading ``Phi(k)`` from a five-decimal normal
    table and truncating the tail to three significant figures: ``1 - 0.93319 = 0.06681 ->
    0.0668``, ``1 - 0.97725 = 0.02275 -> 0.0227`` (plain rounding of the exact tail
    0.022750 would give 0.0228), and ``1 - 0.99865 = 0.00135`` (the paper's "0.135 %" for
    3 sigma).
    """
    if isinstance(value, str):
        key = value.strip().lower().replace(" ", "")
        m = _SIGMA_NAME.match(key)
        if m:
            k = float(m.group(1))
            if not 0 < k < 40:
                raise TableError(f"Regulation factor {value!r} needs a sigma multiple k in "
                                 "(0, 40), e.g. '1.5sigma' or '2sigma'")
            return _normal_tail(k, exact=exact)
        try:
            value = float(key)
        except ValueError:
            raise TableError(f"Regulation factor {value!r} is not a number; use a value in "
                             "(0, 1] or a name like '1.5sigma' or '2sigma'") from None
    r = float(value)
    if not 0 < r <= 1:  # also rejects NaN
        raise TableError(f"Regulation factor must be in (0, 1], not {value!r}")
    return r


def _normal_tail(k: float, *, exact: bool) -> float:
    """``P(Z > k)``, or as the paper rounds it (see :func:`regulation_factor`)."""
    tail = 0.5 * math.erfc(k / math.sqrt(2))
    if exact:
        return tail
    phi = Decimal(repr(1 - tail)).quantize(Decimal("0.00001"), rounding=ROUND_HALF_UP)
    table_tail = Decimal(1) - phi
    if table_tail == 0:  # beyond a five-decimal table: keep the exact tail
        return tail
    digits = Decimal(1).scaleb(table_tail.adjusted() - 2)  # three significant figures
    return float(table_tail.quantize(digits, rounding=ROUND_DOWN))


def regulate(table: CompressedTable, factor: float | str) -> CompressedTable:
    """The paper's regulated table: every error probability times ``factor``.

    ``p_wrong`` and every ``wrong_prob`` are scaled; the exact product keeps the rest of
    the probability. ``meta["regulation"]`` records the product of all factors applied so
    far. (``nnmap.timing.TimingInjector`` applies its own factor at injection time: give
    it a regulated table with regulation 1, never both.)

    Parameters
    ----------
    table:
        A nominal (or any) compressed table.
    factor:
        Anything :func:`regulation_factor` accepts, e.g. ``"1.5sigma"`` or ``0.0668``.
    """
    r = regulation_factor(factor)
    meta = dict(table.meta)
    meta["regulation"] = float(meta.get("regulation", 1.0)) * r
    return replace(table, p_wrong=table.p_wrong * r, wrong_prob=table.wrong_prob * r,
                   offsets=table.offsets.copy(), wrong_output=table.wrong_output.copy(),
                   n_prev=table.n_prev.copy(), meta=meta)
