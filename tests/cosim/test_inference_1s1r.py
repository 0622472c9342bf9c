"""Co-simulation with 1S1R cells (crossbar.cell = "1S1R") on Icarus and Verilator.

A few MNIST images go through the SLP chip with the shipped reference weights: the analog bridge
answers every event with the 1S1R array solve of `AnalogArray` (one vector at a time,
selector_crossbar.py), the golden model solves them all at once, and the sums the RTL read back,
its RESULT class and the DAC codes it drove must equal the golden model's, image by image. Not
vacuous: the selector moves the sums against the 1R read. Also with QMM memdiodes behind the
selector (device.read_model = "qmm", selector_memdiode.py). Icarus runs fewer images (it is the
slow simulator; the RTL is the same). Then a small 1S1R chip programs one tile through its write
path on Icarus (every pulse and verify solved on the 1S1R array, selector in series) and
classifies on the programmed conductances; and the SLP of 1S1R cells with QMM memdiodes programs
its whole tile on Icarus (every pulse and verify solved with the selector in series with the
memdiode), per-cell parity, then inference parity. Builds go into a temporary folder.
"""

import numpy as np
import pytest

from xbarflow.analog_models.mapping import level_conductance
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.programming import (
    program_array, program_chip_array, programmed_chip, tile_target_levels,
)
from xbarflow.flow.sim.runner import build, run

from tests.support.cell_types import assert_inference_parity, image_indices, one_s_one_r

from .test_programming_tiles import MULT, random_targets, small_mlp

IMAGES = {"verilator": 6, "icarus": 3}
PROGRAM_IMAGES = 3
PROGRAM_TILE = 1


@pytest.mark.parametrize("selector, qmm", [("threshold", False), ("exponential", False),
                                           ("exponential", True)], ids=["threshold", "exponential", "qmm"])
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_1s1r_cosimulation_matches_golden(sim, selector, qmm, cfg, weights, dataset, sim_root, tmp_path):
    cell_cfg = one_s_one_r(selector, qmm, base=cfg)
    chip = GoldenChip.from_weights(cell_cfg, weights.w)
    images = IMAGES[sim]
    indices = image_indices(dataset, images)
    x, y = dataset.x_test[indices], dataset.y_test[indices]
    codes = to_dac_codes(x, cell_cfg)
    golden = chip.infer(codes, indices, trace=True)
    result = run(build(cell_cfg, sim, root=sim_root), chip.array.conductance, x, y, indices,
                 tmp_path, timeout_s=900)
    assert_inference_parity(result, golden, codes, indices)
    # Not vacuous: the selector changes what the RTL computed against the 1R read (of the same
    # read model)
    linear = GoldenChip(cell_cfg.replace(**{"crossbar.cell": "1R"}), chip.array.conductance).infer(codes, indices)
    assert (result.sums != linear.adc_codes).any(axis=1).sum() >= (images + 1) // 2


def test_1s1r_tile_programs_on_icarus(dataset, sim_root, tmp_path):
    """One tile of the small 7-tile chip programmed over SPI with 1S1R cells under V/2: its cells'
    pulses and the PROG_* counters equal the golden replay on the 1S1R write path, then every
    image's sums and class the golden chip on the programmed conductances."""
    cfg = small_mlp(**{"crossbar.cell": "1S1R", "programming.bias": "v2"})
    targets = random_targets(cfg)
    golden = program_chip_array(cfg, targets, [PROGRAM_TILE])
    indices = image_indices(dataset, PROGRAM_IMAGES)
    zeros = [np.zeros((n, 2 * m)) for n, m in cfg.network.layer_shapes]
    result = run(build(cfg, "icarus", root=sim_root), zeros, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, timeout_s=900, targets=targets,
                 requant_mult=MULT, program_tiles=[PROGRAM_TILE])
    assert result.mismatches == []
    prog = result.programming
    assert prog["tiles_programmed"] == [PROGRAM_TILE]
    assert prog["pulses_total"] == golden[PROGRAM_TILE].total_pulses > 0
    assert prog["failures"] == golden[PROGRAM_TILE].failures
    chip = programmed_chip(cfg, golden, MULT, targets=targets)
    reference = chip.infer(to_dac_codes(dataset.x_test[indices], cfg), indices)
    assert np.array_equal(result.sums, reference.adc_codes), "sums read back from the chip"
    assert np.array_equal(result.classes, reference.classes), "RESULT class"
    # Not vacuous: the selector changes the write itself (another pulse sequence than 1R)
    plain = program_chip_array(cfg.replace(**{"crossbar.cell": "1R"}), targets, [PROGRAM_TILE])
    assert not np.array_equal(plain[PROGRAM_TILE].pulses_per_cell,
                              golden[PROGRAM_TILE].pulses_per_cell)


# ~3 min quiet, 10 under load (the golden replay of 5,556 pulses through 1S1R QMM cells, twice):
# make cosim-slow; make test keeps the replay itself (tests/flow/model/test_programming.py).
@pytest.mark.slow
@pytest.mark.cosim_slow
def test_1s1r_qmm_slp_programs_on_icarus(cfg, weights, dataset, sim_root, tmp_path):
    """The SLP of 1S1R QMM cells (exponential selector) under V/2 programmed over SPI on Icarus
    to its trained targets: the bench's scoreboard finds every cell's pulses, final state and
    disturb events equal to the golden replay (its mismatches are empty), the PROG_* counters
    equal it, and then the sums the RTL read back, its RESULT class and the DAC codes it drove
    equal the golden chip on the programmed conductances (1S1R QMM read path)."""
    cell_cfg = one_s_one_r("exponential", qmm=True, base=cfg, programming__bias="v2")
    targets = tile_target_levels(cell_cfg, weights.w)
    golden = program_array(cell_cfg, targets)
    indices = image_indices(dataset, PROGRAM_IMAGES)
    x, y = dataset.x_test[indices], dataset.y_test[indices]
    # the chip before programming: the ideal targets (QMM states exist for g_off .. g_on only)
    result = run(build(cell_cfg, "icarus", root=sim_root), level_conductance(targets, cell_cfg),
                 x, y, indices, tmp_path, timeout_s=3600, targets=targets)
    assert result.mismatches == []
    prog = result.programming
    assert prog["failures"] == golden.failures == 0
    assert prog["pulses_total"] == golden.total_pulses > 0
    assert prog["pulses_per_cell_max"] == golden.pulses_per_cell.max()
    assert prog["disturb_events"] == int(golden.disturb_events.sum())
    chip = programmed_chip(cell_cfg, golden)
    codes = to_dac_codes(x, cell_cfg)
    assert_inference_parity(result, chip.infer(codes, indices, trace=True), codes, indices)
    # Not vacuous: the selector changes the write against 1R QMM cells
    plain = program_array(cell_cfg.replace(**{"crossbar.cell": "1R"}), targets)
    assert not np.array_equal(plain.pulses_per_cell, golden.pulses_per_cell)
