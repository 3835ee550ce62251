"""Signed radix-4 Booth multipliers built from explicit adder cells.

The multiplier ``b`` is recoded into ``width / 2`` Booth digits ``d_i`` in {-2, -1, 0, +1, +2}
from the overlapping bit triples ``b[2i+1], b[2i], b[2i-1]`` (``b[-1] = 0``); each selects a
partial product ``d_i * a`` of the multiplicand ``a``, weighted ``4**i``:

* ``one_i = b[2i] ^ b[2i-1]`` selects ``a``, ``two_i`` selects ``2a``, ``neg_i = b[2i+1]``
  complements the row. The row is ``width + 1`` bits ``pp_i[j] = ((one & a[j]) | (two & a[j-1]))
  ^ neg`` (with ``a`` sign-extended by one bit), and the missing ``+1`` of the two's complement
  negation is the *negation correction bit* ``neg_i``, placed in the tree at column ``2i``.
* Sign extension is avoided with the usual inverted-sign-bit scheme: a row's sign bit ``s`` is
  worth ``-s * 2**k = (~s) * 2**k - 2**k``; the ``-2**k`` of all rows add up to a constant that
  is precomputed and folded into the rows, giving ``~s s s`` at the top of row 0 and ``1 ~s`` at
  the top of every other row (the constant ``1`` bits enter the tree like any other bit).

The dot diagram is reduced to two bits per column by an ``array``, ``wallace`` or ``dadda`` tree
of explicit full and half adders and summed by a ``ripple`` or ``kogge_stone`` final adder (see
:mod:`hw._reduce`). Only ``&``, ``|``, ``^`` and ``~`` appear in the datapath, never ``+`` or ``*``,
so the adder structure survives synthesis.

Encoder and partial-product signals are named ``enc<i>_neg``, ``enc<i>_one``, ``enc<i>_two``,
``pp<i>_<j>`` and ``pp<i>_ns`` (the inverted sign bit); ``RegisteredMultiplier`` adds the
operand registers ``a_q`` and ``b_q``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._cells import Bit, Netlist
from ._reduce import CPAS, TREES, final_adder, reduce_tree
from .errors import HWError, HWTypeError

__all__ = ["CPAS", "TREES", "BoothMultiplier", "RegisteredMultiplier"]

_MIN_WIDTH, _MAX_WIDTH = 4, 16


def _check_config(width: object, tree: object, cpa: object) -> None:
    if isinstance(width, bool) or not isinstance(width, int):
        raise HWTypeError(f"Multiplier width must be an integer, not {width!r}")
    if width % 2 or not _MIN_WIDTH <= width <= _MAX_WIDTH:
        raise HWError(
            f"Multiplier width must be an even integer between {_MIN_WIDTH} and {_MAX_WIDTH}, "
            f"not {width!r}"
        )
    if not isinstance(tree, str) or tree not in TREES:
        choices = ", ".join(map(repr, TREES))
        raise HWError(f"Reduction tree must be one of {choices}, not {tree!r}")
    if not isinstance(cpa, str) or cpa not in CPAS:
        choices = ", ".join(map(repr, CPAS))
        raise HWError(f"Final adder must be one of {choices}, not {cpa!r}")


def _booth_rows(
    net: Netlist, a: Value, b: Value, width: int
) -> tuple[list[dict[int, Value]], dict[int, Value]]:
    """Return the partial-product rows and the negation correction bits, as column -> bit maps."""
    rows: list[dict[int, Value]] = []
    negs: dict[int, Value] = {}
    for i in range(width // 2):
        hi, mid = b[2 * i + 1], b[2 * i]
        neg = net.wire(f"enc{i}_neg", hi)
        if i == 0:
            one = net.wire(f"enc{i}_one", mid)
            two = net.wire(f"enc{i}_two", hi & ~mid)
        else:
            lo = b[2 * i - 1]
            one = net.wire(f"enc{i}_one", mid ^ lo)
            two = net.wire(f"enc{i}_two", (hi & ~mid & ~lo) | (~hi & mid & lo))
        pp = []
        for j in range(width + 1):
            sel = one & a[min(j, width - 1)]
            if j:
                sel = sel | (two & a[j - 1])
            pp.append(net.wire(f"pp{i}_{j}", sel ^ neg))
        row = {2 * i + j: pp[j] for j in range(width)}
        sign, top = pp[width], 2 * i + width
        if i == 0:
            row[top], row[top + 1] = sign, sign
            row[top + 2] = net.wire("pp0_ns", ~sign)
        else:
            row[top] = net.wire(f"pp{i}_ns", ~sign)
            row[top + 1] = Const(1, 1)
        rows.append(row)
        negs[2 * i] = neg
    return rows, negs


class _BoothDatapath:
    """The Booth netlist for operands ``a`` and ``b``, built once when the design is created."""

    def __init__(self, a: Value, b: Value, width: int, tree: str, cpa: str) -> None:
        self.net = Netlist()
        rows, negs = _booth_rows(self.net, a, b, width)
        # The correction bits seed the array's carry vector: one per even column, no overlap.
        cols = reduce_tree(self.net, tree, [rows[0], negs, *rows[1:]], 2 * width)
        bits: list[Bit] = final_adder(self.net, cpa, cols)
        self.product = Cat(*(Const(0, 1) if bit is None else bit for bit in bits))


class _BoothComponent(wiring.Component):
    """Validation, ports and introspection shared by the Booth designs."""

    _datapath: _BoothDatapath  # built by the subclass from the operands it multiplies

    def __init__(self, *, width: int, tree: str, cpa: str) -> None:
        _check_config(width, tree, cpa)
        self._width, self._tree, self._cpa = width, tree, cpa
        super().__init__(
            {"a": In(signed(width)), "b": In(signed(width)), "p": Out(signed(2 * width))}
        )

    def _build(self, a: Value, b: Value) -> _BoothDatapath:
        return _BoothDatapath(a, b, self._width, self._tree, self._cpa)

    @property
    def width(self) -> int:
        """Operand width in bits."""
        return self._width

    @property
    def tree(self) -> str:
        """Reduction tree name."""
        return self._tree

    @property
    def cpa(self) -> str:
        """Final adder name."""
        return self._cpa

    @property
    def adder_counts(self) -> dict[str, int]:
        """Full and half adder instances in the whole datapath (tree and ripple adder).

        Returns a new ``{"full": n, "half": m}`` dictionary. Kogge-Stone prefix cells are not
        adders and are counted in :attr:`cell_counts` only.
        """
        c = self._datapath.net.counts
        return {
            "full": c["tree_full"] + c["cpa_full"],
            "half": c["tree_half"] + c["cpa_half"],
        }

    @property
    def cell_counts(self) -> dict[str, int]:
        """Every cell kind, split by where it sits.

        Keys: ``tree_full``, ``tree_half`` (reduction tree), ``cpa_full``, ``cpa_half`` (ripple
        adder), ``prefix_pg``, ``prefix_black``, ``prefix_grey`` (Kogge-Stone adder); all present,
        zero when unused.
        """
        keys = ["tree_full", "tree_half", "cpa_full", "cpa_half"]
        keys += ["prefix_pg", "prefix_black", "prefix_grey"]
        return {key: self._datapath.net.counts[key] for key in keys}


class BoothMultiplier(_BoothComponent):
    """Combinational signed radix-4 Booth multiplier, ``p = a * b``.

    Parameters
    ----------
    width : int
        Operand width in bits; even, from 4 to 16.
    tree : str
        Partial-product reduction tree, one of ``"array"``, ``"wallace"``, ``"dadda"``.
    cpa : str
        Final carry-propagate adder, one of ``"ripple"``, ``"kogge_stone"``.

    Members
    -------
    a : In(signed(width))
        Multiplicand (selected, doubled and negated by the Booth digits).
    b : In(signed(width))
        Multiplier (Booth-recoded into ``width / 2`` radix-4 digits).
    p : Out(signed(2 * width))
        Exact two's-complement product.

    Raises
    ------
    TypeError
        If ``width`` is not an integer.
    ValueError
        If ``width`` is odd or out of range, or ``tree`` or ``cpa`` is unknown.
    """

    def __init__(self, *, width: int = 8, tree: str = "dadda", cpa: str = "ripple") -> None:
        super().__init__(width=width, tree=tree, cpa=cpa)
        # Built here rather than in elaborate() so the cell counts exist with the component.
        self._datapath = self._build(self.a, self.b)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.d.comb += self._datapath.net.stmts
        m.d.comb += self.p.eq(self._datapath.product)
        return m


class RegisteredMultiplier(_BoothComponent):
    """A Booth multiplier between operand and product registers, for timing studies.

    At a ``sync`` clock edge the operand registers ``a_q`` and ``b_q`` capture ``a`` and ``b``
    (launch); the Booth datapath computes combinationally; at the next edge the product
    register ``p`` captures its output. So ``p`` equals ``a * b`` two edges after ``a`` and ``b``
    are presented. All registers reset to 0.

    The datapath is the same netlist as :class:`BoothMultiplier`'s, built inline rather than as
    a submodule so that the generated RTL is one flat module with the cell names intact.

    Parameters
    ----------
    width, tree, cpa
        As for :class:`BoothMultiplier`.

    Members
    -------
    a : In(signed(width))
        Multiplicand, sampled into the ``a_q`` register.
    b : In(signed(width))
        Multiplier, sampled into the ``b_q`` register.
    p : Out(signed(2 * width))
        Product register.

    Raises
    ------
    TypeError, ValueError
        As for :class:`BoothMultiplier`.
    """

    def __init__(self, *, width: int = 8, tree: str = "dadda", cpa: str = "ripple") -> None:
        super().__init__(width=width, tree=tree, cpa=cpa)
        self._a_q = Signal(signed(width), name="a_q")
        self._b_q = Signal(signed(width), name="b_q")
        self._datapath = self._build(self._a_q, self._b_q)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.d.sync += [self._a_q.eq(self.a), self._b_q.eq(self.b)]
        m.d.comb += self._datapath.net.stmts
        m.d.sync += self.p.eq(self._datapath.product)
        return m
