"""Imported weights: the requantiser registers calibrated as quantisation-aware training
calibrates them, the file used as written for its config, re-calibrated for another."""

import numpy as np
import pytest

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.model.imported import calibrate, load_imported
from xbarflow.flow.model.weights import Weights, WeightsError, load_reference, save


@pytest.fixture(scope="module")
def mlp_ref(dataset):
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml")
    return cfg, load_reference(cfg, dataset)


def test_calibration_gives_the_trained_registers(mlp_ref, dataset):
    cfg, ref = mlp_ref
    w = calibrate(cfg, dataset, ref.layers)
    assert w.requant_mult == ref.requant_mult   # the value qat delivered with these weights
    assert w.meta["software_test_accuracy"] == ref.meta["software_test_accuracy"]
    assert w.config_digest == ref.config_digest


def test_a_file_for_this_config_is_used_as_written(mlp_ref, dataset, tmp_path):
    cfg, ref = mlp_ref
    path = tmp_path / "w.npz"
    mine = calibrate(cfg, dataset, ref.layers)
    save(Weights(w=mine.w, config_digest=mine.config_digest, meta=mine.meta, layers=mine.layers,
                 requant_mult=(7,)), path)
    cfg_w = cfg.replace(**{"train.weights": str(path)})
    assert load_imported(cfg_w, dataset).requant_mult == (7,), "not re-calibrated"


def test_another_config_recalibrates(mlp_ref, dataset, tmp_path):
    cfg, ref = mlp_ref
    path = tmp_path / "w.npz"
    save(calibrate(cfg, dataset, ref.layers), path)
    other = cfg.replace(**{"train.weights": str(path), "sensing.tia_gain": 0.5e8})
    got = load_imported(other, dataset)
    assert got.meta["recalibrated"] is True
    # half the analog gain (no ADC saturation): half the sums, about twice the register
    assert abs(got.requant_mult[0] - 2 * ref.requant_mult[0]) <= 1
    assert all(np.array_equal(a, b) for a, b in zip(got.layers, ref.layers))


def test_bad_files(mlp_ref, dataset, tmp_path):
    cfg, ref = mlp_ref
    with pytest.raises(WeightsError, match="weights file not found"):
        load_imported(cfg.replace(**{"train.weights": str(tmp_path / "none.npz")}), dataset)
    with pytest.raises(WeightsError, match="do not fit the config"):
        calibrate(cfg, dataset, (ref.layers[0],))
