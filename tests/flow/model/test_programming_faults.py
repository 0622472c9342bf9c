"""Faulty devices (flow/model/programming.py on analog_models/programming.py's fault maps).

Devices: stuck-at cells, targets the write drivers cannot reach, and a dead partition (every
cell of one row partition open, stuck at g_off: `device.dead_partition`). Programming must end
by the write-acknowledge timeout with failure counts predicted cell by cell from the fault maps
alone, the literal write-verify loop must equal the fast golden replay bit for bit, inference
must still complete, and the programming report must show what the faults cost in accuracy.
One co-simulation (Verilator) programs a chip with a dead partition through its write path:
every cell's pulses and final state, PROG_FAILURES and the inference that follows must equal
the golden replay (stalled simulations: tests/cosim/test_watchdog.py).
"""

import numpy as np
import pytest

from xbarflow.analog_models.mapping import level_conductance
from xbarflow.analog_models.programming import DeviceArray, stuck_maps, verify_window
from xbarflow.flow.core import config as config_mod
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.programming import (
    accuracy_after_programming,
    program_array,
    program_array_stepwise,
    programmed_chip,
    tile_target_levels,
)

FAULTS = {
    "stuck": {"device.stuck_on_rate": 0.025, "device.stuck_off_rate": 0.025},
    # Write drivers far too weak to move a device (rate ~1e-7 of its maximum per pulse): every
    # target that is not the pristine state g_off is out of reach.
    # The ideal write: nothing moves at either bias, and through the array the 150 pulses per cell
    # are ~72k solved events (minutes); stuck and dead_partition time out through the array.
    "unreachable": {"programming.v_set": 0.6, "programming.v_reset": 0.6, "programming.v_step": 0.0,
                    "programming.bias": "ideal"},
    "dead_partition": {"device.dead_partition": 3},
}
# What a timeout, a failure count or the report's accuracy cost proves does not depend on how
# the pulse reaches the cell: the ideal write (every pulse on its cell alone) keeps those tests
# seconds long; the same faults through the array (V/2) are checked cell by cell below
# (test_fault_ends_by_timeout_with_exact_failures, test_dead_partition_leaves_the_other_partitions_alone,
# test_literal_write_verify_equals_fast_replay) and, with their accuracy, against figures.json
# (tests/flow/analysis/test_figures.py, group "programming").
IDEAL_WRITE = {"programming.bias": "ideal"}
SMALL = {"crossbar.tile_rows": 10, "crossbar.tile_cols": 6, "crossbar.partitions": 3,
         "network.input_size": 3, "network.layers": [3]}


def unreachable_cells(cfg, targets, fault):
    """Cells whose target no pulse can reach, from the fault maps alone (no programming): a
    stuck cell sits at g_on or g_off; with the weak drivers every cell stays where it starts."""
    on, off = stuck_maps(cfg)
    fixed = on | off if fault != "unreachable" else np.ones(targets.shape, dtype=bool)
    g = np.where(on, cfg.device.g_on, cfg.device.g_off)
    outside = np.abs(g - level_conductance(targets, cfg)) > verify_window(cfg)
    return fixed & outside


@pytest.fixture(scope="module")
def test_codes(cfg, dataset):
    return to_dac_codes(dataset.x_test, cfg)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_ends_by_timeout_with_exact_failures(fault, cfg, weights):
    c = cfg.replace(**FAULTS[fault])
    targets = tile_target_levels(c, weights.w)
    r = program_array(c, targets)
    expected = unreachable_cells(c, targets, fault)
    assert expected.sum() > 50
    assert np.array_equal(r.failed, expected), f"{fault}: failed cells differ from the prediction"
    assert r.failures == int(expected.sum())
    # Programming ended: every failed cell got exactly the timeout's pulses, no cell more.
    assert np.all(r.pulses_per_cell[r.failed] == c.programming.timeout_pulses)
    assert r.pulses_per_cell.max() == c.programming.timeout_pulses
    assert r.steps == r.total_pulses + max(c.partition_rows) * c.crossbar.tile_cols


@pytest.mark.parametrize("bias", ["ideal", "v2"])
def test_dead_partition_leaves_the_other_partitions_alone(cfg, weights, bias):
    cfg = cfg.replace(**{"programming.bias": bias})
    targets = tile_target_levels(cfg, weights.w)
    healthy = program_array(cfg, targets)
    c = cfg.replace(**FAULTS["dead_partition"])
    dead = program_array(c, targets)
    p = 3
    rows = slice(c.partition_start[p], c.partition_start[p] + c.partition_rows[p])
    inside = np.zeros(targets.shape, dtype=bool)
    inside[rows] = True
    # The dead partition: every cell at g_off, failed unless its target is level 0.
    assert np.all(dead.conductance[rows] == c.device.g_off)
    assert np.array_equal(dead.failed[rows], targets[rows] > 0)
    assert not dead.failed[~inside].any()
    # Elsewhere, with the ideal write, the cells see exactly the pulses and states of a healthy
    # chip (the write-ack holds each address longer, but an acknowledged cell is never pulsed
    # again). Through the array the extra events pulse only the dead partition (the others see
    # no voltage: nothing moves there), but they shift the event index that keys every c2c draw
    # of the later events, so the other partitions take other (equally likely) draws: they still
    # all converge, with the same pulse statistics.
    if bias == "ideal":
        assert np.array_equal(dead.pulses_per_cell[~inside], healthy.pulses_per_cell[~inside])
        assert np.array_equal(dead.lam[~inside], healthy.lam[~inside])
    else:
        assert not healthy.failed.any()
        # a cell outside its window at the end is one disturb moved there after its ack
        out = dead.disturbed_out & ~inside
        miss = np.abs(dead.conductance - level_conductance(targets, c)) - verify_window(c)
        moved = np.abs(dead.disturb_change) * (c.device.g_on - c.device.g_off) + 1e-5 * dead.conductance
        assert np.all(miss[out] <= moved[out])
        assert abs(dead.pulses_per_cell[~inside].mean() - healthy.pulses_per_cell[~inside].mean()) < 0.1
        assert not np.array_equal(dead.lam[~inside], healthy.lam[~inside])
    assert dead.total_pulses > healthy.total_pulses


