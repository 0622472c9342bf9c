"""Device programming model and the golden replay of the write-verify algorithm."""

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
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.programming import (
    accuracy_after_programming,
    place_levels,
    program_array,
    program_array_stepwise,
    tile_target_levels,
)

SMALL = ChipConfig().replace(**{"crossbar.tile_rows": 10, "crossbar.tile_cols": 6,
                                "crossbar.partitions": 3})       # partitions of 4, 3, 3 rows


def random_targets(cfg, seed=0):
    shape = (cfg.crossbar.tile_rows, cfg.crossbar.tile_cols)
    return np.random.default_rng(seed).integers(0, cfg.quant.weight_levels, shape)


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


# -- golden replay of the write-verify ---------------------------------------------------------

def deterministic_tiny():
    """2 partitions x 2 rows x 2 cols (the smallest valid tile is 4 x 4: a 2 x 2-input, 2-class
    layer; columns 2, 3 target level 0 and take no pulses); rate = rate_max = 1/2 exactly at
    every amplitude, lambda_t(level) = (16/18) * level/4, window +- 0.4 * 16/72 = +- 0.0889."""
    return ChipConfig().replace(**{
        "network.input_size": 2, "network.layers": [2],
        "crossbar.tile_rows": 4, "crossbar.tile_cols": 4, "crossbar.partitions": 2,
        "quant.weight_levels": 5, "device.g_on": 2e-8, "device.g_off": 2e-9,
        "device.rate_max": 0.5, "device.set_v_half": 0.2, "device.reset_v_half": 0.2,
        "device.v_slope": 0.001, "device.c2c_sigma": 0.0, "device.d2d_sigma": 0.0})


def test_tiny_hand_checked_case():
    cfg = deterministic_tiny()
    assert logistic_rate(1.2, cfg) == 0.5 and logistic_rate(-1.25, cfg) == 0.5
    # windows: L1 [.133, .311]  L2 [.356, .533]  L3 [.578, .756]  L4 [.800, .978]
    # set from 0: .5, .75, .875 -> L1: .5 high, reset .25 -> 2 pulses; L2: 1; L3: 2; L4: 3
    targets = np.array([[1, 4, 0, 0],      # partition 0, i = 0
                        [0, 2, 0, 0],      # partition 0, i = 1
                        [3, 0, 0, 0],      # partition 1, i = 0
                        [2, 1, 0, 0]])     # partition 1, i = 1
    r = program_array(cfg, targets)
    expected = np.array([[2, 3, 0, 0], [0, 1, 0, 0], [2, 0, 0, 0], [1, 2, 0, 0]])
    assert np.array_equal(r.pulses_per_cell, expected)
    # addresses (i, j): (0,0) max(2,2)  (0,1) max(3,0)  (1,0) max(0,1)  (1,1) max(1,2)
    assert (r.total_pulses, r.steps, r.failures) == (8, 8 + 2 * 4, 0)   # 2 x 4 addresses
    np.testing.assert_array_equal(r.lam[:, :2], [[0.25, 0.875], [0.0, 0.5], [0.75, 0.0], [0.5, 0.25]])
    # with a 2-pulse timeout the level-4 cell (0, 1) fails at 0.75
    r2 = program_array(cfg.replace(**{"programming.timeout_pulses": 2}), targets)
    assert r2.failures == 1 and r2.failed[0, 1] and r2.failed.sum() == 1
    assert r2.pulses_per_cell[0, 1] == 2 and r2.lam[0, 1] == 0.75
    assert (r2.total_pulses, r2.steps) == (7, 7 + 2 * 4)
    for res, c in ((r, cfg), (r2, cfg.replace(**{"programming.timeout_pulses": 2}))):
        lit = program_array_stepwise(c, targets)
        assert np.array_equal(lit.pulses_per_cell, res.pulses_per_cell)
        assert (lit.total_pulses, lit.steps, lit.failures) == (res.total_pulses, res.steps, res.failures)


def check_invariants(cfg, r):
    dev, prog = r.device, cfg.programming
    rows, cols = (a.ravel() for a in np.indices(dev.shape))
    ok, _ = dev.verify_cells(rows, cols, r.target_levels.ravel())
    ok = ok.reshape(dev.shape)
    assert r.failures == int(r.failed.sum()) == int((~ok).sum())   # failed <=> outside window
    assert np.array_equal(r.failed, ~ok)
    assert r.pulses_per_cell.max() <= prog.timeout_pulses
    assert np.all(r.pulses_per_cell[r.failed] == prog.timeout_pulses)
    assert r.steps == r.total_pulses + max(cfg.partition_rows) * cfg.crossbar.tile_cols
    assert r.total_pulses <= r.pulses_per_cell.sum()
    assert np.array_equal(r.conductance, dev.conductance())


