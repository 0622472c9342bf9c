"""Read noise and drift (analog_models/read_variation.py) in AnalogArray: formulas from first
principles, keyed draws (same per event whatever the batch), off by default, config checks."""

import numpy as np
import pytest

from xbarflow.analog_models import memdiode, read_variation, selector_memdiode
from xbarflow.analog_models.array import AnalogArray
from xbarflow.analog_models.mapping import level_conductance
from xbarflow.flow.core import config
from xbarflow.flow.core.config import ConfigError


def slp(**overrides):
    return config.load(config.CONFIG_DIR / "slp.toml").replace(**overrides)


def qmm_currents(i0, states, params):
    """Column currents at full input (0.2 V on every cell, no wires) for cells with I0 = i0:
    memdiode's bracketed Newton on the implicit Rs equation, then I0 s(V_D)."""
    _, alpha, rs = memdiode.cell_params(params, states)
    v = np.full(states.shape, 0.2)
    vd = memdiode.diode_voltage(v, i0, alpha, params.beta, rs)
    return memdiode.diode_current(vd, i0, alpha, params.beta).sum(axis=0)


@pytest.fixture(scope="module")
def conductance():
    cfg = slp()
    rng = np.random.default_rng(0)
    return level_conductance(rng.integers(0, 32, (196, 20)), cfg)


@pytest.fixture(scope="module")
def codes():
    return np.random.default_rng(1).integers(0, 16, (200, 196))


def test_shipped_configs_have_neither():
    for path in config.CONFIG_DIR.glob("*.toml"):
        d = config.load(path).device
        assert d.read_noise_sigma == 0 and d.drift_nu == 0, path.name
    assert read_variation.drift_factor(slp(), 0, (3, 4)) is None


def test_drift_without_spread_is_the_power_law_on_the_linear_read(conductance, codes):
    cfg = slp(**{"device.drift_nu": 0.05, "device.read_time_s": 1e4, "device.drift_t0_s": 10.0})
    drifted = AnalogArray(cfg, conductance)
    assert np.all(drifted.drift == (1e4 / 10.0) ** -0.05)
    # linear, no wires: the scores scale by exactly the same factor
    nowire = {"crossbar.wire_r": 0.0}
    a = AnalogArray(cfg.replace(**nowire), conductance).scores_volts(codes)
    b = AnalogArray(slp(**nowire), conductance).scores_volts(codes)
    np.testing.assert_allclose(a, b * 1000 ** -0.05, rtol=1e-9, atol=1e-10)   # grid: ~1e-12 V


def test_drift_spread_is_per_cell_and_keyed_by_tile(conductance):
    cfg = slp(**{"device.read_model": "qmm", "device.drift_nu": 0.05,
                 "device.drift_nu_sigma": 0.3, "device.read_time_s": 1e3})
    f0 = read_variation.drift_factor(cfg, 0, (196, 20))
    nu = -np.log(f0) / np.log(1e3)
    assert nu.mean() == pytest.approx(0.05, rel=0.05) and nu.std() / 0.05 == pytest.approx(0.3, rel=0.1)
    assert np.array_equal(f0, read_variation.drift_factor(cfg, 0, (196, 20)))
    assert not np.array_equal(f0, read_variation.drift_factor(cfg, 1, (196, 20)))
    array = AnalogArray(cfg, conductance)
    params = memdiode.QmmParams.from_config(cfg)
    i0 = memdiode.cell_params(params, array.states)[0]
    # the QMM cells are read with I0 scaled by the drift factor: full-input currents without wires
    nowire = AnalogArray(cfg.replace(**{"crossbar.wire_r": 0.0}), conductance)
    full = np.full((1, 196), 15)
    want = qmm_currents(i0 * f0, array.states, params)
    np.testing.assert_allclose(nowire.solver.column_currents(full)[0], want, rtol=1e-12)


