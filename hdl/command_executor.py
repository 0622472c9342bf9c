"""The command executor of the command layer: acts on a received frame and answers it.

A frame arrives from the `FrameReceiver` with the outcome of its checks; the executor
refuses it with NACK (the receiver's error, or BUSY), or executes it: a register access, a
start pulse, or a WRITE_BUF / WRITE_TARGETS commit of the staged payload into the input
buffer or the target memory (one byte per clock, only once the frame has checked out, so a
bad frame changes nothing). Then it hands the response header to the `FrameTransmitter`
and answers the transmitter's reads of the payload bytes. It takes the frame (``frames``
transfer) in the clock the transmitter has written the response's CRC.

FSM: IDLE (a frame is checked in the clock it arrives) -> EXECUTE -> (COMMIT) -> RESPOND
-> IDLE, or IDLE -> RESPOND for a NACK.
"""

# No `from __future__ import annotations` here: wiring.Component reads the port annotations.
from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import protocol
from .frame_receiver import Frame
from .frame_transmitter import ResponseHeader
from .ports import ReadSignature, RegisterSignature, WriteSignature
from .protocol import Cmd, Error, Reg, Status
from .saturating import saturating_increment

__all__ = ["CommandExecutor", "ResponsePayload"]


class ResponsePayload(enum.Enum, shape=2):
    """Where the payload bytes of the response being written come from."""
    NONE = 0
    WORD = 1       # the response word, MSB first: a READ_REG value, or a NACK's error code
    BUFFER = 2     # the output buffer, read live through output_buffer
    RESULT = 3     # STATUS then RESULT low bytes, read live through registers


