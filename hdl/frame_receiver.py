"""The frame receiver of the command layer: request bytes in, checked frames out.

Data flow::

    rx stream ──> rx FIFO (bytes + abort markers) ──> receiver FSM ──> frames stream
                                                           └────────> staging writes

* The FSM hunts for SYNC, reads CMD ADDR LEN payload CRC while a CRC processor
  (`protocol.CRC.create()`) runs over the bytes, and offers the frame on ``frames`` with the
  outcome of every check but BUSY (`Frame.error`). Each payload byte is written to
  ``staging`` as it arrives (the executor keeps them until the frame has checked out).
* A frame stays offered until the executor has answered it; meanwhile nothing is parsed, so
  the rx FIFO (`RX_FIFO_DEPTH` entries) absorbs the bytes that arrive. The longest such
  stall is ~262 clocks (a 255-byte commit or a 259-byte response), i.e. 9 bytes at the
  fastest SPI rate of one byte per 32 clocks, so no byte is lost.
* A partial frame that receives no byte for ``timeout_cycles`` clocks is dropped and counted.
* ``abort`` (the SPI deselect) is queued into the rx FIFO as a marker, so it cuts the byte
  stream exactly where it happened: a frame still incomplete at the marker is dropped and
  counted; frames completed before it are still offered. ``discarding`` is high from the
  abort pulse until its marker has been parsed (the transmitter drops responses meanwhile,
  so a stale response can never leak into the next chip-select window). Because a frame is
  answered before the next byte is parsed, a marker queued while a frame executes is parsed
  after its response, which is then dropped.
"""

# No `from __future__ import annotations` here: amaranth reads the Struct annotations.
from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from . import protocol
from .ports import WriteSignature
from .protocol import Cmd, Error
from .saturating import saturating_increment

__all__ = ["Frame", "FrameReceiver", "RX_FIFO_DEPTH"]

RX_FIFO_DEPTH = 16


class Frame(data.Struct):
    """One received request frame, as the receiver offers it to the executor.

    ``error`` is 0 when the frame checked out (CRC, then command, then length, then
    address), else the `protocol.Error` its NACK carries.

    The ``frames`` stream carries its bits as a plain ``unsigned(Frame.as_shape().size)``
    payload that both ends view as a `Frame` (a struct-shaped port would add a Verilog wire
    per field at every module boundary, each one a lint warning).
    """
    cmd: unsigned(8)
    addr: unsigned(16)
    length: unsigned(8)
    word: unsigned(32)     # the last 4 payload bytes, big endian (WRITE_REG value, READ_BUF count)
    error: unsigned(3)


class _RxEntry(data.Struct):
    """One rx FIFO entry: a received byte, or an abort marker (byte ignored)."""
    byte: unsigned(8)
    abort: unsigned(1)


