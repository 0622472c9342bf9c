"""The frame parser and executor of the host command layer (see `hdl.protocol`).

Data flow::

    rx stream ──> rx FIFO (bytes + abort markers) ──> parser FSM ──> registers / buffers
                                                         │
    tx stream <── tx FIFO (whole response frames) <──────┘

* The parser hunts for SYNC, reads CMD ADDR LEN payload CRC while a CRC processor
  (`protocol.CRC.create()`) runs over the bytes, then validates the whole frame and only
  then acts. WRITE_BUF and WRITE_TARGETS payloads are staged in a 255-byte memory while
  they arrive and are copied into the input buffer or the target memory (one byte per
  clock) once the frame has checked out, so a bad frame changes nothing.
* The rx FIFO (`RX_FIFO_DEPTH` entries) absorbs bytes while the parser is busy committing
  a payload or writing a response; the longest such stall is ~262 clocks (a 255-byte
  commit or a 259-byte response), i.e. 9 bytes at the fastest SPI rate of one byte per
  32 clocks, so no byte is lost.
* A response frame is written whole into the tx FIFO (`TX_FIFO_DEPTH` = 259 bytes, the
  largest response), one byte per clock, and drains at the pace of the link. A next
  request is parsed while the previous response is still draining.
* ``abort`` (the SPI deselect) is queued into the rx FIFO as a marker, so it cuts the
  byte stream exactly where it happened: a frame still incomplete at the marker is dropped
  and counted in ``err_timeout``; frames completed before it are still executed. From the
  abort pulse until its marker has been parsed, responses are discarded and the tx FIFO
  is held empty, so a stale response can never leak into the next chip-select window.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, ResetInserter, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import protocol
from .protocol import Cmd, Error, Reg, Status

RX_FIFO_DEPTH = 16
TX_FIFO_DEPTH = 4 + protocol.MAX_PAYLOAD   # one maximal response frame

# One rx FIFO entry: a received byte, or an abort marker (byte ignored).
RxEntry = data.StructLayout({"byte": unsigned(8), "abort": unsigned(1)})


class ResponsePayload(enum.Enum, shape=3):
    """Where the payload bytes of the response being written come from."""
    NONE = 0
    ERROR = 1      # the one NACK error byte
    REGISTER = 2   # the 32-bit register value latched at execution, big endian
    BUFFER = 3     # the output buffer, read live through out_addr/out_rdata
    RESULT = 4     # STATUS then RESULT low bytes, read live through reg_addr/reg_rdata


class CommandLayer(wiring.Component):
    """Parses request frames from ``rx``, executes them, and writes response frames to ``tx``.

    Parameters
    ----------
    input_bytes : int
        Size of the input buffer (WRITE_BUF bounds).
    output_bytes : int
        Size of the output buffer (READ_BUF bounds).
    timeout_cycles : int
        A partial frame that receives no byte for this many clocks is dropped.
    target_bytes : int
        Size of the programming target memory (WRITE_TARGETS bounds); 0 means none, and
        every WRITE_TARGETS is answered NACK BAD_ADDR.

    Attributes
    ----------
    rx : In(stream.Signature(8))
        Received bytes. ``ready`` is high whenever the rx FIFO has room (it drops for one
        cycle while an abort marker is queued).
    tx : Out(stream.Signature(8))
        Response bytes, straight from the tx FIFO.
    abort : In(1)
        Pulse: drop a partial request and any pending response (wire to SPI ``deselect``).
    reg_addr : Out(8)
        Register address; ``reg_rdata`` must be its combinational read.
    reg_rdata : In(32)
        Register read data.
    reg_wdata : Out(32)
        Register write data (valid with ``reg_we``).
    reg_we : Out(1)
        Register write strobe, one cycle per WRITE_REG.
    buf_addr : Out(16)
        Input buffer byte address (with ``buf_we``).
    buf_wdata : Out(8)
        Input buffer write data.
    buf_we : Out(1)
        Input buffer write strobe; a committed WRITE_BUF writes one byte per clock.
    tgt_addr : Out(16)
        Target memory byte address (with ``tgt_we``).
    tgt_wdata : Out(8)
        Target memory write data.
    tgt_we : Out(1)
        Target memory write strobe; a committed WRITE_TARGETS writes one byte per clock.
    out_addr : Out(16)
        Output buffer byte address; ``out_rdata`` must be its combinational read.
    out_rdata : In(8)
        Output buffer read data.
    start : Out(1)
        One-cycle pulse when a START command is executed.
    start_program : Out(1)
        One-cycle pulse when a START_PROGRAM command is executed.
    busy : In(1)
        An inference or a programming run is going on: START, START_PROGRAM, WRITE_BUF and
        WRITE_TARGETS are answered with NACK BUSY.
    frames_ok : Out(32)
        Frames executed (ACKed).
    err_crc : Out(32)
        Frames answered NACK BAD_CRC.
    err_cmd : Out(32)
        Frames answered NACK BAD_CMD.
    err_len : Out(32)
        Frames answered NACK BAD_LEN or BAD_ADDR.
    err_timeout : Out(32)
        Partial frames dropped (idle for ``timeout_cycles``, or cut by ``abort``).
    clear_errors : In(1)
        Pulse: clear the four ``err_*`` counters (``frames_ok`` keeps counting).
    """

    def __init__(self, input_bytes: int, output_bytes: int,
                 timeout_cycles: int = protocol.FRAME_TIMEOUT_CYCLES, *, target_bytes: int = 0):
        if not 1 <= input_bytes <= 1 << 16:
            raise ValueError(f"input_bytes must be in 1..65536, got {input_bytes}")
        if not 1 <= output_bytes <= 1 << 16:
            raise ValueError(f"output_bytes must be in 1..65536, got {output_bytes}")
        if timeout_cycles < 2:
            raise ValueError(f"timeout_cycles must be >= 2, got {timeout_cycles}")
        if not 0 <= target_bytes <= 1 << 16:
            raise ValueError(f"target_bytes must be in 0..65536, got {target_bytes}")
        self.target_bytes = target_bytes
        self.input_bytes = input_bytes
        self.output_bytes = output_bytes
        self.timeout_cycles = timeout_cycles
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "abort": In(1),
            "reg_addr": Out(8),
            "reg_rdata": In(32),
            "reg_wdata": Out(32),
            "reg_we": Out(1),
            "buf_addr": Out(16),
            "buf_wdata": Out(8),
            "buf_we": Out(1),
            "tgt_addr": Out(16),
            "tgt_wdata": Out(8),
            "tgt_we": Out(1),
            "out_addr": Out(16),
            "out_rdata": In(8),
            "start": Out(1),
            "start_program": Out(1),
            "busy": In(1),
            "frames_ok": Out(32),
            "err_crc": Out(32),
            "err_cmd": Out(32),
            "err_len": Out(32),
            "err_timeout": Out(32),
            "clear_errors": In(1),
        })

    def elaborate(self, platform):
        m = Module()

        # -- rx FIFO: bytes and abort markers, in arrival order ------------------------------
        m.submodules.rx_fifo = rx_fifo = SyncFIFOBuffered(width=RxEntry.size, depth=RX_FIFO_DEPTH)
        rx_in = RxEntry(rx_fifo.w_data)
        rx_out = RxEntry(rx_fifo.r_data)

        abort_pending = Signal()       # an abort waits for its marker to enter the FIFO
        markers_queued = Signal(range(RX_FIFO_DEPTH + 1))
        marker_pushed = Signal()
        marker_popped = Signal()

        with m.If(abort_pending):
            # The marker goes first; a byte arriving meanwhile belongs after the abort.
            m.d.comb += [
                rx_in.abort.eq(1),
                rx_fifo.w_en.eq(1),
                marker_pushed.eq(rx_fifo.w_rdy),
            ]
        with m.Else():
            m.d.comb += [
                rx_in.byte.eq(self.rx.payload),
                rx_fifo.w_en.eq(self.rx.valid),
                self.rx.ready.eq(rx_fifo.w_rdy),
            ]
        # An abort in the same cycle as a byte lands after that byte (the byte came first).
        with m.If(self.abort):
            m.d.sync += abort_pending.eq(1)
        with m.Elif(marker_pushed):
            m.d.sync += abort_pending.eq(0)
        with m.If(marker_pushed & ~marker_popped):
            m.d.sync += markers_queued.eq(markers_queued + 1)
        with m.Elif(marker_popped & ~marker_pushed):
            m.d.sync += markers_queued.eq(markers_queued - 1)

        # Responses are dropped from the abort pulse until its marker has been parsed.
        discarding = Signal()
        m.d.comb += discarding.eq(self.abort | abort_pending | (markers_queued != 0))

        # -- tx FIFO: whole response frames; held empty while discarding ---------------------
        tx_fifo = SyncFIFOBuffered(width=8, depth=TX_FIFO_DEPTH)
        m.submodules.tx_fifo = ResetInserter(discarding)(tx_fifo)
        m.d.comb += [
            self.tx.payload.eq(tx_fifo.r_data),
            self.tx.valid.eq(tx_fifo.r_rdy),
            tx_fifo.r_en.eq(self.tx.ready),
        ]

        # -- CRC processors (one definition with the host: protocol.CRC) ---------------------
        m.submodules.rx_crc = rx_crc = protocol.CRC.create()
        m.submodules.tx_crc = tx_crc = protocol.CRC.create()

        # -- WRITE_BUF staging memory ------------------------------------------------------
        m.submodules.staging = staging = Memory(shape=unsigned(8), depth=protocol.MAX_PAYLOAD,
                                                init=[])
        stage_wr = staging.write_port()
        stage_rd = staging.read_port()

        # -- frame registers ---------------------------------------------------------------
        cmd = Signal(8)
        addr = Signal(16)
        length = Signal(8)
        index = Signal(8)           # payload byte index (receive, commit and respond)
        payload_word = Signal(32)   # the last 4 payload bytes, big endian (WRITE_REG value)
        count = Signal(8)
        m.d.comb += count.eq(payload_word[:8])   # READ_BUF: the single payload byte
        crc_ok = Signal()

        resp_status = Signal(8)
        resp_len = Signal(8)
        resp_payload = Signal(ResponsePayload)
        resp_word = Signal(32)      # READ_REG value, shifted out MSB first
        error_code = Signal(Error)

        # Reading the rx FIFO.
        pop = Signal()
        got_byte = Signal()
        got_abort = Signal()
        byte = Signal(8)
        m.d.comb += [
            rx_fifo.r_en.eq(pop),
            byte.eq(rx_out.byte),
            got_byte.eq(pop & rx_fifo.r_rdy & ~rx_out.abort),
            got_abort.eq(pop & rx_fifo.r_rdy & rx_out.abort),
            marker_popped.eq(got_abort),
            rx_crc.data.eq(byte),
        ]

        # Writing the tx FIFO.
        push = Signal()
        push_byte = Signal(8)
        pushed = Signal()
        m.d.comb += [
            tx_fifo.w_en.eq(push),
            tx_fifo.w_data.eq(push_byte),
            pushed.eq(push & tx_fifo.w_rdy),
            tx_crc.data.eq(push_byte),
        ]

        # Register and buffer ports: addresses follow the frame unless a state overrides.
        m.d.comb += [
            self.reg_addr.eq(addr[:8]),
            self.reg_wdata.eq(payload_word),
            self.out_addr.eq(addr + index),
            self.buf_addr.eq(addr + index),
            self.buf_wdata.eq(stage_rd.data),
            self.tgt_addr.eq(addr + index),
            self.tgt_wdata.eq(stage_rd.data),
            stage_wr.addr.eq(index),
            stage_wr.data.eq(byte),
            stage_rd.addr.eq(0),
        ]

        # -- validation (combinational from the frame registers) ----------------------------
        known_cmd = Signal()
        length_ok = Signal()
        address_ok = Signal()
        with m.Switch(cmd):
            with m.Case(Cmd.WRITE_REG):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(length == 4),
                    address_ok.eq(_any_of(addr, protocol.WRITABLE_REGS)),
                ]
            with m.Case(Cmd.READ_REG):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(length == 0),
                    address_ok.eq(addr < protocol.NUM_REGS),
                ]
            with m.Case(Cmd.WRITE_BUF):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(length != 0),
                    address_ok.eq(addr + length <= self.input_bytes),
                ]
            with m.Case(Cmd.READ_BUF):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq((length == 1) & (count != 0)),
                    address_ok.eq(addr + count <= self.output_bytes),
                ]
            with m.Case(Cmd.WRITE_TARGETS):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(length != 0),
                    address_ok.eq(addr + length <= self.target_bytes),
                ]
            with m.Case(Cmd.START, Cmd.READ_RESULT, Cmd.START_PROGRAM):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(length == 0),
                    address_ok.eq(1),   # ADDR is ignored
                ]
        busy_refused = Signal()
        m.d.comb += busy_refused.eq(self.busy & _any_of(cmd, (Cmd.START, Cmd.WRITE_BUF,
                                                              Cmd.START_PROGRAM,
                                                              Cmd.WRITE_TARGETS)))

        # -- partial-frame timeout ---------------------------------------------------------
        in_frame = Signal()
        idle_cycles = Signal(range(self.timeout_cycles))
        timed_out = Signal()
        drop_frame = Signal()
        with m.If(in_frame & ~rx_fifo.r_rdy):
            m.d.sync += idle_cycles.eq(idle_cycles + 1)
        with m.Else():
            m.d.sync += idle_cycles.eq(0)
        m.d.comb += [
            timed_out.eq(in_frame & ~rx_fifo.r_rdy & (idle_cycles == self.timeout_cycles - 1)),
            drop_frame.eq(in_frame & (timed_out | got_abort)),
        ]

        # -- the parser / executor / responder ----------------------------------------------
        def respond(status, payload_kind, payload_len):
            m.d.sync += [
                resp_status.eq(status),
                resp_payload.eq(payload_kind),
                resp_len.eq(payload_len),
                index.eq(0),
            ]
            m.next = "RESP_SYNC"

        with m.FSM(name="parser") as fsm:
            m.d.comb += in_frame.eq(fsm.ongoing("CMD") | fsm.ongoing("ADDR_HI") |
                                    fsm.ongoing("ADDR_LO") | fsm.ongoing("LEN") |
                                    fsm.ongoing("PAYLOAD") | fsm.ongoing("CRC"))

            with m.State("HUNT"):
                # Skip anything that is not SYNC (resynchronisation); markers just pass.
                m.d.comb += pop.eq(1)
                with m.If(got_byte & (byte == protocol.SYNC)):
                    m.d.comb += rx_crc.start.eq(1)
                    m.next = "CMD"

            with m.State("CMD"):
                m.d.comb += pop.eq(1)
                with m.If(drop_frame):
                    m.next = "HUNT"
                with m.Elif(got_byte):
                    m.d.comb += rx_crc.valid.eq(1)
                    m.d.sync += cmd.eq(byte)
                    m.next = "ADDR_HI"

            with m.State("ADDR_HI"):
                m.d.comb += pop.eq(1)
                with m.If(drop_frame):
                    m.next = "HUNT"
                with m.Elif(got_byte):
                    m.d.comb += rx_crc.valid.eq(1)
                    m.d.sync += addr[8:].eq(byte)
                    m.next = "ADDR_LO"

            with m.State("ADDR_LO"):
                m.d.comb += pop.eq(1)
                with m.If(drop_frame):
                    m.next = "HUNT"
                with m.Elif(got_byte):
                    m.d.comb += rx_crc.valid.eq(1)
                    m.d.sync += addr[:8].eq(byte)
                    m.next = "LEN"

            with m.State("LEN"):
                m.d.comb += pop.eq(1)
                with m.If(drop_frame):
                    m.next = "HUNT"
                with m.Elif(got_byte):
                    m.d.comb += rx_crc.valid.eq(1)
                    m.d.sync += [length.eq(byte), index.eq(0)]
                    with m.If(byte == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"

            with m.State("PAYLOAD"):
                m.d.comb += pop.eq(1)
                with m.If(drop_frame):
                    m.next = "HUNT"
                with m.Elif(got_byte):
                    # Every payload byte is staged; only WRITE_BUF/WRITE_TARGETS commit them.
                    m.d.comb += [rx_crc.valid.eq(1), stage_wr.en.eq(1)]
                    m.d.sync += [
                        payload_word.eq(Cat(byte, payload_word[:24])),
                        index.eq(index + 1),
                    ]
                    with m.If(index == length - 1):
                        m.next = "CRC"

            with m.State("CRC"):
                m.d.comb += pop.eq(1)
                with m.If(drop_frame):
                    m.next = "HUNT"
                with m.Elif(got_byte):
                    m.d.sync += crc_ok.eq(byte == rx_crc.crc)
                    m.next = "CHECK"

            with m.State("CHECK"):
                # A frame that fails any check is answered with NACK and changes nothing.
                with m.If(~crc_ok):
                    m.d.sync += [error_code.eq(Error.BAD_CRC), self.err_crc.eq(self.err_crc + 1)]
                with m.Elif(~known_cmd):
                    m.d.sync += [error_code.eq(Error.BAD_CMD), self.err_cmd.eq(self.err_cmd + 1)]
                with m.Elif(~length_ok):
                    m.d.sync += [error_code.eq(Error.BAD_LEN), self.err_len.eq(self.err_len + 1)]
                with m.Elif(~address_ok):
                    m.d.sync += [error_code.eq(Error.BAD_ADDR), self.err_len.eq(self.err_len + 1)]
                with m.Elif(busy_refused):
                    m.d.sync += error_code.eq(Error.BUSY)
                with m.If(crc_ok & known_cmd & length_ok & address_ok & ~busy_refused):
                    m.next = "EXECUTE"
                with m.Else():
                    respond(Status.NACK, ResponsePayload.ERROR, 1)

            with m.State("EXECUTE"):
                m.d.sync += self.frames_ok.eq(self.frames_ok + 1)
                with m.Switch(cmd):
                    with m.Case(Cmd.WRITE_REG):
                        m.d.comb += self.reg_we.eq(1)
                        respond(Status.ACK, ResponsePayload.NONE, 0)
                    with m.Case(Cmd.READ_REG):
                        m.d.sync += resp_word.eq(self.reg_rdata)
                        respond(Status.ACK, ResponsePayload.REGISTER, 4)
                    with m.Case(Cmd.WRITE_BUF, Cmd.WRITE_TARGETS):
                        # stage_rd.addr is 0 here, so COMMIT starts with byte 0 on its output.
                        m.d.sync += index.eq(0)
                        m.next = "COMMIT"
                    with m.Case(Cmd.READ_BUF):
                        respond(Status.ACK, ResponsePayload.BUFFER, count)
                    with m.Case(Cmd.START):
                        m.d.comb += self.start.eq(1)
                        respond(Status.ACK, ResponsePayload.NONE, 0)
                    with m.Case(Cmd.READ_RESULT):
                        respond(Status.ACK, ResponsePayload.RESULT, 2)
                    with m.Case(Cmd.START_PROGRAM):
                        m.d.comb += self.start_program.eq(1)
                        respond(Status.ACK, ResponsePayload.NONE, 0)

            with m.State("COMMIT"):
                # One byte per clock from the staging memory (read one address ahead).
                m.d.comb += [
                    self.buf_we.eq(cmd == Cmd.WRITE_BUF),
                    self.tgt_we.eq(cmd == Cmd.WRITE_TARGETS),
                    stage_rd.addr.eq(index + 1),
                ]
                m.d.sync += index.eq(index + 1)
                with m.If(index == length - 1):
                    respond(Status.ACK, ResponsePayload.NONE, 0)

            with m.State("RESP_SYNC"):
                m.d.comb += [push.eq(1), push_byte.eq(protocol.SYNC)]
                with m.If(pushed):
                    m.d.comb += tx_crc.start.eq(1)
                    m.next = "RESP_STATUS"

            with m.State("RESP_STATUS"):
                m.d.comb += [push.eq(1), push_byte.eq(resp_status), tx_crc.valid.eq(pushed)]
                with m.If(pushed):
                    m.next = "RESP_LEN"

            with m.State("RESP_LEN"):
                m.d.comb += [push.eq(1), push_byte.eq(resp_len), tx_crc.valid.eq(pushed)]
                with m.If(pushed):
                    m.next = "RESP_PAYLOAD"
                    with m.If(resp_len == 0):
                        m.next = "RESP_CRC"

            with m.State("RESP_PAYLOAD"):
                m.d.comb += [push.eq(1), tx_crc.valid.eq(pushed)]
                with m.Switch(resp_payload):
                    with m.Case(ResponsePayload.ERROR):
                        m.d.comb += push_byte.eq(error_code)
                    with m.Case(ResponsePayload.REGISTER):
                        m.d.comb += push_byte.eq(resp_word[24:])
                    with m.Case(ResponsePayload.BUFFER):
                        m.d.comb += push_byte.eq(self.out_rdata)
                    with m.Case(ResponsePayload.RESULT):
                        m.d.comb += [
                            self.reg_addr.eq(Const(Reg.STATUS, 8)),
                            push_byte.eq(self.reg_rdata[:8]),
                        ]
                        with m.If(index == 1):
                            m.d.comb += self.reg_addr.eq(Const(Reg.RESULT, 8))
                with m.If(pushed):
                    m.d.sync += [index.eq(index + 1), resp_word.eq(resp_word << 8)]
                    with m.If(index == resp_len - 1):
                        m.next = "RESP_CRC"

            with m.State("RESP_CRC"):
                m.d.comb += [push.eq(1), push_byte.eq(tx_crc.crc)]
                with m.If(pushed):
                    m.next = "HUNT"

        # -- counters (clear_errors wins over a same-cycle increment) ------------------------
        with m.If(drop_frame):
            m.d.sync += self.err_timeout.eq(self.err_timeout + 1)
        with m.If(self.clear_errors):
            m.d.sync += [
                self.err_crc.eq(0),
                self.err_cmd.eq(0),
                self.err_len.eq(0),
                self.err_timeout.eq(0),
            ]

        return m


def _any_of(value, choices):
    """1 when ``value`` equals one of the constant ``choices``."""
    result = Const(0, 1)
    for choice in choices:
        result = result | (value == int(choice))
    return result
