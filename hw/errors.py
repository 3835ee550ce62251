"""The one base of every user error ``hw`` raises (a bad width, tree, depth ...)."""

from __future__ import annotations

__all__ = ["HWError", "HWTypeError"]


class HWError(ValueError):
    """A hardware parameter the user can fix; the message names the fix.

    Subclasses ``ValueError`` so ``except ValueError`` in existing user code keeps working.
    """


class HWTypeError(HWError, TypeError):
    """A hardware parameter of the wrong type (also a ``TypeError``)."""
