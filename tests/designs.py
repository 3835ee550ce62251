"""Test designs written directly in OSU018 cells, as a hardware engineer's own netlist would be.

:func:`array_multiplier` is an unsigned ``n x n`` array multiplier: ``AND2X1`` partial
products reduced column by column with the two-output adder cells ``FAX1`` and ``HAX1``
(outputs ``YC`` carry and ``YS`` sum). flipclock never built it, so it checks that every
command judges a capture against the netlist's own settled output, not a signed product.

:func:`ripple_adder` and :func:`kogge_stone_adder` are unsigned ``n``-bit adders with an
``n + 1``-bit sum (a long carry chain, and a logarithmic prefix tree); :func:`mac` is a
three-operand multiply-accumulate ``a * b + c``, the first step toward a MAC datapath.
"""

from __future__ import annotations

__all__ = ["array_multiplier", "kogge_stone_adder", "mac", "ripple_adder"]


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


class _Cells:
    """A structural netlist under construction: fresh wires, cell instances, port nets."""

    def __init__(self) -> None:
        self.wires: list[str] = []
        self.lines: list[str] = []

    def net(self) -> str:
        self.wires.append(f"n{len(self.wires)}")
        return self.wires[-1]

    def cell(self, kind: str, **pins: str) -> None:
        conns = ", ".join(f".{pin}({net})" for pin, net in pins.items())
        self.lines.append(f"  {kind} u{len(self.lines)} ({conns});")

    def module(self, name: str, inputs: dict[str, int], outputs: dict[str, int]) -> str:
        ports = [*inputs, *outputs]
        return "\n".join([
            f"module {name} ({', '.join(ports)});",
            *(f"  input [{w - 1}:0] {p};" for p, w in inputs.items()),
            *(f"  output [{w - 1}:0] {p};" for p, w in outputs.items()),
            *(f"  wire {w};" for w in self.wires),
            *self.lines,
            "endmodule",
            "",
        ])


def ripple_adder(n: int, *, name: str = "ripple", a: str = "a", b: str = "b",
                 s: str = "s") -> str:
    """Structural Verilog of an unsigned ``n``-bit ripple-carry adder in OSU018 cells.

    Bit 0 is a ``HAX1`` (no carry in), bits 1 .. n-1 a chain of ``FAX1``; the carry out of
    the top bit is ``s[n]`` (``s`` has ``n + 1`` bits).
    """
    if n < 2:
        raise ValueError(f"ripple_adder needs n >= 2, not {n!r}")
    g = _Cells()
    carry = g.net()
    g.cell("HAX1", A=f"{a}[0]", B=f"{b}[0]", YC=carry, YS=f"{s}[0]")
    for i in range(1, n):
        nxt = f"{s}[{n}]" if i == n - 1 else g.net()
        g.cell("FAX1", A=f"{a}[{i}]", B=f"{b}[{i}]", C=carry, YC=nxt, YS=f"{s}[{i}]")
        carry = nxt
    return g.module(name, {a: n, b: n}, {s: n + 1})


def kogge_stone_adder(n: int, *, name: str = "kogge_stone", a: str = "a", b: str = "b",
                      s: str = "s") -> str:
    """Structural Verilog of an unsigned ``n``-bit Kogge-Stone adder in OSU018 cells.

    Generate ``g = a & b`` (``AND2X1``) and propagate ``p = a ^ b`` (``XOR2X1``), then
    ``ceil(log2 n)`` prefix levels of distance 1, 2, 4, ...: ``G = G | P & G'`` (``AND2X1``
    into ``OR2X1``), ``P = P & P'`` (only where a later level reads it); sums
    ``s[i] = p[i] ^ G[i-1]``, ``s[n]`` the carry out.
    """
    if n < 2:
        raise ValueError(f"kogge_stone_adder needs n >= 2, not {n!r}")
    c = _Cells()
    gen, prop = [], []
    for i in range(n):
        gi = c.net()
        pi = f"{s}[0]" if i == 0 else c.net()  # p[0] is the sum bit 0 (no carry in)
        c.cell("AND2X1", A=f"{a}[{i}]", B=f"{b}[{i}]", Y=gi)
        c.cell("XOR2X1", A=f"{a}[{i}]", B=f"{b}[{i}]", Y=pi)
        gen.append(gi)
        prop.append(pi)
    big_g, big_p = list(gen), list(prop)
    d = 1
    while d < n:
        new_g, new_p = list(big_g), list(big_p)
        for i in range(d, n):
            t = c.net()
            # the last level's top carry is the carry out itself
            gi = f"{s}[{n}]" if i == n - 1 and 2 * d >= n else c.net()
            c.cell("AND2X1", A=big_p[i], B=big_g[i - d], Y=t)
            c.cell("OR2X1", A=big_g[i], B=t, Y=gi)
            new_g[i] = gi
            if i >= 2 * d and 2 * d < n:  # the next level combines i with i - 2d
                pi = c.net()
                c.cell("AND2X1", A=big_p[i], B=big_p[i - d], Y=pi)
                new_p[i] = pi
        big_g, big_p = new_g, new_p
        d *= 2
    # after the last level big_g[i] is the carry out of bits 0..i
    for i in range(1, n):
        c.cell("XOR2X1", A=prop[i], B=big_g[i - 1], Y=f"{s}[{i}]")
    return c.module(name, {a: n, b: n}, {s: n + 1})


def mac(n: int = 8, acc: int = 16, *, name: str = "mac", a: str = "a", b: str = "b",
        c: str = "c", p: str = "p") -> str:
    """Structural Verilog of an unsigned multiply-accumulate ``p = a * b + c`` in OSU018 cells.

    ``a`` and ``b`` have ``n`` bits, ``c`` and ``p`` have ``acc >= 2n`` bits; the carry out
    of the top bit is dropped (``p`` wraps modulo ``2**acc``, as an accumulator register
    would). ``AND2X1`` partial products and the bits of ``c`` share the columns, which
    ``FAX1`` and ``HAX1`` reduce column by column from bit 0 up: each column's leftover
    carries ripple into the next, so the last stage is a ripple-carry adder.
    """
    if n < 2 or acc < 2 * n:
        raise ValueError(f"mac needs n >= 2 and acc >= 2n, not n={n!r}, acc={acc!r}")
    g = _Cells()
    cols: list[list[str]] = [[] for _ in range(acc)]
    for i in range(n):
        for j in range(n):
            y = g.net()
            g.cell("AND2X1", A=f"{a}[{j}]", B=f"{b}[{i}]", Y=y)
            cols[i + j].append(y)
    for k in range(acc):
        cols[k].append(f"{c}[{k}]")
    for k in range(acc):
        col = cols[k]
        # every column holds c[k] and a partial product or a carry: never a lone bit
        while len(col) > 1:
            last = len(col) <= 3  # this adder leaves the column's sum bit
            s = f"{p}[{k}]" if last else g.net()
            # the top column's carries are beyond p: wires that drive nothing
            yc = g.net()
            if len(col) >= 3:
                x, y, z = col.pop(0), col.pop(0), col.pop(0)
                g.cell("FAX1", A=x, B=y, C=z, YC=yc, YS=s)
            else:
                x, y = col.pop(0), col.pop(0)
                g.cell("HAX1", A=x, B=y, YC=yc, YS=s)
            col.append(s)
            if k + 1 < acc:
                cols[k + 1].append(yc)
    return g.module(name, {a: n, b: n, c: acc}, {p: acc})
