# amaranth: UnusedElaboratable=no
"""WindowGenerator in amaranth.sim: every element of every window, for several strides and
paddings, with and without a stalling consumer, against address lists written from the
specification (CNN_SPEC section 2) as plain loops."""

import random

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from xbarflow.flow.analysis import lint
from xbarflow.hdl.window import WindowGenerator

from tests.support.window_walk import walk


def expected_walk(H, W, C, K, S, P, base, slide=False):
    """(addr, pad, row, last_in_window, last_position, slide) of every element, in order."""
    return [element[:6] for element in walk(H, W, C, K, S, P, base, slide)]


def simulate(geometry, *, stall=0.0, seed=0, starts=1):
    """Run `starts` walks back to back; the consumer holds `ready` low with probability `stall`."""
    dut = WindowGenerator(**geometry)
    rng = random.Random(seed)
    taken, busy_after = [], []

    async def bench(ctx):
        for _ in range(starts):
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            assert ctx.get(dut.busy)
            while ctx.get(dut.elements.valid):
                ready = rng.random() >= stall
                ctx.set(dut.elements.ready, ready)
                payload = ctx.get(dut.elements.payload)
                if ready:
                    taken.append((payload.addr, payload.pad, payload.row, payload.last_in_window,
                                  payload.last_position, payload.slide))
                await ctx.tick()
            busy_after.append(ctx.get(dut.busy))
            ctx.set(dut.elements.ready, 0)
            await ctx.tick().repeat(2)
            assert not ctx.get(dut.elements.valid), "nothing offered after the walk"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert busy_after == [0] * starts
    return taken


GEOMETRIES = [
    dict(height=6, width=6, channels=1, kernel=3),                          # the plain case
    dict(height=5, width=7, channels=2, kernel=3, stride=2),                # W, H not multiples
    dict(height=4, width=4, channels=3, kernel=3, padding=1, base=17),      # 'same' padding
    dict(height=5, width=6, channels=2, kernel=3, stride=2, padding=2),     # corners all padding
    dict(height=7, width=5, channels=1, kernel=2, stride=3, padding=1),
    dict(height=3, width=3, channels=4, kernel=3),                          # one position
    dict(height=1, width=1, channels=9, kernel=1, base=5),                  # a dense layer's input
]


@pytest.mark.parametrize("slide", [False, True])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_every_window_in_im2col_order(geometry, slide):
    spec = {"stride": 1, "padding": 0, "base": 0, **geometry}
    expected = expected_walk(spec["height"], spec["width"], spec["channels"], spec["kernel"],
                             spec["stride"], spec["padding"], spec["base"], slide)
    assert simulate({**geometry, "slide": slide}) == expected


@pytest.mark.parametrize("slide", [False, True])
@pytest.mark.parametrize("geometry", [GEOMETRIES[1], GEOMETRIES[3]])
def test_a_stalling_consumer_loses_nothing(geometry, slide):
    spec = {"stride": 1, "padding": 0, "base": 0, **geometry}
    expected = expected_walk(spec["height"], spec["width"], spec["channels"], spec["kernel"],
                             spec["stride"], spec["padding"], spec["base"], slide)
    # Two walks back to back: the second starts from the first position again.
    assert simulate({**geometry, "slide": slide}, stall=0.6, seed=3, starts=2) == expected * 2


def test_pad_elements_and_strobes_of_a_small_case():
    # 2 x 2 map, one channel, K = 3, P = 1: (2 + 2 - 3) + 1 = 2 positions each way. The first
    # window reads input rows -1..1, cols -1..1: only (0,0), (0,1), (1,0), (1,1) are inside, at
    # im2col rows 4, 5, 7, 8.
    walk = simulate(dict(height=2, width=2, channels=1, kernel=3, padding=1, base=8))
    assert len(walk) == 4 * 9
    first = walk[:9]
    assert [e[1] for e in first] == [1, 1, 1, 1, 0, 0, 1, 0, 0]
    assert [e[0] for e in first if not e[1]] == [8, 9, 10, 11]
    assert [e[2] for e in walk] == list(range(9)) * 4
    assert [e[3] for e in walk] == ([0] * 8 + [1]) * 4
    assert [e[4] for e in walk] == [0] * 27 + [1] * 9
    # Sliding on along a row: position (0, 1) offers only its new column kx = 2 (rows 2, 5, 8).
    slid = simulate(dict(height=2, width=2, channels=1, kernel=3, padding=1, base=8, slide=True))
    assert len(slid) == 9 + 3 + 9 + 3
    assert [e[2] for e in slid[9:12]] == [2, 5, 8] and [e[5] for e in slid] == [0] * 9 + [1] * 3 + [0] * 9 + [1] * 3
    assert [e[1] for e in slid[9:12]] == [1, 1, 1], "column x = 2 is padding"


def test_bad_geometry_is_refused():
    with pytest.raises(ValueError, match="padding"):
        WindowGenerator(height=4, width=4, channels=1, kernel=3, padding=3)
    with pytest.raises(ValueError, match="does not fit"):
        WindowGenerator(height=2, width=5, channels=1, kernel=3)
    with pytest.raises(ValueError, match="stride"):
        WindowGenerator(height=4, width=4, channels=1, kernel=3, stride=0)


def test_verilog_lints_clean_but_for_the_payload_aliases(tmp_path):
    # Converted alone under the chip's top name, so the waiver file's backend waivers apply;
    # what is left is Amaranth's names of the payload's fields (the port carries them).
    dut = WindowGenerator(height=12, width=12, channels=8, kernel=5, stride=2, padding=2, base=784)
    text = verilog.convert(dut, name="xbarflow_top", emit_src=False)
    (tmp_path / "top.v").write_text(text)
    (tmp_path / "modules").mkdir()
    files = lint.split_modules(tmp_path / "top.v", tmp_path / "modules")
    warnings = lint.lint_files(files, "xbarflow_top")
    assert sorted(w.message for w in warnings) == [
        f"Signal is not used: 'elements__payload.{f}'"
        for f in ("addr", "last_in_window", "last_position", "pad", "row", "slide")]
