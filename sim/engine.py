"""The fast bit-parallel gate-level timing engine.

Given a combinational netlist and integer per-cell delays, the engine computes, for a batch
of transitions (previous operands settled, current operands launched at tick 0), the value
a capture register sees at any clock period -- all requested periods from one evaluation.

Representation (why it is fast)
-------------------------------
Every net's waveform is stored tick by tick, one bit per transition, ``64 * L``
transitions per *block* (``L`` 64-bit words per tick, vectorised by the compiler). A node
(cell output) is evaluated only inside its change window (see :mod:`sim.plan`): outside
it the net holds its previous or final value. The compiled kernel (:mod:`sim.kernel`)
evaluates a node's Boolean function once per tick of its window on whole words, then
applies the delay semantics. The exhaustive driver launches all ``2**(2W)`` previous
operand pairs of a current pair in consecutive blocks, and counts and records the wrong
captures in C, so nothing per transition crosses into Python.

Semantics (tick level; ``f(t)`` is the node's function of its inputs at tick ``t``, each
input pin ``i`` read at ``t - o_i``; ``R``/``F`` the rise/fall delays, >= 1 tick)
-----------------------------------------------------------------------------------
``inertial`` -- exactly a Verilog continuous assignment ``assign #(R, F) y = f;`` (Icarus
    and Verilator agree): a change of ``f`` at tick ``e`` to ``v`` schedules ``y = v`` at
    ``e + d(v)`` and cancels any pending update; an update maturing at tick ``m`` is applied
    before a change of ``f`` at ``m`` is seen (so a pulse exactly as wide as the delay
    passes). Equivalently ``y(t) = 1`` if ``f`` was 1 on all of ``t-R .. t-1``, ``0`` if
    ``f`` was 0 on all of ``t-F .. t-1``, else ``y(t-1)``.
``pathdelay`` -- Verilog module path delays (IEEE 1364-2005 section 14) as Icarus
    Verilog applies them with ``-gspecify`` and ``$sdf_annotate``: each input pin ``i``
    has its own arc delays ``(R_i, F_i)``. A change of ``f`` at tick ``e`` schedules an
    update at ``e + d``, ``d`` the smallest arc delay (of the edge ``f`` makes) over the
    pins that changed at ``e`` (the most recent input change; the shortest when several
    change together); an update at tick ``t`` sets ``y`` to ``f(t - 1)``, the function's
    value at that moment. So a pulse of ``f`` narrower than the delay is rejected, and an
    update may carry a later value early: Icarus (``vvp_fun_modpath``) sends its current
    value at each scheduled event instead of cancelling one (the IEEE reading would cancel
    it; ``tests/test_pathdelay.py`` shows the case on a one-cell netlist). ``f`` is the
    settled function of the inputs at ``e``; a cell model built from several primitives
    can also glitch for zero time inside a time step when inputs change together, which
    Icarus turns into extra scheduled events (see :mod:`sim.specify`).
``transport`` -- every change propagates, delayed. With ``R = F = d``: ``y(t) = f(t - d)``
    (Verilog ``y <= #d f``). With ``R != F`` a new transaction deletes pending ones that
    would mature at or after it (VHDL transport), which makes ``y(t)`` the OR of
    ``f(t-F) .. f(t-R)`` when ``R < F`` (a 0-pulse no wider than ``F - R`` is absorbed) and
    the AND of ``f(t-R) .. f(t-F)`` when ``R > F``. (Verilog's ``<= #`` with rise/fall
    lets updates overtake each other and can leave a net at a stale value forever; the
    simulator-ready netlist writer emits this definition instead.)

Sampling convention: the value *captured at period* ``T`` is the settled value at tick ``T``
after every update scheduled at or before ``T`` (:mod:`sim.runner`); ticks are the delay
annotation's.

Forced nets (stuck-at 0/1, on any net including inputs) and per-cell delay overrides (for
variation) are inputs of :meth:`TimingEngine.layout`, not special code paths.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .cells import CellLibrary, parse_function
from .delay import DelayAnnotation
from .kernel import LANE_WORDS, compile_kernel, generate_source
from .netlist import Netlist
from .plan import SEMANTICS, EnginePlan, Layout, PlanError, Semantics, per_pin_netlist
from .workers import run_parallel

__all__ = ["ExhaustiveResult", "PrevWeights", "TimingEngine", "default_threads"]

U64 = npt.NDArray[np.uint64]
_I32P = ctypes.POINTER(ctypes.c_int32)


class _Plan(ctypes.Structure):
    _fields_ = [
        ("rise", _I32P), ("fall", _I32P), ("po", _I32P),
        ("force", ctypes.POINTER(ctypes.c_uint8)),
        ("lo", _I32P), ("hi", _I32P), ("rlo", _I32P), ("rhi", _I32P), ("off", _I32P),
        ("ntype", _I32P), ("nout", _I32P), ("nin", _I32P),
        ("in_nets", _I32P), ("out_nets", _I32P),
        ("sem", ctypes.c_int32), ("maxin", ctypes.c_int32), ("nodes", ctypes.c_int32),
        ("nins", ctypes.c_int32), ("nouts", ctypes.c_int32),
        ("arise", _I32P), ("afall", _I32P), ("ordr", _I32P), ("ordf", _I32P),
    ]


_SEM_CODE = {"transport": 0, "inertial": 1, "pathdelay": 2}
"""The kernel's ``Plan.sem`` code of each semantics."""


