"""Controller FSM in amaranth.sim with a behavioural analog side of fixed latencies."""

import numpy as np
from amaranth.sim import Simulator

from cocotb_tests.analog_bridge import pack_bus, unpack_bus
from hdl.controller import Controller

ROWS, DAC_BITS, OUTPUTS, ADC_BITS = 6, 4, 4, 8
SETTLE, CONVERT = 3, 5


def simulate(images, adc_for):
    dut = Controller(rows=ROWS, dac_bits=DAC_BITS, outputs=OUTPUTS, adc_bits=ADC_BITS)
    log = {"results": [], "dac": [], "cycles": [], "inferences": [], "busy_seen": []}

    async def analog(ctx):
        # Behavioural analog side: answers vmm_start / adc_start after fixed latencies.
        while True:
            await ctx.tick().until(dut.vmm_start)
            dac = unpack_bus(ctx.get(dut.dac_codes), ROWS, DAC_BITS)
            log["dac"].append(dac)
            await ctx.tick().repeat(SETTLE)
            ctx.set(dut.vmm_done, 1)
            await ctx.tick()
            ctx.set(dut.vmm_done, 0)
            await ctx.tick().until(dut.adc_start)
            await ctx.tick().repeat(CONVERT)
            ctx.set(dut.adc_codes, pack_bus(adc_for(dac), ADC_BITS))
            ctx.set(dut.adc_valid, 1)
            await ctx.tick()
            ctx.set(dut.adc_valid, 0)

    async def host(ctx):
        for img in images:
            ctx.set(dut.buffer_codes, pack_bus(img, DAC_BITS))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            # The buffer may change once LOAD has latched it: scribble on it to prove that.
            await ctx.tick()
            ctx.set(dut.buffer_codes, pack_bus(np.zeros(ROWS, dtype=int), DAC_BITS))
            log["busy_seen"].append(ctx.get(dut.busy))
            await ctx.tick().until(dut.done)
            assert not ctx.get(dut.busy)
            log["results"].append(ctx.get(dut.result))
            log["cycles"].append({k: ctx.get(getattr(dut, f"cycles_{k}"))
                                  for k in ("total", "drive", "convert", "argmax")})
            log["inferences"].append(ctx.get(dut.inferences))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(analog, background=True)
    sim.add_testbench(host)
    sim.run()
    return log


def test_classifies_and_counts_cycles():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 16, size=ROWS) for _ in range(5)]
    weights = rng.integers(-3, 4, size=(ROWS, OUTPUTS))
    adc_for = lambda dac: np.clip(dac @ weights, -128, 127)
    log = simulate(images, adc_for)
    assert len(log["results"]) == len(images)
    for img, dac, result in zip(images, log["dac"], log["results"]):
        assert np.array_equal(dac, img), "the DAC bus must carry the buffer latched at LOAD"
        assert result == int(np.argmax(adc_for(img)))
    assert log["inferences"] == [1, 2, 3, 4, 5]
    assert all(log["busy_seen"])
    c = log["cycles"][0]
    assert c["drive"] == SETTLE + 2
    assert c["convert"] == CONVERT + 2
    assert c["argmax"] == OUTPUTS + 2  # registered start pulse, one code per clock, done
    assert c["total"] == 1 + c["drive"] + c["convert"] + c["argmax"] + 1
    assert all(cyc == c for cyc in log["cycles"]), "counters restart for every inference"
