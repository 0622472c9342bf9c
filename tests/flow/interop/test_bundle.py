"""The recorded pulse schedule against the literal write FSM (program_array_stepwise's bus
trace), on a small tile with faults and timeouts; the target levels of a tiled config."""

import numpy as np

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.interop.bundle import pulse_schedule
from xbarflow.flow.model.programming import chip_target_levels
from xbarflow.flow.model.programming import program_array, program_array_stepwise

SMALL = {"network.input_size": 4, "network.layers": [3], "crossbar.tile_rows": 16,
         "crossbar.tile_cols": 6, "crossbar.partitions": 4, "device.stuck_on_rate": 0.05,
         "programming.timeout_pulses": 20}
#: the ideal write: its schedule is recorded from the device calls, independent of the FSM trace
IDEAL = {**SMALL, "programming.bias": "ideal"}


def trace_schedule(cfg, levels):
    """Per cell, the polarity letters and amplitude codes of its pulses, from the FSM's trace:
    ("pulse", i, j, level, enable_mask, polarity_mask) pulses cell (start[p] + i, j) of every
    enabled partition p, reset where the polarity bit is set."""
    trace = []
    result = program_array_stepwise(cfg, levels, trace=trace)
    pol = {}
    amp = {}
    for event in trace:
        if event[0] != "pulse":
            continue
        _, i, j, level, enable, polarity = event
        for p, start in enumerate(cfg.partition_start):
            if enable >> p & 1:
                cell = (start + i, j)
                pol[cell] = pol.get(cell, "") + ("R" if polarity >> p & 1 else "S")
                amp.setdefault(cell, []).append(level)
    return result, pol, amp


def test_schedule_is_the_write_fsm_pulse_by_pulse():
    cfg = cfgmod.load().replace(**IDEAL)
    levels = np.random.default_rng(4).integers(0, cfg.quant.weight_levels, (16, 6))
    result, polarity, amps = pulse_schedule(cfg, levels)
    ref, pol, amp = trace_schedule(cfg, levels)
    assert result.failures > 0 and any("R" in p for p in pol.values()), "timeouts and resets exercised"
    for r in range(16):
        for c in range(6):
            assert polarity[r, c] == pol.get((r, c), ""), (r, c)
            assert amps[r, c] == ";".join(str(v) for v in amp.get((r, c), [])), (r, c)
    assert np.array_equal(result.conductance, ref.conductance)
    assert np.array_equal(result.failed, ref.failed)


def test_tile_levels_cut_each_layer_into_tiles():
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml")
    rng = np.random.default_rng(1)
    layers = [rng.normal(size=(196, 256)), rng.normal(size=(256, 10))]
    levels = chip_target_levels(cfg, layers)
    assert len(levels) == 10 and all(lv.shape == (128, 128) for lv in levels)
    last = cfg.tiles[-1]   # layer 1, rows 128..255, 10 outputs -> 20 columns
    assert last.layer == 1 and last.row_start == 128
    from xbarflow.analog_models.mapping import map_weights
    want = map_weights(layers[1], cfg).levels[128:256]
    assert np.array_equal(levels[-1][:, :20], want) and not levels[-1][:, 20:].any()


def test_schedule_through_the_array_counts_every_pulse_of_the_replay():
    """Through the array (bias v2) the schedule is the FSM's trace: one letter per pulse each
    cell received in the replay, and the replay is program_array's (same result)."""
    cfg = cfgmod.load().replace(**SMALL, **{"programming.bias": "v2"})
    levels = np.random.default_rng(4).integers(0, cfg.quant.weight_levels, (16, 6))
    result, polarity, amps = pulse_schedule(cfg, levels)
    assert np.array_equal(np.vectorize(len)(polarity), result.pulses_per_cell)
    assert result.total_pulses > 0
    assert np.array_equal(result.lam, program_array(cfg, levels).lam)
