# amaranth: UnusedElaboratable=no
"""WriteAck in amaranth.sim: event flip-flops, synchronised AND, timeout and failure count."""

import pytest
from amaranth.hdl import Module, ResetSignal, Signal
from amaranth.sim import Simulator

from xbarflow.hdl.write_ack import WriteAck

NP, TIMEOUT = 4, 5


def run(bench, partitions=NP, timeout=TIMEOUT):
    dut = WriteAck(partitions, timeout)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def main(ctx):
        await bench(ctx, dut)

    sim.add_testbench(main)
    sim.run()


async def verify(ctx, dut, ok):
    """One verify_done strobe with `ok`, then wait until all_acked reflects it."""
    ctx.set(dut.verify_ok, ok)
    ctx.set(dut.verify_done, 1)
    await ctx.tick()
    ctx.set(dut.verify_done, 0)
    ctx.set(dut.verify_ok, 0)
    await ctx.tick().repeat(WriteAck.LATENCY - 1)


def decide(ctx, dut):
    """The combinational decision outputs with decide strobed (no clock edge)."""
    ctx.set(dut.decide, 1)
    out = ctx.get(dut.advance), ctx.get(dut.forced), ctx.get(dut.failed)
    ctx.set(dut.decide, 0)
    return out


async def pulse(ctx, dut, n=1):
    for _ in range(n):
        ctx.set(dut.pulse, 1)
        await ctx.tick()
        ctx.set(dut.pulse, 0)


async def clear(ctx, dut, present):
    ctx.set(dut.present, present)
    ctx.set(dut.clear, 1)
    await ctx.tick()
    ctx.set(dut.clear, 0)


def test_advances_only_on_the_last_ack_and_absent_partitions_count_as_acked():
    async def bench(ctx, dut):
        await clear(ctx, dut, 0b0111)               # partition 3 absent at this row
        await ctx.tick().repeat(WriteAck.LATENCY)
        assert ctx.get(dut.all_acked) == 0
        assert decide(ctx, dut) == (0, 0, 0)
        await verify(ctx, dut, 0b1001)              # bit 3 is absent: ignored
        assert ctx.get(dut.acked) == 0b0001
        assert decide(ctx, dut) == (0, 0, 0)
        await pulse(ctx, dut)
        await verify(ctx, dut, 0b0100)
        assert ctx.get(dut.acked) == 0b0101         # flops are latched: bit 0 stays
        assert decide(ctx, dut) == (0, 0, 0)
        await verify(ctx, dut, 0b0000)
        assert ctx.get(dut.acked) == 0b0101
        await verify(ctx, dut, 0b0010)              # the last pending partition
        assert ctx.get(dut.acked) == 0b0111
        assert ctx.get(dut.all_acked) == 1
        assert decide(ctx, dut) == (1, 0, 0)
        assert ctx.get(dut.pulses) == 1

    run(bench)


def test_all_acked_latency_is_the_event_flop_plus_two_synchroniser_flops():
    async def bench(ctx, dut):
        await clear(ctx, dut, 0b0001)
        await ctx.tick().repeat(3)
        ctx.set(dut.verify_ok, 1)
        ctx.set(dut.verify_done, 1)
        seen = []
        for _ in range(5):
            await ctx.tick()
            ctx.set(dut.verify_done, 0)
            seen.append(ctx.get(dut.all_acked))
        # Visible in the clock LATENCY after the done clock (seen[0] is done + 1).
        assert seen == [0] * (WriteAck.LATENCY - 1) + [1] * (5 - WriteAck.LATENCY + 1)

    run(bench)


def test_timeout_forces_the_advance_and_counts_pending_partitions():
    async def bench(ctx, dut):
        await clear(ctx, dut, 0b1011)               # partition 2 absent
        await verify(ctx, dut, 0b0010)
        for k in range(TIMEOUT):
            assert ctx.get(dut.timed_out) == 0
            assert decide(ctx, dut) == (0, 0, 0)
            await pulse(ctx, dut)
            assert ctx.get(dut.pulses) == k + 1
            await verify(ctx, dut, 0)
        assert ctx.get(dut.timed_out) == 1
        # Partitions 0 and 3 are pending (1 acked, 2 absent): two failures.
        assert decide(ctx, dut) == (1, 1, 2)
        # The counter does not pass the timeout.
        await pulse(ctx, dut)
        assert ctx.get(dut.pulses) == TIMEOUT

    run(bench)


def test_all_acked_wins_over_a_timeout():
    async def bench(ctx, dut):
        await clear(ctx, dut, 0b1111)
        await pulse(ctx, dut, TIMEOUT)
        await verify(ctx, dut, 0b1111)
        assert ctx.get(dut.timed_out) == 1
        assert decide(ctx, dut) == (1, 0, 0)

    run(bench)


def test_clear_restarts_the_step():
    async def bench(ctx, dut):
        await clear(ctx, dut, 0b1111)
        await verify(ctx, dut, 0b0110)
        await pulse(ctx, dut, 3)
        assert (ctx.get(dut.acked), ctx.get(dut.pulses)) == (0b0110, 3)
        await clear(ctx, dut, 0b1111)
        assert (ctx.get(dut.acked), ctx.get(dut.pulses)) == (0, 0)
        # clear wins over a verify or pulse in the same clock.
        ctx.set(dut.verify_ok, 0b1111)
        ctx.set(dut.verify_done, 1)
        ctx.set(dut.pulse, 1)
        await clear(ctx, dut, 0b1111)
        ctx.set(dut.verify_done, 0)
        ctx.set(dut.pulse, 0)
        assert (ctx.get(dut.acked), ctx.get(dut.pulses)) == (0, 0)

    run(bench)


def test_reset_clears_flops_counter_and_synchroniser():
    dut = WriteAck(NP, TIMEOUT)
    m = Module()
    m.submodules.dut = dut
    rst = Signal()
    m.d.comb += ResetSignal().eq(rst)
    sim = Simulator(m)
    sim.add_clock(1e-8)

    async def main(ctx):
        await clear(ctx, dut, 0b1111)
        await verify(ctx, dut, 0b1111)
        await pulse(ctx, dut, 2)
        assert (ctx.get(dut.acked), ctx.get(dut.pulses), ctx.get(dut.all_acked)) == (0b1111, 2, 1)
        ctx.set(rst, 1)
        await ctx.tick()
        ctx.set(rst, 0)
        assert (ctx.get(dut.acked), ctx.get(dut.pulses), ctx.get(dut.all_acked)) == (0, 0, 0)

    sim.add_testbench(main)
    sim.run()


@pytest.mark.parametrize("partitions, timeout", [(0, 5), (2, 0)])
def test_rejects_bad_parameters(partitions, timeout):
    with pytest.raises(ValueError):
        WriteAck(partitions, timeout)