def _node_arcs(plan: EnginePlan, cell_delays: Mapping[str, Mapping[str, tuple[int, int]]],
               arcs: Mapping[str, Mapping[str, Mapping[str, Any]]],
               ) -> tuple[npt.NDArray[np.int32], ...]:
    """Per node and input pin: arc rise and fall ticks, and the pins in increasing order
    of each (``[nodes, max_inputs]`` each). A pin without an arc takes the cell output's
    delay (the unit and effort models have no arcs)."""
    n, m = len(plan.nodes), plan.max_inputs
    rise = np.ones((n, m), np.int32)
    fall = np.ones((n, m), np.int32)
    for k, node in enumerate(plan.nodes):
        r0, f0 = cell_delays[node.cell][node.pin]
        own = arcs.get(node.cell, {}).get(node.pin, {})
        for i, pin in enumerate(node.in_pins):
            a = own.get(pin)
            rise[k, i], fall[k, i] = (int(a[0]), int(a[1])) if a is not None else (r0, f0)
    if n and min(rise.min(), fall.min()) < 1:
        raise PlanError("An arc delay is below 1 tick; the engine needs every delay >= 1 "
                        "tick (use a finer tick)")
    ordr = np.argsort(rise, axis=1, kind="stable").astype(np.int32)
    ordf = np.argsort(fall, axis=1, kind="stable").astype(np.int32)
    for k, node in enumerate(plan.nodes):  # unused pin slots: past the real pins
        nin = len(node.in_pins)
        ordr[k, :nin] = np.argsort(rise[k, :nin], kind="stable")
        ordf[k, :nin] = np.argsort(fall[k, :nin], kind="stable")
    return (np.ascontiguousarray(rise), np.ascontiguousarray(fall), ordr, ordf)


def default_threads() -> int:
    """Worker threads: ``FLIPCLOCK_THREADS`` or the CPUs this process may use."""
    env = os.environ.get("FLIPCLOCK_THREADS")
    if env:
        return max(1, int(env))
    return max(1, len(os.sched_getaffinity(0)))


def _ptr(a: npt.NDArray[Any], ctype: Any) -> Any:
    return a.ctypes.data_as(ctypes.POINTER(ctype))


def _library_functions(library: CellLibrary) -> tuple[list[tuple[str, Any, int]],
                                                      dict[tuple[str, str], int]]:
    """Every (cell type, output) of the library as a C function over x0, x1, ..."""
    funcs: list[tuple[str, Any, int]] = []
    ids: dict[tuple[str, str], int] = {}
    from .kernel import _rename

    for name in sorted(library.cells):
        ctype = library.cells[name]
        names = {p: f"x{i}" for i, p in enumerate(ctype.inputs)}
        for pin in ctype.outputs:
            ident = "".join(ch if ch.isalnum() else "_" for ch in f"{name}_{pin}")
            ids[name, pin] = len(funcs)
            funcs.append((ident, _rename(parse_function(ctype.functions[pin]), names),
                          len(ctype.inputs)))
    return funcs, ids


