# amaranth: UnusedElaboratable=no
"""FeatureMap in amaranth.sim: host bytes and code writes land where the LSB-first packing says,
code reads come one clock after their enable, for every code width that divides a byte."""

import random

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from xbarflow.flow.analysis import lint
from xbarflow.hdl.feature_map import FeatureMap


def stream_codes(data: bytes, depth: int, bits: int) -> list[int]:
    """Code i = bits [i*bits, (i+1)*bits) of the byte stream, byte k = bits [8k, 8k+8)."""
    value = int.from_bytes(data, "little")
    return [(value >> (i * bits)) & ((1 << bits) - 1) for i in range(depth)]


def run(dut, steps):
    """Run `steps(ctx)` as the testbench; return what it returns."""
    out = {}

    async def bench(ctx):
        out["value"] = await steps(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["value"]


async def write_bytes(ctx, dut, writes):
    for addr, byte in writes:
        ctx.set(dut.write.addr, addr)
        ctx.set(dut.write.data, byte)
        ctx.set(dut.write.en, 1)
        await ctx.tick()
    ctx.set(dut.write.en, 0)


async def write_codes(ctx, dut, writes):
    for addr, code in writes:
        ctx.set(dut.code_write.addr, addr)
        ctx.set(dut.code_write.data, code)
        ctx.set(dut.code_write.en, 1)
        await ctx.tick()
    ctx.set(dut.code_write.en, 0)


async def read_all(ctx, dut, addrs):
    """Read `addrs` back to back, one per clock; the code of each comes a clock later."""
    seen = []
    for addr in addrs:
        ctx.set(dut.code_read.addr, addr)
        ctx.set(dut.code_read.en, 1)
        await ctx.tick()
        seen.append(ctx.get(dut.code_read.data))
    ctx.set(dut.code_read.en, 0)
    return seen


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_host_bytes_read_back_as_codes(bits):
    depth = 37
    dut = FeatureMap(depth, bits)
    rng = random.Random(bits)
    data = bytes(rng.randrange(256) for _ in range(dut.num_bytes))
    assert dut.num_bytes == (depth * bits + 7) // 8

    async def steps(ctx):
        await write_bytes(ctx, dut, list(enumerate(data)))
        order = list(range(depth))
        rng.shuffle(order)
        return order, await read_all(ctx, dut, order)

    order, seen = run(dut, steps)
    expected = stream_codes(data, depth, bits)
    assert seen == [expected[a] for a in order]


def test_four_bit_codes_low_nibble_first():
    dut = FeatureMap(6, 4)

    async def steps(ctx):
        await write_bytes(ctx, dut, [(0, 0x21), (1, 0x43), (2, 0x65), (3, 0xFF)])  # byte 3: past the end
        return await read_all(ctx, dut, range(6))

    assert run(dut, steps) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_code_writes_change_only_their_code(bits):
    depth = 29
    dut = FeatureMap(depth, bits)
    rng = random.Random(100 + bits)
    data = bytes(rng.randrange(256) for _ in range(dut.num_bytes))
    writes = [(rng.randrange(depth), rng.randrange(1 << bits)) for _ in range(40)]

    async def steps(ctx):
        await write_bytes(ctx, dut, list(enumerate(data)))
        await write_codes(ctx, dut, writes)
        return await read_all(ctx, dut, range(depth))

    expected = stream_codes(data, depth, bits)
    for addr, code in writes:
        expected[addr] = code
    assert run(dut, steps) == expected


def test_read_has_one_clock_latency_and_holds():
    dut = FeatureMap(8, 4)

    async def steps(ctx):
        await write_codes(ctx, dut, [(a, a + 3) for a in range(8)])
        ctx.set(dut.code_read.addr, 5)
        ctx.set(dut.code_read.en, 1)
        before = ctx.get(dut.code_read.data)     # not yet read: still the reset value
        await ctx.tick()
        after = ctx.get(dut.code_read.data)
        ctx.set(dut.code_read.en, 0)
        ctx.set(dut.code_read.addr, 2)
        await ctx.tick().repeat(3)
        held = ctx.get(dut.code_read.data)       # no enable: the last read stays
        ctx.set(dut.code_read.en, 1)
        await ctx.tick()
        return before, after, held, ctx.get(dut.code_read.data)

    assert run(dut, steps) == (0, 8, 8, 5)


def test_byte_write_wins_over_code_write():
    dut = FeatureMap(4, 4)

    async def steps(ctx):
        ctx.set(dut.write.addr, 0)
        ctx.set(dut.write.data, 0x97)
        ctx.set(dut.write.en, 1)
        ctx.set(dut.code_write.addr, 3)
        ctx.set(dut.code_write.data, 0xA)
        ctx.set(dut.code_write.en, 1)
        await ctx.tick()
        ctx.set(dut.write.en, 0)
        ctx.set(dut.code_write.en, 0)
        return await read_all(ctx, dut, range(4))

    assert run(dut, steps) == [7, 9, 0, 0]


def test_a_code_width_that_does_not_divide_a_byte_is_refused():
    with pytest.raises(ValueError, match="dac_bits must be 1, 2, 4 or 8, got 3"):
        FeatureMap(16, 3)


def test_verilog_lints_clean_but_for_the_read_port_aliases(tmp_path):
    # Converted alone under the chip's top name, so the waiver file's backend waivers apply;
    # what is left is Amaranth's names of the memory read port (read directly by the memory).
    text = verilog.convert(FeatureMap(1000, 4), name="xbarflow_top", emit_src=False)
    (tmp_path / "top.v").write_text(text)
    (tmp_path / "modules").mkdir()
    files = lint.split_modules(tmp_path / "top.v", tmp_path / "modules")
    warnings = lint.lint_files(files, "xbarflow_top")
    assert sorted(w.message for w in warnings) == [
        "Signal is not used: 'rd__addr'", "Signal is not used: 'rd__en'"]
