"""The 1S1R element law and mapping (analog_models/selector.py), from first principles."""

import dataclasses
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from xbarflow.analog_models import selector
from xbarflow.flow.core.config import ChipConfig, ConfigError


def crossbar(**kw):
    return dataclasses.replace(ChipConfig().crossbar, **kw)


def test_threshold_selector_law_from_first_principles():
    x = crossbar(selector_v_th=0.4, selector_g_leak=1e-12, selector_g_on=1e-6)
    g = np.array([1e-8, 1e-8, 1e-8])
    v = np.array([0.2, 1.3, -1.3])
    i, v_mem, _ = selector.series_current(g, v, x)
    # below threshold: the series pair of 1e-12 and 1e-8 S
    assert math.isclose(i[0], 0.2 * 1e-12 * 1e-8 / (1e-12 + 1e-8), rel_tol=1e-12)
    # above: the selector holds v_th (minus its leak share) plus i / g_on; the memristor the rest
    vs = 0.4 + (i[1] - 1e-12 * 0.4) / 1e-6
    assert math.isclose(vs + i[1] / 1e-8, 1.3, rel_tol=1e-12)
    assert math.isclose(v_mem[1], 1.3 - vs, rel_tol=1e-9) and i[2] == -i[1]


def test_exponential_selector_law_balances_its_series_current():
    x = crossbar(selector="exponential", selector_i_s=1e-12, selector_v0=0.05)
    v = np.array([0.3, 1.3, -0.9])
    i, v_mem, slope = selector.series_current(np.full(3, 1e-8), v, x)
    vs = v - v_mem
    np.testing.assert_allclose(1e-12 * np.sinh(vs / 0.05), i, rtol=1e-9)
    np.testing.assert_allclose(i, 1e-8 * v_mem, rtol=1e-12)
    # the slope of the series pair: 1 / (1 / G + 1 / (dI_sel / dV_s))
    d_sel = 1e-12 / 0.05 * np.cosh(vs / 0.05)
    np.testing.assert_allclose(slope, 1 / (1 / 1e-8 + 1 / d_sel), rtol=1e-9)


@pytest.mark.parametrize("kind", ["threshold", "exponential"])
def test_memristor_behind_a_chord_conductance_reads_it_back(kind):
    x = crossbar(selector=kind)
    g = np.geomspace(1e-9, 2e-8, 9)
    mem = selector.memristor_for_chord(g, x)
    assert np.all(mem > g)                         # the selector takes its share of V_read
    # independent: the series current at V_read by a root finder on the selector voltage
    for gm, gc in zip(mem, g):
        if kind == "threshold":
            i_sel = lambda vs: (x.selector_g_leak * vs if vs <= x.selector_v_th else          # noqa: E731
                                x.selector_g_leak * x.selector_v_th + x.selector_g_on * (vs - x.selector_v_th))
        else:
            i_sel = lambda vs: x.selector_i_s * np.sinh(vs / x.selector_v0)                   # noqa: E731
        vs = brentq(lambda s: i_sel(s) - gm * (x.v_read - s), 0.0, x.v_read, xtol=1e-18, rtol=1e-15)
        assert math.isclose(gm * (x.v_read - vs) / x.v_read, gc, rel_tol=1e-9)


def test_a_selector_that_blocks_v_read_is_a_config_error():
    cfg = ChipConfig().replace(**{"crossbar.cell": "1S1R", "crossbar.selector_v_th": 0.3})
    with pytest.raises(ConfigError, match="passes only 1e-12 S at crossbar.v_read = 0.2 V"):
        selector.check_read(cfg)
    weak = ChipConfig().replace(**{"crossbar.cell": "1S1R", "crossbar.selector": "exponential",
                                   "crossbar.selector_i_s": 1e-12})
    with pytest.raises(ConfigError, match="exponential selector passes only"):
        selector.check_read(weak)
    selector.check_read(ChipConfig().replace(**{"crossbar.cell": "1S1R"}))    # the defaults read
    # the limit itself: (V_read - v_th (1 - g_leak / g_on)) g_on / V_read above the threshold
    x = ChipConfig().crossbar
    want = (0.2 - 0.1 * (1 - 1e-12 / 1e-5)) * 1e-5 / 0.2
    assert math.isclose(selector.selector_chord_limit(x), want, rel_tol=1e-14)


def test_deterministic_asinh_and_the_selector_inverse():
    """asinh to a few ulp also at tiny arguments (where ln(u + sqrt(u**2 + 1)) keeps nothing of
    u), and selector_voltage inverts selector_current for both kinds."""
    u = np.concatenate([np.geomspace(1e-300, 1e150, 4001), np.linspace(0.0, 3.0, 4001)])
    want = np.array([math.asinh(t) for t in u])
    got = selector.asinh_deterministic(u)
    assert np.max(np.abs(got - want) / np.maximum(want, 1e-300)) < 1e-15
    for kind in ("threshold", "exponential"):
        x = crossbar(selector=kind)
        vs = np.concatenate([-np.geomspace(1e-9, 1.5, 50), np.geomspace(1e-9, 1.5, 50)])
        i = selector.selector_current(vs, x)
        np.testing.assert_allclose(selector.selector_voltage(i, x), vs, rtol=1e-12)
        # the incremental resistance is the inverse's slope (central difference)
        h = 1e-6 * np.abs(i) + 1e-30
        fd = (selector.selector_voltage(i + h, x) - selector.selector_voltage(i - h, x)) / (2 * h)
        away = np.abs(np.abs(vs) - x.selector_v_th) > 1e-3        # not across the kink
        np.testing.assert_allclose(selector.selector_resistance(i, x)[away], fd[away], rtol=1e-5)
