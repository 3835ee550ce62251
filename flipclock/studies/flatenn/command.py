"""``flipclock flatenn study|bench``: the parser and the run.

Every argument is checked before work starts: the parser's types (:mod:`flipclock.args`;
model, data set, fault kinds and units against the nnmap registries), then the settings
(:class:`.config.FlatStudyConfig`), the output folder, the validation split and the SRAM
layout of the model. Only then is ``--out`` claimed (:func:`sim.atomic.output_folder`) and
anything trained. torch and nnmap are imported when a value is parsed or the command runs,
so ``flipclock --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flipclock.args import existing_folder, float_list, folder, positive_int, seed

__all__ = ["quick_demo", "register", "run"]


def _model(text: str) -> str:
    from nnmap.saq import FLAT_MODELS

    if text not in FLAT_MODELS:
        raise argparse.ArgumentTypeError(f"unknown model {text!r}; choose from "
                                         f"{', '.join(FLAT_MODELS)}")
    return text


def _dataset(text: str) -> str:
    from nnmap.data import DATASETS

    if text.lower() not in DATASETS:
        raise argparse.ArgumentTypeError(f"unknown data set {text!r}; choose from "
                                         f"{', '.join(DATASETS)}")
    return text


def _kinds(text: str) -> tuple[str, ...]:
    from flipclock.args import choice_list
    from nnmap.sram_faults import FAULT_KINDS

    return choice_list(FAULT_KINDS)(text)


def _units(text: str) -> tuple[str, ...]:
    from flipclock.args import choice_list
    from nnmap.sram_faults import FAULT_UNITS

    return choice_list(FAULT_UNITS)(text)


def _study_parser(sub: Any) -> None:
    s = sub.add_parser(
        "study", help="train every variant N times, run the fault campaigns, write the report",
        description="Train (or load from the cache) the standard, AS, standard+SAQ and AS+SAQ "
        "models and the SAQ controls, each --models times, choose alpha and rho on a "
        "validation split of the training data, run fault kind x rate x trial campaigns with "
        "the rate counted per stored bit and per stored weight (resumable: run the same "
        "command again after an interruption), compute loss landscapes and write "
        "headline.md, a Markdown report with figures and CSV tables into --out.")
    s.add_argument("--model", type=_model, default="lenet5",
                   help="lenet5 (default), resnet20 or resnet18")
    s.add_argument("--dataset", type=_dataset, default="fmnist",
                   help="fmnist (default), fashion-mnist-subset, mnist or cifar10")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--quick", action="store_true",
                   help="small study (1 model, few epochs and trials, subsets) for demos and "
                   "tests; its report says QUICK")
    s.add_argument("--models", type=positive_int, default=None,
                   help="trained models (training seeds) per variant (default 3; quick 1)")
    s.add_argument("--epochs", type=positive_int, default=None,
                   help="conventional epochs (paper-faithful SAQ models get half)")
    s.add_argument("--trials", type=positive_int, default=None,
                   help="fault maps per model and point")
    s.add_argument("--rates", type=float_list(0.0, 1.0), default=None,
                   help="fault rates as fractions in [0, 1], e.g. 0,0.01,0.02")
    s.add_argument("--kinds", type=_kinds, default=None, help="fault kinds (flip,sa0,sa1)")
    s.add_argument("--units", type=_units, default=None,
                   help="fault-rate definitions: bit (per stored bit), weight (per stored "
                   "weight); default both")
    s.add_argument("--alphas", type=float_list(0.0, lo_open=True), default=None,
                   help="candidate L1 strengths for the AS model (numbers > 0)")
    s.add_argument("--rhos", type=float_list(0.0, lo_open=True), default=None,
                   help="candidate SAQ radii (numbers > 0)")
    s.add_argument("--val-size", type=positive_int, default=None,
                   help="validation images carved from the training set (default 5000)")
    s.add_argument("--trial-images", type=positive_int, default=None,
                   help="test images per fault trial (default 2000)")
    s.add_argument("--no-controls", action="store_true",
                   help="skip the SAQ controls (equal epochs, warm start)")
    s.add_argument("--no-landscapes", action="store_true", help="skip the loss landscapes")
    s.add_argument("--weight-bits", type=positive_int, default=None,
                   help="weight bits (default 4)")
    s.add_argument("--act-bits", type=positive_int, default=None,
                   help="activation bits (default 4)")
    s.add_argument("--sram", default=None, metavar="WxD[xB]",
                   help="weight buffer geometry, e.g. 64x4096 (default: fitted to the model)")
    s.add_argument("--seed", type=seed, default=None, help="first training seed (default 0)")
    s.add_argument("--fault-seed", type=seed, default=None, help="fault-map seed (default 0)")
    s.add_argument("--train-limit", type=positive_int, default=None,
                   help="use only the first N training images")
    s.add_argument("--test-limit", type=positive_int, default=None,
                   help="use only the first N test images")
    s.add_argument("--data-dir", type=existing_folder, default=None,
                   help="folder with the data set files")
    s.add_argument("--cache", type=folder, default=None,
                   help="checkpoint cache (default ~/.cache/flipclock)")
    s.add_argument("--threads", type=positive_int, default=1,
                   help="worker processes of one torch thread each for training, fault "
                   "trials and landscapes (default 1: all in this process)")
    s.add_argument("--force", action="store_true",
                   help="write into a folder flipclock did not create, and discard a campaign "
                   "of other settings found in --out")
    s.set_defaults(func=run)


def register(subparsers: Any) -> None:
    """Add the ``flatenn`` command group to the CLI's subparsers."""
    p = subparsers.add_parser(
        "flatenn", help="FlatENN study: activation sparsity, SAQ and SRAM weight faults",
        description="Reproduce FlatENN (Malhotra & Gupta): 4-bit QAT standard and "
        "activation-sparse networks, trained conventionally and with sharpness-aware "
        "quantization, under bit-flip and stuck-at faults in the SRAM weight buffer.")
    sub = p.add_subparsers(dest="flatenn_command", metavar="ACTION", required=True)
    _study_parser(sub)
    b = sub.add_parser("bench", help="time a fault trial against a clean inference",
                       description="Train (or load) the quick standard LeNet-5 and time a "
                       "5 % bit-flip trial against one clean inference (target <= 1.2x).")
    b.add_argument("--dataset", type=_dataset, default="fmnist",
                   help="fmnist (default), fashion-mnist-subset, mnist or cifar10")
    b.add_argument("--data-dir", type=existing_folder, default=None,
                   help="folder with the data set files")
    b.add_argument("--cache", type=folder, default=None,
                   help="checkpoint cache (default ~/.cache/flipclock)")
    b.add_argument("--repeats", type=positive_int, default=5,
                   help="timed repeats; the best counts (default 5)")
    b.set_defaults(func=run)


