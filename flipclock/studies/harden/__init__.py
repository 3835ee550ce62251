"""Vulnerability-based hardening and pruning (Ahmadilivani et al., 2024): ``flipclock harden
study``.

One folder, one job per module:

* :mod:`.config` -- :class:`HardenStudyConfig` (a :class:`~flipclock.studies.base.StudyConfig`)
  and its ``--quick`` sizes;
* :mod:`.workspace` -- the output folder, the saved variants, the resumable campaigns;
* :mod:`.trials` -- the two trial functions (parameter bit flips; faults in one channel);
* :mod:`.variants` -- the hardened, TMR and INT8 variants;
* :mod:`.ranking` -- Eq. (1) validated against per-channel fault injection;
* :mod:`.pruning` -- Fig. 5 and the Table II ratio search;
* :mod:`.analysis` -- tolerated BERs, the BER rules, overheads;
* :mod:`.claims` -- the paper's claims with their verdicts;
* :mod:`.figures`, :mod:`.report` -- the PNG figures and ``report.md``;
* :mod:`.study` -- :func:`run_study`, the steps in order;
* :mod:`.command` -- the parser, the checks before any work, :func:`run`, :func:`quick_demo`.

The methods it composes live in ``nnmap`` (:mod:`nnmap.vulnerability`, :mod:`nnmap.harden`,
:mod:`nnmap.prune`, :mod:`nnmap.bitflip`). Torch is imported only when the study runs, so
``flipclock --help`` stays fast.
"""

from __future__ import annotations

from .command import quick_demo, register, run
from .config import HardenStudyConfig, HardenStudyError

__all__ = ["NAME", "TITLE", "HardenStudyConfig", "HardenStudyError", "quick_demo", "register",
           "run"]

NAME = "harden"
TITLE = "vulnerability-based hardening and pruning"
"""The command group: ``flipclock harden study``."""
