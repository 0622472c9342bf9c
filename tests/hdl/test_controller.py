"""Controller FSM in amaranth.sim: a small two-layer network on 8 tiles with shared ADCs, the
analog side answered by the golden model's own tile arrays, every image compared with the golden
model (class, last-layer sums, and the DAC codes of every tile event)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from xbarflow.cocotb_tests.analog_bridge import pack_bus, unpack_bus
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.model.golden import GoldenChip, tile_event_indices
from xbarflow.hdl.controller import Controller

from tests.support.analog_stub import answer_analog


def small_cfg(activation="relu", adcs=1):
    return cfgmod.load().replace(**{
        "network.input_size": 4, "network.layers": [6, 3], "network.activations": [activation, "none"],
        "crossbar.tile_rows": 8, "crossbar.tile_cols": 4, "crossbar.partitions": 2,
        "adc.adcs_per_tile": adcs, "device.g_on": 2e-6, "adc.bits": 6, "sensing.tia_gain": 1e7,
        "network.requant_shift": 4})


def simulate(cfg, chip, codes, mult):
    dut = Controller(cfg)
    tiles, dac_bits = cfg.tiles, cfg.quant.dac_bits
    log = {"results": [], "sums": [], "events": [], "cycles": []}
    image = {"index": 0}

    def codes_of(t, dac):
        log["events"].append((image["index"], t, dac.copy()))
        event = tile_event_indices([image["index"]], len(tiles), t)
        return chip.tiles[t].array.adc_codes(dac[None], event)[0]

    async def analog(ctx):
        await answer_analog(ctx, dut, cfg, codes_of)

    async def host(ctx):
        ctx.set(dut.requant_mult, mult)
        for k, img in enumerate(codes):
            image["index"] = k
            ctx.set(dut.buffer_codes, pack_bus(img, dac_bits))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await ctx.tick().until(dut.status.done)
            log["results"].append(ctx.get(dut.status.result))
            log["sums"].append(unpack_bus(ctx.get(dut.output_codes), cfg.outputs, dut.sum_bits, signed=True))
            log["cycles"].append(ctx.get(dut.status.cycles_total))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(analog, background=True)
    sim.add_testbench(host)
    sim.run()
    return log


@pytest.mark.parametrize("activation, adcs", [("relu", 1), ("binary", 2), ("relu", 2)])
def test_tiled_network_matches_golden(activation, adcs):
    cfg = small_cfg(activation, adcs)
    assert len(cfg.tiles) == 8 and cfg.adc_groups == (2 if adcs == 1 else 1)
    rng = np.random.default_rng(7)
    weights = [rng.normal(size=(16, 6)), rng.normal(size=(6, 3))]
    mult = 23
    chip = GoldenChip.from_weights(cfg, weights, requant_mult=[mult] if activation == "relu" else [0])
    codes = rng.integers(0, 16, size=(12, 16))
    golden = chip.infer(codes, np.arange(len(codes)), trace=True)
    log = simulate(cfg, chip, codes, mult)

    assert log["results"] == golden.classes.tolist()
    assert np.array_equal(np.array(log["sums"]), golden.adc_codes)
    assert len(log["events"]) == 8 * len(codes), "every tile driven once per image"
    assert len(set(log["results"])) > 1, "a meaningful spread of classes"
    assert len(set(log["cycles"])) == 1, "cycle count does not depend on the data"
