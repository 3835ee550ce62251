"""The studies wing: one folder per study, each on the small base in :mod:`.base`.

A study is a package ``flipclock/studies/<name>/`` whose ``__init__`` exposes

* ``NAME`` -- the command group (``flipclock <NAME> ...``);
* ``TITLE`` (optional) -- one line for the demo's report;
* ``register(subparsers)`` -- adds its parser, with ``set_defaults(func=run)``;
* ``run(args) -> int`` -- runs it; raises user errors (see :mod:`flipclock.errors`);
* optionally ``quick_demo(out) -> list[str]`` -- its ``--quick`` form for ``flipclock demo``.

Adding a study is that folder plus one line in :data:`STUDIES` (or a call to
:func:`register_study` for a study that lives outside the package; the tests do that with
``tests/example_study``). Torch and nnmap are imported inside ``run`` only, so
``flipclock --help`` stays fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["STUDIES", "load_studies", "register_study"]

STUDIES: list[str] = [
    "flipclock.studies.timing",
    "flipclock.studies.flatenn",
    "flipclock.studies.harden",
]
"""Importable module names of the registered studies, in CLI and demo order."""


def register_study(module: str) -> None:
    """Register one more study module (by import name) for the CLI and the demo."""
    if module not in STUDIES:
        STUDIES.append(module)


def load_studies() -> list[ModuleType]:
    """Import every registered study module (a study without the interface is a bug)."""
    mods = []
    for name in STUDIES:
        mod = importlib.import_module(name)
        missing = [a for a in ("NAME", "register", "run") if not hasattr(mod, a)]
        if missing:
            raise TypeError(f"study module {name} lacks {', '.join(missing)}")
        mods.append(mod)
    return mods
