"""``flipclock nn timing-study``: the parser, the checks before any work, and the run.

Every argument is checked before anything is trained, built or written: number types from
:mod:`flipclock.args`, model and data set names against the ``nnmap`` registries (through
:class:`~.config.TimingStudyConfig`), flags that do not apply, the tables, the design the
dataflow tables need and the checkpoint. Only then is ``--out`` claimed
(:func:`sim.atomic.output_folder`) and the work started.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flipclock.args import Parser, existing_folder, fraction, int_range, positive_int, seed

from .config import FULL, QUICK, StudyError
from .dataflow_tables import DATAFLOW_MODES

__all__ = ["parse", "quick_demo", "register", "run"]


def _regulation(text: str) -> str:
    """A regulation factor: ``<k>sigma`` or a number in (0, 1] (checked, kept as given)."""
    from sim.tables import TableError, regulation_factor

    try:
        regulation_factor(text.replace("σ", "sigma"))
    except TableError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _nn_group(subparsers: Any) -> Any:
    """The ``nn`` command group's sub-parsers (created here or by a sibling study)."""
    nn = subparsers.choices.get("nn")
    if nn is None:
        nn = subparsers.add_parser(
            "nn", help="neural-network studies on quantized networks",
            description="Studies of INT8 networks under the errors of the simulated hardware.")
    for action in nn._actions:  # reuse the group a sibling study may have created
        if isinstance(action, argparse._SubParsersAction):
            return action
    return nn.add_subparsers(dest="nn_command", metavar="STUDY", required=True)


