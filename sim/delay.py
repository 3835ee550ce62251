"""Delay models and the per-cell delay annotation of a netlist.

A delay model is a small frozen dataclass config (:class:`UnitDelay`,
:class:`EffortDelay`, :class:`LibertyDelay`) that round-trips to JSON.
:func:`annotate` applies one to a :class:`~sim.netlist.Netlist` and returns a
:class:`DelayAnnotation`: for every cell instance and output pin, an integer ``(rise,
fall)`` delay in simulator ticks, and for every input pin the arc delays behind it, both
rounded and exact.  The annotation is what the HDL simulators and static timing
(:mod:`sim.sta`) consume; it records the hash of the netlist it belongs to.

Models
------
``unit``
    Every cell output switches 1 tick after an input (rise = fall); 1 tick = 1 "unit".
    The critical path in ticks is the logic depth.
``effort``
    Logical effort (Sutherland, Sproull & Harris, *Logical Effort*, 1999): the delay of a
    gate from input pin ``i``, in units of tau, is ``d = g_i h_i + p`` with ``h_i =
    C_load / C_in,i``.  Every cell is minimum size, i.e. sized to drive like a unit
    inverter, and then the input capacitance of pin ``i`` is ``g_i C_inv``.  So

        ``g_i h_i = g_i C_load / (g_i C_inv) = C_load / C_inv``,

    the same for every input pin, and ``C_load`` is the sum of the fan-out pins' input
    capacitances, ``sum_j g_j C_inv``.  Hence ``d = sum_j g_j + p``: the summed logical
    effort of the fan-out pins (in inverter input capacitances) plus the driving cell's
    parasitic delay, plus ``output_load`` inverter loads for each primary output bit the
    net drives.  Example: an inverter driving two NAND2 inputs has ``d = 2 * 4/3 + 1 =
    11/3`` tau.  1 tick = ``1/ticks_per_tau`` tau (0.25 tau by default); rise = fall.
``liberty``
    NLDM table lookup from a Liberty file (:func:`sim.liberty.read_liberty`), the way
    OpenSTA computes delays without parasitics: the load of a net for an edge is the sum
    of the ``rise_capacitance``/``fall_capacitance`` of every pin on it (fan-out inputs
    and the driver's own output pin, as OpenSTA's ``Sdc::pinCaps`` counts them), plus
    ``output_load_ff`` per primary output bit; no wire load.  Slews propagate forward in
    topological order, rise and fall separately: the slew of a net for an edge is the
    worst (largest) over all arcs into it, as OpenSTA keeps one slew per pin and edge.
    Primary inputs have slew ``input_slew_ps`` for both edges.  The delay of the arc
    ``pin -> out`` for an output edge is the table value at (load of that edge, slew of
    the input edge that causes it: same edge for positive unate, the opposite for
    negative unate, the worse of both for non-unate).  1 tick = ``tick_ps`` ps.
``sdf``
    Delays from an SDF file (:mod:`sim.sdf`), e.g. OpenSTA's ``write_sdf``: each arc's
    rise and fall ``IOPATH`` delay at one corner (``max`` by default: timing errors are
    late arrivals, what sign-off setup checks bound), the worst over its ``COND``
    variants, plus any ``INTERCONNECT``/``PORT`` wire delay in front of its input pin.
    1 tick = ``tick_ps`` ps, whatever the SDF's ``TIMESCALE`` (that is only the unit the
    file writes its numbers in, not their precision).  The model records the file's
    SHA-256; the annotation's ``notes`` say what was folded (conditions, wires).

Rounding: a cell's tick delay for an output edge is the largest of its input pins' arc
delays for that edge, rounded to the nearest tick (halves up), and at least 1 tick.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from .cells import CellType
from .errors import SimError
from .liberty import read_liberty
from .netlist import CONST0, CONST1, Netlist
from .nldm import EDGES, cause_edges

__all__ = [
    "DELAY_MODELS",
    "AnnotationError",
    "DelayAnnotation",
    "DelayModel",
    "EffortDelay",
    "LibertyDelay",
    "SdfDelay",
    "UnitDelay",
    "annotate",
    "cause_edges",
    "delay_model_from_dict",
]

FORMAT = "flipclock-delay-annotation"
VERSION = 1


class AnnotationError(SimError, ValueError):
    """A delay model or annotation cannot be used (the message names the fix)."""


# --- Model configs ------------------------------------------------------------------------


class _Config:
    """JSON round-trip shared by the model configs (``{"kind": ..., **fields}``)."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]

    def to_json(self) -> str:
        """The config as a JSON object string (``kind`` plus the fields)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DelayModel:
        """Rebuild a config from :meth:`to_json` output (any model kind when called on a
        base; the named class checks the kind)."""
        model = delay_model_from_dict(json.loads(text))
        if cls is not _Config and not isinstance(model, cls):
            raise AnnotationError(f"JSON holds a {model.kind!r} delay model, not {cls.kind!r}")
        return model


@dataclass(frozen=True)
class UnitDelay(_Config):
    """Every cell output switches 1 tick after its input (rise = fall)."""

    kind: ClassVar[str] = "unit"


@dataclass(frozen=True)
class EffortDelay(_Config):
    """Logical-effort delays ``d = sum of fan-out g + p`` (tau), for minimum-size gates.

    Parameters
    ----------
    ticks_per_tau:
        Ticks per tau; delays are rounded to whole ticks.
    output_load:
        Load of each primary output bit, in inverter input capacitances.
    """

    kind: ClassVar[str] = "effort"
    ticks_per_tau: int = 4
    output_load: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.ticks_per_tau, int) or self.ticks_per_tau < 1:
            raise ValueError(
                f"ticks_per_tau must be a positive integer, not {self.ticks_per_tau!r}"
            )
        if not self.output_load >= 0:
            raise ValueError(f"output_load must be >= 0, not {self.output_load!r}")


@dataclass(frozen=True)
class LibertyDelay(_Config):
    """NLDM table-lookup delays from a Liberty file.

    Parameters
    ----------
    path:
        The Liberty file (the one the netlist was mapped to).
    tick_ps:
        Picoseconds per simulator tick.
    input_slew_ps:
        Transition time of every primary input, both edges.
    output_load_ff:
        Capacitance on each primary output bit.
    """

    kind: ClassVar[str] = "liberty"
    path: str
    tick_ps: float = 10.0
    input_slew_ps: float = 0.0
    output_load_ff: float = 0.0

    def __post_init__(self) -> None:
        if not self.tick_ps > 0:
            raise ValueError(f"tick_ps must be > 0, not {self.tick_ps!r}")
        if not self.input_slew_ps >= 0:
            raise ValueError(f"input_slew_ps must be >= 0, not {self.input_slew_ps!r}")
        if not self.output_load_ff >= 0:
            raise ValueError(f"output_load_ff must be >= 0, not {self.output_load_ff!r}")


@dataclass(frozen=True)
class SdfDelay(_Config):
    """Delays read from an SDF file (:mod:`sim.sdf`).

    Parameters
    ----------
    path:
        The SDF file.
    sha256:
        SHA-256 of its bytes when the build read it; :func:`annotate` refuses a file that
        has changed since (empty: not checked).
    corner:
        ``min``, ``typ`` or ``max`` of the ``min:typ:max`` triples.
    tick_ps:
        Picoseconds per simulator tick.
    """

    kind: ClassVar[str] = "sdf"
    path: str
    sha256: str = ""
    corner: str = "max"
    tick_ps: float = 10.0

    def __post_init__(self) -> None:
        if self.corner not in ("min", "typ", "max"):
            raise ValueError(f"corner must be min, typ or max, not {self.corner!r}")
        if not self.tick_ps > 0 or not math.isfinite(self.tick_ps):
            raise ValueError(f"tick_ps must be > 0, not {self.tick_ps!r}")


DelayModel = UnitDelay | EffortDelay | LibertyDelay | SdfDelay
_MODELS: dict[str, type[UnitDelay] | type[EffortDelay] | type[LibertyDelay] | type[SdfDelay]] = {
    m.kind: m for m in (UnitDelay, EffortDelay, LibertyDelay, SdfDelay)
}
DELAY_MODELS: tuple[str, ...] = ("unit", "effort", "liberty")
"""The delay models a build computes (``unit``, ``effort``, ``liberty``): help texts and checks
use these.  ``sdf`` is not among them: a build gets it from ``--sdf FILE``, not by name."""


def delay_model_from_dict(data: Mapping[str, Any]) -> DelayModel:
    """Rebuild a model config from its :meth:`to_dict` form."""
    if not isinstance(data, Mapping):
        raise AnnotationError(f"a delay model must be a JSON object, not {data!r}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _MODELS:
        raise AnnotationError(f"unknown delay model kind {kind!r}; use one of {sorted(_MODELS)}")
    cls = _MODELS[kind]
    names = {f.name for f in fields(cls)}
    extra = set(data) - names - {"kind"}
    if extra:
        raise AnnotationError(f"delay model {kind!r} has no field {sorted(extra)[0]!r}")
    try:
        return cls(**{k: v for k, v in data.items() if k != "kind"})
    except (TypeError, ValueError) as exc:  # a missing field, or one __post_init__ refuses
        raise AnnotationError(f"delay model {kind!r}: {exc}") from None


# --- Annotation ---------------------------------------------------------------------------

Arc = tuple[int, int, float, float]  # rise ticks, fall ticks, rise exact, fall exact


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _number(value: Any) -> float:
    # JSON numbers only: a string such as "1" or a NaN/inf would slip through float().
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of ticks >= 0, got {value!r}")
    return value


def _tick_pair(value: Any) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"expected [rise, fall] ticks, got {value!r}")
    return _count(value[0]), _count(value[1])


def _arc(value: Any) -> Arc:
    if not isinstance(value, list) or len(value) != 4:
        raise ValueError(f"expected [rise, fall, rise exact, fall exact], got {value!r}")
    return _count(value[0]), _count(value[1]), _number(value[2]), _number(value[3])


def _ticks(exact: float, tick: float) -> int:
    return max(1, math.floor(exact / tick + 0.5))


def _check_tick(exact: Any, tick: float, model: Any) -> None:
    """One line if a nonzero arc is under half a tick (it would round to 0 ticks).

    ``_ticks`` clamps such an arc to 1 tick.  Any one of them is refused, not only a share
    of them: a single clamped arc already overstates its delay by more than the half tick
    rounding allows, and the usual cause, a tick coarser than the cells, clamps nearly all
    arcs at once, so the whole design times in ticks that are its gate count.  The cure
    costs nothing but a finer tick.
    """
    small = min((d for outs in exact.values() for pins in outs.values()
                 for rf in pins.values() for d in rf if 0 < d < tick / 2), default=None)
    if small is None:
        return
    if isinstance(model, EffortDelay):
        fix = f"give --ticks-per-tau {math.ceil(1 / small)} or more"
        size, tick_text = f"{small:.4g} tau", f"{tick:g} tau"
    else:
        fix = f"give --tick-ps {small * 1e12:.4g} or less"
        size, tick_text = f"{small * 1e12:.4g} ps", f"{tick * 1e12:g} ps"
    raise AnnotationError(f"The shortest arc delay, {size}, is under half the tick "
                          f"({tick_text}): it would round to 0 ticks and be timed as 1; "
                          f"{fix}")


@dataclass(frozen=True)
class DelayAnnotation:
    """Per-cell delays of one netlist under one delay model.

    Parameters
    ----------
    model:
        The delay model config that produced it.
    netlist_hash:
        :attr:`Netlist.content_hash <sim.netlist.Netlist.content_hash>` of its netlist.
    tick:
        Size of one tick in ``unit``.
    unit:
        Unit of the exact values: ``"s"`` (liberty), ``"tau"`` (effort) or ``"unit"``.
    tick_label:
        Human-readable tick size (``"10 ps"``, ``"0.25 tau"``, ``"1 unit"``).
    delays:
        Cell instance -> output pin -> ``(rise, fall)`` in ticks.
    arcs:
        Cell instance -> output pin -> input pin -> ``(rise_ticks, fall_ticks,
        rise_exact, fall_exact)``; exact values in ``unit``.
    overrides:
        Cell instance -> ``(rise, fall)`` set by :meth:`with_overrides` (all overrides so
        far); empty for a fresh annotation.
    notes:
        What the model folded or skipped to get these delays (e.g. SDF ``COND`` arcs);
        stored only when there are any, so older annotations keep their hashes.
    """

    model: DelayModel
    netlist_hash: str
    tick: float
    unit: str
    tick_label: str
    delays: Mapping[str, Mapping[str, tuple[int, int]]]
    arcs: Mapping[str, Mapping[str, Mapping[str, Arc]]]
    overrides: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def seconds_per_tick(self) -> float | None:
        """Seconds per tick, or ``None`` for the unit and effort models."""
        return self.tick if self.unit == "s" else None

    def to_dict(self, *, with_hash: bool = True) -> dict[str, Any]:
        """JSON-able form; tuples become lists."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model.to_dict(),
            "netlist_hash": self.netlist_hash,
            "tick": self.tick,
            "unit": self.unit,
            "tick_label": self.tick_label,
            "delays": {c: {p: list(d) for p, d in outs.items()} for c, outs in self.delays.items()},
            "arcs": {c: {o: {p: list(a) for p, a in pins.items()} for o, pins in outs.items()}
                     for c, outs in self.arcs.items()},
            "overrides": {c: list(d) for c, d in self.overrides.items()},
        }
        if self.notes:
            out["notes"] = list(self.notes)
        if with_hash:
            out["content_hash"] = self.content_hash
        return out

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON form (without this hash)."""
        blob = json.dumps(self.to_dict(with_hash=False), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_json(self, *, indent: int | None = None) -> str:
        """The annotation as JSON text; :meth:`from_json` restores it exactly."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> DelayAnnotation:
        """Load :meth:`to_json` output; checks the format and the content hash."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"delay annotation is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise AnnotationError("not a flipclock delay annotation; write it with "
                                  "DelayAnnotation.to_json()")
        if data.get("version") != VERSION:
            raise AnnotationError(f"delay annotation version {data.get('version')!r} is not "
                                  f"{VERSION}; regenerate it with annotate()")
        try:
            ann = cls(
                model=delay_model_from_dict(data["model"]),
                netlist_hash=_text(data["netlist_hash"]),
                tick=_number(data["tick"]),
                unit=_text(data["unit"]),
                tick_label=_text(data["tick_label"]),
                delays={_text(c): {_text(p): _tick_pair(d) for p, d in outs.items()}
                        for c, outs in data["delays"].items()},
                arcs={_text(c): {_text(o): {_text(p): _arc(a) for p, a in pins.items()}
                                 for o, pins in outs.items()}
                      for c, outs in data["arcs"].items()},
                overrides={_text(c): _tick_pair(d) for c, d in data["overrides"].items()},
                notes=tuple(_text(n) for n in data.get("notes", [])),
            )
        except KeyError as exc:
            raise AnnotationError(f"delay annotation has no {exc.args[0]!r} entry (damaged); "
                                  "regenerate it with `flipclock build`") from None
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            raise AnnotationError(f"delay annotation is damaged ({exc}); regenerate it with "
                                  "`flipclock build`") from None
        stored = data.get("content_hash")
        if stored is not None and stored != ann.content_hash:
            raise AnnotationError("delay annotation content hash does not match its data "
                                  "(edited or corrupted); regenerate it with annotate()")
        return ann

    def write(self, path: str | Path) -> None:
        """Write :meth:`to_json` (indented) to ``path``."""
        from .atomic import atomic_text

        atomic_text(Path(path), self.to_json(indent=1) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> DelayAnnotation:
        """Read a file written by :meth:`write`."""
        p = Path(path)
        if not p.is_file():
            raise AnnotationError(f"delay annotation file {str(p)!r} does not exist")
        try:
            text = p.read_bytes().decode("utf-8")
        except OSError as exc:
            raise AnnotationError(f"Cannot read delay annotation file {str(p)!r} "
                                  f"({exc.strerror})") from None
        except UnicodeDecodeError:
            raise AnnotationError(f"delay annotation file {str(p)!r} is not text (not UTF-8); "
                                  "regenerate it with `flipclock build`") from None
        return cls.from_json(text)

    def check_matches(self, netlist: Netlist) -> None:
        """Raise :class:`AnnotationError` unless this annotation was made for ``netlist``."""
        if self.netlist_hash != netlist.content_hash:
            raise AnnotationError(
                f"delay annotation is for netlist {self.netlist_hash[:12]}, not "
                f"{netlist.content_hash[:12]} ({netlist.top}); re-run annotate() on this netlist"
            )

    def with_overrides(self, delays: Mapping[str, tuple[int, int]]) -> DelayAnnotation:
        """A copy with cell ``name -> (rise, fall)`` tick delays replaced.

        The override applies to every output pin of the cell and to every arc into it
        (exact values become ``ticks * tick``), so exact and tick STA agree on it.
        """
        new_delays = {c: dict(o) for c, o in self.delays.items()}
        new_arcs = {c: {o: dict(p) for o, p in outs.items()} for c, outs in self.arcs.items()}
        for name, value in delays.items():
            if name not in new_delays:
                raise AnnotationError(f"cannot override cell {name!r}: the netlist has no such "
                                      "cell instance")
            if len(value) != 2 or any(int(v) != v or v < 0 for v in value):
                raise AnnotationError(f"override for {name!r} must be two integers >= 0, "
                                      f"not {value!r}")
            rise, fall = int(value[0]), int(value[1])
            for out in new_delays[name]:
                new_delays[name][out] = (rise, fall)
                for pin in new_arcs[name][out]:
                    new_arcs[name][out][pin] = (rise, fall, rise * self.tick, fall * self.tick)
        merged = {**self.overrides, **{n: (int(v[0]), int(v[1])) for n, v in delays.items()}}
        return replace(self, delays=new_delays, arcs=new_arcs, overrides=merged)


# --- Models -------------------------------------------------------------------------------


def _output_bit_counts(netlist: Netlist) -> dict[str, int]:
    counts: dict[str, int] = {}
    for bits in netlist.outputs.values():
        for net in bits:
            counts[net] = counts.get(net, 0) + 1
    return counts


def _connected_outputs(ctype: CellType, pins: Mapping[str, str]) -> list[str]:
    return [o for o in ctype.outputs if o in pins]


_SENSITIVE: dict[tuple[str, str, str, tuple[str, ...]], list[str]] = {}


def _sensitive_inputs(ctype: CellType, out: str) -> list[str]:
    """Input pins ``out`` depends on (cached: ``sense`` evaluates a truth table)."""
    key = (ctype.name, out, ctype.functions[out], ctype.inputs)
    if key not in _SENSITIVE:
        _SENSITIVE[key] = [p for p in ctype.inputs if ctype.sense(out, p) is not None]
    return _SENSITIVE[key]


def _unit(netlist: Netlist) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    exact: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for cell in netlist.cells:
        ctype = netlist.library[cell.type]
        exact[cell.name] = {o: {p: (1.0, 1.0) for p in _sensitive_inputs(ctype, o)}
                            for o in _connected_outputs(ctype, cell.pins)}
    return exact


def _effort(netlist: Netlist, model: EffortDelay
            ) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    lib = netlist.library
    for cell in netlist.cells:
        if not lib[cell.type].effort:
            raise AnnotationError(
                f"cell type {cell.type} has no logical effort, which the effort model needs; "
                "synthesise to the built-in fcgates library or use LibertyDelay"
            )
    po = _output_bit_counts(netlist)
    exact: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for cell in netlist.cells:
        ctype = lib[cell.type]
        exact[cell.name] = {}
        for out in _connected_outputs(ctype, cell.pins):
            net = cell.pins[out]
            load = sum(lib[netlist.cells[i].type].effort[pin]
                       for i, pin in netlist.fanout.get(net, ()))
            d = load + model.output_load * po.get(net, 0) + ctype.parasitic
            exact[cell.name][out] = {p: (d, d) for p in _sensitive_inputs(ctype, out)}
    return exact


def _liberty(netlist: Netlist, model: LibertyDelay
             ) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    lib = read_liberty(model.path)
    assert lib.time_unit is not None and lib.capacitance_unit is not None
    for cell in netlist.cells:
        if cell.type not in lib:
            raise AnnotationError(lib.unknown_cell_message(cell.type))
    po = _output_bit_counts(netlist)
    extra_load = model.output_load_ff * 1e-15 / lib.capacitance_unit
    in_slew = model.input_slew_ps * 1e-12 / lib.time_unit
    slew: dict[str, tuple[float, float]] = {n: (in_slew, in_slew) for n in netlist.input_nets}
    slew[CONST0] = slew[CONST1] = (0.0, 0.0)
    exact: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for idx in netlist.order:
        cell = netlist.cells[idx]
        ctype = lib[cell.type]
        exact[cell.name] = {}
        for out in _connected_outputs(ctype, cell.pins):
            net = cell.pins[out]
            load = [extra_load * po.get(net, 0) + ctype.edge_capacitance.get(out, (0.0, 0.0))[k]
                    for k in range(2)]
            for i, pin in netlist.fanout.get(net, ()):
                caps = lib[netlist.cells[i].type].edge_capacitance[pin]
                load[0] += caps[0]
                load[1] += caps[1]
            out_slew = [0.0, 0.0]
            arcs: dict[str, tuple[float, float]] = {}
            for pin in _sensitive_inputs(ctype, out):
                if (pin, out) not in ctype.arcs:
                    raise AnnotationError(
                        f"Liberty cell {cell.type} has no timing arc {pin} -> {out}; "
                        "use a library with complete combinational timing"
                    )
                worst = [-math.inf, -math.inf]
                for arc in ctype.arcs[(pin, out)]:
                    for k, edge in enumerate(EDGES):
                        dtab, stab = arc.delay_table(edge), arc.slew_table(edge)
                        if dtab is None or stab is None:
                            continue
                        for in_edge in cause_edges(arc.sense, edge):
                            s = slew[cell.pins[pin]][EDGES.index(in_edge)]
                            worst[k] = max(worst[k], dtab(load[k], s))
                            out_slew[k] = max(out_slew[k], stab(load[k], s))
                for k, edge in enumerate(EDGES):
                    if worst[k] == -math.inf:  # never a silent zero or a borrowed edge
                        raise AnnotationError(
                            f"Liberty cell {cell.type} has no {edge} delay and slew tables on "
                            f"its arc {pin} -> {out}; use a library with complete "
                            "combinational timing")
                arcs[pin] = (worst[0] * lib.time_unit, worst[1] * lib.time_unit)
            slew[net] = (out_slew[0], out_slew[1])
            exact[cell.name][out] = arcs
    return exact


def _sdf(netlist: Netlist, model: SdfDelay
         ) -> tuple[dict[str, dict[str, dict[str, tuple[float, float]]]], list[str]]:
    from .sdf import SdfError, read_sdf, sdf_arcs

    if model.sha256:
        try:
            digest = hashlib.sha256(Path(model.path).read_bytes()).hexdigest()
        except OSError as exc:
            raise AnnotationError(f"Cannot read SDF file {model.path!r} ({exc.strerror})"
                                  ) from None
        if digest != model.sha256:
            raise AnnotationError(f"SDF file {model.path!r} has changed since the build read "
                                  "it; rebuild with `flipclock build netlist --sdf`")
    try:
        return sdf_arcs(netlist, read_sdf(model.path, corner=model.corner))
    except SdfError as exc:
        raise AnnotationError(str(exc)) from None


def annotate(netlist: Netlist, model: DelayModel) -> DelayAnnotation:
    """Compute every cell's delays under ``model``.

    Parameters
    ----------
    netlist:
        The combinational netlist.
    model:
        :class:`UnitDelay`, :class:`EffortDelay` or :class:`LibertyDelay`.

    Returns
    -------
    DelayAnnotation
        Tick delays per cell output and exact arc delays, tied to ``netlist`` by hash.
    """
    notes: list[str] = []
    if isinstance(model, UnitDelay):
        exact, tick, unit, label = _unit(netlist), 1.0, "unit", "1 unit"
    elif isinstance(model, EffortDelay):
        tick = 1.0 / model.ticks_per_tau
        exact, unit, label = _effort(netlist, model), "tau", f"{tick:g} tau"
    elif isinstance(model, LibertyDelay):
        exact, tick, unit = _liberty(netlist, model), model.tick_ps * 1e-12, "s"
        label = f"{model.tick_ps:g} ps"
    elif isinstance(model, SdfDelay):
        exact, notes = _sdf(netlist, model)
        tick, unit, label = model.tick_ps * 1e-12, "s", f"{model.tick_ps:g} ps"
    else:
        raise TypeError("model must be UnitDelay, EffortDelay, LibertyDelay or SdfDelay, "
                        f"not {model!r}")
    _check_tick(exact, tick, model)
    delays: dict[str, dict[str, tuple[int, int]]] = {}
    arcs: dict[str, dict[str, dict[str, Arc]]] = {}
    for cell, outs in exact.items():
        delays[cell], arcs[cell] = {}, {}
        for out, pins in outs.items():
            arcs[cell][out] = {
                p: (_ticks(r, tick) if r > -math.inf else 0,
                    _ticks(f, tick) if f > -math.inf else 0, r, f)
                for p, (r, f) in pins.items()
            }
            rise = max((a[0] for a in arcs[cell][out].values()), default=1)
            fall = max((a[1] for a in arcs[cell][out].values()), default=1)
            delays[cell][out] = (max(rise, 1), max(fall, 1))
    return DelayAnnotation(model=model, netlist_hash=netlist.content_hash, tick=tick, unit=unit,
                           tick_label=label, delays=delays, arcs=arcs, notes=tuple(notes))
