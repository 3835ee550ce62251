"""Benchmark of timing-error injection (figures only, never asserted).

:func:`bench_timing_injection` times INT8 LeNet-5 inference over the FashionMNIST test set
without and with per-multiplication product substitution, in the same process, and reports
the slowdown (target: at most 5x). The LeNet-5 is trained once (5 epochs, about a minute on
one core) and cached (see :mod:`nnmap.train`). Without a table argument a synthetic table
(:func:`nnmap.synthetic.synthetic_table`, seed 0) is used; pass a real one from
``flipclock errtable`` for figures that mean something for a design.

Run ``python -m nnmap.bench [--table FILE] [--regulation 1.5sigma]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch

from sim.tables import CompressedTable

from .data import load_dataset
from .quant import QuantConfig, quantize
from .synthetic import synthetic_table
from .timing import TimingInjector, regulation_factor
from .train import TrainConfig, train

__all__ = ["bench_timing_injection", "main"]


def bench_timing_injection(
    table: CompressedTable | str | os.PathLike[str] | None = None,
    regulation: float | str = "1.5sigma",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
    batch_size: int = 1000,
    seed: int = 0,
    method: str = "auto",
    verbose: bool = True,
) -> dict[str, Any]:
    """Time clean vs error-injected INT8 LeNet-5 inference on the FashionMNIST test set.

    Parameters
    ----------
    table:
        A compressed error table, or the path of one; a synthetic table when ``None``.
    regulation:
        Regulation factor (see :func:`nnmap.timing.regulation_factor`).
    data_dir, cache:
        Where to find FashionMNIST and the checkpoint cache.
    batch_size:
        Images per forward pass.
    seed:
        Seed of the injector.
    method:
        Injection sampler (``"auto"``, ``"thinning"``, ``"stratified"``).
    verbose:
        Print the figures.

    Returns
    -------
    dict
        ``images``, ``clean_s``, ``injected_s``, ``ratio``, ``clean_accuracy``,
        ``injected_accuracy``, ``products``, ``substitutions``, ``substitution_rate``,
        ``sampler_work``, ``regulation``, ``table``, ``dataset``, ``threads``.
    """
    if table is None:
        tab, table_name = synthetic_table(seed=0), "synthetic(seed=0)"
    elif isinstance(table, CompressedTable):
        tab, table_name = table, f"table(period={table.period})"
    else:
        tab, table_name = CompressedTable.read(table), str(table)
    data = load_dataset("fashion-mnist", data_dir)
    model = train(TrainConfig(model="lenet5", dataset=data.info.name, epochs=5), data,
                  cache=cache, progress=verbose).model
    qnet = quantize(model, QuantConfig(), data.train)
    test = data.test
    qnet(test.tensors[0][:batch_size])  # warm-up
    t0 = time.perf_counter()
    clean_acc = qnet.accuracy(test, batch_size=batch_size)
    clean_s = time.perf_counter() - t0
    inj = TimingInjector(tab, regulation, seed=seed, method=method)
    t0 = time.perf_counter()
    inj_acc = qnet.accuracy(test, inj, batch_size=batch_size)
    inj_s = time.perf_counter() - t0
    products = sum(s.products for s in inj.stats.values())
    subs = sum(s.substitutions for s in inj.stats.values())
    result: dict[str, Any] = {
        "images": len(test), "clean_s": clean_s, "injected_s": inj_s,
        "ratio": inj_s / clean_s, "clean_accuracy": clean_acc, "injected_accuracy": inj_acc,
        "products": products, "substitutions": subs,
        "substitution_rate": subs / max(products, 1),
        "sampler_work": sum(s.work for s in inj.stats.values()),
        "regulation": regulation_factor(regulation), "table": table_name,
        "dataset": data.info.name, "threads": torch.get_num_threads(),
    }
    if verbose:
        print(f"INT8 LeNet-5 on {len(test)} {data.info.name} test images, "
              f"{torch.get_num_threads()} thread(s), table {table_name}, r={result['regulation']}")
        print(f"  clean      {clean_s:7.2f} s   accuracy {100 * clean_acc:.2f} %")
        print(f"  injected   {inj_s:7.2f} s   accuracy {100 * inj_acc:.2f} %   "
              f"{subs:,} of {products:,} products substituted ({subs / max(products, 1):.2e})")
        print(f"  slowdown   {result['ratio']:.2f}x (target <= 5x)")
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m nnmap.bench [--table FILE] [--regulation R]``."""
    p = argparse.ArgumentParser(prog="python -m nnmap.bench", description=__doc__)
    p.add_argument("--table", type=Path, default=None)
    p.add_argument("--regulation", default="1.5sigma")
    p.add_argument("--method", default="auto", choices=("auto", "thinning", "stratified"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    bench_timing_injection(args.table, args.regulation, method=args.method)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
