"""Digital activations between crossbar layers: requantising ReLU and binary activation."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Activation"]


class Activation(wiring.Component):
    """One neuron's activation code from its accumulated sum (combinational).

    ``relu``: ``y = clip((s * mult) >> shift, 0, dac_max)``; a negative sum lands on 0 after the
    clip whatever the floor of the shift, so the block clamps first and multiplies unsigned. ``mult`` is a
    host-written register: the scale calibrated in training, applied by the chip.
    ``binary``: ``y = dac_max if s > 0 else 0``; the next layer sees full-scale or zero inputs.
    Twins: `xbarflow.flow.model.golden.requantize_relu` and `xbarflow.flow.model.golden.binary_activation`.

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
        # Negative sums end at 0 whatever the product, so clamp first and multiply unsigned:
        # the same result as the twin's signed arithmetic, with no signed multiply in the
        # Verilog (Icarus evaluated the signed product of this block wrongly).
        positive = Signal(len(self.sum) - 1)
        scaled = Signal(len(positive) + len(self.mult))
        m.d.comb += [
            positive.eq(Mux(self.sum > 0, self.sum[:-1], 0)),
            scaled.eq((positive * self.mult) >> self._shift),
            self.code.eq(Mux(scaled > dac_max, dac_max, scaled)),
        ]
        return m
