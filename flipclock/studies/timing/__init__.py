"""The timing-error study of Wu et al. (section IV, Tables IV-VI): ``flipclock nn timing-study``.

One folder, one job per module:

* :mod:`.config` -- :class:`TimingStudyConfig` (a :class:`~flipclock.studies.base.StudyConfig`),
  the ``--quick`` and full presets, the accuracy variants;
* :mod:`.tables` -- the uniform error tables: read, checked, planned before work, built after;
* :mod:`.dataflow_tables` -- per-layer tables under a weight-stationary dataflow;
* :mod:`.study` -- :class:`TimingStudy`: prepare the network, run scenarios as resumable trials;
* :mod:`.claims` -- the paper's shape, the chosen period, the claims' verdicts;
* :mod:`.report`, :mod:`.figures` -- Table V, the mitigation table, ``report.md``, the figure;
* :mod:`.command` -- the parser, the checks before any work, :func:`run` and
  :func:`quick_demo`.

The methods it composes live in ``nnmap`` (:mod:`nnmap.timing` injection,
:mod:`nnmap.mitigation`, :mod:`nnmap.sensitivity`, :mod:`nnmap.dataflow`). Torch is imported
only when the study runs, so ``flipclock --help`` stays fast.
"""

from __future__ import annotations

from .command import parse, quick_demo, register, run
from .config import FULL, QUICK, VARIANTS, StudyError, TimingStudyConfig

__all__ = ["FULL", "NAME", "TITLE", "QUICK", "VARIANTS", "StudyError", "TimingStudyConfig", "parse",
           "quick_demo", "register", "run"]

NAME = "nn"
TITLE = "timing errors: weight distribution + error-aware quantization"
"""The command group: ``flipclock nn timing-study``."""
