"""The layered (convolutional) training forward pass: im2col against scipy's correlation, pooling
against plain loops, the integer forward against a loop-by-loop twin of CNN_SPEC.md's
arithmetic, and every backward against finite differences of the float twin."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate

from xbarflow.flow.core import config
from xbarflow.flow.core.config import ChipConfig, LayerSpec as Stage
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model import conv
from xbarflow.flow.model.conv_forward import (
    ConvChipModel,
    chip_model,
    col2im,
    im2col_rows as im2col,
    pool_backward,
    pool_forward as pool,
)
from xbarflow.flow.model.forward import calibrate_requant
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.train import software_scores
from xbarflow.flow.model.weights import Weights


def tiny_stages() -> list[Stage]:
    """6x6x2 -> conv 3x3x3 pad 1 stride 1 -> 6x6x3 -> max pool 2 -> 3x3x3 -> conv 2x2x4 stride 1
    -> 2x2x4 -> avg pool 2 stride 1 -> 1x1x4 -> flatten -> dense 5."""
    return [
        Stage("conv", (6, 6, 2), (6, 6, 3), kernel=3, padding=1, channels_out=3, activation="relu",
              weight_layer=0),
        Stage("pool", (6, 6, 3), (3, 3, 3), kernel=2, stride=2, channels_out=3, mode="max"),
        Stage("conv", (3, 3, 3), (2, 2, 4), kernel=2, channels_out=4, activation="relu",
              weight_layer=1),
        Stage("pool", (2, 2, 4), (1, 1, 4), kernel=2, stride=1, channels_out=4, mode="avg"),
        Stage("flatten", (1, 1, 4), (1, 1, 4), channels_out=4),
        Stage("dense", (1, 1, 4), (1, 1, 5), channels_out=5, activation="none", weight_layer=2),
    ]


def tiny_config(**overrides) -> ChipConfig:
    # 8-row tiles: the first conv's 18 im2col rows span three row tiles
    base = {"network.input_size": 6, "network.layers": [3, 4, 5],
            "network.activations": ["relu", "relu", "none"], "crossbar.tile_rows": 8,
            "crossbar.partitions": 1}
    return ChipConfig().replace(**{**base, **overrides})


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 0), (3, 2, 1), (5, 1, 2), (2, 3, 0)])
def test_im2col_times_weights_is_scipy_correlation(kernel, stride, padding):
    rng = np.random.default_rng(kernel * 10 + stride + padding)
    n, h, c_in, c_out = 2, 9, 3, 4
    maps = rng.normal(size=(n, h, h, c_in))
    w = rng.normal(size=(kernel * kernel * c_in, c_out))
    rows = im2col(maps, kernel, stride, padding)
    ho = (h + 2 * padding - kernel) // stride + 1
    got = (rows @ w).reshape(n, ho, ho, c_out)
    # row r = (ky*K + kx)*C_in + c: the kernel as (ky, kx, c, c_out)
    k4 = w.reshape(kernel, kernel, c_in, c_out)
    want = np.zeros_like(got)
    for i in range(n):
        padded = np.pad(maps[i], ((padding, padding), (padding, padding), (0, 0)))
        for o in range(c_out):
            full = correlate(padded, k4[:, :, :, o], mode="valid")[:, :, 0]
            want[i, :, :, o] = full[::stride, ::stride][:ho, :ho]
    assert np.allclose(got, want)


def test_im2col_pads_with_zero_codes_and_walks_positions_in_raster_order():
    maps = (np.arange(9, dtype=float) + 1).reshape(1, 3, 3, 1)
    rows = im2col(maps, 3, 1, 1)
    assert rows.shape == (9, 9)
    assert rows[0].tolist() == [0, 0, 0, 0, 1, 2, 0, 4, 5]      # (oy, ox) = (0, 0)
    assert rows[1].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6]      # (0, 1): ox runs inner
    assert rows[4].tolist() == list(range(1, 10))               # centre window = the map


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(4)
    shape = (2, 7, 7, 3)
    maps = rng.normal(size=shape)
    rows = im2col(maps, 3, 2, 1)
    probe = rng.normal(size=rows.shape)
    assert np.isclose(np.sum(rows * probe), np.sum(maps * col2im(probe, shape, 3, 2, 1)))


def loop_pool(maps, mode, size, stride):
    n, h, w, c = maps.shape
    ho, wo = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(n):
        for py in range(ho):
            for px in range(wo):
                for ch in range(c):
                    window = [maps[i, py * stride + dy, px * stride + dx, ch]
                              for dy in range(size) for dx in range(size)]
                    out[i, py, px, ch] = max(window) if mode == "max" else sum(window) // (size * size)
    return out


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("size,stride", [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_pooling_on_codes_matches_plain_loops(mode, size, stride):
    rng = np.random.default_rng(size * 7 + stride)
    maps = rng.integers(0, 16, size=(3, 8, 8, 2)).astype(float)
    got, _ = pool(maps, mode, size, stride)
    assert np.array_equal(got, loop_pool(maps, mode, size, stride))
    if (size * size) & (size * size - 1) == 0:     # the golden model's pooling (avg: a shift)
        assert np.array_equal(got, conv.pool(maps.astype(np.int64), mode, size, stride))


def test_max_pool_sends_the_gradient_to_the_first_largest_code():
    maps = np.array([[7, 7], [3, 7]], dtype=float).reshape(1, 2, 2, 1)
    y, cache = pool(maps, "max", 2, 2)
    g = pool_backward(np.ones_like(y), cache)
    assert g[0, :, :, 0].tolist() == [[1, 0], [0, 0]]


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("size,stride", [(2, 2), (3, 2), (2, 1)])
def test_pool_backward_matches_finite_differences(mode, size, stride):
    rng = np.random.default_rng(size + 3 * stride)
    maps = rng.normal(size=(2, 7, 7, 2))     # distinct values: no ties in a max window
    probe = rng.normal(size=pool(maps, mode, size, stride)[0].shape)
    _, cache = pool(maps, mode, size, stride, exact=False)
    grad = pool_backward(probe, cache)
    eps = 1e-6
    for idx in [tuple(rng.integers(0, d) for d in maps.shape) for _ in range(25)]:
        up, down = maps.copy(), maps.copy()
        up[idx] += eps
        down[idx] -= eps
        fd = (np.sum(pool(up, mode, size, stride, exact=False)[0] * probe)
              - np.sum(pool(down, mode, size, stride, exact=False)[0] * probe)) / (2 * eps)
        assert np.isclose(grad[idx], fd, atol=1e-6), idx


def loop_forward(cfg, model, stages, lev, mult, codes):
    """CNN_SPEC.md's integer arithmetic written out with loops: window by window, row tile by row
    tile, each tile's ADC code rounded half up and saturated, ReLU requantised, pools on codes."""
    shift, dac_max, tr = cfg.network.requant_shift, cfg.quant.dac_max, cfg.crossbar.tile_rows
    maps = [np.asarray(c, dtype=np.int64).reshape(stages[0].in_shape) for c in codes]

    def tile_sums(layer, window):
        w = lev[layer]
        out = []
        for o in range(w.shape[1]):
            total = 0
            for r0 in range(0, len(window), tr):
                z = sum(int(window[r]) * w[r, o] for r in range(r0, min(r0 + tr, len(window))))
                total += int(min(max(np.floor(z * model.unit + 0.5), model.lo), model.hi))
            out.append(total)
        return out

    def relu(s, m):
        return min(max((s * m) >> shift, 0), dac_max)

    results = []
    for image in maps:
        m = image
        for st in stages:
            h, w, c = st.in_shape
            if st.kind == "conv":
                k, s_, p = st.kernel, st.stride, st.padding
                ho, wo, co = st.out_shape
                out = np.zeros((ho, wo, co), dtype=np.int64)
                for oy in range(ho):
                    for ox in range(wo):
                        window = []
                        for ky in range(k):
                            for kx in range(k):
                                for ch in range(c):
                                    y, x = oy * s_ - p + ky, ox * s_ - p + kx
                                    window.append(m[y, x, ch] if 0 <= y < h and 0 <= x < w else 0)
                        out[oy, ox] = [relu(v, mult[st.weight_layer])
                                       for v in tile_sums(st.weight_layer, window)]
                m = out
            elif st.kind == "pool":
                m = loop_pool(m[None].astype(float), st.mode, st.kernel, st.stride)[0].astype(np.int64)
            elif st.kind == "dense":
                results.append(tile_sums(st.weight_layer, m.reshape(-1)))
    return np.array(results)


