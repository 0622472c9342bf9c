"""The golden replay of the write-verify algorithm (flow/model/programming.py) on the device model."""

import numpy as np
import pytest

from xbarflow.analog_models.mapping import level_conductance, map_weights
from xbarflow.analog_models.programming import DeviceArray, logistic_rate, verify_window
from xbarflow.flow.core.config import ChipConfig
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.programming import (
    accuracy_after_programming,
    check_chip_targets,
    chip_target_levels,
    place_levels,
    program_array,
    program_array_stepwise,
    program_chip_array,
    programmed_chip,
    tile_target_levels,
)

from tests.support.cell_types import one_s_one_r

SMALL = ChipConfig().replace(**{"crossbar.tile_rows": 10, "crossbar.tile_cols": 6,
                                "crossbar.partitions": 3})       # partitions of 4, 3, 3 rows


def random_targets(cfg, seed=0):
    shape = (cfg.crossbar.tile_rows, cfg.crossbar.tile_cols)
    return np.random.default_rng(seed).integers(0, cfg.quant.weight_levels, shape)


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
        "device.v_slope": 0.001, "device.c2c_sigma": 0.0, "device.d2d_sigma": 0.0,
        "programming.bias": "ideal"})   # the algorithm alone: every pulse on its cell only


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
    assert r.failures == int(r.failed.sum())
    assert np.array_equal(r.failed | r.disturbed_out, ~ok)          # outside the window: one of them
    if prog.bias == "ideal":
        assert not r.disturbed_out.any()                            # failed <=> outside window
    else:
        # a cell acked in time ends outside its window only by what disturb moved it since (plus
        # the array read's wire-drop error, < 1e-5 relative)
        d = cfg.device
        outside = np.abs(r.conductance - level_conductance(r.target_levels, cfg)) - verify_window(cfg)
        moved = np.abs(r.disturb_change) * (d.g_on - d.g_off) + 1e-5 * r.conductance
        assert np.all(outside[r.disturbed_out] <= moved[r.disturbed_out])
        assert not r.failed[~ok].any() or np.all(r.pulses_per_cell[r.failed] == prog.timeout_pulses)
    assert r.pulses_per_cell.max() <= prog.timeout_pulses
    assert np.all(r.pulses_per_cell[r.failed] == prog.timeout_pulses)
    assert r.steps == r.total_pulses + max(cfg.partition_rows) * cfg.crossbar.tile_cols
    assert r.total_pulses <= r.pulses_per_cell.sum()
    assert np.array_equal(r.conductance, dev.conductance())


@pytest.mark.parametrize("bias", ["ideal", "v2"])   # two implementations; one loop through the array
def test_stepwise_literal_loop_equals_fast_replay_bit_for_bit(bias):
    cfg = SMALL.replace(**{"device.stuck_on_rate": 0.05, "device.stuck_off_rate": 0.05,
                           "programming.bias": bias})
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


# -- chips of several tiles --------------------------------------------------------------------

def small_mlp():
    """16 inputs -> 8 hidden -> 10 classes on 8 x 8 tiles: layer 0 is 2 row tiles x 2 column
    tiles (4 outputs each), layer 1 one row tile x 3 column tiles (4, 4, 2 outputs): 7 tiles."""
    from xbarflow.flow.core.config import load
    return load("configs/mlp.toml").replace(**{
        "network.input_size": 4, "network.layers": [8, 10], "crossbar.tile_rows": 8,
        "crossbar.tile_cols": 8, "crossbar.partitions": 2, "adc.adcs_per_tile": 2})


