"""The FlatENN study (Malhotra & Gupta): ``flipclock flatenn study|bench``.

Standard and activation-sparse (AS) 4-bit networks, trained conventionally and with
sharpness-aware quantization (SAQ), under bit-flip and stuck-at faults in the SRAM weight
buffer; loss landscapes; a report beside the paper's numbers.

Modules, one job each: :mod:`.config` (settings), :mod:`.training` (the four models),
:mod:`.campaign` (fault trials, pairing, rho ablation), :mod:`.landscapes`, :mod:`.summary`,
:mod:`.claims`, :mod:`.figures`, :mod:`.report`, :mod:`.study` (the steps in order),
:mod:`.bench` and :mod:`.command` (the CLI). The methods (SAQ, sparsity, SRAM faults,
landscapes) live in :mod:`nnmap`. Only the command is imported here, so ``flipclock --help``
does not load torch.
"""

from __future__ import annotations

from .bench import bench_sram_trial
from .command import quick_demo, register, run

__all__ = ["NAME", "TITLE", "bench_sram_trial", "quick_demo", "register", "run"]

NAME = "flatenn"
TITLE = "FlatENN: SRAM weight faults, SAQ and activation sparsity"
"""The command group: ``flipclock flatenn ...``."""
