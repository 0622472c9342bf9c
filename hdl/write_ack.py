"""The write-acknowledge counter of the paper's write periphery.

Each row partition has an event flip-flop that a successful verify sets; the AND of the
flip-flops (a partition with no cell at the current local row counts as acknowledged) goes
through a two-flop synchroniser to give ``clk_event``, which lets the address counters
advance. A per-step pulse counter forces the advance after ``timeout_pulses`` pulses and the
partitions still pending are counted as failures.

In silicon the event flip-flops are set by the sense amplifiers, asynchronously to the write
clock, hence the synchroniser; here everything is in the ``sync`` domain, and the
synchroniser's latency is kept so the RTL has the paper's structure. The owner (the
programmer FSM) decides *when* to look: it strobes ``decide`` once ``all_acked`` reflects the
last verify, i.e. ``LATENCY`` clocks after that verify's ``verify_done`` cycle.
"""

# No `from __future__ import annotations` here: wiring.Component reads the port annotations.
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["SYNC_STAGES", "WriteAck", "popcount"]

SYNC_STAGES = 2   # the paper's two-flop synchroniser


def popcount(value):
    """Number of 1 bits of ``value`` (a chain of adders; Amaranth widens each sum)."""
    total = value[0].as_unsigned()
    for k in range(1, len(value)):
        total = total + value[k]
    return total


class WriteAck(wiring.Component):
    """Per-partition event flip-flops, synchronised AND, and the per-step pulse counter.

    Timing: ``verify_done`` in clock cycle N sets the event flip-flops at the end of N; the
    AND of the flip-flops is then sampled by the two synchroniser flops, so ``all_acked``
    reflects that verify from cycle N + ``LATENCY`` on (``LATENCY`` = 1 + 2 = 3).

    The decision is taken here, on the owner's ``decide`` strobe (combinational outputs in
    that same cycle): ``advance`` when all present partitions are acknowledged, or when
    ``timeout_pulses`` pulses have been issued in this step (a forced advance, with
    ``failed`` partitions still pending). All acknowledged wins over a timeout in the same
    decision (no failure then).

    Parameters
    ----------
    partitions : int
        Number of row partitions (NP).
    timeout_pulses : int
        Pulses per step after which a decision forces the advance (paper: 150).

    Attributes
    ----------
    clear : In(1)
        Start of a cell step: clears the event flip-flops and the pulse counter.
    present : In(partitions)
        Partitions that have a cell at the current local row; absent ones count as
        acknowledged and are never counted as failures.
    verify_done : In(1)
        Pulse: a verify read finished; ``verify_ok`` is sampled in the same cycle.
    verify_ok : In(partitions)
        Per partition: the cell is inside its verify window. Sets that event flip-flop (only
        for present partitions).
    pulse : In(1)
        Pulse: one program pulse was issued in this step (increments ``pulses``).
    decide : In(1)
        Strobe from the owner: evaluate ``advance`` / ``failed`` now.
    acked : Out(partitions)
        The event flip-flops (latched until ``clear``).
    all_acked : Out(1)
        AND over partitions of ``acked | ~present``, through the two-flop synchroniser.
    pulses : Out(range(timeout_pulses + 1))
        Program pulses issued in this step.
    timed_out : Out(1)
        ``pulses == timeout_pulses``.
    advance : Out(1)
        ``decide & (all_acked | timed_out)``: the step ends, the address counters advance.
    forced : Out(1)
        ``advance & ~all_acked``: the step ends by timeout.
    failed : Out(range(partitions + 1))
        On a forced advance, the number of present partitions not acknowledged; else 0.
    """

    LATENCY = 1 + SYNC_STAGES

    def __init__(self, partitions: int, timeout_pulses: int):
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if timeout_pulses < 1:
            raise ValueError(f"timeout_pulses must be >= 1, got {timeout_pulses}")
        self.partitions = partitions
        self.timeout_pulses = timeout_pulses
        super().__init__({
            "clear": In(1),
            "present": In(partitions),
            "verify_done": In(1),
            "verify_ok": In(partitions),
            "pulse": In(1),
            "decide": In(1),
            "acked": Out(partitions),
            "all_acked": Out(1),
            "pulses": Out(range(timeout_pulses + 1)),
            "timed_out": Out(1),
            "advance": Out(1),
            "forced": Out(1),
            "failed": Out(range(partitions + 1)),
        })

    def elaborate(self, platform):
        m = Module()

        # Event flip-flops: set by a passing verify, held until the next step's clear.
        with m.If(self.clear):
            m.d.sync += self.acked.eq(0)
        with m.Elif(self.verify_done):
            m.d.sync += self.acked.eq(self.acked | (self.verify_ok & self.present))

        # AND of the flip-flops (absent partitions count as acknowledged) -> clk_event.
        # The synchroniser is reset with the chip so all_acked starts at 0.
        event_and = Signal()
        m.d.comb += event_and.eq((self.acked | ~self.present).all())
        m.submodules.event_sync = FFSynchronizer(event_and, self.all_acked, reset_less=False,
                                                 stages=SYNC_STAGES)

        # Per-step pulse counter; it never passes the timeout (the owner stops pulsing there).
        with m.If(self.clear):
            m.d.sync += self.pulses.eq(0)
        with m.Elif(self.pulse & ~self.timed_out):
            m.d.sync += self.pulses.eq(self.pulses + 1)
        m.d.comb += self.timed_out.eq(self.pulses == self.timeout_pulses)

        pending = Signal(range(self.partitions + 1))
        m.d.comb += [
            pending.eq(popcount(self.present & ~self.acked)),
            self.advance.eq(self.decide & (self.all_acked | self.timed_out)),
            self.forced.eq(self.advance & ~self.all_acked),
            self.failed.eq(Mux(self.forced, pending, 0)),
        ]
        return m
