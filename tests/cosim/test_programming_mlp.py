"""The full MLP (configs/mlp.toml: 10 tiles of 128 x 128, the shipped reference weights)
programmed through the array as shipped (programming.bias = v2, 1R cells, the shipped device) by
`xbarflow program --config configs/mlp.toml`, then 20 test images classified on the programmed
conductances, over SPI and over UART, on Icarus and Verilator.

The bench's scoreboard compares every tile's cells with that tile's golden replay (pulses per
cell from the select lines, disturb events and final memory state of every cell, the PROG_*
registers; cocotb_tests/programming.py) and reports any difference as a mismatch; parity is on
RESULT, the sums read back and the DAC codes driven. The full-test-set golden accuracy on the
programmed conductances must stay within 1 point of the ideal targets'.

Minutes to an hour per run (a Verilator build of the 10-tile chip, 163,840 target bytes over
the host link, ~110k pulse events each solved on the array): marked slow, run by
`make program-mlp` (all four), not by `make test`; tests/cosim/test_programming_tiles.py
covers the same paths on a 7-tile chip within `make test`.
"""

import json

import pytest

from xbarflow.flow.cli import main as xbarflow
from xbarflow.flow.core import config as cfgmod

MLP = cfgmod.CONFIG_DIR / "mlp.toml"
IMAGES = 20


def program_mlp(out, sim, host, *extra):
    """`xbarflow program --config configs/mlp.toml` into `out`: (exit code, report.json)."""
    code = xbarflow(["program", "--config", str(MLP), "--sim", sim, "--host", host,
                     "--images", str(IMAGES), "--out", str(out), *extra])
    return code, json.loads((out / "report.json").read_text())


def check_programmed_mlp(cfg, report, sim, host):
    """What the done-means of writes through the array require of one run's report."""
    assert report["mismatches"] == [], "per-cell programming scoreboard (every tile)"
    golden, chip = report["programming"], report["programming"]["cosim"]
    assert chip["tiles_programmed"] == list(range(10)) == golden["tiles_programmed"]
    assert chip["bias"] == golden["bias"] == "v2" and golden["cell"] == "1R"
    # the chip's own PROG_* registers, summed over its tiles, against the host's golden replay
    assert chip["pulses_total"] == chip["golden_pulses_total"] == golden["pulse_events"] > 0
    assert chip["failures"] == chip["golden_failures"] == golden["failures"]
    assert chip["pulse_events_served"] == golden["pulse_events"]
    assert chip["steps"] == 10 * max(cfg.partition_rows) * cfg.crossbar.tile_cols
    assert sum(t["pulses_total"] for t in chip["per_tile"].values()) == chip["pulses_total"]

    assert report["images"] == IMAGES and report["parity"] == 1.0
    assert report["mismatched_images"] == 0
    assert report["host"] == host and report["simulator"] == sim
    ideal, programmed = golden["golden_accuracy_ideal_targets"], golden["golden_accuracy_programmed"]
    assert ideal == 0.9772, "the MLP's reference weights on ideal targets (README, MLP accuracy)"
    assert abs(programmed - ideal) <= 0.01


@pytest.mark.slow
@pytest.mark.program_mlp
@pytest.mark.parametrize("sim, host", [("verilator", "spi"), ("verilator", "uart"),
                                       ("icarus", "spi"), ("icarus", "uart")])
def test_mlp_programmed_through_the_array_then_infers_at_parity(sim, host, tmp_path, sim_root):
    cfg = cfgmod.load(MLP)
    assert (cfg.programming.bias, cfg.crossbar.cell, cfg.device.preset) == \
        ("v2", "1R", cfgmod.DEFAULT_DEVICE_PRESET), "as shipped"
    code, report = program_mlp(tmp_path / "run", sim, host)
    check_programmed_mlp(cfg, report, sim, host)
    assert code == 0


@pytest.mark.slow
@pytest.mark.program_mlp
def test_mlp_scoreboard_reports_exactly_one_corrupted_cell(tmp_path, sim_root, monkeypatch):
    """Self-test: tile 0's pulse count of cell (3, 7) gets a bit flipped between the monitor and
    the scoreboard (cocotb_tests/sabotage.py); only tile 0 is programmed (the Verilator build
    of the run above is reused). The scoreboard names that one cell and the command fails."""
    monkeypatch.setenv("XBARFLOW_TEST_FAULT", "flip_pulses:row=3,col=7")
    code, report = program_mlp(tmp_path / "run", "verilator", "spi", "--tile", "0")
    assert report["mismatches"] == ["programming: tile 0: pulses per cell differ in 1 cells, first (3,7)"]
    assert code == 1
    assert report["programming"]["cosim"]["tiles_programmed"] == [0]
    assert report["parity"] == 1.0, "inference itself was untouched"
