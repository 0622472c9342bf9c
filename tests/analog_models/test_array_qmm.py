"""AnalogArray with device.read_model = "qmm": the golden model (whole test set) and the bridge's
one-event-at-a-time calls give the same ADC codes; the solver's LSB criterion; the linear limit."""

import numpy as np
import pytest

from xbarflow.analog_models import adc
from xbarflow.analog_models.array import QMM_TOL_LSB, AnalogArray
from xbarflow.analog_models.mapping import level_conductance
from xbarflow.flow.core import config

from tests.support.cell_types import QMM, assert_golden_equals_bridge, slp_context


@pytest.fixture(scope="module")
def qmm_context():
    return slp_context(QMM)


def test_full_test_set_batched_equals_one_by_one(qmm_context):
    ctx = qmm_context
    batched = assert_golden_equals_bridge(ctx)
    accuracy = np.mean(np.argmax(batched, axis=1) == ctx.labels)   # (ties aside) a sane chip
    assert accuracy > 0.85


def test_keyed_adc_noise_stays_batch_independent(qmm_context):
    ctx = qmm_context
    cfg = ctx.cfg.replace(**{"adc.noise_lsb": 0.7})
    array = AnalogArray(cfg, ctx.golden.array.conductance)
    codes = ctx.test_codes[:300]
    batched = array.adc_codes(codes, 1000)
    assert np.array_equal(batched, [array.adc_codes(c, 1000 + k) for k, c in enumerate(codes)])
    assert not np.array_equal(batched, ctx.golden.array.adc_codes(codes, 1000))


def test_near_linear_cells_read_like_the_linear_model(qmm_context):
    ctx = qmm_context
    lin = AnalogArray(ctx.cfg.replace(**{"device.read_model": "linear"}), ctx.golden.array.conductance)
    near = AnalogArray(ctx.cfg.replace(**{"device.preset": "linear_like"}), ctx.golden.array.conductance)
    codes = ctx.test_codes[:2000]
    a, b = lin.adc_codes(codes), near.adc_codes(codes)
    # alpha = 1e-3 /V: the QMM differs from I = G V by ~(alpha V)^2 / 24 ~ 2e-9 relative
    np.testing.assert_allclose(near.scores_volts(codes), lin.scores_volts(codes), rtol=0, atol=1e-8)
    assert np.abs(a - b).max() <= 1 and np.mean(a == b) > 0.999


def stress_config():
    """196 x 40 (20 pairs), uS cells, one partition, 1 ohm wires: IR drop well visible."""
    base = config.load(config.CONFIG_DIR / "slp.toml")
    return base.replace(**{"device.read_model": "qmm", "device.g_on": 1e-5, "device.g_off": 1e-6,
                           "crossbar.partitions": 1, "crossbar.tile_cols": 40,
                           "network.layers": [20], "sensing.tia_gain": 3e4})


@pytest.mark.parametrize("make_cfg", [lambda: config.load(config.CONFIG_DIR / "slp.toml").replace(
    **{"device.read_model": "qmm"}), stress_config], ids=["default", "stress"])
def test_solver_error_bound_is_below_the_stated_lsb_fraction(make_cfg):
    cfg = make_cfg()
    rng = np.random.default_rng(1)
    g = level_conductance(rng.integers(0, cfg.quant.weight_levels, (196, cfg.crossbar.tile_cols)), cfg)
    array = AnalogArray(cfg, g)
    codes = rng.integers(0, 16, (8, 196))
    codes[0] = 15
    lsb_current = adc.lsb(cfg) / cfg.sensing.tia_gain
    # the residual sum bounds every column current's error; a TIA output sees two columns
    assert np.all(2 * array.solver.residual(codes) / lsb_current <= QMM_TOL_LSB)
    if cfg.crossbar.partitions == 1:
        volts = array.scores_volts(codes)
        assert np.abs(volts).max() < cfg.adc.v_fs                 # in range: codes are meaningful
        ideal = array.ideal_scores_volts(codes)
        assert np.max(np.abs(volts - ideal)) / adc.lsb(cfg) > 5     # visible IR drop, in LSB


def test_linear_read_model_keeps_the_effective_matrix_path():
    cfg = config.load(config.CONFIG_DIR / "slp.toml")
    rng = np.random.default_rng(2)
    g = level_conductance(rng.integers(0, 32, (196, 20)), cfg)
    array = AnalogArray(cfg, g)
    assert array.solver is None and array.states is None and array.read_model == "linear"
    codes = rng.integers(0, 16, (50, 196))
    m_int = np.rint(array.matrix / array.grid).astype(np.int64)
    exact = codes @ (m_int[:, 0::2] - m_int[:, 1::2])             # integer matmul
    scale = cfg.crossbar.v_read / cfg.quant.dac_max * array.grid * cfg.sensing.tia_gain
    np.testing.assert_array_equal(array.scores_volts(codes), exact * scale)
