"""Differential TIA: pair subtraction and settling latency."""

import math

import numpy as np
import pytest

from xbarflow.analog_models.sensing import differential_voltage, settling_cycles, settling_time
from xbarflow.flow.core.config import ChipConfig

CFG = ChipConfig()   # gain 1e8 V/A, 10 MHz, 50 MHz clock


def test_differential_pairs():
    i = np.array([[3e-9, 1e-9, 1e-9, 4e-9], [0.0, 0.0, 2e-9, 2e-9]])
    v = differential_voltage(i, CFG)
    np.testing.assert_allclose(v, [[0.2, -0.3], [0.0, 0.0]], atol=1e-15)


def test_odd_column_count_rejected():
    with pytest.raises(ValueError, match="even"):
        differential_voltage(np.ones(3), CFG)


def test_settling_time_formula():
    assert settling_time(CFG) == pytest.approx(math.log(100) / (2 * math.pi * 1e7), rel=1e-15)


def test_settling_cycles_default_and_rounding_up():
    assert settling_cycles(CFG) == 4   # 73.3 ns at 20 ns per cycle -> 3.66 -> 4
    slow = CFG.replace(**{"sensing.bandwidth_hz": 1e5})   # 7.33 us -> 366.5 cycles
    assert settling_cycles(slow) == 367


def test_settling_at_least_one_cycle():
    assert settling_cycles(CFG.replace(**{"sensing.bandwidth_hz": 1e12})) == 1
