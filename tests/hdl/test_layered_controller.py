# amaranth: UnusedElaboratable=no
"""LayeredController in amaranth.sim with a real FeatureMap: the tiny CNN of tests/support/tiny_cnn.py
(6 x 6 image, conv 3x3x2 with or without zero padding, pool 2, flatten, dense 4, dense 3) on 10
tiles, the analog side faked by a simple integer rule on the driven DAC codes. Every tile event
(tile, DAC codes) and every image's sums and class are compared with that file's plain-Python
reference written from CNN_SPEC section 2."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from xbarflow.cocotb_tests.analog_bridge import unpack_bus
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.hdl.feature_map import FeatureMap
from xbarflow.hdl.layered_controller import LayeredController

from tests.support.analog_stub import answer_analog
from tests.support.layered_cycles import expected_phases
from tests.support.tiny_cnn import TILE_ROWS, fake_analog, reference, tiny_cfg

def simulate(cfg, images, mult_word, answer):
    """Run `images` one after the other; `answer(ctx, ctrl, log)` is the analog side."""
    dac_bits = cfg.quant.dac_bits
    ctrl = LayeredController(cfg)
    fmap = FeatureMap(cfg.network.feature_map_codes, dac_bits)
    m = Module()
    m.submodules.ctrl, m.submodules.fmap = ctrl, fmap
    connect(m, ctrl.feature_read, fmap.code_read)
    connect(m, ctrl.feature_write, fmap.code_write)
    log = {"events": [], "sums": [], "results": [], "cycles": [], "image": 0}

    async def analog(ctx):
        await answer(ctx, ctrl, log)

    async def host(ctx):
        ctx.set(ctrl.requant_mult, mult_word)
        for k, img in enumerate(images):
            log["image"] = k
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

    async def answer(ctx, ctrl, log):
        await fake_analog(ctx, ctrl, cfg, weights, log["events"])
    log = simulate(cfg, images, mults[0] | mults[1] << 8, answer)

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
    assert phases_without_analog(log["cycles"][0]) == expected_phases(cfg)


def phases_without_analog(counters):
    """The counters, with DRIVE and CONVERT (the analog side's pace) taken out of the total."""
    out = dict(counters)
    out["cycles_total"] -= out.pop("cycles_drive") + out.pop("cycles_convert")
    return out


def test_tiny_cnn_matches_golden():
    # The golden model's own tile arrays answer, with ADC noise keyed by the event index
    # e = i * events_per_image + j (j counted here in the order the RTL drives the tiles), so
    # the RTL's execution order is the one the golden model keys its draws by.
    cfg = tiny_cfg(**{"adc.noise_lsb": 0.7})
    rng = np.random.default_rng(5)      # no tile saturates, every map spans 0..15, two classes
    weights = [rng.normal(size=shape) for shape in cfg.network.layer_shapes]
    mults = [60, 120]
    chip = GoldenChip.from_weights(cfg, weights, requant_mult=mults)
    images = rng.integers(0, 16, size=(4, 36))
    golden = chip.infer(images, np.arange(len(images)), trace=True)
    per_image = cfg.events_per_image

    async def answer(ctx, ctrl, log):
        j = {"image": -1, "event": 0}

        def codes_of(t, dac):
            if log["image"] != j["image"]:
                j["image"], j["event"] = log["image"], 0
            log["events"].append((j["image"], j["event"], t, dac.copy()))
            event = np.array([j["image"] * per_image + j["event"]])
            j["event"] += 1
            return chip.tiles[t].array.adc_codes(dac[None], event)[0]

        await answer_analog(ctx, ctrl, cfg, codes_of, settle=2, convert=2)

    log = simulate(cfg, images.tolist(), mults[0] | mults[1] << 8, answer)
    assert len(log["events"]) == per_image * len(images)
    trace = golden.trace
    for i, j, t, dac in log["events"]:
        assert t == trace.events[j].tile, (i, j)
        golden_dac = trace.event_dac_codes(j)[i]          # the RTL's rows past the tile's are 0
        assert np.array_equal(dac, golden_dac[:dac.size]) and not golden_dac[dac.size:].any(), (i, j)
    assert log["sums"] == golden.adc_codes.tolist()
    assert log["results"] == golden.classes.tolist()
    assert len(set(log["results"])) > 1, "a meaningful spread of classes"


def test_dense_configs_are_refused():
    with pytest.raises(ValueError, match="dense network"):
        LayeredController(cfgmod.load())
