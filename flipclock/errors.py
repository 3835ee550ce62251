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


def _one_line(message: object) -> object:
    # A user error is one line by construction: a wrapped library message (pyarrow,
    # pyverilog, json) may carry newlines, which would break the CLI's one-line promise.
    if isinstance(message, str) and "\n" in message:
        return " ".join(part.strip() for part in message.splitlines() if part.strip())
    return message


class UserError(Exception):
    """A problem the user can fix (bad argument, missing file, malformed input)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(_one_line(a) for a in args[:1]), *args[1:])


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
