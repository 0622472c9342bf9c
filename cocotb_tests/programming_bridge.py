"""The analog bridge's programming side: serves verify reads and program pulses from the
device programming model, event by event, never per clock.

The cell addresses come from the physical select lines the chip drives (`prog_row_sel`,
one bit per global row; `prog_col_sel`, one-hot column), never from a side channel, so the
bench checks the decoders and selectors as the array would see them. The tile comes the
same way, from `prog_tile_sel`: each tile has its own `DeviceArray` (its own keyed draws),
and the bridge serves the one the chip selects. The same `DeviceArray` methods serve the
golden replay, with the same keyed random draws. With writes
through the array (programming.bias != "ideal") every verify and every pulse event is one call
of `WritePath.verify` / `WritePath.pulse` on all the cells the select lines name, exactly the
calls the golden replay (flow/model/programming.py) makes; the event index keying the disturb
draws is the bridge's own count of the tile's prog_pulse events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from xbarflow.analog_models.programming import DeviceArray
from xbarflow.analog_models.write_path import WritePath
from .analog_bridge import unpack_bus
from xbarflow.flow.core.config import ChipConfig

__all__ = ["ProgrammingBridge", "selected"]


def selected(value: int) -> list[int]:
    """Indices of the set bits of a select bus."""
    return [k for k in range(value.bit_length()) if value >> k & 1]


@dataclass
class ProgrammingBridge:
    dut: object
    cfg: ChipConfig
    devices: list[DeviceArray]                 # one per tile, in tile order
    pulses: np.ndarray = field(init=False)     # (tiles, R, C) pulses each cell received (the monitor's count)
    verifies: int = 0
    events: np.ndarray = field(init=False)     # (tiles,) pulse events served per tile (key the disturb draws)

    def __post_init__(self) -> None:
        x = self.cfg.crossbar
        assert len(self.devices) == len(self.cfg.tiles), "one DeviceArray per tile"
        # one write path per tile (its disturb draws keyed by the tile); None: the ideal write
        self.paths = ([WritePath(self.cfg, k) for k in range(len(self.devices))]
                      if self.cfg.programming.bias != "ideal" else None)
        self.events = np.zeros(len(self.devices), dtype=np.int64)
        self.pulses = np.zeros((len(self.devices), x.tile_rows, x.tile_cols), dtype=np.int64)
        self._starts = np.asarray(self.cfg.partition_start)
        self._level_bits = max(1, (self.cfg.quant.weight_levels - 1).bit_length())
        for name in ("verify_ok", "verify_high", "verify_done"):
            getattr(self.dut, name).value = 0

    def _partition(self, row: int) -> int:
        return int(np.searchsorted(self._starts, row, side="right") - 1)

    def _tile(self) -> int:
        tile = int(self.dut.prog_tile_sel.value)   # one bit (a Logic) on a one-tile chip
        assert tile < len(self.devices), f"prog_tile_sel {tile} names no tile of the chip"
        return tile

    def _cells(self) -> tuple[list[int], int]:
        rows = selected(self.dut.prog_row_sel.value.to_unsigned())
        cols = selected(self.dut.prog_col_sel.value.to_unsigned())
        assert len(cols) == 1, f"prog_col_sel must be one-hot, got columns {cols}"
        parts = [self._partition(r) for r in rows]
        assert len(set(parts)) == len(parts), f"two selected rows in one partition: {rows}"
        return rows, cols[0]

    async def serve_verify(self) -> None:
        dut, np_ = self.dut, self.cfg.crossbar.partitions
        while True:
            await RisingEdge(dut.verify_start)
            rows, col = self._cells()
            device = self.devices[self._tile()]
            refs = unpack_bus(dut.verify_ref.value.to_unsigned(), np_, self._level_bits)
            ok = high = 0
            if self.paths is not None:
                oks, highs = self.paths[self._tile()].verify(device, rows, col,
                                              [int(refs[self._partition(r)]) for r in rows])
            for n, row in enumerate(rows):
                p = self._partition(row)
                if self.paths is None:
                    cell_ok, cell_high = device.verify(row, col, int(refs[p]))
                else:
                    cell_ok, cell_high = bool(oks[n]), bool(highs[n])
                ok |= int(cell_ok) << p
                high |= int(cell_high) << p
            self.verifies += 1
            await ClockCycles(dut.clk, self.cfg.sense_cycles, rising=False)
            dut.verify_ok.value = ok
            dut.verify_high.value = high
            dut.verify_done.value = 1
            await FallingEdge(dut.clk)
            dut.verify_done.value = 0

    async def serve_pulses(self) -> None:
        dut, prog = self.dut, self.cfg.programming
        while True:
            await RisingEdge(dut.prog_pulse)
            rows, col = self._cells()
            tile = self._tile()
            device, pulses = self.devices[tile], self.pulses[tile]
            polarity = dut.prog_polarity.value.to_unsigned()
            level = dut.prog_level.value.to_unsigned()
            enabled = dut.prog_partition_en.value.to_unsigned()
            amplitudes = []
            for row in rows:
                p = self._partition(row)
                assert enabled >> p & 1, f"row {row} selected but partition {p} not enabled"
                amplitudes.append(prog.amplitude(level, polarity_set=not (polarity >> p & 1)))
            if self.paths is not None:
                self.paths[tile].pulse(device, rows, col, amplitudes, int(self.events[tile]))
            for row, amplitude in zip(rows, amplitudes):
                if self.paths is None:
                    device.pulse(row, col, amplitude, int(pulses[row, col]))
                pulses[row, col] += 1
            self.events[tile] += 1

    def start(self) -> None:
        cocotb.start_soon(self.serve_verify())
        cocotb.start_soon(self.serve_pulses())


