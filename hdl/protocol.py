"""The host command layer shared by SPI and UART, and by the RTL and the host driver.

Request frame (host -> chip), bytes in order::

    SYNC  CMD  ADDR_HI  ADDR_LO  LEN  payload[LEN]  CRC

Response frame (chip -> host)::

    SYNC  STATUS  LEN  payload[LEN]  CRC

CRC is CRC-8/AUTOSAR over every byte after SYNC and before CRC. One set of parameters
(`CRC_POLYNOMIAL`, ...) gives the RTL processor (`CRC`, an `amaranth.lib.crc` algorithm, built
on first use so that the host side never imports amaranth) and the Python reference (`crc8`, a
byte table of the same algorithm), so both sides share one definition of the frame check.

A request with a bad CRC, an unknown command, a bad length or an out-of-range address is
answered with NACK and an `Error` code, counted in an error register, and changes nothing.
The error registers (ERR_*) saturate at 2^32 - 1: they never wrap back to a small count.
Bytes that arrive while the parser hunts for SYNC are skipped (resynchronisation). A frame
that stops arriving for `FRAME_TIMEOUT_CYCLES` clocks is dropped and counted as a timeout
(for SPI, raising chip-select also drops a partial frame).

Programming: the host fills the target memory with WRITE_TARGETS, then sends START_PROGRAM
(the one way to start it; CTRL has no programming bit, so a busy chip always answers with
NACK BUSY instead of silently ignoring the request) and polls STATUS until bit4 (write_ok)
is set and bit3 (programming busy) is clear. The target memory holds one tile: a chip of
several tiles (`ChipConfig.tiles`) is programmed tile by tile, each with PROG_TILE = t, then
WRITE_TARGETS of that tile's codes, then START_PROGRAM (the programmer latches PROG_TILE at
the start and drives it on ``prog_tile_sel`` for the whole run; the PROG_* counters are the
run's, i.e. that tile's). While an inference or a programming run is
going on, START, START_PROGRAM, WRITE_BUF and WRITE_TARGETS are answered with NACK BUSY.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from xbarflow.flow.core.errors import XbarflowError

__all__ = [
    "CHIP_ID", "CRC", "CRC_INITIAL", "CRC_POLYNOMIAL", "CRC_XOR_OUTPUT", "CTRL_CLEAR_ERRORS", "CTRL_START", "Cmd", "Error", "FRAME_TIMEOUT_CYCLES",
    "FrameSplitter", "MAX_PAYLOAD", "NUM_REGS", "ProtocolError", "REQUEST_HEADER_BYTES",
    "RESPONSE_HEADER_BYTES", "Reg", "Response", "STATUS_BUSY", "STATUS_DONE", "STATUS_IRQ",
    "STATUS_PROG_BUSY", "STATUS_WRITE_OK", "SYNC", "Status", "WRITABLE_REGS", "crc8",
    "decode_response", "encode_request", "encode_response", "geometry_word", "request_length",
    "response_length",
]

SYNC = 0xA5
MAX_PAYLOAD = 255
FRAME_TIMEOUT_CYCLES = 1 << 16   # a stalled partial frame is dropped after this many clocks
CHIP_ID = 0x58424631             # "XBF1"

#: CRC-8/AUTOSAR (amaranth's catalog.CRC8_AUTOSAR): 8 bits, nothing reflected, MSB first
CRC_POLYNOMIAL, CRC_INITIAL, CRC_XOR_OUTPUT = 0x2F, 0xFF, 0xFF


class _CrcParameters:
    """The frame check as `amaranth.lib.crc.Parameters` (8-bit data words), for the RTL's CRC
    processor (`CRC.create()`): every attribute is the amaranth object's, built on first use."""

    def __getattr__(self, name: str):
        params = self.__dict__.get("params")
        if params is None:
            from amaranth.lib.crc import Algorithm   # why: amaranth takes ~0.25 s to import; hosts need only crc8

            params = self.__dict__["params"] = Algorithm(
                crc_width=8, polynomial=CRC_POLYNOMIAL, initial_crc=CRC_INITIAL, reflect_input=False,
                reflect_output=False, xor_output=CRC_XOR_OUTPUT)(8)
        return getattr(params, name)


CRC = _CrcParameters()


def _byte_table() -> tuple[int, ...]:
    """register = T[register ^ byte]: the CRC register after one byte shifted in MSB first
    from `register`, for an 8-bit CRC that reflects nothing."""
    table = []
    for byte in range(256):
        register = byte
        for _ in range(8):
            register = ((register << 1) ^ CRC_POLYNOMIAL if register & 0x80 else register << 1) & 0xFF
        table.append(register)
    return tuple(table)


# A co-simulation computes ~8 frame CRCs per image: a table lookup per byte, not 8 shifts
_CRC_TABLE = _byte_table()


def crc8(data: bytes) -> int:
    register, table = CRC_INITIAL, _CRC_TABLE
    for byte in bytes(data):
        register = table[register ^ byte]
    return register ^ CRC_XOR_OUTPUT


