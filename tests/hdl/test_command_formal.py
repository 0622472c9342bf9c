"""Formal proofs (SymbiYosys, tests/support/formal.py) of the command layer (hdl/command.py:
frame receiver, command executor, frame transmitter), in three harnesses, each where its
property is cheapest to prove (README "Formal proofs" has engine, depth and time of each):

1. the error counters saturate and never wrap (k-induction, the whole layer);
2. after any input the parser is back in HUNT within the frame timeout (k-induction, the
   receiver);
3. a frame with a bad CRC, command, length or address changes nothing, and every frame gets
   exactly one response, in order (bounded, the whole layer).

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
from amaranth.hdl import Assert, Assume, Cat, Module, Mux, Signal

from xbarflow.hdl import command, command_executor, frame_receiver, frame_transmitter, protocol
from xbarflow.hdl.protocol import Cmd, Error, Status
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


# -- bad frames change nothing; every complete frame gets exactly one response ---------------
# The whole layer (`hdl/command.py`) on small buffers (2 bytes each), every request byte free.
# The harness parses the request stream itself (SYNC hunt, header, payload, CRC) and judges
# each complete frame by the rules of `hdl/protocol.py` (its own reading of them,
# `spec_checks`): the error it must get, in the order CRC, command, length, address. The CRC
# verdict is the receiver's own comparison of its CRC processor with the CRC byte (see
# `layer_harness`). Judged frames wait in a queue until the receiver offers them (the rx FIFO
# holds more than one). The harness asserts
#
# - the receiver offers the frames in order, each once, with the harness's error;
# - a register write, an input-buffer or target-memory write, START or START_PROGRAM happens
#   only while a frame that checked out (and was not refused BUSY) is offered, of that frame's
#   command, at most once (a commit: inside its address range, at most LEN bytes): a frame
#   with a bad CRC, command, length or address changes no register, buffer or target byte;
# - the offer lasts less than `ANSWER_CLOCKS` clocks: every frame is answered;
# - the tx pins carry exactly one response per offered frame, in order, and nothing else: SYNC,
#   the expected STATUS (ACK; NACK with the frame's error; NACK BUSY) and LEN, a NACK's error
#   byte, then the CRC byte, completed within `RESPONSE_CLOCKS` clocks of the offer.
#
# Environment: abort low (an abort's drop is the hunt proof's), tx drained (tx.ready high),
# request bytes back to back (rx.valid high: the rx FIFO fills while a frame is answered, so
# back-pressure and a frame waiting behind another are exercised; gaps only feed the idle
# counter, the hunt proof's, and the harness asserts that no frame times out here). busy,
# clear_errors and the register and output-buffer reads are free. The FIFOs and the staging
# memory are shrunk (`small_fifos`); their depths set only when rx.ready drops, and both FIFOs
# are amaranth.lib.fifo's. Bounded (BMC from reset, `LAYER_DEPTH` clocks): the FIFO and
# staging contents are no ports, so an induction cannot tie them to the harness's queue.
# Within the depth a first frame of 6-8 bytes (any bytes: every command, address, length,
# payload and CRC) is offered, executed and its whole response leaves the pins, while the next
# frame's bytes fill the rx FIFO and are parsed after it. After a response the executor and
# the transmitter are idle and the receiver hunts, as after reset; only the bytes queued in the
# rx FIFO (in order) and the counters carry over, so each later frame meets the same logic.
# (Depth 26 passed too, in 10 minutes on a loaded machine; 30 did not finish in 10 minutes.)
LAYER = dict(input_bytes=2, output_bytes=2, timeout_cycles=8, target_bytes=2)
QUEUE = 4             # judged frames not yet offered (the rx FIFO holds < 2 frames)
ANSWER_CLOCKS = 12    # offer to answer: IDLE, EXECUTE, 2 commit bytes, SYNC STATUS LEN 4 bytes CRC + 1
RESPONSE_CLOCKS = ANSWER_CLOCKS + 4   # the CRC is written in the answer's clock, out 2 later
LAYER_DEPTH = 24
BUSY_REFUSED = (Cmd.START, Cmd.WRITE_BUF, Cmd.START_PROGRAM, Cmd.WRITE_TARGETS)


def spec_checks(cmd, addr, length, count, cfg=LAYER):
    """(known command, length ok, address ok) of a frame, from `protocol.Cmd`'s rules."""
    end = addr + Mux(cmd == Cmd.READ_BUF, count, length)     # 17 bits: no overflow
    rules = {
        Cmd.WRITE_REG: (length == 4, Cat(*(addr == r for r in protocol.WRITABLE_REGS)).any()),
        Cmd.READ_REG: (length == 0, addr < protocol.NUM_REGS),
        Cmd.WRITE_BUF: (length != 0, end <= cfg["input_bytes"]),
        Cmd.READ_BUF: ((length == 1) & (count != 0), end <= cfg["output_bytes"]),
        Cmd.WRITE_TARGETS: (length != 0, end <= cfg["target_bytes"]),
        Cmd.START: (length == 0, 1), Cmd.READ_RESULT: (length == 0, 1),
        Cmd.START_PROGRAM: (length == 0, 1),
    }
    known = Cat(*(cmd == c for c in rules)).any()
    length_ok = Cat(*((cmd == c) & ok for c, (ok, _) in rules.items())).any()
    address_ok = Cat(*((cmd == c) & ok for c, (_, ok) in rules.items())).any()
    return known, length_ok, address_ok


