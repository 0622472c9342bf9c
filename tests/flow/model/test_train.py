"""xbarflow.flow.model.train: learns, is deterministic, level-aware, and its cache and files round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from xbarflow.analog_models.mapping import map_weights
from xbarflow.flow.core import config
from xbarflow.flow.model import train
from xbarflow.flow.model import weights as weights_mod
from xbarflow.flow.data import DataError, Dataset, load_dataset, to_dac_codes
from tests.support.synthetic_data import synthetic

CFG = config.load()


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="module")
def subset(mnist) -> Dataset:
    """2000 training and 1000 test images of the shipped MNIST."""
    return Dataset(mnist.x_train[:2000], mnist.y_train[:2000], mnist.x_test[:1000], mnist.y_test[:1000])


@pytest.fixture(scope="module")
def small_cfg() -> config.ChipConfig:
    return CFG.replace(**{"train.maxiter": 40})


@pytest.fixture(scope="module")
def subset_weights(subset, small_cfg) -> weights_mod.Weights:
    return train.train(small_cfg, subset)


def test_separable_problem_is_learned():
    cfg = CFG.replace(**{"network.input_size": 4, "train.maxiter": 50})
    weights = train.train(cfg, synthetic(400, 0))
    assert weights.w.shape == (16, 10)
    assert weights.meta["float_test_accuracy"] == 1.0
    assert weights.meta["level_test_accuracy"] == 1.0


def test_mnist_subset_learns(subset_weights, subset, small_cfg):
    meta = subset_weights.meta
    assert subset_weights.w.shape == (196, 10)
    assert meta["float_test_accuracy"] > 0.8
    assert meta["level_test_accuracy"] > 0.8
    assert meta["train_images"] == 2000
    assert 1 <= meta["lbfgs_iterations"] <= 40
    assert subset_weights.config_digest == weights_mod.training_digest(small_cfg)
    # meta's numbers are the public functions' numbers
    codes = to_dac_codes(subset.x_test, small_cfg)
    assert train.software_accuracy(subset_weights, codes, subset.y_test) == meta["software_test_accuracy"]
    levels = map_weights(subset_weights.w, small_cfg).signed_levels
    pred = (codes.astype(np.int64) @ levels).argmax(axis=1)
    assert np.mean(pred == subset.y_test) == meta["level_test_accuracy"]


def test_training_is_deterministic(subset, small_cfg, subset_weights):
    again = train.train(small_cfg, subset)
    assert again.w.tobytes() == subset_weights.w.tobytes()


def test_level_aware_steps_help_with_few_levels(subset):
    cfg = CFG.replace(**{"quant.weight_levels": 4, "train.maxiter": 40})
    meta = train.train(cfg, subset).meta
    # each step may only lower the level-quantised training loss; with 4 levels it must
    assert meta["train_loss_levels"] <= meta["train_loss_levels_clipped"] < meta["train_loss_levels_naive"]
    assert meta["clip_scale"] < 1.0
    assert meta["level_train_accuracy"] > meta["naive_level_train_accuracy"] + 0.05


def test_training_digest_covers_only_training_inputs():
    base = weights_mod.training_digest(CFG)
    for change in ({"train.l2": CFG.train.l2 * 10}, {"quant.weight_levels": 16}, {"quant.dac_bits": 3},
                   {"seeds.train": 7}, {"network.input_size": 12}):
        assert weights_mod.training_digest(CFG.replace(**change)) != base, change
    for change in ({"crossbar.wire_r": 0.0}, {"seeds.noise": 9}, {"adc.bits": 6}):
        assert weights_mod.training_digest(CFG.replace(**change)) == base, change


def test_save_load_round_trip(tmp_path, subset_weights, small_cfg):
    path = tmp_path / "w.npz"
    weights_mod.save(subset_weights, path)
    back = weights_mod.load(path, small_cfg)
    assert back.w.tobytes() == subset_weights.w.tobytes()
    assert back.config_digest == subset_weights.config_digest
    assert back.meta == subset_weights.meta
    # hardware-only changes keep the weights usable
    assert weights_mod.load(path, small_cfg.replace(**{"crossbar.wire_r": 5.0})).w.shape == (196, 10)


def test_load_errors(tmp_path, subset_weights, small_cfg):
    path = tmp_path / "w.npz"
    weights_mod.save(subset_weights, path)
    with pytest.raises(weights_mod.WeightsError, match="trained for a different config.*retrain"):
        weights_mod.load(path, small_cfg.replace(**{"train.l2": 0.5}))
    with pytest.raises(weights_mod.WeightsError, match="weights file not found"):
        weights_mod.load(tmp_path / "none.npz", small_cfg)
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(weights_mod.WeightsError, match="not a readable weights file"):
        weights_mod.load(tmp_path / "bad.npz", small_cfg)


def test_cache_hit_does_not_retrain(tmp_path, subset, small_cfg, subset_weights, monkeypatch):
    calls = []

    def fake_train(cfg, dataset):
        calls.append(1)
        return subset_weights

    monkeypatch.setattr(train, "train", fake_train)
    first = train.load_or_train(small_cfg, subset, tmp_path)
    path = tmp_path / f"weights-{small_cfg.name}-{weights_mod.training_digest(small_cfg)}.npz"
    assert path.is_file() and len(calls) == 1
    second = train.load_or_train(small_cfg, subset, tmp_path)
    assert len(calls) == 1
    assert second.w.tobytes() == first.w.tobytes()
    # other data behind the same config, or a damaged cache file: train again
    other = Dataset(subset.x_train[:1000], subset.y_train[:1000], subset.x_test, subset.y_test)
    train.load_or_train(small_cfg, other, tmp_path)
    assert len(calls) == 2
    path.write_bytes(b"damaged")
    train.load_or_train(small_cfg, subset, tmp_path)
    assert len(calls) == 3
    assert weights_mod.load(path, small_cfg).w.tobytes() == subset_weights.w.tobytes()


def test_full_mnist_default_config_reaches_target(weights):
    """The brief's target: >= 91 % level-quantised at 14x14, 4-bit DAC, 32 levels. Uses the
    session's weights (the shipped reference weights, trained on the full set; retraining them
    is tests/flow/model/test_weights_reference.py)."""
    assert weights.meta["level_test_accuracy"] >= 0.91
    assert weights.meta["float_test_accuracy"] >= 0.915


def test_labels_beyond_outputs_are_refused():
    cfg = CFG.replace(**{"network.input_size": 4, "network.layers": [5]})
    with pytest.raises(DataError, match="labels go up to 9 but the network has 5 outputs"):
        train.train(cfg, synthetic(400, 1))


# -- multi-layer: quantisation-aware training ----------------------------------------------------

MLP_CFG = config.load(config.CONFIG_DIR / "mlp.toml")


@pytest.fixture(scope="module")
def small_mlp_cfg() -> config.ChipConfig:
    return MLP_CFG.replace(**{"train.epochs": 8, "train.batch": 64})


@pytest.fixture(scope="module")
def mlp_subset_weights(subset, small_mlp_cfg) -> weights_mod.Weights:
    return train.train(small_mlp_cfg, subset)


def test_slp_digest_and_weights_layout_are_unchanged():
    """The SLP recipe's digest is what it was before multi-layer training existed, so the SLP
    weights cached under build/weights (and the shipped reference weights) stay valid."""
    assert weights_mod.training_digest(CFG) == "b42fd63aa9a1"
    w = weights_mod.Weights(w=np.zeros((196, 10)), config_digest="x")
    assert len(w.layers) == 1 and w.layers[0] is w.w and w.requant_mult == ()


def test_mlp_subset_learns(mlp_subset_weights, subset, small_mlp_cfg):
    w, meta = mlp_subset_weights, mlp_subset_weights.meta
    assert [m.shape for m in w.layers] == [(196, 256), (256, 10)]
    assert w.w is w.layers[0]
    assert meta["method"] == "qat" and meta["train_images"] == 2000
    assert meta["software_test_accuracy"] > 0.8
    (mult,) = w.requant_mult
    assert 1 <= mult <= 255 and meta["requant_mult"] == [mult]
    assert all(np.abs(m).max() <= 1.0 for m in w.layers)
    codes = to_dac_codes(subset.x_test, small_mlp_cfg)
    assert train.software_accuracy(w, codes, subset.y_test, small_mlp_cfg) == meta["software_test_accuracy"]
    with pytest.raises(ValueError, match="needs its config"):
        train.software_accuracy(w, codes, subset.y_test)


def test_mlp_training_is_deterministic(subset, small_mlp_cfg, mlp_subset_weights):
    for act in ("relu", "binary"):
        cfg = small_mlp_cfg.replace(**{"train.epochs": 2, "network.activations": [act, "none"]})
        first, again = train.train(cfg, subset), train.train(cfg, subset)
        assert all(a.tobytes() == b.tobytes() for a, b in zip(first.layers, again.layers)), act
        assert first.requant_mult == again.requant_mult
        assert first.meta["train_loss_history"] == again.meta["train_loss_history"]
    # a different seed gives different weights (the runs above are not trivially equal)
    other = train.train(small_mlp_cfg.replace(**{"train.epochs": 2, "seeds.train": 9}), subset)
    assert other.layers[0].tobytes() != first.layers[0].tobytes()


def test_mlp_requant_mult_is_calibrated(dataset):
    """The full-MNIST MLP (reference weights): the 99.9th percentile of positive hidden sums maps to dac_max,
    so only a small share of the active hidden units saturates."""
    from xbarflow.flow.core.paths import WEIGHTS as WEIGHTS_DIR
    from xbarflow.flow.model.golden import GoldenChip
    weights = train.load_or_train(MLP_CFG, dataset, WEIGHTS_DIR)
    codes = to_dac_codes(dataset.x_test[:2000], MLP_CFG)
    trace = GoldenChip.from_weights(MLP_CFG, weights).infer(codes, trace=True).trace
    s, act = trace.sums[0], trace.activations[0]
    saturated = np.mean(act[s > 0] == MLP_CFG.quant.dac_max)
    assert 0 < saturated < 0.01
    assert np.mean(act[s > 0] > 0) > 0.5, "most positive sums give a non-zero code"


def test_mlp_training_digest_covers_the_analog_scale():
    base = weights_mod.training_digest(MLP_CFG)
    for change in ({"adc.bits": 6}, {"crossbar.tile_rows": 64}, {"device.g_on": 4e-8},
                   {"sensing.tia_gain": 2e8}, {"network.requant_shift": 7}, {"train.epochs": 3},
                   {"train.calib_percentile": 99.0}, {"network.activations": ["binary", "none"]}):
        assert weights_mod.training_digest(MLP_CFG.replace(**change)) != base, change
    for change in ({"crossbar.wire_r": 0.0}, {"adc.noise_lsb": 1.0}, {"crossbar.tile_cols": 64},
                   {"adc.adcs_per_tile": 4}, {"seeds.noise": 5}):
        assert weights_mod.training_digest(MLP_CFG.replace(**change)) == base, change


def test_mlp_save_load_round_trip(tmp_path, mlp_subset_weights, small_mlp_cfg):
    path = tmp_path / "mlp.npz"
    weights_mod.save(mlp_subset_weights, path)
    back = weights_mod.load(path, small_mlp_cfg)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(back.layers, mlp_subset_weights.layers))
    assert back.requant_mult == mlp_subset_weights.requant_mult
    assert back.meta == mlp_subset_weights.meta
    with pytest.raises(weights_mod.WeightsError, match="trained for a different config"):
        weights_mod.load(path, small_mlp_cfg.replace(**{"network.layers": [128, 10]}))
