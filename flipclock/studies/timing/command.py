"""``flipclock nn timing-study``: the parser, the checks before any work, and the run.

Every argument is checked before anything is trained, built or written: number types from
:mod:`flipclock.args`, model and data set names against the ``nnmap`` registries (through
:class:`~.config.TimingStudyConfig`), flags that do not apply, the tables, the design the
dataflow tables need and the checkpoint. Only then is ``--out`` claimed
(:func:`sim.atomic.output_folder`) and the work started.

Example -- the full study (``nox -s study-timing``; resumable; ``--build-tables`` builds
the exhaustive uniform tables into ``tables/booth8`` when it lacks a period; campaigns and
caches go to ``--work``, by default ``OUT.work`` beside ``OUT``)::

    flipclock nn timing-study --model lenet5 --dataset fmnist --table tables/booth8 \\
        --build-tables --period-range 32:45 --models 3 --threads 2 --dataflow ws-markov \\
        --work out/study-timing-work --out results/timing
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flipclock.args import Parser, existing_folder, fraction, int_range, positive_int, seed

from .config import FULL, QUICK, StudyError
from .dataflow_tables import DATAFLOW_MODES

__all__ = ["parse", "quick_demo", "register", "run"]


def _period_range(text: str) -> tuple[int, int]:
    """``LO:HI``: every period from LO to HI ticks (both included, 1 <= LO <= HI)."""
    lo, sep, hi = text.partition(":")
    try:
        a, b = int(lo), int(hi)
    except ValueError:
        a = b = 0
    if not sep or not 1 <= a <= b:
        raise argparse.ArgumentTypeError(f"expected LO:HI with 1 <= LO <= HI (e.g. 32:45), "
                                         f"not {text!r}")
    return a, b


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
        description="Train --models networks (cached) and INT8-quantize them, inject "
        "per-multiplication timing errors from compressed error tables at every --period and "
        "regulation factor, and compare N_baseline, N_TError, N_WD+EAQ and N_EAQ (Table III "
        "from uniform activations, the paper's) with 95 % CIs over models x seeds. A "
        "pre-registered rule picks the period whose TError drop matches the paper's; there the "
        "extras run (measured-activation Table III, the weight on the other port, dataflow "
        "tables). Writes headline.md, report.md, summary.csv and a figure. Runs are stored as "
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
    p.add_argument("--period-range", type=_period_range, default=None, metavar="LO:HI",
                   help="every period from LO to HI ticks (adds to --period)")
    p.add_argument("--build-tables", action="store_true",
                   help="build the exhaustive tables (uniform previous pairs, from --design) "
                   "into the --table folder when it lacks a period (the folder's other "
                   "periods are kept)")
    p.add_argument("--regulation", type=_regulation, action="append", default=[],
                   help="regulation factor: 1.5sigma, 2sigma, 3sigma or a number in (0, 1] "
                   "(repeat; default 1.5sigma and 2sigma)")
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="injection seeds per model and setting (default 3)")
    p.add_argument("--models", type=positive_int, default=None,
                   help="independently trained models (training seeds --train-seed, +1, ...; "
                   "default 3, --quick 1)")
    p.add_argument("--seed", type=seed, default=0, help="base seed of the error injection")
    p.add_argument("--test-images", type=positive_int, default=None,
                   help="first N test images (default 2000; --quick 500)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="training epochs (default 5)")
    p.add_argument("--train-seed", type=seed, default=0,
                   help="training seed of the first model (default 0)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="use this trained model (a flipclock checkpoint .pt or a state_dict) "
                   "instead of training")
    p.add_argument("--no-train", action="store_true",
                   help="fail instead of training when no cached checkpoint exists")
    p.add_argument("--cache", type=Path, default=None, help="checkpoint cache folder")
    p.add_argument("--wd-fraction", type=fraction, default=0.01,
                   help="fraction of most sensitive weights for weight distribution (0.01)")
    p.add_argument("--act-dist", default="both", choices=["uniform", "layer", "both"],
                   help="Table III marginal over activations: uniform (the paper's, the "
                   "headline), measured per layer (an extra at the chosen period), or both "
                   "(default)")
    p.add_argument("--target-drop", type=fraction, default=0.045,
                   help="period rule: the TError drop (fraction) to match at 1.5sigma "
                   "(default 0.045, between the paper's LeNet-5 drops of 3.8 and 5.1 points)")
    p.add_argument("--weight-port", default="a", choices=["a", "b"],
                   help="multiplier port carrying the weight in the headline (default a)")
    p.add_argument("--no-port-compare", action="store_true",
                   help="skip the extra run with the weight on the other port")
    p.add_argument("--weights", default="per-channel", choices=["per-channel", "per-tensor"])
    p.add_argument("--dataflow", action="append", default=[], choices=list(DATAFLOW_MODES),
                   help="also build per-layer tables from the network's weight-stationary "
                   "operand streams and compare (repeat)")
    p.add_argument("--dataflow-period", type=positive_int, action="append", default=[],
                   help="periods for the dataflow tables (default: the chosen period)")
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
    p.add_argument("--work", type=Path, default=None,
                   help="folder for campaigns, caches and built dataflow tables (default: "
                   "OUT.work beside OUT; large, keep it out of version control)")
    p.add_argument("--quick", action="store_true",
                   help="small and fast: 1 model, 4 epochs, 500 test images, 3 seeds, period "
                   "32 and a sampled table (built in --work) when --table is absent, sampled "
                   "dataflow tables")
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


def _periods(args: argparse.Namespace) -> list[int]:
    """``--period`` and ``--period-range`` together, ascending."""
    extra = range(args.period_range[0], args.period_range[1] + 1) if args.period_range else ()
    return sorted({*args.period, *extra})


def _config(args: argparse.Namespace) -> Any:
    from .config import TimingStudyConfig

    acts = ("uniform", "layer") if args.act_dist == "both" else (args.act_dist,)
    regs = tuple(args.regulation) or ("1.5sigma", "2sigma")
    if "1.5sigma" not in regs:
        raise StudyError("The period rule reads the TError drop at 1.5sigma (the paper's "
                         "drops are at 1.5 sigma); add --regulation 1.5sigma")
    return TimingStudyConfig(
        model=args.model, dataset=args.dataset, epochs=_setting(args, "epochs"),
        train_seed=args.train_seed, models=_setting(args, "models"), regulations=regs,
        seeds=_setting(args, "seeds"), seed=args.seed, test_images=_setting(args, "test_images"),
        batch_size=_setting(args, "batch_size"), wd_fraction=args.wd_fraction, act_dists=acts,
        target_drop=args.target_drop, sens_images=_setting(args, "sens_images"),
        stream_images=_setting(args, "stream_images"), weights=args.weights,
        weight_port=args.weight_port, compare_port=not args.no_port_compare, quick=args.quick)


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
    for flag, folder in (("--cache", args.cache), ("--data-dir", args.data_dir),
                         ("--work", args.work)):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise StudyError(f"{flag} {str(folder)!r} is a file; give a folder")
    if args.checkpoint is not None and args.cache is not None:
        raise StudyError("--cache is unused with --checkpoint (nothing is trained); drop it")
    if args.checkpoint is not None and _setting(args, "models") != 1:
        raise StudyError("--checkpoint gives one trained model; add --models 1")


def _work(args: argparse.Namespace) -> Path:
    """The folder for campaigns and caches: ``--work``, else ``OUT.work`` beside ``OUT``."""
    out: Path = args.out
    return args.work if args.work is not None else out.with_name(out.name + ".work")


@dataclass
class _Plan:
    """Everything checked before work: config, tables, designs, data and model."""

    config: Any
    tables: Any
    build_design: Any
    dataflow_design: Any
    data: Any
    model: Any


def _prepare(args: argparse.Namespace) -> _Plan:
    from sim.atomic import check_output_path

    from .tables import design_for, plan_tables

    _check_flags(args)
    config = _config(args)
    check_output_path(args.out, force=args.force)
    periods = _periods(args)
    tables = plan_tables(args.table, periods, build=args.build_tables, quick=args.quick)
    from nnmap.timing import check_table

    for table, source in tables.tables.values():
        check_table(table, regulations=config.regulations, source=source)
    first = next(iter(tables.tables.values()), (None, ""))[0]
    build_design = design_for(args.design, first) if tables.missing else None
    missing = [p for p in args.dataflow_period if p not in tables.periods]
    if missing:
        raise StudyError(f"--dataflow-period {missing[0]} is not among the studied periods "
                         f"{tables.periods}; add --period {missing[0]}")
    dataflow_design = None
    if args.dataflow:
        dataflow_design = build_design or design_for(args.design, first)
    data, model = _data_and_model(args, config)
    return _Plan(config, tables, build_design, dataflow_design, data, model)


def _run(args: argparse.Namespace) -> list[str]:
    import torch

    from sim.atomic import output_folder

    from .study import run_study
    from .tables import build_tables_of

    torch.set_num_threads(args.threads)
    plan = _prepare(args)
    progress = not args.no_progress
    work = _work(args)
    with output_folder(args.out, force=args.force) as out:
        work.mkdir(parents=True, exist_ok=True)
        tables = dict(plan.tables.tables)
        if plan.tables.missing:
            if plan.tables.mode == "sample":  # --quick without --table: a small one, in work
                folder, todo = work / "tables", plan.tables.missing
            else:  # into the user's folder, keeping the periods it already holds
                folder, todo = args.table, sorted({*plan.tables.periods,
                                                   *plan.tables.available})
            built = build_tables_of(plan.build_design, todo, folder, mode=plan.tables.mode,
                                    seed=args.seed, progress=progress)
            tables.update({p: built[p] for p in plan.tables.missing})
            tables.update({p: built[p] for p in plan.tables.tables if p in built})
        sources = {p: src for p, (_, src) in tables.items()}
        builder = _dataflow_builder(args, plan, tables) if args.dataflow else None
        data = run_study(plan.config, work, plan.data, {p: t for p, (t, _) in tables.items()},
                         cache=args.cache, model=plan.model, dataflow=args.dataflow,
                         dataflow_periods=args.dataflow_period or None,
                         dataflow_builder=builder, force=args.force, progress=progress)
        return _write(out, work, plan, data, sources, tables,
                      getattr(args, "command_line", None))


def _write(out: Path, work: Path, plan: _Plan, data: Any, sources: dict[int, str],
           tables: dict[int, tuple[Any, str]], command: str | None) -> list[str]:
    import numpy as np
    import torch

    from .claims import add_port_gaps, aggregate, choose_period
    from .ports import weight_code_findings
    from .report import RESULT_FILES, write_results
    from .study import MODEL_NAMES
    from .tables import spec_meta, table_digest

    config = plan.config
    rows = aggregate(data.trials, data.baselines, config)
    add_port_gaps(rows, data.trials, config)
    _, drops = choose_period(data.trials, data.baselines, config)
    findings = []
    if data.chosen is not None:
        ports = [config.weight_port] + ([config.other_port] if config.compare_port else [])
        findings = weight_code_findings(data.runs, tables[data.chosen][0], ports)
    settings = {
        "test_images": data.runs[0].facts.get("test_images"),
        "work": str(work), "dataset": plan.data.info.to_dict(),
        "models": {str(r.seed): r.facts for r in data.runs},
        "tables": {str(p): {"source": sources[p], "sha256": table_digest(t),
                            "meta": spec_meta(t)} for p, (t, _) in sorted(tables.items())},
        "scenarios": data.scenarios,
        "injection_seeds": [1000 * config.seed + i for i in range(config.seeds)],
        "versions": {"torch": torch.__version__, "numpy": np.__version__}}
    model = MODEL_NAMES.get(config.model, config.model)
    title = f"Timing-error study: {model} + {plan.data.info.name}"
    write_results(out, config=config, data=data, rows=rows, drops=drops, findings=findings,
                  settings=settings, title=title, command=command)
    return [(out / "headline.md").read_text(), f"wrote {out}/: {', '.join(RESULT_FILES)}",
            f"campaigns and caches: {work}/"]


def _dataflow_builder(args: argparse.Namespace, plan: _Plan,
                      tables: dict[int, tuple[Any, str]]) -> Any:
    """Per model, the dataflow tables of its operand streams (built in its work folder)."""
    from .dataflow_tables import build_dataflow_tables

    first = next(iter(tables.values()))[0]

    def build(run: Any, mode: str, periods: Any) -> dict[int, dict[str, Any]]:
        from nnmap.timing import check_table

        built = build_dataflow_tables(
            plan.dataflow_design, run.streams(plan.config.weight_port), periods,
            run.work / "dataflow_tables", mode=mode,
            semantics=first.meta.get("semantics", "inertial"),
            per_pin=bool(first.meta.get("per_pin", False)),
            sampling=_setting(args, "dataflow_sampling"),
            samples=_setting(args, "dataflow_samples"), seed=args.seed,
            progress=not args.no_progress)
        for p in periods:
            for name, t in built[p].items():
                check_table(t, regulations=plan.config.regulations,
                            source=f"{mode} table of {name}")
        return built

    return build


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


def quick_demo(out: Path, tables: Path | None = None) -> list[str]:
    """Run the ``--quick`` study on the embedded FashionMNIST subset into ``out``.

    With ``tables`` (the demo's folder of exhaustive tables) the study runs on every period
    of that folder; without, it builds a small sampled table of the committed ``rtl/booth8``
    at period 32. Either way it adds weight-stationary (Markov) per-layer tables at the
    chosen period, trains one LeNet-5 for 4 epochs (cached) and writes the full report;
    returns a few summary lines.
    """
    argv = ["--model", "lenet5", "--dataset", "fashion-mnist-subset", "--quick",
            "--regulation", "1.5sigma", "--regulation", "2sigma", "--dataflow", "ws-markov",
            "--out", str(out), "--force"]
    if tables is not None:
        from .tables import found_periods

        periods = found_periods(Path(tables))
        if not periods:
            raise StudyError(f"No compressed_T*.parquet tables in {str(tables)!r}")
        argv += ["--table", str(tables)]
        for p in periods:
            argv += ["--period", str(p)]
    if not os.isatty(1):
        argv.append("--no-progress")
    args = parse(argv)
    args.command_line = shlex.join(["flipclock", "nn", "timing-study", *argv])  # not the demo's
    lines = _run(args)
    source = f"on the tables in {tables}" if tables is not None else "on a sampled table"
    head = [ln for ln in lines[0].splitlines() if ln.startswith("|")]
    return [f"timing study (QUICK, {source}) written to {out}/report.md", *head]
