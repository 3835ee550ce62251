"""The netlist as sign-off gate-level simulation sees it: cell instances, cell models with
``specify`` path delays, and the delays as SDF, for Icarus ``-gspecify`` with
``$sdf_annotate`` (the ``pathdelay`` semantics, :mod:`sim.engine`).

:func:`write_specify_sources` writes four files into a folder:

``netlist.v``
    The netlist's cell instances, renamed ``u0, u1, ...`` (so SDF instance names need no
    escaping) in a module ``fc_dut``.
``cells.v``
    A model per cell type. By default generated from the library's cell functions: each
    output is *one* user-defined primitive (a truth table) plus a ``specify`` path from
    every input. Or the library's own Verilog models (``cell_models``), e.g. OSU018's
    ``osu018_stdcells.v``, with their ``timescale`` set to the tick.
``delays.sdf``
    The engine's arc delays (:attr:`TimingEngine.arcs <sim.engine.TimingEngine>`) as
    ``IOPATH`` rise/fall pairs in ticks. Icarus reads SDF numbers in the annotated
    module's time unit (it ignores ``TIMESCALE``), and every module here runs at
    ``1ps`` = one tick, so the numbers are tick counts.
``top.v``
    ``fc_top``, with the netlist's ports, instantiating ``fc_dut`` and annotating it.

Why one primitive per output: Icarus evaluates a cell model built from several
primitives one primitive per delta cycle, so when two inputs change in the same time step
the output can glitch for zero time (on OSU018's ``OAI21X1``, ``B`` falling while ``C``
rises), and each glitch schedules a path-delay event that can later carry a new value
early. Which inputs arrive first depends on the simulator's event order, not on the
design; the engine evaluates the settled function. With the library's own models the
crosscheck reports those captures; with the generated models it is bit-exact.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .atomic import atomic_text
from .cells import CellType
from .errors import SimError
from .netlist import Netlist
from .writer import _namer

__all__ = ["SpecifyError", "cell_models", "check_cell_models", "write_specify_sources"]

MAX_UDP_INPUTS = 10
"""Inputs a Verilog user-defined primitive may have (IEEE 1364-2005 section 8.1.4)."""

_TIMESCALE = re.compile(r"`timescale\s+[^\n]*")


class SpecifyError(SimError, ValueError):
    """The cell models cannot be written or used (the message names the fix)."""


def _udp(name: str, ctype: CellType, out: str) -> str:
    n = len(ctype.inputs)
    table = ctype.truth_table(out)
    rows = [" ".join(str((k >> i) & 1) for i in range(n)) + f" : {(table >> k) & 1};"
            for k in range(1 << n)]
    ins = ", ".join(f"i{i}" for i in range(n))
    return "\n".join([f"primitive {name} (y, {ins});", "  output y;", f"  input {ins};",
                      "  table", *(f"    {r}" for r in rows), "  endtable", "endprimitive"])


def cell_models(netlist: Netlist) -> str:
    """Verilog models of the netlist's cell types: one truth-table primitive per output
    and a ``specify`` path (placeholder delay, replaced by the SDF) from every input."""
    parts = ["`timescale 1ps/1ps"]
    for type_name in sorted({c.type for c in netlist.cells}):
        ctype = netlist.library[type_name]
        if len(ctype.inputs) > MAX_UDP_INPUTS:
            raise SpecifyError(f"Cell {type_name} has {len(ctype.inputs)} inputs; generated "
                               f"cell models take at most {MAX_UDP_INPUTS}; pass the "
                               "library's own models with --cell-models")
        pins = [*ctype.inputs, *ctype.outputs]
        body = [f"module {type_name} ({', '.join(pins)});"]
        if ctype.inputs:
            body.append(f"  input {', '.join(ctype.inputs)};")
        body.append(f"  output {', '.join(ctype.outputs)};")
        for k, out in enumerate(ctype.outputs):
            if not ctype.inputs:
                body.append(f"  assign {out} = 1'b{ctype.truth_table(out) & 1};")
                continue
            udp = f"fc_udp_{re.sub(r'[^A-Za-z0-9_]', '_', type_name)}_{k}"
            parts.append(_udp(udp, ctype, out))
            body.append(f"  {udp} g{k} ({out}, {', '.join(ctype.inputs)});")
        if ctype.inputs:
            body.append("  specify")
            body += [f"    ({i} => {o}) = (1, 1);" for o in ctype.outputs for i in ctype.inputs]
            body.append("  endspecify")
        body.append("endmodule")
        parts.append("\n".join(body))
    return "\n\n".join(parts) + "\n"


def _library_models(path: str | Path, netlist: Netlist) -> str:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SpecifyError(f"Cannot read cell models {str(p)!r} ({exc.strerror}); give the "
                           "library's Verilog cell models with --cell-models") from None
    missing = sorted({c.type for c in netlist.cells}
                     - set(re.findall(r"^\s*module\s+([A-Za-z_][\w$]*)", text, re.M)))
    if missing:
        raise SpecifyError(f"Cell models {str(p)!r} define no module for {missing[:5]}; give "
                           "the Verilog models of the netlist's cell library")
    if "specify" not in text:
        raise SpecifyError(f"Cell models {str(p)!r} have no specify blocks, so SDF path "
                           "delays cannot be annotated; give models with specify paths")
    # every module runs at one tick per time unit: the SDF numbers are tick counts
    return "`timescale 1ps/1ps\n" + _TIMESCALE.sub("`timescale 1ps/1ps", text)


_MODULE = re.compile(r"^\s*module\s+([A-Za-z_][\w$]*)(.*?)^\s*endmodule", re.M | re.S)
_PATH = re.compile(r"\(\s*(?:posedge\s+|negedge\s+)?([A-Za-z_]\w*)\s*[+-]?\s*[*=]>\s*"
                   r"\(?\s*([A-Za-z_]\w*)")


def check_cell_models(netlist: Netlist, path: str | Path) -> None:
    """Refuse, in one line, cell models that cannot stand for the netlist's cells: a cell
    type without a module or a ``specify`` path from an input its output depends on, or
    whose function differs from the library's (every input combination, on Icarus, path
    delays off). Only then is a crosscheck difference on them a question of timing."""
    import shutil
    import subprocess
    import tempfile

    text = _library_models(path, netlist)
    bodies = {m.group(1): m.group(2) for m in _MODULE.finditer(text)}
    types = sorted({c.type for c in netlist.cells})
    for name in types:
        ctype = netlist.library[name]
        paths = set(_PATH.findall(bodies.get(name, "").split("specify", 1)[-1]))
        for out in ctype.outputs:
            for pin in ctype.inputs:
                if ctype.sense(out, pin) is not None and (pin, out) not in paths:
                    raise SpecifyError(f"Cell models {str(path)!r}: {name} has no specify "
                                       f"path {pin} -> {out}, so its SDF arc cannot be "
                                       "annotated; give the library's complete models")
    tb = ["`timescale 1ps/1ps", "module fc_check;"]
    for k, name in enumerate(types):
        ctype = netlist.library[name]
        n, outs = len(ctype.inputs), list(ctype.outputs)
        tb.append(f"  reg [{max(n, 1) - 1}:0] i{k}; wire [{len(outs) - 1}:0] o{k};")
        pins = [f".{p}(i{k}[{j}])" for j, p in enumerate(ctype.inputs)]
        pins += [f".{p}(o{k}[{j}])" for j, p in enumerate(outs)]
        tb.append(f"  {name} c{k} ({', '.join(pins)});")
    tb.append("  integer v;\n  initial begin")
    for k, name in enumerate(types):
        n = len(netlist.library[name].inputs)
        tb.append(f"    for (v = 0; v < {1 << n}; v = v + 1) begin i{k} = v; #10; "
                  f'$display("F {k} %0d %b", v, o{k}); end')
    tb.append("  end\nendmodule\n")
    exe = shutil.which("iverilog")
    if exe is None:
        raise SpecifyError("Icarus Verilog is not installed (apt-get install iverilog); it "
                           "checks and runs the cell models")
    with tempfile.TemporaryDirectory(prefix="flipclock-cells-") as tmp:
        (Path(tmp) / "cells.v").write_text(text)
        (Path(tmp) / "tb.v").write_text("\n".join(tb))
        build = subprocess.run([exe, "-o", "sim", "tb.v", "cells.v"], cwd=tmp,
                               capture_output=True, text=True)
        if build.returncode != 0:
            first = (build.stderr.strip().splitlines() or ["no message"])[0]
            raise SpecifyError(f"Icarus cannot compile cell models {str(path)!r} ({first})")
        run = subprocess.run(["vvp", "-n", "sim"], cwd=tmp, capture_output=True, text=True)
    lines = [ln.split() for ln in run.stdout.splitlines() if ln.startswith("F ")]
    if len(lines) != sum(1 << len(netlist.library[t].inputs) for t in types):
        raise SpecifyError(f"Icarus could not evaluate cell models {str(path)!r} "
                           f"({(run.stderr.strip().splitlines() or ['no output'])[0]})")
    for _, idx, vec, bits in lines:
        ctype = netlist.library[types[int(idx)]]
        for j, out in enumerate(ctype.outputs):
            want = (ctype.truth_table(out) >> int(vec)) & 1
            got = bits[len(bits) - 1 - j]
            if got != str(want):
                ins = ", ".join(f"{p}={(int(vec) >> i) & 1}"
                                for i, p in enumerate(ctype.inputs))
                raise SpecifyError(f"Cell models {str(path)!r}: {ctype.name}.{out} gives {got} "
                                   f"at {ins}, the Liberty function gives {want}; give the "
                                   "models of the same library")


def _structural(netlist: Netlist) -> str:
    names = _namer(netlist)  # the simulator-ready netlist's names: port[i] and n<k>
    ports = [*netlist.inputs, *netlist.outputs]
    lines = ["`timescale 1ps/1ps", f"module fc_dut ({', '.join(ports)});"]
    lines += [f"  input [{len(b) - 1}:0] {p};" for p, b in netlist.inputs.items()]
    lines += [f"  output [{len(b) - 1}:0] {p};" for p, b in netlist.outputs.items()]
    lines += [f"  wire {n};" for n in sorted(v for v in names.values() if v.startswith("n"))]
    for k, cell in enumerate(netlist.cells):
        pins = ", ".join(f".{p}({names[n]})" for p, n in cell.pins.items())
        lines.append(f"  {cell.type} u{k} ({pins});")
    for port, bits in netlist.outputs.items():
        lines += [f"  assign {port}[{i}] = {names[n]};" for i, n in enumerate(bits)]
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _sdf(engine: Any) -> str:
    index = {c.name: k for k, c in enumerate(engine.plan.netlist.cells)}
    rise, fall = engine.arcs[0], engine.arcs[1]
    per_cell: dict[str, list[str]] = {}
    for k, node in enumerate(engine.plan.nodes):
        rows = per_cell.setdefault(node.cell, [])
        rows += [f"      (IOPATH {pin} {node.pin} ({rise[k, i]}) ({fall[k, i]}))"
                 for i, pin in enumerate(node.in_pins)]
    lines = ["(DELAYFILE", '  (SDFVERSION "3.0")', '  (DESIGN "fc_dut")',
             '  (PROGRAM "flipclock")', "  (DIVIDER /)", "  (TIMESCALE 1ps)"]
    for cell in engine.plan.netlist.cells:
        iopaths = per_cell.get(cell.name)
        if not iopaths:  # Icarus rejects a CELL without delays
            continue
        lines += [f'  (CELL (CELLTYPE "{cell.type}") (INSTANCE u{index[cell.name]})',
                  "    (DELAY (ABSOLUTE", *iopaths, "    ))", "  )"]
    lines.append(")")
    return "\n".join(lines) + "\n"


def write_specify_sources(engine: Any, folder: str | Path, *,
                          models: str | Path | None = None) -> tuple[list[Path], str]:
    """Write the four files (module doc) for a ``pathdelay``
    :class:`~sim.engine.TimingEngine`; returns ``(sources, top module)``."""
    if engine.semantics != "pathdelay" or engine.per_pin:
        raise SpecifyError("Specify sources model the pathdelay semantics only")
    netlist = engine.plan.netlist
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cells = atomic_text(folder / "cells.v", cell_models(netlist) if models is None
                        else _library_models(models, netlist))
    dut = atomic_text(folder / "netlist.v", _structural(netlist))
    sdf = atomic_text(folder / "delays.sdf", _sdf(engine))
    ports = [*netlist.inputs, *netlist.outputs]
    top = atomic_text(folder / "top.v", "\n".join([
        "`timescale 1ps/1ps",
        f"module fc_top ({', '.join(ports)});",
        *(f"  input [{len(b) - 1}:0] {p};" for p, b in netlist.inputs.items()),
        *(f"  output [{len(b) - 1}:0] {p};" for p, b in netlist.outputs.items()),
        f"  fc_dut dut ({', '.join(f'.{p}({p})' for p in ports)});",
        f'  initial $sdf_annotate("{Path(sdf).resolve()}", dut);',
        "endmodule", ""]))
    return [Path(top), Path(dut), Path(cells)], "fc_top"
