"""``flipclock harden study``: the parser, the checks before any work, :func:`run` and
:func:`quick_demo`.

Every value is checked by its ``argparse`` type (:mod:`flipclock.args`: NaN, infinity,
zero and negative numbers, ratios out of range), then the settings as a whole, the
``--dask`` address, the model and data set names (against the ``nnmap`` registries), the
data files and ``--out`` -- all before training starts. Torch is imported inside
:func:`run` only, so ``flipclock --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flipclock.args import existing_folder, float_list, folder, nonneg_int, positive_int, seed

from .config import HardenStudyConfig

__all__ = ["quick_demo", "register", "run"]

_bers = float_list(0, 1, lo_open=True)
_ratios = float_list(0, 1, lo_open=True)


def _ber(text: str) -> float:
    """One BER in (0, 1]."""
    values = _bers(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one number in (0, 1], not {text!r}")
    return values[0]


def _open_ratios(text: str) -> tuple[float, ...]:
    """A comma list of pruning ratios, each in (0, 1): pruning all channels leaves no layer."""
    values = _ratios(text)
    for v in values:
        if v >= 1:
            raise argparse.ArgumentTypeError(f"each pruning ratio must lie in (0, 1), not {v:g}")
    return values


def _hardening_ratio(text: str) -> float:
    """One hardening ratio in [0, 1] (0.15 = 15 % of the channels)."""
    values = float_list(0, 1)(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one ratio in [0, 1], not {text!r}")
    return values[0]


_ber.__name__ = "ber"
_open_ratios.__name__ = "pruning ratios"
_hardening_ratio.__name__ = "hardening ratio"

_SETTINGS = (("ber", "bers"), ("reps", "repetitions"), ("int8_reps", "int8_repetitions"),
             ("ratio", "ratio"), ("fig3_ber", "fig3_ber"), ("fig4_ber", "fig4_ber"),
             ("eval_samples", "eval_samples"), ("epochs", "epochs"),
             ("finetune_epochs", "finetune_epochs"), ("seed", "seed"),
             ("prune_ratios", "prune_ratios"), ("prune_grid", "prune_grid"),
             ("models", "models"), ("finetune_seeds", "finetune_seeds"),
             ("finetune_samples", "finetune_samples"), ("train_seed", "train_seed"))
"""``--flag`` attribute -> :class:`HardenStudyConfig` field."""


def register(subparsers: Any) -> None:
    """Add the ``harden`` command group to the CLI's subparsers."""
    p = subparsers.add_parser(
        "harden", help="vulnerability-based hardening (duplication + EDAC) and pruning",
        description="Reproduce Ahmadilivani et al.: duplicate the most vulnerable channels, "
        "correct errors with EDAC layers, compare with TMR, and prune by vulnerability.")
    sub = p.add_subparsers(dest="harden_command", metavar="ACTION", required=True)
    s = sub.add_parser(
        "study", help="train, harden, prune, inject parameter bit flips, write the report",
        description="Train (or load) the baseline, compute Eq. (1) vulnerability and validate "
        "it, build the hardened/TMR/pruned variants, run the resumable bit-flip campaigns and "
        "write report.md with its tables, figures and data files into --out.")
    s.add_argument("--model", default="lenet5",
                   help="network from nnmap's model registry with a plain chain of layers "
                   "(default lenet5; an unknown name lists the choices)")
    s.add_argument("--dataset", default="fmnist",
                   help="data set from nnmap's registry (default fmnist; an unknown name "
                   "lists the choices)")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--quick", action="store_true",
                   help="small study (subset data, few repetitions) for demos and tests; its "
                   "report says QUICK")
    s.add_argument("--models", type=positive_int, default=None,
                   help="independently trained models (training seeds --train-seed, +1, ...; "
                   "default 3, --quick 1); every interval is over them")
    s.add_argument("--train-seed", type=seed, default=None,
                   help="training seed of the first model (default 0)")
    s.add_argument("--finetune-seeds", type=positive_int, default=None,
                   help="fine-tuning seeds per model and pruning point (default 2)")
    s.add_argument("--finetune-samples", type=nonneg_int, default=None,
                   help="training images per fine-tuning (a seeded subset; default 10000; "
                   "0 = all, the paper)")
    s.add_argument("--ber", type=_bers, default=None, metavar="B1,B2,...",
                   help="BER sweep, each in (0, 1] (default 1e-7,1e-6,1e-5,3e-5,1e-4,3e-4,"
                   "1e-3,1e-2,1e-1)")
    s.add_argument("--reps", type=positive_int, default=None,
                   help="fault-injection repetitions per float32 point and per bisection "
                   "point (default 20; the paper used 1000)")
    s.add_argument("--int8-reps", type=positive_int, default=None,
                   help="repetitions per INT8-storage point (default 5)")
    s.add_argument("--ratio", type=_hardening_ratio, default=None,
                   help="hardening ratio in [0, 1] (default 0.15)")
    s.add_argument("--fig3-ber", type=_ber, default=None,
                   help="BER of Fig. 3, in (0, 1] (default: rule)")
    s.add_argument("--fig4-ber", type=_ber, default=None,
                   help="BER of Fig. 4, in (0, 1] (default: rule)")
    s.add_argument("--prune-ratios", type=_open_ratios, default=None, metavar="R1,R2,...",
                   help="Fig. 5 pruning ratios, each in (0, 1) (default 0.5,0.75)")
    s.add_argument("--prune-grid", type=_open_ratios, default=None, metavar="R1,R2,...",
                   help="Table II search grid, each in (0, 1) (default 0.25,0.5,0.75)")
    s.add_argument("--eval-samples", type=nonneg_int, default=None,
                   help="test images per fault trial (default 500; 0 = all)")
    s.add_argument("--epochs", type=positive_int, default=None,
                   help="baseline training epochs (default 3)")
    s.add_argument("--finetune-epochs", type=nonneg_int, default=None,
                   help="fine-tuning epochs after pruning (default 2; the paper 10)")
    s.add_argument("--seed", type=seed, default=None, help="fault and sampling seed (default 0)")
    s.add_argument("--data-dir", type=existing_folder, default=None,
                   help="folder with the data set files")
    s.add_argument("--cache", type=folder, default=None,
                   help="checkpoint cache (default ~/.cache/flipclock)")
    s.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run the campaigns on a Dask cluster: a scheduler address, or 'local'")
    s.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    s.add_argument("--force", action="store_true",
                   help="write into a folder flipclock did not make, and discard campaign "
                   "results of other settings found in --out")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=run)


