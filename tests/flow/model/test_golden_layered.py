"""GoldenChip on layered networks (conv, pool, flatten, dense) against a reference written here
with plain loops over the spec (CNN_SPEC.md section 2): window order, zero padding, tiles per
position, noise event e = i * events_per_image + j, requantiser, pooling, flatten. The
reference reads the very tile arrays of the chip (the analog model is shared by design, as the
cocotb bridge shares it), never the golden model's im2col, pooling or walk."""

import tomllib

import numpy as np
import pytest

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.model import golden
from xbarflow.flow.model.golden import GoldenChip


def small_cfg(layers: str, *, size=6, channels=2, noise=0.7, tile_rows=8, tile_cols=4):
    text = f"""
name = "tiny_cnn"
[network]
input_size = {size}
input_channels = {channels}
layers = {layers}
[crossbar]
tile_rows = {tile_rows}
tile_cols = {tile_cols}
partitions = 2
[adc]
noise_lsb = {noise}
"""
    return cfgmod.from_dict(tomllib.loads(text), source="test")


CONV_PAD_STRIDE = """[
  { kind = "conv", out_channels = 3, kernel = 3, stride = 2, padding = 1, activation = "relu" },
  { kind = "pool", mode = "max", size = 2, stride = 1 },
  { kind = "flatten" },
  { kind = "dense", outputs = 4, activation = "none" },
]"""
TWO_CONV_AVG_HIDDEN = """[
  { kind = "conv", out_channels = 5, kernel = 2, padding = 1, activation = "relu" },
  { kind = "pool", mode = "avg", size = 2, stride = 2 },
  { kind = "conv", out_channels = 3, kernel = 2, activation = "binary" },
  { kind = "flatten" },
  { kind = "dense", outputs = 6, activation = "relu" },
  { kind = "dense", outputs = 3, activation = "none" },
]"""


def reference(cfg, chip, codes, image_event):
    """One image, plain loops: returns (final sums, list of (tile, event index, driven codes,
    ADC codes) per VMM in execution order, maps)."""
    n = cfg.network
    dac_max, shift = cfg.quant.dac_max, n.requant_shift
    side, ch = n.input_size, n.input_channels
    fmap = [[[int(codes[(y * side + x) * ch + c]) for c in range(ch)] for x in range(side)]
            for y in range(side)]
    maps, log, j, per_image = [fmap], [], 0, cfg.events_per_image
    vector = None   # the dense input after flatten

    def run_layer(layer, window):
        nonlocal j
        n_out = n.layer_shapes[layer][1]
        sums = [0] * n_out
        for t in cfg.tiles:
            if t.layer != layer:
                continue
            drive = window[t.row_start:t.row_stop]
            adc = chip.tiles[t.index].array.adc_codes(np.array([drive]), image_event * per_image + j)[0]
            log.append((t.index, image_event * per_image + j, drive + [0] * (cfg.crossbar.tile_rows - len(drive)),
                        [int(a) for a in adc]))
            j += 1
            for k in range(t.out_start, t.out_stop):
                sums[k] += int(adc[k - t.out_start])
        return sums

    def act(layer, s):
        if n.activations[layer] == "binary":
            return dac_max if s > 0 else 0
        return min(max((s * chip.requant_mult[layer]) >> shift, 0), dac_max)

    for stage in n.stages:
        h, w = len(fmap), len(fmap[0])
        if stage.kind == "conv":
            k, s, p = stage.kernel, stage.stride, stage.padding
            ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            out = [[None] * wo for _ in range(ho)]
            for oy in range(ho):
                for ox in range(wo):
                    window = []
                    for ky in range(k):
                        for kx in range(k):
                            for c in range(len(fmap[0][0])):
                                y, x = oy * s - p + ky, ox * s - p + kx
                                window.append(fmap[y][x][c] if 0 <= y < h and 0 <= x < w else 0)
                    sums = run_layer(stage.weight_layer, window)
                    out[oy][ox] = [act(stage.weight_layer, v) for v in sums]
            fmap = out
            maps.append(fmap)
        elif stage.kind == "pool":
            size, s = stage.kernel, stage.stride
            ho, wo = (h - size) // s + 1, (w - size) // s + 1
            fmap = [[[(max if stage.mode == "max" else lambda v: sum(v) // (size * size))(
                [fmap[py * s + dy][px * s + dx][c] for dy in range(size) for dx in range(size)])
                for c in range(len(fmap[0][0]))] for px in range(wo)] for py in range(ho)]
            maps.append(fmap)
        elif stage.kind == "flatten":
            vector = [fmap[y][x][c] for y in range(h) for x in range(w) for c in range(len(fmap[0][0]))]
        else:
            sums = run_layer(stage.weight_layer, vector)
            if stage is n.stages[-1]:
                return sums, log, maps
            vector = [act(stage.weight_layer, v) for v in sums]
            maps.append([[vector]])
    raise AssertionError("no final dense layer")


def make_chip(cfg, seed=0, mult=None):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(shape) for shape in cfg.network.layer_shapes]
    hidden = len(cfg.network.layers) - 1
    return GoldenChip.from_weights(cfg, weights, mult or [90 + 7 * l for l in range(hidden)])