class CommandExecutor(wiring.Component):
    """Executes checked frames from ``frames`` and answers each through ``responses``.

    Attributes
    ----------
    frames : In(stream.Signature(Frame.as_shape().size))
        Frames (`xbarflow.hdl.frame_receiver.Frame`) from the receiver; each is taken once its response is written.
    staging : In(WriteSignature(addr_width=8))
        The receiver's payload bytes, kept in a 255-byte staging memory for the commit.
    responses : Out(stream.Signature(ResponseHeader.as_shape().size))
        The response to write (`xbarflow.hdl.frame_transmitter.ResponseHeader`) (status and payload length); taken by the transmitter once it
        has written the whole response frame.
    payload : In(ReadSignature(addr_width=8))
        The transmitter's reads of the response payload, byte ``payload.addr``. The bytes of
        READ_BUF and READ_RESULT are read live (output buffer, STATUS, RESULT) in the clock
        the transmitter writes them.
    registers : Out(RegisterSignature())
        Register port: ``w_stb`` one clock per WRITE_REG, reads for READ_REG and
        READ_RESULT.
    input_buffer : Out(WriteSignature(addr_width=16))
        Input buffer writes; a committed WRITE_BUF writes one byte per clock.
    targets : Out(WriteSignature(addr_width=16))
        Target memory writes; a committed WRITE_TARGETS writes one byte per clock.
    output_buffer : Out(ReadSignature(addr_width=16))
        Output buffer reads for READ_BUF.
    start : Out(1)
        One-cycle pulse when a START command is executed.
    start_program : Out(1)
        One-cycle pulse when a START_PROGRAM command is executed.
    busy : In(1)
        An inference or a programming run is going on: START, START_PROGRAM, WRITE_BUF and
        WRITE_TARGETS are answered with NACK BUSY (counted nowhere).
    frames_ok : Out(32)
        Frames executed (ACKed).
    err_crc, err_cmd : Out(32)
        Frames answered NACK BAD_CRC, NACK BAD_CMD (saturating at 2^32 - 1, never wrapping).
    err_len : Out(32)
        Frames answered NACK BAD_LEN or BAD_ADDR (saturating likewise).
    clear_errors : In(1)
        Pulse: clear ``err_crc``, ``err_cmd`` and ``err_len`` (``frames_ok`` keeps counting).
    """

    frames: In(stream.Signature(Frame.as_shape().size))
    staging: In(WriteSignature(addr_width=8))
    responses: Out(stream.Signature(ResponseHeader.as_shape().size))
    payload: In(ReadSignature(addr_width=8))
    registers: Out(RegisterSignature())
    input_buffer: Out(WriteSignature(addr_width=16))
    targets: Out(WriteSignature(addr_width=16))
    output_buffer: Out(ReadSignature(addr_width=16))
    start: Out(1)
    start_program: Out(1)
    busy: In(1)
    frames_ok: Out(32)
    err_crc: Out(32)
    err_cmd: Out(32)
    err_len: Out(32)
    clear_errors: In(1)

    def elaborate(self, platform):
        m = Module()
        frame = Frame(self.frames.payload)
        header = ResponseHeader(self.responses.payload)   # registers, set by respond()

        # -- staging memory: written by the receiver, committed from here --------------------
        m.submodules.staging = staging = Memory(shape=unsigned(8), depth=protocol.MAX_PAYLOAD,
                                                init=[])
        stage_wr = staging.write_port()
        stage_rd = staging.read_port()
        index = Signal(8)           # commit byte index
        next_index = index + 1
        m.d.comb += [
            stage_wr.addr.eq(self.staging.addr),
            stage_wr.data.eq(self.staging.data),
            stage_wr.en.eq(self.staging.en),
        ]

        resp_payload = Signal(ResponsePayload)
        resp_word = Signal(32)      # a READ_REG value or a NACK's error code, sent MSB first

        # Ports: addresses follow the frame, but a READ_RESULT response reads the STATUS,
        # then the RESULT register.
        reading_result = Signal()
        m.d.comb += [
            self.registers.addr.eq(Mux(reading_result,
                                       Mux(self.payload.addr.any(), Const(Reg.RESULT, 8),
                                           Const(Reg.STATUS, 8)),
                                       frame.addr[:8])),
            self.registers.w_data.eq(frame.word),
            self.output_buffer.addr.eq(frame.addr + self.payload.addr),
            self.input_buffer.addr.eq(frame.addr + index),
            self.input_buffer.data.eq(stage_rd.data),
            self.targets.addr.eq(frame.addr + index),
            self.targets.data.eq(stage_rd.data),
        ]

        # The payload byte the transmitter reads (only during RESPOND).
        with m.Switch(resp_payload):
            with m.Case(ResponsePayload.BUFFER):
                m.d.comb += self.payload.data.eq(self.output_buffer.data)
            with m.Case(ResponsePayload.RESULT):
                m.d.comb += self.payload.data.eq(self.registers.r_data[:8])
            with m.Default():   # WORD (a NONE response has no payload byte to read)
                m.d.comb += self.payload.data.eq(resp_word.word_select(~self.payload.addr[:2], 8))

        busy_refused = Signal()
        with m.Switch(frame.cmd):
            with m.Case(Cmd.START, Cmd.WRITE_BUF, Cmd.START_PROGRAM, Cmd.WRITE_TARGETS):
                m.d.comb += busy_refused.eq(self.busy)

        def respond(status, payload_kind, payload_len):
            m.d.sync += [
                header.status.eq(status),
                header.length.eq(payload_len),
                resp_payload.eq(payload_kind),
            ]
            m.next = "RESPOND"

        def refuse(error):
            m.d.sync += resp_word.eq(error << 24)
            respond(Status.NACK, ResponsePayload.WORD, 1)

        with m.FSM(name="executor") as fsm:
            with m.State("IDLE"):
                # A frame that failed a check, or is refused while busy, is answered with
                # NACK and changes nothing.
                with m.If(self.frames.valid):
                    with m.If(frame.error.any()):
                        refuse(frame.error)
                    with m.Elif(busy_refused):
                        refuse(Error.BUSY)
                    with m.Else():
                        m.next = "EXECUTE"

            with m.State("EXECUTE"):
                with m.Switch(frame.cmd):
                    with m.Case(Cmd.WRITE_REG, Cmd.START, Cmd.START_PROGRAM):
                        # The write strobe and the start pulses are decoded below.
                        respond(Status.ACK, ResponsePayload.NONE, 0)
                    with m.Case(Cmd.READ_REG):
                        m.d.sync += resp_word.eq(self.registers.r_data)
                        respond(Status.ACK, ResponsePayload.WORD, 4)
                    with m.Case(Cmd.WRITE_BUF, Cmd.WRITE_TARGETS):
                        # stage_rd.addr is 0 here, so COMMIT starts with byte 0 on its output.
                        m.d.sync += index.eq(0)
                        m.next = "COMMIT"
                    with m.Case(Cmd.READ_BUF):
                        respond(Status.ACK, ResponsePayload.BUFFER, frame.word[:8])
                    with m.Case(Cmd.READ_RESULT):
                        respond(Status.ACK, ResponsePayload.RESULT, 2)

            with m.State("COMMIT"):
                # One byte per clock from the staging memory (read one address ahead).
                m.d.comb += stage_rd.addr.eq(next_index)
                m.d.sync += index.eq(next_index)
                with m.If(index == frame.length - 1):
                    respond(Status.ACK, ResponsePayload.NONE, 0)

            with m.State("RESPOND"):
                with m.If(self.responses.ready):
                    m.next = "IDLE"

        # Strobes: one clock in EXECUTE, each byte of a COMMIT. The response is offered in
        # RESPOND; the frame is taken when its response is.
        executing, committing = fsm.ongoing("EXECUTE"), fsm.ongoing("COMMIT")
        m.d.comb += [
            self.registers.w_stb.eq(executing & (frame.cmd == Cmd.WRITE_REG)),
            self.start.eq(executing & (frame.cmd == Cmd.START)),
            self.start_program.eq(executing & (frame.cmd == Cmd.START_PROGRAM)),
            reading_result.eq(fsm.ongoing("RESPOND") & (resp_payload == ResponsePayload.RESULT)),
            self.input_buffer.en.eq(committing & (frame.cmd == Cmd.WRITE_BUF)),
            self.targets.en.eq(committing & (frame.cmd == Cmd.WRITE_TARGETS)),
            self.responses.valid.eq(fsm.ongoing("RESPOND")),
            self.frames.ready.eq(self.responses.valid & self.responses.ready),
        ]

        # -- counters: frames executed, and refused by cause (clear_errors wins over an
        # increment, but frames_ok keeps counting) --------------------------------------
        with m.If(executing):
            m.d.sync += self.frames_ok.eq(self.frames_ok + 1)
        with m.If(self.clear_errors):
            m.d.sync += [
                self.err_crc.eq(0),
                self.err_cmd.eq(0),
                self.err_len.eq(0),
            ]
        with m.Elif(fsm.ongoing("IDLE") & self.frames.valid):
            with m.Switch(frame.error):
                with m.Case(Error.BAD_CRC):
                    m.d.sync += self.err_crc.eq(saturating_increment(self.err_crc))
                with m.Case(Error.BAD_CMD):
                    m.d.sync += self.err_cmd.eq(saturating_increment(self.err_cmd))
                with m.Case(Error.BAD_LEN, Error.BAD_ADDR):
                    m.d.sync += self.err_len.eq(saturating_increment(self.err_len))

        return m