def random_levels(model, rng):
    return [rng.integers(-model.top, model.top + 1, size=shape).astype(float)
            for shape in model.shapes]


def test_integer_forward_matches_a_loop_by_loop_twin():
    cfg = tiny_config(**{"adc.bits": 6})      # a narrow ADC: some tiles saturate
    stages = tiny_stages()
    model = ConvChipModel(cfg, stages)
    assert model.shapes == ((18, 3), (12, 4), (4, 5))
    assert [len(t) for t in model.row_tiles] == [3, 2, 1]
    rng = np.random.default_rng(7)
    lev = random_levels(model, rng)
    mult = [90, 140]
    codes = rng.integers(0, cfg.quant.dac_max + 1, size=(6, 72))
    sums, _ = model.forward(lev, mult, [1.0, 1.0], codes)
    want = loop_forward(cfg, model, stages, lev, mult, codes)
    assert np.array_equal(sums[-1], want)
    assert sums[0].shape == (6, 6, 6, 3) and sums[1].shape == (6, 2, 2, 4)
    assert np.any(np.abs(sums[0]) >= model.hi), "the test should reach the ADC rails"
    assert len(set(map(tuple, want))) > 1
    # fewer levels: the forward pass stops after that weight layer (requantiser calibration)
    partial, _ = model.forward(lev[:1], mult, [1.0, 1.0], codes)
    assert len(partial) == 1 and np.array_equal(partial[0], sums[0])


