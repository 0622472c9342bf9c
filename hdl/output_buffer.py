"""Output buffer: the last layer's sums as bytes, read back by READ_BUF."""

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from .ports import ReadSignature

__all__ = ["OutputBuffer"]


class OutputBuffer(wiring.Component):
    """Byte view of the controller's latched sums: sum ``k`` sign-extended to 16 bits, big
    endian, at bytes ``2k`` (high) and ``2k + 1`` (low); `xbarflow.flow.host.driver.decode_outputs` reads it.

    Parameters
    ----------
    outputs : int
        Number of sums (the last layer's outputs).
    sum_bits : int
        Width of one signed sum (at most 16).

    Attributes
    ----------
    codes : In(outputs * sum_bits)
        The sums, sum ``k`` at bits ``[k*sum_bits, (k+1)*sum_bits)`` (the controller's
        ``output_codes``).
    read : In(ReadSignature(addr_width=16))
        The command layer's combinational byte reads; bytes past ``2 * outputs`` read 0.
    """

    def __init__(self, outputs: int, sum_bits: int):
        if not 1 <= sum_bits <= 16:
            raise ValueError(f"sums of {sum_bits} bits do not fit the 16-bit output buffer")
        self.outputs = outputs
        self.sum_bits = sum_bits
        super().__init__({
            "codes": In(outputs * sum_bits),
            "read": In(ReadSignature(addr_width=16)),
        })

    def elaborate(self, platform):
        m = Module()
        out_bytes, sb = [], self.sum_bits
        for k in range(self.outputs):
            code = self.codes[k * sb:(k + 1) * sb]
            wide = Cat(code, code[-1].replicate(16 - sb))      # sign-extended to 16 bits
            out_bytes += [wide[8:16], wide[0:8]]
        with m.Switch(self.read.addr):
            for addr, byte in enumerate(out_bytes):
                with m.Case(addr):
                    m.d.comb += self.read.data.eq(byte)
        return m
