"""QMM read I-V (analog_models/memdiode.py) against the paper's numbers and independent solves,
and the [device] read-model fields of ChipConfig (presets, overrides, validation, digest)."""

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from xbarflow.analog_models import memdiode
from xbarflow.analog_models.memdiode import QmmParams
from xbarflow.flow.core import config
from xbarflow.flow.core.config import ConfigError


def qmm_cfg(**overrides):
    return config.load(config.CONFIG_DIR / "slp.toml").replace(
        **{"device.read_model": "qmm", **overrides})


def test_authors_fit_gives_the_papers_chord_conductances_and_nonlinearity():
    # PAPER.md: imax = 4.74e-3 A, imin = 3.89e-5 A, alpha 2.544 / 2.947 /V, beta 0.5; at 0.2 V the
    # chord conductance is 12.2 mS (LRS) and 116 uS (HRS), I/V over the slope at 0 V is
    # 1.1 % (LRS) to 1.5 % (HRS) above 1.
    x0 = 0.1
    fit = QmmParams(i0_hrs=10 ** (-2.233494 * x0 - 4.186286), i0_lrs=10 ** (-0.070056 * x0 - 2.317494),
                    alpha_hrs=2.244080 * x0 + 2.723029, alpha_lrs=1.138475 * x0 + 2.430232,
                    beta=0.5, rs_hrs=0.0, rs_lrs=0.0)
    chord = memdiode.chord_conductance(np.array([0.0, 1.0]), 0.2, fit)
    assert chord[1] == pytest.approx(12.2e-3, rel=5e-3)
    assert chord[0] == pytest.approx(116e-6, rel=5e-3)
    slope0 = np.array([fit.i0_hrs * fit.alpha_hrs, fit.i0_lrs * fit.alpha_lrs])
    assert np.round((chord / slope0 - 1) * 100, 1).tolist() == [1.5, 1.1]


def test_default_device_is_the_fitted_memdiode_scaled_to_the_configured_levels():
    cfg = qmm_cfg()
    d = cfg.device
    assert (d.preset, d.qmm_alpha_hrs, d.qmm_alpha_lrs, d.qmm_beta) == ("hfo2_aguirre2024", 2.947, 2.544, 0.5)
    p = QmmParams.from_config(cfg)
    chord = memdiode.chord_conductance(np.array([0.0, 1.0]), cfg.crossbar.v_read, p)
    np.testing.assert_allclose(chord, [d.g_off, d.g_on], rtol=1e-14)
    # parameters linear in the state
    i0, alpha, rs = memdiode.cell_params(p, np.array([0.0, 0.25, 1.0]))
    np.testing.assert_allclose(i0, [p.i0_hrs, 0.75 * p.i0_hrs + 0.25 * p.i0_lrs, p.i0_lrs], rtol=1e-15)
    np.testing.assert_allclose(alpha, [2.947, 0.75 * 2.947 + 0.25 * 2.544, 2.544], rtol=1e-15)
    assert rs.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        memdiode.cell_params(p, np.array([1.5]))


def test_current_solves_the_implicit_equation_to_machine_precision():
    # large series resistances so that Rs matters (Rs * G ~ 0.1 .. 0.4)
    p = QmmParams(i0_hrs=1e-9, i0_lrs=2e-8, alpha_hrs=3.0, alpha_lrs=8.0, beta=0.4,
                  rs_hrs=5e6, rs_lrs=2e6)
    v = np.linspace(-0.6, 0.6, 25)
    lam = np.linspace(0.0, 1.0, 25)
    got = memdiode.current(v, lam, p)
    for vk, lk, ik in zip(v, lam, got):
        i0 = p.i0_hrs + (p.i0_lrs - p.i0_hrs) * lk
        a = p.alpha_hrs + (p.alpha_lrs - p.alpha_hrs) * lk
        rs = p.rs_hrs + (p.rs_lrs - p.rs_hrs) * lk

        def f(i):   # independent: the equation in I itself, numpy's exp, Brent's method
            vd = vk - i * rs
            return i0 * (np.exp(p.beta * a * vd) - np.exp(-(1 - p.beta) * a * vd)) - i
        bound = abs(vk) / rs
        ref = 0.0 if vk == 0 else brentq(f, -bound, bound, xtol=1e-30, rtol=1e-15)
        assert ik == pytest.approx(ref, rel=1e-13, abs=1e-25)
    assert got[12] == 0.0 and np.all(np.sign(got) == np.sign(v))


def test_current_without_rs_is_the_explicit_formula():
    p = QmmParams(1e-9, 2e-8, 2.947, 2.544, 0.5, 0.0, 0.0)
    v = np.linspace(-0.5, 0.5, 101)
    got = memdiode.current(v, 0.7, p)
    i0, a = 0.3e-9 + 0.7 * 2e-8, 0.3 * 2.947 + 0.7 * 2.544
    np.testing.assert_allclose(got, 2 * i0 * np.sinh(a * v / 2), rtol=1e-14, atol=1e-30)


def test_expm1_is_accurate_and_the_same_whatever_the_array():
    rng = np.random.default_rng(0)
    y = np.concatenate([rng.uniform(-40, 40, 5000), rng.uniform(-1e-3, 1e-3, 5000), [0.0]])
    got = memdiode.expm1_deterministic(y)
    ref = np.expm1(y)
    assert np.all(np.abs(got - ref) <= 4 * np.spacing(np.abs(ref)) + 1e-300)
    one_by_one = np.array([memdiode.expm1_deterministic(np.array([t]))[0] for t in y[::97]])
    strided = memdiode.expm1_deterministic(y[::97])
    assert np.array_equal(one_by_one, got[::97]) and np.array_equal(strided, got[::97])


