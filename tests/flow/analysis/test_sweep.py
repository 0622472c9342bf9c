"""Sweeps (flow/analysis/sweep.py): parameter parsing, the grid, the pure per-point evaluation,
the process pool, retraining points (the `sweep` command: tests/flow/commands/test_sweep.py)."""

import functools

import numpy as np
import pytest

from xbarflow.flow.analysis import sweep
from xbarflow.flow.core.paths import WEIGHTS as WEIGHTS_DIR
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.train import load_or_train


def test_parse_param_values():
    assert sweep.parse_param("adc.bits=4,6,8") == ("adc.bits", [4, 6, 8])
    assert sweep.parse_param("crossbar.wire_r=0, 1.5,2e-1") == ("crossbar.wire_r", [0, 1.5, 0.2])
    assert sweep.parse_param("adc.kind=sar,\"flash\"") == ("adc.kind", ["sar", "flash"])
    assert sweep.parse_param("network.layers=[10],[32,10]") == ("network.layers", [[10], [32, 10]])
    for bad in ("adc.bits", "adc.bits=", "=4", "adc.bits=4,,6"):
        with pytest.raises(sweep.SweepError):
            sweep.parse_param(bad)


def test_grid_is_the_cartesian_product():
    pts = sweep.grid([("adc.bits", [4, 8]), ("crossbar.wire_r", [0, 1, 5])])
    assert len(pts) == 6 and pts[0] == {"adc.bits": 4, "crossbar.wire_r": 0}
    assert pts[-1] == {"adc.bits": 8, "crossbar.wire_r": 5}
    with pytest.raises(sweep.SweepError, match="twice"):
        sweep.grid([("adc.bits", [4]), ("adc.bits", [6])])


def test_evaluate_point_is_the_golden_model(cfg, dataset):
    row = sweep.evaluate_point(cfg.to_dict(), {"adc.bits": 6})
    c = cfg.replace(**{"adc.bits": 6})
    weights = load_or_train(c, dataset, WEIGHTS_DIR)
    codes = to_dac_codes(dataset.x_test, c)
    golden = GoldenChip.from_weights(c, weights).infer(codes, np.arange(len(codes)))
    assert row["golden_accuracy"] == pytest.approx(float(np.mean(golden.classes == dataset.y_test)))
    assert row["adc.bits"] == 6 and row["config_digest"] == c.digest()
    assert row["energy_pj"] > 0 and row["tops_per_w"] > 0 and row["latency_ns"] > 0


def test_pool_and_serial_agree(cfg):
    points = [{"adc.bits": 4}, {"adc.bits": 8}]
    fn = functools.partial(sweep.evaluate_point, cfg.to_dict())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(sweep.map_points(fn, points, jobs=2)) == strip(sweep.map_points(fn, points, jobs=1))


def test_retraining_points(cfg, tmp_path):
    """A network change retrains (cached by training digest); the rows keep their overrides."""
    rows = sweep.sweep(cfg.to_dict(), [("network.input_size", [8]), ("crossbar.tile_rows", [64])], jobs=1)
    assert rows[0]["network.input_size"] == 8 and 0.5 < rows[0]["golden_accuracy"] < 1
