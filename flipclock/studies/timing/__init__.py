"""The timing-error study of Wu et al. (section IV, Tables IV-VI): ``flipclock nn timing-study``.

One folder, one job per module:

* :mod:`.config` -- :class:`TimingStudyConfig` (a :class:`~flipclock.studies.base.StudyConfig`),
  the ``--quick`` and full presets, the accuracy variants (headline: the paper's uniform
  Table III; extras: measured-activation Table III);
* :mod:`.tables` -- the uniform error tables: read, checked, planned before work, built after;
* :mod:`.dataflow_tables` -- per-layer tables under a weight-stationary dataflow;
* :mod:`.study` -- :class:`ModelRun` (one trained model, scenarios as resumable trials) and
  :func:`run_study` (``--models`` models; the headline at every period, then the extras at the
  period the rule picks);
* :mod:`.claims` -- nested intervals over models x seeds, the pre-registered period rule, the
  claims' three-way verdicts;
* :mod:`.ports` -- which port should hold the weight: per-code facts of the table;
* :mod:`.report`, :mod:`.figures` -- ``headline.md``, Table V over every period, the extras,
  ``summary.csv``, ``report.md``, the figure;
* :mod:`.command` -- the parser, the checks before any work, :func:`run` and
  :func:`quick_demo`.

The methods it composes live in ``nnmap`` (:mod:`nnmap.timing` injection,
:mod:`nnmap.mitigation`, :mod:`nnmap.sensitivity`, :mod:`nnmap.dataflow`). Torch is imported
only when the study runs, so ``flipclock --help`` stays fast.
"""

from __future__ import annotations

from .command import parse, quick_demo, register, run
from .config import FULL, HEADLINE_VARIANTS, QUICK, VARIANTS, StudyError, TimingStudyConfig

__all__ = ["FULL", "HEADLINE_VARIANTS", "NAME", "QUICK", "TITLE", "VARIANTS", "StudyError",
           "TimingStudyConfig", "parse", "quick_demo", "register", "run"]

NAME = "nn"
TITLE = "timing errors: weight distribution + error-aware quantization"
"""The command group: ``flipclock nn timing-study``."""
