"""Formal proof (SymbiYosys, tests/support/formal.py): for every vector of codes (AnyConst:
held stable, the block's contract) and every start sequence, Argmax's done comes with the lowest
index of the maximum and its code. The reference is a comparator network written here: code k
is the answer when it is greater than every code before it and not less than every code after.

k-induction: an induction trace may start in an unreachable state (a scan with a stale best, or
a scan index past `count`); from any state the scan reaches done within 2**bits(scan index)
cycles, and the next start begins a clean scan of `count` cycles, so an induction length of
2**bits + count + 2 covers every such start."""

import pytest
from amaranth.asserts import AnyConst
from amaranth.hdl import Assert, Cat, Module, Signal, signed

from xbarflow.flow.core.config import load
from xbarflow.hdl import argmax
from xbarflow.hdl.controller import sum_bits
from tests.support.formal import mutated, prove

pytestmark = pytest.mark.formal


def shipped():
    """The controller's Argmax: one code per class, sum_bits wide (configs/mlp.toml)."""
    cfg = load("configs/mlp.toml")
    return cfg.network.classes, sum_bits(cfg)


def induction_length(count):
    return 2 ** (count + 1).bit_length() + count + 2


def harness(count, width, module=argmax):
    m = Module()
    m.submodules.dut = dut = module.Argmax(count, width)
    codes = [AnyConst(signed(width)) for _ in range(count)]
    start = Signal()
    m.d.comb += [dut.codes.eq(Cat(*codes)), dut.start.eq(start)]
    for k in range(count):
        answer = Signal(name=f"answer{k}")
        m.d.comb += answer.eq(Cat(*[codes[k] > codes[j] for j in range(k)],
                                  *[codes[k] >= codes[j] for j in range(k + 1, count)], 1).all())
        with m.If(dut.done & answer):
            m.d.comb += [Assert(dut.index == k), Assert(dut.value == codes[k])]
    return m, [start]


def test_argmax_gives_the_lowest_index_of_the_maximum_for_every_input(tmp_path):
    count, width = shipped()
    result = prove(*harness(count, width), tmp_path, depth=induction_length(count), name="argmax")
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


@pytest.mark.parametrize("old, new", [
    ("codes[scan_index] > self.value", "codes[scan_index] >= self.value"),   # highest index on ties
    ("with m.If(scan_index == count):", "with m.If(scan_index == count - 1):"),  # skips the last code
])
def test_a_broken_argmax_fails_the_proof(old, new, tmp_path):
    count, width = shipped()
    result = prove(*harness(count, width, mutated(argmax, old, new)), tmp_path,
                   depth=induction_length(count), name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]