class Cmd(enum.IntEnum):
    WRITE_REG = 0x01    # ADDR = register, LEN = 4, payload = value (big endian)
    READ_REG = 0x02     # ADDR = register, LEN = 0 -> ACK payload 4 bytes (big endian)
    WRITE_BUF = 0x03    # ADDR = byte offset into the input buffer, LEN = n >= 1, payload = bytes
    READ_BUF = 0x04     # ADDR = byte offset into the output buffer, LEN = 1, payload = count
    START = 0x05        # LEN = 0: start one inference on the input buffer (NACK BUSY if busy)
    READ_RESULT = 0x06  # LEN = 0 -> ACK payload [STATUS low byte, RESULT low byte]
    WRITE_TARGETS = 0x07  # ADDR = byte offset into the target memory (global_row * tile_cols
                          # + col, one level code per byte), LEN = n >= 1, payload = codes
    START_PROGRAM = 0x08  # LEN = 0: program the crossbar from the target memory (write-verify)


class Status(enum.IntEnum):
    ACK = 0x06
    NACK = 0x15


class Error(enum.IntEnum):
    """Payload byte of a NACK."""
    BAD_CRC = 0x01
    BAD_CMD = 0x02
    BAD_LEN = 0x03
    BAD_ADDR = 0x04
    BUSY = 0x05


class Reg(enum.IntEnum):
    """32-bit registers addressed by READ_REG / WRITE_REG."""
    ID = 0             # RO CHIP_ID
    CTRL = 1           # W: bit0 start inference, bit1 clear error counters (self-clearing)
    STATUS = 2         # RO: bit0 busy, bit1 done (result valid), bit2 irq pending,
                       #     bit3 programming busy, bit4 write_ok (last programming finished)
    RESULT = 3         # RO: class index of the last inference
    CYCLES_TOTAL = 4   # RO: clocks of the last inference, START to DONE
    CYCLES_DRIVE = 5   # RO: clocks in DRIVE (analog settling) in the last inference
    CYCLES_CONVERT = 6 # RO: clocks in CONVERT (ADC) in the last inference
    CYCLES_ARGMAX = 7  # RO: clocks in ARGMAX in the last inference
    INFERENCES = 8     # RO: inferences completed since reset
    FRAMES_OK = 9      # RO: well-formed frames executed
    ERR_CRC = 10       # RO: frames dropped for a bad CRC
    ERR_CMD = 11       # RO: frames dropped for an unknown command
    ERR_LEN = 12       # RO: frames dropped for a bad length or address
    ERR_TIMEOUT = 13   # RO: partial frames dropped (timeout, or SPI chip-select raised)
    SCRATCH = 14       # RW: free for the host (tests read it back)
    GEOMETRY = 15      # RO: inputs[15:0] | outputs[23:16] | dac_bits[27:24] | (adc_bits-1)[31:28]
    PROG_PULSES = 16   # RO: program pulses issued in the current/last programming run
    PROG_FAILURES = 17 # RO: cells given up at the pulse timeout in the current/last run
    PROG_CYCLES = 18   # RO: clocks of the current/last programming run, start to done
    PROG_STEPS = 19    # RO: cell steps finished in the current/last run (progress; the run
                       #     has max(partition_rows) * tile_cols steps)
    ERR_FRAMING = 20   # RO: UART characters dropped for a low stop bit (always 0 on SPI);
                       #     cleared with the other ERR_* counters by CTRL bit1
    REQUANT_MULT = 21  # RW: ReLU requantiser multiplier of hidden layer l at bits [8l, 8l+8)
                       #     (calibrated in training; the host writes it before inferring)
    PROG_TILE = 22     # RW: tile the next START_PROGRAM programs (prog_tile_sel, in
                       #     ChipConfig.tiles order); a write of an index >= the chip's tiles
                       #     is ignored (the register keeps its value), so read it back
    CYCLES_LOAD_WINDOW = 23  # RO, layered networks (0 on a dense chip): clocks in LOAD_WINDOW,
                             #     SLIDE_WINDOW and LOAD_WINDOW_END in the last inference
    CYCLES_ACCUMULATE = 24   # RO, layered networks (0 on a dense chip): clocks in ACCUMULATE
    CYCLES_ACTIVATE = 25     # RO, layered networks (0 on a dense chip): clocks in ACTIVATE
    CYCLES_POOL = 26         # RO, layered networks (0 on a dense chip): clocks in POOL


STATUS_BUSY = 1 << 0
STATUS_DONE = 1 << 1
STATUS_IRQ = 1 << 2
STATUS_PROG_BUSY = 1 << 3
STATUS_WRITE_OK = 1 << 4
CTRL_START = 1 << 0
CTRL_CLEAR_ERRORS = 1 << 1
NUM_REGS = len(Reg)
WRITABLE_REGS = (Reg.CTRL, Reg.SCRATCH, Reg.REQUANT_MULT, Reg.PROG_TILE)


