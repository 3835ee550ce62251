"""``flipclock harden``: vulnerability-based hardening and pruning (Ahmadilivani et al.).

``flipclock harden study --model lenet5 --dataset fmnist --out DIR`` trains (or reuses from
the cache) the baseline, estimates channel vulnerability (Eq. (1)) and validates it with fault
injection, builds the hardened variants (duplication + EDAC, detection intervals only, TMR),
prunes by vulnerability and by L1 norm with fine-tuning, runs the parameter bit-flip
campaigns (resumable: run the same command again after an interruption; ``--dask`` spreads
them) and writes ``DIR/report.md`` with Table I, Figs. 3-7, Table II and the overheads.
``--quick`` is a small version for demos and tests (a couple of minutes on two cores).

torch and nnmap are imported inside :func:`run` only, so ``flipclock --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import UserError

__all__ = ["quick_demo", "register", "run"]


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}"
                                         ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


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
                   help="lenet5 (default), vgg_small, alexnet, vgg11 or vgg16")
    s.add_argument("--dataset", default="fmnist",
                   help="fmnist (default), fashion-mnist-subset, mnist or cifar10")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--quick", action="store_true",
                   help="small study (subset data, few repetitions) for demos and tests")
    s.add_argument("--ber", type=_floats, default=None, metavar="B1,B2,...",
                   help="BER sweep, each in (0, 1] (default 1e-7,1e-6,1e-5,3e-5,1e-4,3e-4,"
                   "1e-3,1e-2,1e-1)")
    s.add_argument("--reps", type=int, default=None,
                   help="fault-injection repetitions per float32 point (default 100; the "
                   "paper used 1000)")
    s.add_argument("--int8-reps", type=int, default=None,
                   help="repetitions per INT8-storage point (default 30)")
    s.add_argument("--ratio", type=float, default=None,
                   help="hardening ratio in [0, 1] (default 0.15)")
    s.add_argument("--fig3-ber", type=float, default=None, help="BER of Fig. 3 (default: rule)")
    s.add_argument("--fig4-ber", type=float, default=None, help="BER of Fig. 4 (default: rule)")
    s.add_argument("--prune-ratios", type=_floats, default=None, metavar="R1,R2,...",
                   help="Fig. 5 pruning ratios (default 0.25,0.5,0.75,0.9)")
    s.add_argument("--prune-grid", type=_floats, default=None, metavar="R1,R2,...",
                   help="Table II search grid (default 0.1,0.2,...,0.9)")
    s.add_argument("--eval-samples", type=int, default=None,
                   help="test images per fault trial (default 1000; 0 = all)")
    s.add_argument("--epochs", type=int, default=None, help="baseline training epochs")
    s.add_argument("--finetune-epochs", type=int, default=None,
                   help="fine-tuning epochs after pruning (default 10)")
    s.add_argument("--seed", type=int, default=None, help="fault and sampling seed (default 0)")
    s.add_argument("--data-dir", default=None, help="folder with the data set files")
    s.add_argument("--cache", default=None, help="checkpoint cache (default ~/.cache/flipclock)")
    s.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run the campaigns on a Dask cluster: a scheduler address, or 'local'")
    s.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    s.add_argument("--force", action="store_true",
                   help="discard campaign results of other settings found in --out")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=run)


def _user_errors() -> tuple[type[BaseException], ...]:
    from nnmap.bitflip import FaultError
    from nnmap.campaign import CampaignError
    from nnmap.data import DataError
    from nnmap.harden import HardenError
    from nnmap.harden_study import HardenStudyError
    from nnmap.models import ModelError
    from nnmap.prune import PruneError
    from nnmap.train import ConfigError
    from nnmap.vulnerability import VulnerabilityError

    return (FaultError, CampaignError, DataError, HardenError, HardenStudyError, ModelError,
            PruneError, ConfigError, VulnerabilityError)


def _study_config(args: argparse.Namespace) -> Any:
    from nnmap.harden_study import HardenStudyConfig

    changes = {key: getattr(args, arg) for arg, key in (
        ("ber", "bers"), ("reps", "repetitions"), ("int8_reps", "int8_repetitions"),
        ("ratio", "ratio"), ("fig3_ber", "fig3_ber"), ("fig4_ber", "fig4_ber"),
        ("eval_samples", "eval_samples"), ("epochs", "epochs"),
        ("finetune_epochs", "finetune_epochs"), ("seed", "seed"),
        ("prune_ratios", "prune_ratios"), ("prune_grid", "prune_grid"))}
    return HardenStudyConfig.for_model(args.model, args.dataset, quick=args.quick, **changes)


def run(args: argparse.Namespace) -> int:
    """Run ``flipclock harden ACTION``; nnmap errors become :class:`UserError`."""
    import torch

    try:
        torch.set_num_threads(max(1, args.threads))
        from nnmap.harden_study import run_study

        config = _study_config(args)
        from .cli import _dask_client

        with _dask_client(args.dask) as client:
            result = run_study(config, args.out, data_dir=args.data_dir, cache=args.cache,
                               client=client, force=args.force,
                               progress=not args.no_progress)
        for line in result.headline_lines():
            print(line)
        return 0
    except _user_errors() as exc:
        raise UserError(str(exc)) from None


def quick_demo(out: Path) -> list[str]:
    """Run ``flipclock harden study --quick`` into ``out``; return a few summary lines."""
    import torch

    from nnmap.harden_study import HardenStudyConfig, run_study

    torch.set_num_threads(1)
    try:
        result = run_study(HardenStudyConfig.for_model("lenet5", "fmnist", quick=True),
                           Path(out), progress=False, log=lambda _line: None)
    except _user_errors() as exc:
        raise UserError(str(exc)) from None
    return result.headline_lines()
