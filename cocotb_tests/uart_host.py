"""The host `Transport` over UART (8N1), on cocotbext-uart's source and sink.

The chip's UART receives on `uart_rx` and answers on `uart_tx`; the sink runs in the
background, so a response is collected however soon it starts. The chip answers every
request with exactly one response frame, split out of the bytes by `xbarflow.hdl.protocol.FrameSplitter`
like on the SPI transport.
"""

from __future__ import annotations

from cocotbext.uart import UartSink, UartSource

from xbarflow.hdl import protocol

__all__ = ["UartTransport"]


class UartTransport:
    """`xbarflow.flow.host.driver.Transport` over a UART link to the chip (8 data bits, no parity, 1 stop)."""

    def __init__(self, to_chip, from_chip, bit_time_ns: int, max_bytes: int = 512):
        if bit_time_ns % 2:
            raise ValueError(f"UART bit time must be an even number of ns, got {bit_time_ns}")
        baud = 1e9 / bit_time_ns
        if int(1e9 / baud) != bit_time_ns or int(1e9 / baud / 2) * 2 != bit_time_ns:
            raise ValueError(f"UART bit time {bit_time_ns} ns is not exact in cocotbext-uart's timers")
        to_chip.value = 1   # line idles high
        self.source = UartSource(to_chip, baud=baud, bits=8, stop_bits=1)
        self.sink = UartSink(from_chip, baud=baud, bits=8, stop_bits=1)
        self.max_bytes = max_bytes

    async def _byte(self) -> int:
        return (await self.sink.read(1))[0]

    async def exchange(self, request: bytes) -> bytes:
        self.sink.clear()
        await self.source.write(request)
        responses = protocol.FrameSplitter("response")
        before_sync = 0
        while True:
            frame = responses.push(await self._byte())
            if frame is not None:
                return frame
            if not responses.in_frame:
                before_sync += 1
                if before_sync == self.max_bytes:
                    raise protocol.ProtocolError(f"no response: no SYNC within {self.max_bytes} bytes")
