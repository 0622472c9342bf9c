"""Formal proof (SymbiYosys, tests/support/formal.py) that the bytes the SPI slave delivers are
the bits on MOSI, for every legal host timing (hdl/spi.py's docstring): SCLK high >= 2 and low
>= 2 clocks, any longer, each half period chosen freely; MOSI changes only while SCLK is low;
>= 4 clocks from CS falling to the first rising edge; CS rises only with SCLK low and stays high
>= 3 clocks; any byte values. The consumer takes each byte at once.

The harness's reference shifts MOSI in at each raw rising SCLK edge of a chip-select window
(MSB first) and forgets a partial byte when CS rises. It asserts that every byte the slave
delivers is the reference's last complete byte, delivered once, within `LATENCY` clocks of its
8th rising edge, and that no complete byte goes undelivered.

Bounded, from reset, `DEPTH` clocks: the slave's bit counter is not a port, so an induction
cannot tie it to the reference (a window can last for ever). Each byte of a window starts from
the same control state (bit counter 0: after CS falls, or after the 8th rising edge; the 8 bits
replace the whole shift register and the consumer has taken the last byte), the state after
reset, so a check from reset over the CS set-up and one byte at the fastest timing covers every
byte position; slower timings are covered as far as they fit in `DEPTH` clocks (a longer check
was too slow on this machine: 60 clocks did not finish in 10 minutes)."""

import pytest
from amaranth.hdl import Assert, Assume, Cat, Module, Signal

from xbarflow.hdl import spi
from tests.support.formal import mutated, prove

pytestmark = pytest.mark.formal

LATENCY = 4          # rising edge -> rx.valid: two synchroniser flops, the edge flop, the register
DEPTH = 4 + 8 * 4 + LATENCY + 4   # CS set-up, one byte at the fastest timing, its delivery


def run_length(m, level, name):
    """Clocks `level` has been high so far, saturating at 7."""
    run = Signal(range(8), name=name)
    m.d.sync += run.eq(0)
    with m.If(level):
        m.d.sync += run.eq(run + (run != 7))
    return run


def harness(module=spi):
    m = Module()
    m.submodules.dut = dut = module.SPISlave()
    sclk, mosi, cs_n = Signal(), Signal(), Signal(init=1)
    m.d.comb += [dut.sclk.eq(sclk), dut.mosi.eq(mosi), dut.cs_n.eq(cs_n),
                 dut.rx.ready.eq(1), dut.tx.valid.eq(0)]

    prev_sclk, prev_mosi, prev_cs_n = Signal(), Signal(), Signal(init=1)
    m.d.sync += [prev_sclk.eq(sclk), prev_mosi.eq(mosi), prev_cs_n.eq(cs_n)]
    high, low = run_length(m, sclk, "sclk_high"), run_length(m, ~sclk, "sclk_low")
    selected_for, deselected_for = run_length(m, ~cs_n, "cs_low"), run_length(m, cs_n, "cs_high")
    rise = sclk & ~prev_sclk
    # Legal timing (the slave's docstring).
    with m.If(~sclk & prev_sclk):
        m.d.comb += Assume(high >= 2)
    with m.If(rise):
        m.d.comb += [Assume(low >= 2), Assume(~cs_n), Assume(selected_for >= 4)]
    with m.If(sclk & prev_sclk):
        m.d.comb += Assume(mosi == prev_mosi)
    with m.If(cs_n != prev_cs_n):
        m.d.comb += [Assume(~sclk), Assume(~prev_sclk)]
    with m.If(~cs_n & prev_cs_n):
        m.d.comb += Assume(deselected_for >= 3)
    with m.If(cs_n):
        m.d.comb += Assume(~sclk)

    # The reference: the bits on MOSI at the raw rising edges of the window.
    bits, shift = Signal(range(8)), Signal(8)
    pending, expected, age = Signal(), Signal(8), Signal(range(LATENCY + 2))
    with m.If(cs_n):
        m.d.sync += bits.eq(0)
    with m.Elif(rise):
        m.d.sync += [shift.eq(Cat(mosi, shift[:7])), bits.eq(bits + 1)]
    completes = ~cs_n & rise & (bits == 7)
    with m.If(completes):
        m.d.sync += [pending.eq(1), expected.eq(Cat(mosi, shift[:7])), age.eq(0)]
    with m.Elif(dut.rx.valid):
        m.d.sync += pending.eq(0)
    with m.Elif(pending):
        m.d.sync += age.eq(age + 1)
    with m.If(dut.rx.valid):
        m.d.comb += [Assert(pending), Assert(dut.rx.payload == expected)]
    with m.If(pending):
        m.d.comb += Assert(age < LATENCY)
    return m, [sclk, mosi, cs_n]


def test_every_byte_delivered_is_the_bits_on_mosi_for_every_legal_timing(tmp_path):
    result = prove(*harness(), tmp_path, mode="bmc", depth=DEPTH, timeout=1500, name="spi")
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


@pytest.mark.parametrize("old, new", [
    ("rx_shift.eq(Cat(mosi_sync, rx_shift[:7]))", "rx_shift.eq(Cat(rx_shift[1:], mosi_sync))"),  # LSB first
    ("last_bit.eq(sclk_rise & (bit_index == 7))", "last_bit.eq(sclk_rise & (bit_index == 6))"),  # 7-bit bytes
])
def test_a_broken_slave_fails_the_proof(old, new, tmp_path):
    result = prove(*harness(mutated(spi, old, new)), tmp_path, mode="bmc", depth=DEPTH, name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]