def study_config(args: argparse.Namespace) -> Any:
    """The :class:`.config.FlatStudyConfig` the arguments name (validated)."""
    from .config import FlatStudyConfig

    changes: dict[str, Any] = {}
    for key in ("models", "epochs", "trials", "rates", "kinds", "units", "alphas", "rhos",
                "val_size", "trial_images", "weight_bits", "act_bits", "sram", "seed",
                "fault_seed", "train_limit", "test_limit"):
        value = getattr(args, key)
        if value is not None:
            changes[key] = value
    if args.no_controls:
        changes["controls"] = False
    if args.no_landscapes:
        changes["landscapes"] = False
    if args.kinds is not None and "flip" not in args.kinds and not args.no_controls:
        changes.setdefault("control_kinds", (args.kinds[0],))
    return FlatStudyConfig.for_model(args.model, args.dataset, quick=args.quick, **changes)


def _check_cache(cache: str | None) -> None:
    from .config import FlatStudyError

    if cache is not None and Path(cache).exists() and not Path(cache).is_dir():
        raise FlatStudyError(f"--cache {cache!r} is a file; give a folder")


def _study(args: argparse.Namespace) -> int:
    import torch

    from sim.atomic import check_output_path, output_folder

    from .config import load_study_data, training_split
    from .study import run_study, study_layout

    config = study_config(args)
    _check_cache(args.cache)
    check_output_path(args.out, force=args.force)
    data = load_study_data(config, args.data_dir)
    training_split(config, data)  # the validation split leaves training images
    study_layout(config, data)  # SRAM fits the model
    torch.set_num_threads(1)
    with output_folder(args.out, force=args.force):
        result = run_study(config, args.out, data_dir=args.data_dir, cache=args.cache,
                           workers=args.threads, force=args.force)
    for line in result.headline_lines():
        print(line)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``flipclock flatenn ACTION``; user errors derive from the packages' bases."""
    if args.flatenn_command == "bench":
        from .bench import bench_sram_trial

        _check_cache(args.cache)
        bench_sram_trial(args.dataset, args.data_dir, args.cache, args.repeats)
        return 0
    return _study(args)


def quick_demo(out: Path) -> list[str]:
    """Run ``flipclock flatenn study --quick`` into ``out``; return a few summary lines."""
    import torch

    from sim.atomic import output_folder

    from .config import FlatStudyConfig
    from .study import run_study

    torch.set_num_threads(1)
    with output_folder(Path(out)):
        result = run_study(FlatStudyConfig.for_model("lenet5", "fashion-mnist", quick=True),
                           Path(out), progress=False)
    return result.headline_lines()
