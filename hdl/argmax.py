"""Sequential argmax over the signed ADC codes of the output layer."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Argmax"]


class Argmax(wiring.Component):
    """Index of the largest of `count` signed codes, one comparison per clock.

    The scan replaces the running best only on a strictly greater code, so the lowest index
    wins ties (the golden model's `np.argmax` rule). It takes `count` clocks from `start` to
    `done`; a serial scan beats a comparator tree here because the ADC already delivers its
    codes one conversion at a time and ten outputs cost only ten cycles.

    Parameters
    ----------
    count : int
        Number of codes (classes).
    width : int
        Bits per signed code.

    Attributes
    ----------
    codes : In(count * width)
        Flat bus, code ``k`` at bits ``[k*width, (k+1)*width)``, two's complement.
    start : In(1)
        One-cycle pulse: scan ``codes`` (held stable until ``done``).
    done : Out(1)
        One-cycle pulse when ``index`` and ``value`` are valid; they hold until the next start.
    index : Out(range(count))
        Winning class.
    value : Out(signed(width))
        Winning code.
    """

    def __init__(self, count: int, width: int):
        if count < 1 or width < 1:
            raise ValueError("Argmax needs count >= 1 and width >= 1")
        self._count, self._width = count, width
        super().__init__({
            "codes": In(count * width),
            "start": In(1),
            "done": Out(1),
            "index": Out(range(count)),
            "value": Out(signed(width)),
        })

    def elaborate(self, platform):
        m = Module()
        count, width = self._count, self._width
        codes = Array(self.codes[k * width:(k + 1) * width].as_signed() for k in range(count))
        scan_index = Signal(range(count + 1))

        m.d.sync += self.done.eq(0)
        with m.FSM(name="argmax"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        self.index.eq(0),
                        self.value.eq(codes[0]),
                        scan_index.eq(1),
                    ]
                    m.next = "SCAN"
            with m.State("SCAN"):
                with m.If(scan_index == count):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    # Strictly greater: an equal code later in the scan never displaces the first.
                    with m.If(codes[scan_index] > self.value):
                        m.d.sync += [self.index.eq(scan_index), self.value.eq(codes[scan_index])]
                    m.d.sync += scan_index.eq(scan_index + 1)
        return m
