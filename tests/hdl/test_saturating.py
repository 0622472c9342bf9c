"""saturating_increment in amaranth.sim: a 3-bit counter counts 0..7 and then stays at 7."""

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from xbarflow.hdl.saturating import saturating_increment


def test_a_counter_stops_at_all_ones():
    m = Module()
    count, enable = Signal(3), Signal()
    with m.If(enable):
        m.d.sync += count.eq(saturating_increment(count))
    seen = []

    async def bench(ctx):
        ctx.set(enable, 1)
        for _ in range(12):
            await ctx.tick()
            seen.append(ctx.get(count))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [1, 2, 3, 4, 5, 6, 7] + [7] * 5     # 2^3 - 1, never back to 0
