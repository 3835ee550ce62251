"""``flipclock nn timing-study``: Wu et al.'s timing-error study (Tables IV-VI) end to end.

Wires the three layers: error tables from files (or built here from a design with the
timing engine), a network from ``nnmap`` (trained and cached, INT8-quantized), and the
study runner :class:`nnmap.timing_study.TimingStudy`. With ``--dataflow`` it also derives
each layer's previous-input distribution from the network's real operand streams
(weight-stationary), builds those tables (:mod:`flipclock.dataflow_tables`) and reports
the accuracy predicted under both assumptions.

Example -- the full study (``nox -s study-timing``; about 1.5 h on 2 busy cores, resumable;
``--build-tables`` builds the exhaustive uniform tables of missing periods into
``OUT/tables`` when ``tables/booth8`` lacks them)::

    flipclock nn timing-study --model lenet5 --dataset fmnist --table tables/booth8 \\
        --build-tables --period 28 --period 32 --period 37 --period 41 \\
        --regulation 1.5sigma --regulation 2sigma --seeds 5 --act-dist both \\
        --dataflow ws-marginal --dataflow ws-markov --dataflow-period 32 \\
        --dataflow-period 37 --out out/study-timing
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .errors import UserError

__all__ = ["QUICK", "quick_demo", "register", "run"]

#: What ``--quick`` changes (unless the option is given explicitly).
QUICK: dict[str, Any] = {"epochs": 4, "test_images": 500, "seeds": 3, "sens_images": 2000,
         "stream_images": 500, "batch_size": 500, "periods": (32,), "table_samples": 16,
         "dataflow_sampling": "sample", "dataflow_samples": 16}
FULL: dict[str, Any] = {"epochs": 5, "test_images": None, "seeds": 5, "sens_images": None,
        "stream_images": 2000, "batch_size": 1000, "dataflow_sampling": "exhaustive",
        "dataflow_samples": 64}
DEFAULT_DESIGN = Path("rtl/booth8")


def _nn_group(subparsers: Any) -> Any:
    """The ``nn`` command group's sub-parsers (created here or by a sibling module)."""
    nn = subparsers.choices.get("nn")
    if nn is None:
        nn = subparsers.add_parser(
            "nn", help="neural-network studies on quantized networks",
            description="Studies of INT8 networks under the errors of the simulated hardware.")
    for action in nn._actions:  # reuse the group a sibling study module may have created
        if isinstance(action, argparse._SubParsersAction):
            return action
    return nn.add_subparsers(dest="nn_command", metavar="STUDY", required=True)


