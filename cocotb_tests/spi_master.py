"""SPI master BFM for cocotb 2.1 (mode 0, MSB first), and the host `Transport` over it.

Timing, matching `hdl.spi.SPISlave` (all in system clocks at SCLK = clk/4, half period 2):
MOSI is set while SCLK is low, SCLK rises after one half period, MISO is sampled at that
rising edge, SCLK falls after another half period. CS falls 1.5 SCLK periods before the
first rising edge (the slave needs >= 4 clocks), and stays high >= 1 SCLK period between
windows (the slave needs >= 3 clocks).
"""

from __future__ import annotations

from cocotb.triggers import Timer

from hdl import protocol


class SpiMaster:
    """Bit-banged SPI master on four DUT handles.

    ``half_period`` is the SCLK half period in ns (e.g. ``clk_period_ns * clk_div / 2``).
    """

    def __init__(self, sclk, cs_n, mosi, miso, half_period: float):
        self.sclk, self.cs_n, self.mosi, self.miso = sclk, cs_n, mosi, miso
        self.half_period = half_period
        # Triggers built once and awaited again and again (cocotb allows it; it saves a
        # Timer construction per SPI edge, the bulk of this BFM's own Python time).
        self._half_timer = Timer(half_period, unit="ns")
        self._full_timer = Timer(2 * half_period, unit="ns")
        sclk.value = 0
        cs_n.value = 1
        mosi.value = 0

    def _half(self) -> Timer:
        return self._half_timer

    async def select(self) -> None:
        self.cs_n.value = 0
        await self._full_timer                          # CS setup (+ the first bit's half)

    async def deselect(self) -> None:
        await self._half()                              # CS hold after the last falling edge
        self.cs_n.value = 1
        await self._full_timer                          # CS high time between windows

    async def transfer(self, data: bytes) -> bytes:
        """Full duplex: send ``data``, return the bytes read at the same time."""
        sclk, mosi, miso, half = self.sclk, self.mosi, self.miso, self._half_timer
        received = bytearray()
        for byte in data:
            value = 0
            for shift in range(7, -1, -1):
                mosi.value = (byte >> shift) & 1
                await half
                value = (value << 1) | int(miso.value)  # sampled as SCLK rises
                sclk.value = 1
                await half
                sclk.value = 0
            received.append(value)
        return bytes(received)


class SpiTransport:
    """`flow.host.Transport` over a `SpiMaster`: one chip-select window per exchange.

    The request is sent, then 0x00 filler bytes (not SYNC, so the chip's parser skips them)
    are clocked until a whole response frame has come back (`hdl.protocol.FrameSplitter`:
    SYNC, then as many bytes as its LEN says).
    """

    def __init__(self, master: SpiMaster, max_filler: int = 512):
        self.master = master
        self.max_filler = max_filler

    async def exchange(self, request: bytes) -> bytes:
        master = self.master
        responses = protocol.FrameSplitter("response")
        await master.select()
        try:
            await master.transfer(request)
            before_sync = 0
            while True:
                frame = responses.push((await master.transfer(b"\x00"))[0])
                if frame is not None:
                    return frame
                if not responses.in_frame:
                    before_sync += 1
                    if before_sync == self.max_filler:
                        raise protocol.ProtocolError(
                            f"no response: no SYNC within {self.max_filler} filler bytes")
        finally:
            await master.deselect()
