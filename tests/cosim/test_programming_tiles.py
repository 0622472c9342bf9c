"""A multi-tile chip programs every tile through its write path (PROG_TILE, WRITE_TARGETS,
START_PROGRAM per tile, the tile chosen on `prog_tile_sel`), then classifies on the programmed
conductances. A small two-layer chip (16 inputs, 8 hidden, 10 classes on 8 x 8 tiles: 7 tiles)
keeps it short; `xbarflow program --config configs/mlp.toml` runs the full 10-tile MLP (README).

Every tile's cells (pulses, final states) and PROG_* counters must equal the golden replay of
that tile on its own keyed draws, and every image's class and sums the golden chip on the
programmed conductances. Random targets and weights: parity does not need a trained network."""

import numpy as np
import pytest

from xbarflow.flow.core.config import load
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.programming import program_chip_array, programmed_chip
from xbarflow.flow.sim.runner import build, run

SMALL_MLP = {"network.input_size": 4, "network.layers": [8, 10], "crossbar.tile_rows": 8,
             "crossbar.tile_cols": 8, "crossbar.partitions": 2, "adc.adcs_per_tile": 2}
IMAGES = 6
MULT = [40]


def small_mlp(**extra):
    return load("configs/mlp.toml").replace(**{**SMALL_MLP, **extra})


def random_targets(cfg, seed=5):
    x = cfg.crossbar
    rng = np.random.default_rng(seed)
    return rng.integers(0, cfg.quant.weight_levels, (len(cfg.tiles), x.tile_rows, x.tile_cols))


def program_and_infer(cfg, dataset, sim, tmp_path, tiles=None):
    targets = random_targets(cfg)
    golden = program_chip_array(cfg, targets, tiles)
    indices = np.linspace(0, len(dataset.y_test) - 1, IMAGES).astype(np.int64)
    zeros = [np.zeros((n, 2 * m)) for n, m in cfg.network.layer_shapes]
    result = run(build(cfg, sim), zeros, dataset.x_test[indices], dataset.y_test[indices],
                 indices, tmp_path, timeout_s=900, targets=targets, requant_mult=MULT,
                 program_tiles=tiles)
    chip = programmed_chip(cfg, golden, MULT, targets=targets)
    reference = chip.infer(to_dac_codes(dataset.x_test[indices], cfg), indices)
    return golden, result, reference


@pytest.mark.parametrize("sim, host", [("verilator", "spi"), ("verilator", "uart"),
                                       ("icarus", "spi")])
def test_every_tile_programmed_then_infer_matches_golden(sim, host, dataset, tmp_path, sim_root):
    cfg = small_mlp(**{"host.interface": host})
    assert len(cfg.tiles) == 7
    golden, result, reference = program_and_infer(cfg, dataset, sim, tmp_path)

    assert result.mismatches == []
    prog = result.programming
    assert prog["tiles_programmed"] == list(range(7))
    per_tile = prog["per_tile"]
    for k, g in enumerate(golden):
        assert per_tile[str(k)]["pulses_total"] == g.total_pulses > 0, f"tile {k}"
        assert per_tile[str(k)]["failures"] == g.failures
    assert prog["steps"] == 7 * max(cfg.partition_rows) * cfg.crossbar.tile_cols
    # Each tile drew its own devices: same targets would still give other pulse counts.
    assert len({g.total_pulses for g in golden}) > 1
    assert np.array_equal(result.sums, reference.adc_codes), "sums read back from the chip"
    assert np.array_equal(result.classes, reference.classes)


def test_one_tile_programmed_the_others_ideal(dataset, tmp_path, sim_root):
    """Only tile 4 is programmed (PROG_TILE = 4): its cells match its golden replay, the
    other tiles keep their ideal targets, and inference matches that mixed chip."""
    cfg = small_mlp()
    golden, result, reference = program_and_infer(cfg, dataset, "verilator", tmp_path, tiles=[4])
    assert result.mismatches == []
    assert result.programming["tiles_programmed"] == [4]
    assert result.programming["pulses_total"] == golden[4].total_pulses > 0
    assert [g is None for g in golden] == [k != 4 for k in range(7)]
    assert np.array_equal(result.sums, reference.adc_codes)
    assert np.array_equal(result.classes, reference.classes)
