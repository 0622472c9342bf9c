"""Formal proofs (SymbiYosys, tests/support/formal.py) of the command layer (hdl/command.py:
frame receiver, command executor, frame transmitter).

Saturating error counters: ERR_CRC, ERR_CMD, ERR_LEN (`hdl/command_executor.py`) and
ERR_TIMEOUT (``dropped``, `hdl/frame_receiver.py`) start at every value (their reset value is
dropped, `prove(free_init=...)`, so 2^32 - 1 is a start state, which no trace from reset
reaches), every input of the layer is free (any byte stream and valid pattern, abort, busy,
clear_errors, tx.ready, register and output-buffer reads), and each clock a counter either
keeps its value, or moves up by one while below all-ones, or is 0 right after clear_errors:
it never wraps. The property relates two consecutive clocks only, so it is 1-inductive:
k-induction of length 2 proves it for every reachable state. A copy with one counter's
saturation reverted (``x + 1``) fails it: from all-ones, one bad frame (or one timeout)
wraps it to 0 within `SATURATION_BMC_DEPTH` clocks of reset.
"""

import pytest
from amaranth.hdl import Assert, Module, Mux, Signal

from xbarflow.hdl import command, command_executor, frame_receiver
from tests.support.formal import Elaborated, mutated, prove

pytestmark = pytest.mark.formal

# A small layer: 2-byte buffers and a 4-clock frame timeout (the counters do not depend on them).
SMALL = dict(input_bytes=2, output_bytes=2, timeout_cycles=4, target_bytes=2)
ERROR_COUNTERS = ("err_crc", "err_cmd", "err_len", "dropped")
# From reset: a bad frame of 6 bytes through the rx FIFO and checked, or SYNC and a timeout.
SATURATION_BMC_DEPTH = 16


def free_inputs(m, dut):
    """Drive every input of the layer from a harness input; return them (the harness's ports)."""
    rx_valid, rx_byte, abort, busy, clear, tx_ready = (Signal(name=n) if n != "rx_byte" else Signal(8, name=n)
                                                      for n in ("rx_valid", "rx_byte", "abort", "busy",
                                                                "clear", "tx_ready"))
    r_data, out_data = Signal(32, name="r_data"), Signal(8, name="out_data")
    m.d.comb += [dut.rx.valid.eq(rx_valid), dut.rx.payload.eq(rx_byte), dut.abort.eq(abort),
                 dut.busy.eq(busy), dut.clear_errors.eq(clear), dut.tx.ready.eq(tx_ready),
                 dut.registers.r_data.eq(r_data), dut.output_buffer.data.eq(out_data)]
    return [rx_valid, rx_byte, abort, busy, clear, tx_ready, r_data, out_data]


def assert_saturates(m, counter, clear, name):
    """Each clock: unchanged, +1 below all-ones, or 0 right after `clear`."""
    prev, prev_clear, past = Signal.like(counter, name=f"prev_{name}"), Signal(name=f"prev_clear_{name}"), Signal(name=f"past_{name}")
    m.d.sync += [prev.eq(counter), prev_clear.eq(clear), past.eq(1)]
    top = (1 << len(counter)) - 1
    with m.If(past):
        with m.If(prev_clear):
            m.d.comb += Assert(counter == 0)
        with m.Else():
            m.d.comb += Assert((counter == prev) | ((prev != top) & (counter == prev + 1)))


def counters_harness(module=command):
    m = Module()
    m.submodules.dut = dut = module.CommandLayer(**SMALL)
    ports = free_inputs(m, dut)
    clear = ports[4]
    counters = dut.counters
    for name, sig in (("err_crc", counters.err_crc), ("err_cmd", counters.err_cmd),
                      ("err_len", counters.err_len), ("err_timeout", counters.err_timeout)):
        assert_saturates(m, sig, clear, name)
    return m, ports


def test_error_counters_saturate_and_never_wrap(tmp_path):
    result = prove(*counters_harness(), tmp_path, depth=2, name="counters", free_init=ERROR_COUNTERS)
    assert result.passed, result.summary() + "\n" + result.log[-4000:]


@pytest.mark.parametrize("where, counter", [(command_executor, "err_crc"), (command_executor, "err_cmd"),
                                            (command_executor, "err_len"), (frame_receiver, "dropped")])
