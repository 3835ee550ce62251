"""A Dask client for ``--dask ADDRESS``: a scheduler address, or ``local`` for a local cluster.

The address is checked before any work starts (:func:`check_dask_address`); an unreachable
scheduler is one line naming the fix.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from .errors import SimError

__all__ = ["DaskError", "check_dask_address", "dask_client"]

_ADDRESS = re.compile(r"^(?:(tcp|tls|inproc|ws|wss)://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


class DaskError(SimError, ValueError):
    """A ``--dask`` address that is malformed or cannot be reached."""


def check_dask_address(address: str | None) -> None:
    """Refuse a malformed ``--dask`` value (cheap; connects to nothing)."""
    if address is None or address == "local":
        return
    m = _ADDRESS.match(address)
    port = int(address.rsplit(":", 1)[1]) if m else 0
    if not m or not 0 < port < 65536:
        raise DaskError(f"--dask takes 'local' or a scheduler address like tcp://host:8786, "
                        f"not {address!r}")


@contextlib.contextmanager
def dask_client(address: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address`` (``local`` starts a local cluster), or None."""
    if not address:
        yield None
        return
    check_dask_address(address)
    from distributed import Client, LocalCluster

    try:
        client = (Client(LocalCluster(processes=True, threads_per_worker=1))
                  if address == "local" else Client(address, timeout=10))
    except (OSError, TimeoutError, ValueError) as exc:
        raise DaskError(f"Cannot reach the Dask scheduler {address!r} ({exc}); check the "
                        "address or use --dask local") from None
    try:
        yield client
    finally:
        client.close()
