"""The one base of every user error ``sim`` raises.

Anything deriving from :class:`SimError` is a problem in the user's input or environment
(a malformed netlist, a missing simulator, a full disk) and its message names the fix; the
CLI prints it in one line. Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["OutputError", "SimError"]


class SimError(Exception):
    """Base of ``sim``'s user errors."""


class OutputError(SimError, OSError):
    """An output file or folder cannot be written (full disk, read-only, locked, not ours)."""