def test_a_wrapping_counter_fails_the_proof(where, counter, tmp_path, monkeypatch):
    broken = mutated(where, f"self.{counter}.eq(saturating_increment(self.{counter}))",
                     f"self.{counter}.eq(self.{counter} + 1)")
    if where is command_executor:
        monkeypatch.setattr(command, "CommandExecutor", broken.CommandExecutor)
    else:
        monkeypatch.setattr(command, "FrameReceiver", broken.FrameReceiver)
    result = prove(*counters_harness(), tmp_path, mode="bmc", depth=SATURATION_BMC_DEPTH,
                   name="mutant", free_init=ERROR_COUNTERS)
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-4000:]


# -- back to HUNT within the frame timeout ---------------------------------------------------
# The receiver alone (`hdl/frame_receiver.py`), every input free: any byte stream and valid
# pattern, abort at any time, the executor taking frames at any time. The harness counts the
# clocks the parser has spent in a frame (CMD..CRC) with no byte to read (rx FIFO empty); it
# asserts that the parser never waits `HUNT_TIMEOUT` clocks: at the last of them it is back in
# HUNT, the frame dropped; and that it leaves a frame for HUNT only then or at an abort marker.
# The harness's count equals the receiver's idle counter (asserted too, which makes the
# property inductive): k-induction of length `HUNT_DEPTH`. (DELIVER, waiting for the
# executor's answer, ends with the response: `test_every_frame_gets_one_response...`.)
HUNT_TIMEOUT = 5      # not a power of two: the idle counter has codes above the timeout
HUNT_DEPTH = 12       # from reset a mutant's late or early drop is reached within 2 + 5 + 2 clocks


def hunt_harness(module=frame_receiver):
    m = Module()
    dut = Elaborated(module.FrameReceiver(input_bytes=2, output_bytes=2, target_bytes=2,
                                          timeout_cycles=HUNT_TIMEOUT))
    m.submodules.dut = dut.fragment
    rx = dut.component
    valid, byte, abort, taken, clear = Signal(), Signal(8), Signal(), Signal(), Signal()
    m.d.comb += [rx.rx.valid.eq(valid), rx.rx.payload.eq(byte), rx.abort.eq(abort),
                 rx.frames.ready.eq(taken), rx.clear_errors.eq(clear)]
    hunting, delivering = dut.state("receiver", "HUNT"), dut.state("receiver", "DELIVER")
    fifo_ready = dut.sub("rx_fifo").component.r_rdy
    in_frame, starved = Signal(), Signal()
    m.d.comb += [in_frame.eq(~hunting & ~delivering), starved.eq(in_frame & ~fifo_ready)]
    waited = Signal(range(HUNT_TIMEOUT + 2))      # clocks in a frame with no byte, before this one
    m.d.sync += waited.eq(Mux(starved, waited + 1, 0))
    was_in_frame, was_starved_out, was_abort = Signal(), Signal(), Signal()
    m.d.sync += [was_in_frame.eq(in_frame), was_starved_out.eq(starved & (waited == HUNT_TIMEOUT - 1)),
                 was_abort.eq(dut.signal("got_abort"))]
    with m.If(in_frame):
        m.d.comb += [Assert(waited < HUNT_TIMEOUT), Assert(dut.signal("idle_cycles") == waited)]
    with m.If(was_starved_out):
        m.d.comb += Assert(hunting)                    # the timeout's clock drops the frame
    with m.If(was_in_frame & hunting):
        m.d.comb += Assert(was_starved_out | was_abort)   # and nothing else but an abort does
    return m, [valid, byte, abort, taken, clear]


def test_the_parser_is_back_in_hunt_within_the_frame_timeout(tmp_path):
    result = prove(*hunt_harness(), tmp_path, depth=HUNT_DEPTH, name="hunt")
    assert result.passed, result.summary() + "\n" + result.log[-4000:]


@pytest.mark.parametrize("old, new", [
    # one clock late: the idle counter never reaches the timeout (it counts 0..4)
    ("(idle_cycles == self.timeout_cycles - 1)", "(idle_cycles == self.timeout_cycles)"),
    # the idle counter is not reset by a byte: a slow frame is dropped early
    ("with m.If(in_frame & ~rx_fifo.r_rdy):", "with m.If(in_frame):"),
])
def test_a_broken_timeout_fails_the_proof(old, new, tmp_path):
    result = prove(*hunt_harness(mutated(frame_receiver, old, new)), tmp_path, depth=HUNT_DEPTH,
                   name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-4000:]