def test_state_for_conductance_inverts_the_chord_conductance():
    cfg = qmm_cfg(**{"device.preset": "strongly_nonlinear"})
    p = QmmParams.from_config(cfg)
    d = cfg.device
    g = np.linspace(d.g_off, d.g_on, 33).reshape(3, 11)
    lam = memdiode.state_for_conductance(g, 0.2, p)
    assert lam.shape == g.shape
    assert lam.flat[0] == pytest.approx(0.0, abs=1e-15) and lam.flat[-1] == pytest.approx(1.0, abs=1e-15)
    assert np.all(np.diff(lam.ravel()) > 0)
    np.testing.assert_allclose(memdiode.chord_conductance(lam, 0.2, p), g, rtol=1e-14)
    # one by one: the same states
    assert np.array_equal([memdiode.state_for_conductance(x, 0.2, p) for x in g.ravel()], lam.ravel())
    with pytest.raises(ValueError, match="QMM range"):
        memdiode.state_for_conductance(np.array([0.5 * d.g_off]), 0.2, p)


def test_preset_fills_qmm_fields_and_explicit_fields_override_it():
    strong = qmm_cfg(**{"device.preset": "strongly_nonlinear"})
    assert (strong.device.qmm_alpha_hrs, strong.device.qmm_beta) == (12.0, 0.6)
    own = qmm_cfg(**{"device.preset": "strongly_nonlinear", "device.qmm_alpha_hrs": 7.0})
    assert (own.device.qmm_alpha_hrs, own.device.qmm_alpha_lrs) == (7.0, 10.0)
    data = qmm_cfg().to_dict()
    data["device"] = {"preset": "strongly_nonlinear", "qmm_beta": 0.55, "read_model": "qmm"}
    loaded = config.from_dict(data)
    assert (loaded.device.qmm_alpha_lrs, loaded.device.qmm_beta) == (10.0, 0.55)
    # back to the default preset: its values again
    assert strong.replace(**{"device.preset": "hfo2_aguirre2024"}).device.qmm_alpha_hrs == 2.947


@pytest.mark.parametrize("key, value, message", [
    ("device.read_model", "spice", "device.read_model must be linear or qmm"),
    ("device.preset", "nope", "unknown preset 'nope'"),
    ("device.qmm_beta", 1.0, "device.qmm_beta must be in"),
    ("device.qmm_alpha_lrs", 0.0, "qmm_alpha_lrs must be in"),
    ("device.qmm_rs_lrs", -1.0, "must be >= 0 ohm"),
    ("device.qmm_rs_lrs", 6e7, "caps the chord conductance"),
])
def test_bad_read_model_fields_are_one_line_config_errors(key, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        qmm_cfg(**{key: value})
    assert "\n" not in str(err.value)


def test_non_monotone_chord_conductance_is_refused():
    cfg = qmm_cfg(**{"device.qmm_alpha_hrs": 0.1, "device.qmm_alpha_lrs": 60.0,
                     "device.g_on": 1.2e-9, "device.g_off": 1.0e-9})
    with pytest.raises(ConfigError, match="not increasing in the memory state"):
        QmmParams.from_config(cfg)


def test_read_model_enters_the_config_digest_but_not_the_lbfgs_training_digest():
    from xbarflow.flow.model.weights import training_digest   # flow.model: only for this check
    lin = config.load(config.CONFIG_DIR / "slp.toml")
    assert lin.device.read_model == "linear"
    assert qmm_cfg().digest() != lin.digest()
    assert qmm_cfg(**{"device.preset": "strongly_nonlinear"}).digest() != qmm_cfg().digest()
    assert training_digest(qmm_cfg()) == training_digest(lin)
    manhattan = {"train.method": "manhattan"}
    assert training_digest(qmm_cfg(**manhattan)) == training_digest(lin.replace(**manhattan))
    assert math.isfinite(QmmParams.from_config(qmm_cfg()).i0_lrs)


def test_state_slope_is_the_derivative_of_the_current_in_the_state():
    """dI/dlam against central differences of the solved current, with every parameter moving
    with lam (I0, alpha and a large Rs, so each term of the implicit derivative counts)."""
    p = QmmParams(i0_hrs=1e-9, i0_lrs=2e-8, alpha_hrs=3.0, alpha_lrs=8.0, beta=0.4,
                  rs_hrs=5e6, rs_lrs=2e6)
    v = np.array([-0.6, -0.1, 0.05, 0.2, 0.6])
    lam = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    h = 1e-6
    fd = (memdiode.current(v, lam + h, p) - memdiode.current(v, lam - h, p)) / (2 * h)
    assert np.allclose(memdiode.state_slope(v, lam, p), fd, rtol=1e-6, atol=0)
    # and with one Rs at HRS and LRS (no Rs term: the shipped presets)
    p0 = QmmParams(p.i0_hrs, p.i0_lrs, p.alpha_hrs, p.alpha_lrs, p.beta, 3e6, 3e6)
    fd0 = (memdiode.current(v, lam + h, p0) - memdiode.current(v, lam - h, p0)) / (2 * h)
    assert np.allclose(memdiode.state_slope(v, lam, p0), fd0, rtol=1e-6, atol=0)
    assert memdiode.state_slope(np.zeros(1), np.array([0.5]), p)[0] == 0.0
