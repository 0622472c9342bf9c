"""The device model (analog_models/programming.py): keyed cycle-to-cycle draws, pulses, stuck cells,
static maps and the verify window."""

import numpy as np
import pytest

from xbarflow.analog_models.mapping import level_conductance
from xbarflow.analog_models.programming import (
    DeviceArray,
    c2c_factor,
    d2d_map,
    level_step,
    logistic_rate,
    stuck_maps,
    verify_window,
)
from xbarflow.flow.core.config import ChipConfig


# -- device model ------------------------------------------------------------------------------

def test_c2c_draw_is_keyed_by_cell_and_pulse_index():
    cfg = ChipConfig()
    z = np.random.default_rng([cfg.seeds.device, 7, 3, 5]).standard_normal()
    assert c2c_factor(cfg, 7, 3, 5) == max(0.0, 1.0 + cfg.device.c2c_sigma * z)
    assert c2c_factor(cfg, 7, 3, 5) != c2c_factor(cfg, 7, 3, 6) != c2c_factor(cfg, 3, 7, 5)


def test_pulses_reproducible_in_isolation_and_in_any_order():
    cfg = ChipConfig()
    a, b = DeviceArray(cfg), DeviceArray(cfg)
    for k in range(3):
        a.pulse(5, 3, 1.3)
    # b: other cells first and interleaved, and the cell's pulses keyed explicitly
    b.pulse(0, 0, 1.3)
    for k in range(3):
        b.pulse(9, 1, -1.4)
        b.pulse(5, 3, 1.3, pulse_index=k)
    assert a.lam[5, 3] == b.lam[5, 3] and a.lam[5, 3] > 0
    assert a.pulse_count[5, 3] == b.pulse_count[5, 3] == 3
    # one pulse with index 2 on a cell in the state after two pulses gives the same state
    c = DeviceArray(cfg)
    c.pulse(5, 3, 1.3)
    c.pulse(5, 3, 1.3)
    d = DeviceArray(cfg)
    d.lam[5, 3] = c.lam[5, 3]
    d.pulse(5, 3, 1.3, pulse_index=2)
    assert d.lam[5, 3] == a.lam[5, 3]


def test_vectorised_pulses_and_verifies_equal_scalar_bit_for_bit():
    cfg = ChipConfig()
    rng = np.random.default_rng(1)
    a, b = DeviceArray(cfg), DeviceArray(cfg)
    for _ in range(20):
        flat = rng.choice(a.lam.size, size=30, replace=False)
        rows, cols = np.unravel_index(flat, a.shape)
        amps = rng.choice([1.2, 1.25, 1.4, 1.55, -1.25, -1.3, -1.6], size=30)
        a.pulse_cells(rows, cols, amps)
        for r, c, v in zip(rows, cols, amps):
            b.pulse(int(r), int(c), float(v))
        refs = rng.integers(0, cfg.quant.weight_levels, 30)
        ok, high = a.verify_cells(rows, cols, refs)
        for n in range(30):
            assert (ok[n], high[n]) == b.verify(int(rows[n]), int(cols[n]), int(refs[n]))
    assert np.array_equal(a.lam, b.lam) and np.array_equal(a.pulse_count, b.pulse_count)


def test_set_raises_reset_lowers_and_state_stays_in_unit_interval():
    cfg = ChipConfig().replace(**{"device.rate_max": 1.0, "device.c2c_sigma": 1.5,
                                  "device.d2d_sigma": 0.8})
    dev = DeviceArray(cfg)
    rng = np.random.default_rng(2)
    for _ in range(200):
        r, c = int(rng.integers(0, 196)), int(rng.integers(0, 20))
        v = float(rng.choice([1.5, -1.6]))
        before = dev.lam[r, c]
        dev.pulse(r, c, v)
        after = dev.lam[r, c]
        assert 0.0 <= after <= 1.0
        assert after >= before if v > 0 else after <= before
    assert dev.lam.max() == 1.0 or dev.lam.max() > 0.9     # big steps do saturate
    g = dev.conductance()
    assert g.min() >= cfg.device.g_off and g.max() <= cfg.device.g_on


def test_rate_is_logistic_in_amplitude_and_steps_grow_with_it():
    cfg = ChipConfig().replace(**{"device.c2c_sigma": 0.0, "device.d2d_sigma": 0.0})
    d = cfg.device
    assert logistic_rate(d.set_v_half, cfg) == pytest.approx(d.rate_max / 2, rel=1e-15)
    assert logistic_rate(-d.reset_v_half, cfg) == pytest.approx(d.rate_max / 2, rel=1e-15)
    volts = np.linspace(0.8, 2.0, 25)
    rates = [logistic_rate(v, cfg) for v in volts]
    assert np.all(np.diff(rates) > 0) and rates[-1] < d.rate_max and rates[-1] > 0.99 * d.rate_max
    with pytest.raises(ValueError):
        logistic_rate(0.0, cfg)
    steps = []
    for v in (1.2, 1.3, 1.4):
        dev = DeviceArray(cfg)
        dev.pulse(0, 0, v)
        steps.append(dev.lam[0, 0])
    assert steps[0] < steps[1] < steps[2]
    assert steps[1] == pytest.approx(d.rate_max / 2, rel=1e-15)   # lambda 0 -> rate(|V|)