def expected_length(cmd, count):
    """LEN of the ACK to a frame that checked out."""
    return Mux(cmd == Cmd.READ_REG, 4, Mux(cmd == Cmd.READ_RESULT, 2, Mux(cmd == Cmd.READ_BUF, count, 0)))


def layer_harness(module=command):
    m = Module()
    layer = Elaborated(module.CommandLayer(**LAYER))
    m.submodules.dut = layer.fragment
    dut = layer.component
    rx_valid, rx_byte, busy, clear = Signal(), Signal(8), Signal(), Signal()
    r_data, out_data = Signal(32), Signal(8)
    m.d.comb += [dut.rx.valid.eq(rx_valid), dut.rx.payload.eq(rx_byte), dut.abort.eq(0),
                 dut.busy.eq(busy), dut.clear_errors.eq(clear), dut.tx.ready.eq(1),
                 dut.registers.r_data.eq(r_data), dut.output_buffer.data.eq(out_data)]
    got = dut.rx.valid & dut.rx.ready
    byte = dut.rx.payload

    # -- the harness's parse of the request stream ------------------------------------------
    HUNT, CMD, ADDR_HI, ADDR_LO, LEN, PAYLOAD, CRC = range(7)
    state = Signal(range(7))
    cmd, addr, length, index, last = Signal(8), Signal(16), Signal(8), Signal(8), Signal(8)
    m.d.comb += [Assume(rx_valid), Assert(dut.counters.err_timeout == 0)]

    count = Mux(length == 0, 0, last)
    known, length_ok, address_ok = spec_checks(cmd, addr, length, count)
    error = Signal(3)
    m.d.comb += error.eq(Mux(~known, Error.BAD_CMD,
                             Mux(~length_ok, Error.BAD_LEN, Mux(~address_ok, Error.BAD_ADDR, 0))))
    judged = got & (state == CRC)
    with m.If(got):
        with m.Switch(state):
            with m.Case(HUNT):
                m.d.sync += state.eq(Mux(byte == protocol.SYNC, CMD, HUNT))
            with m.Case(CMD):
                m.d.sync += [cmd.eq(byte), state.eq(ADDR_HI)]
            with m.Case(ADDR_HI):
                m.d.sync += [addr[8:].eq(byte), state.eq(ADDR_LO)]
            with m.Case(ADDR_LO):
                m.d.sync += [addr[:8].eq(byte), state.eq(LEN)]
            with m.Case(LEN):
                m.d.sync += [length.eq(byte), index.eq(0), state.eq(Mux(byte == 0, CRC, PAYLOAD))]
            with m.Case(PAYLOAD):
                m.d.sync += [last.eq(byte), index.eq(index + 1),
                             state.eq(Mux(index == length - 1, CRC, PAYLOAD))]
            with m.Case(CRC):
                m.d.sync += state.eq(HUNT)

    # -- judged frames, oldest first, until the receiver's offer of them ends ----------------
    fields = dict(cmd=8, addr=16, length=8, count=8, error=3)
    queue = [{k: Signal(w, name=f"q{i}_{k}") for k, w in fields.items()} for i in range(QUEUE)]
    queued = Signal(range(QUEUE + 1))
    receiver = layer.sub("receiver").component
    offered = receiver.frames.valid
    taken = offered & receiver.frames.ready
    new = dict(cmd=cmd, addr=addr, length=length, count=count, error=error)
    for i, entry in enumerate(queue):
        nxt = queue[i + 1] if i + 1 < QUEUE else None
        with m.If(judged & (queued - taken == i)):
            m.d.sync += [entry[k].eq(new[k]) for k in fields]
        with m.Elif(taken):
            m.d.sync += [entry[k].eq(nxt[k] if nxt else 0) for k in fields]
    m.d.sync += queued.eq(queued + judged - taken)
    m.d.comb += Assert(~judged | taken | (queued < QUEUE))
    # The CRC verdict is the receiver's own (its CRC processor against the CRC byte, taken
    # as it parses that byte): a second CRC in the harness would make the solver prove two
    # XOR networks equal through the FIFO, which it does not finish. The CRC value itself is
    # checked against `protocol.crc8` in simulation (tests/hdl/test_command.py).
    rcv = layer.sub("receiver")
    crc_bad = Signal()
    with m.If(rcv.signal("got_byte") & rcv.state("receiver", "CRC")):
        m.d.sync += crc_bad.eq(receiver.staging.data != rcv.sub("crc").component.crc)
    head = dict(queue[0])
    head["error"] = Mux(crc_bad, Error.BAD_CRC, queue[0]["error"])

    frame = frame_receiver.Frame(receiver.frames.payload)
    first = Signal()          # the offer's first clock: the executor checks it (and busy) then
    was_offered, refused, acted, written, offer_clocks = Signal(), Signal(), Signal(), Signal(9), Signal(range(ANSWER_CLOCKS + 2))
    m.d.sync += was_offered.eq(offered & ~taken)
    m.d.comb += first.eq(offered & ~was_offered)
    refused_now = busy & Cat(*(head["cmd"] == c for c in BUSY_REFUSED)).any() & (head["error"] == 0)
    with m.If(first):
        m.d.sync += refused.eq(refused_now)
    refusing = Mux(first, refused_now, refused)
    with m.If(offered):
        m.d.comb += [Assert(queued != 0), Assert(frame.cmd == head["cmd"]),
                     Assert(frame.addr == head["addr"]), Assert(frame.length == head["length"]),
                     Assert(frame.error == head["error"]), Assert(offer_clocks < ANSWER_CLOCKS)]
    m.d.sync += offer_clocks.eq(Mux(offered & ~taken, offer_clocks + 1, 0))

    # side effects: only for the offered frame that checked out, of its command
    good = offered & (head["error"] == 0) & ~refusing
    strobes = {Cmd.WRITE_REG: dut.registers.w_stb, Cmd.START: dut.start,
               Cmd.START_PROGRAM: dut.start_program}
    for c, strobe in strobes.items():
        with m.If(strobe):
            m.d.comb += [Assert(good), Assert(head["cmd"] == c), Assert(~acted)]
    with m.If(dut.registers.w_stb):
        m.d.comb += Assert(dut.registers.addr == head["addr"][:8])
    for c, port in ((Cmd.WRITE_BUF, dut.input_buffer), (Cmd.WRITE_TARGETS, dut.targets)):
        with m.If(port.en):
            m.d.comb += [Assert(good), Assert(head["cmd"] == c), Assert(port.addr >= head["addr"]),
                         Assert(port.addr < head["addr"] + head["length"]), Assert(written < head["length"])]
    any_strobe = Cat(*strobes.values()).any()
    commit = dut.input_buffer.en | dut.targets.en
    with m.If(taken):
        m.d.sync += [acted.eq(0), written.eq(0)]
    with m.Else():
        with m.If(any_strobe):
            m.d.sync += acted.eq(1)
        with m.If(commit):
            m.d.sync += written.eq(written + 1)

    # -- the responses on the tx pins: exactly one per answered frame, in order ---------------
    expect = dict(status=8, length=8, code=8)
    answers = [{k: Signal(w, name=f"a{i}_{k}") for k, w in expect.items()} for i in range(2)]
    answered, answer_age = Signal(range(3)), Signal(range(RESPONSE_CLOCKS + 2))
    nack = (head["error"] != 0) | refusing
    now = dict(status=Mux(nack, Status.NACK, Status.ACK),
               length=Mux(nack, 1, expected_length(head["cmd"], head["count"])),
               code=Mux(head["error"] != 0, head["error"], Error.BUSY))
    t_state = Signal(range(5))     # 0 SYNC, 1 STATUS, 2 LEN, 3 payload, 4 CRC
    t_len, t_index = Signal(8), Signal(8)
    out = dut.tx.valid
    out_byte = dut.tx.payload
    done = out & (t_state == 4)
    a_head = answers[0]
    for i, entry in enumerate(answers):
        with m.If(first & (answered - done == i)):
            m.d.sync += [entry[k].eq(now[k]) for k in expect]
        with m.Elif(done & (i == 0)):
            m.d.sync += [entry[k].eq(answers[1][k]) for k in expect]
    m.d.sync += answered.eq(answered + first - done)
    m.d.comb += Assert(~first | done | (answered < 2))
    m.d.sync += answer_age.eq(Mux(done | (answered == 0), 0, answer_age + 1))
    with m.If(answered != 0):
        m.d.comb += Assert(answer_age < RESPONSE_CLOCKS)
    with m.If(out):
        m.d.comb += Assert(answered != 0)          # no response without a frame
        with m.Switch(t_state):
            with m.Case(0):
                m.d.comb += Assert(out_byte == protocol.SYNC)
                m.d.sync += t_state.eq(1)
            with m.Case(1):
                m.d.comb += Assert(out_byte == a_head["status"])
                m.d.sync += t_state.eq(2)
            with m.Case(2):
                m.d.comb += Assert(out_byte == a_head["length"])
                m.d.sync += [t_len.eq(out_byte), t_index.eq(0), t_state.eq(Mux(out_byte == 0, 4, 3))]
            with m.Case(3):
                with m.If(a_head["status"] == Status.NACK):
                    m.d.comb += Assert(out_byte == a_head["code"])
                m.d.sync += [t_index.eq(t_index + 1), t_state.eq(Mux(t_index == t_len - 1, 4, 3))]
            with m.Case(4):           # the CRC byte (its value: decode_response in simulation)
                m.d.sync += t_state.eq(0)
    return m, [rx_valid, rx_byte, busy, clear, r_data, out_data]


