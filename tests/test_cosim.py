"""End-to-end co-simulation through cocotb's runner: MNIST images over SPI into the generated
Verilog, the analog bridge serving the crossbar, every image checked against the golden model.
Runs on Icarus and on Verilator."""

import numpy as np
import pytest

from flow.data import to_dac_codes
from flow.golden import GoldenChip
from flow.sim import build, run

IMAGES = 20


@pytest.fixture(scope="module")
def golden_chip(cfg, weights):
    return GoldenChip.from_weights(cfg, weights.w)


@pytest.fixture(scope="module")
def cosim_results():
    return {}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_images_match_golden(sim, cfg, dataset, golden_chip, cosim_results, tmp_path):
    # A spread of test images, not just the first ones.
    indices = np.linspace(0, len(dataset.y_test) - 1, IMAGES).astype(np.int64)
    result = run(build(cfg, sim), golden_chip.array.conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, readback=True, timeout_s=600)
    golden = golden_chip.infer(to_dac_codes(dataset.x_test[indices], cfg), indices)

    assert result.mismatches == []
    assert result.images == IMAGES
    assert np.array_equal(result.indices, indices)
    assert result.dac_codes_ok.all(), "the chip drove the DAC codes the host sent"
    assert np.array_equal(result.adc_codes, golden.adc_codes)
    assert np.array_equal(result.readback, golden.adc_codes), "codes read back over SPI"
    assert np.array_equal(result.classes, golden.classes)
    assert len(set(golden.classes.tolist())) > 3, "a meaningful spread of classes"
    cosim_results[sim] = result


def test_simulators_agree_on_cycle_counts(cosim_results):
    if set(cosim_results) != {"icarus", "verilator"}:
        pytest.fail("needs both co-simulation runs above to have passed")
    a, b = cosim_results["icarus"], cosim_results["verilator"]
    for phase in ("total", "drive", "convert", "argmax"):
        assert np.array_equal(a.cycles[phase], b.cycles[phase]), phase
    assert (a.cycles["total"] > 0).all()
