"""Input buffer: the DAC codes of one image, written a byte at a time by the command layer."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .ports import WriteSignature

__all__ = ["InputBuffer"]


class InputBuffer(wiring.Component):
    """Byte-addressed register bank holding packed DAC codes.

    The host packs codes LSB first (`xbarflow.flow.data.pack_codes`): code ``i`` occupies bits
    ``[i*dac_bits, (i+1)*dac_bits)`` of the flat stream and byte ``k`` is bits ``[8k, 8k+8)``.
    Flip-flops rather than a memory, because every code is needed at once: the controller
    latches the whole bank onto the DAC bus in one cycle.

    Parameters
    ----------
    code_bits : int
        Total code bits, rows * dac_bits.

    Attributes
    ----------
    write : In(WriteSignature(addr_width=16))
        The command layer's byte writes (it has checked the offset is in range).
    codes : Out(code_bits)
        The packed codes, in the layout of the DAC bus.
    """

    def __init__(self, code_bits: int):
        self._code_bits = code_bits
        self.num_bytes = (code_bits + 7) // 8
        super().__init__({
            "write": In(WriteSignature(addr_width=16)),
            "codes": Out(code_bits),
        })

    def elaborate(self, platform):
        m = Module()
        storage = Signal(self.num_bytes * 8)
        with m.If(self.write.en):
            with m.Switch(self.write.addr):
                for k in range(self.num_bytes):
                    with m.Case(k):
                        m.d.sync += storage.word_select(k, 8).eq(self.write.data)
        m.d.comb += self.codes.eq(storage[:self._code_bits])
        return m
