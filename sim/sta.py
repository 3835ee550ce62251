"""Static timing analysis of an annotated combinational netlist, and an OpenSTA cross-check.

Arrival times propagate in topological order, per net and per edge (rise, fall).  All
primary inputs switch (either edge) at t = 0; constant nets never switch.  Through a cell,
an output edge is caused by input edges according to the unateness of the pin
(:meth:`CellType.sense <sim.cells.CellType.sense>`): positive unate, the same edge;
negative unate, the opposite edge; non-unate, either.  The latest arrival over all primary
output bits is the critical path.

Two delay views of a :class:`~sim.delay.DelayAnnotation`:

``exact=False``
    The integer per-cell ``(rise, fall)`` tick delays, i.e. exactly what the HDL
    simulators are given.  The result is a bound for them: if all inputs are launched at
    t = 0 from a settled state, no event on any net (output bits included) happens after
    its arrival time.  By induction in topological order: an event on a cell output with
    new value 1 (0) is scheduled at the time of some input event plus the cell's rise
    (fall) delay, and that input event is of an edge that can cause it, so it is no
    later than that input's arrival for that edge; inertial cancellation only removes
    events.
``exact=True``
    The unrounded per-arc delays (seconds for the Liberty model), for comparison with a
    sign-off timer such as OpenSTA (:func:`opensta_critical_path`).  For a non-unate arc
    the annotation keeps the worse delay of the two input edges, so the exact figure can
    only exceed OpenSTA's, by the spread between them.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .delay import DelayAnnotation
from .errors import SimError
from .netlist import CONST0, CONST1, Netlist
from .nldm import EDGES, Edge, cause_edges

__all__ = [
    "OpenSTAError",
    "PathStep",
    "TimingReport",
    "arrival_times",
    "critical_path",
    "engine_critical_path",
    "opensta_critical_path",
    "opensta_output_arrivals",
    "opensta_write_sdf",
]


class OpenSTAError(SimError, RuntimeError):
    """OpenSTA is missing or failed; the message says why."""


@dataclass(frozen=True)
class PathStep:
    """One net on a timing path, with the arc that brought the edge there.

    ``cell``, ``cell_type`` and ``pin`` are ``None`` for the starting input bit.
    ``arrival`` is in ticks (``exact=False``) or in the annotation's unit.
    """

    net: str
    cell: str | None
    cell_type: str | None
    pin: str | None
    edge: Edge
    arrival: float


@dataclass(frozen=True)
class TimingReport:
    """The critical path of a netlist under a delay annotation.

    Parameters
    ----------
    ticks:
        Path delay in ticks (with ``exact=True``: the exact delay rounded to the nearest
        tick, halves up).
    delay:
        Path delay in ``unit`` (``ticks * tick`` with ``exact=False``).
    seconds:
        Path delay in seconds, or ``None`` for the unit and effort models.
    unit, exact:
        Unit of ``delay`` and arrivals (``"s"``, ``"tau"``, ``"unit"``), and which view.
    start, end:
        Starting primary input bit net and ending primary output bit (``"port[k]"``);
        ``None`` if no output depends on an input.
    edge:
        Edge at the end of the path.
    path:
        Steps from the input bit to the output net.
    """

    ticks: int
    delay: float
    seconds: float | None
    unit: str
    exact: bool
    start: str | None
    end: str | None
    edge: Edge | None
    path: list[PathStep]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _cell_delays(annotation: DelayAnnotation, cell: str, out: str, exact: bool
                 ) -> Mapping[str, tuple[float, float]]:
    """Input pin -> (rise, fall) delay of ``cell``'s output ``out``."""
    arcs = annotation.arcs[cell][out]
    if exact:
        return {p: (a[2], a[3]) for p, a in arcs.items()}
    rise, fall = annotation.delays[cell][out]
    return {p: (float(rise), float(fall)) for p in arcs}


_Pred = tuple[str, Edge, int, str]  # input net, its edge, cell index, input pin


ArcDelays = Callable[[str, str], Mapping[str, tuple[float, float]]]
"""``(cell instance, output pin) -> {input pin: (rise, fall)}``."""


