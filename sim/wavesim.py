"""A readable reference timing simulator: bit-parallel waveforms in numpy.

Each net's value over discrete ticks is an array ``w[i, k]`` of 64-bit words: index ``i``
is tick ``t = i - 1`` (index 0 holds the settled value of the *previous* operands, before
the launch at ``t = 0``), and bit ``j`` of word ``k`` belongs to transition ``64 k + j``.

It implements the engine's semantics (``inertial``, ``transport`` and ``pathdelay``,
rise/fall delays, forced nets; definitions in :mod:`sim.engine`) in the most direct way:
a loop over ticks with explicit windows. It is slow, and it is the yardstick the compiled
engine is tested against.

Sampling convention (shared with the cocotb testbenches): the value *captured at period
T* is the settled output at tick ``T``, i.e. ``w[T + 1]``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from .cells import CellType
from .netlist import CONST0, CONST1, Netlist

__all__ = ["apply_pathdelay", "apply_semantics", "find_latest_transitions", "pack_bits",
           "simulate_transitions", "settle_times"]

Words = npt.NDArray[np.uint64]
ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def pack_bits(values: npt.NDArray[np.int64], nbits: int) -> list[Words]:
    """Bit ``b`` of every value, packed 64 transitions per word: one array per bit."""
    n = len(values)
    pad = (-n) % 64
    v = np.concatenate([values.astype(np.int64), np.zeros(pad, np.int64)])
    out: list[Words] = []
    for b in range(nbits):
        bits = ((v >> b) & 1).astype(np.uint8).reshape(-1, 64)
        words = np.packbits(bits[:, ::-1], axis=1).view(">u8").astype(np.uint64).ravel()
        out.append(words)
    return out


def _unpack(words: Words, n: int) -> npt.NDArray[np.uint8]:
    b = np.unpackbits(words.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
    return b.reshape(-1, 64)[:, ::-1].ravel()[:n]


def _eval_cell(ctype: CellType, pin: str, ins: Mapping[str, Words]) -> Words:
    tt = ctype.truth_table(pin)
    n = len(ctype.inputs)
    shape = next(iter(ins.values())).shape if ins else (1,)
    acc = np.zeros(shape, np.uint64)
    for k in range(1 << n):
        if not (tt >> k) & 1:
            continue
        term = np.full(shape, ALL, np.uint64)
        for i, p in enumerate(ctype.inputs):
            term &= ins[p] if (k >> i) & 1 else ~ins[p]
        acc |= term
    return acc


def _shift(w: Words, d: int) -> Words:
    """``out[i] = w[max(i - d, 0)]``: the waveform delayed by ``d`` ticks."""
    out = np.empty_like(w)
    d = min(d, len(w))
    out[:d] = w[0]
    out[d:] = w[: len(w) - d]
    return out


def _window(f: Words, first: int, last: int, op: str) -> Words:
    """``out[i] = op(f[i - last], ..., f[i - first])`` (indices clamped at 0)."""
    acc = _shift(f, first)
    for k in range(first + 1, last + 1):
        acc = (acc | _shift(f, k)) if op == "or" else (acc & _shift(f, k))
    return acc


def apply_semantics(f: Words, rise: int, fall: int, semantics: str) -> Words:
    """Output waveform of a node whose function waveform is ``f`` (see :mod:`sim.engine`)."""
    if semantics == "transport":
        if rise <= fall:
            return _window(f, rise, fall, "or")
        return _window(f, fall, rise, "and")
    if semantics != "inertial":
        raise ValueError(f"Semantics must be inertial or transport here, not {semantics!r}")
    all1 = _window(f, 1, rise, "and")
    any1 = _window(f, 1, fall, "or")
    y = np.empty_like(f)
    y[0] = f[0]
    for i in range(1, len(f)):
        y[i] = all1[i] | (y[i - 1] & any1[i])
    return y


def apply_pathdelay(f: Words, ins: list[Words], arcs: list[tuple[int, int]]) -> Words:
    """Output waveform of a node under ``pathdelay`` semantics (see :mod:`sim.engine`).

    ``f`` is the node's function waveform, ``ins`` its input waveforms and ``arcs`` the
    ``(rise, fall)`` delay of the path from each input. A change of ``f`` at tick ``e``
    schedules an update at ``e + d``, ``d`` the smallest delay (for that edge) over the
    inputs that changed at ``e``; an update at tick ``t`` sets the output to ``f(t - 1)``,
    whatever ``f`` did in between.
    """
    h = len(f)
    fire = np.zeros_like(f)
    zero = np.zeros_like(f[0])
    for i in range(1, h):  # waveform index i is tick i - 1
        rise = f[i] & ~f[i - 1]
        fall = f[i - 1] & ~f[i]
        changed = [x[i] ^ x[i - 1] for x in ins]
        for e, edge in enumerate((rise, fall)):
            if not edge.any():
                continue
            taken = zero.copy()
            for k in sorted(range(len(ins)), key=lambda k: arcs[k][e]):
                sel = changed[k] & edge & ~taken
                taken |= changed[k]
                if i + arcs[k][e] < h:
                    fire[i + arcs[k][e]] |= sel
    y = np.empty_like(f)
    y[0] = f[0]
    for i in range(1, h):
        y[i] = (fire[i] & f[i - 1]) | (~fire[i] & y[i - 1])
    return y


def simulate_transitions(
    netlist: Netlist,
    delays: Mapping[str, Mapping[str, tuple[int, int]]],
    prev: Mapping[str, npt.NDArray[np.int64]],
    cur: Mapping[str, npt.NDArray[np.int64]],
    horizon: int,
    *,
    semantics: str = "transport",
    forced: Mapping[str, int] | None = None,
    arcs: Mapping[str, Mapping[str, Mapping[str, tuple[int, int]]]] | None = None,
) -> dict[str, npt.NDArray[np.int64]]:
    """Output port values at every tick ``-1 .. horizon`` for a batch of transitions.

    Returns ``{port: array[horizon + 2, n]}`` of unsigned port values (index ``T + 1`` is
    the value captured at period ``T``). ``forced`` maps nets to a stuck value. Under
    ``pathdelay``, ``arcs`` gives ``{cell: {output: {input: (rise, fall)}}}`` (an input
    without an arc takes the cell output's ``delays``).
    """
    n = len(next(iter(cur.values())))
    h = horizon + 2
    wave: dict[str, Words] = {}
    nwords = (n + 63) // 64
    wave[CONST0] = np.zeros((h, nwords), np.uint64)
    wave[CONST1] = np.full((h, nwords), ALL, np.uint64)
    forced = dict(forced or {})

    def stuck(net: str) -> Words | None:
        if net not in forced:
            return None
        return np.full((h, nwords), ALL if forced[net] else np.uint64(0), np.uint64)

    for port, bits in netlist.inputs.items():
        p_bits = pack_bits(np.asarray(prev[port]), len(bits))
        c_bits = pack_bits(np.asarray(cur[port]), len(bits))
        for net, pw, cw in zip(bits, p_bits, c_bits, strict=True):
            w = np.empty((h, nwords), np.uint64)
            w[0] = pw
            w[1:] = cw
            s = stuck(net)
            wave[net] = w if s is None else s
    for idx in netlist.order:
        cell = netlist.cells[idx]
        ctype = netlist.library[cell.type]
        for pin in ctype.outputs:
            if pin not in cell.pins:
                continue
            s = stuck(cell.pins[pin])
            if s is not None:
                wave[cell.pins[pin]] = s
                continue
            ins = {p: wave[cell.pins[p]] for p in ctype.inputs}
            f = _eval_cell(ctype, pin, ins)
            rise, fall = delays[cell.name][pin]
            if semantics == "pathdelay":
                own = (arcs or {}).get(cell.name, {}).get(pin, {})
                pins = list(ctype.inputs)
                wave[cell.pins[pin]] = apply_pathdelay(
                    f, [ins[p] for p in pins],
                    [(int(own[p][0]), int(own[p][1])) if p in own else (int(rise), int(fall))
                     for p in pins])
            else:
                wave[cell.pins[pin]] = apply_semantics(f, int(rise), int(fall), semantics)
    result: dict[str, npt.NDArray[np.int64]] = {}
    for port, bits in netlist.outputs.items():
        val = np.zeros((h, n), np.int64)
        for b, net in enumerate(bits):
            w = wave[net]
            for i in range(h):
                val[i] |= _unpack(w[i], n).astype(np.int64) << b
        result[port] = val
    return result


def settle_times(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Tick of the last change of each column of ``values`` (from
    :func:`simulate_transitions`); ``-1`` if the output never changes."""
    final = values[-1]
    differs = values != final[None, :]
    # last index i with values[i] != final; the change happens at i + 1, i.e. tick t = i
    h = values.shape[0]
    last = h - 1 - np.argmax(differs[::-1], axis=0)
    return np.where(differs.any(axis=0), last, -1)


def find_latest_transitions(
    netlist: Netlist,
    delays: Mapping[str, Mapping[str, tuple[int, int]]],
    *,
    horizon: int,
    seed: int = 0,
    batches: int = 16,
    batch_size: int = 65536,
    keep: int = 8,
    port_a: str = "a",
    port_b: str = "b",
    port_out: str = "p",
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Search random transitions for those whose output settles last.

    Returns ``(transitions, settle)``: an array ``[k, 4]`` of ``(prev_a, prev_b, cur_a,
    cur_b)`` (unsigned port values) sorted by decreasing settle tick, and their settle
    ticks.  Stops early once a batch reaches ``horizon`` (nothing can settle later).
    """
    rng = np.random.default_rng(seed)
    wa, wb = len(netlist.inputs[port_a]), len(netlist.inputs[port_b])
    found: list[npt.NDArray[np.int64]] = []
    ticks: list[npt.NDArray[np.int64]] = []
    for _ in range(batches):
        t = np.stack([rng.integers(0, 1 << wa, batch_size), rng.integers(0, 1 << wb, batch_size),
                      rng.integers(0, 1 << wa, batch_size), rng.integers(0, 1 << wb, batch_size)],
                     axis=1)
        out = simulate_transitions(netlist, delays, {port_a: t[:, 0], port_b: t[:, 1]},
                                   {port_a: t[:, 2], port_b: t[:, 3]}, horizon)[port_out]
        st = settle_times(out)
        top = np.argsort(-st, kind="stable")[:keep]
        found.append(t[top])
        ticks.append(st[top])
        if st.max() >= horizon:
            break
    all_t, all_s = np.concatenate(found), np.concatenate(ticks)
    order = np.argsort(-all_s, kind="stable")[:keep]
    return all_t[order], all_s[order]
