"""torch <-> RTL: a LeNet-5's 4-bit weights in the simulated SRAM weight buffer with fault maps.

The torch-side injector (:mod:`nnmap.sram_faults`) draws fault maps and computes the faulty
weight codes; the same maps are loaded into ``hw.FaultySRAM`` (Icarus and Verilator, cocotb
testbench ``sim/tb/sram_load.py``) holding the model's packed weight words, and the words read
back must equal the torch side bit for bit -- and decode to the same faulty weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hw
from nnmap.qat import QATConfig, build_qat
from nnmap.sram_faults import FAULT_KINDS, SramGeometry, WeightLayout, fault_seed, sample_faults
from sim.runner import SIMULATORS, Simulator, run_cocotb

pytestmark = pytest.mark.sim

SEED = 2024
RATE = 0.03


@pytest.fixture(scope="module")
def lenet_codes() -> dict[str, torch.Tensor]:
    """A LeNet-5's 4-bit weight codes (random initialisation is enough: the words matter)."""
    torch.manual_seed(0)
    net = build_qat("lenet5", 1, 10, 28, QATConfig(weight_bits=4))
    return net.weight_codes()


@pytest.mark.parametrize("sim", SIMULATORS)
def test_lenet_weights_in_rtl_sram_match_torch_faults(
        sim: Simulator, lenet_codes: dict[str, torch.Tensor],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    shapes = {n: tuple(c.shape) for n, c in lenet_codes.items()}
    geometry = SramGeometry.fit(shapes, 4)  # 64-bit words: the whole LeNet-5 in one bank
    layout = WeightLayout(shapes, 4, geometry)
    assert geometry.banks == 1 and layout.n_words <= geometry.depth
    flat = layout.flatten(lenet_codes)
    words = layout.pack_flat(flat)[0, :layout.n_words]
    maps = {kind: sample_faults(layout, kind, RATE, fault_seed(SEED, kind, RATE, 0))
            for kind in FAULT_KINDS}
    scenarios = []
    for kind, fmap in maps.items():
        m = fmap.word_masks()
        scenarios.append({"name": kind, **{k: [int(v) for v in m[k][0, :layout.n_words]]
                                           for k in FAULT_KINDS}})
    build = tmp_path_factory.mktemp(f"sram-nn-{sim}")
    rtl = build / "sram.v"
    rtl.write_text(hw.to_verilog(hw.FaultySRAM(depth=geometry.depth, width=geometry.width),
                                 name="sram"))
    run_cocotb(sim, [rtl], "sram", "sim.tb.sram_load", build,
               config={"words": [int(w) for w in words], "scenarios": scenarios})
    got = np.load(build / "sram_load.npz")

    np.testing.assert_array_equal(got["clean"], words)
    for kind, fmap in maps.items():
        torch_faulty = fmap.apply(flat)
        torch_words = layout.pack_flat(torch_faulty)[0, :layout.n_words]
        rtl_words = got[kind]
        assert fmap.n_faults > 0.9 * RATE * layout.n_bits
        np.testing.assert_array_equal(rtl_words, torch_words, err_msg=f"{kind} words differ")
        # ... and the words decode to the very weights the torch inference uses
        padded = np.zeros(geometry.words, dtype=np.uint64)
        padded[:layout.n_words] = rtl_words
        rtl_codes = layout.unpack(padded.reshape(1, -1))
        for name, codes in layout.split(torch_faulty).items():
            assert torch.equal(rtl_codes[name], codes), f"{kind}: layer {name} differs"
        changed = int((rtl_words != words).sum())
        assert changed > 0
