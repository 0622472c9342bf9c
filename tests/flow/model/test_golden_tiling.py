"""Tiled multi-layer golden model: tile geometry and order, an independent per-tile reference,
the SLP path unchanged, batch == one-by-one, and the requantiser / binary edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from xbarflow.analog_models.array import AnalogArray
from xbarflow.analog_models.mapping import map_weights
from xbarflow.flow.core import config
from xbarflow.flow.core.paths import WEIGHTS as WEIGHTS_DIR
from xbarflow.flow.core.config import ChipConfig, ConfigError
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import (
    GoldenChip,
    binary_activation,
    requantize_relu,
    tile_event_indices,
)
from xbarflow.flow.model.train import load_or_train

#: Uneven on purpose: 25 inputs over row tiles of 10 (10, 10, 5), 7 hidden outputs over column
#: tiles of 3 (3, 3, 1), 7 hidden inputs in one row tile of 7, 3 classes in one column tile.
UNEVEN = {"network.input_size": 5, "network.layers": [7, 3], "network.activations": ["relu", "none"],
          "crossbar.tile_rows": 10, "crossbar.tile_cols": 6, "crossbar.partitions": 8}


def uneven_cfg(**extra) -> ChipConfig:
    return ChipConfig().replace(**{**UNEVEN, **extra})


@pytest.fixture(scope="module")
def mlp_cfg() -> ChipConfig:
    return config.load(config.CONFIG_DIR / "mlp.toml")


@pytest.fixture(scope="module")
def mlp_weights(mlp_cfg, dataset):
    return load_or_train(mlp_cfg, dataset, WEIGHTS_DIR)


# -- geometry -----------------------------------------------------------------------------------

def test_tile_boundaries_and_order_for_uneven_sizes():
    cfg = uneven_cfg()
    got = [(t.index, t.layer, t.col_tile, t.row_tile, t.row_start, t.row_stop, t.out_start, t.out_stop)
           for t in cfg.tiles]
    rows = [(0, 10), (10, 20), (20, 25)]
    outs = [(0, 3), (3, 6), (6, 7)]
    expected = [(0, 0, c, r, *rows[r], *outs[c]) for c in range(3) for r in range(3)]
    expected.append((0, 1, 0, 0, 0, 7, 0, 3))
    expected = [(i, *e[1:]) for i, e in enumerate(expected)]
    assert got == expected
    chip = GoldenChip.from_weights(cfg, [np.ones((25, 7)), np.ones((7, 3))], requant_mult=[1])
    for tile, spec in zip(chip.tiles, cfg.tiles):
        assert (tile.index, tile.layer, tile.rows, tile.outputs) == (
            spec.index, spec.layer, range(spec.row_start, spec.row_stop), range(spec.out_start, spec.out_stop))
        assert tile.array.conductance.shape == (spec.rows, 2 * spec.outputs)
        assert tile.array.tile == spec.index
        # partitions apply within a tile, reduced to its row count (8 -> 5, 8 -> 7)
        assert tile.array.cfg.crossbar.partitions == min(8, spec.rows)
    with pytest.raises(AttributeError, match="10 tiles"):
        chip.array


def test_mlp_config_tiles_as_the_brief_says(mlp_cfg):
    tiles = mlp_cfg.tiles
    assert len(tiles) == 10
    hidden = [t for t in tiles if t.layer == 0]
    assert [(t.col_tile, t.row_tile) for t in hidden] == [(c, r) for c in range(4) for r in range(2)]
    assert {(t.row_start, t.row_stop) for t in hidden} == {(0, 128), (128, 196)}
    assert [(t.row_start, t.row_stop, t.out_start, t.out_stop) for t in tiles if t.layer == 1] == [
        (0, 128, 0, 10), (128, 256, 0, 10)]


def test_slp_default_is_one_tile(cfg):
    (tile,) = cfg.tiles
    assert (tile.rows, tile.outputs, tile.index) == (196, 10, 0)


@pytest.mark.parametrize("override, needle", [
    ({"crossbar.tile_cols": 7}, "tile_cols must be even"),
    ({"adc.adcs_per_tile": 11}, "adcs_per_tile must be in 0..10"),
    ({"adc.adcs_per_tile": -1}, "adcs_per_tile"),
    ({"network.requant_shift": 40}, "requant_shift"),
    ({"network.requant_mult_bits": 0}, "requant_mult_bits"),
    ({"network.layers": [16, 10], "network.activations": ["relu", "none"], "train.method": "lbfgs"},
     "lbfgs' trains single-layer"),
    ({"network.layers": [16, 10], "network.activations": ["tanh", "none"]}, "relu or binary"),
    ({"train.method": "sgd"}, "train.method"),
])
def test_new_config_fields_are_validated(override, needle):
    with pytest.raises(ConfigError, match=needle):
        ChipConfig().replace(**override)


def test_adcs_per_tile_accepts_shared_adcs():
    assert ChipConfig().replace(**{"adc.adcs_per_tile": 2}).adc.adcs_per_tile == 2


# -- an independent per-tile reference ----------------------------------------------------------

def reference_infer(cfg: ChipConfig, weights: list[np.ndarray], mult: list[int], codes: np.ndarray,
                    image_events: np.ndarray):
    """Straightforward loops: one image, one tile, one AnalogArray call at a time."""
    tr, tc = cfg.crossbar.tile_rows, cfg.crossbar.tile_cols
    n_layers = len(weights)
    n_tiles = sum(-(-w.shape[0] // tr) * -(-2 * w.shape[1] // tc) for w in weights)
    dac_max = cfg.quant.dac_max
    arrays = []
    for w in weights:
        g = map_weights(w, cfg).conductance
        for c0 in range(0, g.shape[1], tc):
            for r0 in range(0, g.shape[0], tr):
                block = g[r0:r0 + tr, c0:c0 + tc]
                tcfg = cfg.replace(**{"crossbar.partitions": min(cfg.crossbar.partitions, block.shape[0])})
                arrays.append((r0, c0 // 2, AnalogArray(tcfg, block, tile=len(arrays))))
    assert len(arrays) == n_tiles
    classes, tile_codes, sums, acts = [], [], [], []
    for i, event in enumerate(image_events):
        x = [int(v) for v in codes[i]]
        t = 0
        per_tile, per_sum, per_act = [], [], []
        for layer, w in enumerate(weights):
            s = [0] * w.shape[1]
            n_tiles_layer = -(-w.shape[0] // tr) * -(-2 * w.shape[1] // tc)
            for _ in range(n_tiles_layer):
                r0, o0, arr = arrays[t]
                a = arr.adc_codes(np.array(x[r0:r0 + arr.rows]), int(event) * n_tiles + t)
                per_tile.append(a)
                for k, code in enumerate(a):
                    s[o0 + k] += int(code)
                t += 1
            per_sum.append(s)
            if layer < n_layers - 1:
                if cfg.network.activations[layer] == "relu":
                    x = [min(max((v * mult[layer]) >> cfg.network.requant_shift, 0), dac_max) for v in s]
                else:
                    x = [dac_max if v > 0 else 0 for v in s]
                per_act.append(x)
        best = 0
        for k in range(len(s)):
            if s[k] > s[best]:
                best = k
        classes.append(best)
        tile_codes.append(per_tile)
        sums.append(per_sum)
        acts.append(per_act)
    return classes, tile_codes, sums, acts


@pytest.mark.parametrize("activation", ["relu", "binary"])
def test_tiled_golden_equals_per_tile_reference(activation):
    cfg = uneven_cfg(**{"network.activations": [activation, "none"], "adc.noise_lsb": 0.7,
                        "adc.bits": 6, "sensing.tia_gain": 4e8})  # large enough to saturate
    rng = np.random.default_rng(5)
    weights = [rng.normal(0, 1, (25, 7)), rng.normal(0, 1, (7, 3))]
    mult = [97]
    codes = rng.integers(0, cfg.quant.dac_max + 1, (40, 25))
    codes[0] = 0
    codes[1] = cfg.quant.dac_max
    events = np.arange(40) * 3 + 11
    chip = GoldenChip.from_weights(cfg, weights, requant_mult=mult)
    result = chip.infer(codes, events, trace=True)
    classes, tile_codes, sums, acts = reference_infer(cfg, weights, mult, codes, events)
    tr = result.trace
    assert result.classes.tolist() == classes
    for i in range(len(codes)):
        for t in range(len(chip.tiles)):
            assert tr.tile_adc_codes[t][i].tolist() == tile_codes[i][t].tolist(), (i, t)
        assert [s[i].tolist() for s in tr.sums] == sums[i]
        assert [a[i].tolist() for a in tr.activations] == acts[i]
    assert np.array_equal(result.adc_codes, tr.sums[-1])
    assert np.array_equal(tr.tile_events, events[:, None] * 10 + np.arange(10))
    # the case is not trivial: saturated ADC codes, both activation outcomes and several classes
    lo, hi = -(1 << 5), (1 << 5) - 1
    assert any(((c == lo) | (c == hi)).any() for c in tr.tile_adc_codes)
    assert (tr.activations[0] == 0).any() and (tr.activations[0] > 0).any()
    assert len(set(classes)) >= 2


def test_steps_list_execution_order():
    cfg = uneven_cfg()
    rng = np.random.default_rng(1)
    chip = GoldenChip.from_weights(cfg, [rng.normal(0, 1, (25, 7)), rng.normal(0, 1, (7, 3))],
                                   requant_mult=[60])
    trace = chip.infer(rng.integers(0, 16, (3, 25)), trace=True).trace
    names = [name for name, _ in trace.steps(2)]
    assert names == [f"tile{t}" for t in range(9)] + ["sum0", "act0", "tile9", "sum1"]
    assert np.array_equal(dict(trace.steps(2))["sum1"], trace.sums[1][2])


# -- the SLP path is unchanged ------------------------------------------------------------------

@pytest.mark.parametrize("noise", [0.0, 1.5])
def test_slp_result_unchanged(cfg, dataset, weights, noise):
    c = cfg.replace(**{"adc.noise_lsb": noise}) if noise else cfg
    codes = to_dac_codes(dataset.x_test[:500], c)
    chip = GoldenChip.from_weights(c, weights.w)
    events = np.arange(500) + 1000
    single = AnalogArray(c, map_weights(weights.w, c).conductance)
    expected = single.adc_codes(codes, events)
    result = chip.infer(codes, events)
    assert np.array_equal(result.adc_codes, expected)
    assert np.array_equal(result.classes, np.argmax(expected, axis=1))
    assert np.array_equal(chip.array.conductance, single.conductance)
    # the Weights object itself is accepted too
    assert np.array_equal(GoldenChip.from_weights(c, weights).infer(codes, events).adc_codes, expected)


# -- MLP: batch == one by one -------------------------------------------------------------------

def test_mlp_batch_and_single_image_agree_bit_for_bit(mlp_cfg, mlp_weights, dataset):
    cfg = mlp_cfg.replace(**{"adc.noise_lsb": 0.5})   # noise on: the event keys must line up too
    chip = GoldenChip.from_weights(cfg, mlp_weights)
    codes = to_dac_codes(dataset.x_test[:150], cfg)
    batch = chip.infer(codes, 7, trace=True)
    for k in range(len(codes)):
        one = chip.infer(codes[k], np.array([7 + k]), trace=True)
        assert one.classes[0] == batch.classes[k]
        for (name, a), (name_b, b) in zip(one.trace.steps(0), batch.trace.steps(k)):
            assert name == name_b and np.array_equal(a, b), (k, name)


def test_tile_event_indices():
    assert tile_event_indices(np.array([0, 1, 5]), 10, 3).tolist() == [3, 13, 53]


# -- requantiser and binary activation edge cases -----------------------------------------------

def test_requantize_relu_edge_cases():
    s = np.array([-10**6, -300, -1, 0, 1, 2, 255, 256, 3839, 3840, 10**6])
    # mult 1, shift 8: floor(s / 256) clipped to 0..15; -1 >> 8 == -1 -> 0
    assert requantize_relu(s, 1, 8, 15).tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 14, 15, 15]
    assert requantize_relu(s, 0, 8, 15).tolist() == [0] * len(s)          # mult = 0
    # the largest 8-bit mult: 255 * 1 >> 8 = 0, 255 * 2 >> 8 = 1, saturates at dac_max
    assert requantize_relu(s, 255, 8, 15).tolist() == [0, 0, 0, 0, 0, 1, 15, 15, 15, 15, 15]
    assert requantize_relu(np.array([3, 4]), 5, 0, 15).tolist() == [15, 15]  # shift 0
    # against Python's integers (>> floors on negatives) over a grid
    grid = np.arange(-600, 601)
    for mult in (0, 1, 2, 127, 128, 255, 65535):
        for shift in (0, 3, 8, 16):
            ref = [min(max((int(v) * mult) >> shift, 0), 15) for v in grid]
            assert requantize_relu(grid, mult, shift, 15).tolist() == ref


def test_binary_activation_edge_cases():
    assert binary_activation(np.array([-5, -1, 0, 1, 300]), 15).tolist() == [0, 0, 0, 15, 15]
    assert binary_activation(np.array([1]), 1).tolist() == [1]


def test_requant_mult_registers_are_checked_and_used(mlp_cfg, mlp_weights, dataset):
    codes = to_dac_codes(dataset.x_test[:50], mlp_cfg)
    top = (1 << mlp_cfg.network.requant_mult_bits) - 1
    with pytest.raises(ValueError, match="does not fit 8 unsigned bits"):
        GoldenChip.from_weights(mlp_cfg, mlp_weights.layers, requant_mult=[top + 1])
    with pytest.raises(ValueError, match="needs requant_mult"):
        GoldenChip.from_weights(mlp_cfg, list(mlp_weights.layers))
    with pytest.raises(ValueError, match="2 layers, got 1"):
        GoldenChip.from_weights(mlp_cfg, mlp_weights.w)
    # mult = 0: every hidden code is 0, so no current flows in the output layer, every sum is
    # exactly 0 and the tie goes to class 0
    zero = GoldenChip.from_weights(mlp_cfg, mlp_weights.layers, requant_mult=[0]).infer(codes, trace=True)
    assert not zero.trace.activations[0].any() and not zero.adc_codes.any()
    assert zero.classes.tolist() == [0] * 50
    # the largest mult saturates most active hidden units at dac_max
    big = GoldenChip.from_weights(mlp_cfg, mlp_weights.layers, requant_mult=[top]).infer(codes, trace=True)
    act = big.trace.activations[0]
    assert act.max() == mlp_cfg.quant.dac_max
    assert np.array_equal(act, requantize_relu(big.trace.sums[0], top, 8, 15))
    assert GoldenChip.from_weights(mlp_cfg, mlp_weights).requant_mult == mlp_weights.requant_mult


def test_tiled_single_layer_equals_per_tile_reference(cfg, dataset, weights):
    """The SLP's weights on 64 x 8 tiles (4 row tiles x 3 column tiles, the last ones smaller)."""
    tiled = cfg.replace(**{"crossbar.tile_rows": 64, "crossbar.tile_cols": 8, "adc.noise_lsb": 0.5})
    assert len(tiled.tiles) == 12
    codes = to_dac_codes(dataset.x_test[:30], tiled)
    result = GoldenChip.from_weights(tiled, weights.w).infer(codes, 100, trace=True)
    classes, tile_codes, sums, _ = reference_infer(tiled, [weights.w], [], codes, np.arange(30) + 100)
    assert result.classes.tolist() == classes
    assert [row.tolist() for row in result.adc_codes] == [s[0] for s in sums]
    assert all(result.trace.tile_adc_codes[t][i].tolist() == tile_codes[i][t].tolist()
               for i in range(30) for t in range(12))