def _propagate(netlist: Netlist, annotation: DelayAnnotation, exact: bool
               ) -> tuple[dict[str, list[float]], dict[tuple[str, Edge], _Pred]]:
    annotation.check_matches(netlist)
    return _arrivals(netlist, lambda c, o: _cell_delays(annotation, c, o, exact))


def _arrivals(netlist: Netlist, delays: ArcDelays, *, any_edge: bool = False
              ) -> tuple[dict[str, list[float]], dict[tuple[str, Edge], _Pred]]:
    """Latest ``[rise, fall]`` arrival of every net, and the arc that set it. With
    ``any_edge`` every pin the output depends on counts as non-unate (either input edge
    can cause either output edge)."""
    arrival: dict[str, list[float]] = {n: [0.0, 0.0] for n in netlist.input_nets}
    arrival[CONST0] = [-math.inf, -math.inf]
    arrival[CONST1] = [-math.inf, -math.inf]
    pred: dict[tuple[str, Edge], _Pred] = {}
    senses: dict[tuple[str, str, str], str | None] = {}  # sense() evaluates a truth table
    for idx in netlist.order:
        cell = netlist.cells[idx]
        ctype = netlist.library[cell.type]
        for out, net in ((o, cell.pins[o]) for o in ctype.outputs if o in cell.pins):
            times = [-math.inf, -math.inf]
            for pin, arc in delays(cell.name, out).items():
                key = (cell.type, out, pin)
                if key not in senses:
                    senses[key] = ctype.sense(out, pin)
                sense = senses[key]
                if sense is None:
                    continue
                src = cell.pins[pin]
                for k, edge in enumerate(EDGES):
                    for in_edge in cause_edges("non_unate" if any_edge else sense, edge):
                        t = arrival[src][EDGES.index(in_edge)] + arc[k]
                        if t > times[k]:
                            times[k] = t
                            pred[(net, edge)] = (src, in_edge, idx, pin)
            arrival[net] = times
    return arrival, pred


def arrival_times(netlist: Netlist, annotation: DelayAnnotation, *, exact: bool = False
                  ) -> dict[str, tuple[float, float]]:
    """Latest ``(rise, fall)`` arrival of every net, inputs switching at t = 0.

    In ticks (``exact=False``) or in the annotation's unit (``exact=True``); ``-inf`` for
    an edge that never happens (constants and logic fed only by them).
    """
    arrival, _ = _propagate(netlist, annotation, exact)
    return {n: (t[0], t[1]) for n, t in arrival.items()}


def critical_path(netlist: Netlist, annotation: DelayAnnotation, *, exact: bool = False
                  ) -> TimingReport:
    """The latest-arriving primary output bit and the path that gets it there.

    Parameters
    ----------
    netlist:
        The combinational netlist ``annotation`` was made for (checked by hash).
    annotation:
        Delays from :func:`sim.delay.annotate`.
    exact:
        Use the unrounded arc delays instead of the simulators' integer tick delays.
    """
    arrival, pred = _propagate(netlist, annotation, exact)
    best: tuple[float, str, str, Edge] | None = None
    for port, bits in netlist.outputs.items():
        for k, net in enumerate(bits):
            for e, edge in enumerate(EDGES):
                t = arrival[net][e]
                if t > -math.inf and (best is None or t > best[0]):
                    best = (t, f"{port}[{k}]", net, edge)
    if best is None:
        return TimingReport(0, 0.0, 0.0 if annotation.unit == "s" else None, annotation.unit,
                            exact, None, None, None, [])
    t_end, end, net, edge = best
    steps: list[PathStep] = []
    cur: tuple[str, Edge] = (net, edge)
    while cur in pred:
        src, in_edge, idx, pin = pred[cur]
        cell = netlist.cells[idx]
        steps.append(PathStep(cur[0], cell.name, cell.type, pin, cur[1],
                              arrival[cur[0]][EDGES.index(cur[1])]))
        cur = (src, in_edge)
    steps.append(PathStep(cur[0], None, None, None, cur[1], arrival[cur[0]][EDGES.index(cur[1])]))
    steps.reverse()
    if exact:
        delay = t_end
        ticks = math.floor(t_end / annotation.tick + 0.5)
    else:
        ticks = round(t_end)
        delay = ticks * annotation.tick
    seconds = delay if annotation.unit == "s" else None
    return TimingReport(ticks, delay, seconds, annotation.unit, exact, steps[0].net, end, edge,
                        steps)


