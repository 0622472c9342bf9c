"""Co-simulation with ADC noise on (adc.noise_lsb = 0.7) on Icarus and Verilator.

Every other config has noise_lsb = 0, so the keyed noise draws of the bridge were never
co-simulated. Here 20 MNIST images go through the chip with noise: the sums the RTL read back,
its RESULT class and the DAC codes it drove must equal the golden model's, and the noise must
really move codes (versus the same chip without noise). Then the bridge's noise key is
perturbed behind the scoreboard's back (the test-only fault ``noise_key_off_by_one`` of
cocotb_tests/watchdog.py): the chip now computes on the noise of the wrong event, and the
scoreboard must report the read-back sums of those images as mismatches; the read-back equals
the golden model of the shifted key, so the fault is exactly the one named.
A small tiled two-layer network (mlp.toml's arithmetic, 16-12-4 on 8 tiles with shared ADCs)
is co-simulated with noise too: its noise key is (image * tiles + tile), which the one-tile SLP
cannot tell from (image + tile).
Builds go into a temporary folder, never build/sim of the checkout.
"""

import json

import numpy as np
import pytest

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.sim import parity
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim.runner import build, run

IMAGES = 20
NOISE_LSB = 0.7


@pytest.fixture(scope="module")
def noisy_cfg(cfg):
    return cfg.replace(**{"adc.noise_lsb": NOISE_LSB})


@pytest.fixture(scope="module")
def conductance(cfg):
    """A seeded random weight matrix with a few large entries, so most scores sit well inside
    the ADC range (noise can move them) instead of on a rail."""
    rng = np.random.default_rng(cfg.seeds.train)
    w = 0.15 * rng.standard_normal((cfg.rows, cfg.outputs))
    w[0, 0], w[1, 1] = 1.0, -1.0
    return GoldenChip.from_weights(cfg, w).array.conductance


@pytest.fixture(scope="module")
def images(dataset):
    indices = np.linspace(0, len(dataset.y_test) - 1, IMAGES).astype(np.int64)
    return indices, dataset.x_test[indices], dataset.y_test[indices]


@pytest.fixture(scope="module")
def golden(noisy_cfg, conductance, images):
    indices, x, _ = images
    return GoldenChip(noisy_cfg, conductance).infer(to_dac_codes(x, noisy_cfg), indices)


def test_noise_changes_the_golden_codes(cfg, noisy_cfg, conductance, images, golden):
    indices, x, _ = images
    quiet = GoldenChip(cfg, conductance).infer(to_dac_codes(x, cfg), indices)
    changed = golden.adc_codes != quiet.adc_codes
    assert changed.sum() >= IMAGES * cfg.outputs // 4, "noise moves many codes"
    assert changed.any(axis=1).sum() >= IMAGES - 2, "nearly every image has a noisy code"
    saturated = np.isin(golden.adc_codes, [-128, 127]).mean()
    assert saturated < 0.2, "scores mostly inside the ADC range"


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_noisy_cosimulation_matches_golden(sim, cfg, noisy_cfg, conductance, images, golden,
                                           sim_root, tmp_path):
    indices, x, y = images
    result = run(build(noisy_cfg, sim, root=sim_root), conductance, x, y, indices, tmp_path, timeout_s=900)
    assert result.mismatches == []
    assert np.array_equal(result.indices, indices)
    assert all(len(image) == 1 and image[0][0] == 0 and np.array_equal(image[0][1], code)
               for image, code in zip(result.tile_dac_codes, to_dac_codes(x, cfg))), "the chip drove the DAC codes the host sent"
    assert np.array_equal(result.sums, golden.adc_codes), "sums the RTL read back"
    assert np.array_equal(result.classes, golden.classes), "RESULT class"
    # Not vacuous: what the RTL computed differs from the noise-free chip's answer.
    quiet = GoldenChip(cfg, conductance).infer(to_dac_codes(x, cfg), indices)
    assert (result.sums != quiet.adc_codes).any(axis=1).sum() >= IMAGES - 2


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_wrong_noise_key_is_caught(sim, noisy_cfg, conductance, images, golden, sim_root,
                                   tmp_path, monkeypatch):
    indices, x, y = images
    monkeypatch.setenv("XBARFLOW_TEST_FAULT", "noise_key_off_by_one")
    sim_build = build(noisy_cfg, sim, root=sim_root)
    # The bench fails on its scoreboard; run() returns what the chip computed and what the
    # scoreboard reported (its results file holds the same).
    result = run(sim_build, conductance, x, y, indices, tmp_path, timeout_s=900)
    assert result.mismatches, "the scoreboard reports the wrong key"
    res = json.loads((tmp_path / "cosim.json").read_text())
    assert "error" not in res, res.get("error")          # every image ran: only the scoreboard failed
    assert res["indices"] == indices.tolist()
    readback = np.array(res["sums"])
    differs = (readback != golden.adc_codes).any(axis=1)
    assert differs.sum() >= IMAGES - 2, "the wrong key moves the chip's sums"
    flagged = {int(m.split(":")[0].removeprefix("image ")) for m in res["mismatches"]
               if "read-back sums" in m}
    assert flagged == set(indices[differs].tolist()), "every image whose RTL sums differ is reported"
    # The chip computed exactly on the next event's noise: the named fault, nothing else.
    shifted = GoldenChip(noisy_cfg, conductance).infer(to_dac_codes(x, noisy_cfg), indices + 1)
    assert np.array_equal(readback, shifted.adc_codes)
    assert res["classes"] == shifted.classes.tolist()


# -- a tiled network with noise ----------------------------------------------------------------

TILED = {"network.input_size": 4, "network.layers": [12, 4], "crossbar.tile_rows": 8,
         "crossbar.tile_cols": 8, "crossbar.partitions": 2, "adc.adcs_per_tile": 2,
         "adc.noise_lsb": NOISE_LSB}
TILED_MULT = 80        # ReLU register: hidden codes (s * 80) >> 8


@pytest.fixture(scope="module")
def tiled():
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml").replace(**TILED)
    rng = np.random.default_rng(cfg.seeds.train)
    weights = [rng.standard_normal((16, 12)), rng.standard_normal((12, 4))]
    return cfg, GoldenChip.from_weights(cfg, weights, requant_mult=[TILED_MULT])


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_noisy_tiled_cosimulation_matches_golden(sim, tiled, images, sim_root, tmp_path):
    cfg, chip = tiled
    indices, x, y = images
    assert len(cfg.tiles) == 8
    golden = chip.infer(to_dac_codes(x, cfg), indices, trace=True)
    quiet = GoldenChip(cfg.replace(**{"adc.noise_lsb": 0.0}), chip.layer_conductance,
                       chip.requant_mult).infer(to_dac_codes(x, cfg), indices)
    assert (golden.adc_codes != quiet.adc_codes).any(axis=1).sum() >= IMAGES // 2, "noise matters"
    result = run(build(cfg, sim, root=sim_root), chip.layer_conductance, x, y, indices, tmp_path,
                 timeout_s=900, requant_mult=chip.requant_mult)
    assert result.mismatches == []
    assert parity.check(result, golden, to_dac_codes(x, cfg)).dac_codes.all(), \
        "every tile saw the image or the hidden layer's codes"
    assert np.array_equal(result.sums, golden.adc_codes), "sums the RTL read back"
    assert np.array_equal(result.classes, golden.classes)