@dataclass(frozen=True)
class PrevWeights:
    """Distribution of the previous operand pair ``q = prev_a << W | prev_b``.

    ``kind``:

    * ``"uniform"`` -- every previous pair equally likely (the paper's assumption);
    * ``"joint"`` -- ``weights`` over all ``2**(2W)`` previous pairs (a histogram);
    * ``"stationary_a"`` -- operand ``a`` keeps its value (``prev_a = cur_a``, e.g. a
      weight-stationary dataflow with the weight on ``a``); ``weights`` over the
      ``2**W`` codes of ``prev_b``;
    * ``"stationary_b"`` -- the same with ``b`` held and ``weights`` over ``prev_a``.

    Weights are non-negative and need not be normalised; the table divides by
    :meth:`total`.
    """

    kind: str = "uniform"
    weights: tuple[float, ...] | None = None

    def arrays(self, width: int) -> tuple[int, npt.NDArray[np.float64]]:
        """``(kernel mode, weights array)``; checks the shape."""
        modes = {"uniform": 0, "joint": 1, "stationary_a": 2, "stationary_b": 3}
        if self.kind not in modes:
            raise PlanError(f"Unknown previous-input distribution {self.kind!r}; choose "
                            f"{', '.join(modes)}")
        if self.kind == "uniform":
            return 0, np.zeros(1, np.float64)
        want = 1 << (2 * width if self.kind == "joint" else width)
        w = np.asarray(self.weights if self.weights is not None else (), np.float64)
        if w.shape != (want,) or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise PlanError(f"A {self.kind} previous-input histogram for {width}-bit operands "
                            f"needs {want} non-negative weights with a positive sum")
        return modes[self.kind], np.ascontiguousarray(w)

    def total(self, width: int) -> float:
        """Sum of the weights of the previous pairs of one current pair."""
        if self.kind == "uniform":
            return float(1 << (2 * width))
        return float(np.sum(self.arrays(width)[1]))


@dataclass
class ExhaustiveResult:
    """Wrong captures of every transition of a multiplier, per current pair and period.

    ``pairs`` are the flat current pair indices (``code(a) << W | code(b)``);
    ``nwrong`` is ``float64 [len(pairs), len(periods)]``, the summed previous-pair weight
    (a count when uniform) of wrong captures; ``records`` are ``(pair, period index,
    output code)`` rows (``int64 [k, 3]``), one per distinct wrong output, with their
    summed weight in ``weights``; ``total`` is the weight of all previous pairs.
    """

    width: int
    periods: list[int]
    pairs: npt.NDArray[np.int64]
    nwrong: npt.NDArray[np.float64]
    records: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float64]
    total: float


