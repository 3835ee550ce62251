"""nox sessions, named by purpose.

``nox -s tests`` is the whole test suite (both HDL simulators included) and is exactly what
CI runs; ``nox -s demo`` runs the main job end to end on the embedded default.
"""

from __future__ import annotations

import nox

# torch comes from the machine's local CPU wheel (torch==2.13.0); uv does not see it.
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PY = "3.11"


def _install(session: nox.Session, extras: str = "") -> None:
    session.install("torch==2.13.0")
    session.install("-e", f".{extras}")


@nox.session(python=PY)
def tests(session: nox.Session) -> None:
    """The whole test suite: unit tests, both simulators (Icarus, Verilator), OpenSTA."""
    _install(session, "[test]")
    session.run("pytest", "-n", "2", "--durations=15", *session.posargs)


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
    """Benchmarks: print figures and write them to a CSV (no pass/fail)."""
    _install(session, "[test]")
    session.run("python", "-m", "flipclock.bench", *session.posargs)
