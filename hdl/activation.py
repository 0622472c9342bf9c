"""Digital activations between crossbar layers: requantising ReLU and binary activation."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Activation(wiring.Component):
    """One neuron's activation code from its accumulated sum (combinational).

    ``relu``: ``y = clip((s * mult) >> shift, 0, dac_max)``; the shift is arithmetic (it floors,
    as the golden twin's ``>>`` does), so any negative sum lands on 0 after the clip. ``mult`` is a
    host-written register: the scale calibrated in training, applied by the chip.
    ``binary``: ``y = dac_max if s > 0 else 0``; the next layer sees full-scale or zero inputs.
    Twins: `flow.golden.requantize_relu` and `flow.golden.binary_activation`.

    Parameters
    ----------
    kind : "relu" | "binary"
    sum_bits : int
        Width of the signed sum.
    dac_bits : int
        Width of the output code.
    mult_bits, shift : int
        Requantiser multiplier width and right shift (relu only).

    Attributes
    ----------
    sum : In(signed(sum_bits))
        Accumulated partial sums of the neuron.
    mult : In(mult_bits)
        Requantiser multiplier (ignored by binary).
    code : Out(dac_bits)
        Input code for the next layer.
    """

    def __init__(self, kind: str, *, sum_bits: int, dac_bits: int, mult_bits: int, shift: int):
        if kind not in ("relu", "binary"):
            raise ValueError(f"activation must be relu or binary, got '{kind}'")
        self._kind, self._dac_bits, self._shift = kind, dac_bits, shift
        super().__init__({
            "sum": In(signed(sum_bits)),
            "mult": In(mult_bits),
            "code": Out(dac_bits),
        })

    def elaborate(self, platform):
        m = Module()
        dac_max = (1 << self._dac_bits) - 1
        if self._kind == "binary":
            m.d.comb += self.code.eq(Mux(self.sum > 0, dac_max, 0))
            return m
        scaled = Signal(signed(len(self.sum) + len(self.mult) + 1))
        m.d.comb += scaled.eq((self.sum * self.mult.as_unsigned()) >> self._shift)
        with m.If(scaled < 0):
            m.d.comb += self.code.eq(0)
        with m.Elif(scaled > dac_max):
            m.d.comb += self.code.eq(dac_max)
        with m.Else():
            m.d.comb += self.code.eq(scaled)
        return m
