"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A problem the user can fix (bad argument, missing file, malformed input).

    The CLI prints ``flipclock: error: <message>`` and exits with status 2; anything else
    is a bug and keeps its traceback.
    """