def test_stuck_cells_never_move():
    cfg = ChipConfig().replace(**{"device.stuck_on_rate": 0.2, "device.stuck_off_rate": 0.2,
                                  "device.rate_max": 0.5})
    dev = DeviceArray(cfg)
    assert dev.stuck_on.any() and dev.stuck_off.any() and not (dev.stuck_on & dev.stuck_off).any()
    rows, cols = (a.ravel() for a in np.indices(dev.shape))
    for v in (1.6, -1.6, 1.6):
        dev.pulse_cells(rows, cols, v)
    g = dev.conductance()
    assert np.all(g[dev.stuck_on] == cfg.device.g_on) and np.all(g[dev.stuck_off] == cfg.device.g_off)
    assert np.all(dev.pulse_count == 3)                 # they still receive (and count) pulses
    free = ~dev.stuck
    assert np.all((dev.lam[free] > 0) & (dev.lam[free] < 1))


def test_static_maps_deterministic_from_seed_and_change_with_it():
    cfg = ChipConfig().replace(**{"device.stuck_on_rate": 0.05, "device.stuck_off_rate": 0.05})
    other = cfg.replace(**{"seeds.device": cfg.seeds.device + 1})
    assert np.array_equal(d2d_map(cfg), d2d_map(cfg))
    assert not np.array_equal(d2d_map(cfg), d2d_map(other))
    on, off = stuck_maps(cfg)
    on2, off2 = stuck_maps(cfg)
    assert np.array_equal(on, on2) and np.array_equal(off, off2)
    assert not np.array_equal(on, stuck_maps(other)[0])
    n = on.size
    for m in (on, off):                                  # 5 % of 3920 cells, binomial
        assert abs(m.sum() - 0.05 * n) < 5 * np.sqrt(0.05 * 0.95 * n)
    spread = np.std(np.log(d2d_map(cfg)))
    assert spread == pytest.approx(cfg.device.d2d_sigma, rel=0.1)
    assert np.all(d2d_map(cfg.replace(**{"device.d2d_sigma": 0.0})) == 1.0)


def test_static_maps_follow_the_documented_keys():
    # d2d = exp(d2d_sigma * N(0, 1)) from default_rng([seeds.device, 2**32 - 1, 1]); the
    # stuck-at map from one uniform draw per cell of default_rng([seeds.device, 2**32 - 1, 2]):
    # u < stuck_on_rate is stuck on, the next stuck_off_rate of the range is stuck off.
    cfg = ChipConfig().replace(**{"device.stuck_on_rate": 0.1, "device.stuck_off_rate": 0.2})
    shape, seed = (cfg.crossbar.tile_rows, cfg.crossbar.tile_cols), cfg.seeds.device
    z = np.random.default_rng([seed, 2**32 - 1, 1]).standard_normal(shape)
    np.testing.assert_array_equal(d2d_map(cfg), np.exp(cfg.device.d2d_sigma * z))
    u = np.random.default_rng([seed, 2**32 - 1, 2]).random(shape)
    on, off = stuck_maps(cfg)
    np.testing.assert_array_equal(on, u < 0.1)
    np.testing.assert_array_equal(off, (u >= 0.1) & (u < 0.1 + 0.2))


def test_verify_window_edges():
    cfg = ChipConfig()
    d, dev = cfg.device, DeviceArray(cfg)
    assert dev.verify(0, 0, 0) == (True, False)          # pristine cells sit on level 0
    assert dev.verify(0, 0, 1) == (False, False)         # low: needs a set
    tol, gt = verify_window(cfg), float(level_conductance(np.array(10), cfg))
    assert tol == pytest.approx(0.4 * (0.9 * d.g_on - d.g_off) / 31) and level_step(cfg) * 0.4 == tol
    cases = [(gt, (True, False)), (gt + tol * (1 - 1e-9), (True, False)),
             (gt - tol * (1 - 1e-9), (True, False)), (gt + tol * (1 + 1e-9), (False, True)),
             (gt - tol * (1 + 1e-9), (False, False))]
    for g, expected in cases:
        dev.lam[3, 4] = (g - d.g_off) / (d.g_on - d.g_off)
        assert dev.verify(3, 4, 10) == expected, g
