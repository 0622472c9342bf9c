"""Programming phase of the bench: write the targets, let the chip program the array through
its write path, and check every cell against the golden replay of the write-verify.

Scoreboard items: pulses each cell received (counted by the bridge from the select lines),
the chip's PROG_PULSES / PROG_FAILURES / PROG_STEPS registers, and every cell's final memory
state, all equal to `xbarflow.flow.model.programming.program_array` on the same keyed draws.
"""

from __future__ import annotations

import numpy as np
from cocotb.triggers import with_timeout

from xbarflow.analog_models.programming import DeviceArray
from .programming_bridge import ProgrammingBridge
from .sabotage import WireFaults
from xbarflow.flow.core.config import ChipConfig
from xbarflow.flow.model.programming import ProgrammingResult, program_array

__all__ = ["compare_programming", "program_chip", "programming_timeout_ns"]


def _first_cells(mask: np.ndarray, limit: int = 5) -> str:
    cells = np.argwhere(mask)[:limit]
    return ", ".join(f"({r},{c})" for r, c in cells)


def compare_programming(cfg: ChipConfig, golden: ProgrammingResult, pulses: np.ndarray,
                        lam: np.ndarray, registers: dict,
                        disturb_events: np.ndarray | None = None) -> list[str]:
    """Mismatches between the co-simulated programming (the pulses each cell received, as the
    monitor counted them from the select lines, every cell's final memory state and disturb
    events, the PROG_* registers) and the golden replay (empty = parity)."""
    problems = []
    if not np.array_equal(pulses, golden.pulses_per_cell):
        bad = pulses != golden.pulses_per_cell
        problems.append(f"pulses per cell differ in {int(bad.sum())} cells, first {_first_cells(bad)}")
    if not np.array_equal(lam, golden.lam):
        bad = lam != golden.lam
        problems.append(f"final memory state differs in {int(bad.sum())} cells, first {_first_cells(bad)}")
    if disturb_events is not None and not np.array_equal(disturb_events, golden.disturb_events):
        bad = disturb_events != golden.disturb_events
        problems.append(f"disturb events differ in {int(bad.sum())} cells, first {_first_cells(bad)}")
    for name, want in (("failures", golden.failures), ("pulses", golden.total_pulses)):
        if registers[name] != want:
            problems.append(f"PROG_{name.upper()} register {registers[name]} != golden {want}")
    return problems


def programming_timeout_ns(cfg: ChipConfig, golden: ProgrammingResult) -> float:
    """A generous bound on the simulated time programming may take: every verify and pulse of the
    golden replay at its worst-case cost, doubled, plus the target upload at one byte per 16 SCLK
    or UART bit periods."""
    period_ns = 1e9 / cfg.clock.freq_hz
    per_event = cfg.sense_cycles + cfg.pulse_cycles + 32 + cfg.crossbar.partitions
    events = golden.steps + golden.total_pulses
    bit_cycles = max(cfg.host.spi_clk_div, cfg.host.uart_divider)
    upload = cfg.target_bytes * 16 * bit_cycles
    return 2 * (events * per_event + upload) * period_ns + 1e6


async def program_chip(dut, cfg: ChipConfig, host, target_levels: np.ndarray,
                       wire: WireFaults | None = None) -> tuple[DeviceArray, dict, list[str]]:
    """Program the chip's array to `target_levels` (R, C); returns the programmed device (the
    bridge's), a summary for the report, and the scoreboard's mismatches. `wire` carries the
    self-tests' faults (`xbarflow.cocotb_tests.sabotage`) from the monitor to the scoreboard."""
    golden = program_array(cfg, target_levels)
    device = DeviceArray(cfg)
    bridge = ProgrammingBridge(dut, cfg, device)
    bridge.start()
    timeout_ns = programming_timeout_ns(cfg, golden)

    async def run() -> dict:
        await host.write_targets(np.asarray(target_levels, dtype=np.uint8).tobytes())
        return await host.program()

    registers = await with_timeout(run(), timeout_ns, "ns")
    pulses = (wire or WireFaults()).pulses(bridge.pulses)   # what reaches the scoreboard
    problems = compare_programming(cfg, golden, pulses, bridge.device.lam, registers,
                                   bridge.device.disturb_events)
    summary = {
        "pulses_per_cell_mean": float(pulses.mean()),
        "pulses_per_cell_max": int(pulses.max()),
        "pulses_total": int(registers["pulses"]),
        "failures": int(registers["failures"]),
        "programming_cycles": int(registers["cycles"]),
        "steps": int(registers["steps"]),
        "verifies": bridge.verifies,
        "golden_failures": golden.failures,
        "golden_pulses_total": golden.total_pulses,
        "bias": cfg.programming.bias,
        "disturb_events": int(bridge.device.disturb_events.sum()),
        "pulse_events_served": bridge.events,
    }
    return device, summary, problems
