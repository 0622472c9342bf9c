"""xbarflow.flow.model.lbfgs with train.device_aware: on strongly nonlinear cells, training through
the QMM read is not worse on the golden qmm chip than linear training (a 2000-image subset), and
device_aware enters the training digest only when true."""

from __future__ import annotations

import numpy as np
import pytest

from xbarflow.flow.core import config
from xbarflow.flow.data import Dataset, load_dataset, to_dac_codes
from xbarflow.flow.model import train
from xbarflow.flow.model.forward import analog_gain
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.weights import training_digest

QMM = {"device.read_model": "qmm", "device.preset": "strongly_nonlinear", "train.maxiter": 60}


@pytest.fixture(scope="module")
def subset() -> Dataset:
    m = load_dataset()
    return Dataset(m.x_train[:2000], m.y_train[:2000], m.x_test[:2000], m.y_test[:2000])


def golden_accuracy(cfg, weights, x, y) -> float:
    classes = GoldenChip.from_weights(cfg, weights).infer(to_dac_codes(x, cfg)).classes
    return float(np.mean(classes == y))


def chip_loss(cfg, weights, x, y) -> float:
    """Cross-entropy of the golden chip's ADC codes in the recipe's logit units (span / analog
    gain per code): what device-aware training minimises, up to ADC rounding."""
    w = weights.w
    z = (GoldenChip.from_weights(cfg, weights).infer(to_dac_codes(x, cfg)).adc_codes
         * (float(w.max() - w.min()) / analog_gain(cfg)))
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def test_device_aware_is_not_worse_than_linear_on_strongly_nonlinear_cells(subset):
    base = config.load().replace(**QMM)
    aware = base.replace(**{"train.device_aware": True})
    w_lin, w_dev = train.train(base, subset), train.train(aware, subset)
    assert w_dev.meta["device_aware"] is True and "device_aware" not in w_lin.meta
    # the same float fit (step 1 is linear in both), different levels
    assert w_dev.meta["train_loss_float"] == w_lin.meta["train_loss_float"]
    assert not np.array_equal(w_dev.w, w_lin.w)
    test = [golden_accuracy(base, w, subset.x_test, subset.y_test) for w in (w_lin, w_dev)]
    fit = [golden_accuracy(base, w, subset.x_train, subset.y_train) for w in (w_lin, w_dev)]
    assert test[1] >= test[0] and fit[1] >= fit[0], (test, fit)
    # what it minimised is the chip's loss: the recorded level loss is the golden chip's (to ADC
    # rounding), and lower than the chip's loss with the linearly trained weights
    loss_lin, loss_dev = (chip_loss(base, w, subset.x_train, subset.y_train) for w in (w_lin, w_dev))
    assert w_dev.meta["train_loss_levels"] == pytest.approx(loss_dev, rel=0.01)
    assert loss_dev < 0.9 * loss_lin, (loss_dev, loss_lin)


def test_device_aware_enters_the_digest_only_when_true():
    slp, mlp = config.load(), config.load("configs/mlp.toml")
    for cfg in (slp, mlp):
        qmm = cfg.replace(**{"device.read_model": "qmm"})
        aware = qmm.replace(**{"train.device_aware": True})
        # linear training does not see the read model; device-aware training does, and its preset
        assert training_digest(qmm) == training_digest(cfg)
        assert training_digest(qmm.replace(**{"device.preset": "strongly_nonlinear"})) == training_digest(cfg)
        assert training_digest(aware) != training_digest(cfg)
        assert training_digest(aware.replace(**{"device.preset": "strongly_nonlinear"})) != training_digest(aware)
        assert training_digest(aware.replace(**{"crossbar.wire_r": 2.0})) == training_digest(aware)
    assert training_digest(slp) == "b42fd63aa9a1"   # the shipped reference weights' digests
    assert training_digest(mlp) == "f324eb829209"


def test_read_noise_is_a_training_input_of_device_aware_training_only(subset):
    base = config.load().replace(**QMM)
    aware = base.replace(**{"train.device_aware": True})
    noisy = aware.replace(**{"device.read_noise_sigma": 0.05})
    assert training_digest(base.replace(**{"device.read_noise_sigma": 0.05})) == training_digest(base)
    assert training_digest(noisy) != training_digest(aware)
    small = Dataset(subset.x_train[:500], subset.y_train[:500], subset.x_test[:10], subset.y_test[:10])
    quiet = {"train.maxiter": 20}
    w_quiet, w_noisy = (train.train(c.replace(**quiet), small) for c in (aware, noisy))
    assert not np.array_equal(w_quiet.w, w_noisy.w)   # the noise reached the objective
    assert w_noisy.meta["train_loss_levels"] > w_quiet.meta["train_loss_levels"]


@pytest.mark.slow
def test_full_set_device_aware_wins_back_strongly_nonlinear_loss():
    """Full MNIST (README "Device-aware training"): golden qmm accuracy on the 10k test set of
    linearly trained weights 91.68 %, device-aware 92.03 % on the strongly_nonlinear preset."""
    m = load_dataset()
    base = config.load().replace(**{"device.read_model": "qmm", "device.preset": "strongly_nonlinear"})
    aware = base.replace(**{"train.device_aware": True})
    acc = [golden_accuracy(base, train.train(c, m), m.x_test, m.y_test) for c in (base, aware)]
    assert acc[1] >= acc[0] + 0.002, acc
