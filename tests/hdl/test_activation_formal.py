# amaranth: UnusedElaboratable=no
"""Formal proof (SymbiYosys, tests/support/formal.py): for every sum s and multiplier m of the
shipped configs' widths, the requantising ReLU gives clip((s * m) >> shift, 0, dac_max) and the
binary activation dac_max if s > 0 else 0. The reference is written here in signed arithmetic
(the component clamps first and multiplies unsigned). Combinational: a depth-1 induction covers
every input (both are free ports)."""

import sys

import pytest
from amaranth.hdl import Assert, Module, Mux, Signal, signed

from xbarflow.flow.core.config import load
from xbarflow.hdl import activation
from xbarflow.hdl.controller import sum_bits
from tests.support.formal import FormalToolMissing, mutated, prove

pytestmark = pytest.mark.formal


def widths(config="configs/mlp.toml"):
    cfg = load(config)
    return dict(sum_bits=sum_bits(cfg), dac_bits=cfg.quant.dac_bits,
                mult_bits=cfg.network.requant_mult_bits, shift=cfg.network.requant_shift)


def harness(kind, module=activation, **w):
    m = Module()
    m.submodules.dut = dut = module.Activation(kind, **w)
    s, mult = Signal(signed(w["sum_bits"])), Signal(w["mult_bits"])
    dac_max = (1 << w["dac_bits"]) - 1
    product = Signal(signed(w["sum_bits"] + w["mult_bits"] + 1))
    m.d.comb += [dut.sum.eq(s), dut.mult.eq(mult), product.eq((s * mult) >> w["shift"])]
    if kind == "relu":
        want = Mux(product < 0, 0, Mux(product > dac_max, dac_max, product))
    else:
        want = Mux(s > 0, dac_max, 0)
    m.d.comb += Assert(dut.code == want)
    return m, [s, mult]


@pytest.mark.parametrize("kind, shift", [("relu", None), ("relu", 0), ("binary", None)])
def test_activation_equals_its_formula_for_every_input(kind, shift, tmp_path):
    w = widths()
    if shift is not None:
        w["shift"] = shift
    result = prove(*harness(kind, **w), tmp_path, depth=1, name=f"activation_{kind}")
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


@pytest.mark.parametrize("kind, old, new", [
    ("relu", "Mux(self.sum > 0, self.sum[:-1], 0)", "self.sum[:-1]"),          # no clamp first
    ("relu", "Mux(scaled > dac_max, dac_max, scaled)", "scaled[:len(self.code)]"),  # wraps, no clip
    ("binary", "Mux(self.sum > 0, dac_max, 0)", "Mux(self.sum >= 0, dac_max, 0)"),  # zero is not positive
])
def test_a_broken_activation_fails_the_proof(kind, old, new, tmp_path):
    broken = mutated(activation, old, new)
    result = prove(*harness(kind, module=broken, **widths()), tmp_path, depth=1, name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]


def test_a_missing_formal_tool_fails_loudly(tmp_path, monkeypatch):
    """No yowasp-sby beside the interpreter: the proof raises (the test fails), never skips."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    with pytest.raises(FormalToolMissing, match="yowasp-sby"):
        prove(*harness("binary", **widths()), tmp_path, depth=1)
