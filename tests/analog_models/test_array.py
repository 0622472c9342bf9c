"""AnalogArray: batch/single parity (the co-simulation contract), saturation, monotonicity."""

import numpy as np
import pytest

from xbarflow.analog_models.array import AnalogArray
from xbarflow.analog_models.crossbar import effective_matrix
from xbarflow.analog_models.dac import dac_voltages
from xbarflow.analog_models.mapping import map_weights
from xbarflow.analog_models.sensing import differential_voltage
from xbarflow.flow.core.config import load

# tia_gain lowered so random inputs on random weights spread over the ADC range
BASE = load().replace(**{"sensing.tia_gain": 1.0e7})
ROWS, OUTS = BASE.rows, BASE.outputs


def _mapped(seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal((ROWS, OUTS))
    return map_weights(w, BASE).conductance


def _codes(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, BASE.quant.dac_max + 1, (n, ROWS))


@pytest.mark.parametrize("overrides", [
    {"crossbar.wire_r": 0.0},
    {"crossbar.wire_r": 1.0},
    {"crossbar.wire_r": 200.0, "adc.noise_lsb": 0.8},
    {"crossbar.wire_r": 0.0, "adc.noise_lsb": 2.0},
])
def test_batch_and_single_calls_are_bit_identical(overrides):
    arr = AnalogArray(BASE.replace(**overrides), _mapped())
    codes = _codes(500)
    batch = arr.adc_codes(codes, event_index=0)
    assert batch.shape == (500, OUTS) and batch.dtype == np.int64
    assert len(np.unique(batch)) > 20                      # the codes really spread
    assert np.abs(batch).max() < 128                       # and mostly avoid the rails
    single = np.array([arr.adc_codes(codes[k], event_index=k) for k in range(500)])
    np.testing.assert_array_equal(single, batch)
    np.testing.assert_array_equal(arr.adc_codes(codes[[7]], event_index=7)[0], batch[7])
    single_volts = np.array([arr.scores_volts(c) for c in codes[:50]])
    np.testing.assert_array_equal(single_volts, arr.scores_volts(codes[:50]))


def test_noise_changes_codes_reproducibly():
    quiet = AnalogArray(BASE, _mapped())
    noisy = AnalogArray(BASE.replace(**{"adc.noise_lsb": 1.0}), _mapped())
    codes = _codes(200)
    a, b = noisy.adc_codes(codes), noisy.adc_codes(codes)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != quiet.adc_codes(codes)) > 0.3
    assert not np.array_equal(a, noisy.adc_codes(codes, event_index=1000))


def test_exact_vmm_matches_physics():
    cfg = BASE.replace(**{"crossbar.wire_r": 50.0})
    g = _mapped()
    arr = AnalogArray(cfg, g)
    codes = _codes(64)
    m = effective_matrix(g, 50.0, cfg.crossbar.partitions)
    physical = differential_voltage(dac_voltages(codes, cfg) @ m, cfg)
    np.testing.assert_allclose(arr.scores_volts(codes), physical, rtol=1e-9, atol=1e-9)
    # IR drop shrinks the scores compared with the ideal crossbar
    ideal = arr.ideal_scores_volts(codes)
    assert np.abs(arr.scores_volts(codes)).sum() < np.abs(ideal).sum()
    assert arr.distortion().max_rel > 0


def test_ideal_wires_match_ideal_scores():
    arr = AnalogArray(BASE.replace(**{"crossbar.wire_r": 0.0}), _mapped())
    codes = _codes(64)
    # atol: the float path subtracts two large pair currents, losing ~1e-13 V absolute
    np.testing.assert_allclose(arr.scores_volts(codes), arr.ideal_scores_volts(codes),
                               rtol=1e-10, atol=1e-9)
    assert arr.distortion().max_rel == 0.0


def test_saturation_at_both_rails():
    g = np.full((ROWS, 2 * OUTS), BASE.device.g_off)
    g[:, 0] = g[:, 3] = 0.9 * BASE.device.g_on          # output 0 strongly +, output 1 strongly -
    arr = AnalogArray(BASE, g)
    out = arr.adc_codes(np.full(ROWS, BASE.quant.dac_max))
    assert out[0] == 127 and out[1] == -128
    np.testing.assert_array_equal(out[2:], 0)


def test_zero_input_gives_code_zero():
    arr = AnalogArray(BASE, _mapped())
    np.testing.assert_array_equal(arr.adc_codes(np.zeros((3, ROWS), dtype=np.int64)), 0)


@pytest.mark.parametrize("wire_r", [0.0, 1.0, 200.0])
def test_raising_a_positive_weight_input_never_lowers_its_output(wire_r):
    g = _mapped()
    row, out = 17, 3
    g[row, 2 * out], g[row, 2 * out + 1] = 0.9 * BASE.device.g_on, BASE.device.g_off
    arr = AnalogArray(BASE.replace(**{"crossbar.wire_r": wire_r}), g)
    base = _codes(40, seed=9)
    sweeps = []
    for level in range(BASE.quant.dac_max + 1):
        codes = base.copy()
        codes[:, row] = level
        sweeps.append(arr.adc_codes(codes)[:, out])
    sweeps = np.array(sweeps)                             # (levels, vectors)
    assert np.all(np.diff(sweeps, axis=0) >= 0)
    assert np.all(sweeps[-1] > sweeps[0])


def test_latency_cycles():
    assert AnalogArray(BASE, _mapped()).latency_cycles() == (4, 9)   # 73 ns at 50 MHz; SAR 8+1
    flash = BASE.replace(**{"adc.kind": "flash"})
    assert AnalogArray(flash, _mapped()).latency_cycles() == (4, 1)


def test_grid_keeps_products_exact():
    arr = AnalogArray(BASE.replace(**{"quant.dac_bits": 8}), _mapped())
    d = arr._d_int
    assert np.array_equal(d, np.rint(d))
    assert ROWS * 255 * np.abs(d).max() < 2**53
    assert np.abs(np.rint(arr.matrix / arr.grid)).max() <= 2**40


def test_invalid_inputs():
    arr = AnalogArray(BASE, _mapped())
    with pytest.raises(ValueError, match=f"\\({ROWS},\\)"):
        arr.adc_codes(np.zeros(ROWS - 1, dtype=np.int64))
    with pytest.raises(ValueError, match="0..15"):
        arr.adc_codes(np.full(ROWS, 16))
    with pytest.raises(ValueError, match="integers"):
        arr.adc_codes(np.zeros(ROWS))
    with pytest.raises(ValueError, match="even column count"):
        AnalogArray(BASE, np.full((ROWS, 3), 1e-8))


def test_1t1r_reads_each_cell_through_its_access_transistor():
    from xbarflow.flow.core.config import ChipConfig as Cfg

    cfg = Cfg().replace(**{"crossbar.wire_r": 0.0, "crossbar.cell": "1T1R",
                           "crossbar.access_r_on": 5e6})
    g = np.random.default_rng(3).uniform(1e-9, 2e-8, (196, 20))
    a = AnalogArray(cfg, g)
    np.testing.assert_allclose(a.matrix, 1.0 / (1.0 / g + 5e6), rtol=1e-14)   # series resistors
    plain = AnalogArray(cfg.replace(**{"crossbar.cell": "1R"}), g)
    np.testing.assert_array_equal(plain.matrix, g)
