"""Saturating counters: the periphery's error counters stop at all-ones instead of wrapping.

A host that polls ERR_* (`xbarflow.hdl.protocol.Reg`) after a long bad link must never read a
small count because the register rolled over; all-ones reads as "at least this many".
"""

from amaranth.hdl import Mux

__all__ = ["saturating_increment"]


def saturating_increment(counter):
    """``counter + 1`` in the counter's own width, or ``counter`` itself once every bit is set."""
    return Mux(counter.all(), counter, (counter + 1)[:len(counter)])
