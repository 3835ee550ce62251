"""The one base of every user error ``nnmap`` raises.

Deriving from :class:`NNMapError` marks a problem the user can fix (unknown model, bad data
folder, inconsistent settings); the CLI prints it in one line. Everything else is a bug.
This module imports nothing heavy, so the CLI can name the base without loading torch.
"""

from __future__ import annotations

__all__ = ["NNMapError"]


def _one_line(message: object) -> object:
    # A user error is one line by construction: a wrapped library message (pyarrow,
    # pyverilog, json) may carry newlines, which would break the CLI's one-line promise.
    if isinstance(message, str) and "\n" in message:
        return " ".join(part.strip() for part in message.splitlines() if part.strip())
    return message


class NNMapError(ValueError):
    """Base of ``nnmap``'s user errors (a ``ValueError``, as they all were before)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(_one_line(a) for a in args[:1]), *args[1:])
