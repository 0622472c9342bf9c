# amaranth: UnusedElaboratable=no
"""Pooling in amaranth.sim, reading and writing a real FeatureMap: max and average pooling of
small maps (ties, strides that leave rows and columns unread) against plain loops of the
specification (CNN_SPEC section 2)."""

import random

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from xbarflow.flow.analysis import lint
from xbarflow.hdl.feature_map import FeatureMap
from xbarflow.hdl.pooling import Pooling

DAC_BITS = 4


def expected_pool(codes, H, W, C, mode, size, stride):
    """Output codes in raster order, channel fastest; input (y, x, c) is codes[(y*W + x)*C + c]."""
    out = []
    for py in range((H - size) // stride + 1):
        for px in range((W - size) // stride + 1):
            for c in range(C):
                window = [codes[((py * stride + dy) * W + px * stride + dx) * C + c]
                          for dy in range(size) for dx in range(size)]
                out.append(max(window) if mode == "max" else sum(window) // (size * size))
    return out


def pack(codes):
    """4-bit codes two to a byte, low nibble first (the host's packing)."""
    codes = list(codes) + [0] * (len(codes) % 2)
    return [codes[i] | codes[i + 1] << 4 for i in range(0, len(codes), 2)]


def simulate(codes, *, H, W, C, mode, size, stride, in_base, out_base, runs=1):
    """Preload `codes` at `in_base`, pool `runs` times; return each run's writes and all reads."""
    depth = out_base + H * W * C
    fmap = FeatureMap(depth, DAC_BITS)
    pool = Pooling(mode, size=size, stride=stride, height=H, width=W, channels=C,
                   in_base=in_base, out_base=out_base, addr_width=fmap.addr_width, dac_bits=DAC_BITS)
    m = Module()
    m.submodules.fmap, m.submodules.pool = fmap, pool
    connect(m, pool.read, fmap.code_read)
    connect(m, pool.write, fmap.code_write)
    image = [0] * in_base + list(codes)
    writes, reads = [], set()

    async def bench(ctx):
        for k, byte in enumerate(pack(image)):
            ctx.set(fmap.write.addr, k)
            ctx.set(fmap.write.data, byte)
            ctx.set(fmap.write.en, 1)
            await ctx.tick()
        ctx.set(fmap.write.en, 0)
        for _ in range(runs):
            ctx.set(pool.start, 1)
            await ctx.tick()
            ctx.set(pool.start, 0)
            assert ctx.get(pool.busy)
            run = []
            while ctx.get(pool.busy):
                if ctx.get(pool.write.en):
                    run.append((ctx.get(pool.write.addr), ctx.get(pool.write.data)))
                if ctx.get(pool.read.en):
                    reads.add(ctx.get(pool.read.addr))
                await ctx.tick()
            writes.append(run)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return writes, reads


CASES = [
    # H not a multiple of the stride: row 4 and column 4 are never read.
    dict(H=5, W=5, C=2, mode="max", size=2, stride=2, low=0, high=3),   # few values: many ties
    dict(H=6, W=7, C=3, mode="avg", size=2, stride=2, low=0, high=16),
    dict(H=7, W=7, C=1, mode="max", size=3, stride=2, low=0, high=16),
    dict(H=5, W=6, C=2, mode="avg", size=2, stride=1, low=0, high=16),  # overlapping windows
    dict(H=9, W=8, C=1, mode="avg", size=4, stride=4, low=10, high=16),  # floor of sum / 16
    dict(H=4, W=4, C=2, mode="max", size=2, stride=2, low=7, high=8),   # every code ties
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['mode']}{c['size']}s{c['stride']}_{c['H']}x{c['W']}x{c['C']}" for c in CASES])
def test_pooling_matches_plain_loops(case):
    H, W, C = case["H"], case["W"], case["C"]
    rng = random.Random(H * 100 + W * 10 + C)
    codes = [rng.randrange(case["low"], case["high"]) for _ in range(H * W * C)]
    in_base, out_base = 3, 3 + H * W * C
    geometry = dict(H=H, W=W, C=C, mode=case["mode"], size=case["size"], stride=case["stride"])
    (writes,), reads = simulate(codes, **geometry, in_base=in_base, out_base=out_base)
    expected = expected_pool(codes, **geometry)
    assert writes == [(out_base + i, v) for i, v in enumerate(expected)]
    size, stride = case["size"], case["stride"]
    used = {in_base + ((py * stride + dy) * W + px * stride + dx) * C + c
            for py in range((H - size) // stride + 1) for px in range((W - size) // stride + 1)
            for dy in range(size) for dx in range(size) for c in range(C)}
    assert reads == used, "reads exactly the codes of whole windows"


def test_second_run_gives_the_same_map():
    codes = [(7 * i) % 16 for i in range(4 * 6 * 2)]
    geometry = dict(H=4, W=6, C=2, mode="max", size=2, stride=2)
    writes, _ = simulate(codes, **geometry, in_base=0, out_base=48, runs=2)
    assert writes[0] == writes[1] == [(48 + i, v) for i, v in enumerate(expected_pool(codes, **geometry))]


def test_an_average_that_is_no_shift_is_refused():
    with pytest.raises(ValueError, match="not a shift"):
        Pooling("avg", size=3, stride=3, height=6, width=6, channels=1, in_base=0, out_base=36,
                addr_width=6, dac_bits=4)


def test_verilog_lints_clean_but_for_the_window_aliases(tmp_path):
    # Converted alone under the chip's top name, so the waiver file's backend waivers apply;
    # what is left is Amaranth's names of the window stream.
    dut = Pooling("avg", size=2, stride=2, height=5, width=5, channels=3, in_base=0, out_base=75,
                  addr_width=7, dac_bits=4)
    text = verilog.convert(dut, name="xbarflow_top", emit_src=False)
    (tmp_path / "top.v").write_text(text)
    (tmp_path / "modules").mkdir()
    files = lint.split_modules(tmp_path / "top.v", tmp_path / "modules")
    found = sorted((w.file, w.message) for w in lint.lint_files(files, "xbarflow_top"))
    fields = [f"Signal is not used: 'elements__payload.{f}'"
              for f in ("addr", "last_in_window", "last_position", "pad", "row", "slide")]
    assert found == sorted([("xbarflow_top.v", f) for f in fields]
                           + [("xbarflow_top.window.v", f) for f in fields]
                           + [("xbarflow_top.window.v", "Signal is not used: 'elements__valid'")])
