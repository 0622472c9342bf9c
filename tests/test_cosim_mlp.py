"""Multi-layer networks on tiled crossbars, co-simulated: the 196-256-10 ReLU MLP (10 tiles of
128 x 128, 16 shared ADCs per tile) and its binary-hidden-layer twin (one ADC per output),
image by image against the golden model on Icarus and Verilator."""

import numpy as np
import pytest

from flow import config as cfgmod
from flow.cli import WEIGHTS_DIR
from flow.data import to_dac_codes
from flow.golden import GoldenChip
from flow.sim import build, run
from flow.train import load_or_train
from hdl.controller import adc_groups

IMAGES = 20


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("name", ["mlp", "mlp_binary"])
def test_mlp_images_match_golden(name, sim, dataset, tmp_path):
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / f"{name}.toml")
    assert len(cfg.tiles) == 10
    assert (adc_groups(cfg) > 1) == (name == "mlp"), "mlp exercises the shared-ADC path"
    weights = load_or_train(cfg, dataset, WEIGHTS_DIR)
    chip = GoldenChip.from_weights(cfg, weights)
    indices = np.linspace(0, len(dataset.y_test) - 1, IMAGES).astype(np.int64)
    result = run(build(cfg, sim), chip.layer_conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, readback=True, timeout_s=900,
                 requant_mult=chip.requant_mult)
    golden = chip.infer(to_dac_codes(dataset.x_test[indices], cfg), indices)

    assert result.mismatches == []
    assert result.dac_codes_ok.all(), "every tile saw the image or the hidden layer's codes"
    assert np.array_equal(result.adc_codes, golden.adc_codes)
    assert np.array_equal(result.readback, golden.adc_codes), "sums read back over SPI"
    assert np.array_equal(result.classes, golden.classes)
    assert np.mean(result.classes == dataset.y_test[indices]) >= 0.9
