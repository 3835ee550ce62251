"""flipclock: gate-level co-simulation of shortened clocks and memory faults for QNNs.

The packages ``hw`` (Amaranth designs), ``sim`` (netlists, delays, simulators) and
``nnmap`` (networks) are independent; this package is the composition root that wires
them into the ``flipclock`` command line.
"""

from __future__ import annotations

from .errors import UserError

__all__ = ["UserError", "__version__"]
__version__ = "0.1.0"