# --- OpenSTA ------------------------------------------------------------------------------

_ARRIVAL = re.compile(r"^\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s+data arrival time", re.M)
_ENDPOINT = re.compile(r"^(\S+) \(output\)\s+\S+\s+(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s", re.M)


def _sta_netlist(text: str) -> str:
    # OpenSTA's 2019 Verilog reader rejects the `signed` keyword Yosys writes on ports
    return re.sub(r"\bsigned\b\s*", "", text)


def _run_opensta(netlist_verilog_path: str | os.PathLike[str],
                 liberty_path: str | os.PathLike[str], top: str, report: str,
                 input_slew: float, output_load: float,
                 sdf: str | os.PathLike[str] | None = None) -> str:
    exe = shutil.which("sta")
    if exe is None:
        raise OpenSTAError("OpenSTA (`sta`) is not installed; install it (Debian: "
                           "apt-get install opensta) or skip the cross-check")
    src, lib = Path(netlist_verilog_path), Path(liberty_path)
    for p, what in ((src, "netlist"), (lib, "Liberty file")):
        if not p.is_file():
            raise OpenSTAError(f"{what} {str(p)!r} does not exist")
    try:
        text = src.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OpenSTAError(f"Cannot read netlist {str(src)!r} ({exc})") from None
    with tempfile.TemporaryDirectory(prefix="flipclock-sta-") as tmp:
        d = Path(tmp)
        (d / "net.v").write_text(_sta_netlist(text))
        # A copy under a plain relative name: no quoting of odd characters in Tcl.
        try:
            shutil.copyfile(lib, d / "cells.lib")
        except OSError as exc:
            raise OpenSTAError(f"Cannot read Liberty file {str(lib)!r} ({exc.strerror})") from None
        if sdf is not None:
            try:
                shutil.copyfile(sdf, d / "delays.sdf")
            except OSError as exc:
                raise OpenSTAError(f"Cannot read SDF {str(sdf)!r} ({exc.strerror})") from None
        script = "\n".join([
            "read_liberty cells.lib",
            "read_verilog net.v",
            f"link_design {top}",
            *(["read_sdf delays.sdf"] if sdf is not None else []),
            "set_cmd_units -time ns -capacitance pF",
            f"set_input_transition {input_slew * 1e9:.9g} [all_inputs]",
            f"set_load {output_load * 1e12:.9g} [all_outputs]",
            report,
            "",
        ])
        (d / "run.tcl").write_text(script)
        proc = subprocess.run([exe, "-no_init", "-no_splash", "-exit", "run.tcl"], cwd=d,
                              capture_output=True, text=True, check=False, timeout=600)
    out = proc.stdout + proc.stderr
    errors = [ln.strip() for ln in out.splitlines() if ln.startswith("Error")]
    if proc.returncode != 0 or errors:
        raise OpenSTAError(f"OpenSTA failed: {errors[0] if errors else out.strip()[-200:]}")
    return out


def opensta_critical_path(netlist_verilog_path: str | os.PathLike[str],
                          liberty_path: str | os.PathLike[str], top: str, *,
                          input_slew: float = 0.0, output_load: float = 0.0,
                          sdf: str | os.PathLike[str] | None = None) -> float:
    """Longest input-to-output data arrival time reported by OpenSTA, in seconds.

    Runs ``sta`` on ``read_liberty``, ``read_verilog``, ``link_design`` and
    ``report_checks -unconstrained``: no clock, every input launched at 0, and parses its
    ``data arrival time``.  The assumptions are those of
    :class:`~sim.delay.LibertyDelay`, set explicitly although OpenSTA's defaults are the
    same (slew 0 on inputs without ``set_input_transition``, no pin load on outputs
    without ``set_load``, no wire load unless ``set_wire_load_model`` is called or the
    library names a ``default_wire_load``, no parasitics, so each NLDM table is read at
    the lumped pin capacitance of the net): ``set_input_transition input_slew
    [all_inputs]`` and ``set_load output_load [all_outputs]``.

    Parameters
    ----------
    netlist_verilog_path:
        Structural Verilog over the library's cells (``signed`` keywords are removed for
        OpenSTA's reader).
    liberty_path:
        The Liberty file.
    top:
        Top module.
    input_slew, output_load:
        Seconds and farads.
    sdf:
        An SDF file whose delays OpenSTA annotates (``read_sdf``) instead of computing
        them from the Liberty tables.

    Raises
    ------
    OpenSTAError
        If ``sta`` is not installed, fails, or finds no path.
    """
    out = _run_opensta(netlist_verilog_path, liberty_path, top,
                       "report_checks -unconstrained -digits 6", input_slew, output_load, sdf)
    m = _ARRIVAL.search(out)
    if m is None:
        raise OpenSTAError("OpenSTA reported no path (does any input reach an output?)")
    return float(m.group(1)) * 1e-9


