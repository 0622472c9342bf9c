"""Formal proof (SymbiYosys, tests/support/formal.py) of the pooling unit's results, for every
input map (AnyConst codes: every map at once) and every start sequence, on small geometries
(overlapping windows of two channels; stride 2 leaving the last row and column unread).

The harness is the feature map's read side: a code read at an address comes one clock later
(held while the enable is low), from a constant map of free codes. Its reference, written here
from the specification, not from the RTL: output (py, px, c), in raster order with the channel
fastest, is the maximum of input (py*S + dy, px*S + dx, c) over dy, dx in [0, size), or its sum
shifted right by log2(size^2) (the floor of the mean). Max pooling outputs a code, not a
position, so there is no tie rule to check: equal codes give the same maximum. It asserts

- every read lies inside the input map;
- the k-th write of a run goes to ``out_base + k`` and carries the reference's output k: the
  maximum of its window, or sum >> log2(n), for every input;
- a run writes exactly the map's outputs and is busy for at most `run_bound` clocks;
- and, to close the induction, the unit's window generator is idle and not being started while
  the unit is idle.

k-induction length: the bound plus 4 (an induction trace longer than a run contains its start).
A broken copy fails in a bounded check from reset (BMC) one run deep: a real trace."""

import tomllib
from pathlib import Path

import pytest
from amaranth.asserts import AnyConst
from amaranth.hdl import Array, Assert, Module, Mux, Signal

from xbarflow.hdl import pooling
from tests.support.formal import Elaborated, mutated, prove

pytestmark = pytest.mark.formal

DAC_BITS, ADDR_WIDTH = 4, 5
CATALOGUE = Path(__file__).parents[1] / "mutants" / "catalogue.toml"
GEOMETRIES = {
    # overlapping 2 x 2 windows of two channels over a 3 x 3 map
    "overlap_c2": dict(size=2, stride=1, height=3, width=3, channels=2, in_base=1, out_base=20),
    # 2 x 2 windows at stride 2 over a 5 x 4 map: the last row and column are never read
    "stride2_unread": dict(size=2, stride=2, height=5, width=4, channels=1, in_base=0, out_base=21),
}


def outputs(g):
    return ((g["height"] - g["size"]) // g["stride"] + 1) * ((g["width"] - g["size"]) // g["stride"] + 1)


def run_bound(g):
    """Busy clocks of a run: the window generator's start, then per output position its
    C*size^2 reads, the clock the last code lands, and C writes."""
    C = g["channels"]
    return 1 + outputs(g) * (C * g["size"] ** 2 + 1 + C)


def reference(mode, g, codes):
    """The output codes (expressions of the map's codes), raster order, channel fastest."""
    H, W, C, size, S = g["height"], g["width"], g["channels"], g["size"], g["stride"]
    shift = (size * size).bit_length() - 1
    out = []
    for py in range((H - size) // S + 1):
        for px in range((W - size) // S + 1):
            for c in range(C):
                window = [codes[((py * S + dy) * W + px * S + dx) * C + c]
                          for dy in range(size) for dx in range(size)]
                if mode == "max":
                    best = window[0]
                    for code in window[1:]:
                        best = Mux(code > best, code, best)
                    out.append(best)
                else:
                    out.append(sum(window[1:], window[0]) >> shift)
    return out


def harness(mode, g, module=pooling):
    m = Module()
    dut = Elaborated(module.Pooling(mode, addr_width=ADDR_WIDTH, dac_bits=DAC_BITS, **g))
    m.submodules.dut = dut.fragment
    pool = dut.component
    start = Signal(name="start")
    m.d.comb += pool.start.eq(start)

    H, W, C, base = g["height"], g["width"], g["channels"], g["in_base"]
    codes = [AnyConst(DAC_BITS) for _ in range(H * W * C)]
    memory = Array([*([0] * base), *codes])
    read_data = Signal(DAC_BITS, name="read_data", reset_less=True)
    with m.If(pool.read.en):
        m.d.comb += [Assert(pool.read.addr >= base), Assert(pool.read.addr < base + H * W * C)]
        m.d.sync += read_data.eq(memory[pool.read.addr])
    m.d.comb += pool.read.data.eq(read_data)

    expected = reference(mode, g, codes)
    n = len(expected)
    bound = run_bound(g)
    writes = Signal(range(n + 1), name="writes")
    elapsed = Signal(range(bound + 2), name="elapsed")
    was_busy = Signal(name="was_busy")
    m.d.sync += was_busy.eq(pool.busy)
    with m.If(~pool.busy & start):
        m.d.sync += writes.eq(0)
    with m.If(pool.write.en):
        m.d.sync += writes.eq(writes + 1)
        m.d.comb += [Assert(pool.busy), Assert(writes < n),
                     Assert(pool.write.addr == g["out_base"] + writes),
                     Assert(pool.write.data == Array(expected)[writes])]
    with m.If(pool.busy):
        m.d.sync += elapsed.eq(elapsed + 1)
        m.d.comb += Assert(elapsed < bound)
    with m.Else():
        m.d.sync += elapsed.eq(0)
    with m.If(was_busy & ~pool.busy):
        m.d.comb += Assert(writes == n)

    window = dut.sub("window").component
    with m.If(dut.state("pool", "IDLE")):
        m.d.comb += [Assert(~window.busy), Assert(~window.start)]
    return m, [start]


# the two-channel proofs take 50-75 s at nice 19 on this loaded machine: make formal only
CASES = [pytest.param("max", "overlap_c2", marks=pytest.mark.slow),
         pytest.param("avg", "overlap_c2", marks=pytest.mark.slow),
         ("max", "stride2_unread"), ("avg", "stride2_unread")]


@pytest.mark.parametrize("mode, geometry", CASES)
def test_pooling_writes_the_max_or_shifted_sum_of_every_window(mode, geometry, tmp_path):
    g = GEOMETRIES[geometry]
    result = prove(*harness(mode, g), tmp_path, depth=run_bound(g) + 4, name="pooling")
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


def catalogue(name):
    """(original, replacement) of the mutant `name` of tests/mutants/catalogue.toml."""
    entry, = [e for e in tomllib.loads(CATALOGUE.read_text())["mutant"] if e["name"] == name]
    assert entry["file"] == "hdl/pooling.py"
    return entry["original"], entry["replacement"]


@pytest.mark.parametrize("mode, geometry, old, new", [
    # catalogue mutants of the pooling unit
    ("max", "overlap_c2", *catalogue("pooling_max_ignores_first_pass")),
    ("avg", "stride2_unread", *catalogue("pooling_avg_rounds_half_up")),
    # the average keeps only the last code of its window
    ("avg", "overlap_c2", "new = Mux(arriving_first, code, old + code)", "new = code"),
    # the results are written before the window's last code has landed (one channel: the
    # first result written is the last code's)
    ("max", "stride2_unread", 'm.next = "LAST_CODE"', 'm.next = "WRITE_RESULTS"'),
    # the output address never moves: every result lands on the first
    ("max", "stride2_unread", "m.d.sync += [out_addr.eq(out_addr + 1), k.eq(k + 1)]",
     "m.d.sync += [k.eq(k + 1)]"),
])
def test_a_broken_pooling_unit_fails_the_proof(mode, geometry, old, new, tmp_path):
    g = GEOMETRIES[geometry]
    result = prove(*harness(mode, g, mutated(pooling, old, new)), tmp_path, mode="bmc",
                   depth=run_bound(g) + 3, name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]
