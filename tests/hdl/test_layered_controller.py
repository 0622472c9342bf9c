# amaranth: UnusedElaboratable=no
"""LayeredController in amaranth.sim with a real FeatureMap: a tiny CNN (6 x 6 image, conv 3x3x2
with zero padding, pool 2, flatten, dense 4, dense 3) on 10 tiles, the analog side faked by a
simple integer rule on the driven DAC codes. Every tile event (tile, DAC codes) and every image's
sums and class are compared with a plain-Python reference written from CNN_SPEC section 2."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from xbarflow.cocotb_tests.analog_bridge import pack_bus, unpack_bus
from xbarflow.flow.core import config as cfgmod
from xbarflow.hdl.feature_map import FeatureMap
from xbarflow.hdl.layered_controller import LayeredController

SETTLE, CONVERT = 3, 2
ADC_BITS, SHIFT, TILE_ROWS, TILE_OUTS, DAC_MAX = 6, 4, 8, 2, 15


def tiny_cfg(*, adcs=0, padding=1, pool="max", activation="relu"):
    return cfgmod.load().replace(**{
        "network.input_size": 6,
        "network.layers": [
            {"kind": "conv", "out_channels": 2, "kernel": 3, "padding": padding, "activation": activation},
            {"kind": "pool", "mode": pool, "size": 2},
            {"kind": "flatten"},
            {"kind": "dense", "outputs": 4, "activation": "relu"},
            {"kind": "dense", "outputs": 3, "activation": "none"}],
        "crossbar.tile_rows": TILE_ROWS, "crossbar.tile_cols": 2 * TILE_OUTS,
        "crossbar.partitions": 2, "adc.bits": ADC_BITS, "adc.adcs_per_tile": adcs,
        "network.requant_shift": SHIFT})


def adc_rule(dac, weights):
    """The fake analog side: each output's code is floor(sum(dac * w) / 4), clipped to the ADC."""
    lo, hi = -(1 << ADC_BITS - 1), (1 << ADC_BITS - 1) - 1
    return [min(max(sum(int(d) * int(weights[i][o]) for i, d in enumerate(dac)) // 4, lo), hi)
            for o in range(len(weights[0]))]


def activate(s, kind, mult):
    if kind == "binary":
        return DAC_MAX if s > 0 else 0
    return min(max((s * mult) >> SHIFT, 0), DAC_MAX)


def weight_layer(vectors, w, events, first_tile):
    """Sums of each input vector through the tiles of one layer (column tile, then row tile),
    logging every tile event; returns (sums per vector, tiles used)."""
    n_in, n_out = len(w), len(w[0])
    row_tiles, col_tiles = -(-n_in // TILE_ROWS), -(-n_out // TILE_OUTS)
    all_sums = []
    for vec in vectors:
        sums = [0] * n_out
        t = first_tile
        for c in range(col_tiles):
            outs = range(c * TILE_OUTS, min((c + 1) * TILE_OUTS, n_out))
            for r in range(row_tiles):
                rows = range(r * TILE_ROWS, min((r + 1) * TILE_ROWS, n_in))
                dac = [vec[i] for i in rows]
                events.append((t, dac))
                codes = adc_rule(dac, [[w[i][o] for o in outs] for i in rows])
                for o, code in zip(outs, codes):
                    sums[o] = code if r == 0 else sums[o] + code
                t += 1
        all_sums.append(sums)
    return all_sums, row_tiles * col_tiles


def reference(image, weights, mults, *, padding, pool, activation):
    """Events, last-layer sums and class of one 6 x 6 image, by plain loops."""
    H = W = 6
    K, C_out = 3, 2
    events = []
    x = [[[image[y * W + xx]] for xx in range(W)] for y in range(H)]          # (y, x, c)
    h_out = w_out = H + 2 * padding - K + 1
    windows = []
    for oy in range(h_out):
        for ox in range(w_out):
            vec = []
            for ky in range(K):
                for kx in range(K):
                    for c in range(1):
                        y, xx = oy - padding + ky, ox - padding + kx
                        vec.append(x[y][xx][c] if 0 <= y < H and 0 <= xx < W else 0)
            windows.append(vec)
    sums, used = weight_layer(windows, weights[0], events, 0)
    conv = [[[activate(sums[oy * w_out + ox][c], activation, mults[0]) for c in range(C_out)]
             for ox in range(w_out)] for oy in range(h_out)]
    p_out = (h_out - 2) // 2 + 1
    pooled = []
    for py in range(p_out):
        for px in range(p_out):
            for c in range(C_out):
                vals = [conv[2 * py + dy][2 * px + dx][c] for dy in range(2) for dx in range(2)]
                pooled.append(max(vals) if pool == "max" else sum(vals) // 4)
    sums, used1 = weight_layer([pooled], weights[1], events, used)
    hidden = [activate(s, "relu", mults[1]) for s in sums[0]]
    sums, _ = weight_layer([hidden], weights[2], events, used + used1)
    final = sums[0]
    return events, final, final.index(max(final))


def simulate(cfg, weights, images, mult_word):
    tiles, dac_bits = cfg.tiles, cfg.quant.dac_bits
    ctrl = LayeredController(cfg)
    fmap = FeatureMap(cfg.network.feature_map_codes, dac_bits)
    m = Module()
    m.submodules.ctrl, m.submodules.fmap = ctrl, fmap
    connect(m, ctrl.feature_read, fmap.code_read)
    connect(m, ctrl.feature_write, fmap.code_write)
    adcs = cfg.tile_adcs
    log = {"events": [], "sums": [], "results": [], "cycles": []}

    async def tick_until(ctx, signal):
        while True:
            await ctx.tick()
            if ctx.get(signal):
                return

    async def analog(ctx):
        while True:
            await tick_until(ctx, ctrl.vmm_start)
            t = ctx.get(ctrl.tile_sel)
            dac = unpack_bus(ctx.get(ctrl.dac_codes), cfg.crossbar.tile_rows, dac_bits)
            spec = tiles[t]
            assert not dac[spec.rows:].any(), "rows past the tile's inputs must be 0"
            log["events"].append((t, [int(d) for d in dac[:spec.rows]]))
            w = weights[spec.layer]
            adc = adc_rule(dac[:spec.rows], [[w[i][o] for o in range(spec.out_start, spec.out_stop)]
                                              for i in range(spec.row_start, spec.row_stop)])
            await ctx.tick().repeat(SETTLE)
            ctx.set(ctrl.vmm_done, 1)
            await ctx.tick()
            ctx.set(ctrl.vmm_done, 0)
            for _ in range(-(-spec.outputs // adcs)):
                if not ctx.get(ctrl.adc_start):
                    await tick_until(ctx, ctrl.adc_start)
                g = ctx.get(ctrl.adc_col_sel) if cfg.adc_groups > 1 else 0
                group = np.zeros(adcs, dtype=np.int64)
                part = adc[g * adcs:(g + 1) * adcs]
                group[:len(part)] = part
                await ctx.tick().repeat(CONVERT)
                ctx.set(ctrl.adc_codes, pack_bus(group, ADC_BITS))
                ctx.set(ctrl.adc_valid, 1)
                await ctx.tick()
                ctx.set(ctrl.adc_valid, 0)

    async def host(ctx):
        ctx.set(ctrl.requant_mult, mult_word)
        for img in images:
            padded = list(img) + [0] * (len(img) % 2)
            for k in range(len(padded) // 2):      # WRITE_BUF bytes: low nibble first
                ctx.set(fmap.write.addr, k)
                ctx.set(fmap.write.data, padded[2 * k] | padded[2 * k + 1] << 4)
                ctx.set(fmap.write.en, 1)
                await ctx.tick()
            ctx.set(fmap.write.en, 0)
            ctx.set(ctrl.start, 1)
            await ctx.tick()
            ctx.set(ctrl.start, 0)
            await ctx.tick().until(ctrl.status.done)
            log["results"].append(ctx.get(ctrl.status.result))
            log["sums"].append([int(s) for s in unpack_bus(ctx.get(ctrl.output_codes), cfg.outputs,
                                                           ctrl.sum_bits, signed=True)])
            log["cycles"].append({name: ctx.get(getattr(ctrl, name)) for name in (
                "cycles_load_window", "cycles_accumulate", "cycles_activate", "cycles_pool")}
                | {name: ctx.get(getattr(ctrl.status, name)) for name in (
                    "cycles_total", "cycles_drive", "cycles_convert", "cycles_argmax")})

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(analog, background=True)
    sim.add_testbench(host)
    sim.run()
    return log


@pytest.mark.parametrize("adcs, padding, pool, activation, seed", [
    (0, 1, "max", "relu", 17), (1, 0, "avg", "relu", 19), (0, 1, "avg", "binary", 17)])
def test_tiny_cnn_matches_plain_reference(adcs, padding, pool, activation, seed):
    cfg = tiny_cfg(adcs=adcs, padding=padding, pool=pool, activation=activation)
    rng = np.random.default_rng(seed)   # seeds whose 5 images do not all land on one class
    shapes = cfg.network.layer_shapes
    weights = [rng.integers(-2, 3, size=shape).tolist() for shape in shapes]
    mults = [21, 30]
    images = rng.integers(0, 16, size=(5, 36)).tolist()
    images[0] = [15] * 36                                  # saturating ADC codes
    log = simulate(cfg, weights, images, mults[0] | mults[1] << 8)

    expected_events, expected_sums, expected_classes = [], [], []
    for img in images:
        events, sums, cls = reference(img, weights, mults, padding=padding, pool=pool,
                                      activation=activation)
        expected_events += events
        expected_sums.append(sums)
        expected_classes.append(cls)
    h_out = 6 + 2 * padding - 3 + 1
    flat = ((h_out - 2) // 2 + 1) ** 2 * 2                 # the pooled map's codes
    per_image = h_out * h_out * 2 + -(-flat // TILE_ROWS) * 2 + 2
    assert len(expected_events) == per_image * len(images) == cfg.events_per_image * len(images)
    assert log["events"] == expected_events
    assert log["sums"] == expected_sums
    assert log["results"] == expected_classes
    assert len(set(expected_classes)) > 1, "a meaningful spread of classes"
    assert all(c == log["cycles"][0] for c in log["cycles"]), "cycles do not depend on the data"


def test_dense_configs_are_refused():
    with pytest.raises(ValueError, match="dense network"):
        LayeredController(cfgmod.load())