def opensta_output_arrivals(netlist_verilog_path: str | os.PathLike[str],
                            liberty_path: str | os.PathLike[str], top: str, *,
                            input_slew: float = 0.0, output_load: float = 0.0
                            ) -> dict[str, float]:
    """OpenSTA's latest arrival (seconds) at every primary output bit it can reach.

    Same setup as :func:`opensta_critical_path`; keys are OpenSTA's port names
    (``"p[3]"``, or ``"y"`` for a scalar port).
    """
    out = _run_opensta(netlist_verilog_path, liberty_path, top,
                       "report_checks -unconstrained -digits 6 -format end "
                       "-group_count 1000000 -endpoint_count 1", input_slew, output_load)
    return {m.group(1): float(m.group(2)) * 1e-9 for m in _ENDPOINT.finditer(out)}


def opensta_write_sdf(netlist_verilog_path: str | os.PathLike[str],
                      liberty_path: str | os.PathLike[str], top: str,
                      out: str | os.PathLike[str], *, input_slew: float = 0.0,
                      output_load: float = 0.0, digits: int = 6) -> str:
    """Write OpenSTA's SDF of a netlist (``write_sdf``) to ``out`` and return its text.

    Same setup as :func:`opensta_critical_path` (no wire load, no parasitics), so the
    SDF's delays are those OpenSTA times its paths with; ``INTERCONNECT`` entries are 0.
    """
    with tempfile.TemporaryDirectory(prefix="flipclock-sdf-") as tmp:
        target = Path(tmp) / "out.sdf"  # a plain name: no quoting of odd characters in Tcl
        _run_opensta(netlist_verilog_path, liberty_path, top,
                     f"write_sdf -digits {int(digits)} {target}", input_slew, output_load)
        try:
            text = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise OpenSTAError(f"OpenSTA wrote no SDF ({exc})") from None
    from .atomic import atomic_text

    atomic_text(Path(out), text)
    return text


def engine_critical_path(engine: Any) -> int:
    """The critical path, in ticks, of a :class:`~sim.engine.TimingEngine`'s own delays
    under its semantics: the one number info, errtable, crosscheck and stuckat report.

    ``inertial`` and ``transport``: the per-edge arrival with unateness (module doc;
    what :func:`critical_path` gives for the same cell delays), a proven bound.
    ``pathdelay``: an update may carry the value of a later change of the cell's function
    (:mod:`sim.engine`), so an edge is bounded only by the latest change of either edge
    of a pin that can cause it: ``arrival(y) = max_i arrival(i) + max(R_i, F_i)`` over
    the arcs of the pins ``y`` depends on. The engine never changes an output later.
    """
    plan = engine.plan
    path = engine.semantics == "pathdelay"
    node = {(n.cell, n.pin): k for k, n in enumerate(plan.nodes)}

    def delays(cell: str, out: str) -> dict[str, tuple[float, float]]:
        k = node[cell, out]
        if path:  # either edge of a pin bounds both: max of its arc's rise and fall
            return {p: (float(m), float(m)) for p, m in zip(
                plan.nodes[k].in_pins, np.maximum(engine.arcs[0][k], engine.arcs[1][k]),
                strict=False)}
        return dict.fromkeys(plan.nodes[k].in_pins,
                             (float(engine.rise[k]), float(engine.fall[k])))

    arrival, _ = _arrivals(plan.netlist, delays, any_edge=path)
    outs = [max(arrival[n]) for p in plan.output_ports for n in plan.netlist.outputs[p]]
    best = max(outs, default=-math.inf)
    return int(best) if best > -math.inf else 0
