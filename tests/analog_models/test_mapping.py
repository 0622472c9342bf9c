"""Weight -> differential conductance mapping (paper formula) on hand-computed examples."""

import numpy as np
import pytest

from xbarflow.analog_models.mapping import map_weights, normalize
from xbarflow.flow.core.config import ChipConfig

CFG = ChipConfig().replace(**{"quant.weight_levels": 5})   # levels 0..4
G_ON, G_OFF = CFG.device.g_on, CFG.device.g_off


def test_hand_computed_2x2():
    # max - min = 2 -> Wn = [[0.5, -0.5], [0.3, 0.0]]; levels: rint(|Wn| * 4)
    w = np.array([[1.0, -1.0], [0.6, 0.0]])
    m = map_weights(w, CFG)
    # columns interleaved (G+ out0, G- out0, G+ out1, G- out1); 0.3 * 4 = 1.2 -> level 1
    np.testing.assert_array_equal(m.levels, [[2, 0, 0, 2], [1, 0, 0, 0]])
    np.testing.assert_array_equal(m.signed_levels, [[2, -2], [1, 0]])
    step = (0.9 * G_ON - G_OFF) / 4
    expected = np.array([[2, 0, 0, 2], [1, 0, 0, 0]]) * step + G_OFF
    np.testing.assert_allclose(m.conductance, expected, rtol=1e-15)
    assert m.conductance.max() == pytest.approx(0.9 * G_ON * 0.5 + G_OFF * 0.5)


def test_level_rounding_to_nearest():
    # span 2.5 -> Wn = 1.0/2.5 = 0.4 -> 1.6 -> level 2; -1.5/2.5 = -0.6 -> 2.4 -> level 2 (G-)
    m = map_weights(np.array([[1.0, -1.5]]), CFG)
    np.testing.assert_array_equal(m.levels, [[2, 0, 0, 2]])


def test_full_scale_weight_reaches_0_9_g_on():
    m = map_weights(np.array([[1.0], [0.0]]), CFG)   # Wn = 1 -> top level
    assert m.conductance[0, 0] == pytest.approx(0.9 * G_ON, rel=1e-15)
    assert m.conductance[1, 0] == G_OFF and m.conductance[0, 1] == G_OFF


def test_all_equal_weights_map_to_zero_levels():
    m = map_weights(np.full((3, 2), 0.7), CFG)
    assert not m.levels.any()
    np.testing.assert_array_equal(m.conductance, np.full((3, 4), G_OFF))


def test_non_2d_weights_rejected():
    with pytest.raises(ValueError, match="2-D"):
        map_weights(np.ones(4), CFG)
    with pytest.raises(ValueError, match="2-D"):
        map_weights(np.ones((2, 2, 2)), CFG)


def test_normalized_weights_clipped_to_one():
    # all positive: span 1 -> W / span = [1, 2] -> clipped to [1, 1]
    np.testing.assert_array_equal(normalize(np.array([[1.0, 2.0]])), [[1.0, 1.0]])
    m = map_weights(np.array([[1.0, 2.0]]), CFG)
    np.testing.assert_array_equal(m.levels, [[4, 0, 4, 0]])
