"""SPISlave in amaranth.sim against a bit-banged mode-0 master clocked in system clocks."""

import random

import pytest
from amaranth.sim import Simulator

from xbarflow.hdl.spi import SPISlave

CS_SETUP = 2   # extra clocks from CS falling to the first bit's half period (>= 4 in total)


class Master:
    """A testbench SPI master: SCLK period `div` system clocks, half high, half low.

    Pins change right after a clock edge (the worst case for the slave's synchroniser
    latency) and MISO is sampled at the moment SCLK rises, as a real mode-0 master does,
    strictly: the value it had at the clock edge just before SCLK rises.
    """

    def __init__(self, dut, div):
        assert div % 2 == 0 and div >= 4
        self.dut, self.half = dut, div // 2

    async def select(self, ctx):
        ctx.set(self.dut.cs_n, 0)
        await ctx.tick().repeat(CS_SETUP)

    async def deselect(self, ctx):
        await ctx.tick().repeat(self.half)
        ctx.set(self.dut.cs_n, 1)
        await ctx.tick().repeat(2 * self.half)

    async def bits(self, ctx, value, nbits=8):
        received = 0
        for i in reversed(range(nbits)):
            ctx.set(self.dut.mosi, (value >> i) & 1)
            if self.half > 1:
                await ctx.tick().repeat(self.half - 1)
            # SCLK rises just after this clock edge; MISO must already be stable at the
            # edge itself (a register changing on this very edge would be a race).
            _, _, miso = await ctx.tick().sample(self.dut.miso)
            received = (received << 1) | miso
            ctx.set(self.dut.sclk, 1)
            await ctx.tick().repeat(self.half)
            ctx.set(self.dut.sclk, 0)
        return received

    async def transfer(self, ctx, data):
        return bytes([await self.bits(ctx, b) for b in data])


def run(dut, bench, tx_bytes=(), tx_delay=0):
    """Run `bench(ctx, log)`; background processes feed `tx_bytes` and log rx/deselect."""
    log = {"rx": [], "deselect": 0, "tx_taken": []}
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def feed_tx(ctx):
        if tx_delay:
            await ctx.tick().repeat(tx_delay)
        for b in tx_bytes:
            ctx.set(dut.tx.valid, 1)
            ctx.set(dut.tx.payload, b)
            await ctx.tick().until(dut.tx.ready)
            log["tx_taken"].append(b)
        ctx.set(dut.tx.valid, 0)

    async def monitor(ctx):
        ctx.set(dut.rx.ready, 1)
        async for _, _, valid, payload, deselect in ctx.tick().sample(
                dut.rx.valid, dut.rx.payload, dut.deselect):
            if valid:
                log["rx"].append(payload)
            log["deselect"] += deselect

    sim.add_testbench(feed_tx, background=True)
    sim.add_testbench(monitor, background=True)
    async def main(ctx):
        await bench(ctx, log)

    sim.add_testbench(main)
    sim.run()
    return log


@pytest.mark.parametrize("div", [4, 6, 10])
def test_full_duplex_bytes(div):
    dut = SPISlave()
    rng = random.Random(div)
    mosi_data = bytes([0xA5, 0x00, 0xFF, 0x5A, 0x81] + [rng.randrange(256) for _ in range(11)])
    miso_data = bytes([0x3C, 0x80, 0x01, 0xFF] + [rng.randrange(256) for _ in range(12)])
    master = Master(dut, div)
    seen = {}

    async def bench(ctx, log):
        assert ctx.get(dut.selected) == 0
        await master.select(ctx)
        seen["received"] = await master.transfer(ctx, mosi_data)
        seen["selected"] = ctx.get(dut.selected)
        await master.deselect(ctx)
        assert ctx.get(dut.selected) == 0

    log = run(dut, bench, tx_bytes=miso_data)
    assert seen["selected"] == 1
    assert bytes(log["rx"]) == mosi_data
    assert seen["received"] == miso_data
    assert log["deselect"] == 1


def test_filler_when_nothing_to_send_and_late_bytes_wait_for_a_boundary():
    dut = SPISlave()
    master = Master(dut, 4)
    seen = {}

    async def bench(ctx, log):
        await master.select(ctx)
        # The tx byte becomes valid in the middle of the 2nd byte: it must not be taken
        # until the 3rd byte starts, and bytes 1 and 2 are 0x00 filler.
        seen["received"] = await master.transfer(ctx, b"\x11\x22\x33\x44")
        await master.deselect(ctx)

    log = run(dut, bench, tx_bytes=[0xC3], tx_delay=CS_SETUP + 4 * 8 + 10)
    assert seen["received"] == b"\x00\x00\xc3\x00"
    assert bytes(log["rx"]) == b"\x11\x22\x33\x44"


@pytest.mark.parametrize("div", [4, 8])
def test_cs_raised_mid_byte_discards_partial_byte(div):
    dut = SPISlave()
    master = Master(dut, div)
    seen = {}

    async def bench(ctx, log):
        await master.select(ctx)
        seen["first"] = await master.transfer(ctx, b"\x96")
        await master.bits(ctx, 0b101, nbits=3)       # a partial byte, then CS goes up
        await master.deselect(ctx)
        seen["deselects_after_first"] = log["deselect"]
        await master.select(ctx)
        seen["second"] = await master.transfer(ctx, b"\x69\xF0")
        await master.deselect(ctx)

    log = run(dut, bench, tx_bytes=[0xE7, 0x42, 0x18, 0x99])
    assert bytes(log["rx"]) == b"\x96\x69\xF0"      # the 3 stray bits were dropped
    assert seen["deselects_after_first"] == 1
    assert log["deselect"] == 2
    assert seen["first"] == b"\xE7"
    # 0x42 was loaded for the aborted byte and is lost with it; the new window starts
    # on a byte boundary with the next queued byte.
    assert log["tx_taken"][:2] == [0xE7, 0x42]
    assert seen["second"] == b"\x18\x99"


def test_miso_idles_low_and_sclk_ignored_while_deselected():
    dut = SPISlave()
    master = Master(dut, 4)

    async def bench(ctx, log):
        # Clock SCLK with CS high: nothing may be received or taken.
        await master.bits(ctx, 0xFF)
        assert ctx.get(dut.miso) == 0
        await master.select(ctx)
        assert await master.transfer(ctx, b"\x5A") == b"\xAB"
        await master.deselect(ctx)

    log = run(dut, bench, tx_bytes=[0xAB])
    assert bytes(log["rx"]) == b"\x5A"
    assert log["deselect"] == 1