class FrameReceiver(wiring.Component):
    """Parses request frames out of ``rx`` and offers each, checked, on ``frames``.

    Parameters
    ----------
    input_bytes : int
        Size of the input buffer (WRITE_BUF bounds).
    output_bytes : int
        Size of the output buffer (READ_BUF bounds).
    target_bytes : int
        Size of the programming target memory (WRITE_TARGETS bounds); 0 means none, and
        every WRITE_TARGETS is answered NACK BAD_ADDR.
    timeout_cycles : int
        A partial frame that receives no byte for this many clocks is dropped.

    Attributes
    ----------
    rx : In(stream.Signature(8))
        Received bytes. ``ready`` is high whenever the rx FIFO has room (it drops for one
        cycle while an abort marker is queued).
    abort : In(1)
        Pulse: drop a partial request (wire to SPI ``deselect``).
    discarding : Out(1)
        From an ``abort`` pulse until its marker has been parsed: responses must be dropped.
    frames : Out(stream.Signature(Frame.as_shape().size))
        Checked frames, the payload a `Frame`. The payload holds while ``valid``; the consumer takes a frame (raises
        ``ready``) once it has answered it, and the receiver parses nothing until then.
    staging : Out(WriteSignature(addr_width=8))
        Every payload byte of the frame being received, at its index in the payload.
    dropped : Out(32)
        Partial frames dropped (idle for ``timeout_cycles``, or cut by ``abort``); saturates at
        2^32 - 1 (never wraps).
    clear_errors : In(1)
        Pulse: clear ``dropped``.
    """

    def __init__(self, *, input_bytes: int, output_bytes: int, target_bytes: int,
                 timeout_cycles: int):
        self.input_bytes = input_bytes
        self.output_bytes = output_bytes
        self.target_bytes = target_bytes
        self.timeout_cycles = timeout_cycles
        super().__init__({
            "rx": In(stream.Signature(8)),
            "abort": In(1),
            "discarding": Out(1),
            "frames": Out(stream.Signature(Frame.as_shape().size)),
            "staging": Out(WriteSignature(addr_width=8)),
            "dropped": Out(32),
            "clear_errors": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        frame = Frame(self.frames.payload)  # the frame registers are the offered payload
        index = self.staging.addr   # payload byte index

        # -- rx FIFO: bytes and abort markers, in arrival order ------------------------------
        m.submodules.rx_fifo = rx_fifo = SyncFIFOBuffered(width=_RxEntry.as_shape().size,
                                                          depth=RX_FIFO_DEPTH)
        rx_in = _RxEntry(rx_fifo.w_data)
        rx_out = _RxEntry(rx_fifo.r_data)
        byte = rx_out.byte

        abort_pending = Signal()       # an abort waits for its marker to enter the FIFO
        markers_queued = Signal(range(RX_FIFO_DEPTH + 1))
        marker_pushed = Signal()
        got_byte = Signal()            # the byte popped this clock
        got_abort = Signal()           # the marker popped this clock

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
        with m.If(marker_pushed & ~got_abort):
            m.d.sync += markers_queued.eq(markers_queued + 1)
        with m.Elif(got_abort & ~marker_pushed):
            m.d.sync += markers_queued.eq(markers_queued - 1)
        m.d.comb += [
            self.discarding.eq(self.abort | abort_pending | (markers_queued != 0)),
            got_byte.eq(rx_fifo.r_en & rx_fifo.r_rdy & ~rx_out.abort),
            got_abort.eq(rx_fifo.r_en & rx_fifo.r_rdy & rx_out.abort),
            self.staging.data.eq(byte),
        ]

        # -- CRC processor (one definition with the host: protocol.CRC) ----------------------
        m.submodules.crc = crc = protocol.CRC.create()
        m.d.comb += crc.data.eq(byte)

        # -- checks (combinational from the frame registers) ---------------------------------
        known_cmd = Signal()
        length_ok = Signal()
        address_ok = Signal()
        count = frame.word[:8]      # READ_BUF: the single payload byte
        with m.Switch(frame.cmd):
            with m.Case(Cmd.WRITE_REG):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(frame.length == 4),
                    address_ok.eq(frame.addr.matches(*protocol.WRITABLE_REGS)),
                ]
            with m.Case(Cmd.READ_REG):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(~frame.length.any()),
                    address_ok.eq(frame.addr < protocol.NUM_REGS),
                ]
            with m.Case(Cmd.WRITE_BUF):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(frame.length.any()),
                    address_ok.eq(frame.addr + frame.length <= self.input_bytes),
                ]
            with m.Case(Cmd.READ_BUF):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq((frame.length == 1) & count.any()),
                    address_ok.eq(frame.addr + count <= self.output_bytes),
                ]
            with m.Case(Cmd.WRITE_TARGETS):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(frame.length.any()),
                    address_ok.eq(frame.addr + frame.length <= self.target_bytes),
                ]
            with m.Case(Cmd.START, Cmd.READ_RESULT, Cmd.START_PROGRAM):
                m.d.comb += [
                    known_cmd.eq(1),
                    length_ok.eq(~frame.length.any()),
                    address_ok.eq(1),   # ADDR is ignored
                ]

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

        # -- the receiver FSM --------------------------------------------------------------
        def take_byte(next_state, *updates):
            """A state reading a frame byte: drop the frame, or apply `updates` with the byte
            and go to `next_state`."""
            with m.If(drop_frame):
                m.next = "HUNT"
            with m.Elif(got_byte):
                m.d.sync += updates
                m.next = next_state

        with m.FSM(name="receiver") as fsm:
            with m.State("HUNT"):
                # Skip anything that is not SYNC (resynchronisation); markers just pass.
                with m.If(got_byte & (byte == protocol.SYNC)):
                    m.d.comb += crc.start.eq(1)
                    m.next = "CMD"

            with m.State("CMD"):
                take_byte("ADDR_HI", frame.cmd.eq(byte))

            with m.State("ADDR_HI"):
                take_byte("ADDR_LO", frame.addr[8:].eq(byte))

            with m.State("ADDR_LO"):
                take_byte("LEN", frame.addr[:8].eq(byte))

            with m.State("LEN"):
                take_byte("PAYLOAD", frame.length.eq(byte), index.eq(0))
                with m.If(got_byte & ~byte.any()):
                    m.next = "CRC"

            with m.State("PAYLOAD"):
                # Every payload byte is staged; only WRITE_BUF/WRITE_TARGETS commit them.
                take_byte("PAYLOAD", frame.word.eq(Cat(byte, frame.word[:24])), index.eq(index + 1))
                with m.If(got_byte & (index == frame.length - 1)):
                    m.next = "CRC"

            with m.State("CRC"):
                take_byte("DELIVER")
                with m.If(got_byte):
                    # The checks, in order: the first that fails is the frame's error.
                    with m.If(byte != crc.crc):
                        m.d.sync += frame.error.eq(Error.BAD_CRC)
                    with m.Elif(~known_cmd):
                        m.d.sync += frame.error.eq(Error.BAD_CMD)
                    with m.Elif(~length_ok):
                        m.d.sync += frame.error.eq(Error.BAD_LEN)
                    with m.Elif(~address_ok):
                        m.d.sync += frame.error.eq(Error.BAD_ADDR)
                    with m.Else():
                        m.d.sync += frame.error.eq(0)

            with m.State("DELIVER"):
                # Offered until answered: the executor checks it in the clock it arrives.
                with m.If(self.frames.ready):
                    m.next = "HUNT"

        # Every state but DELIVER reads the rx FIFO; CMD to PAYLOAD feed the CRC.
        header = fsm.ongoing("CMD") | fsm.ongoing("ADDR_HI") | fsm.ongoing("ADDR_LO")
        m.d.comb += [
            self.frames.valid.eq(fsm.ongoing("DELIVER")),
            rx_fifo.r_en.eq(~fsm.ongoing("DELIVER")),
            in_frame.eq(header | fsm.ongoing("LEN") | fsm.ongoing("PAYLOAD") |
                        fsm.ongoing("CRC")),
            crc.valid.eq(got_byte & (header | fsm.ongoing("LEN") | fsm.ongoing("PAYLOAD"))),
            self.staging.en.eq(got_byte & fsm.ongoing("PAYLOAD")),
        ]

        # -- the drop counter (clear_errors wins over a same-cycle increment) ----------------
        with m.If(self.clear_errors):
            m.d.sync += self.dropped.eq(0)
        with m.Elif(drop_frame):
            m.d.sync += self.dropped.eq(saturating_increment(self.dropped))

        return m
