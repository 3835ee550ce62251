"""``flipclock flatenn``: the FlatENN study (sharpness-aware quantization vs SRAM weight faults).

``flipclock flatenn study --model lenet5 --dataset fmnist --out DIR`` trains (or reuses from
the cache) the standard, activation-sparse, standard+SAQ and AS+SAQ 4-bit networks, runs the
Monte Carlo fault campaigns (resumable: run the same command again after an interruption),
computes the loss landscapes and writes ``DIR/report.md`` with its figures and data files.
``--quick`` is a small version for a demo (a couple of minutes on two cores).

``flipclock flatenn bench`` times a fault trial against a clean inference.

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
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}"
                                         ) from None


def _kinds(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def register(subparsers: Any) -> None:
    """Add the ``flatenn`` command group to the CLI's subparsers."""
    p = subparsers.add_parser(
        "flatenn", help="FlatENN study: activation sparsity, SAQ and SRAM weight faults",
        description="Reproduce FlatENN (Malhotra & Gupta): 4-bit QAT standard and "
        "activation-sparse networks, trained conventionally and with sharpness-aware "
        "quantization, under bit-flip and stuck-at faults in the SRAM weight buffer.")
    sub = p.add_subparsers(dest="flatenn_command", metavar="ACTION", required=True)
    s = sub.add_parser(
        "study", help="train the four models, run the fault campaigns, write the report",
        description="Train (or load from the cache) the standard, AS, standard+SAQ and AS+SAQ "
        "models, run fault type x rate x trial campaigns (resumable), compute loss landscapes "
        "and write a Markdown report with figures into --out.")
    s.add_argument("--model", default="lenet5", help="lenet5 (default), resnet20 or resnet18")
    s.add_argument("--dataset", default="fmnist",
                   help="fmnist (default), fashion-mnist-subset, mnist or cifar10")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--quick", action="store_true",
                   help="small study (few epochs, few trials, subsets) for demos and tests")
    s.add_argument("--epochs", type=int, default=None,
                   help="conventional epochs (SAQ models get half)")
    s.add_argument("--trials", type=int, default=None, help="Monte Carlo trials per point")
    s.add_argument("--rates", type=_floats, default=None,
                   help="fault rates as fractions, e.g. 0,0.01,0.02 (default: the paper's)")
    s.add_argument("--kinds", type=_kinds, default=None, help="fault kinds (flip,sa0,sa1)")
    s.add_argument("--alphas", type=_floats, default=None,
                   help="candidate L1 strengths for the AS model")
    s.add_argument("--rhos", type=_floats, default=None, help="candidate SAQ radii")
    s.add_argument("--weight-bits", type=int, default=None, help="weight bits (default 4)")
    s.add_argument("--act-bits", type=int, default=None, help="activation bits (default 4)")
    s.add_argument("--sram", default=None, metavar="WxD[xB]",
                   help="weight buffer geometry, e.g. 64x4096 (default: fitted to the model)")
    s.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    s.add_argument("--fault-seed", type=int, default=None, help="fault-map seed (default 0)")
    s.add_argument("--train-limit", type=int, default=None,
                   help="use only the first N training images")
    s.add_argument("--test-limit", type=int, default=None,
                   help="use only the first N test images")
    s.add_argument("--data-dir", default=None, help="folder with the data set files")
    s.add_argument("--cache", default=None, help="checkpoint cache (default ~/.cache/flipclock)")
    s.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run the campaign on a Dask cluster: a scheduler address, or 'local'")
    s.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    s.add_argument("--force", action="store_true",
                   help="discard a campaign of other settings found in --out")
    s.set_defaults(func=run)
    b = sub.add_parser("bench", help="time a fault trial against a clean inference",
                       description="Train (or load) the quick standard LeNet-5 and time a "
                       "5 %% bit-flip trial against one clean inference (target <= 1.2x).")
    b.add_argument("--dataset", default="fmnist")
    b.add_argument("--data-dir", default=None)
    b.add_argument("--cache", default=None)
    b.add_argument("--repeats", type=int, default=5)
    b.set_defaults(func=run)


def _user_errors() -> tuple[type[BaseException], ...]:
    from nnmap.campaign import CampaignError
    from nnmap.data import DataError
    from nnmap.flatenn import FlatStudyError
    from nnmap.landscape import LandscapeError
    from nnmap.models import ModelError
    from nnmap.qat import QATError
    from nnmap.saq import SAQError
    from nnmap.sparsity import SparsityError
    from nnmap.sram_faults import SramFaultError, SramLayoutError

    return (CampaignError, DataError, FlatStudyError, LandscapeError, ModelError, QATError,
            SAQError, SparsityError, SramFaultError, SramLayoutError)


def _study_config(args: argparse.Namespace) -> Any:
    from nnmap.flatenn import FlatStudyConfig

    changes: dict[str, Any] = {}
    for arg, key in (("epochs", "epochs"), ("trials", "trials"), ("rates", "rates"),
                     ("kinds", "kinds"), ("alphas", "alphas"), ("rhos", "rhos"),
                     ("weight_bits", "weight_bits"), ("act_bits", "act_bits"),
                     ("sram", "sram"), ("seed", "seed"), ("fault_seed", "fault_seed"),
                     ("train_limit", "train_limit"), ("test_limit", "test_limit")):
        value = getattr(args, arg)
        if value is not None:
            changes[key] = value
    return FlatStudyConfig.for_model(args.model, args.dataset, quick=args.quick, **changes)


def run(args: argparse.Namespace) -> int:
    """Run ``flipclock flatenn ACTION``; nnmap errors become :class:`UserError`."""
    import torch

    try:
        if args.flatenn_command == "bench":
            return _bench(args)
        torch.set_num_threads(max(1, args.threads))
        from nnmap.flatenn import run_study

        config = _study_config(args)
        from .cli import _dask_client

        with _dask_client(args.dask) as client:
            result = run_study(config, args.out, data_dir=args.data_dir, cache=args.cache,
                               client=client, force=args.force)
        for line in result.headline_lines():
            print(line)
        return 0
    except _user_errors() as exc:
        raise UserError(str(exc)) from None


def bench_sram_trial(dataset: str = "fmnist", data_dir: str | None = None,
                     cache: str | None = None, repeats: int = 5) -> dict[str, float]:
    """Time a 5 % bit-flip SRAM fault trial of the quick 4-bit LeNet-5 against one clean
    inference over the test set (one thread; target <= 1.2x, never asserted)."""
    import torch

    from nnmap.flatenn import FlatStudyConfig, bench_fault_trial, load_study_data
    from nnmap.saq import train_flat
    from nnmap.sram_faults import WeightLayout

    torch.set_num_threads(1)
    cfg = FlatStudyConfig.for_model("lenet5", dataset, quick=True, test_limit=None)
    data = load_study_data(cfg, data_dir)
    net = train_flat(cfg.train_config(), data, cache=cache, progress=False).net
    return bench_fault_trial(net, WeightLayout.from_net(net), data.test, repeats=repeats)


def _bench(args: argparse.Namespace) -> int:
    bench_sram_trial(args.dataset, args.data_dir, args.cache, args.repeats)
    return 0


def quick_demo(out: Path) -> list[str]:
    """Run ``flipclock flatenn study --quick`` into ``out``; return a few summary lines."""
    import torch

    from nnmap.flatenn import FlatStudyConfig, run_study

    torch.set_num_threads(1)
    try:
        result = run_study(FlatStudyConfig.for_model("lenet5", "fashion-mnist", quick=True),
                           Path(out), progress=False)
    except _user_errors() as exc:
        raise UserError(str(exc)) from None
    return result.headline_lines()