class TimingEngine:
    """Bit-parallel timing simulation of one netlist.

    Parameters
    ----------
    netlist:
        The combinational gate netlist.
    delays:
        A :class:`~sim.delay.DelayAnnotation` or ``{cell: {out pin: (rise, fall)}}`` ticks.
    semantics:
        ``"inertial"``, ``"transport"`` or ``"pathdelay"`` (module docstring).
    per_pin:
        Use the annotation's per-arc (pin-to-output) delays (see
        :func:`sim.plan.per_pin_netlist`).
    inputs, outputs:
        Port order of the operands (default ``a``, ``b`` when present) and captured outputs.
    threads:
        Worker threads for large batches (default :func:`default_threads`).
    """

    def __init__(self, netlist: Netlist,
                 delays: DelayAnnotation | Mapping[str, Mapping[str, tuple[int, int]]], *,
                 semantics: Semantics = "inertial", per_pin: bool = False,
                 inputs: Sequence[str] | None = None, outputs: Sequence[str] | None = None,
                 threads: int | None = None, lane_words: int = LANE_WORDS) -> None:
        if semantics not in SEMANTICS:
            raise PlanError(f"Semantics must be one of {', '.join(SEMANTICS)}, not "
                            f"{semantics!r}")
        if per_pin and semantics == "pathdelay":
            raise PlanError("pathdelay already uses per-arc (per-pin) delays; drop --per-pin")
        if inputs is None and {"a", "b"} <= set(netlist.inputs):
            inputs = ["a", "b", *(p for p in netlist.inputs if p not in ("a", "b"))]
        self.netlist = netlist
        self.semantics: Semantics = semantics
        self.per_pin = per_pin
        self.threads = threads or default_threads()
        self.L = lane_words
        if isinstance(delays, DelayAnnotation):
            delays.check_matches(netlist)
            self.annotation: DelayAnnotation | None = delays
            cell_delays: Mapping[str, Mapping[str, tuple[int, int]]] = delays.delays
            if per_pin:
                netlist, cell_delays = per_pin_netlist(netlist, delays)
        else:
            if per_pin:
                raise PlanError("Per-pin delays need a DelayAnnotation (with arcs)")
            self.annotation, cell_delays = None, delays
        self.plan = EnginePlan(netlist, inputs, outputs)
        self.rise, self.fall, self.pin_offset = self.plan.delays_from(cell_delays)
        self.arcs = _node_arcs(self.plan, cell_delays,
                               self.annotation.arcs if self.annotation is not None else {})
        if semantics == "pathdelay":
            # windows span the fastest to the slowest arc of each node
            self.rise = np.minimum(self.arcs[0], self.arcs[1]).min(1, initial=1 << 30)
            self.fall = np.maximum(self.arcs[0], self.arcs[1]).max(1, initial=1)
            none = self.rise == 1 << 30  # a node without inputs
            self.rise[none], self.fall[none] = 1, 1
            self.rise = self.rise.astype(np.int32)
            self.fall = self.fall.astype(np.int32)
        self._layouts: dict[tuple[int, tuple[tuple[str, int], ...]], Layout] = {}
        funcs, ids = _library_functions(self.plan.netlist.library)
        self._lib = compile_kernel(generate_source(funcs, lane_words))
        self._lib.fc_run.restype = ctypes.c_int
        self._lib.fc_exhaustive.restype = ctypes.c_long
        nodes = self.plan.nodes
        self._ntype = np.array([ids[n.cell_type, n.pin] for n in nodes], np.int32)
        self._nout = np.array([n.out for n in nodes], np.int32)
        nin = np.zeros((len(nodes), self.plan.max_inputs), np.int32)
        for k, n in enumerate(nodes):
            nin[k, :len(n.ins)] = n.ins
        self._nin = nin
        self._in_nets = np.array(self.plan.in_nets, np.int32)
        self._out_nets = np.array(self.plan.out_nets, np.int32)

    # --- configuration ------------------------------------------------------------------------
    @property
    def critical_path(self) -> int:
        """Latest tick at which any output can change, the one critical-path number of
        these delays and this semantics (:func:`sim.sta.engine_critical_path`)."""
        if not hasattr(self, "_critical_path"):
            from .sta import engine_critical_path

            self._critical_path = engine_critical_path(self)
        return self._critical_path

    def layout(self, horizon: int, *, forced: Mapping[str, int] | None = None,
               overrides: tuple[npt.ArrayLike, npt.ArrayLike] | None = None) -> Layout:
        """Windows and memory for a horizon, forced nets and optional per-node delays.

        ``overrides`` is ``(rise, fall)`` arrays over :attr:`plan.nodes <EnginePlan.nodes>`
        (e.g. a delay-variation sample).
        """
        if overrides is None:  # the common case: cache by horizon and forced nets
            key = (int(horizon), tuple(sorted((forced or {}).items())))
            if key not in self._layouts:
                if len(self._layouts) > 64:
                    self._layouts.clear()
                self._layouts[key] = self.plan.layout(self.rise, self.fall, self.pin_offset,
                                                      horizon, forced)
            return self._layouts[key]
        rise, fall = self.rise, self.fall
        if overrides is not None:
            if self.semantics == "pathdelay":
                raise PlanError("Delay overrides (variation) scale cell delays, not path "
                                "delays; use --semantics inertial or transport")
            rise = np.asarray(overrides[0], np.int32)
            fall = np.asarray(overrides[1], np.int32)
            if rise.shape != self.rise.shape or fall.shape != self.fall.shape:
                raise PlanError(f"Delay overrides need {len(self.rise)} rise and fall values")
            if min(rise.min(initial=1), fall.min(initial=1)) < 1:
                raise PlanError("Delay overrides must be >= 1 tick")
        return self.plan.layout(rise, fall, self.pin_offset, horizon, forced)

    def _struct(self, lay: Layout) -> tuple[_Plan, list[Any]]:
        keep = [lay.rise, lay.fall, lay.pin_offset, lay.force, lay.lo, lay.hi, lay.rlo,
                lay.rhi, lay.off, self._ntype, self._nout, self._nin, self._in_nets,
                self._out_nets]
        i32 = ctypes.c_int32
        s = _Plan(_ptr(lay.rise, i32), _ptr(lay.fall, i32), _ptr(lay.pin_offset, i32),
                  _ptr(lay.force, ctypes.c_uint8), _ptr(lay.lo, i32), _ptr(lay.hi, i32),
                  _ptr(lay.rlo, i32), _ptr(lay.rhi, i32), _ptr(lay.off, i32),
                  _ptr(self._ntype, i32), _ptr(self._nout, i32), _ptr(self._nin, i32),
                  _ptr(self._in_nets, i32), _ptr(self._out_nets, i32),
                  _SEM_CODE[self.semantics], self.plan.max_inputs,
                  len(self.plan.nodes), len(self.plan.in_nets), len(self.plan.out_nets),
                  _ptr(self.arcs[0], i32), _ptr(self.arcs[1], i32),
                  _ptr(self.arcs[2], i32), _ptr(self.arcs[3], i32))
        keep += list(self.arcs)
        return s, keep

    def _buffers(self, lay: Layout) -> tuple[U64, U64, U64, U64]:
        L = self.L
        # the window buffers hold 2 x scratch entries (the kernel's win() needs the room)
        return (np.zeros(lay.entries * L, np.uint64), np.zeros(lay.scratch * L, np.uint64),
                np.zeros(2 * lay.scratch * L, np.uint64),
                np.zeros(2 * lay.scratch * L, np.uint64))

    @staticmethod
    def _check_periods(periods: Iterable[int]) -> list[int]:
        out = [int(p) for p in periods]
        if not out:
            raise PlanError("Give at least one clock period")
        bad = [p for p in out if p <= 0]
        if bad:
            raise PlanError(f"Clock periods must be positive numbers of ticks, not {bad[0]}")
        return out

    # --- arbitrary transitions ------------------------------------------------------------------
    def capture(self, prev: Mapping[str, npt.ArrayLike], cur: Mapping[str, npt.ArrayLike],
                periods: Sequence[int], *, forced: Mapping[str, int] | None = None,
                overrides: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
                progress: Callable[[int], None] | None = None,
                stop: threading.Event | None = None) -> dict[str, npt.NDArray[np.int64]]:
        """Output port values captured at every period for a batch of transitions.

        ``prev``/``cur`` map every input port to integer arrays (signed or unsigned; the
        low bits are used). Returns ``{output port: int64 [n, len(periods)]}`` of unsigned
        port values. Setting ``stop`` (from another thread) abandons the batch with
        :class:`~sim.workers.Stopped` within one block.
        """
        periods = self._check_periods(periods)
        lay = self.layout(max(periods), forced=forced, overrides=overrides)
        ports = self.plan.input_ports
        n = len(np.asarray(cur[ports[0]]))
        bits_prev = np.concatenate([_bits(prev[p], len(self.netlist.inputs[p]), n)
                                    for p in ports])
        bits_cur = np.concatenate([_bits(cur[p], len(self.netlist.inputs[p]), n)
                                   for p in ports])
        L = self.L
        lanes = 64 * L
        nblocks = (n + lanes - 1) // lanes
        words_prev = _pack(bits_prev, nblocks * lanes)  # [nbits, nblocks * L]
        words_cur = _pack(bits_cur, nblocks * lanes)
        nout = len(self.plan.out_nets)
        out_words = np.zeros((nblocks, len(periods), nout, L), np.uint64)
        per = np.asarray(periods, np.int32)
        struct, keep = self._struct(lay)

        def work(block_range: range, halt: threading.Event) -> None:
            a, s, t1, t2 = self._buffers(lay)
            pw = np.empty((words_prev.shape[0], L), np.uint64)
            cw = np.empty_like(pw)
            res = np.empty((len(periods), nout, L), np.uint64)
            for j in block_range:
                if halt.is_set():
                    return
                pw[:] = words_prev[:, j * L:(j + 1) * L]
                cw[:] = words_cur[:, j * L:(j + 1) * L]
                self._lib.fc_run(ctypes.byref(struct), _ptr(a, ctypes.c_uint64),
                                 _ptr(s, ctypes.c_uint64), _ptr(t1, ctypes.c_uint64),
                                 _ptr(t2, ctypes.c_uint64), _ptr(pw, ctypes.c_uint64),
                                 _ptr(cw, ctypes.c_uint64), len(periods),
                                 _ptr(per, ctypes.c_int32), _ptr(res, ctypes.c_uint64))
                out_words[j] = res
                if progress is not None:
                    progress(lanes)

        run_parallel(work, nblocks, self.threads, stop)
        del keep
        values = np.empty((len(periods), n), np.int64)
        self._lib.fc_unpack(_ptr(out_words, ctypes.c_uint64), ctypes.c_long(nblocks),
                            len(periods), nout, ctypes.c_long(n), _ptr(values, ctypes.c_int64))
        result: dict[str, npt.NDArray[np.int64]] = {}
        k = 0
        for port in self.plan.output_ports:
            w = len(self.netlist.outputs[port])
            result[port] = np.ascontiguousarray(((values >> k) & ((1 << w) - 1)).T)
            k += w
        return result

    # --- exhaustive multiplier transitions ------------------------------------------------------
    def exhaustive(self, periods: Sequence[int], pairs: npt.ArrayLike | None = None, *,
                   prev: PrevWeights | None = None,
                   forced: Mapping[str, int] | None = None,
                   overrides: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
                   golden: npt.ArrayLike | None = None,
                   progress: Callable[[int], None] | None = None,
                   chunk: int = 16, stop: threading.Event | None = None) -> ExhaustiveResult:
        """Every previous pair for each current pair of a two-operand design.

        Needs exactly two W-bit input ports (the first two of ``inputs``) and one output
        port of at most 2W bits. ``pairs`` selects current pairs by flat index (default:
        all ``2**(2W)``). ``prev`` weights the previous pairs (default uniform, see
        :class:`PrevWeights`). A capture is wrong when it differs from ``golden`` (the
        unsigned output code of every flat pair); by default that is this engine's own
        settled output (same ``forced`` nets), see :func:`settled`.
        ``progress`` is called with the number of current pairs finished. Setting ``stop``
        (from another thread) abandons the work with :class:`~sim.workers.Stopped` within
        one kernel call of ``chunk`` current pairs.
        """
        periods = self._check_periods(periods)
        w = self._multiplier_width()
        prev = prev or PrevWeights()
        mode, wq = prev.arrays(w)
        nq = 1 << (2 * w)
        gold = (self.settled(np.arange(nq, dtype=np.int64), forced=forced) if golden is None
                else np.ascontiguousarray(golden, np.int64))
        if gold.shape != (nq,):
            raise PlanError(f"golden needs one output code per pair ({nq}), not {gold.shape}")
        nbits = len(self.netlist.outputs[self.plan.output_ports[0]])
        lay = self.layout(max(periods), forced=forced, overrides=overrides)
        todo = np.arange(nq, dtype=np.int64) if pairs is None else np.asarray(pairs, np.int64)
        if todo.size and (todo.min() < 0 or todo.max() >= nq):
            raise PlanError(f"Current pair indices must lie in 0..{nq - 1}")
        runs = _runs(todo, chunk)
        nper = len(periods)
        per = np.asarray(periods, np.int32)
        nwrong = np.zeros((len(todo), nper), np.float64)
        records: list[npt.NDArray[np.int64]] = []
        weights: list[npt.NDArray[np.float64]] = []
        lock = threading.Lock()
        struct, keep = self._struct(lay)
        starts = np.concatenate([[0], np.cumsum([r1 - r0 for r0, r1 in runs])])
        L = self.L
        c_double = ctypes.c_double

        def work(run_ids: range, halt: threading.Event) -> None:
            a, s, t1, t2 = self._buffers(lay)
            cnt = np.zeros(nper * nq, np.float64)
            touched = np.zeros(nper * nq, np.uint32)
            ntouched = np.zeros(nper, np.uint32)
            out = np.zeros(nper * nbits * L, np.uint64)
            cap = 1 << 16
            for i in run_ids:
                if halt.is_set():
                    return
                r0, r1 = runs[i]
                while True:
                    nw = np.zeros((r1 - r0) * nper, np.float64)
                    rec = np.zeros(3 * cap, np.int32)
                    rw = np.zeros(cap, np.float64)
                    got = self._lib.fc_exhaustive(
                        ctypes.byref(struct), _ptr(a, ctypes.c_uint64), _ptr(s, ctypes.c_uint64),
                        _ptr(t1, ctypes.c_uint64), _ptr(t2, ctypes.c_uint64), w, nbits,
                        int(r0), int(r1), nper, _ptr(per, ctypes.c_int32), mode,
                        _ptr(wq, c_double), _ptr(gold, ctypes.c_int64),
                        _ptr(nw, c_double), _ptr(rec, ctypes.c_int32), _ptr(rw, c_double),
                        ctypes.c_long(cap), _ptr(cnt, c_double), _ptr(touched, ctypes.c_uint32),
                        _ptr(ntouched, ctypes.c_uint32), _ptr(out, ctypes.c_uint64))
                    if got >= 0:
                        break
                    cap *= 4
                with lock:
                    nwrong[starts[i]:starts[i] + (r1 - r0)] = nw.reshape(r1 - r0, nper)
                    records.append(rec[:3 * got].reshape(-1, 3).astype(np.int64))
                    weights.append(rw[:got].copy())
                if progress is not None:
                    progress(r1 - r0)

        run_parallel(work, len(runs), self.threads, stop)
        del keep
        rec_all = np.concatenate(records) if records else np.zeros((0, 3), np.int64)
        w_all = np.concatenate(weights) if weights else np.zeros(0, np.float64)
        order = np.lexsort((rec_all[:, 2], rec_all[:, 1], rec_all[:, 0]))
        return ExhaustiveResult(width=w, periods=list(periods), pairs=todo, nwrong=nwrong,
                                records=rec_all[order], weights=w_all[order],
                                total=prev.total(w))

    def settled(self, pairs: npt.ArrayLike, *,
                forced: Mapping[str, int] | None = None) -> npt.NDArray[np.int64]:
        """Settled (zero-delay) output code of flat operand pairs ``a << W | b`` of the
        first two input ports: with no input change the capture is the settled value."""
        q = np.asarray(pairs, np.int64)
        a, b = self.plan.input_ports[:2]
        w = len(self.netlist.inputs[a])
        cur = {a: q >> w, b: q & ((1 << w) - 1)}
        return self.capture(cur, cur, [1], forced=forced)[self.plan.output_ports[0]][:, 0]

    def _multiplier_width(self) -> int:
        ins, outs = self.plan.input_ports, self.plan.output_ports
        widths = [len(self.netlist.inputs[p]) for p in ins]
        if len(ins) != 2 or widths[0] != widths[1] or len(outs) != 1 \
                or len(self.netlist.outputs[outs[0]]) > 2 * widths[0]:
            raise PlanError("Exhaustive tables need two W-bit operand inputs and one output of "
                            "at most 2W bits, not inputs "
                            f"{dict(zip(ins, widths, strict=True))}")
        if widths[0] > 8:
            raise PlanError(f"Exhaustive tables cover operands up to 8 bits (2^32 transitions); "
                            f"this multiplier has {widths[0]}: use --mode sample")
        return widths[0]


