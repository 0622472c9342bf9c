"""Signed ADC: rounding, saturation and keyed noise."""

import numpy as np
import pytest

from xbarflow.analog_models.adc import code_range, convert, event_indices, lsb
from xbarflow.flow.core.config import ChipConfig

CFG = ChipConfig()   # 8 bits, v_fs 1 V -> lsb 1/128 V
LSB = 1 / 128


def test_lsb_and_range():
    assert lsb(CFG) == LSB
    assert code_range(8) == (-128, 127)
    assert code_range(2) == (-2, 1)


def test_round_half_up():
    v = np.array([0.0, 0.5, 0.49, -0.5, -0.51, 1.5, -1.5, 2.49]) * LSB
    np.testing.assert_array_equal(convert(v, CFG), [0, 1, 0, 0, -1, 2, -1, 2])


def test_saturates_at_both_rails():
    v = np.array([1.0, 5.0, 127.49 * LSB, 127.5 * LSB, -1.0, -1.0 - LSB, -7.0])
    np.testing.assert_array_equal(convert(v, CFG), [127, 127, 127, 127, -128, -128, -128])


def test_output_dtype_and_shape():
    out = convert(np.zeros((3, 4)), CFG)
    assert out.dtype == np.int64 and out.shape == (3, 4)
    with pytest.raises(ValueError, match="outputs"):
        convert(np.zeros((2, 2, 2)), CFG)


def test_noise_is_keyed_by_event():
    noisy = CFG.replace(**{"adc.noise_lsb": 3.0})
    batch = convert(np.zeros((20, 10)), noisy, tile=1, event_index=5)
    assert batch.any()
    for k in range(20):
        np.testing.assert_array_equal(convert(np.zeros(10), noisy, tile=1, event_index=5 + k), batch[k])
    explicit = convert(np.zeros((3, 10)), noisy, tile=1, event_index=np.array([7, 5, 7]))
    np.testing.assert_array_equal(explicit, batch[[2, 0, 2]])
    other_tile = convert(np.zeros((20, 10)), noisy, tile=2, event_index=5)
    assert not np.array_equal(other_tile, batch)


def test_noise_draws_follow_the_documented_key():
    # The draw of tile t, event e is default_rng([seeds.noise, t, e]).standard_normal(outputs),
    # in LSB; on an input of 0 V the code is that noise rounded half up. Tile and event differ
    # here (1 and 5), so a key with them swapped draws other numbers.
    noisy = CFG.replace(**{"adc.noise_lsb": 3.0})
    for tile, event in ((1, 5), (5, 1), (0, 0), (3, 40)):
        z = np.random.default_rng([CFG.seeds.noise, tile, event]).standard_normal(10)
        expected = np.clip(np.floor(3.0 * z + 0.5), -128, 127)
        np.testing.assert_array_equal(convert(np.zeros(10), noisy, tile=tile, event_index=event),
                                      expected)


def test_noise_rms_in_lsb():
    noisy = CFG.replace(**{"adc.noise_lsb": 10.0})
    codes = convert(np.zeros((2000, 10)), noisy)
    assert codes.std() == pytest.approx(np.sqrt(100 + 1 / 12), rel=0.05)
    assert abs(codes.mean()) < 0.5


def test_no_noise_ignores_event_index():
    v = np.linspace(-0.5, 0.5, 7)
    np.testing.assert_array_equal(convert(v, CFG, event_index=0), convert(v, CFG, event_index=99))


def test_event_index_validation():
    np.testing.assert_array_equal(event_indices(3, 2), [3, 4])
    with pytest.raises(ValueError, match="shape"):
        event_indices(np.array([1, 2]), 3)
    with pytest.raises(ValueError, match=">= 0"):
        event_indices(-1, 1)
    with pytest.raises(ValueError, match="integers"):
        event_indices(1.5, 1)
