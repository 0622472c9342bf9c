"""UART (8N1) in amaranth.sim: receive, transmit, framing errors, glitches, loopback."""

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from xbarflow.hdl.uart import UART


async def send_char(ctx, pin, byte, bit_clocks, stop=1):
    """Drive one 8N1 character onto `pin`, `bit_clocks` clocks per bit."""
    for level in [0] + [(byte >> i) & 1 for i in range(8)] + [stop]:
        ctx.set(pin, level)
        await ctx.tick().repeat(bit_clocks)
    ctx.set(pin, 1)


async def receive_char(ctx, pin, bit_clocks, max_wait=10_000):
    """Decode one character from `pin`; returns (byte, stop_bit, clocks from call to start)."""
    waited = 0
    while ctx.get(pin):
        await ctx.tick()
        waited += 1
        assert waited < max_wait, "no start bit"
    await ctx.tick().repeat(bit_clocks // 2)
    assert ctx.get(pin) == 0, "start bit too short"
    byte = 0
    for i in range(8):
        await ctx.tick().repeat(bit_clocks)
        byte |= ctx.get(pin) << i
    await ctx.tick().repeat(bit_clocks)
    return byte, ctx.get(pin), waited


def run(dut, bench, collect=True):
    received = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def collector(ctx):
        ctx.set(dut.rx.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(dut.rx.valid, dut.rx.payload):
            if valid:
                received.append(payload)

    async def main(ctx):
        await bench(ctx, received)

    if collect:
        sim.add_testbench(collector, background=True)
    sim.add_testbench(main)
    sim.run()
    return received


@pytest.mark.parametrize("divider, sender_clocks", [(4, 4), (16, 16), (32, 33), (32, 31)])
def test_receive(divider, sender_clocks):
    """Bytes at the nominal rate, and from a sender ~3 % fast or slow."""
    dut = UART(divider)
    data = [0x00, 0xFF, 0x55, 0xAA, 0xA5, 0x01, 0x80, 0x3C]

    async def bench(ctx, received):
        await ctx.tick().repeat(5)
        for b in data:                       # back to back, no idle time between characters
            await send_char(ctx, dut.rxd, b, sender_clocks)
        await ctx.tick().repeat(3 * divider)

    assert run(dut, bench) == data


def test_framing_error_is_counted_and_the_byte_dropped():
    dut = UART(8)

    async def bench(ctx, received):
        await ctx.tick().repeat(5)
        await send_char(ctx, dut.rxd, 0x12, 8)
        await send_char(ctx, dut.rxd, 0x34, 8, stop=0)       # bad stop bit
        await ctx.tick().repeat(8 * 3)                         # line idles high again
        # A break (line low for > one character) counts once.
        ctx.set(dut.rxd, 0)
        await ctx.tick().repeat(8 * 25)
        ctx.set(dut.rxd, 1)
        await ctx.tick().repeat(8 * 2)
        await send_char(ctx, dut.rxd, 0x56, 8)
        await ctx.tick().repeat(8 * 2)
        assert ctx.get(dut.framing_errors) == 2

    assert run(dut, bench) == [0x12, 0x56]


def test_short_glitch_is_not_a_start_bit():
    dut = UART(16)

    async def bench(ctx, received):
        await ctx.tick().repeat(5)
        ctx.set(dut.rxd, 0)
        await ctx.tick().repeat(4)                               # a quarter bit low
        ctx.set(dut.rxd, 1)
        await ctx.tick().repeat(16 * 12)
        assert received == []
        await send_char(ctx, dut.rxd, 0x9C, 16)
        await ctx.tick().repeat(16)
        assert ctx.get(dut.framing_errors) == 0

    assert run(dut, bench) == [0x9C]


@pytest.mark.parametrize("divider", [4, 16])
def test_transmit_back_to_back(divider):
    dut = UART(divider)
    data = [0xA5, 0x00, 0xFF, 0x3C, 0x81]
    got = []

    async def feed(ctx):
        for b in data:
            ctx.set(dut.tx.valid, 1)
            ctx.set(dut.tx.payload, b)
            await ctx.tick().until(dut.tx.ready)
        ctx.set(dut.tx.valid, 0)

    async def bench(ctx, received):
        assert ctx.get(dut.txd) == 1                             # idles high
        for i in range(len(data)):
            byte, stop, waited = await receive_char(ctx, dut.txd, divider)
            got.append((byte, stop))
            if i:
                # The next start bit follows the stop bit's middle by half a bit: no gap.
                assert waited == divider // 2, waited
        await ctx.tick().repeat(divider)
        assert ctx.get(dut.txd) == 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed, background=True)

    async def main(ctx):
        await bench(ctx, None)

    sim.add_testbench(main)
    sim.run()
    assert got == [(b, 1) for b in data]


class Loopback(Elaboratable):
    def __init__(self, divider):
        self.uart = UART(divider)

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart = self.uart
        m.d.comb += self.uart.rxd.eq(self.uart.txd)
        return m


def test_loopback():
    top = Loopback(5)
    dut = top.uart
    data = bytes(range(0, 256, 17))
    received = []

    async def feed(ctx):
        for b in data:
            ctx.set(dut.tx.valid, 1)
            ctx.set(dut.tx.payload, b)
            await ctx.tick().until(dut.tx.ready)
        ctx.set(dut.tx.valid, 0)

    async def collect(ctx):
        ctx.set(dut.rx.ready, 1)
        for _ in range(len(data) * 10 * 5 + 100):
            _, _, valid, payload = await ctx.tick().sample(dut.rx.valid, dut.rx.payload)
            if valid:
                received.append(payload)
        assert ctx.get(dut.framing_errors) == 0

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    assert bytes(received) == data
