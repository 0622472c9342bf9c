"""Formal proofs (SymbiYosys, tests/support/formal.py) that the UART's byte streams equal the
bits on its pins. (The transmitter's harness takes over only at an accept; before the first,
out-of-range counter values can keep the transmitter busy for up to one more character, so the
induction length is two characters, 20 * divider clocks, plus 2.)

Transmit: for every byte sequence and every valid pattern of the stream, each accepted byte
appears on txd as an 8N1 character of exactly `divider` clocks per bit (start 0, the 8 data
bits LSB first, stop 1) from the clock after it was accepted, characters never overlap, and txd
is high between characters.

Receive: a reference transmitter in the harness sends characters of any bytes with any idle
gap (back to back included) and any phase, at exactly `divider` clocks per bit; the consumer
takes each byte at once. Each character is delivered exactly once, as its byte, during its
own stop bit, nothing is delivered otherwise, and no framing error is counted. Bounded, from
reset, `RX_DEPTH` clocks: the receiver's counters are not ports, so an induction cannot tie them
to the reference (from an arbitrary state a receiver can stay misaligned on a back-to-back
stream). The receiver is back in IDLE with the synchronised line high at every start edge (it
leaves the stop bit at its middle), the state it has after reset, so a check from reset over a
character after any gap and one back to back (2 characters + 4 clocks) covers every character."""

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cat, Module, Mux, Signal

from xbarflow.hdl import uart
from tests.support.formal import mutated, prove

pytestmark = pytest.mark.formal


def tx_harness(divider, module=uart):
    m = Module()
    m.submodules.dut = dut = module.UART(divider)
    valid, payload = Signal(), Signal(8)
    m.d.comb += [dut.tx.valid.eq(valid), dut.tx.payload.eq(payload), dut.rxd.eq(1)]
    frame = 10 * divider
    pos = Signal(range(frame + 1))          # clocks since the byte was taken; 0: no character
    bits = Signal(10)                       # the character, start bit first
    accepted = dut.tx.valid & dut.tx.ready
    with m.If(accepted):
        m.d.sync += [pos.eq(1), bits.eq(Cat(0, payload, 1))]
    with m.Elif((pos != 0) & (pos != frame)):
        m.d.sync += pos.eq(pos + 1)
    with m.Else():
        m.d.sync += pos.eq(0)
    with m.If(dut.tx.ready):
        m.d.comb += Assert((pos == 0) | (pos == frame))             # characters never overlap
    with m.If(pos == 0):
        m.d.comb += Assert(dut.txd == 1)
    for k in range(10):
        with m.If((pos > k * divider) & (pos <= (k + 1) * divider)):
            m.d.comb += Assert(dut.txd == bits[k])
    return m, [valid, payload]


def rx_harness(divider, module=uart):
    m = Module()
    m.submodules.dut = dut = module.UART(divider)
    go, byte = AnySeq(1), AnySeq(8)
    frame = 10 * divider
    pos = Signal(range(frame + 1))          # clock of the character being sent, 1..frame; 0: idle
    bits = Signal(10)
    with m.If((pos == 0) | (pos == frame)):
        m.d.sync += pos.eq(Mux(go, 1, 0))
        with m.If(go):
            m.d.sync += bits.eq(Cat(0, byte, 1))
    with m.Else():
        m.d.sync += pos.eq(pos + 1)
    line = Signal(init=1)
    m.d.comb += line.eq(1)
    for k in range(10):
        with m.If((pos > k * divider) & (pos <= (k + 1) * divider)):
            m.d.comb += line.eq(bits[k])
    m.d.comb += [dut.rxd.eq(line), dut.rx.ready.eq(1), dut.tx.valid.eq(0)]

    delivered = Signal()                    # this character was delivered already
    with m.If(((pos == 0) | (pos == frame)) & go):
        m.d.sync += delivered.eq(0)
    with m.Elif(dut.rx.valid):
        m.d.sync += delivered.eq(1)
    with m.If(dut.rx.valid):
        m.d.comb += [Assert(pos > 9 * divider), Assert(dut.rx.payload == bits[1:9]),
                     Assert(~delivered)]
    with m.If(pos == frame):
        m.d.comb += Assert(delivered | dut.rx.valid)
    m.d.comb += Assert(dut.framing_errors == 0)        # a legal sender never breaks a frame
    return m, []