@pytest.mark.parametrize("bias", ["ideal", "v2"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_literal_write_verify_equals_fast_replay(fault, bias):
    """On a small tile (partitions of 4, 3, 3 rows; the literal loop is slow)."""
    over = {**FAULTS[fault], "programming.bias": bias}
    if fault == "stuck":
        over.update({"device.stuck_on_rate": 0.1, "device.stuck_off_rate": 0.1})
    if fault == "dead_partition":
        over["device.dead_partition"] = 1
    c = config_mod.ChipConfig().replace(**SMALL, **over)
    targets = np.random.default_rng(5).integers(0, c.quant.weight_levels,
                                                (c.crossbar.tile_rows, c.crossbar.tile_cols))
    fast, lit = program_array(c, targets), program_array_stepwise(c, targets)
    assert fast.failures > 0
    assert np.array_equal(fast.failed, unreachable_cells(c, targets, fault))
    assert np.array_equal(fast.failed, lit.failed) and np.array_equal(fast.lam, lit.lam)
    assert np.array_equal(fast.pulses_per_cell, lit.pulses_per_cell)
    assert (fast.failures, fast.total_pulses, fast.steps) == (lit.failures, lit.total_pulses, lit.steps)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_inference_completes_and_the_report_shows_the_accuracy_cost(fault, cfg, dataset, weights,
                                                                   test_codes, tmp_path):
    from xbarflow.flow.commands.demo import programming_report as _programming_report
    from xbarflow.flow.model.golden import GoldenChip

    c = cfg.replace(**{**FAULTS[fault], **IDEAL_WRITE})   # the report, not the write physics (above)
    labels = dataset.y_test.astype(np.int64)
    ideal = GoldenChip.from_weights(c, weights.w).infer(test_codes)
    targets, chip, full, summary, _ = _programming_report(c, weights, test_codes, labels, ideal, tmp_path)
    assert full.classes.shape == labels.shape            # every image classified
    golden = program_array(c, targets)
    assert summary["failures"] == golden.failures > 0
    assert summary["pulses_per_cell_max"] == c.programming.timeout_pulses
    cost = summary["golden_accuracy_ideal_targets"] - summary["golden_accuracy_programmed"]
    assert summary["golden_accuracy_ideal_targets"] > 0.9
    assert cost > 0.005, f"{fault}: no accuracy cost reported ({summary})"
    assert (tmp_path / "programming_pulses.png").stat().st_size > 0
    # The same figure from the library call the README quotes.
    acc = accuracy_after_programming(c, weights.w, test_codes, labels)
    assert acc.programmed == pytest.approx(summary["golden_accuracy_programmed"], abs=1e-6)


def test_dead_partition_config_is_validated():
    cfg = config_mod.ChipConfig()
    assert cfg.device.dead_partition == -1
    on, off = stuck_maps(cfg)
    assert not on.any() and not off.any()
    for bad in (8, -2):
        with pytest.raises(config_mod.ConfigError, match="dead_partition"):
            cfg.replace(**{"device.dead_partition": bad})
    with pytest.raises(config_mod.ConfigError, match="expected an integer"):
        cfg.replace(**{"device.dead_partition": 1.5})
    dead = DeviceArray(cfg.replace(**{"device.dead_partition": 7}))
    assert dead.stuck_off[-cfg.partition_rows[7]:].all() and dead.stuck.sum() == cfg.partition_rows[7] * 20


# -- co-simulation -------------------------------------------------------------------------------

def test_cosim_dead_partition_matches_golden(cfg, dataset, weights, tmp_path):
    """The chip programs itself with partition 3 dead (Verilator, SPI): programming ends by the
    timeout, PROG_FAILURES and every cell's pulses and final state equal the golden replay, and
    the inference that follows equals the golden chip on the programmed (damaged) array."""
    from xbarflow.flow.sim.runner import build, run

    # The ideal write: the dead partition's ~75k timed-out pulses would each be an array solve
    # (minutes); the write-ack and timeout logic does not care. Through the array with V/2 the
    # chip is co-simulated in tests/cosim/test_programming.py (SPI/UART, Icarus/Verilator, disturb).
    c = cfg.replace(**FAULTS["dead_partition"], **IDEAL_WRITE)
    targets = tile_target_levels(c, weights.w)
    golden = program_array(c, targets)
    indices = np.array([0, 1, 2, 3])
    result = run(build(c, "verilator"), np.zeros((c.rows, c.cols)), dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, timeout_s=1200,
                 targets=targets)
    assert result.mismatches == []        # per-cell pulses and states, PROG_* registers, images
    prog = result.programming
    assert prog["failures"] == golden.failures == int(golden.failed.sum()) > 0
    assert prog["pulses_total"] == golden.total_pulses
    assert prog["pulses_per_cell_max"] == c.programming.timeout_pulses
    reference = programmed_chip(c, golden).infer(to_dac_codes(dataset.x_test[indices], c), indices)
    assert np.array_equal(result.sums, reference.adc_codes), "sums read back from the chip"
    assert np.array_equal(result.classes, reference.classes)
