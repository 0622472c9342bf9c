"""The demo's programming path (flow/commands/demo.py, which `xbarflow program` runs): what it
prints of the golden programming before the co-simulation.
Its bad input (a tile out of range, targets for another config) is in tests/flow/test_cli_errors.py;
the co-simulations in tests/cosim/test_programming*.py."""

import numpy as np

from xbarflow.flow.commands.demo import programming_lines, programming_report
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip


def test_targets_that_need_no_pulse_are_reported_not_a_crash(cfg, dataset, weights, tmp_path):
    """Every target at level 0, the pristine state: through the array (v2) no cell is pulsed,
    so there is no write margin to print (it once crashed formatting None)."""
    assert cfg.programming.bias == "v2"
    codes, labels = to_dac_codes(dataset.x_test[:100], cfg), dataset.y_test[:100]
    ideal = GoldenChip.from_weights(cfg, weights.w).infer(codes)
    zeros = np.zeros((1, cfg.crossbar.tile_rows, cfg.crossbar.tile_cols), np.int64)
    _, _, _, summary, _ = programming_report(cfg, weights, codes, labels, ideal, tmp_path, targets=zeros)
    assert summary["pulse_events"] == 0 and summary["write_margin_min_v"] is None
    head, array = programming_lines(summary)
    assert head.startswith("[xbarflow] golden programming: 0 pulse events, 0.00 pulses/cell (max 0)")
    assert array.startswith("[xbarflow] writes through the array (v2, 1R): ")
    assert array.endswith("; no cell pulsed")


def test_pulsed_cells_print_their_write_margin(cfg, dataset, weights, tmp_path):
    """A few cells to set: the smallest selected minus largest half-selected voltage is printed."""
    codes, labels = to_dac_codes(dataset.x_test[:100], cfg), dataset.y_test[:100]
    ideal = GoldenChip.from_weights(cfg, weights.w).infer(codes)
    targets = np.zeros((1, cfg.crossbar.tile_rows, cfg.crossbar.tile_cols), np.int64)
    targets[0, 0, :4] = cfg.quant.weight_levels - 1
    _, _, _, summary, _ = programming_report(cfg, weights, codes, labels, ideal, tmp_path, targets=targets)
    assert summary["pulse_events"] > 0
    margin = summary["write_margin_min_v"]
    assert 0 < margin < cfg.programming.v_set
    assert programming_lines(summary)[1].endswith(
        f"write margin >= {margin:.3f} V ({tmp_path / 'programming_margins.png'})")