def register(subparsers: Any) -> None:
    """Add ``flipclock nn timing-study``."""
    p = _nn_group(subparsers).add_parser(
        "timing-study", help="timing errors, weight distribution and error-aware quantization "
        "(Wu et al., Tables IV-VI)",
        description="Train (cached) and INT8-quantize a network, inject per-multiplication "
        "timing errors from compressed error tables at the given regulation factors, and "
        "compare N_baseline, N_TError, N_WD+EAQ and N_EAQ with 95 % CIs over seeds (Table V "
        "layout, Markdown and CSV), with Table IV, Fig. 3 and MAC counts. Runs are stored as "
        "they finish: run the same command again to resume.")
    p.add_argument("--model", default="lenet5",
                   help="network from nnmap's model registry (default lenet5; an unknown name "
                   "lists them)")
    p.add_argument("--dataset", default="fashion-mnist",
                   help="data set from nnmap's registry (default fashion-mnist; an unknown name "
                   "lists them)")
    p.add_argument("--data-dir", type=existing_folder, default=None,
                   help="folder with the data set files")
    p.add_argument("--table", type=Path, default=None,
                   help="a compressed_T*.parquet file, or a table folder with --period "
                   "(from `flipclock errtable`); --quick builds a small one when absent")
    p.add_argument("--period", type=positive_int, action="append", default=[],
                   help="clock period (ticks) of the folder's table to study (repeat)")
    p.add_argument("--build-tables", action="store_true",
                   help="build the exhaustive tables of periods missing from the --table "
                   "folder (uniform previous pairs, from --design) into OUT/tables")
    p.add_argument("--regulation", type=_regulation, action="append", default=[],
                   help="regulation factor: 1.5sigma, 2sigma, 3sigma or a number in (0, 1] "
                   "(repeat; default 1.5sigma and 2sigma)")
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="runs per setting (default 5)")
    p.add_argument("--seed", type=seed, default=0, help="base seed of the error injection")
    p.add_argument("--test-images", type=positive_int, default=None,
                   help="first N test images (default all)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="training epochs (default 5)")
    p.add_argument("--train-seed", type=seed, default=0, help="training seed (default 0)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="use this trained model (a flipclock checkpoint .pt or a state_dict) "
                   "instead of training")
    p.add_argument("--no-train", action="store_true",
                   help="fail instead of training when no cached checkpoint exists")
    p.add_argument("--cache", type=Path, default=None, help="checkpoint cache folder")
    p.add_argument("--wd-fraction", type=fraction, default=0.01,
                   help="fraction of most sensitive weights for weight distribution (0.01)")
    p.add_argument("--act-dist", default="layer", choices=["layer", "uniform", "both"],
                   help="Table III marginal over activations: measured per layer (default), "
                   "uniform (the paper's), or both")
    p.add_argument("--weight-port", default="a", choices=["a", "b"],
                   help="multiplier port carrying the weight (default a)")
    p.add_argument("--weights", default="per-channel", choices=["per-channel", "per-tensor"])
    p.add_argument("--dataflow", action="append", default=[], choices=list(DATAFLOW_MODES),
                   help="also build per-layer tables from the network's weight-stationary "
                   "operand streams and compare (repeat)")
    p.add_argument("--dataflow-period", type=positive_int, action="append", default=[],
                   help="periods for the dataflow tables (default: every --period)")
    p.add_argument("--dataflow-sampling", default=None, choices=["exhaustive", "sample"],
                   help="dataflow tables over every previous activation or sampled")
    p.add_argument("--dataflow-samples", type=positive_int, default=None,
                   help="sampled previous activations per current pair (sample mode)")
    p.add_argument("--design", type=Path, default=None,
                   help="multiplier build folder for tables built here (default: the table's "
                   "own design, else rtl/booth8)")
    p.add_argument("--sens-images", type=positive_int, default=None,
                   help="training images for |dL/dw| (default all)")
    p.add_argument("--stream-images", type=positive_int, default=None,
                   help="training images for activation statistics (default 2000)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="images per forward pass (default 1000)")
    p.add_argument("--threads", type=int_range(1, 256), default=1,
                   help="torch threads (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="small and fast: 4 epochs, 500 test images, 3 seeds, period 32, a "
                   "sampled table built here when --table is absent, sampled dataflow tables")
    p.add_argument("--force", action="store_true",
                   help="write into an --out flipclock did not make, and discard stored runs "
                   "made with other settings")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run)


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse ``flipclock nn timing-study`` options with this study's own parser (for
    :func:`quick_demo` and tests; the CLI builds the full parser)."""
    root = Parser(prog="flipclock")
    register(root.add_subparsers(dest="command", required=True))
    return root.parse_args(["nn", "timing-study", *argv])


def run(args: argparse.Namespace) -> int:
    """Check everything, then run the study and print Table V and the verdicts."""
    for line in _run(args):
        print(line)
    return 0


def _setting(args: argparse.Namespace, name: str) -> Any:
    value = getattr(args, name, None)
    return value if value is not None else (QUICK if args.quick else FULL).get(name)


def _config(args: argparse.Namespace) -> Any:
    from .config import TimingStudyConfig

    acts = ("layer", "uniform") if args.act_dist == "both" else (args.act_dist,)
    return TimingStudyConfig(
        model=args.model, dataset=args.dataset, epochs=_setting(args, "epochs"),
        train_seed=args.train_seed, regulations=tuple(args.regulation) or ("1.5sigma", "2sigma"),
        seeds=_setting(args, "seeds"), seed=args.seed, test_images=_setting(args, "test_images"),
        batch_size=_setting(args, "batch_size"), wd_fraction=args.wd_fraction, act_dists=acts,
        sens_images=_setting(args, "sens_images"), stream_images=_setting(args, "stream_images"),
        weights=args.weights, weight_port=args.weight_port, quick=args.quick)


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse flags that would be ignored (one line each)."""
    if not args.dataflow:
        for flag, value in (("--dataflow-period", args.dataflow_period),
                            ("--dataflow-sampling", args.dataflow_sampling),
                            ("--dataflow-samples", args.dataflow_samples)):
            if value:
                raise StudyError(f"{flag} applies to dataflow tables only; add --dataflow "
                                 "ws-marginal or ws-markov, or drop it")
    if args.dataflow_samples is not None and _setting(args, "dataflow_sampling") != "sample":
        raise StudyError("--dataflow-samples applies to sampled dataflow tables; add "
                         "--dataflow-sampling sample, or drop it")
    if len(set(args.dataflow)) != len(args.dataflow):
        raise StudyError("--dataflow names a mode twice; give each mode once")
    if args.build_tables and args.table is None:
        raise StudyError("--build-tables needs --table FOLDER (where the tables would be); "
                         "with --quick and no --table a small table is built anyway")
    if args.design is not None and not (args.build_tables or args.dataflow or args.table is None):
        raise StudyError("--design applies only when tables are built here (--build-tables, "
                         "--dataflow, or --quick without --table); drop it")
    if args.checkpoint is not None and args.no_train:
        raise StudyError("--no-train applies only without --checkpoint; drop one of them")
    for flag, folder in (("--cache", args.cache), ("--data-dir", args.data_dir)):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise StudyError(f"{flag} {str(folder)!r} is a file; give a folder")
    if args.checkpoint is not None and args.cache is not None:
        raise StudyError("--cache is unused with --checkpoint (nothing is trained); drop it")


