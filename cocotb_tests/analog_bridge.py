"""The analog bridge: serves the chip's analog boundary from `analog_models`, transaction by
transaction, never per clock.

On `vmm_start` it reads `dac_codes` as one integer, asks the `AnalogArray` for the ADC codes
(the same call the golden model makes), waits the settling latency the models give and pulses
`vmm_done`; on `adc_start` it waits the conversion latency, drives `adc_codes` and pulses
`adc_valid`. Inputs are driven on falling clock edges so no simulator sees a race with the
rising edge that samples them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

__all__ = ["AnalogBridge", "VmmEvent", "pack_bus", "unpack_bus"]



def unpack_bus(value: int, count: int, width: int, signed: bool = False) -> np.ndarray:
    """Split a flat bus integer into `count` fields of `width` bits, field k at bits [k*w, (k+1)*w)."""
    raw = np.frombuffer(value.to_bytes((count * width + 7) // 8 or 1, "little"), dtype=np.uint8)
    bits = np.unpackbits(raw, bitorder="little")[:count * width].reshape(count, width)
    fields = bits.astype(np.int64) @ (1 << np.arange(width, dtype=np.int64))
    if signed:
        fields = np.where(fields >= 1 << (width - 1), fields - (1 << width), fields)
    return fields


def pack_bus(fields: np.ndarray, width: int) -> int:
    """Inverse of `unpack_bus` (two's complement for negative fields)."""
    value = 0
    for k, f in enumerate(np.asarray(fields, dtype=np.int64).tolist()):
        value |= (f & ((1 << width) - 1)) << (k * width)
    return value


@dataclass
class VmmEvent:
    """One tile transaction as seen at the boundary (what the monitor reports)."""
    event_index: int       # noise key: image * tiles + tile (layered: image * events_per_image + j)
    tile: int
    dac_codes: np.ndarray  # the tile's input codes (its rows only)
    adc_codes: np.ndarray  # all of the tile's output codes


@dataclass
class AnalogBridge:
    """Serves every tile of `chip` (a `xbarflow.flow.model.golden.GoldenChip`): the same tile arrays the
    golden model computes with, selected by ``tile_sel``; with shared ADCs each ``adc_start``
    converts the group that ``adc_col_sel`` selects."""
    dut: object
    chip: object
    event_index: int = 0                   # the image's event index; the bench sets it per image
    events: list[VmmEvent] = field(default_factory=list)
    # Layered networks (CNN_SPEC section 2): the tiles repeat per output position, so the noise
    # key of VMM event j of image i is i * events_per_image + j; the bench resets j per image.
    image_event: int = 0
    # Test-only: added to every noise key (watchdog.bridge_task's "noise_key_off_by_one" fault),
    # so a test can prove the scoreboard catches a bridge that draws the wrong noise.
    noise_key_offset: int = 0

    def __post_init__(self) -> None:
        cfg = self.chip.cfg
        self._tile_rows, self._dac_bits = cfg.crossbar.tile_rows, cfg.quant.dac_bits
        self._adc_bits, self._adcs = cfg.adc.bits, cfg.tile_adcs
        self._shared = cfg.adc_groups > 1
        self._settle, self._convert = self.chip.tiles[0].array.latency_cycles()
        self.dut.vmm_done.value = 0
        self.dut.adc_valid.value = 0
        self.dut.adc_codes.value = 0

    async def _pulse(self, signal) -> None:
        signal.value = 1
        await FallingEdge(self.dut.clk)
        signal.value = 0

    async def run(self) -> None:
        dut, clk = self.dut, self.dut.clk
        while True:
            await RisingEdge(dut.vmm_start)
            # dac_codes changes on the same clock edge as vmm_start; a simulator may call us
            # before it has applied that update (Icarus does with the harness clock), so read
            # the bus once the time step has settled. The next write is after a falling edge.
            await ReadOnly()
            t = int(dut.tile_sel.value)   # a 1-bit port reads as Logic, a wider one as LogicArray
            tiles = self.chip.tiles        # the bench swaps in the programmed chip
            tile = tiles[t]
            dac = unpack_bus(dut.dac_codes.value.to_unsigned(), self._tile_rows, self._dac_bits)
            assert not dac[len(tile.rows):].any(), f"tile {t}: rows past its inputs are driven"
            if self.chip.cfg.network.layered:
                event = self.event_index * self.chip.cfg.events_per_image + self.image_event
                event += self.noise_key_offset
                self.image_event += 1
            else:
                event = self.event_index * len(tiles) + t + self.noise_key_offset
            adc = tile.array.adc_codes(dac[None, :len(tile.rows)], np.array([event]))[0]
            self.events.append(VmmEvent(event, t, dac[:len(tile.rows)], adc))
            await ClockCycles(clk, self._settle, rising=False)
            await self._pulse(dut.vmm_done)
            for _ in range(-(-adc.size // self._adcs)):
                # The controller may raise adc_start while the previous pulse is still ending.
                if not dut.adc_start.value:
                    await RisingEdge(dut.adc_start)
                    # adc_col_sel changes on the edge that raises adc_start; Icarus calls us
                    # between the two updates, so read it once the time step has settled.
                    await ReadOnly()
                group = int(dut.adc_col_sel.value) if self._shared else 0
                codes = np.zeros(self._adcs, dtype=np.int64)
                part = adc[group * self._adcs:(group + 1) * self._adcs]
                codes[:part.size] = part
                await ClockCycles(clk, self._convert, rising=False)
                dut.adc_codes.value = pack_bus(codes, self._adc_bits)
                await self._pulse(dut.adc_valid)