def test_backward_is_the_float_twins_gradient():
    """The float twin (no rounding, no ADC rails) is piecewise linear: backward must be its exact
    gradient w.r.t. every weight layer's levels (conv, max pool, avg pool, flatten, dense)."""
    cfg = tiny_config()
    stages = tiny_stages()
    model = ConvChipModel(cfg, stages)
    rng = np.random.default_rng(11)
    lev = [rng.normal(0, 8, size=shape) for shape in model.shapes]
    mult, width = [200, 255], [1.0, 1.0]
    codes = rng.integers(0, cfg.quant.dac_max + 1, size=(4, 72)).astype(float)
    sums, cache = model.forward(lev, mult, width, codes, keep=True, exact=False)
    probe = rng.normal(size=sums[-1].shape)
    grads = model.backward(lev, cache, probe)

    def loss(levels):
        return float(np.sum(model.forward(levels, mult, width, codes, exact=False)[0][-1] * probe))

    eps = 1e-5
    for layer, shape in enumerate(model.shapes):
        assert np.abs(grads[layer]).max() > 0, layer
        for _ in range(12):
            idx = tuple(rng.integers(0, d) for d in shape)
            up = [w.copy() for w in lev]
            down = [w.copy() for w in lev]
            up[layer][idx] += eps
            down[layer][idx] -= eps
            fd = (loss(up) - loss(down)) / (2 * eps)
            assert np.isclose(grads[layer][idx], fd, rtol=1e-5, atol=1e-6), (layer, idx)


def test_training_forward_is_the_golden_models_arithmetic_on_cnn_toml(dataset):
    """configs/cnn.toml on an ideal crossbar: the sums the trainer computes are the golden
    model's (flow/model/golden.py, an independent walk of the same spec), image by image."""
    cfg = config.load(config.CONFIG_DIR / "cnn.toml").replace(**{"crossbar.wire_r": 0.0})
    model = chip_model(cfg)
    assert isinstance(model, ConvChipModel) and [s.kind for s in model.stages] == \
        ["conv", "pool", "conv", "pool", "flatten", "dense"]
    rng = np.random.default_rng(5)
    layers = tuple(np.clip(rng.normal(0.0, 0.25, shape), -1.0, 1.0) for shape in model.shapes)
    codes = to_dac_codes(dataset.x_test[:120], cfg)
    mult = [0, 0]
    calibrate_requant(model, [model.levels(w) for w in layers], mult, [1.0, 1.0], codes, 99.0)
    weights = Weights(w=layers[0], config_digest="test", layers=layers, requant_mult=tuple(mult))
    golden = GoldenChip.from_weights(cfg, weights).infer(codes)
    ours = software_scores(weights, codes, cfg)
    assert len(set(golden.classes.tolist())) > 2, "the test should see varied sums"
    assert np.array_equal(ours, golden.adc_codes)
