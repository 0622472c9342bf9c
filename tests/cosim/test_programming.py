"""The chip programs its own crossbar through the write path (decoders, selectors,
write-verify, write-acknowledge across 8 partitions), driven over SPI and over UART, on
Icarus and Verilator. Every cell's pulse count, disturb events and final state, the PROG_*
registers, and then every image's class and ADC codes must equal the golden replay (writes
through the array, programming.bias = v2 by default)."""

import numpy as np
import pytest

from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.programming import program_array, programmed_chip, tile_target_levels
from xbarflow.flow.sim.runner import build, run

IMAGES = 20


def program_and_infer(cfg, dataset, weights, sim, tmp_path, images=IMAGES):
    targets = tile_target_levels(cfg, weights.w)
    golden = program_array(cfg, targets)
    indices = np.linspace(0, len(dataset.y_test) - 1, images).astype(np.int64)
    result = run(build(cfg, sim), np.zeros((cfg.rows, cfg.cols)), dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, timeout_s=900,
                 targets=targets)
    return golden, indices, result


@pytest.mark.parametrize("host", ["spi", "uart"])
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_program_then_infer_matches_golden(sim, host, cfg, dataset, weights, tmp_path):
    cfg = cfg.replace(**{"host.interface": host})
    golden, indices, result = program_and_infer(cfg, dataset, weights, sim, tmp_path)

    assert result.mismatches == []
    prog = result.programming
    assert prog["failures"] == golden.failures == 0
    assert prog["pulses_total"] == golden.total_pulses > 0
    assert prog["steps"] == max(cfg.partition_rows) * cfg.crossbar.tile_cols
    assert prog["pulses_per_cell_max"] == golden.pulses_per_cell.max()

    chip = programmed_chip(cfg, golden)
    reference = chip.infer(to_dac_codes(dataset.x_test[indices], cfg), indices)
    assert np.array_equal(result.sums, reference.adc_codes), "sums read back from the chip"
    assert np.array_equal(result.classes, reference.classes)
    assert np.array_equal(result.bridge_adc_codes, reference.adc_codes)


def test_disturbing_device_keeps_per_cell_parity(cfg, dataset, weights, tmp_path):
    """The low-threshold preset under V/2: half-selected cells move (thousands of disturb
    events, cells pushed out of their windows after their ack); the bridge solves every verify
    and pulse event on the array exactly as the golden replay does, so every cell's pulses,
    disturb events and final state still match bit for bit, and so does inference."""
    cfg = cfg.replace(**{"device.preset": "low_threshold", "programming.bias": "v2"})
    golden, indices, result = program_and_infer(cfg, dataset, weights, "verilator", tmp_path,
                                                images=5)
    assert result.mismatches == []
    assert golden.disturb_events.sum() > 1000 and golden.disturb_failures > 0
    assert result.programming["disturb_events"] == int(golden.disturb_events.sum())
    assert result.programming["pulse_events_served"] == golden.total_pulses
    chip = programmed_chip(cfg, golden)
    reference = chip.infer(to_dac_codes(dataset.x_test[indices], cfg), indices)
    assert np.array_equal(result.sums, reference.adc_codes)


def test_stuck_cells_end_by_timeout_with_exact_failures(cfg, dataset, weights, tmp_path):
    """5 % stuck-at cells: programming ends (the write-ack timeout forces the address on),
    the failure register equals the cells that could not reach their target, and inference
    on the damaged array still matches golden."""
    cfg = cfg.replace(**{"device.stuck_on_rate": 0.025, "device.stuck_off_rate": 0.025})
    golden, indices, result = program_and_infer(cfg, dataset, weights, "verilator", tmp_path,
                                                images=5)
    assert result.mismatches == []
    assert result.programming["failures"] == golden.failures == int(golden.failed.sum()) > 0
    assert golden.pulses_per_cell.max() == cfg.programming.timeout_pulses
    stuck = golden.device.stuck
    assert golden.failed[~stuck].sum() == 0, "only stuck cells may fail"


def test_programming_scoreboard_reports_exactly_one_corrupted_cell(cfg, dataset, weights, tmp_path,
                                                                   monkeypatch):
    """Self-test: the pulse count the monitor took from the select lines for cell (3, 7) has a
    bit flipped on its way to the scoreboard (cocotb_tests/sabotage.py): the scoreboard reports
    that one cell, and nothing else, and the bench fails."""
    from cocotb_tools.check_results import get_results

    monkeypatch.setenv("XBARFLOW_TEST_FAULT", "flip_pulses:row=3,col=7")
    golden, indices, result = program_and_infer(cfg, dataset, weights, "verilator", tmp_path, images=1)
    assert result.mismatches == ["programming: pulses per cell differ in 1 cells, first (3,7)"]
    assert get_results(tmp_path / "results-verilator.xml") == (1, 1), "the bench's test failed"
    assert result.programming["pulses_total"] == golden.total_pulses, "the chip itself was untouched"
    chip = programmed_chip(cfg, golden)
    reference = chip.infer(to_dac_codes(dataset.x_test[indices], cfg), indices)
    assert np.array_equal(result.sums, reference.adc_codes)
    assert np.array_equal(result.classes, reference.classes)


def test_the_bench_scores_against_the_golden_replay_the_job_carries(cfg, dataset, weights, tmp_path):
    """`run(..., golden_programming=...)` (what `xbarflow program` passes: its own replay) makes
    the bench score the chip against that replay instead of replaying it again: the host's
    replay with cell (2, 5)'s pulse count raised by one and cell (4, 1)'s final state nudged
    is reported as exactly those two cells, while the chip and inference stay at parity."""
    targets = tile_target_levels(cfg, weights.w)
    golden = program_array(cfg, targets)
    golden.pulses_per_cell = golden.pulses_per_cell.copy()
    golden.pulses_per_cell[2, 5] += 1
    golden.lam = golden.lam.copy()
    golden.lam[4, 1] = np.nextafter(golden.lam[4, 1], 2.0)
    indices = np.arange(2)
    result = run(build(cfg, "verilator"), np.zeros((cfg.rows, cfg.cols)), dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, timeout_s=900, targets=targets,
                 golden_programming=[golden])
    assert result.mismatches == ["programming: pulses per cell differ in 1 cells, first (2,5)",
                                 "programming: final memory state differs in 1 cells, first (4,1)"]
    assert result.programming["pulses_total"] == golden.total_pulses
    with pytest.raises(ValueError, match="needs the targets"):
        run(build(cfg, "verilator"), np.zeros((cfg.rows, cfg.cols)), dataset.x_test[indices],
            dataset.y_test[indices], indices, tmp_path / "no-targets", golden_programming=[golden])
