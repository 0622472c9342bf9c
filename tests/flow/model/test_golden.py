"""Golden model: the paper's accuracy with wire resistance on, and batch == one-by-one; the MLP
and binary-MLP targets on the full test set (tiling and the digital steps: test_golden_tiling.py)."""

import numpy as np
import pytest

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip, argmax_lowest
from xbarflow.flow.model.train import software_accuracy, software_scores


def test_full_test_set_accuracy_with_wire_resistance(cfg, dataset, weights):
    assert cfg.crossbar.wire_r > 0
    codes = to_dac_codes(dataset.x_test, cfg)
    result = GoldenChip.from_weights(cfg, weights.w).infer(codes)
    accuracy = float(np.mean(result.classes == dataset.y_test))
    assert accuracy >= 0.90, f"golden accuracy {accuracy:.4f} below the paper's ~91 %"


def test_batch_and_single_image_agree_bit_for_bit(cfg, dataset, weights):
    chip = GoldenChip.from_weights(cfg, weights.w)
    codes = to_dac_codes(dataset.x_test[:200], cfg)
    batch = chip.infer(codes)
    for k in range(len(codes)):
        one = chip.infer(codes[k:k + 1], np.array([k]))
        assert np.array_equal(one.adc_codes[0], batch.adc_codes[k])
        assert one.classes[0] == batch.classes[k]


def test_argmax_lowest_index_wins():
    assert argmax_lowest(np.array([[1, 5, 5], [-3, -3, -4]])).tolist() == [1, 0]


# -- multi-layer, tiled chips (configs/mlp.toml, mlp_binary.toml, mlp28.toml, cnn.toml) ---------

TILES = {"mlp": 10, "mlp_binary": 10, "mlp28": 33, "cnn": 5}


@pytest.fixture(scope="module",
                params=[("mlp", 0.97), ("mlp_binary", 0.94), ("mlp28", 0.98), ("cnn", 0.985)],
                ids=["mlp", "mlp_binary", "mlp28", "cnn"])
def mlp_case(request, dataset):
    from xbarflow.flow.core.paths import WEIGHTS as WEIGHTS_DIR
    from xbarflow.flow.model.train import load_or_train
    name, target = request.param
    c = cfgmod.load(cfgmod.CONFIG_DIR / f"{name}.toml")
    return c, load_or_train(c, dataset, WEIGHTS_DIR), target


def test_mlp_full_test_set_accuracy_with_wire_resistance(mlp_case, dataset):
    c, w, target = mlp_case
    assert c.crossbar.wire_r > 0 and len(c.tiles) == TILES[c.name]
    codes = to_dac_codes(dataset.x_test, c)
    result = GoldenChip.from_weights(c, w).infer(codes)
    accuracy = float(np.mean(result.classes == dataset.y_test))
    assert accuracy >= target, f"{c.name}: golden accuracy {accuracy:.4f} below {target}"
    # the software twin the training optimised tells the same story
    assert abs(software_accuracy(w, codes, dataset.y_test, c) - accuracy) < 0.002


def test_mlp_golden_without_wires_is_the_training_forward_pass(mlp_case, dataset):
    """Training's forward pass is the chip's arithmetic: on an ideal crossbar the golden model
    gives the same sums (a value exactly on an ADC threshold may round apart in float)."""
    c, w, _ = mlp_case
    ideal = c.replace(**{"crossbar.wire_r": 0.0})
    codes = to_dac_codes(dataset.x_test[:3000], c)
    golden = GoldenChip.from_weights(ideal, w).infer(codes).adc_codes
    same = np.all(golden == software_scores(w, codes, ideal), axis=1)
    assert same.mean() >= 0.999, f"{(~same).sum()} of 3000 images differ"
