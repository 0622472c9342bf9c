"""Golden model: the paper's accuracy with wire resistance on, and batch == one-by-one."""

import numpy as np

from flow.data import to_dac_codes
from flow.golden import GoldenChip, argmax_lowest


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
