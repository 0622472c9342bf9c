"""Independent oracle of the MLP's digital arithmetic: per-tile ADC codes, layer sums,
requantised ReLU clip((s * mult) >> shift, 0, 15), binary activation and the lowest-index
argmax, computed here with plain Python integers and compared with the golden model
(`xbarflow.flow.model.golden`) and with the RTL controller (hdl/controller.py with hdl/activation.py and
hdl/argmax.py, in amaranth.sim).

The network is configs/mlp.toml's arithmetic (4-bit DAC codes, 8-bit signed ADC, shift 8,
8-bit multiplier, shared ADCs behind a column multiplexer) on a small geometry: 16 inputs ->
12 hidden -> 4 classes on 8 x 8 tiles (two row tiles per layer, so sums add two ADC codes).
The analog side is replaced by a hand-made integer "crossbar": tile t answers
code_k = clip(sum_i x_i * W[i][k], -128, 127) over its own rows, so every ADC code the digital
side sees is known exactly. Images and weights are chosen so the run contains ADC saturation,
negative sums, ReLU outputs below, at and above the clip, sums of exactly zero, and argmax ties
at the maximum; the test asserts each of those occurs.
"""

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from xbarflow.cocotb_tests.analog_bridge import pack_bus, unpack_bus
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.model.golden import GoldenChip, argmax_lowest, binary_activation, requantize_relu
from xbarflow.hdl.controller import Controller

from tests.support.analog_stub import answer_analog

MLP_TOML = cfgmod.CONFIG_DIR / "mlp.toml"
SMALL = {"network.input_size": 4, "network.layers": [12, 4],
         "crossbar.tile_rows": 8, "crossbar.tile_cols": 8, "crossbar.partitions": 2,
         "adc.adcs_per_tile": 2}
INPUTS, HIDDEN, CLASSES = 16, 12, 4
MULT = 200            # ReLU register: (s * 200) >> 8, so s = 20 -> 15 (15.6), s = 21 -> 16 -> clip 15


def small_cfg(hidden="relu"):
    return cfgmod.load(MLP_TOML).replace(**SMALL, **{"network.activations": [hidden, "none"]})


# Hand-made integer weights. Hidden neuron k sees a pattern in -3..3 (0 and 1 all +3 / -3); class columns 1 and 3 are
# identical, so their sums always tie (the argmax must pick 1 when they are the maximum).
W0 = [[(i * 5 + k * 3) % 7 - 3 for k in range(HIDDEN)] for i in range(INPUTS)]
for i in range(INPUTS):
    W0[i][0], W0[i][1] = 3, -3     # neurons 0 and 1 saturate their tiles' ADCs on bright images
    W0[i][11] = 1 if i % 2 == 0 else -1   # neuron 11: 0 on flat images
W1 = [[(h * 3 + c) % 5 - 2 for c in range(CLASSES)] for h in range(HIDDEN)]
for h in range(HIDDEN):
    W1[h][3] = W1[h][1]

