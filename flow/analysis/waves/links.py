"""Host-link decoding: SPI and UART pin traces into bytes, and bytes into command-layer frames.

Frames are those of `xbarflow.hdl.protocol`: requests ``SYNC CMD ADDR LEN payload CRC`` (host -> chip),
responses ``SYNC STATUS LEN payload CRC`` (chip -> host), each checked against its CRC. SPI is
mode 0, MSB first, sampled at rising SCLK while CS is low; UART is 8N1, LSB first, with the bit
time the caller gives (``host.uart_divider`` clocks per bit).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Iterator

from xbarflow.hdl import protocol

from .format import hex_bytes
from .reader import Trace

__all__ = ["Frame", "HostTraffic", "TimedByte", "decode_spi", "decode_uart", "parse_frames"]


@dataclass(frozen=True)
class TimedByte:
    time: int
    value: int
    error: bool = False      # UART framing error (stop bit low)


@dataclass(frozen=True)
class Frame:
    """One command-layer frame seen on a host link."""
    time: int
    link: str                # spi | uart
    direction: str           # request (host -> chip) | response (chip -> host)
    raw: bytes
    complete: bool
    crc_ok: bool

    @property
    def code(self) -> int | None:
        return self.raw[1] if len(self.raw) > 1 else None

    @property
    def addr(self) -> int | None:
        if self.direction != "request" or len(self.raw) < 4:
            return None
        return self.raw[2] << 8 | self.raw[3]

    @property
    def payload(self) -> bytes:
        if self.direction == "request":
            return bytes(self.raw[5:-1]) if self.complete else bytes(self.raw[5:])
        return bytes(self.raw[3:-1]) if self.complete else bytes(self.raw[3:])

    def describe(self) -> str:
        if self.direction == "request":
            try:
                name = protocol.Cmd(self.code).name
            except ValueError:
                name = f"CMD 0x{self.code:02x}" if self.code is not None else "?"
            text = name
            if self.addr is not None:
                if self.code in (protocol.Cmd.READ_REG, protocol.Cmd.WRITE_REG):
                    try:
                        text += f" {protocol.Reg(self.addr).name}"
                    except ValueError:
                        text += f" reg 0x{self.addr:04x}"
                elif self.code in (protocol.Cmd.WRITE_BUF, protocol.Cmd.READ_BUF) or self.addr:
                    text += f" addr=0x{self.addr:04x}"
        else:
            try:
                text = protocol.Status(self.code).name
            except ValueError:
                text = f"STATUS 0x{self.code:02x}" if self.code is not None else "?"
            if self.code == protocol.Status.NACK and self.payload:
                try:
                    text += f" {protocol.Error(self.payload[0]).name}"
                except ValueError:
                    text += f" error 0x{self.payload[0]:02x}"
        pl = self.payload
        if pl:
            text += f" len={len(pl)} [{hex_bytes(pl, 12)}]"
        if not self.complete:
            return text + "  (incomplete)"
        return text + ("  crc ok" if self.crc_ok else "  CRC BAD")


@dataclass
class HostTraffic:
    link: str
    bytes: dict[str, list[TimedByte]] = field(default_factory=lambda: {"request": [], "response": []})
    frames: list[Frame] = field(default_factory=list)
    windows: int = 0         # SPI chip-select windows
    framing_errors: int = 0  # UART

    def requests(self) -> list[Frame]:
        return [f for f in self.frames if f.direction == "request"]

    def responses(self) -> list[Frame]:
        return [f for f in self.frames if f.direction == "response"]

    def summary(self) -> str:
        rq, rs = self.requests(), self.responses()
        extra = (f"{self.windows} chip-select windows, " if self.link == "spi"
                 else f"{self.framing_errors} framing errors, ")
        return (f"{self.link.upper()}: {extra}{len(self.bytes['request'])} bytes host->chip, "
                f"{len(self.bytes['response'])} bytes chip->host; {len(rq)} requests "
                f"({sum(f.crc_ok for f in rq)} CRC ok), {len(rs)} responses "
                f"({sum(f.crc_ok for f in rs)} CRC ok)")


def _split_frames(data: bytes, direction: str) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, raw, complete) of each frame in a byte stream, split as the chip's receiver does
    (`protocol.FrameSplitter`); a frame cut off by the end of `data` comes last, incomplete."""
    splitter = protocol.FrameSplitter(direction)
    start = 0
    for k, byte in enumerate(data):
        hunting = not splitter.in_frame
        frame = splitter.push(byte)
        if hunting and splitter.in_frame:      # this byte is a frame's SYNC
            start = k
        if frame is not None:
            yield start, frame, True
    if splitter.in_frame:
        yield start, splitter.partial, False


