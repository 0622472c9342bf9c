"""Argmax RTL against the golden twin (`xbarflow.flow.model.golden.argmax_lowest`), in amaranth.sim."""

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from xbarflow.cocotb_tests.analog_bridge import pack_bus
from xbarflow.flow.model.golden import argmax_lowest
from xbarflow.hdl.argmax import Argmax


def run_argmax(vectors, width):
    count = len(vectors[0])
    dut = Argmax(count, width)
    got, cycles = [], []

    async def bench(ctx):
        for vec in vectors:
            ctx.set(dut.codes, pack_bus(vec, width))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            n = 1
            while not ctx.get(dut.done):
                await ctx.tick()
                n += 1
                assert n < 4 * count, "argmax never finished"
            got.append((ctx.get(dut.index), ctx.get(dut.value)))
            cycles.append(n)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got, cycles


def test_matches_golden_on_random_and_tied_vectors():
    rng = np.random.default_rng(0)
    width = 8
    vecs = [rng.integers(-128, 128, size=10) for _ in range(40)]
    vecs += [rng.integers(-2, 2, size=10) for _ in range(40)]  # many ties
    vecs += [np.full(10, -128), np.full(10, 127), np.array([127] * 3 + [-128] * 7)[::-1]]
    got, cycles = run_argmax(vecs, width)
    for vec, (index, value) in zip(vecs, got):
        assert index == argmax_lowest(vec[None, :])[0]
        assert value == vec.max()
    assert set(cycles) == {11}, "one comparison per clock plus the done cycle"


def test_lowest_index_wins_ties():
    got, _ = run_argmax([np.array([3, 7, 7, 1]), np.array([5, 5, 5, 5]), np.array([-1, -1, 0, 0])], 4)
    assert [g[0] for g in got] == [1, 0, 2]


def test_single_output():
    got, _ = run_argmax([np.array([-5])], 4)
    assert got == [(0, -5)]


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_rejects_empty():
    with pytest.raises(ValueError):
        Argmax(0, 8)
    gc.collect()   # the rejected object warns when collected: here, under the filter