def geometry_word(cfg) -> int:
    """GEOMETRY register value for a `ChipConfig` (layout in `Reg.GEOMETRY`), so a host can
    check it talks to the chip it expects."""
    return ((cfg.rows & 0xFFFF) | (cfg.outputs & 0xFF) << 16 | (cfg.quant.dac_bits & 0xF) << 24
            | ((cfg.adc.bits - 1) & 0xF) << 28)


class ProtocolError(XbarflowError):
    """A response that is malformed, or a NACK where an ACK was expected."""


def encode_request(cmd: int, addr: int = 0, payload: bytes = b"") -> bytes:
    payload = bytes(payload)
    if not 0 <= addr <= 0xFFFF:
        raise ValueError(f"address {addr} does not fit in 16 bits")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = bytes([cmd & 0xFF, addr >> 8, addr & 0xFF, len(payload)]) + payload
    return bytes([SYNC]) + body + bytes([crc8(body)])


def encode_response(status: int, payload: bytes = b"") -> bytes:
    body = bytes([status, len(payload)]) + bytes(payload)
    return bytes([SYNC]) + body + bytes([crc8(body)])


@dataclass(frozen=True)
class Response:
    status: Status
    payload: bytes

    @property
    def ok(self) -> bool:
        return self.status == Status.ACK

    @property
    def error(self) -> Error | None:
        return None if self.ok else Error(self.payload[0])


def decode_response(frame: bytes) -> Response:
    """Decode one complete response frame (starting at SYNC)."""
    if len(frame) < 4 or frame[0] != SYNC:
        raise ProtocolError(f"response too short or without SYNC: {frame.hex()}")
    status, length = frame[1], frame[2]
    if len(frame) != 4 + length:
        raise ProtocolError(f"response length {len(frame)} does not match LEN={length}")
    if crc8(frame[1:-1]) != frame[-1]:
        raise ProtocolError(f"response CRC mismatch: {frame.hex()}")
    if status not in (Status.ACK, Status.NACK):
        raise ProtocolError(f"unknown response status 0x{status:02x}")
    if status == Status.NACK and length != 1:
        raise ProtocolError("NACK without a one-byte error code")
    return Response(Status(status), bytes(frame[3:-1]))


REQUEST_HEADER_BYTES = 5    # SYNC CMD ADDR_HI ADDR_LO LEN
RESPONSE_HEADER_BYTES = 3   # SYNC STATUS LEN


def request_length(header: bytes) -> int:
    """Total frame length from the first five bytes (SYNC, CMD, ADDR_HI, ADDR_LO, LEN)."""
    return 6 + header[4]


def response_length(header: bytes) -> int:
    """Total frame length from the first three bytes (SYNC, STATUS, LEN)."""
    return 4 + header[2]


class FrameSplitter:
    """Splits a byte stream into frames the way the chip's receiver does: while hunting, any
    byte but SYNC is skipped; from SYNC on, the header up to LEN gives the frame's length
    (`request_length` for ``"request"`` frames, host to chip, `response_length` for
    ``"response"`` frames, chip to host). No check is made (CRC, command, status): a
    complete frame is returned as it came.

    >>> s = FrameSplitter("response")
    >>> frame = encode_response(Status.ACK, bytes([7]))
    >>> s.feed(bytes([0x00]) + frame[:3])      # a filler byte is skipped, then a header
    []
    >>> s.in_frame, s.partial == frame[:3]
    (True, True)
    >>> s.feed(frame[3:]) == [frame]
    True
    """

    def __init__(self, direction: str = "request"):
        if direction == "request":
            self._header, self._length = REQUEST_HEADER_BYTES, request_length
        elif direction == "response":
            self._header, self._length = RESPONSE_HEADER_BYTES, response_length
        else:
            raise ValueError(f"direction must be 'request' or 'response', not {direction!r}")
        self.direction = direction
        self._frame: bytearray | None = None   # the partial frame, from SYNC on

    def push(self, byte: int) -> bytes | None:
        """Take one byte; return the frame it completes, else None."""
        if self._frame is None:
            if byte == SYNC:                  # anything else is skipped while hunting
                self._frame = bytearray([byte])
            return None
        self._frame.append(byte)
        if len(self._frame) >= self._header and len(self._frame) == self._length(self._frame):
            frame, self._frame = bytes(self._frame), None
            return frame
        return None

    def feed(self, data: bytes) -> list[bytes]:
        """Take every byte of `data`; return the frames they complete, in order."""
        frames = []
        for byte in bytes(data):
            frame = self.push(byte)
            if frame is not None:
                frames.append(frame)
        return frames

    @property
    def in_frame(self) -> bool:
        """A frame has started (SYNC seen) and is not complete yet."""
        return self._frame is not None

    @property
    def partial(self) -> bytes:
        """The bytes of the frame under way, from SYNC on (empty while hunting)."""
        return bytes(self._frame or b"")

    def drop_partial(self) -> bool:
        """Forget the frame under way (a frame timeout, or SPI chip-select raised) and hunt
        again; True if there was one."""
        dropped, self._frame = self._frame is not None, None
        return dropped