def register(subparsers: Any) -> None:
    """Add ``flipclock nn timing-study``."""
    group = _nn_group(subparsers)
    p = group.add_parser(
        "timing-study", help="timing errors, weight distribution and error-aware quantization "
        "(Wu et al., Tables IV-VI)",
        description="Train (cached) and INT8-quantize a network, inject per-multiplication "
        "timing errors from compressed error tables at the given regulation factors, and "
        "compare N_baseline, N_TError, N_WD+EAQ and N_EAQ with 95 %% CIs over seeds (Table V "
        "layout, Markdown and CSV), with Table IV, Fig. 3 and MAC counts. Runs are stored as "
        "they finish: run the same command again to resume.")
    p.add_argument("--model", default="lenet5", help="lenet5 | resnet20 | resnet18")
    p.add_argument("--dataset", default="fashion-mnist",
                   help="fashion-mnist (fmnist) | fashion-mnist-subset | mnist | cifar10")
    p.add_argument("--data-dir", default=None, help="folder with the data set files")
    p.add_argument("--table", type=Path, default=None,
                   help="a compressed_T*.parquet file, or a table folder with --period "
                   "(from `flipclock errtable`); --quick builds a small one when absent")
    p.add_argument("--period", type=int, action="append", default=[],
                   help="clock period (ticks) of the folder's table to study (repeat)")
    p.add_argument("--build-tables", action="store_true",
                   help="build the exhaustive tables of periods missing from the --table "
                   "folder (uniform previous pairs, from --design) into OUT/tables")
    p.add_argument("--regulation", action="append", default=[],
                   help="regulation factor: 1.5sigma, 2sigma, 3sigma or a number in (0, 1] "
                   "(repeat; default 1.5sigma and 2sigma)")
    p.add_argument("--seeds", type=int, default=None, help="runs per setting (default 5)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the error injection")
    p.add_argument("--test-images", type=int, default=None,
                   help="first N test images (default all)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 5)")
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="use this trained model (a flipclock checkpoint .pt or a state_dict) "
                   "instead of training")
    p.add_argument("--no-train", action="store_true",
                   help="fail instead of training when no cached checkpoint exists")
    p.add_argument("--cache", type=Path, default=None, help="checkpoint cache folder")
    p.add_argument("--wd-fraction", type=float, default=0.01,
                   help="fraction of most sensitive weights for weight distribution (0.01)")
    p.add_argument("--act-dist", default="layer", choices=["layer", "uniform", "both"],
                   help="Table III marginal over activations: measured per layer (default), "
                   "uniform (the paper's), or both")
    p.add_argument("--weight-port", default="a", choices=["a", "b"],
                   help="multiplier port carrying the weight (default a)")
    p.add_argument("--weights", default="per-channel", choices=["per-channel", "per-tensor"])
    p.add_argument("--dataflow", action="append", default=[],
                   choices=["ws-marginal", "ws-markov"],
                   help="also build per-layer tables from the network's weight-stationary "
                   "operand streams and compare (repeat)")
    p.add_argument("--dataflow-period", type=int, action="append", default=[],
                   help="periods for the dataflow tables (default: every --period)")
    p.add_argument("--dataflow-sampling", default=None, choices=["exhaustive", "sample"],
                   help="dataflow tables over every previous activation or sampled")
    p.add_argument("--dataflow-samples", type=int, default=None,
                   help="sampled previous activations per current pair (sample mode)")
    p.add_argument("--design", type=Path, default=None,
                   help="multiplier build folder for tables built here (default: the table's "
                   "own design, else rtl/booth8)")
    p.add_argument("--sens-images", type=int, default=None,
                   help="training images for |dL/dw| (default all)")
    p.add_argument("--stream-images", type=int, default=None,
                   help="training images for activation statistics (default 2000)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="small and fast: 4 epochs, 500 test images, 3 seeds, period 32, a "
                   "sampled table built here when --table is absent, sampled dataflow tables")
    p.add_argument("--force", action="store_true",
                   help="discard stored runs made with other settings in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the study; nnmap/sim input errors become one-line :class:`UserError`."""
    from nnmap import (
        CampaignError,
        ConfigError,
        DataError,
        InjectionError,
        ModelError,
        QuantError,
    )
    from nnmap.dataflow import DataflowError
    from nnmap.mitigation import MitigationError
    from nnmap.sensitivity import SensitivityError
    from nnmap.timing_study import StudyError
    from sim.tables import TableError

    errors = (CampaignError, ConfigError, DataError, InjectionError, ModelError, QuantError,
              DataflowError, MitigationError, SensitivityError, StudyError, TableError)
    try:
        lines = _run(args)
    except errors as exc:
        raise UserError(str(exc)) from None
    for line in lines:
        print(line)
    return 0


def _setting(args: argparse.Namespace, name: str, attr: str | None = None) -> Any:
    value = getattr(args, attr or name, None)
    if value is not None:
        return value
    return (QUICK if args.quick else FULL).get(name)


def _config(args: argparse.Namespace) -> Any:
    from nnmap.timing_study import TimingStudyConfig

    acts = ("layer", "uniform") if args.act_dist == "both" else (args.act_dist,)
    return TimingStudyConfig(
        model=args.model, dataset=args.dataset, epochs=_setting(args, "epochs"),
        train_seed=args.train_seed,
        regulations=tuple(args.regulation) or ("1.5sigma", "2sigma"),
        seeds=_setting(args, "seeds"), seed=args.seed,
        test_images=_setting(args, "test_images"), batch_size=_setting(args, "batch_size"),
        wd_fraction=args.wd_fraction, act_dists=acts,
        sens_images=_setting(args, "sens_images"),
        stream_images=_setting(args, "stream_images"), weights=args.weights,
        weight_port=args.weight_port)


def _run(args: argparse.Namespace) -> list[str]:
    import torch

    from nnmap.timing_study import Scenario, TimingStudy, check_table, chosen_period

    torch.set_num_threads(max(1, args.threads))
    config = _config(args)
    out: Path = args.out
    progress = not args.no_progress
    log = print
    tables = _uniform_tables(args, config, out, progress)
    for table, source in tables.values():
        check_table(table, regulations=config.regulations, source=source)
    data, model = _data_and_model(args, config)
    study = TimingStudy(config, out, data=data, cache=args.cache, model=model,
                        progress=progress, log=log)
    study.prepare()
    scenarios = [Scenario(f"T{p}", t, p, prev="uniform") for p, (t, _) in tables.items()]
    for mode in args.dataflow:
        periods = sorted(set(args.dataflow_period or tables))
        missing = [p for p in periods if p not in tables]
        if missing:
            raise UserError(f"--dataflow-period {missing[0]} is not among the studied periods "
                            f"{sorted(tables)}; add --period {missing[0]}")
        first = tables[periods[0]][0]
        design = _design(args, first)
        assert study.streams is not None
        from .dataflow_tables import build_dataflow_tables

        built = build_dataflow_tables(
            design, study.streams, periods, out / "dataflow_tables", mode=mode,
            semantics=first.meta.get("semantics", "inertial"),
            per_pin=bool(first.meta.get("per_pin", False)),
            sampling=_setting(args, "dataflow_sampling"),
            samples=_setting(args, "dataflow_samples"), seed=args.seed,
            progress=progress, log=log)
        for p in periods:
            for name, t in built[p].items():
                check_table(t, regulations=config.regulations, source=f"{mode} table of {name}")
            # the Table III marginal is compared on the uniform-prev scenarios only
            own = ("TError", "WD+EAQ", "EAQ")
            scenarios.append(Scenario(f"T{p} {mode}", built[p], p, prev=mode, variants=own))
            scenarios.append(Scenario(
                f"T{p} {mode}, designed for uniform prev", built[p], p, prev=mode,
                design_tables=tables[p][0], design_prev="uniform", variants=own[1:]))
    result = study.run(scenarios, force=args.force)
    table_v = (out / "table_v.md").read_text()
    lines = [table_v, f"wrote {out}/: report.md, table_v.md, table_v.csv, table_iv.md, "
             "accuracy.png, sensitivity.png, mitigation.csv, streams.csv, settings.json"]
    for r in result.rows:
        if "shape_holds" in r:
            rec = r.get("recovered")
            lines.append(f"{r['scenario']} {r['regulation']}: shape "
                         f"{'holds' if r['shape_holds'] else 'does NOT hold'}"
                         f"{r.get('shape_detail', '')}"
                         + ("" if rec is None else f", WD+EAQ recovers {100 * rec:.0f} % "
                            "of the drop"))
    lines += [ln for ln in chosen_period(result.rows).splitlines()[4:] if ln]
    return lines


def _uniform_tables(args: argparse.Namespace, config: Any, out: Path,
                    progress: bool) -> dict[int, tuple[Any, str]]:
    """``period -> (table, source)`` from ``--table`` (or built in ``--quick`` mode)."""
    from sim.errtable import load_tables
    from sim.tables import CompressedTable

    periods = sorted(set(args.period))
    if args.table is None:
        if not args.quick:
            raise UserError("--table is required: a compressed_T*.parquet file, or a table "
                            "folder with --period (build one with `flipclock errtable "
                            "rtl/booth8 --period 32 --out tables/booth8`)")
        return _build_uniform(args, periods or list(QUICK["periods"]), out / "tables", "sample",
                              progress)
    path: Path = args.table
    if path.is_file():
        table = CompressedTable.read(path)
        if periods and periods != [table.period]:
            raise UserError(f"{str(path)!r} is the table of period {table.period}, not "
                            f"{periods}; pass a table folder to study several periods")
        return {table.period: (table, str(path))}
    if not path.is_dir() and not args.build_tables:
        raise UserError(f"Error table {str(path)!r} does not exist; build it with "
                        "`flipclock errtable` (or add --build-tables)")
    if not periods:
        found = sorted(int(f.stem.split("_T")[-1]) for f in path.glob("compressed_T*.parquet")
                       if f.stem.split("_T")[-1].isdigit())
        raise UserError(f"{str(path)!r} is a table folder: choose --period (available: "
                        f"{found or 'none'})")
    out_tables: dict[int, tuple[Any, str]] = {}
    missing = []
    for p in periods:
        f = path / f"compressed_T{p}.parquet"
        if f.is_file():
            out_tables[p] = (CompressedTable.read(f), str(f))
        elif args.build_tables:
            missing.append(p)
        else:
            have = sorted(load_tables(path)) if any(path.glob("compressed_T*.parquet")) else []
            raise UserError(f"No table for period {p} in {str(path)!r} (periods: "
                            f"{have or 'none'}); build it with `flipclock errtable DESIGN "
                            f"--period {p} --out {path}` or add --build-tables")
    if missing:
        out_tables.update(_build_uniform(args, missing, out / "tables", "exhaustive", progress))
    return dict(sorted(out_tables.items()))


def _build_uniform(args: argparse.Namespace, periods: list[int], folder: Path, mode: str,
                   progress: bool) -> dict[int, tuple[Any, str]]:
    """Tables of ``--design`` (default rtl/booth8), uniform previous pairs, into ``folder``."""
    from sim.errtable import TableConfig, build_tables

    from .design import load_design

    design = load_design(args.design or DEFAULT_DESIGN)
    cfg = TableConfig(periods=tuple(periods), mode=mode, samples=QUICK["table_samples"],
                      seed=args.seed)
    what = (f"sampled ({QUICK['table_samples']} previous pairs per current pair)"
            if mode == "sample" else "exhaustive")
    print(f"building {what} error tables of {design.folder} at periods {periods} -> {folder}")
    tset = build_tables(design.netlist, design.annotation, cfg, folder,
                        settings=design.settings(), progress=progress, force=True,
                        log=lambda _m: None)
    return {p: (t, str(folder / f"compressed_T{p}.parquet")) for p, t in tset.tables.items()}


def _design(args: argparse.Namespace, table: Any) -> Any:
    """The multiplier to build dataflow tables of; must be the netlist the table came from."""
    from .design import load_design

    folder = args.design or Path(table.meta.get("design") or DEFAULT_DESIGN)
    design = load_design(folder)
    want = table.meta.get("netlist_hash")
    if want and want != design.netlist.content_hash:
        raise UserError(f"The error table was built from netlist {want[:12]} but "
                        f"{str(folder)!r} holds {design.netlist.content_hash[:12]}; pass "
                        "--design with the build folder the table came from")
    want_d = table.meta.get("delays_hash")
    if want_d and want_d != design.annotation.content_hash:
        raise UserError(f"The error table was built with delays {want_d[:12]} but "
                        f"{str(folder)!r} has {design.annotation.content_hash[:12]}; pass "
                        "--design with the build folder the table came from")
    return design


def _data_and_model(args: argparse.Namespace, config: Any) -> tuple[Any, Any]:
    """The data set and, with ``--checkpoint`` / ``--no-train``, the trained model."""
    import torch

    from nnmap import build_model, load_dataset
    from nnmap.train import cache_dir, checkpoint_key

    data = load_dataset(config.dataset, args.data_dir)
    path: Path | None = args.checkpoint
    if path is None and args.no_train:
        key = checkpoint_key(config.train_config(), data.info.fingerprint)
        path = cache_dir(args.cache) / "checkpoints" / f"{key}.pt"
        if not path.is_file():
            raise UserError(f"No cached checkpoint for {config.model} on {data.info.name} "
                            f"({config.epochs} epochs, seed {config.train_seed}) in "
                            f"{str(path.parent)!r}; run without --no-train to train it")
    if path is None:
        return data, None
    if not path.is_file():
        raise UserError(f"Checkpoint {str(path)!r} does not exist; omit --checkpoint to train "
                        "(cached), or give a .pt written by flipclock or torch.save")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        raise UserError(f"Checkpoint {str(path)!r} cannot be read ({exc}); retrain or give "
                        "another file") from None
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    c, h, _ = data.info.shape
    model = build_model(config.model, c, len(data.info.classes), h)
    try:
        if not isinstance(state, dict):
            raise ValueError("no state_dict")
        model.load_state_dict(state)
    except (ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"Checkpoint {str(path)!r} does not fit {config.model} on "
                        f"{data.info.name} ({first}); pass the matching --model/--dataset") \
            from None
    model.eval()
    return data, model


def quick_demo(out: Path) -> list[str]:
    """Run the ``--quick`` study on the embedded FashionMNIST subset into ``out``.

    Builds a small sampled table of the committed ``rtl/booth8`` at period 32 and
    weight-stationary (Markov) per-layer tables, trains LeNet-5 for 4 epochs (cached) and
    writes the full report; returns a few summary lines.
    """
    from .cli import _parser

    out = Path(out)
    argv = ["nn", "timing-study", "--model", "lenet5", "--dataset", "fashion-mnist-subset",
            "--quick", "--regulation", "1.5sigma", "--regulation", "2sigma",
            "--dataflow", "ws-markov", "--out", str(out), "--force"]
    if not os.isatty(1):
        argv.append("--no-progress")
    args = _parser().parse_args(argv)
    try:
        lines = _run(args)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return [f"timing study (quick) written to {out}/report.md", *lines[2:]]
