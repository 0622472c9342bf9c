# amaranth: UnusedElaboratable=no
"""OutputBuffer in amaranth.sim: the bytes READ_BUF sees for known signed sums.

Expected bytes are written out by hand from the definition (sum k sign-extended to 16 bits,
two's complement, high byte at 2k, low byte at 2k + 1), not taken from `xbarflow.flow.host.driver`.
"""

import pytest
from amaranth.sim import Simulator

from xbarflow.hdl.output_buffer import OutputBuffer


def read_bytes(sums, sum_bits, addresses):
    """Drive `sums` (signed) onto the codes bus; the byte read at each address."""
    dut = OutputBuffer(len(sums), sum_bits)
    mask = (1 << sum_bits) - 1
    bus = sum((s & mask) << (k * sum_bits) for k, s in enumerate(sums))
    seen = []

    async def bench(ctx):
        ctx.set(dut.codes, bus)
        for addr in addresses:
            ctx.set(dut.read.addr, addr)
            seen.append(ctx.get(dut.read.data))      # combinational: no clock needed

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return seen


def test_sums_are_sign_extended_big_endian():
    # 9-bit sums: 0x0FF = 255, 0x100 = -256, 0x1FF = -1; then 1 and 0x0A5 = 165.
    sums = [255, -256, -1, 1, 165]
    expected = [0x00, 0xFF,     # 255
                0xFF, 0x00,     # -256 = 0xFF00
                0xFF, 0xFF,     # -1 = 0xFFFF
                0x00, 0x01,     # 1
                0x00, 0xA5]     # 165
    assert read_bytes(sums, 9, range(10)) == expected


@pytest.mark.parametrize("sum_bits", [8, 12, 16])
def test_extremes_at_every_width(sum_bits):
    lo, hi = -(1 << (sum_bits - 1)), (1 << (sum_bits - 1)) - 1
    low16 = {8: (0xFF80, 0x007F), 12: (0xF800, 0x07FF), 16: (0x8000, 0x7FFF)}[sum_bits]
    got = read_bytes([lo, hi], sum_bits, range(4))
    assert got == [low16[0] >> 8, low16[0] & 0xFF, low16[1] >> 8, low16[1] & 0xFF]


def test_bytes_past_the_sums_read_zero():
    assert read_bytes([-1, -1], 10, [4, 5, 100, 0xFFFF]) == [0, 0, 0, 0]