@dataclass
class _Plan:
    """Everything checked before work: config, tables, designs, data and model."""

    config: Any
    tables: Any
    build_design: Any
    dataflow_design: Any
    dataflow_periods: list[int]
    data: Any
    model: Any


def _prepare(args: argparse.Namespace) -> _Plan:
    from sim.atomic import check_output_path

    from .tables import design_for, plan_tables

    _check_flags(args)
    config = _config(args)
    check_output_path(args.out, force=args.force)
    tables = plan_tables(args.table, args.period, build=args.build_tables, quick=args.quick)
    from nnmap.timing import check_table

    for table, source in tables.tables.values():
        check_table(table, regulations=config.regulations, source=source)
    first = next(iter(tables.tables.values()), (None, ""))[0]
    build_design = design_for(args.design, first) if tables.missing else None
    dataflow_periods = sorted(set(args.dataflow_period or tables.periods))
    missing = [p for p in dataflow_periods if p not in tables.periods]
    if missing:
        raise StudyError(f"--dataflow-period {missing[0]} is not among the studied periods "
                         f"{tables.periods}; add --period {missing[0]}")
    dataflow_design = None
    if args.dataflow:
        dataflow_design = build_design or design_for(args.design, first)
    data, model = _data_and_model(args, config)
    return _Plan(config, tables, build_design, dataflow_design, dataflow_periods, data, model)


def _run(args: argparse.Namespace) -> list[str]:
    import torch

    from sim.atomic import output_folder

    from .study import Scenario, TimingStudy
    from .tables import build_tables_of

    torch.set_num_threads(args.threads)
    plan = _prepare(args)
    progress = not args.no_progress
    with output_folder(args.out, force=args.force) as out:
        tables = dict(plan.tables.tables)
        if plan.tables.missing:
            tables.update(build_tables_of(plan.build_design, plan.tables.missing, out / "tables",
                                          mode=plan.tables.mode, seed=args.seed,
                                          progress=progress))
        tables = dict(sorted(tables.items()))
        study = TimingStudy(plan.config, out, data=plan.data, cache=args.cache,
                            model=plan.model, progress=progress)
        study.prepare()
        scenarios = [Scenario(f"T{p}", t, p, prev="uniform") for p, (t, _) in tables.items()]
        for mode in args.dataflow:
            scenarios += _dataflow_scenarios(args, plan, study, tables, mode, out)
        result = study.run(scenarios, force=args.force)
        return _summary(out, result.rows)


