"""nox sessions, named by purpose.

``nox -s tests`` is the whole test suite (both HDL simulators included) and is exactly what
CI runs; ``nox -s demo`` runs the main job end to end on the embedded default. Long studies
and benchmarks have sessions of their own and are not part of CI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

# torch comes from the machine's local CPU wheel (torch==2.13.0); uv does not see it.
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PY = "3.11"


# What the simulations need from Debian, and how to tell each one is there.
APT = {
    "iverilog": lambda: shutil.which("iverilog") is not None,
    "opensta": lambda: shutil.which("sta") is not None,
    "qflow-tech-osu018": lambda: Path(
        "/usr/share/qflow/tech/osu018/osu018_stdcells.lib").is_file(),
    "dataset-fashion-mnist": lambda: Path("/usr/share/datasets/fashion-mnist").is_dir(),
}


def _system(session: nox.Session) -> None:
    """Install the missing Debian packages (as root), or stop with the one command to run."""
    missing = [name for name, present in APT.items() if not present()]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "-q", *missing]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        session.error("missing system packages; run: sudo apt-get update && sudo "
                      + " ".join(command))
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-q", external=True, env=env)
    session.run(*command, external=True, env=env)


def _install(session: nox.Session, extras: str = "") -> None:
    _system(session)
    session.install("torch==2.13.0")
    session.install("-e", f".{extras}")


@nox.session(python=PY)
def tests(session: nox.Session) -> None:
    """The whole test suite: unit tests, both simulators (Icarus, Verilator), OpenSTA."""
    _install(session, "[test]")
    session.run("pytest", "-n", "2", "--dist", "loadgroup", "--durations=25", *session.posargs)


@nox.session(python=PY)
def lint(session: nox.Session) -> None:
    """ruff and mypy."""
    _install(session, "[lint]")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(python=PY)
def rtl(session: nox.Session) -> None:
    """Regenerate the committed designs under rtl/ from hw/."""
    _install(session)
    session.run("python", "-m", "flipclock.defaults", "--write", *session.posargs)


@nox.session(python=PY)
def demo(session: nox.Session) -> None:
    """The main job, end to end, on the embedded default design."""
    _install(session)
    out = session.posargs[0] if session.posargs else "out/demo"
    session.run("flipclock", "demo", "--out", out)


@nox.session(python=PY)
def bench(session: nox.Session) -> None:
    """Benchmarks: print figures and write out/bench/bench.csv (no pass/fail)."""
    _install(session, "[test,bench]")
    session.run("python", "-m", "flipclock.bench", *session.posargs)


@nox.session(python=PY)
def crosscheck(session: nox.Session) -> None:
    """The full engine proof: 10,000 transitions x 5 periods on Icarus and Verilator, unit and
    Liberty delays, inertial (both) and transport (Icarus), per-pin on Icarus."""
    _install(session)
    for design in ("rtl/booth8", "rtl/booth8_ks", "rtl/booth8_osu018"):
        session.run("flipclock", "crosscheck", design, "--out", f"out/crosscheck/{design[4:]}")
    session.run("flipclock", "crosscheck", "rtl/booth8_osu018", "--per-pin", "--simulators",
                "icarus", "--out", "out/crosscheck/booth8_osu018_per_pin")


@nox.session(python=PY)
def tables(session: nox.Session) -> None:
    """Exhaustive error tables (2^32 transitions) of the committed 8-bit designs."""
    _install(session)
    session.run("flipclock", "errtable", "rtl/booth8", "--period-frac",
                "0.6,0.7,0.8,0.9,0.95,1", "--out", "tables/booth8")
    session.run("flipclock", "errtable", "rtl/booth8_osu018", "--period-frac", "0.6,0.8,1",
                "--out", "tables/booth8_osu018")


@nox.session(python=PY)
def signoff(session: nox.Session) -> None:
    """Last wrong capture per delay semantics against OpenSTA (results/signoff/)."""
    _install(session)
    session.run("python", "scripts/signoff.py", "--out", "results/signoff", "--force",
                *session.posargs)


def _study(session: nox.Session, *command: str) -> None:
    """Run a full study into ``results/<name>`` (resumable: its ``.flipclock`` marker is
    committed) and refresh ``results/claims.md`` and the README's blocks from the reports."""
    _install(session)
    session.run("flipclock", *command, *session.posargs)
    session.run("python", "scripts/readme_results.py")


@nox.session(name="study-timing", python=PY)
def study_timing(session: nox.Session) -> None:
    """Wu et al. (Tables III-V) on LeNet-5 / FashionMNIST, 3 trained models: the paper's
    uniform Table III at the period whose TError drop matches the paper's (a rule fixed in
    code), every period 32-45 x both regulations, the weight on port b, and the
    measured-activation and dataflow variants as labelled extras -> results/timing."""
    _study(session, "nn", "timing-study", "--model", "lenet5", "--dataset", "fmnist",
           "--table", "tables/booth8", "--build-tables", "--period-range", "32:45",
           "--models", "3", "--threads", "2", "--dataflow", "ws-markov",
           "--work", "out/study-timing-work", "--out", "results/timing")


@nox.session(name="study-flatenn", python=PY)
def study_flatenn(session: nox.Session) -> None:
    """FlatENN on LeNet-5 / FashionMNIST, 3 trained models per variant: 4-bit standard, AS,
    SAQ, AS+SAQ and the SAQ controls under SRAM bit-flip / SA0 / SA1 weight faults, rates per
    stored bit and per weight, alpha and rho chosen on a validation split -> results/flatenn."""
    _study(session, "flatenn", "study", "--model", "lenet5", "--dataset", "fmnist",
           "--models", "3", "--threads", "2", "--out", "results/flatenn")


@nox.session(name="study-harden", python=PY)
def study_harden(session: nox.Session) -> None:
    """Vulnerability-based hardening and pruning on LeNet-5 / FashionMNIST, 3 trained models
    x 2 fine-tuning seeds, BER tolerance by bisection -> results/harden."""
    _study(session, "harden", "study", "--model", "lenet5", "--dataset", "fmnist",
           "--models", "3", "--finetune-seeds", "2", "--threads", "2",
           "--out", "results/harden")


@nox.session(name="study-harden-vgg", python=PY)
def study_harden_vgg(session: nox.Session) -> None:
    """A lighter extra, not a committed result: the hardening study on the small VGG (20
    repetitions on 500 images, 2 fine-tuning epochs, a coarser pruning grid) -> out/."""
    _install(session)
    session.run("flipclock", "harden", "study", "--model", "vgg_small", "--dataset", "fmnist",
                "--threads", "2", "--reps", "20", "--int8-reps", "5", "--eval-samples", "500",
                "--prune-ratios", "0.5,0.75", "--prune-grid", "0.25,0.5,0.75",
                "--finetune-epochs", "2", "--out", "out/harden-vgg_small", *session.posargs)