def parse_frames(data: list[TimedByte], direction: str, link: str) -> list[Frame]:
    """Command-layer frames in a byte stream, each stamped with the time of its SYNC byte and
    checked against its CRC (xbarflow.hdl.protocol)."""

    frames = []
    for k, raw, complete in _split_frames(bytes(b.value for b in data), direction):
        crc_ok = False
        if complete:
            if direction == "request":
                crc_ok = protocol.encode_request(raw[1], raw[2] << 8 | raw[3], raw[5:-1]) == raw
            else:
                crc_ok = protocol.crc8(raw[1:-1]) == raw[-1]
        frames.append(Frame(data[k].time, link, direction, raw, complete, crc_ok))
    return frames


def decode_spi(sclk: Trace, cs_n: Trace, mosi: Trace, miso: Trace, start: int = 0,
               end: int = 1 << 62) -> HostTraffic:
    """SPI mode 0, MSB first: both data pins sampled just before each rising SCLK while CS is
    low; a chip-select window ends a partial byte and (as in the chip) any partial frame."""
    traffic = HostTraffic("spi")
    cs_edges = [t for t in cs_n.falling_edges() if start <= t <= end]
    rises = sclk.rising_edges()
    cs_times = cs_n.times
    for t_sel in cs_edges:
        # the window lasts until CS rises again
        k = bisect.bisect_right(cs_times, t_sel)
        t_end = next((cs_times[j] for j in range(k, len(cs_times)) if cs_n.values[j] != "0"), 1 << 62)
        bits_m, bits_s, first = [], [], None
        got = {"request": [], "response": []}
        for t in rises[bisect.bisect_right(rises, t_sel):bisect.bisect_left(rises, t_end)]:
            first = t if not bits_m else first
            bits_m.append(mosi.at(t, before=True) or 0)
            bits_s.append(miso.at(t, before=True) or 0)
            if len(bits_m) == 8:
                got["request"].append(TimedByte(first, _byte(bits_m)))
                got["response"].append(TimedByte(first, _byte(bits_s)))
                bits_m, bits_s = [], []
        traffic.windows += 1
        for direction in ("request", "response"):
            traffic.bytes[direction] += got[direction]
            traffic.frames += parse_frames(got[direction], direction, "spi")
    traffic.frames.sort(key=lambda f: (f.time, f.direction != "request"))
    return traffic


def decode_uart(line: Trace, bit_ticks: int, start: int = 0, end: int = 1 << 62) -> list[TimedByte]:
    """8N1, LSB first: a start bit is a falling edge, bits are sampled in their middles."""
    out: list[TimedByte] = []
    falls = line.falling_edges()
    k = bisect.bisect_left(falls, start)
    while k < len(falls) and falls[k] <= end:
        t0 = falls[k]
        if line.at(t0 + bit_ticks // 2) != 0:      # glitch, not a start bit
            k += 1
            continue
        value = 0
        for b in range(8):
            value |= (line.at(t0 + (2 * b + 3) * bit_ticks // 2) or 0) << b
        stop_t = t0 + 19 * bit_ticks // 2
        out.append(TimedByte(t0, value, error=line.at(stop_t) != 1))
        k = bisect.bisect_right(falls, stop_t)
    return out


def _byte(bits: list[int]) -> int:
    """Bits MSB first -> the byte."""
    v = 0
    for b in bits:
        v = v << 1 | b
    return v