def _dataflow_scenarios(args: argparse.Namespace, plan: _Plan, study: Any,
                        tables: dict[int, tuple[Any, str]], mode: str, out: Path) -> list[Any]:
    """The two scenarios per period of one dataflow mode: injected and designed with the
    dataflow tables, and designed for uniform previous inputs but injected with them."""
    from nnmap.timing import check_table

    from .dataflow_tables import build_dataflow_tables
    from .study import Scenario

    first = tables[plan.dataflow_periods[0]][0]
    built = build_dataflow_tables(
        plan.dataflow_design, study.streams, plan.dataflow_periods, out / "dataflow_tables",
        mode=mode, semantics=first.meta.get("semantics", "inertial"),
        per_pin=bool(first.meta.get("per_pin", False)),
        sampling=_setting(args, "dataflow_sampling"),
        samples=_setting(args, "dataflow_samples"), seed=args.seed,
        progress=not args.no_progress)
    scenarios = []
    own = ("TError", "WD+EAQ", "EAQ")  # the Table III marginal is compared on uniform prev only
    for p in plan.dataflow_periods:
        for name, t in built[p].items():
            check_table(t, regulations=plan.config.regulations, source=f"{mode} table of {name}")
        scenarios.append(Scenario(f"T{p} {mode}", built[p], p, prev=mode, variants=own))
        scenarios.append(Scenario(
            f"T{p} {mode}, designed for uniform prev", built[p], p, prev=mode,
            design_tables=tables[p][0], design_prev="uniform", variants=own[1:]))
    return scenarios


def _summary(out: Path, rows: list[dict[str, Any]]) -> list[str]:
    from .claims import chosen_period
    from .report import RESULT_FILES

    lines = [(out / "table_v.md").read_text(), f"wrote {out}/: {', '.join(RESULT_FILES)}"]
    for r in rows:
        if "shape_holds" in r:
            rec = r.get("recovered")
            lines.append(f"{r['scenario']} {r['regulation']}: shape "
                         f"{'holds' if r['shape_holds'] else 'does NOT hold'}"
                         f"{r.get('shape_detail', '')}"
                         + ("" if rec is None else f", WD+EAQ recovers {100 * rec:.0f} % "
                            "of the drop"))
    lines += [ln for ln in chosen_period(rows).splitlines()[4:] if ln]
    return lines


def _data_and_model(args: argparse.Namespace, config: Any) -> tuple[Any, Any]:
    """The data set and, with ``--checkpoint`` / ``--no-train``, the trained model."""
    from nnmap.data import load_dataset
    from nnmap.train import cache_dir, checkpoint_key

    data = load_dataset(config.dataset, args.data_dir)
    path: Path | None = args.checkpoint
    if path is None and args.no_train:
        key = checkpoint_key(config.train_config(), data.info.fingerprint)
        path = cache_dir(args.cache) / "checkpoints" / f"{key}.pt"
        if not path.is_file():
            raise StudyError(f"No cached checkpoint for {config.model} on {data.info.name} "
                             f"({config.epochs} epochs, seed {config.train_seed}) in "
                             f"{str(path.parent)!r}; run without --no-train to train it")
    if path is None:
        return data, None
    return data, _load_checkpoint(path, config, data)


def _load_checkpoint(path: Path, config: Any, data: Any) -> Any:
    import torch

    from nnmap.models import build_model

    if not path.is_file():
        raise StudyError(f"Checkpoint {str(path)!r} does not exist; omit --checkpoint to train "
                         "(cached), or give a .pt written by flipclock or torch.save")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StudyError(f"Checkpoint {str(path)!r} cannot be read ({first}); retrain or give "
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
        raise StudyError(f"Checkpoint {str(path)!r} does not fit {config.model} on "
                         f"{data.info.name} ({first}); pass the matching --model/--dataset") \
            from None
    model.eval()
    return model


def quick_demo(out: Path) -> list[str]:
    """Run the ``--quick`` study on the embedded FashionMNIST subset into ``out``.

    Builds a small sampled table of the committed ``rtl/booth8`` at period 32 and
    weight-stationary (Markov) per-layer tables, trains LeNet-5 for 4 epochs (cached) and
    writes the full report; returns a few summary lines.
    """
    argv = ["--model", "lenet5", "--dataset", "fashion-mnist-subset", "--quick",
            "--regulation", "1.5sigma", "--regulation", "2sigma", "--dataflow", "ws-markov",
            "--out", str(out), "--force"]
    if not os.isatty(1):
        argv.append("--no-progress")
    args = parse(argv)
    lines = _run(args)
    return [f"timing study (quick) written to {out}/report.md", *lines[2:]]