@pytest.mark.parametrize("layers", [CONV_PAD_STRIDE, TWO_CONV_AVG_HIDDEN])
def test_layered_golden_matches_the_loop_reference(layers):
    cfg = small_cfg(layers)
    assert len(cfg.tiles) > len(cfg.network.layer_shapes)   # row and column tiles both occur
    chip = make_chip(cfg)
    codes = np.random.default_rng(3).integers(0, 16, (4, cfg.network.inputs))
    events = np.array([0, 5, 2, 11])
    result = chip.infer(codes, events, trace=True)
    tr = result.trace
    seen_acts = set()
    for k in range(len(codes)):
        sums, log, maps = reference(cfg, chip, codes[k], int(events[k]))
        assert result.adc_codes[k].tolist() == sums
        assert result.classes[k] == int(np.argmax(sums))
        assert len(log) == len(tr.events) == cfg.events_per_image
        for ev, (tile, e, drive, adc) in zip(tr.events, log):
            assert ev.tile == tile and tr.tile_events[k, ev.index] == e
            assert tr.event_dac_codes(ev.index)[k].tolist() == drive
            assert tr.event_adc_codes(ev.index)[k].tolist() == adc
        assert len(maps) == len(tr.feature_maps) == len(cfg.network.feature_maps)
        for m, (ref_map, spec) in enumerate(zip(maps, cfg.network.feature_maps)):
            got = tr.feature_maps[m][k]
            assert got.shape == spec.shape
            assert got.tolist() == ref_map, f"map {m}"
            seen_acts.update(np.unique(got).tolist())
    assert len(seen_acts) > 3, "activations all clipped: the test would not see the requantiser"


def test_padding_zeros_are_driven_and_noise_is_keyed_per_event():
    cfg = small_cfg(CONV_PAD_STRIDE)
    chip = make_chip(cfg, seed=1)
    codes = np.full((1, cfg.network.inputs), 15)
    tr = chip.infer(codes, trace=True).trace
    # position (0, 0) with padding 1: window rows with ky = 0 or kx = 0 read outside the map
    window = tr.windows[0][0, 0]
    k, c = 3, 2
    for ky in range(k):
        for kx in range(k):
            expect = 0 if ky == 0 or kx == 0 else 15
            assert window[(ky * k + kx) * c:(ky * k + kx + 1) * c].tolist() == [expect] * c
    # the same window at the same tile, different events: different ADC noise draws
    quiet = chip.infer(codes, trace=True).trace
    assert np.array_equal(quiet.tile_adc_codes[0], tr.tile_adc_codes[0])
    other = chip.infer(codes, 1, trace=True).trace
    assert not np.array_equal(other.tile_adc_codes[0], tr.tile_adc_codes[0])


@pytest.mark.parametrize("layers", [CONV_PAD_STRIDE, TWO_CONV_AVG_HIDDEN])
def test_batched_equals_one_at_a_time_bit_for_bit(layers):
    cfg = small_cfg(layers)
    chip = make_chip(cfg, seed=2)
    codes = np.random.default_rng(4).integers(0, 16, (6, cfg.network.inputs))
    first = 7
    batch = chip.infer(codes, first, trace=True)
    for k in range(len(codes)):
        one = chip.infer(codes[k:k + 1], first + k, trace=True)
        assert np.array_equal(one.adc_codes[0], batch.adc_codes[k]) and one.classes[0] == batch.classes[k]
        assert np.array_equal(one.trace.tile_events[0], batch.trace.tile_events[k])
        for a, b in zip(one.trace.tile_adc_codes, batch.trace.tile_adc_codes):
            assert np.array_equal(a[0], b[k])
        for a, b in zip(one.trace.feature_maps, batch.trace.feature_maps):
            assert np.array_equal(a[0], b[k])
        assert [n for n, _ in one.trace.steps(0)] == [n for n, _ in batch.trace.steps(k)]
        for (_, a), (_, b) in zip(one.trace.steps(0), batch.trace.steps(k)):
            assert np.array_equal(a, b)


def test_shipped_cnn_runs_in_chunks_like_one_batch(monkeypatch):
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "cnn.toml").replace(**{"adc.noise_lsb": 0.5})
    chip = make_chip(cfg, seed=5, mult=[60, 60])
    codes = np.random.default_rng(6).integers(0, 16, (3, 784))
    whole = chip.infer(codes, trace=True)
    monkeypatch.setattr(golden, "VMM_CHUNK_ROWS", 100)
    chunked = chip.infer(codes, trace=True)
    assert np.array_equal(whole.adc_codes, chunked.adc_codes)
    monkeypatch.setattr(golden, "IMAGE_CHUNK", 2)    # untraced runs go two images at a time
    untraced = chip.infer(codes)
    assert untraced.trace is None and np.array_equal(untraced.adc_codes, whole.adc_codes)
    assert np.array_equal(untraced.classes, whole.classes)
    for a, b in zip(whole.trace.tile_adc_codes, chunked.trace.tile_adc_codes):
        assert np.array_equal(a, b)
    steps = [name for name, _ in whole.trace.steps(0)]
    assert steps[:2] == ["map0", "vmm0"] and steps[-1] == "sum2"
    assert steps.index("sum0") == 577 and steps[578:580] == ["map1", "map2"]
    assert whole.trace.tile_events[1, 0] == cfg.events_per_image


def test_wrong_image_size_is_a_value_error():
    cfg = small_cfg(CONV_PAD_STRIDE)
    with pytest.raises(ValueError, match=r"DAC codes must be shaped \(n, 72\)"):
        make_chip(cfg).infer(np.zeros((2, 36), np.int64))