def _runs(pairs: npt.NDArray[np.int64], chunk: int) -> list[tuple[int, int]]:
    """Split sorted-or-not pair indices into contiguous runs of at most ``chunk``."""
    runs: list[tuple[int, int]] = []
    i = 0
    n = len(pairs)
    while i < n:
        j = i + 1
        while j < n and j - i < chunk and pairs[j] == pairs[j - 1] + 1:
            j += 1
        runs.append((int(pairs[i]), int(pairs[i]) + (j - i)))
        i = j
    return runs


def _bits(values: npt.ArrayLike, width: int, n: int) -> npt.NDArray[np.uint8]:
    v = np.asarray(values, np.int64)
    if v.shape != (n,):
        raise PlanError(f"Every operand array needs {n} values, got shape {v.shape}")
    return ((v[None, :] >> np.arange(width)[:, None]) & 1).astype(np.uint8)


def _pack(bits: npt.NDArray[np.uint8], total: int) -> U64:
    """``[nbits, n]`` 0/1 -> ``[nbits, total // 64]`` words (lane ``j`` is bit ``j % 64``)."""
    nb, n = bits.shape
    padded = np.zeros((nb, total), np.uint8)
    padded[:, :n] = bits
    packed = np.packbits(padded.reshape(nb, -1, 64)[:, :, ::-1], axis=2)
    return packed.view(">u8").astype(np.uint64).reshape(nb, -1)


def _unpack(words: U64) -> npt.NDArray[np.uint8]:
    """Inverse of :func:`_pack` over the last axis."""
    shape = words.shape
    b = np.unpackbits(words.astype(">u8").view(np.uint8).reshape(*shape, 8), axis=-1)
    return b.reshape(*shape, 64)[..., ::-1].reshape(*shape[:-1], shape[-1] * 64)
