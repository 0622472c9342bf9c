# amaranth: UnusedElaboratable=no
"""AddressDecoder in amaranth.sim: one-hot for every address, zero when disabled or out of range."""

import pytest
from amaranth.sim import Simulator

from xbarflow.hdl.decoder import AddressDecoder, address_bits


def run(dut, bench):
    sim = Simulator(dut)

    async def main(ctx):
        await bench(ctx)

    sim.add_testbench(main)
    sim.run()


@pytest.mark.parametrize("n", [1, 2, 5, 8, 20, 25])
def test_onehot_for_every_address_and_zero_when_disabled(n):
    dut = AddressDecoder(n)
    assert len(dut.addr) == address_bits(n) and len(dut.onehot) == n

    async def bench(ctx):
        for addr in range(1 << len(dut.addr)):
            ctx.set(dut.addr, addr)
            ctx.set(dut.enable, 1)
            expected = 1 << addr if addr < n else 0     # out of range selects no line
            assert ctx.get(dut.onehot) == expected, (n, addr)
            ctx.set(dut.enable, 0)
            assert ctx.get(dut.onehot) == 0, (n, addr)

    run(dut, bench)


def test_rejects_empty_decoder():
    with pytest.raises(ValueError):
        AddressDecoder(0)
