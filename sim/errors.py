"""The one base of every user error ``sim`` raises.

Anything deriving from :class:`SimError` is a problem in the user's input or environment
(a malformed netlist, a missing simulator, a full disk) and its message names the fix; the
CLI prints it in one line. Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["OutputError", "SimError"]


def _one_line(message: object) -> object:
    # A user error is one line by construction: a wrapped library message (pyarrow,
    # pyverilog, json) may carry newlines, which would break the CLI's one-line promise.
    if isinstance(message, str) and "\n" in message:
        return " ".join(part.strip() for part in message.splitlines() if part.strip())
    return message


class SimError(Exception):
    """Base of ``sim``'s user errors."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(_one_line(a) for a in args[:1]), *args[1:])


class OutputError(SimError, OSError):
    """An output file or folder cannot be written (full disk, read-only, locked, not ours)."""
