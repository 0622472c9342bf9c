"""Formal proof (SymbiYosys, tests/support/formal.py) of the window generator's element stream,
for small geometries (zero padding on every side, stride below and equal to the kernel, rows
and columns past the last window, sliding windows), every start and every ready sequence
(start free, also while busy; the consumer stalls as long and as often as it likes).

The reference is an abstract counter in the harness: ``taken``, the number of elements taken
since the walk started, indexing a constant table of the walk written here as plain loops from
the specification (positions in raster order, then the window's (ky, kx, c) taps in im2col
order, the S new columns only when a window slides on; the tap's input coordinate, its address
in the HWC map, padding exactly outside the map), not from the RTL. It asserts

- the stream is valid exactly while the walk has elements left, and busy with it;
- every element offered equals the table's element ``taken`` (address, pad, im2col row, last in
  window, last position, slide): the sequence of windows is raster order, window by window;
- every address the generator emits (pad low) lies inside the map, ``base`` to
  ``base + H*W*C - 1``, and pad is set exactly when the (ky, kx) tap falls outside the map;
- a stall holds the stream: valid and the payload do not change in a clock after one where
  valid was high and ready low;
- and, to close the induction, the generator's odometer (output and kernel position, channel,
  the window's top-left input coordinate) is the table's for element ``taken``.

k-induction length 3 (the invariants are one-step inductive; the stall property spans two
clocks). A broken copy fails in a bounded check from reset (BMC) as deep as the whole walk, so
its counterexample is a real trace, not an induction artefact."""

import tomllib
from pathlib import Path

import pytest
from amaranth.hdl import Array, Assert, Const, Module, Signal

from xbarflow.hdl import window
from tests.support.formal import Elaborated, mutated, prove
from tests.support.window_walk import walk

pytestmark = pytest.mark.formal

INDUCTION = 3
CATALOGUE = Path(__file__).parents[1] / "mutants" / "catalogue.toml"

GEOMETRIES = {
    # every side padded (bottom and right too), stride 1 below K: windows slide on
    "pad1_slide": dict(height=4, width=3, channels=2, kernel=3, stride=1, padding=1, base=3, slide=True),
    # the smallest padded sliding walk: its bottom padding comes early (a short bounded check)
    "pad1_small": dict(height=2, width=3, channels=1, kernel=3, stride=1, padding=1, base=2, slide=True),
    # the same walk as pad1_slide without sliding: every window in full
    "pad1_full": dict(height=4, width=3, channels=2, kernel=3, stride=1, padding=1, base=3),
    # pooling-like: stride = K, no padding, the last row and column never read
    "stride2_unread": dict(height=5, width=5, channels=1, kernel=2, stride=2, padding=0, base=1),
    # stride 2 below K = 3: windows slide on by two columns; top and left padding only
    "stride2_slide": dict(height=4, width=4, channels=1, kernel=3, stride=2, padding=1, base=0, slide=True),
}


FIELDS = ("addr", "pad", "row", "last_in_window", "last_position", "slide")
ODOMETER = ("out_y", "out_x", "kernel_y", "kernel_x", "channel", "window_y", "window_x")


def harness(geometry, module=window):
    m = Module()
    dut = Elaborated(module.WindowGenerator(**geometry))
    m.submodules.dut = dut.fragment
    gen, out = dut.component, dut.component.elements
    start, ready = Signal(name="start"), Signal(name="ready")
    m.d.comb += [gen.start.eq(start), out.ready.eq(ready)]

    table = walk(**geometry)
    n = len(table)
    taken = Signal(range(n + 1), name="taken")
    running = Signal(name="running")
    take = out.valid & ready
    with m.If(~running & start):
        m.d.sync += [running.eq(1), taken.eq(0)]
    with m.If(running & take):
        m.d.sync += taken.eq(taken + 1)
        with m.If(taken == n - 1):
            m.d.sync += running.eq(0)

    m.d.comb += [Assert(out.valid == running), Assert(gen.busy == running),
                 Assert(~running | (taken < n))]
    columns = list(zip(*table))
    signed_columns = {"window_y", "window_x"}
    names = FIELDS + ODOMETER
    for k, name in enumerate(names):
        column = columns[k]
        if name in signed_columns:
            expected = Array(Const(v, range(min(column), max(column) + 1)) for v in column)[taken]
        else:
            expected = Array(Const(v, range(max(column) + 1)) for v in column)[taken]
        actual = getattr(out.payload, name) if name in FIELDS else dut.signal(name)
        with m.If(running):
            m.d.comb += Assert(actual == expected)

    H, W, C, base = geometry["height"], geometry["width"], geometry["channels"], geometry.get("base", 0)
    with m.If(out.valid & ~out.payload.pad):
        m.d.comb += [Assert(out.payload.addr >= base), Assert(out.payload.addr < base + H * W * C)]

    stalled = Signal(name="stalled")
    held = Signal.like(out.payload.as_value(), name="held_payload")
    m.d.sync += [stalled.eq(out.valid & ~ready), held.eq(out.payload.as_value())]
    with m.If(stalled):
        m.d.comb += [Assert(out.valid), Assert(out.payload.as_value() == held)]
    return m, [start, ready]


@pytest.mark.parametrize("name", GEOMETRIES)
def test_the_window_stream_is_the_raster_walk_inside_the_map_and_stalls_hold_it(name, tmp_path):
    result = prove(*harness(GEOMETRIES[name]), tmp_path, depth=INDUCTION, name="window")
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


def catalogue(name):
    """(original, replacement) of the mutant `name` of tests/mutants/catalogue.toml."""
    entry, = [e for e in tomllib.loads(CATALOGUE.read_text())["mutant"] if e["name"] == name]
    assert entry["file"] == "hdl/window.py"
    return entry["original"], entry["replacement"]


@pytest.mark.parametrize("geometry, old, new", [
    # catalogue mutants of the window generator
    ("pad1_small", *catalogue("window_pad_bottom_off_by_one")),
    ("stride2_unread", *catalogue("window_row_stride_one")),
    # the stream moves on without ready: a stall drops elements
    ("pad1_slide", "with m.If(out.valid & out.ready):", "with m.If(out.valid):"),
    # START while busy restarts the walk
    ("pad1_full", "with m.If(~out.valid & self.start):", "with m.If(self.start):"),
    # a sliding window's next output row also starts at the new columns only
    ("stride2_slide", "m.d.sync += [ox.eq(0), x0.eq(-P), kx.eq(0)]",
     "m.d.sync += [ox.eq(0), x0.eq(-P), kx.eq(first_kx)]"),
    # padding only on the top and left: the right edge's taps read the next row
    ("pad1_small", "outside += [ix > W - 1] if beyond_x else []", "outside += []"),
])
def test_a_broken_window_generator_fails_the_proof(geometry, old, new, tmp_path):
    g = GEOMETRIES[geometry]
    result = prove(*harness(g, mutated(window, old, new)), tmp_path, mode="bmc",
                   depth=len(walk(**g)) + 3, name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]
