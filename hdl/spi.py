"""SPI slave (mode 0, MSB first) oversampled by the system clock, with byte streams.

The host interface pins are asynchronous to the system clock, so each goes through an
`amaranth.lib.cdc.FFSynchronizer` and SCLK edges are detected in the system clock domain.
That costs latency, which sets the timing rules below (all counts in system clocks):

* SCLK may run up to clk/4 (SCLK high for >= 2 clocks and low for >= 2 clocks).
* The slave samples MOSI when it detects a rising SCLK edge (2 to 3 clocks after the edge),
  and changes MISO to the next bit on the clock right after that sample, i.e. MISO changes
  2 to 3 clocks *after the rising edge*, not on the falling edge. At clk/4 the falling edge
  comes only 2 clocks after the rising edge, before the slave has even seen the rising
  edge, so a falling-edge update would miss the next rising edge. Updating right after the
  rising-edge sample is the usual practice for oversampled slaves and still gives the
  host a valid bit at its next rising edge: at clk/4 MISO settles >= 1 clock before it.
  (On silicon, where a synchroniser may need an extra clock to resolve, run SCLK at
  clk/6 or slower to keep that margin.)
* The first bit of a byte is on MISO right after the previous byte's last rising edge
  (same rule as every other bit), and for the first byte of a chip-select window at most
  4 clocks after CS falls: the host must leave >= 4 clocks from CS falling to the first
  SCLK rising edge (the cocotb BFM leaves 1.5 SCLK periods).
* CS must stay high for >= 3 clocks between windows so that the slave sees it.

Bytes to send come from the `tx` stream and are taken at byte boundaries only (at the
start of a CS window and after each 8th bit); when no byte is available the slave sends
0x00 filler. Raising CS discards a partial byte in both directions and pulses `deselect`.
"""


# No `from __future__ import annotations` here: wiring.Component reads the port annotations.
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["SPISlave"]


class SPISlave(wiring.Component):
    """SPI mode 0 slave, MSB first, oversampled by the ``sync`` clock (SCLK <= clk/4).

    Attributes
    ----------
    sclk : In(1)
        SPI clock pin (asynchronous; idles low).
    cs_n : In(1)
        Chip select pin, active low (asynchronous).
    mosi : In(1)
        Host-to-chip data pin (asynchronous).
    miso : Out(1)
        Chip-to-host data pin, a register output. Driven (not tri-stated) at all times; it
        shows 0 while deselected.
    rx : Out(stream.Signature(8))
        Each fully received byte, as one transfer. The byte is held valid until accepted;
        the consumer must accept it within one byte time (8 SCLK periods, >= 32 clocks),
        otherwise the next byte overwrites it.
    tx : In(stream.Signature(8))
        Bytes to send. One is taken (``ready`` for one cycle) at each byte boundary while
        selected; when ``valid`` is low there the slave sends 0x00 instead.
    selected : Out(1)
        Synchronised chip select, active high.
    deselect : Out(1)
        One-cycle pulse when the synchronised chip select goes inactive.
    """

    sclk: In(1)
    cs_n: In(1, init=1)   # idles deselected when left undriven (simulation)
    mosi: In(1)
    miso: Out(1)
    rx: Out(stream.Signature(8))
    tx: In(stream.Signature(8))
    selected: Out(1)
    deselect: Out(1)

    def elaborate(self, platform):
        m = Module()

        # Two-flop synchronisers; CS resets to inactive so a fresh chip is deselected.
        sclk_sync = Signal(name="sclk_sync")
        mosi_sync = Signal(name="mosi_sync")
        cs_n_sync = Signal(name="cs_n_sync", init=1)
        m.submodules.sclk_ff = FFSynchronizer(self.sclk, sclk_sync)
        m.submodules.mosi_ff = FFSynchronizer(self.mosi, mosi_sync)
        m.submodules.cs_n_ff = FFSynchronizer(self.cs_n, cs_n_sync, init=1)

        # Edge detection on the synchronised signals (one more flop each).
        sclk_prev = Signal()
        selected_prev = Signal()
        m.d.sync += [sclk_prev.eq(sclk_sync), selected_prev.eq(self.selected)]
        sclk_rise = Signal()
        select_edge = Signal()
        m.d.comb += [
            self.selected.eq(~cs_n_sync),
            sclk_rise.eq(sclk_sync & ~sclk_prev & self.selected),
            select_edge.eq(self.selected & ~selected_prev),
            self.deselect.eq(~self.selected & selected_prev),
        ]

        bit_index = Signal(range(8))   # bits of the current byte received so far
        rx_shift = Signal(8)
        tx_shift = Signal(8)
        m.d.comb += self.miso.eq(tx_shift[7])

        # A byte boundary: the start of a CS window, or the 8th rising edge of a byte.
        last_bit = Signal()
        byte_boundary = Signal()
        m.d.comb += [
            last_bit.eq(sclk_rise & (bit_index == 7)),
            byte_boundary.eq(select_edge | last_bit),
            self.tx.ready.eq(byte_boundary),
        ]

        # The rx byte is held until the consumer takes it.
        with m.If(self.rx.ready):
            m.d.sync += self.rx.valid.eq(0)

        with m.If(~self.selected):
            # Deselected: forget any partial byte, show 0 on MISO.
            m.d.sync += [bit_index.eq(0), tx_shift.eq(0)]
        with m.Else():
            with m.If(sclk_rise):
                # Sample MOSI on the detected rising edge ...
                m.d.sync += [
                    rx_shift.eq(Cat(mosi_sync, rx_shift[:7])),
                    bit_index.eq(bit_index + 1),
                    # ... and move MISO to the next bit right away (see module docstring).
                    tx_shift.eq(Cat(0, tx_shift[:7])),
                ]
                with m.If(last_bit):
                    m.d.sync += [
                        self.rx.payload.eq(Cat(mosi_sync, rx_shift[:7])),
                        self.rx.valid.eq(1),
                    ]
            with m.If(byte_boundary):
                # Overrides the shift above: next byte, or 0x00 filler if none is waiting.
                m.d.sync += tx_shift.eq(Mux(self.tx.valid, self.tx.payload, 0))

        return m