def test_chip_targets_cover_every_layer_once_and_pad_with_level_0():
    cfg = small_mlp()
    rng = np.random.default_rng(3)
    layers = [rng.standard_normal(s) for s in cfg.network.layer_shapes]
    targets = chip_target_levels(cfg, layers)
    assert targets.shape == (7, 8, 8)
    # Reassembled tile by tile (positions from the tile geometry, written out by hand here),
    # the blocks give back each layer's mapping exactly; everything else is level 0.
    for layer, blocks in ((0, [(0, 0, 0), (1, 8, 0), (2, 0, 4), (3, 8, 4)]),
                          (1, [(4, 0, 0), (5, 0, 4), (6, 0, 8)])):
        want = map_weights(layers[layer], cfg).levels
        got = np.full(want.shape, -1)
        for tile, row, out in blocks:
            n_out = min(4, want.shape[1] // 2 - out)
            got[row:row + 8, 2 * out:2 * out + 2 * n_out] = targets[tile, :, :2 * n_out]
            assert not targets[tile, :, 2 * n_out:].any()
        assert np.array_equal(got, want)
    assert not targets[6, :, 4:].any(), "tile 6 holds 2 outputs: 4 columns"


def test_each_tile_replays_the_literal_write_fsm_on_its_own_draws():
    """Per tile, the fast replay equals the literal FSM on DeviceArray(cfg, tile): pulses,
    failures, final states. Tile 0 draws as a one-tile chip does (keys unchanged); the other
    tiles draw differently, so equal targets give different pulse counts."""
    cfg = small_mlp()
    x = cfg.crossbar
    targets = np.random.default_rng(1).integers(0, cfg.quant.weight_levels, (7, x.tile_rows, x.tile_cols))
    results = program_chip_array(cfg, targets)
    for k, fast in enumerate(results):
        slow = program_array_stepwise(cfg, targets[k], DeviceArray(cfg, tile=k))
        assert np.array_equal(fast.pulses_per_cell, slow.pulses_per_cell), f"tile {k}"
        assert np.array_equal(fast.lam, slow.lam) and fast.failures == slow.failures
    assert np.array_equal(results[0].lam, program_array(cfg, targets[0]).lam)
    same = np.stack([targets[0]] * 7)
    pulses = [r.pulses_per_cell for r in program_chip_array(cfg, same)]
    assert all(not np.array_equal(pulses[0], p) for p in pulses[1:])
    d0, d3 = DeviceArray(cfg, tile=0), DeviceArray(cfg, tile=3)
    assert not np.array_equal(d0.d2d, d3.d2d)
    assert np.array_equal(d0.d2d, DeviceArray(cfg).d2d)


def test_programmed_chip_assembles_the_tiles_and_keeps_unprogrammed_tiles_ideal():
    cfg = small_mlp()
    rng = np.random.default_rng(4)
    layers = [rng.standard_normal(s) for s in cfg.network.layer_shapes]
    targets = chip_target_levels(cfg, layers)
    ideal = programmed_chip(cfg, [None] * 7, [40], targets=targets)
    for got, want in zip(ideal.layer_conductance, [m.conductance for m in GoldenChip.mappings(cfg, layers)]):
        assert np.array_equal(got, want)
    results = program_chip_array(cfg, targets, tiles=[5])
    chip = programmed_chip(cfg, results, [40], targets=targets)
    g1 = chip.layer_conductance[1]
    assert np.array_equal(g1[:, 8:16], results[5].conductance[:8, :8])    # tile 5: outputs 4..7
    assert np.array_equal(g1[:, :8], ideal.layer_conductance[1][:, :8])
    assert not np.array_equal(g1[:, 8:16], ideal.layer_conductance[1][:, 8:16])


def test_targets_for_another_chip_and_tiles_out_of_range_are_refused():
    cfg = small_mlp()
    with pytest.raises(ValueError, match=r"not for config 'mlp': it needs 7 tiles of 8 x 8"):
        check_chip_targets(cfg, np.zeros((196, 20), dtype=np.int64))     # the SLP's targets
    with pytest.raises(ValueError, match="0..31"):
        check_chip_targets(cfg, np.full((7, 8, 8), 32))
    with pytest.raises(IndexError, match="tile 7 out of range"):
        program_chip_array(cfg, np.zeros((7, 8, 8), dtype=np.int64), tiles=[7])
    assert check_chip_targets(ChipConfig(), np.zeros((196, 20), dtype=np.int64)).shape == (1, 196, 20)


@pytest.mark.parametrize("kind, tiles", [("exponential", None), ("threshold", [0, 3])])
def test_1s1r_qmm_chip_replay_converges_through_the_array(kind, tiles):
    """A small chip (7 tiles of 8 x 8) of 1S1R cells with QMM memdiodes programmed through the
    array under V/2 (every pulse and verify solved with the selector in series with the memdiode,
    analog_models/selector_memdiode.py): write-verify converges or times out. Every cell that
    did not time out ends inside its verify window around its level's target (lam is the chord
    conductance at V_read, selector included; the window's edge by 1e-6: wire drops of the read),
    no disturb with the shipped device, the literal write FSM gives the same bits. Measured: the
    exponential selector every cell of every tile; the threshold one a set/reset limit cycle at
    the top amplitude on one cell each of tiles 0 and 3 (its pulses step over the window), timed
    out.
    Not vacuous: the selector changes the pulse sequence against 1R QMM cells."""
    cfg = one_s_one_r(kind, qmm=True, base=small_mlp(), programming__bias="v2")
    x, d = cfg.crossbar, cfg.device
    targets = np.random.default_rng(2).integers(0, cfg.quant.weight_levels, (7, x.tile_rows, x.tile_cols))
    results = program_chip_array(cfg, targets, tiles)
    window = verify_window(cfg)
    done = [k for k, r in enumerate(results) if r is not None]
    assert done == (tiles or list(range(7)))
    for k in done:
        r = results[k]
        assert r.disturb_events.sum() == 0, f"tile {k}"
        assert np.all(r.pulses_per_cell[r.failed] == cfg.programming.timeout_pulses)
        g = d.g_off + (d.g_on - d.g_off) * r.lam
        want = level_conductance(targets[k], cfg)
        assert np.all(np.abs(g - want)[~r.failed] <= window * (1 + 1e-6)), f"tile {k}"
        assert r.pulses_per_cell[targets[k] > 0].min() > 0
    failures = [results[k].failures for k in done]
    assert failures == ([0] * 7 if kind == "exponential" else [1, 1])
    slow = program_array_stepwise(cfg, targets[3], DeviceArray(cfg, tile=3))
    assert np.array_equal(slow.lam, results[3].lam)
    assert np.array_equal(slow.pulses_per_cell, results[3].pulses_per_cell)
    plain = program_chip_array(cfg.replace(**{"crossbar.cell": "1R"}), targets, tiles=[3])
    assert not np.array_equal(plain[3].pulses_per_cell, results[3].pulses_per_cell)
    print(f"[1S1R QMM {kind}] pulses per tile {[results[k].total_pulses for k in done]}, "
          f"max per cell {max(results[k].pulses_per_cell.max() for k in done)}, failures {failures}")
