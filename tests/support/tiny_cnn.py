"""A tiny CNN for amaranth.sim tests of the layered controller and the whole chip (imported by
tests/hdl/test_layered_controller.py and tests/hdl/test_top.py): its config (6 x 6 image, conv
3x3x2, pool 2, flatten, dense 4, dense 3 on 8 x 4 tiles), a fake analog side answering the
driven DAC codes by a simple integer rule (through tests/support/analog_stub.py), and a
plain-Python reference of the whole network written from CNN_SPEC section 2 (not from the RTL or
the golden model)."""

from xbarflow.flow.core import config as cfgmod

from tests.support.analog_stub import answer_analog

__all__ = ["ADC_BITS", "DAC_MAX", "SHIFT", "TILE_OUTS", "TILE_ROWS", "adc_rule", "fake_analog",
           "reference", "tiny_cfg"]

ADC_BITS, SHIFT, TILE_ROWS, TILE_OUTS, DAC_MAX = 6, 4, 8, 2, 15


def tiny_cfg(*, adcs=0, padding=1, pool="max", activation="relu", **extra):
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
        "network.requant_shift": SHIFT, **extra})


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


async def fake_analog(ctx, dut, cfg, weights, events):
    """Answer every `vmm_start` of `dut` (a controller or the whole chip) after the stub's latencies
    with `adc_rule` of the driven codes; log each tile
    event (tile, DAC codes of the tile's rows) into `events`."""
    def codes_of(t, dac):
        spec = cfg.tiles[t]
        events.append((t, [int(d) for d in dac]))
        w = weights[spec.layer]
        return adc_rule(dac, [[w[i][o] for o in range(spec.out_start, spec.out_stop)]
                              for i in range(spec.row_start, spec.row_stop)])

    await answer_analog(ctx, dut, cfg, codes_of)