def test_stepwise_literal_loop_equals_fast_replay_bit_for_bit():
    cfg = SMALL.replace(**{"device.stuck_on_rate": 0.05, "device.stuck_off_rate": 0.05})
    targets = random_targets(cfg, 3)
    trace = []
    fast = program_array(cfg, targets)
    lit = program_array_stepwise(cfg, targets, trace=trace)
    assert np.array_equal(fast.lam, lit.lam)
    assert np.array_equal(fast.pulses_per_cell, lit.pulses_per_cell)
    assert np.array_equal(fast.failed, lit.failed)
    assert (fast.failures, fast.total_pulses, fast.steps) == (lit.failures, lit.total_pulses, lit.steps)
    assert fast.failures > 0                  # the stuck cells exercise the timeout path
    check_invariants(cfg, fast)
    # trace: ramp of amplitude codes per address, polarity from the preceding verify,
    # partition 0 alone present at i = 3 (rows per partition 4, 3, 3)
    prog = cfg.programming
    assert sum(e[0] == "verify" for e in trace) == lit.steps
    n, last = 0, None
    for e in trace:
        if e[0] == "verify":
            if last is None or last[0] == "verify":
                n = 0                          # a new address
            last = e
            if e[1] == 3:
                assert e[3][1:] == (0, 0) and e[4] >> 1 == 0
            continue
        _, i, j, level, enable, polarity = e
        assert level == min(n // prog.pulses_per_level, prog.amplitude_levels - 1)
        assert enable & last[4] == 0 and polarity == enable & last[5]
        n, last = n + 1, e


def test_full_array_invariants_and_literal_parity_on_trained_targets(cfg, weights):
    targets = tile_target_levels(cfg, weights.w)
    r = program_array(cfg, targets)
    check_invariants(cfg, r)
    assert r.failures == 0 and r.pulses_per_cell.mean() < 15
    lit = program_array_stepwise(cfg, targets)
    assert np.array_equal(r.lam, lit.lam) and r.total_pulses == lit.total_pulses


def test_all_levels_converge_with_default_parameters(cfg):
    """Every one of the 32 levels, equally often: the ISPP ramp with a weaker first reset pulse
    converges without set/reset limit cycles (with v_reset = v_set, mid levels time out)."""
    c = cfg
    levels = c.quant.weight_levels
    n_cells = c.crossbar.tile_rows * c.crossbar.tile_cols
    targets = np.random.default_rng(0).permutation(np.arange(n_cells) % levels).reshape(
        c.crossbar.tile_rows, c.crossbar.tile_cols)
    r = program_array(c, targets)
    check_invariants(c, r)
    n = r.pulses_per_cell
    assert r.failures == 0
    assert n[targets > 0].mean() < 15
    assert max(n[targets == lv].mean() for lv in range(levels)) < 25


def test_five_percent_stuck_terminates_and_counts_unreachable_cells(cfg, weights):
    c = cfg.replace(**{"device.stuck_on_rate": 0.025, "device.stuck_off_rate": 0.025})
    targets = tile_target_levels(c, weights.w)
    r = program_array(c, targets)
    check_invariants(c, r)
    dev = r.device
    unreachable = dev.stuck_on | (dev.stuck_off & (targets > 0))   # stuck-off meets level 0 only
    assert unreachable.sum() > 50
    assert np.array_equal(r.failed, unreachable)


def test_target_placement():
    cfg = ChipConfig()
    t = place_levels(np.full((3, 4), 7), cfg)
    assert t.shape == (196, 20) and t[:3, :4].min() == 7 and t.sum() == 7 * 12
    with pytest.raises(ValueError):
        place_levels(np.zeros((197, 2), dtype=int), cfg)
    with pytest.raises(ValueError):
        program_array(cfg, np.full((196, 20), 32))


def test_accuracy_after_programming_within_one_point(cfg, dataset, weights):
    codes = to_dac_codes(dataset.x_test, cfg)
    a = accuracy_after_programming(cfg, weights.w, codes, dataset.y_test)
    assert a.result.failures == 0
    assert a.ideal >= 0.90
    assert abs(a.drop) <= 0.01, f"ideal {a.ideal:.4f} programmed {a.programmed:.4f}"
