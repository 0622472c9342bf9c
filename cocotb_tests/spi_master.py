"""SPI master BFM for cocotb 2.1 (mode 0, MSB first), and the host `Transport` over it.

Timing, matching `xbarflow.hdl.spi.SPISlave` (all in system clocks at SCLK = clk/4, half period 2):
MOSI is set while SCLK is low, SCLK rises after one half period, MISO is sampled at that
rising edge, SCLK falls after another half period. CS falls 1.5 SCLK periods before the
first rising edge (the slave needs >= 4 clocks), and stays high >= 1 SCLK period between
windows (the slave needs >= 3 clocks).

By default every edge sits at the same phase of the chip clock (the bench starts on a falling
clock edge and every delay is a whole number of clocks). With `SpiJitter` the edges are
asynchronous to the chip clock, as a real host's are: every half period, CS setup, hold and
high time is stretched by a seeded random amount in [0, jitter] (so never shorter than the
spec), and every chip-select window starts a random time in [0, phase] late. Given the chip
clock (`watch_clock`), the master counts the phase of every SCLK and CS edge relative to the
clock's rising edge in `coverage`: the slave's sampling latency is (3 - phase) clocks (first
synchroniser flop at the next rising edge, two more clocks to the sample), so the phase
buckets are latency buckets from 3 down to 2 clocks. An edge exactly on a rising clock edge is
moved 1 ps later: that case is a scheduling race in an RTL simulator, not a latency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from xbarflow.hdl import protocol

__all__ = ["JITTER_STREAM", "SpiJitter", "SpiMaster", "SpiTransport"]

#: Extra key word of the jitter generator (b"SPI"), so it never shares a stream with the ADC
#: noise draws keyed [seed, tile, event] even when given the same seed.
JITTER_STREAM = 0x535049


@dataclass(frozen=True)
class SpiJitter:
    """Seeded timing of an SPI host asynchronous to the chip clock (see the module docstring)."""
    jitter_ns: float       # each half period / CS time is stretched by U[0, jitter_ns]
    phase_ns: float        # each chip-select window starts U[0, phase_ns] late
    seed: int              # key of the draws (with JITTER_STREAM)

    @classmethod
    def from_job(cls, spec: dict) -> "SpiJitter":
        return cls(float(spec.get("jitter_ns", 0.0)), float(spec.get("phase_ns", 0.0)),
                   int(spec["seed"]))


class SpiMaster:
    """Bit-banged SPI master on four DUT handles.

    ``half_period`` is the SCLK half period in ns (e.g. ``clk_period_ns * clk_div / 2``); with
    ``jitter`` it is the shortest half period, every one is longer by a random amount.
    """

    def __init__(self, sclk, cs_n, mosi, miso, half_period: float, *, jitter: SpiJitter | None = None):
        self.sclk, self.cs_n, self.mosi, self.miso = sclk, cs_n, mosi, miso
        self.half_period = half_period
        # Triggers built once and awaited again and again (cocotb allows it; it saves a
        # Timer construction per SPI edge, the bulk of this BFM's own Python time).
        self._half_timer = Timer(half_period, unit="ns")
        self._full_timer = Timer(2 * half_period, unit="ns")
        self.jitter = jitter
        self.coverage: dict[str, list[int]] | None = None
        self._clock: tuple[int, int] | None = None
        if jitter is not None:
            self._rng = np.random.default_rng([jitter.seed, JITTER_STREAM])
            self._half_ps = round(half_period * 1000)
            self._jitter_ps = round(jitter.jitter_ns * 1000)
            self._phase_ps = round(jitter.phase_ns * 1000)
            self._draws: list[int] = []
        sclk.value = 0
        cs_n.value = 1
        mosi.value = 0

    # -- asynchronous timing -----------------------------------------------------------------------
    def watch_clock(self, rising_edge_ps: int, period_ps: int, bins: int = 8) -> None:
        """Count each edge's phase relative to the chip clock (a rising edge at
        `rising_edge_ps`, period `period_ps`) in `bins` buckets per clock period."""
        self._clock = (round(rising_edge_ps), round(period_ps))
        self.coverage = {kind: [0] * bins for kind in ("sclk_rise", "sclk_fall", "cs_fall", "cs_rise")}

    def _extra_ps(self, top_ps: int) -> int:
        if top_ps <= 0:
            return 0
        if not self._draws:
            self._draws = self._rng.random(4096).tolist()
        return int(self._draws.pop() * (top_ps + 1))

    def _timer(self, base_ps: int, top_ps: int) -> Timer:
        """A delay of base + U[0, top] ps whose end is not on a rising clock edge."""
        delay = max(1, base_ps + self._extra_ps(top_ps))
        if self._clock is not None:
            ref, period = self._clock
            if (round(get_sim_time("ps")) + delay - ref) % period == 0:
                delay += 1
        return Timer(delay, unit="ps")

    def _edge(self, kind: str) -> None:
        if self.coverage is not None:
            ref, period = self._clock
            bins = self.coverage[kind]
            bins[(round(get_sim_time("ps")) - ref) % period * len(bins) // period] += 1

    def _half(self):
        if self.jitter is None:
            return self._half_timer
        return self._timer(self._half_ps, self._jitter_ps)

    def _full(self):
        if self.jitter is None:
            return self._full_timer
        return self._timer(2 * self._half_ps, self._jitter_ps)

    # -- the bus -----------------------------------------------------------------------------------
    async def select(self) -> None:
        if self.jitter is not None and self._phase_ps:
            await self._timer(0, self._phase_ps)        # the window starts at a random phase
        self.cs_n.value = 0
        self._edge("cs_fall")
        await self._full()                              # CS setup (+ the first bit's half)

    async def deselect(self) -> None:
        await self._half()                              # CS hold after the last falling edge
        self.cs_n.value = 1
        self._edge("cs_rise")
        await self._full()                              # CS high time between windows

    async def transfer(self, data: bytes) -> bytes:
        """Full duplex: send ``data``, return the bytes read at the same time."""
        if self.jitter is not None:
            return await self._transfer_async(data)
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

    async def _transfer_async(self, data: bytes) -> bytes:
        sclk, mosi, miso = self.sclk, self.mosi, self.miso
        received = bytearray()
        for byte in data:
            value = 0
            for shift in range(7, -1, -1):
                mosi.value = (byte >> shift) & 1
                await self._half()
                value = (value << 1) | int(miso.value)  # sampled as SCLK rises
                sclk.value = 1
                self._edge("sclk_rise")
                await self._half()
                sclk.value = 0
                self._edge("sclk_fall")
            received.append(value)
        return bytes(received)


class SpiTransport:
    """`xbarflow.flow.host.driver.Transport` over a `SpiMaster`: one chip-select window per exchange.

    The request is sent, then 0x00 filler bytes (not SYNC, so the chip's parser skips them)
    are clocked until a whole response frame has come back (`xbarflow.hdl.protocol.FrameSplitter`:
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
