"""The one base of every user error ``hw`` raises (a bad width, tree, depth ...)."""

from __future__ import annotations

__all__ = ["HWError", "HWTypeError"]


def _one_line(message: object) -> object:
    # A user error is one line by construction: a wrapped library message (pyarrow,
    # pyverilog, json) may carry newlines, which would break the CLI's one-line promise.
    if isinstance(message, str) and "\n" in message:
        return " ".join(part.strip() for part in message.splitlines() if part.strip())
    return message


class HWError(ValueError):
    """A hardware parameter the user can fix; the message names the fix.

    Subclasses ``ValueError`` so ``except ValueError`` in existing user code keeps working.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(_one_line(a) for a in args[:1]), *args[1:])


class HWTypeError(HWError, TypeError):
    """A hardware parameter of the wrong type (also a ``TypeError``)."""
