"""Programming phase of the bench: write the targets, let the chip program the array through
its write path, and check every cell against the golden replay of the write-verify.

A chip of several tiles is programmed tile by tile (PROG_TILE, WRITE_TARGETS, START_PROGRAM,
poll), each run with its own time bound. Scoreboard items, per tile: pulses each cell received
(counted by the bridge from the select lines), the chip's PROG_PULSES / PROG_FAILURES
registers of that tile's run, and every cell's final memory state, all equal to
`xbarflow.flow.model.programming.program_array` on that tile's keyed draws. That golden replay
comes with the job when the host made it already (`xbarflow program`: the job's
`golden_programming`, `GoldenTile`); otherwise the bench replays it here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cocotb.triggers import with_timeout

from xbarflow.analog_models.programming import DeviceArray
from .programming_bridge import ProgrammingBridge
from .sabotage import WireFaults
from xbarflow.flow.core.config import ChipConfig
from xbarflow.flow.model.programming import (
    ProgrammingResult,
    check_chip_targets,
    program_array,
)
from xbarflow.analog_models.mapping import level_conductance

__all__ = ["GoldenTile", "compare_programming", "golden_tiles", "program_chip",
           "programming_timeout_ns"]


@dataclass
class GoldenTile:
    """What the scoreboard needs of one tile's golden replay (the fields of a
    `ProgrammingResult` of the same name)."""
    pulses_per_cell: np.ndarray
    lam: np.ndarray
    disturb_events: np.ndarray
    total_pulses: int
    steps: int
    failures: int


def golden_tiles(arrays: dict, tiles) -> dict[int, GoldenTile]:
    """The job's golden replay (`xbarflow.flow.sim.schema.golden_programming_arrays`) of the
    tiles `tiles`; AssertionError if it is not the replay of exactly those tiles."""
    programmed = [int(k) for k in np.flatnonzero(arrays["programmed"])]
    assert programmed == sorted(tiles), f"the job's golden replay is of tiles {programmed}, not {sorted(tiles)}"
    return {k: GoldenTile(arrays["pulses"][k], arrays["lam"][k], arrays["disturb_events"][k],
                          *(int(v) for v in arrays["counts"][k])) for k in programmed}


def _first_cells(mask: np.ndarray, limit: int = 5) -> str:
    cells = np.argwhere(mask)[:limit]
    return ", ".join(f"({r},{c})" for r, c in cells)


def compare_programming(cfg: ChipConfig, golden: ProgrammingResult | GoldenTile, pulses: np.ndarray,
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


def programming_timeout_ns(cfg: ChipConfig, golden: ProgrammingResult | GoldenTile) -> float:
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
                       wire: WireFaults | None = None, tiles=None, replay: dict | None = None
                       ) -> tuple[list[np.ndarray], dict, list[str]]:
    """Program the chip's tiles `tiles` (default all) to `target_levels` ((tiles, R, C), or
    (R, C) for one tile); returns every tile's conductances after programming (the bridge's
    devices; a tile not programmed holds its ideal target conductances), a summary for the
    report, and the scoreboard's mismatches. `wire` carries the self-tests' faults
    (`xbarflow.cocotb_tests.sabotage`) from the monitor to the scoreboard (tile 0's pulses).
    `replay`: the job's golden replay of these tiles (`golden_tiles`), or None to replay here."""
    targets = check_chip_targets(cfg, target_levels)
    chosen = list(range(len(cfg.tiles)) if tiles is None else tiles)
    given = None if replay is None else golden_tiles(replay, chosen)
    devices = [DeviceArray(cfg, tile=k) for k in range(len(cfg.tiles))]
    bridge = ProgrammingBridge(dut, cfg, devices)
    bridge.start()
    wire = wire or WireFaults()
    problems, per_tile, registers_all = [], {}, []
    golden_pulses = golden_failures = 0
    for k in chosen:
        golden = given[k] if given else program_array(cfg, targets[k], DeviceArray(cfg, tile=k))
        registers = await with_timeout(
            host.program_tile(k, np.asarray(targets[k], dtype=np.uint8).tobytes()),
            programming_timeout_ns(cfg, golden), "ns")
        pulses = wire.pulses(bridge.pulses[k]) if k == 0 else bridge.pulses[k]
        tag = "" if len(cfg.tiles) == 1 else f"tile {k}: "
        problems += [tag + p for p in compare_programming(cfg, golden, pulses, devices[k].lam,
                                                          registers, devices[k].disturb_events)]
        registers_all.append(registers)
        golden_pulses += golden.total_pulses
        golden_failures += golden.failures
        per_tile[str(k)] = {"pulses_total": int(registers["pulses"]),
                            "failures": int(registers["failures"]),
                            "programming_cycles": int(registers["cycles"]),
                            "pulses_per_cell_max": int(pulses.max())}
    used = bridge.pulses[chosen]
    summary = {
        "tiles_programmed": chosen,
        "pulses_per_cell_mean": float(used.mean()),
        "pulses_per_cell_max": int(used.max()),
        "pulses_total": sum(int(r["pulses"]) for r in registers_all),
        "failures": sum(int(r["failures"]) for r in registers_all),
        "programming_cycles": sum(int(r["cycles"]) for r in registers_all),
        "steps": sum(int(r["steps"]) for r in registers_all),
        "verifies": bridge.verifies,
        "golden_failures": golden_failures,
        "golden_pulses_total": golden_pulses,
        "bias": cfg.programming.bias,
        "disturb_events": int(sum(devices[k].disturb_events.sum() for k in chosen)),
        "pulse_events_served": int(bridge.events.sum()),
    }
    if len(cfg.tiles) > 1:
        summary["per_tile"] = per_tile
    ideal = level_conductance(targets, cfg)
    conductance = [devices[k].conductance() if k in chosen else ideal[k]
                   for k in range(len(cfg.tiles))]
    return conductance, summary, problems
