"""Test designs written directly in OSU018 cells, as a hardware engineer's own netlist would be.

:func:`array_multiplier` is an unsigned ``n x n`` array multiplier: ``AND2X1`` partial
products reduced column by column with the two-output adder cells ``FAX1`` and ``HAX1``
(outputs ``YC`` carry and ``YS`` sum). flipclock never built it, so it checks that every
command judges a capture against the netlist's own settled output, not a signed product.
"""

from __future__ import annotations

__all__ = ["array_multiplier"]


def array_multiplier(n: int, *, name: str = "umul", a: str = "a", b: str = "b",
                     p: str = "p") -> str:
    """Structural Verilog of an unsigned ``n x n`` multiplier in OSU018 cells."""
    if n < 2:
        raise ValueError(f"array_multiplier needs n >= 2, not {n!r}")
    cells: list[str] = []
    nets: list[str] = []
    cols: list[list[str]] = [[] for _ in range(2 * n)]

    def net() -> str:
        nets.append(f"n{len(nets)}")
        return nets[-1]

    for i in range(n):  # partial products a[j] & b[i] in column i + j
        for j in range(n):
            y = net()
            cells.append(f"AND2X1 pp_{i}_{j} (.A({a}[{j}]), .B({b}[{i}]), .Y({y}));")
            cols[i + j].append(y)
    for k in range(2 * n):
        col = cols[k]
        while len(col) > 1:
            s, c = net(), net()
            if len(col) >= 3:
                x, y, z = col.pop(0), col.pop(0), col.pop(0)
                cells.append(f"FAX1 fa_{len(cells)} (.A({x}), .B({y}), .C({z}), .YC({c}), "
                             f".YS({s}));")
            else:
                x, y = col.pop(0), col.pop(0)
                cells.append(f"HAX1 ha_{len(cells)} (.A({x}), .B({y}), .YC({c}), .YS({s}));")
            col.append(s)
            # the product fits 2n bits: a carry out of the top column is always 0 and
            # stays an unused wire
            if k + 1 < 2 * n:
                cols[k + 1].append(c)
    rename = {cols[k][0]: f"{p}[{k}]" for k in range(2 * n)}
    body = []
    for line in cells:
        for old, new in rename.items():
            line = line.replace(f"({old})", f"({new})")
        body.append("  " + line)
    wires = [x for x in nets if x not in rename]
    return "\n".join([
        f"module {name} ({a}, {b}, {p});",
        f"  input [{n - 1}:0] {a};",
        f"  input [{n - 1}:0] {b};",
        f"  output [{2 * n - 1}:0] {p};",
        *(f"  wire {w};" for w in wires),
        *body,
        "endmodule",
        "",
    ])
