"""``flipclock flatenn bench``: the cost of one SRAM fault trial against a clean inference."""

from __future__ import annotations

__all__ = ["bench_sram_trial"]


def bench_sram_trial(dataset: str = "fmnist", data_dir: str | None = None,
                     cache: str | None = None, repeats: int = 5) -> dict[str, float]:
    """Time a 5 % bit-flip SRAM fault trial of the quick 4-bit LeNet-5 against one clean
    inference over the test set (one thread; target <= 1.2x, never asserted)."""
    import torch

    from nnmap.saq import train_flat
    from nnmap.sram_faults import WeightLayout, bench_fault_trial

    from .config import FlatStudyConfig, load_study_data

    torch.set_num_threads(1)
    cfg = FlatStudyConfig.for_model("lenet5", dataset, quick=True, test_limit=None)
    data = load_study_data(cfg, data_dir)
    net = train_flat(cfg.train_config(), data, cache=cache, progress=False).net
    return bench_fault_trial(net, WeightLayout.from_net(net), data.test, repeats=repeats)
