"""Co-simulation with the QMM read model (device.read_model = "qmm") on Icarus and Verilator.

20 MNIST images go through the SLP chip with the shipped reference weights: the analog bridge
answers every event with the nonlinear array solve of `AnalogArray` (one vector at a time), the
golden model solves all 20 at once, and the sums the RTL read back, its RESULT class and the DAC
codes it drove must equal the golden model's, also with read noise and drift on. Not vacuous:
the nonlinear read moves the sums against the linear read model, and a golden model with a wrong
memory state for one column's cells disagrees with what the RTL computed. With ADC noise on, the
bridge's noise key is perturbed (the test-only fault ``noise_key_off_by_one``) and the
scoreboard must report it. Builds go into a temporary folder, never build/sim of the checkout.
"""

import json

import numpy as np
import pytest

from xbarflow.analog_models import memdiode
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim import parity
from xbarflow.flow.sim.runner import build, run

from tests.support.cell_types import QMM, assert_inference_parity, image_indices

IMAGES = 20


@pytest.fixture(scope="module")
def qmm_cfg(cfg):
    return cfg.replace(**QMM)


@pytest.fixture(scope="module")
def chip(qmm_cfg, weights):
    return GoldenChip.from_weights(qmm_cfg, weights.w)


@pytest.fixture(scope="module")
def images(dataset):
    indices = image_indices(dataset, IMAGES)
    return indices, dataset.x_test[indices], dataset.y_test[indices]


def wrong_state_chip(qmm_cfg, chip):
    """The same chip, but every cell of column 4 (G+ of class 2) one state step of 1/64 higher:
    what a golden model with a wrong state mapping would compute."""
    g = chip.array.conductance.copy()
    params = memdiode.QmmParams.from_config(qmm_cfg)
    lam = np.clip(chip.array.states[:, 4] + 1 / 64, 0, 1)
    g[:, 4] = memdiode.chord_conductance(lam, qmm_cfg.crossbar.v_read, params)
    return GoldenChip(qmm_cfg, g)


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_qmm_cosimulation_matches_golden(sim, cfg, qmm_cfg, chip, images, sim_root, tmp_path):
    indices, x, y = images
    codes = to_dac_codes(x, qmm_cfg)
    golden = chip.infer(codes, indices, trace=True)
    result = run(build(qmm_cfg, sim, root=sim_root), chip.array.conductance, x, y, indices,
                 tmp_path, timeout_s=900)
    assert_inference_parity(result, golden, codes, indices)
    # Not vacuous: the nonlinear read model changes what the RTL computed ...
    linear = GoldenChip(cfg, chip.array.conductance).infer(codes, indices)
    assert (result.sums != linear.adc_codes).any(axis=1).sum() >= IMAGES // 2
    # ... and a golden model with a wrong state for one column's cells is caught.
    wrong = wrong_state_chip(qmm_cfg, chip).infer(codes, indices, trace=True)
    assert not parity.check(result, wrong, codes).same.all()
    assert (result.sums[:, 2] != wrong.adc_codes[:, 2]).sum() >= IMAGES // 2


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_wrong_noise_key_is_caught_with_qmm(sim, qmm_cfg, chip, images, sim_root, tmp_path,
                                            monkeypatch):
    indices, x, y = images
    noisy = qmm_cfg.replace(**{"adc.noise_lsb": 0.7})
    codes = to_dac_codes(x, noisy)
    noisy_chip = GoldenChip(noisy, chip.array.conductance)
    monkeypatch.setenv("XBARFLOW_TEST_FAULT", "noise_key_off_by_one")
    result = run(build(noisy, sim, root=sim_root), chip.array.conductance, x, y, indices, tmp_path,
                 timeout_s=900)
    assert result.mismatches, "the scoreboard reports the wrong key"
    res = json.loads((tmp_path / "cosim.json").read_text())
    assert "error" not in res, res.get("error")
    readback = np.array(res["sums"])
    golden = noisy_chip.infer(codes, indices)
    assert (readback != golden.adc_codes).any(axis=1).sum() >= IMAGES - 2
    # the chip computed exactly on the next event's noise and the qmm currents: the named fault
    assert np.array_equal(readback, noisy_chip.infer(codes, indices + 1).adc_codes)


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_qmm_with_read_noise_and_drift_matches_golden(sim, qmm_cfg, chip, images, sim_root, tmp_path):
    indices, x, y = images
    varied = qmm_cfg.replace(**{"device.read_noise_sigma": 0.03, "device.drift_nu": 0.05,
                                "device.drift_nu_sigma": 0.3, "device.read_time_s": 1e4})
    codes = to_dac_codes(x, varied)
    golden = GoldenChip(varied, chip.array.conductance).infer(codes, indices, trace=True)
    result = run(build(varied, sim, root=sim_root), chip.array.conductance, x, y, indices,
                 tmp_path, timeout_s=900)
    assert result.mismatches == []
    assert parity.check(result, golden, codes).same.all()
    assert np.array_equal(result.sums, golden.adc_codes), "sums the RTL read back"
    assert np.array_equal(result.classes, golden.classes), "RESULT class"
    # Not vacuous: the noise and drift moved what the RTL computed, and the read noise of the
    # next event (a wrong key) would not have matched.
    plain = chip.infer(codes, indices)
    assert (result.sums != plain.adc_codes).any(axis=1).sum() >= IMAGES - 2
    shifted = GoldenChip(varied, chip.array.conductance).infer(codes, indices + 1, trace=True)
    assert (~parity.check(result, shifted, codes).same).sum() >= IMAGES // 2