@pytest.mark.parametrize("divider", [4, pytest.param(5, marks=pytest.mark.slow)])
def test_every_accepted_byte_appears_on_txd_bit_for_bit(divider, tmp_path):
    result = prove(*tx_harness(divider), tmp_path, depth=20 * divider + 2, name="uart_tx")
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


@pytest.mark.parametrize("old, new", [
    ("tx_shift.eq(Cat(self.tx.payload, 1))", "tx_shift.eq(Cat(self.tx.payload[1:], 0, 1))"),  # bit order
    ("tx_bits.eq(9)", "tx_bits.eq(8)"),                                                         # no stop bit
])
def test_a_broken_transmitter_fails_the_proof(old, new, tmp_path):
    result = prove(*tx_harness(4, mutated(uart, old, new)), tmp_path, depth=42, name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]


RX_DIVIDER = 8    # the smallest divider whose byte arrives within its own stop bit (2 + d/2 + 1 < d)
RX_DEPTH = 2 * 10 * RX_DIVIDER + 4   # reset, a gap, a character, one back to back


@pytest.mark.slow
def test_every_character_on_rxd_is_delivered_once_as_its_byte(tmp_path):
    result = prove(*rx_harness(RX_DIVIDER), tmp_path, mode="bmc", depth=RX_DEPTH, name="uart_rx")
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


@pytest.mark.slow
def test_a_broken_receiver_fails_the_proof(tmp_path):
    broken = mutated(uart, "Cat(rx_shift[1:], rxd_sync)", "Cat(rxd_sync, rx_shift[:-1])")  # MSB first
    result = prove(*rx_harness(RX_DIVIDER, broken), tmp_path, mode="bmc", depth=RX_DEPTH, name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]


# -- framing_errors saturates: started at every value (its reset value dropped, so 2^32 - 1 is
# a start state), with rxd and clear free, each clock it keeps its value, moves up by one below
# all-ones, or is 0 right after clear. Two consecutive clocks only: 1-inductive, k-induction of
# length 2. A wrapping copy fails from all-ones at its first framing error (a start bit, 8 data
# bits and a low stop bit after the 2-flop synchroniser: 10 * divider + 4 clocks from reset).

def framing_errors_harness(divider, module=uart):
    m = Module()
    m.submodules.dut = dut = module.UART(divider)
    rxd, clear = Signal(), Signal()
    m.d.comb += [dut.rxd.eq(rxd), dut.clear.eq(clear), dut.rx.ready.eq(1), dut.tx.valid.eq(0)]
    count = dut.framing_errors
    prev, prev_clear, past = Signal.like(count), Signal(), Signal()
    m.d.sync += [prev.eq(count), prev_clear.eq(clear), past.eq(1)]
    with m.If(past & prev_clear):
        m.d.comb += Assert(count == 0)
    with m.Elif(past):
        m.d.comb += Assert((count == prev) | ((prev != (1 << len(count)) - 1) & (count == prev + 1)))
    return m, [rxd, clear]


def test_framing_errors_saturate_and_never_wrap(tmp_path):
    result = prove(*framing_errors_harness(4), tmp_path, depth=2, name="framing_errors",
                   free_init=("framing_errors",))
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


def test_a_wrapping_framing_error_counter_fails_the_proof(tmp_path):
    broken = mutated(uart, "self.framing_errors.eq(saturating_increment(self.framing_errors))",
                     "self.framing_errors.eq(self.framing_errors + 1)")
    result = prove(*framing_errors_harness(4, broken), tmp_path, mode="bmc", depth=10 * 4 + 8,
                   name="mutant", free_init=("framing_errors",))
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]
