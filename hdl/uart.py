"""UART (8N1) with the same byte streams as `xbarflow.hdl.spi.SPISlave`, for the host link.

``divider`` system clocks per bit (`ChipConfig.host.uart_divider`, >= 4). The receiver
synchronises RXD (`amaranth.lib.cdc.FFSynchronizer`), starts on a falling edge, checks the
start bit again half a bit later (a shorter low pulse is a glitch and is ignored), then
samples each bit in its middle, LSB first. A low stop bit is a framing error: the byte is
dropped, ``framing_errors`` counts it, and the receiver waits for the line to go idle
(high) before it looks for the next start bit (so a break counts once). It returns to idle
right after the middle of the stop bit, which tolerates a sender up to ~4 % fast or slow.
"""

# No `from __future__ import annotations` here: wiring.Component reads the port annotations.
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from .saturating import saturating_increment

__all__ = ["UART"]


class UART(wiring.Component):
    """8N1 UART, ``divider`` clocks per bit.

    Parameters
    ----------
    divider : int
        System clocks per bit, >= 4.

    Attributes
    ----------
    rxd : In(1)
        Receive pin (asynchronous; idles high).
    txd : Out(1)
        Transmit pin, a register output; idles high.
    rx : Out(stream.Signature(8))
        Each received byte, held valid until accepted; the consumer must accept it within
        one character time (10 bits), otherwise the next byte overwrites it.
    tx : In(stream.Signature(8))
        Bytes to send; one is taken (``ready`` for one cycle) whenever the transmitter is
        idle, and sent back to back with no idle bits in between.
    framing_errors : Out(32)
        Characters dropped because their stop bit was low; saturates at 2^32 - 1 (never wraps).
    clear : In(1)
        Pulse: reset ``framing_errors`` to 0 (wins over a same-cycle increment).
    """

    rxd: In(1, init=1)
    txd: Out(1, init=1)
    rx: Out(stream.Signature(8))
    tx: In(stream.Signature(8))
    framing_errors: Out(32)
    clear: In(1)

    def __init__(self, divider: int):
        if divider < 4:
            raise ValueError(f"UART divider must be >= 4 clocks per bit, got {divider}")
        self.divider = divider
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        divider = self.divider

        # -- receiver ---------------------------------------------------------------------
        rxd_sync = Signal(init=1)
        m.submodules.rxd_ff = FFSynchronizer(self.rxd, rxd_sync, init=1)

        rx_timer = Signal(range(divider))
        rx_bit = Signal(range(8))
        rx_shift = Signal(8)

        with m.If(self.rx.ready):
            m.d.sync += self.rx.valid.eq(0)

        with m.FSM(name="uart_rx"):
            with m.State("IDLE"):
                with m.If(~rxd_sync):
                    m.d.sync += rx_timer.eq(divider // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += rx_timer.eq(rx_timer - 1)
                with m.If(rx_timer == 0):
                    with m.If(rxd_sync):
                        m.next = "IDLE"            # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [rx_timer.eq(divider - 1), rx_bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += rx_timer.eq(rx_timer - 1)
                with m.If(rx_timer == 0):
                    m.d.sync += [
                        rx_shift.eq(Cat(rx_shift[1:], rxd_sync)),   # LSB first
                        rx_bit.eq(rx_bit + 1),
                        rx_timer.eq(divider - 1),
                    ]
                    with m.If(rx_bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += rx_timer.eq(rx_timer - 1)
                with m.If(rx_timer == 0):
                    with m.If(rxd_sync):
                        m.d.sync += [self.rx.payload.eq(rx_shift), self.rx.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.framing_errors.eq(saturating_increment(self.framing_errors))
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rxd_sync):
                    m.next = "IDLE"
        with m.If(self.clear):
            m.d.sync += self.framing_errors.eq(0)

        # -- transmitter ------------------------------------------------------------------
        tx_timer = Signal(range(divider))
        tx_bits = Signal(range(10))
        tx_shift = Signal(9)        # data bits then the stop bit, shifted out LSB first

        with m.FSM(name="uart_tx"):
            with m.State("IDLE"):
                m.d.comb += self.tx.ready.eq(1)
                with m.If(self.tx.valid):
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.sync += tx_timer.eq(tx_timer - 1)
                with m.If(tx_timer == 0):
                    with m.If(tx_bits == 0):
                        # Stop bit done: the next byte follows at once, if there is one.
                        m.d.comb += self.tx.ready.eq(1)
                        with m.If(~self.tx.valid):
                            m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [
                            self.txd.eq(tx_shift[0]),
                            tx_shift.eq(tx_shift >> 1),
                            tx_bits.eq(tx_bits - 1),
                            tx_timer.eq(divider - 1),
                        ]
        with m.If(self.tx.valid & self.tx.ready):
            m.d.sync += [
                self.txd.eq(0),                               # start bit
                tx_shift.eq(Cat(self.tx.payload, 1)),         # 8 data bits, then stop
                tx_timer.eq(divider - 1),
                tx_bits.eq(9),
            ]

        return m