def study_config(args: argparse.Namespace) -> HardenStudyConfig:
    """The study settings the flags ask for (checked as a whole)."""
    changes = {key: getattr(args, arg) for arg, key in _SETTINGS}
    return HardenStudyConfig.for_model(args.model, args.dataset, quick=args.quick, **changes)


def run(args: argparse.Namespace) -> int:
    """Run ``flipclock harden study``; every check comes before any work."""
    from sim.atomic import check_output_path
    from sim.cluster import check_dask_address, dask_client

    config = study_config(args)
    check_dask_address(args.dask)
    check_output_path(args.out, force=args.force)

    import torch

    from .study import check_study, run_study

    data = check_study(config, args.data_dir)
    torch.set_num_threads(args.threads)
    with dask_client(args.dask) as client:
        result = run_study(config, args.out, data_dir=args.data_dir, cache=args.cache,
                           client=client, force=args.force, progress=not args.no_progress,
                           data=data)
    for line in result.headline_lines():
        print(line)
    return 0


def quick_demo(out: Path) -> list[str]:
    """Run ``flipclock harden study --quick`` into ``out``; return a few summary lines."""
    import torch

    from .study import run_study

    torch.set_num_threads(1)
    result = run_study(HardenStudyConfig.for_model("lenet5", "fmnist", quick=True), Path(out),
                       progress=False, log=lambda _line: None)
    return result.headline_lines()
