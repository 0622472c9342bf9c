"""Input DAC: codes -> row voltages, and code validation."""

import numpy as np
import pytest

from xbarflow.analog_models.dac import dac_voltages, validate_codes
from xbarflow.flow.core.config import ChipConfig

CFG = ChipConfig()   # 4-bit DAC, v_read 0.2 V


def test_voltages_are_linear_in_code_with_full_scale_at_v_read():
    v = dac_voltages(np.arange(16), CFG)
    assert v.dtype == np.float64
    assert v[0] == 0.0
    assert v[-1] == pytest.approx(CFG.crossbar.v_read, rel=1e-15)
    np.testing.assert_allclose(np.diff(v), CFG.crossbar.v_read / 15, rtol=1e-12)


def test_shape_preserved_and_other_widths():
    cfg = CFG.replace(**{"quant.dac_bits": 8, "crossbar.v_read": 0.5})
    v = dac_voltages(np.array([[0, 255], [51, 102]], dtype=np.uint8), cfg)
    assert v.shape == (2, 2)
    np.testing.assert_allclose(v, [[0.0, 0.5], [0.1, 0.2]], rtol=1e-14)


@pytest.mark.parametrize("codes", [[0, 16], [-1, 3]])
def test_out_of_range_codes_rejected(codes):
    with pytest.raises(ValueError, match=r"0\.\.15"):
        dac_voltages(np.array(codes), CFG)


@pytest.mark.parametrize("codes", [np.array([1.0, 2.0]), np.array([True, False])])
def test_non_integer_codes_rejected(codes):
    with pytest.raises(ValueError, match="integers"):
        validate_codes(codes, 4)


def test_validate_returns_int64():
    out = validate_codes(np.array([3, 15], dtype=np.uint8), 4)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [3, 15])