def test_read_noise_is_keyed_by_event_and_cell(conductance, codes):
    cfg = slp(**{"device.read_model": "qmm", "device.read_noise_sigma": 0.05})
    f = read_variation.read_noise_factors(cfg, 0, np.array([5, 6, 5]), (196, 20))
    assert np.array_equal(f[0], f[2]) and not np.array_equal(f[0], f[1])
    assert (f - 1).std() == pytest.approx(0.05, rel=0.05)
    ref = 1 + 0.05 * np.random.default_rng([cfg.seeds.noise, 0, 5, read_variation.READ_NOISE_KEY]
                                           ).standard_normal((196, 20))
    np.testing.assert_array_equal(f[0], ref)          # the documented key, row-major cells
    array = AnalogArray(cfg, conductance)
    batched = array.adc_codes(codes, 100)
    single = np.array([array.adc_codes(c, 100 + k) for k, c in enumerate(codes)])
    assert np.array_equal(batched, single)
    quiet = AnalogArray(slp(**{"device.read_model": "qmm"}), conductance).adc_codes(codes, 100)
    assert (batched != quiet).mean() > 0.2
    assert np.array_equal(array.adc_codes(codes[::-1], 100 + np.arange(200)[::-1]), batched[::-1])


def test_read_noise_factors_enter_every_cell_current(conductance):
    cfg = slp(**{"device.read_model": "qmm", "device.read_noise_sigma": 0.05,
                 "crossbar.wire_r": 0.0})
    array = AnalogArray(cfg, conductance)
    codes = np.full((2, 196), 15)
    f = read_variation.read_noise_factors(cfg, 0, np.array([7, 8]), (196, 20))
    params = memdiode.QmmParams.from_config(cfg)
    i0, alpha, _ = memdiode.cell_params(params, array.states)
    want = np.array([qmm_currents(i0 * f[k], array.states, params) for k in range(2)])
    got = array.solver.column_currents(codes, f)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    volts = array.scores_volts(codes, 7)
    np.testing.assert_allclose(volts, 1e8 * (want[:, 0::2] - want[:, 1::2]), rtol=1e-9, atol=1e-12)


def test_1s1r_qmm_read_noise_is_keyed_and_enters_every_cell_current(conductance, codes):
    """1S1R with QMM memdiodes (selector_memdiode.py): the same keyed draws scale every cell's
    I0 per read (batched == one event at a time, in any order), and the column currents at full
    input without wires are each cell's own series law (memdiode behind the selector) at I0 times
    its factor."""
    cfg = slp(**{"device.read_model": "qmm", "device.read_noise_sigma": 0.05,
                 "crossbar.cell": "1S1R", "crossbar.selector": "exponential"})
    array = AnalogArray(cfg, conductance)
    few = codes[:24]
    batched = array.adc_codes(few, 100)
    single = np.array([array.adc_codes(c, 100 + k) for k, c in enumerate(few)])
    assert np.array_equal(batched, single)
    assert np.array_equal(array.adc_codes(few[::-1], 100 + np.arange(24)[::-1]), batched[::-1])
    quiet = AnalogArray(cfg.replace(**{"device.read_noise_sigma": 0.0}), conductance)
    assert (batched != quiet.adc_codes(few, 100)).mean() > 0.2
    # scale factors of 1 are the noiseless read, to the solves' tolerance (the noisy array bounds
    # its cells at the largest factor: another grid and iteration count)
    ones = np.ones((2, 196, 20))
    assert array.solver.iterations >= quiet.solver.iterations
    np.testing.assert_allclose(array.solver.column_currents(few[:2], ones),
                               quiet.solver.column_currents(few[:2]), rtol=0,
                               atol=2 * quiet.solver.current_tol)
    nowire = AnalogArray(cfg.replace(**{"crossbar.wire_r": 0.0}), conductance)
    f = read_variation.read_noise_factors(cfg, 0, np.array([7, 8]), (196, 20))
    params = selector_memdiode.qmm_params(cfg)
    i0, alpha, rs = memdiode.cell_params(params, nowire.states)
    want = np.array([selector_memdiode.series_current(i0 * f[k], alpha, rs, params.beta,
                                                      np.full((196, 20), 0.2), cfg.crossbar)[0].sum(axis=0)
                     for k in range(2)])
    got = nowire.solver.column_currents(np.full((2, 196), 15), f)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("overrides, message", [
    ({"device.read_noise_sigma": 0.05}, "needs device.read_model = 'qmm'"),
    ({"device.read_noise_sigma": 0.6, "device.read_model": "qmm"}, "read_noise_sigma must be in"),
    ({"device.drift_nu": 1.5}, "drift_nu and drift_nu_sigma must be in"),
    ({"device.read_time_s": 0.5}, "drift_t0_s <= device.read_time_s"),
])
def test_bad_noise_and_drift_settings_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        slp(**overrides)
