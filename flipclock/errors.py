"""User errors versus bugs, decided in one place.

Each package has one base for the errors a user can cause: :class:`hw.errors.HWError`,
:class:`sim.errors.SimError`, :class:`nnmap.errors.NNMapError`, and :class:`UserError` for
the CLI and the studies. :func:`user_errors` returns those bases; the CLI catches exactly
them, prints ``flipclock: error: <message>`` and exits with status 2. Any other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

__all__ = ["UserError", "user_errors"]


class UserError(Exception):
    """A problem the user can fix (bad argument, missing file, malformed input)."""


_BASES = (("hw.errors", "HWError"), ("sim.errors", "SimError"), ("nnmap.errors", "NNMapError"))


def user_errors() -> tuple[type[BaseException], ...]:
    """The user-error bases of every package loaded so far.

    A package that was never imported cannot have raised, so it is not imported here: this
    keeps ``flipclock --help`` free of torch.
    """
    found: list[type[BaseException]] = [UserError]
    for module, name in _BASES:
        mod = sys.modules.get(module)
        if mod is not None:
            found.append(getattr(mod, name))
    return tuple(found)
