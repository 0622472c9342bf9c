"""The 1S1R cell with a QMM memdiode (analog_models/selector_memdiode.py) against an independent
solve: per cell, scipy's brentq on the selector voltage, with the memdiode's own Rs solved by an
inner brentq, all with math.exp / math.sinh (not the module's deterministic kernels); the mapping
(I0 at HRS / LRS, the state of a chord conductance) through that same solve; and bit-identity of
the cell law whatever the array shape."""

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from xbarflow.analog_models import memdiode, selector, selector_memdiode as sm
from xbarflow.flow.core.config import ConfigError

from tests.support.cell_types import SELECTOR_KINDS, one_s_one_r


def selector_current(x, vs):
    """The selector's own I-V, written out (odd in its voltage)."""
    if x.selector == "threshold":
        a = abs(vs)
        i = (x.selector_g_leak * a if a <= x.selector_v_th
             else x.selector_g_leak * x.selector_v_th + x.selector_g_on * (a - x.selector_v_th))
        return math.copysign(i, vs)
    return x.selector_i_s * math.sinh(vs / x.selector_v0)


def memdiode_current(i0, alpha, rs, beta, v):
    """The QMM branch at terminal voltage v: x + Rs I0 s(x) = v by brentq."""
    def s(xd):
        return math.exp(beta * alpha * xd) - math.exp(-(1 - beta) * alpha * xd)
    if v == 0:
        return 0.0
    xd = brentq(lambda xd: xd + rs * i0 * s(xd) - v, min(0.0, v), max(0.0, v), xtol=1e-300, rtol=1e-15)
    return i0 * s(xd)


def reference_current(i0, alpha, rs, beta, x, v):
    """The cell current: the selector voltage vs with I_sel(vs) = I_mem(v - vs), by brentq."""
    if v == 0:
        return 0.0
    vs = brentq(lambda vs: selector_current(x, vs) - memdiode_current(i0, alpha, rs, beta, v - vs),
                min(0.0, v), max(0.0, v), xtol=1e-300, rtol=1e-15)
    return selector_current(x, vs)


def test_log_deterministic_is_the_natural_log():
    y = np.concatenate([np.geomspace(1e-300, 1e300, 4001), np.linspace(0.5, 2.0, 4001)])
    want = np.array([math.log(v) for v in y])
    assert np.max(np.abs(selector.log_deterministic(y) - want) / np.maximum(np.abs(want), 1.0)) < 4e-16


@pytest.mark.parametrize("kind", SELECTOR_KINDS)
def test_cell_law_equals_an_independent_solve(kind):
    cfg = one_s_one_r(kind, qmm=True)
    x, params = cfg.crossbar, sm.qmm_params(cfg)
    lam = np.linspace(0.0, 1.0, 5)
    i0, alpha, rs = memdiode.cell_params(params, lam)
    for v in (0.2, 0.13, 0.05, -0.1, 1.2, -0.6):
        got, v_mem = sm.series_current(i0, alpha, rs, params.beta, np.full(lam.shape, v), x)
        want = [reference_current(i0[k], alpha[k], rs[k], params.beta, x, v) for k in range(lam.size)]
        np.testing.assert_allclose(got, want, rtol=1e-9)
        # the memdiode's share: the current it carries at that voltage is the cell current
        np.testing.assert_allclose([memdiode_current(i0[k], alpha[k], rs[k], params.beta, v_mem[k])
                                    for k in range(lam.size)], want, rtol=1e-9)
        assert np.all(np.abs(v_mem) < abs(v))                    # the selector takes a share
    assert np.array_equal(sm.series_current(0.0, 2.5, 1.0, 0.5, np.array([0.2, -0.3]), x)[0], [0.0, 0.0])


@pytest.mark.parametrize("kind", SELECTOR_KINDS)
def test_mapping_reads_the_level_conductances_with_the_selector(kind):
    cfg = one_s_one_r(kind, qmm=True)
    x, d = cfg.crossbar, cfg.device
    params = sm.qmm_params(cfg)
    for lam, g in ((0.0, d.g_off), (1.0, d.g_on)):
        i0, alpha, rs = memdiode.cell_params(params, np.array(lam))
        assert reference_current(float(i0), float(alpha), float(rs), params.beta, x, x.v_read) \
            == pytest.approx(g * x.v_read, rel=1e-9)
    # not vacuous: without the selector in series the device's own I0 would be smaller
    alone = memdiode.QmmParams.from_config(cfg)
    assert params.i0_lrs > 1.2 * alone.i0_lrs and params.i0_hrs > 1.01 * alone.i0_hrs
    g = d.g_off + (d.g_on - d.g_off) * np.linspace(0.0, 1.0, 9)
    lam = sm.state_for_chord(g, x, params)
    assert lam[0] == pytest.approx(0.0, abs=1e-15) and lam[-1] == pytest.approx(1.0, abs=1e-15)
    assert np.all(np.diff(lam) > 0)
    i0, alpha, rs = memdiode.cell_params(params, lam)
    back = [reference_current(i0[k], alpha[k], rs[k], params.beta, x, x.v_read) / x.v_read
            for k in range(g.size)]
    np.testing.assert_allclose(back, g, rtol=1e-9)
    with pytest.raises(ValueError, match="1S1R QMM range"):
        sm.state_for_chord(np.array([1.01 * d.g_on]), x, params)


def test_a_selector_taking_all_of_v_read_is_a_config_error():
    cfg = one_s_one_r("threshold", qmm=True).replace(**{"device.qmm_rs_lrs": 4e7})
    with pytest.raises(ConfigError, match="takes all of crossbar.v_read"):
        sm.qmm_params(cfg)


@pytest.mark.parametrize("kind", SELECTOR_KINDS)
def test_cell_law_is_the_same_bits_for_any_shape(kind):
    cfg = one_s_one_r(kind, qmm=True)
    params = sm.qmm_params(cfg)
    rng = np.random.default_rng(11)
    lam, v = rng.random(65), rng.uniform(-0.3, 1.3, 65)
    cells = sm.QmmCells(*memdiode.cell_params(params, lam), params.beta)
    whole = cells.current(v, cfg.crossbar)
    one = [sm.QmmCells(*memdiode.cell_params(params, lam[k:k + 1]), params.beta).current(v[k:k + 1], cfg.crossbar)[0]
           for k in range(65)]
    assert np.array_equal(whole, one)
    flipped = sm.QmmCells(cells.i0[::-1], cells.alpha[::-1], cells.rs[::-1], params.beta)
    assert np.array_equal(flipped.current(v[::-1], cfg.crossbar), whole[::-1])
    with pytest.raises(ValueError, match="equal shapes"):
        sm.QmmCells(np.ones(2), np.ones(3), np.ones(2), 0.5)
