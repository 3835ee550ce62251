"""The FlatENN study (Malhotra & Gupta): ``flipclock flatenn study|bench``.

Standard and activation-sparse (AS) 4-bit networks, trained conventionally and with
sharpness-aware quantization (SAQ), plus SAQ controls (equal epochs, warm start), each
trained ``--models`` times; bit-flip and stuck-at faults in the SRAM weight buffer with the
fault rate counted per stored bit and per stored weight; loss landscapes; a report and a
headline beside the paper's numbers, every interval over trained models x fault maps.

Modules, one job each: :mod:`.config` (settings, data cuts), :mod:`.pool` (worker
processes), :mod:`.training` (variants, replicates, alpha and rho on validation),
:mod:`.campaign` (fault trials and their pairing), :mod:`.landscapes`, :mod:`.summary`
(nested CIs), :mod:`.claims`, :mod:`.figures`, :mod:`.report` (report and headline),
:mod:`.study` (the steps in order), :mod:`.bench` and :mod:`.command` (the CLI). The
methods (SAQ, sparsity, SRAM faults, landscapes) live in :mod:`nnmap`. Only the command is
imported here, so ``flipclock --help`` does not load torch.
"""

from __future__ import annotations

from .bench import bench_sram_trial
from .command import quick_demo, register, run

__all__ = ["NAME", "TITLE", "bench_sram_trial", "quick_demo", "register", "run"]

NAME = "flatenn"
TITLE = "FlatENN: SRAM weight faults, SAQ and activation sparsity"
"""The command group: ``flipclock flatenn ...``."""
