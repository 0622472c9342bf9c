"""xbarflow.flow.model.qat with train.device_aware: the trained MLP's forward pass is the golden
qmm chip's (scores equal image by image), and on strongly nonlinear cells it is not worse than
linear training (a 2000-image subset, a small 196-32-10 network)."""

from __future__ import annotations

import numpy as np
import pytest

from xbarflow.flow.core import config
from xbarflow.flow.data import Dataset, load_dataset, to_dac_codes
from xbarflow.flow.model import train
from xbarflow.flow.model.golden import GoldenChip

SMALL = {"network.layers": [32, 10], "network.activations": ["relu", "none"], "train.epochs": 4,
         "train.batch": 64, "device.read_model": "qmm", "device.preset": "strongly_nonlinear"}


@pytest.fixture(scope="module")
def subset() -> Dataset:
    m = load_dataset()
    return Dataset(m.x_train[:2000], m.y_train[:2000], m.x_test[:2000], m.y_test[:2000])


@pytest.fixture(scope="module")
def trained(subset):
    base = config.load("configs/mlp.toml").replace(**SMALL)
    aware = base.replace(**{"train.device_aware": True})
    return base, aware, train.train(base, subset), train.train(aware, subset)


def test_device_aware_forward_is_the_golden_qmm_chip(trained, subset):
    _, aware, _, w_dev = trained
    cfg = aware.replace(**{"crossbar.wire_r": 0.0})   # training neglects the (1e-6) IR drop
    codes = to_dac_codes(subset.x_test[:200], cfg)
    golden = GoldenChip.from_weights(cfg, w_dev).infer(codes).adc_codes
    assert np.array_equal(train.software_scores(w_dev, codes, cfg), golden)
    # the linear forward pass gives other scores on these cells
    linear = cfg.replace(**{"train.device_aware": False})
    assert not np.array_equal(train.software_scores(w_dev, codes, linear), golden)


def test_device_aware_is_not_worse_than_linear_on_strongly_nonlinear_cells(trained, subset):
    base, _, w_lin, w_dev = trained
    codes = to_dac_codes(subset.x_test, base)
    acc = [float(np.mean(GoldenChip.from_weights(base, w).infer(codes).classes == subset.y_test))
           for w in (w_lin, w_dev)]
    assert acc[1] >= acc[0], acc


def test_read_noise_reaches_the_training_steps(subset):
    aware = config.load("configs/mlp.toml").replace(**{**SMALL, "train.device_aware": True,
                                                       "train.epochs": 1})
    small = Dataset(subset.x_train[:500], subset.y_train[:500], subset.x_test[:10], subset.y_test[:10])
    w_quiet = train.train(aware, small)
    w_noisy = train.train(aware.replace(**{"device.read_noise_sigma": 0.05}), small)
    assert not np.array_equal(w_quiet.layers[0], w_noisy.layers[0])
    assert w_noisy.meta["train_loss_history"][0] > w_quiet.meta["train_loss_history"][0]


SMALL_CNN = """
[network]
input_size = 8
layers = [
  { kind = "conv", out_channels = 4, kernel = 3, stride = 1, padding = 1, activation = "relu" },
  { kind = "pool", mode = "max", size = 2, stride = 2 },
  { kind = "flatten" },
  { kind = "dense", outputs = 10, activation = "none" },
]
"""


def test_a_layered_network_trains_deterministically_through_the_golden_arithmetic(tmp_path):
    """8x8 synthetic images, conv 3x3x4 (padding 1) -> max pool -> dense 10: training learns the
    task, repeats bit for bit from seeds.train, and its test accuracy is the golden model's."""
    from tests.support.synthetic_data import synthetic

    text = (config.CONFIG_DIR / "cnn.toml").read_text()
    head, rest = text.split("[network]", 1)
    path = tmp_path / "small_cnn.toml"
    path.write_text(head + SMALL_CNN + "[quant]" + rest.split("[quant]", 1)[1])
    cfg = config.load(path).replace(**{"train.epochs": 3, "train.batch": 64, "train.lr": 1e-2})
    assert cfg.network.layered and len(cfg.network.layer_shapes) == 2
    data = synthetic(2000, 6)
    first, again = train.train(cfg, data), train.train(cfg, data)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first.layers, again.layers))
    assert first.requant_mult == again.requant_mult and first.requant_mult[0] > 0
    codes = to_dac_codes(data.x_test, cfg)
    golden = GoldenChip.from_weights(cfg.replace(**{"crossbar.wire_r": 0.0}), first).infer(codes)
    accuracy = float(np.mean(golden.classes == data.y_test))
    assert accuracy >= 0.9, accuracy
    assert first.meta["software_test_accuracy"] == accuracy
