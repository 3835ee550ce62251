"""Worker processes for the study: training jobs, campaign shards and landscape jobs.

``--threads N`` runs the study's independent pieces in ``N`` worker processes of one torch
thread each (a small LeNet-5 uses one core better than two threads split across one
model). Every job is keyed by content: trained models land in the checkpoint cache, trials
in their campaign folders, so the result of a job does not depend on which worker ran it
or in which order. With ``N = 1`` the jobs run in this process.

Each worker loads the study's data once (:func:`_init`); a job's arguments are small and
picklable (JSON settings, checkpoint paths).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from types import TracebackType
from typing import Any

__all__ = ["StudyPool", "load_net", "worker_state"]

_STATE: dict[str, Any] = {}


def _init(config_json: str, data_dir: str | None, threads: int) -> None:
    import torch

    from .config import FlatStudyConfig, load_study_data, training_split

    torch.set_num_threads(threads)
    cfg = FlatStudyConfig.from_json(config_json)
    data = load_study_data(cfg, data_dir)
    _STATE.update(config=cfg, data=data, split=training_split(cfg, data), data_dir=data_dir)


def worker_state() -> dict[str, Any]:
    """This process's ``config``, ``data`` (study cut) and ``split`` (training split)."""
    if not _STATE:
        raise RuntimeError("worker_state() outside a StudyPool")
    return _STATE


class StudyPool:
    """``workers`` processes (or this one) that run module-level job functions."""

    def __init__(self, config_json: str, data_dir: str | os.PathLike[str] | None,
                 workers: int = 1) -> None:
        self.workers = workers
        self._args = (config_json, None if data_dir is None else str(data_dir), 1)
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> StudyPool:
        import torch

        # This process needs the data too (it loads the trained models and measures them).
        _init(*self._args[:2], torch.get_num_threads())
        if self.workers > 1:
            self._executor = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                                 initializer=_init, initargs=self._args)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=exc is not None)
            self._executor = None

    def map(self, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``[fn(*job) for job in jobs]``, in parallel when there are workers (same order)."""
        return self.run([(fn, job) for job in jobs])

    def run(self, jobs: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """``[fn(*args) for fn, args in jobs]``, submitted in this order (put the longest
        first), in parallel when there are workers; results in the same order."""
        if self._executor is None:
            return [fn(*args) for fn, args in jobs]
        futures: list[Future[Any]] = [self._executor.submit(fn, *args) for fn, args in jobs]
        return [f.result() for f in futures]


def load_net(path: str) -> Any:
    """A :class:`~nnmap.qat.QATNet` (``eval()``) from a checkpoint file of this study."""
    import torch

    from nnmap.models import build_model
    from nnmap.qat import QATNet
    from nnmap.saq import FlatTrainConfig

    info = worker_state()["split"].info
    payload = torch.load(path, map_location="cpu", weights_only=True)
    tcfg = FlatTrainConfig.from_json(payload["config"])
    c, h, _ = info.shape
    net = QATNet(build_model(tcfg.model, c, len(info.classes), h), tcfg.qat)
    net.load_state_dict(payload["state_dict"])
    return net.eval()
