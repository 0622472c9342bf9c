"""Co-simulation with 1S1R cells (crossbar.cell = "1S1R") on Verilator.

A few MNIST images go through the SLP chip with the shipped reference weights: the analog bridge
answers every event with the 1S1R array solve of `AnalogArray` (one vector at a time,
selector_crossbar.py), the golden model solves them all at once, and the sums the RTL read back,
its RESULT class and the DAC codes it drove must equal the golden model's. Not vacuous: the
selector moves the sums against the 1R read. Builds go into a temporary folder.
"""

import numpy as np
import pytest

from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim import parity
from xbarflow.flow.sim import runner as sim_mod
from xbarflow.flow.sim.runner import build, run

IMAGES = 6


@pytest.fixture(scope="module")
def sim_root(tmp_path_factory):
    """One build folder for the module's co-simulations; Verilator's runtime objects too."""
    root = tmp_path_factory.getbasetemp() / "sim-builds-1s1r"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim_mod, "RUNTIME_CACHE", root / ".verilator-runtime")
        yield root


@pytest.mark.parametrize("selector", ["threshold", "exponential"])
def test_1s1r_cosimulation_matches_golden(selector, cfg, weights, dataset, sim_root, tmp_path):
    cell_cfg = cfg.replace(**{"crossbar.cell": "1S1R", "crossbar.selector": selector})
    chip = GoldenChip.from_weights(cell_cfg, weights.w)
    indices = np.linspace(0, len(dataset.y_test) - 1, IMAGES).astype(np.int64)
    x, y = dataset.x_test[indices], dataset.y_test[indices]
    codes = to_dac_codes(x, cell_cfg)
    golden = chip.infer(codes, indices, trace=True)
    result = run(build(cell_cfg, "verilator", root=sim_root), chip.array.conductance, x, y, indices,
                 tmp_path, timeout_s=900)
    assert result.mismatches == []
    assert np.array_equal(result.indices, indices)
    assert parity.check(result, golden, codes).same.all()
    assert np.array_equal(result.sums, golden.adc_codes), "sums the RTL read back"
    assert np.array_equal(result.classes, golden.classes), "RESULT class"
    assert all(len(image) == 1 and np.array_equal(image[0][1], c)
               for image, c in zip(result.tile_dac_codes, codes)), "the chip drove the host's codes"
    # Not vacuous: the selector changes what the RTL computed against the 1R read
    linear = GoldenChip(cfg, chip.array.conductance).infer(codes, indices)
    assert (result.sums != linear.adc_codes).any(axis=1).sum() >= IMAGES // 2