@pytest.fixture
def small_fifos(monkeypatch):
    """The layer's buffers shrunk for the solver: a 4-entry rx FIFO, an 8-byte tx FIFO (the
    longest response here, READ_REG's), a 4-byte staging memory (no frame longer than the
    2-byte buffers checks out; a longer one's bytes wrap around in staging, never committed)."""
    monkeypatch.setattr(frame_receiver, "RX_FIFO_DEPTH", SMALL_RX_FIFO)
    monkeypatch.setattr(frame_transmitter, "TX_FIFO_DEPTH", SMALL_TX_FIFO)
    monkeypatch.setattr(protocol, "MAX_PAYLOAD", SMALL_STAGING)


SMALL_RX_FIFO, SMALL_TX_FIFO, SMALL_STAGING = 4, 8, 4


@pytest.mark.slow
def test_bad_frames_change_nothing_and_every_frame_gets_one_response(small_fifos, tmp_path):
    result = prove(*layer_harness(), tmp_path, mode="bmc", depth=LAYER_DEPTH, name="layer",
                   script=("memory_map",), timeout=1800)
    assert result.passed, result.summary() + "\n" + result.log[-4000:]


@pytest.mark.parametrize("where, old, new", [
    # the executor acts on a frame that failed the command, length or address check
    (command_executor, "with m.If(frame.error.any()):", "with m.If(frame.error == Error.BAD_CRC):"),
    # a WRITE_REG with a bad CRC is not refused
    (frame_receiver, "with m.If(byte != crc.crc):", "with m.If((byte != crc.crc) & (frame.cmd != Cmd.WRITE_REG)):"),
    # WRITE_BUF's address check forgets the length: a write runs past the buffer
    (frame_receiver, "address_ok.eq(frame.addr + frame.length <= self.input_bytes)",
     "address_ok.eq(frame.addr < self.input_bytes)"),
    # a commit writes one byte past the frame's payload
    (command_executor, "with m.If(index == frame.length - 1):", "with m.If(index == frame.length):"),
    # a one-byte response payload (a NACK's error code) is never written
    (frame_transmitter, "with m.If(~header.length.any()):", "with m.If(header.length < 2):"),
])
def test_a_broken_command_layer_fails_the_proof(where, old, new, small_fifos, tmp_path, monkeypatch):
    broken = mutated(where, old, new)
    component = {command_executor: "CommandExecutor", frame_receiver: "FrameReceiver",
                 frame_transmitter: "FrameTransmitter"}[where]
    monkeypatch.setattr(command, component, getattr(broken, component))
    for name, depth in (("RX_FIFO_DEPTH", SMALL_RX_FIFO), ("TX_FIFO_DEPTH", SMALL_TX_FIFO)):
        if hasattr(broken, name):                  # the copy has its own module constants
            monkeypatch.setattr(broken, name, depth)
    result = prove(*layer_harness(), tmp_path, mode="bmc", depth=LAYER_DEPTH, name="mutant",
                   script=("memory_map",))
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-4000:]
