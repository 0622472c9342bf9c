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

from analog_models.array import AnalogArray


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
    """One inference transaction as seen at the boundary (what the monitor reports)."""
    event_index: int
    dac_codes: np.ndarray
    adc_codes: np.ndarray


@dataclass
class AnalogBridge:
    dut: object
    array: AnalogArray
    event_index: int = 0                   # keys the noise draws; the bench sets it per image
    events: list[VmmEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg = self.array.cfg
        self._rows, self._dac_bits = cfg.rows, cfg.quant.dac_bits
        self._adc_bits = cfg.adc.bits
        self._settle, self._convert = self.array.latency_cycles()
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
            dac = unpack_bus(dut.dac_codes.value.to_unsigned(), self._rows, self._dac_bits)
            adc = self.array.adc_codes(dac[None, :], np.array([self.event_index]))[0]
            self.events.append(VmmEvent(self.event_index, dac, adc))
            await ClockCycles(clk, self._settle, rising=False)
            await self._pulse(dut.vmm_done)
            # The controller may raise adc_start while the vmm_done pulse is still ending.
            if not dut.adc_start.value:
                await RisingEdge(dut.adc_start)
            await ClockCycles(clk, self._convert, rising=False)
            dut.adc_codes.value = pack_bus(adc, self._adc_bits)
            await self._pulse(dut.adc_valid)
