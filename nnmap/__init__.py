"""Neural-network mapping: quantized inference with timing errors and memory faults.

Reads error tables and fault maps as files; never imports the simulators.
"""

from __future__ import annotations

__all__: list[str] = []
