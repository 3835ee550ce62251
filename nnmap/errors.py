"""The one base of every user error ``nnmap`` raises.

Deriving from :class:`NNMapError` marks a problem the user can fix (unknown model, bad data
folder, inconsistent settings); the CLI prints it in one line. Everything else is a bug.
This module imports nothing heavy, so the CLI can name the base without loading torch.
"""

from __future__ import annotations

__all__ = ["NNMapError"]


class NNMapError(ValueError):
    """Base of ``nnmap``'s user errors (a ``ValueError``, as they all were before)."""
