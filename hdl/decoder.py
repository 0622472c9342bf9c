"""Binary-to-one-hot address decoder: the row and column decoders of the write periphery.

`amaranth.lib.coding` is deprecated (it warns that it will be removed), and the decoders are
blocks of the paper's write chain anyway, so this is written out here.
"""

# No `from __future__ import annotations` here: wiring.Component reads the port annotations.
from amaranth.hdl import Cat, Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AddressDecoder", "address_bits"]


def address_bits(n: int) -> int:
    """Bits of a binary address of ``n`` lines (at least 1, so a 1-line decoder has a port)."""
    return max(1, (n - 1).bit_length())


class AddressDecoder(wiring.Component):
    """Combinational decoder: ``onehot[k]`` is 1 when ``enable`` and ``addr == k``.

    An address of ``n`` or more (possible when ``n`` is not a power of two) selects no line,
    so a counter that runs past the array can never drive a line that does not exist.

    Parameters
    ----------
    n : int
        Number of output lines, >= 1.

    Attributes
    ----------
    addr : In(address_bits(n))
        Binary address.
    enable : In(1)
        0 forces every line low (the RW multiplexer in inference mode).
    onehot : Out(n)
        Decoded lines: one-hot when enabled and ``addr < n``, else all zero.
    """

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"a decoder needs at least 1 line, got {n}")
        self.n = n
        super().__init__({
            "addr": In(unsigned(address_bits(n))),
            "enable": In(1),
            "onehot": Out(n),
        })

    def elaborate(self, platform):
        m = Module()
        # One comparator per line: plain to read, and an out-of-range address matches none.
        m.d.comb += self.onehot.eq(Cat(self.enable & (self.addr == k) for k in range(self.n)))
        return m