IMAGES = [
    [0] * INPUTS,                                    # all zero: every sum 0, class 0 by the tie rule
    [15] * INPUTS,                                   # full scale: tiles saturate at both rails
    [1] * INPUTS,                                    # small flat image: small sums, neuron 11 at 0
    [(i * 7) % 16 for i in range(INPUTS)],
    [(i * 3) % 5 for i in range(INPUTS)],
    [15 if i < 8 else 0 for i in range(INPUTS)],     # only the first row tile driven
    [0 if i < 8 else 9 for i in range(INPUTS)],      # only the second
    [2, 0, 2, 0, 3, 1, 0, 0, 1, 2, 0, 1, 0, 0, 2, 1],
    [4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [(15 - i) % 6 for i in range(INPUTS)],
    [10, 0, 10, 0] + [0] * 12,                       # neuron 11: s = 20 -> (20 * 200) >> 8 = 15, unclipped
]


# -- the oracle: plain Python integers ----------------------------------------------------------

def clip(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def tile_codes(x, w, rows, outs):
    """The stub crossbar's signed 8-bit ADC codes of one tile: rows `rows`, outputs `outs`."""
    return [clip(sum(x[i] * w[i][k] for i in rows), -128, 127) for k in outs]


def oracle(image, hidden="relu", mult=MULT, shift=8, row_tile=8):
    """Every step of one image: tile codes per layer, sums, activations, class."""
    steps = {"tiles": [], "sums": [], "acts": []}
    x = list(image)
    for layer, (w, n_out) in enumerate(((W0, HIDDEN), (W1, CLASSES))):
        n_in = len(x)
        row_tiles = [range(r, min(r + row_tile, n_in)) for r in range(0, n_in, row_tile)]
        sums = [0] * n_out
        for c in range(0, n_out, 4):                 # 4 outputs per column tile (8 columns)
            outs = range(c, min(c + 4, n_out))
            for rows in row_tiles:
                codes = tile_codes(x, w, rows, outs)
                steps["tiles"].append(codes)
                for k, code in zip(outs, codes):
                    sums[k] += code
        steps["sums"].append(sums)
        if layer == 0:
            if hidden == "relu":     # Python's >> floors, like an arithmetic shift
                x = [clip((s * mult) >> shift, 0, 15) for s in sums]
            else:
                x = [15 if s > 0 else 0 for s in sums]
            steps["acts"].append(x)
    last = steps["sums"][-1]
    steps["class"] = last.index(max(last))          # list.index: the first maximum
    return steps


# -- the stub analog side, shared by the golden model and the RTL bench -------------------------

class IntegerCrossbar:
    """Stands in for a tile's AnalogArray: ADC codes of DAC codes by integer weights."""

    def __init__(self, block):
        self.block = np.asarray(block, dtype=np.int64)

    def adc_codes(self, dac_codes, event_index=0):
        return np.clip(np.asarray(dac_codes, dtype=np.int64) @ self.block, -128, 127)


def stub_chip(cfg, mult):
    """A GoldenChip of `cfg` whose tiles answer through `IntegerCrossbar` blocks of W0, W1."""
    weights = [np.asarray(W0, dtype=float), np.asarray(W1, dtype=float)]
    chip = GoldenChip.from_weights(cfg, weights, requant_mult=[mult])
    for n, tile in enumerate(chip.tiles):
        w = (W0, W1)[tile.layer]
        block = [row[tile.out_slice] for row in w[tile.row_slice]]
        chip.tiles[n] = dataclasses.replace(tile, array=IntegerCrossbar(block))
    return chip


def simulate_rtl(cfg, chip, images, mult):
    """The Controller in amaranth.sim, its analog side answered by the stub tiles."""
    dut = Controller(cfg)
    dac_bits = cfg.quant.dac_bits
    log = {"class": [], "sums": [], "tile_inputs": []}

    def codes_of(t, dac):
        log["tile_inputs"].append((t, dac.tolist()))
        return chip.tiles[t].array.adc_codes(dac)

    async def analog(ctx):
        await answer_analog(ctx, dut, cfg, codes_of)

    async def host(ctx):
        ctx.set(dut.requant_mult, mult)
        for img in images:
            ctx.set(dut.buffer_codes, pack_bus(np.asarray(img), dac_bits))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await ctx.tick().until(dut.status.done)
            log["class"].append(ctx.get(dut.status.result))
            log["sums"].append(unpack_bus(ctx.get(dut.output_codes), CLASSES, dut.sum_bits,
                                          signed=True).tolist())

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(analog, background=True)
    sim.add_testbench(host)
    sim.run()
    return log


# -- tests --------------------------------------------------------------------------------------

def test_config_keeps_the_mlp_arithmetic():
    cfg = small_cfg()
    assert (cfg.network.requant_shift, cfg.network.requant_mult_bits) == (8, 8)
    assert (cfg.quant.dac_max, cfg.adc.bits) == (15, 8)
    assert len(cfg.tiles) == 8 and [t.layer for t in cfg.tiles] == [0] * 6 + [1] * 2
    assert max(t.row_tile for t in cfg.tiles) == 1, "two row tiles: sums add two codes"


def test_the_images_exercise_every_case():
    relu = [oracle(img) for img in IMAGES]
    binary = [oracle(img, "binary") for img in IMAGES]
    tile_codes_all = [c for r in relu for t in r["tiles"] for c in t]
    assert 127 in tile_codes_all and -128 in tile_codes_all, "ADC saturation at both rails"
    hidden = [(s, a) for r in relu for s, a in zip(r["sums"][0], r["acts"][0])]
    assert any(s < 0 for s, _ in hidden), "negative hidden sums (ReLU -> 0)"
    assert any(s > 0 and (s * MULT) >> 8 == 0 for s, _ in hidden), "positive sums that floor to 0"
    assert any(0 < a < 15 and (s * MULT) % 256 for s, a in hidden), "in-range ReLU with a floored remainder"
    assert any((s * MULT) >> 8 == 15 for s, _ in hidden), "exactly at the clip"
    assert any((s * MULT) >> 8 > 15 for s, _ in hidden), "clipped above"
    assert any(s == 0 for r in binary for s in r["sums"][0]), "binary: a sum of exactly 0 -> 0"
    for r in relu + binary:
        last = r["sums"][-1]
        assert last[1] == last[3], "classes 1 and 3 always tie"
    ties_at_max = [r for r in relu + binary
                   if r["sums"][-1].count(max(r["sums"][-1])) > 1 and r["class"] != 0]
    assert ties_at_max, "a tie at the maximum that is not at index 0"
    assert {r["class"] for r in relu} >= {0, 1}, "more than one class"


@pytest.mark.parametrize("hidden", ["relu", "binary"])
def test_golden_model_matches_the_oracle(hidden):
    cfg = small_cfg(hidden)
    chip = stub_chip(cfg, MULT)
    golden = chip.infer(np.asarray(IMAGES), trace=True)
    for n, img in enumerate(IMAGES):
        want = oracle(img, hidden)
        assert [golden.trace.tile_adc_codes[t][n].tolist() for t in range(len(cfg.tiles))] == want["tiles"]
        assert [s[n].tolist() for s in golden.trace.sums] == want["sums"]
        assert golden.trace.activations[0][n].tolist() == want["acts"][0]
        assert int(golden.classes[n]) == want["class"], f"image {n}"
    # The golden model's digital twins one by one, on edge values.
    sums = np.array([-300, -1, 0, 1, 2, 19, 20, 21, 255])
    assert requantize_relu(sums, MULT, 8, 15).tolist() == [clip((int(s) * MULT) >> 8, 0, 15) for s in sums]
    assert binary_activation(sums, 15).tolist() == [15 if s > 0 else 0 for s in sums]
    assert argmax_lowest(np.array([[3, 7, 2, 7], [0, 0, 0, 0], [-5, -2, -2, -9]])).tolist() == [1, 0, 1]


@pytest.mark.parametrize("hidden", ["relu", "binary"])
def test_rtl_matches_the_oracle(hidden):
    cfg = small_cfg(hidden)
    chip = stub_chip(cfg, MULT)
    log = simulate_rtl(cfg, chip, IMAGES, MULT)
    tiles = cfg.tiles
    per_image = len(tiles)
    for n, img in enumerate(IMAGES):
        want = oracle(img, hidden)
        events = log["tile_inputs"][n * per_image:(n + 1) * per_image]
        assert [t for t, _ in events] == list(range(per_image)), "tiles in tile_sel order"
        # The codes the RTL drove onto the output layer's tiles are its hidden activations.
        for t, dac in events:
            spec = tiles[t]
            src = img if spec.layer == 0 else want["acts"][0]
            assert dac == src[spec.row_start:spec.row_stop], f"image {n} tile {t}: inputs"
        assert log["sums"][n] == want["sums"][-1], f"image {n}: output sums"
        assert log["class"][n] == want["class"], f"image {n}: class"
