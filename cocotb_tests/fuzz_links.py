"""Pin-level host links for the fuzz bench (`cocotb_tests/test_fuzz.py`), able to break the rules
(picked by `xbarflow.cocotb_tests.transports.make_transport(..., "fuzz")`).

* `SpiFuzzLink`: the bit-banged `SpiMaster` (same timing as the reference BFM) plus what a
  misbehaving host does: chip-select raised after 1-7 bits of a byte, chip-select held low
  while idle. Every byte clocked in (MISO) is handed to a `ResponseParser`.
* `UartFuzzLink`: drives the chip's RX pin directly (so a character can have a low stop bit,
  or a glitch can be shorter than half a bit) and samples the chip's TX pin in the background.
* `ResponseParser`: splits the bytes coming back into response frames (SYNC STATUS LEN
  payload CRC, with `xbarflow.hdl.protocol.FrameSplitter`). Between frames only 0x00 filler may
  appear on SPI, and nothing on UART; anything else is recorded as an error.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, Timer

from .spi_master import SpiMaster
from xbarflow.hdl import protocol

__all__ = ["ResponseParser", "SpiFuzzLink", "UartFuzzLink", "split_frames"]


class ResponseParser:
    """Response frames out of a byte stream (`push` one byte at a time)."""

    def __init__(self, filler: bool):
        self.filler = filler          # SPI: 0x00 between frames is the idle filler
        self.frames: list[bytes] = []
        self.errors: list[str] = []
        self._splitter = protocol.FrameSplitter("response")
        self.bytes_seen = 0

    def push(self, byte: int) -> None:
        self.bytes_seen += 1
        if (not self._splitter.in_frame and byte != protocol.SYNC
                and not (self.filler and byte == 0)):
            self.errors.append(f"byte 0x{byte:02x} outside a response frame")
        frame = self._splitter.push(byte)
        if frame is not None:
            self.frames.append(frame)

    def push_all(self, data: bytes) -> None:
        for b in data:
            self.push(b)

    @property
    def idle(self) -> bool:
        """Not inside a frame."""
        return not self._splitter.in_frame

    @property
    def partial(self) -> bytes:
        return self._splitter.partial


def split_frames(data: bytes) -> list[bytes]:
    """The model's concatenated response frames, one by one."""
    p = ResponseParser(filler=False)
    p.push_all(data)
    assert p.idle and not p.errors, f"malformed model output {bytes(data).hex()}"
    return p.frames


class SpiFuzzLink:
    """SPI mode 0 host on the chip's pins, `SpiMaster` timing, plus rule-breaking moves."""

    def __init__(self, dut, half_period_ns: float):
        self.dut = dut
        self.master = SpiMaster(dut.spi_sclk, dut.spi_cs_n, dut.spi_mosi, dut.spi_miso,
                                half_period=half_period_ns)
        self.half = Timer(half_period_ns, unit="ns")
        self.byte_ns = 16 * half_period_ns

    async def select(self) -> None:
        await self.master.select()

    async def deselect(self) -> None:
        await self.master.deselect()

    async def transfer(self, data: bytes, parser: ResponseParser) -> None:
        parser.push_all(await self.master.transfer(data))

    async def partial_byte(self, value: int, nbits: int) -> None:
        """Clock `nbits` (< 8) bits of one byte, MSB first; the caller then raises CS."""
        m = self.master
        for shift in range(nbits - 1, -1, -1):
            m.mosi.value = (value >> shift) & 1
            await self.half
            m.sclk.value = 1
            await self.half
            m.sclk.value = 0


class UartFuzzLink:
    """8N1 host on the chip's UART pins: drives `uart_rx` bit by bit, samples `uart_tx`."""

    def __init__(self, dut, bit_ns: float, parser: ResponseParser):
        self.dut = dut
        self.rx_pin, self.tx_pin = dut.uart_rx, dut.uart_tx
        self.bit_ns = bit_ns
        self.char_ns = 10 * bit_ns
        self.parser = parser
        self.errors: list[str] = []
        self._runs = {n: Timer(n * bit_ns, unit="ns") for n in range(1, 11)}
        self.rx_pin.value = 1
        self._sampler = None

    def start(self) -> None:
        self._sampler = cocotb.start_soon(self._sample())

    async def char(self, byte: int, stop: int = 1) -> None:
        """One character: start bit, 8 data bits LSB first, stop bit `stop`. A low stop bit is
        followed by one idle (high) bit, so the chip's receiver leaves its break state."""
        bits = [0, *((byte >> i) & 1 for i in range(8)), stop]
        pin, i = self.rx_pin, 0
        while i < 10:                      # one await per run of equal bits
            j = i
            while j < 10 and bits[j] == bits[i]:
                j += 1
            pin.value = bits[i]
            await self._runs[j - i]
            i = j
        if not stop:
            pin.value = 1
            await self._runs[1]

    async def send(self, data: bytes) -> None:
        for b in data:
            await self.char(b)

    async def glitch(self, low_ns: float) -> None:
        """A low pulse on RX of `low_ns` (far below half a bit), then two idle bits."""
        self.rx_pin.value = 0
        await Timer(low_ns, unit="ns")
        self.rx_pin.value = 1
        await self._runs[2]

    async def _sample(self) -> None:
        pin = self.tx_pin
        # Own trigger objects: a trigger awaited by two coroutines at once fires for both at
        # the first one's time (the driver awaits its own bit timers meanwhile).
        half = Timer(self.bit_ns / 2, unit="ns")
        bit = Timer(self.bit_ns, unit="ns")
        while True:
            await FallingEdge(pin)
            await half
            if int(pin.value):
                self.errors.append("glitch on the chip's TX line")
                continue
            value = 0
            for i in range(8):
                await bit
                value |= int(pin.value) << i
            await bit
            if not int(pin.value):
                self.errors.append(f"framing error on the chip's TX line (byte 0x{value:02x})")
            self.parser.push(value)
