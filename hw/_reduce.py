"""Partial-product reduction trees and final carry-propagate adders, built from explicit cells.

A *column list* ``cols[w]`` holds the 1-bit values of weight ``2**w``; its length is the product
width. Carries out of the top column are never built: the sum is taken modulo ``2**len(cols)``,
which is exact for a two's-complement product of that width.

Reduction trees turn any column list into one with at most two bits per column:

``array``
    Row-by-row carry-save accumulation: a sum vector and a carry vector absorb one row per stage,
    so the depth grows linearly with the number of rows.
``wallace``
    Greedy: in every stage each column is cut into groups of three (full adders) and a leftover
    pair goes to a half adder.
``dadda``
    Lazy: stage targets follow the Dadda heights 2, 3, 4, 6, 9, 13, ...; each stage only reduces a
    column as far as its target, so it uses the fewest half adders.

Final adders turn two bits per column into one:

``ripple``
    A carry chain of full and half adders.
``kogge_stone``
    Generate/propagate pairs, a Kogge-Stone prefix network of black cells (group generate and
    propagate) and grey cells (group generate only, for groups that reach the least significant
    column), then sum XORs.

Cell signal names: ``fa_c<col>_r<stage>_<k>_s`` / ``_c`` for the ``k``-th full adder of column
``col`` in reduction stage ``stage`` (``ha_`` for half adders), ``cpa_fa_c<col>_s`` for the ripple
adder, ``ks_g_c<col>``/``ks_p_c<col>`` (bit generate/propagate), ``ks_g_l<level>_c<col>`` /
``ks_p_l<level>_c<col>`` (prefix cells) and ``ks_s_c<col>`` (sums) for the Kogge-Stone adder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amaranth.hdl import Value

from ._cells import Bit, Netlist

__all__ = ["CPAS", "TREES", "final_adder", "reduce_tree"]

TREES = ("array", "wallace", "dadda")
"""The reduction trees :func:`reduce_tree` can build."""

CPAS = ("ripple", "kogge_stone")
"""The final carry-propagate adders :func:`final_adder` can build."""

Columns = list[list[Value]]


def _empty(ncols: int) -> Columns:
    return [[] for _ in range(ncols)]


def _place(cols: Columns, col: int, bit: Bit) -> None:
    """Append ``bit`` (if any) to column ``col``."""
    if bit is not None:
        cols[col].append(bit)


def _reduce_array(net: Netlist, rows: Sequence[dict[int, Value]], ncols: int) -> Columns:
    """Carry-save accumulate ``rows``; the first two rows seed the sum and carry vectors.

    Every row holds at most one bit per column, and so do the sum and carry vectors. A column
    with three bits needs a full adder; one with two bits needs a half adder only when a carry
    from the column below will land in its carry slot, otherwise both bits move on unchanged.
    """
    sums, carries = dict(rows[0]), dict(rows[1]) if len(rows) > 1 else {}
    for stage, row in enumerate(rows[2:], start=1):
        new_sums: dict[int, Value] = {}
        new_carries: dict[int, Value] = {}
        for col in range(ncols):
            bits = [v for v in (sums.get(col), carries.get(col), row.get(col)) if v is not None]
            if len(bits) == 3 or (len(bits) == 2 and col in new_carries):
                name = f"{{kind}}_c{col}_r{stage}_0"
                s, c = net.add_bits("tree", name, bits, carry=col + 1 < ncols)
                assert s is not None
                new_sums[col] = s
                if c is not None:
                    new_carries[col + 1] = c
            else:
                if bits:
                    new_sums[col] = bits[0]
                if len(bits) == 2:
                    new_carries[col] = bits[1]
        sums, carries = new_sums, new_carries
    cols = _empty(ncols)
    for vector in (sums, carries):
        for col, bit in vector.items():
            _place(cols, col, bit)
    return cols


def _reduce_wallace(net: Netlist, cols: Columns) -> Columns:
    """Greedy Wallace reduction until every column holds at most two bits."""
    stage = 0
    while max(map(len, cols)) > 2:
        stage += 1
        new = _empty(len(cols))
        for col, bits in enumerate(cols):
            k = i = 0
            while len(bits) - i >= 2:
                group = bits[i : i + 3]
                name = f"{{kind}}_c{col}_r{stage}_{k}"
                s, c = net.add_bits("tree", name, group, carry=col + 1 < len(cols))
                _place(new, col, s)
                _place(new, col + 1, c)
                i += len(group)
                k += 1
            new[col].extend(bits[i:])
        cols = new
    return cols


def dadda_heights(max_height: int) -> list[int]:
    """Return the Dadda stage targets below ``max_height``, largest first (..., 6, 4, 3, 2)."""
    heights = [2]
    while heights[-1] * 3 // 2 < max_height:
        heights.append(heights[-1] * 3 // 2)
    return [h for h in reversed(heights) if h < max_height]


def _reduce_dadda(net: Netlist, cols: Columns) -> Columns:
    """Dadda reduction: each stage brings every column down to exactly its target height."""
    for stage, target in enumerate(dadda_heights(max(map(len, cols))), start=1):
        new = _empty(len(cols))
        for col, bits in enumerate(cols):
            # new[col] already holds the carries this stage sends up from the column below.
            height = len(bits) + len(new[col])
            k = i = 0
            while height > target:
                take = 3 if height - target >= 2 else 2
                assert i + take <= len(bits), "Dadda invariant violated"
                name = f"{{kind}}_c{col}_r{stage}_{k}"
                group = bits[i : i + take]
                s, c = net.add_bits("tree", name, group, carry=col + 1 < len(cols))
                _place(new, col, s)
                _place(new, col + 1, c)
                height -= take - 1
                i += take
                k += 1
            new[col].extend(bits[i:])
        cols = new
    return cols


def reduce_tree(net: Netlist, tree: str, rows: Sequence[dict[int, Value]], ncols: int) -> Columns:
    """Reduce ``rows`` (column -> bit maps, at most one bit per column) to two bits per column."""
    if tree == "array":
        return _reduce_array(net, rows, ncols)
    cols = _empty(ncols)
    for row in rows:
        for col, bit in sorted(row.items()):
            _place(cols, col, bit)
    if tree == "wallace":
        return _reduce_wallace(net, cols)
    if tree == "dadda":
        return _reduce_dadda(net, cols)
    raise AssertionError(f"unknown tree {tree!r}")


def _ripple(net: Netlist, cols: Columns) -> list[Bit]:
    out: list[Bit] = []
    carry: Bit = None
    for col, bits in enumerate(cols):
        inputs = [*bits, *([carry] if carry is not None else [])]
        name = f"cpa_{{kind}}_c{col}"
        s, carry = net.add_bits("cpa", name, inputs, carry=col + 1 < len(cols))
        out.append(s)
    return out


def _and(net: Netlist, name: str, x: Bit, y: Bit) -> Bit:
    return None if x is None or y is None else net.wire(name, x & y)


def _kogge_stone(net: Netlist, cols: Columns) -> list[Bit]:
    # Below the first two-bit column nothing can carry, so those sums are the bits themselves.
    lo = next((col for col, bits in enumerate(cols) if len(bits) == 2), len(cols))
    out: list[Bit] = [bits[0] if bits else None for bits in cols[:lo]]
    gen: list[Bit] = []
    prop: list[Bit] = []
    for col, bits in enumerate(cols[lo:], start=lo):
        if len(bits) == 2:
            net.counts["prefix_pg"] += 1
            gen.append(net.wire(f"ks_g_c{col}", bits[0] & bits[1]))
            prop.append(net.wire(f"ks_p_c{col}", bits[0] ^ bits[1]))
        else:
            gen.append(None)
            prop.append(bits[0] if bits else None)
    # After the level with distance d, position k holds the group (G, P) of bits
    # max(0, k - 2d + 1) .. k. Only positions up to n - 2 matter: the top carry is dropped.
    n = len(gen)
    group_g, group_p = list(gen), list(prop)
    level, dist = 0, 1
    while dist < n - 1:
        level += 1
        new_g, new_p = list(group_g), list(group_p)
        for k in range(dist, n - 1):
            col, j = lo + k, k - dist
            gk, pk, gj, pj = group_g[k], group_p[k], group_g[j], group_p[j]
            grey = k - 2 * dist + 1 <= 0
            made = False
            if pk is not None and gj is not None:
                term: Value = pk & gj if gk is None else gk | (pk & gj)
                new_g[k] = net.wire(f"ks_g_l{level}_c{col}", term)
                made = True
            new_p[k] = None if grey else _and(net, f"ks_p_l{level}_c{col}", pk, pj)
            if new_p[k] is not None:
                net.counts["prefix_black"] += 1
            elif made:
                net.counts["prefix_grey"] += 1
        group_g, group_p = new_g, new_p
        dist *= 2
    for k in range(n):
        carry = group_g[k - 1] if k else None
        if prop[k] is not None and carry is not None:
            out.append(net.wire(f"ks_s_c{lo + k}", prop[k] ^ carry))
        else:
            out.append(prop[k] if carry is None else carry)
    return out


_FINAL_ADDERS: dict[str, Callable[[Netlist, Columns], list[Bit]]] = {
    "ripple": _ripple,
    "kogge_stone": _kogge_stone,
}


def final_adder(net: Netlist, cpa: str, cols: Columns) -> list[Bit]:
    """Add the (at most) two bits per column of ``cols``; return one bit per column."""
    assert max(map(len, cols), default=0) <= 2
    return _FINAL_ADDERS[cpa](net, cols)
