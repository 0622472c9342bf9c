"""The analog side of a controller, or of the whole chip, answered in Python for amaranth.sim
tests (tests/hdl/test_controller.py, test_controller_oracle.py, test_layered_controller.py, and
test_top.py through tests/support/tiny_cnn.py): the VMM and ADC handshakes with fixed
latencies, the ADC codes of each event from a rule the test gives."""

import numpy as np

from xbarflow.cocotb_tests.analog_bridge import pack_bus, unpack_bus

__all__ = ["CONVERT", "SETTLE", "answer_analog", "tick_until"]

SETTLE, CONVERT = 3, 2      # the stub's analog latencies (clocks)


async def tick_until(ctx, signal):
    """`ctx.tick().until(signal)` for background testbenches: a plain await per clock, so a
    testbench left waiting when the simulation ends closes cleanly (`until` does not)."""
    while True:
        await ctx.tick()
        if ctx.get(signal):
            return


async def answer_analog(ctx, dut, cfg, codes_of, *, settle=SETTLE, convert=CONVERT):
    """Answer every `vmm_start` of `dut` with `vmm_done` after `settle` clocks, then every
    `adc_start` of that event with the codes of the ADC group on `adc_col_sel` and `adc_valid`
    after `convert` clocks. ``codes_of(tile, dac)`` gets the tile index and the DAC codes of the
    tile's own rows (the rows past them must be driven 0) and returns the tile's ADC codes, one
    per output."""
    tiles, dac_bits, adcs = cfg.tiles, cfg.quant.dac_bits, cfg.tile_adcs
    while True:
        await tick_until(ctx, dut.vmm_start)
        t = ctx.get(dut.tile_sel)
        dac = unpack_bus(ctx.get(dut.dac_codes), cfg.crossbar.tile_rows, dac_bits)
        rows = tiles[t].rows
        assert not dac[rows:].any(), "rows past the tile's inputs must be 0"
        adc = np.asarray(codes_of(t, dac[:rows]), dtype=np.int64)
        await ctx.tick().repeat(settle)
        ctx.set(dut.vmm_done, 1)
        await ctx.tick()
        ctx.set(dut.vmm_done, 0)
        for _ in range(-(-tiles[t].outputs // adcs)):
            if not ctx.get(dut.adc_start):   # it may rise in the clock vmm_done falls
                await tick_until(ctx, dut.adc_start)
            g = ctx.get(dut.adc_col_sel) if cfg.adc_groups > 1 else 0
            group = np.zeros(adcs, dtype=np.int64)
            part = adc[g * adcs:(g + 1) * adcs]
            group[:part.size] = part
            await ctx.tick().repeat(convert)
            ctx.set(dut.adc_codes, pack_bus(group, cfg.adc.bits))
            ctx.set(dut.adc_valid, 1)
            await ctx.tick()
            ctx.set(dut.adc_valid, 0)
