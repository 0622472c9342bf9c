# amaranth: UnusedElaboratable=no
"""InputBuffer in amaranth.sim: host bytes land where the LSB-first packing says."""

from amaranth.sim import Simulator

from xbarflow.hdl.input_buffer import InputBuffer


def run_writes(code_bits, writes):
    """Write (addr, byte) pairs, one per clock; return the `codes` bus afterwards."""
    dut = InputBuffer(code_bits)
    seen = {}

    async def bench(ctx):
        for addr, byte in writes:
            ctx.set(dut.write.addr, addr)
            ctx.set(dut.write.data, byte)
            ctx.set(dut.write.en, 1)
            await ctx.tick()
        ctx.set(dut.write.en, 0)
        ctx.set(dut.write.data, 0xFF)   # no write enable: nothing changes
        await ctx.tick()
        seen["codes"] = ctx.get(dut.codes)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen["codes"]


def test_codes_are_packed_lsb_first():
    # 5 codes of 4 bits = 20 bits in 3 bytes. Byte k holds bits [8k, 8k+8) of the stream, and
    # code i is bits [4i, 4i+4): byte 0x21 -> codes 1, 2; 0x43 -> 3, 4; 0x05 -> 5.
    codes = run_writes(20, [(0, 0x21), (1, 0x43), (2, 0x05)])
    assert codes == 0x54321
    assert [(codes >> 4 * i) & 0xF for i in range(5)] == [1, 2, 3, 4, 5]
    # The last byte's upper nibble is padding, not part of the bus.
    assert run_writes(20, [(2, 0xF7)]) == 0x70000


def test_bytes_are_written_one_by_one_and_overwritten():
    # 3-bit codes straddle bytes: 0xFF at byte 1 sets bits 8..15, i.e. code 2's top bit,
    # codes 3 and 4, and code 5's low two bits.
    assert run_writes(18, [(1, 0xFF)]) == 0xFF << 8
    assert run_writes(18, [(1, 0xFF), (1, 0x01), (0, 0x80)]) == 0x0180
    # An address past the bank writes nothing.
    assert run_writes(18, [(3, 0xAA), (100, 0x55)]) == 0
