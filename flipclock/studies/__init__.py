"""The studies wing: one folder per study, each on the small base in :mod:`.base`.

A study is a package ``flipclock/studies/<name>/`` whose ``__init__`` exposes

* ``NAME`` -- the command group (``flipclock <NAME> ...``);
* ``register(subparsers)`` -- adds its parser, with ``set_defaults(func=run)``;
* ``run(args) -> int`` -- runs it; raises user errors (see :mod:`flipclock.errors`);
* optionally ``quick_demo(out) -> list[str]`` -- its ``--quick`` form for ``flipclock demo``.

Adding a study is that folder plus one line in :data:`STUDIES` (or a call to
:func:`register_study` for a study that lives outside the package). Torch and nnmap are
imported inside ``run`` only, so ``flipclock --help`` stays fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["STUDIES", "load_studies", "register_study"]

STUDIES: list[str] = [
    # TRANSITION (removed when the studies have moved): the old flat modules, skipped once gone.
    "flipclock.study_timing",
    "flipclock.study_flatenn",
    "flipclock.study_harden",
    "flipclock.studies.timing",
    "flipclock.studies.flatenn",
    "flipclock.studies.harden",
]
"""Importable module names of the registered studies, in CLI order."""


def register_study(module: str) -> None:
    """Register one more study module (by import name) for the CLI and the demo."""
    if module not in STUDIES:
        STUDIES.append(module)


def load_studies() -> list[ModuleType]:
    """Import every registered study module."""
    mods = []
    for name in STUDIES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # TRANSITION: a study not moved yet, or gone
            if exc.name != name:
                raise
            continue
        if not hasattr(mod, "NAME"):  # TRANSITION: an old flat module
            mods.append(mod)
            continue
        for attr in ("NAME", "register", "run"):
            if not hasattr(mod, attr):
                raise TypeError(f"study module {name} lacks {attr!r}")
        mods.append(mod)
    return mods
