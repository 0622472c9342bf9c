"""flow/model/conv.py against independent implementations: plain loops over the spec's index
formulas and scipy.signal.correlate for the convolution itself."""

import numpy as np
import pytest
from scipy import signal

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.model.conv import im2col, layer_event_offsets, pool, vmm_events


def loop_im2col(x, k, s, p):
    """CNN_SPEC.md section 2, literally: row (ky*K + kx)*C + c of position (oy, ox) reads
    (oy*S - P + ky, ox*S - P + kx, c), 0 outside the map; positions raster, oy outer."""
    n, h, w, c = x.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, ho * wo, k * k * c), dtype=np.int64)
    for i in range(n):
        for oy in range(ho):
            for ox in range(wo):
                for ky in range(k):
                    for kx in range(k):
                        for ch in range(c):
                            y, xx = oy * s - p + ky, ox * s - p + kx
                            if 0 <= y < h and 0 <= xx < w:
                                out[i, oy * wo + ox, (ky * k + kx) * c + ch] = x[i, y, xx, ch]
    return out


@pytest.mark.parametrize("h, w, c, k, s, p", [
    (5, 5, 1, 3, 1, 0), (6, 5, 2, 3, 2, 1), (7, 7, 3, 2, 3, 1), (4, 4, 2, 4, 1, 3), (3, 3, 1, 1, 1, 0),
    (8, 6, 2, 5, 2, 2),
])
def test_im2col_is_the_specs_window_order(h, w, c, k, s, p):
    x = np.random.default_rng(h * 100 + k).integers(0, 16, (2, h, w, c))
    got = im2col(x, k, s, p)
    assert got.shape == ((2, ((h + 2 * p - k) // s + 1) * ((w + 2 * p - k) // s + 1), k * k * c))
    np.testing.assert_array_equal(got, loop_im2col(x, k, s, p))


@pytest.mark.parametrize("s, p", [(1, 0), (1, 2), (2, 1), (3, 0)])
def test_im2col_times_weights_is_a_cross_correlation(s, p):
    rng = np.random.default_rng(7)
    h, w, c, k, co = 9, 8, 3, 3, 4
    x = rng.integers(0, 16, (1, h, w, c))
    kernel = rng.integers(-5, 6, (k, k, c, co))
    got = im2col(x, k, s, p)[0] @ kernel.reshape(k * k * c, co)   # rows (ky, kx, c) like W's
    padded = np.pad(x[0], ((p, p), (p, p), (0, 0)))
    for o in range(co):
        full = signal.correlate(padded, kernel[:, :, :, o], mode="valid", method="direct")[:, :, 0]
        ref = full[::s, ::s]
        np.testing.assert_array_equal(got[:, o].reshape(ref.shape), ref)


def loop_pool(x, mode, size, s):
    n, h, w, c = x.shape
    ho, wo = (h - size) // s + 1, (w - size) // s + 1
    out = np.zeros((n, ho, wo, c), dtype=np.int64)
    for i in range(n):
        for py in range(ho):
            for px in range(wo):
                for ch in range(c):
                    vals = [int(x[i, py * s + dy, px * s + dx, ch]) for dy in range(size) for dx in range(size)]
                    out[i, py, px, ch] = max(vals) if mode == "max" else sum(vals) // (size * size)
    return out


@pytest.mark.parametrize("mode, size, s, h", [("max", 2, 2, 6), ("max", 3, 1, 5), ("max", 2, 3, 7),
                                               ("avg", 2, 2, 6), ("avg", 2, 1, 5), ("avg", 4, 2, 9),
                                               ("avg", 1, 1, 3)])
def test_pool_is_max_or_floor_average(mode, size, s, h):
    x = np.random.default_rng(size * 10 + h).integers(0, 16, (3, h, h + 1, 2))
    np.testing.assert_array_equal(pool(x, mode, size, s), loop_pool(x, mode, size, s))


def test_avg_pool_floors_and_max_breaks_no_ties():
    x = np.array([15, 15, 15, 14]).reshape(1, 2, 2, 1)
    assert pool(x, "avg", 2, 2).item() == 59 // 4 == 14
    assert pool(x, "max", 2, 2).item() == 15
    with pytest.raises(ValueError, match="power of two"):
        pool(np.zeros((1, 3, 3, 1), np.int64), "avg", 3, 1)


def test_vmm_events_run_layer_position_tile():
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "cnn.toml")
    ev = vmm_events(cfg)
    assert len(ev) == cfg.events_per_image == 576 + 64 * 2 + 2
    assert [e.index for e in ev] == list(range(len(ev)))
    assert (ev[0].tile, ev[0].layer, ev[0].oy, ev[0].ox) == (0, 0, 0, 0)
    assert (ev[25].oy, ev[25].ox, ev[25].position) == (1, 1, 25)          # 24 positions per row
    assert [(e.tile, e.position, e.oy, e.ox) for e in ev[576:580]] == [(1, 0, 0, 0), (2, 0, 0, 0),
                                                                       (3 - 2, 1, 0, 1), (2, 1, 0, 1)]
    assert [(e.tile, e.layer) for e in ev[-2:]] == [(3, 2), (4, 2)]
    assert layer_event_offsets(cfg) == (0, 576, 704)
    mlp = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml")
    assert [(e.index, e.tile) for e in vmm_events(mlp)] == [(t, t) for t in range(10)]
