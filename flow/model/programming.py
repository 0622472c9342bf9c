"""Golden replay of the chip's write-verify programming, and accuracy after programming.

The write FSM (RTL) walks a row counter i (slow) and a column counter j (fast); at address
(i, j) it serves cell (partition_start[p] + i, j) of every partition p that has row i, all in
parallel:

    present[p] = i < partition_rows[p]; acked[p] = False; pulses = 0
    loop:
      VERIFY every present p -> (ok[p], high[p]);  acked[p] |= ok[p]
      all present acked            -> advance
      pulses == timeout_pulses     -> failures += present & ~acked; advance
      else every present & ~acked p gets a pulse: polarity set iff not high[p],
           amplitude code min(pulses // pulses_per_level, amplitude_levels - 1);
           total_pulses += 1; pulses += 1

`program_array_stepwise` is that loop literally, one scalar `DeviceArray.verify` / `.pulse` per
cell and event, exactly as the cocotb bridge calls them (and it can record the bus-level event
trace the RTL must produce). `program_array` is the fast replay: a cell's trajectory depends only
on its own state and the shared pulse counter, and while a cell is un-acked that counter equals
the cell's own pulse count (every un-acked present cell is pulsed on every step), so all cells of
the tile evolve independently and are replayed together, pulse count by pulse count. Each cell
sees the same verify decisions, amplitudes and keyed c2c draws as in the literal loop; the
per-address counts (steps, total_pulses) follow from the per-cell counts. Tests check that the two
agree bit for bit.

A chip of several tiles (`ChipConfig.tiles`) is programmed tile by tile, as the host does it
(PROG_TILE, WRITE_TARGETS, START_PROGRAM): `chip_target_levels` gives every tile's (R, C)
level codes (its block of its layer's mapping at the top left, the rest level 0),
`program_chip_array` replays the write-verify on each tile's own `DeviceArray` (its own keyed
draws), and `programmed_chip` assembles the layers' conductances from the tiles' blocks.

Writes through the array (programming.bias = "v2", "v3" or "float"; analog_models/write_path.py):
every pulse is solved on the array and moves every cell of the pulsed partitions (half-select
disturb), and every verify reads the selected column through the array, so cells no longer
evolve independently: `program_array` is then the write FSM's loop over addresses, vectorised
over the partitions of each event, calling exactly the `WritePath.verify` and `WritePath.pulse`
the cocotb bridge calls on the same events (the event index keys the disturb draws), and
`program_array_stepwise` is that same loop with the trace. bias = "ideal" keeps the independent
replay above (every pulse at exactly its amplitude on its cell alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarflow.analog_models.mapping import level_conductance, map_weights
from xbarflow.analog_models.programming import DeviceArray
from xbarflow.analog_models.write_path import WritePath
from ..core import paths
from ..core.config import ChipConfig
from .golden import GoldenChip

__all__ = [
    "ProgrammedAccuracy", "ProgrammingResult", "WEIGHTS_DIR", "accuracy_after_programming",
    "check_chip_targets", "chip_target_levels", "layer_conductances", "place_levels",
    "program_array", "program_array_stepwise", "program_chip_array", "programmed_chip",
    "tile_target_levels",
]

WEIGHTS_DIR = paths.WEIGHTS


@dataclass
class ProgrammingResult:
    target_levels: np.ndarray    # (R, C) int level codes the cells were programmed to
    pulses_per_cell: np.ndarray  # (R, C) int pulses each cell received in this run
    failed: np.ndarray           # (R, C) bool, cells left un-acked at the timeout
    failures: int                # the chip's failure counter (= failed.sum())
    total_pulses: int            # pulse events (one event pulses up to NP cells in parallel)
    steps: int                   # verify reads = addresses + total_pulses (write periods)
    conductance: np.ndarray      # (R, C) final conductances (S)
    lam: np.ndarray              # (R, C) final memory states
    device: DeviceArray          # the programmed device (inference can run on it)
    # writes through the array (bias != "ideal"): the disturb record and write margins per cell
    # (the device's `expose` records; all zero / inf with the ideal write)
    disturb_events: np.ndarray | None = None   # (R, C) exposures that moved the cell (not selected)
    disturb_change: np.ndarray | None = None   # (R, C) signed state change from half-select disturb
    v_selected_min: np.ndarray | None = None   # (R, C) smallest |V| the cell saw as selected
    v_disturb_max: np.ndarray | None = None    # (R, C) largest |V| it saw while another was pulsed
    # (R, C) cells acknowledged in time but outside their verify window at the end (a lone-cell
    # read of the final state): moved out by half-select disturb after their own write
    disturbed_out: np.ndarray | None = None

    @property
    def disturb_failures(self) -> int:
        return 0 if self.disturbed_out is None else int(self.disturbed_out.sum())

    @property
    def addresses(self) -> int:
        return self.steps - self.total_pulses


def place_levels(levels: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """A (rows, cols) level-code block placed at the top-left of an R x C tile; others level 0."""
    lv = np.asarray(levels)
    shape = (cfg.crossbar.tile_rows, cfg.crossbar.tile_cols)
    if lv.ndim != 2 or lv.shape[0] > shape[0] or lv.shape[1] > shape[1]:
        raise ValueError(f"levels of shape {lv.shape} do not fit the {shape[0]} x {shape[1]} tile")
    tile = np.zeros(shape, dtype=np.int64)
    tile[:lv.shape[0], :lv.shape[1]] = lv
    return tile


def tile_target_levels(cfg: ChipConfig, weights: np.ndarray) -> np.ndarray:
    """(R, C) target level codes of the whole tile for a (rows, outputs) weight matrix."""
    return place_levels(map_weights(weights, cfg).levels, cfg)


def chip_target_levels(cfg: ChipConfig, weights) -> np.ndarray:
    """(tiles, R, C) target level codes of every tile, in `ChipConfig.tiles` order, for a
    `Weights` (its layers), one (rows, outputs) matrix (one layer) or a list of per-layer
    matrices. Each layer is mapped once (normalised by its own max - min, as the golden
    chip does); a tile holds its block of that mapping at its top left, level 0 elsewhere."""
    layers = list(weights.layers) if hasattr(weights, "layers") else (
        [weights] if isinstance(weights, np.ndarray) else list(weights))
    if len(layers) != len(cfg.network.layers):
        raise ValueError(f"config '{cfg.name}' has {len(cfg.network.layers)} layers, got "
                         f"{len(layers)} weight matrices")
    levels = [map_weights(w, cfg).levels for w in layers]
    return np.stack([place_levels(levels[t.layer][t.row_start:t.row_stop,
                                                  2 * t.out_start:2 * t.out_stop], cfg)
                     for t in cfg.tiles])


def check_chip_targets(cfg: ChipConfig, targets: np.ndarray) -> np.ndarray:
    """`targets` as (tiles, R, C) int64 level codes (an (R, C) array is accepted for a
    one-tile chip); ValueError naming the expected shape if they were made for another chip."""
    t = np.asarray(targets)
    x = cfg.crossbar
    shape = (len(cfg.tiles), x.tile_rows, x.tile_cols)
    if t.ndim == 2 and len(cfg.tiles) == 1:
        t = t[None]
    if t.shape != shape or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"targets of shape {t.shape} ({t.dtype}) are not for config "
                         f"'{cfg.name}': it needs {shape[0]} tiles of {shape[1]} x {shape[2]} "
                         f"integer level codes")
    if t.size and (t.min() < 0 or t.max() >= cfg.quant.weight_levels):
        raise ValueError(f"target levels must be in 0..{cfg.quant.weight_levels - 1} for config "
                         f"'{cfg.name}', got {int(t.min())}..{int(t.max())}")
    return t.astype(np.int64)


def _check_targets(cfg: ChipConfig, target_levels: np.ndarray) -> np.ndarray:
    t = np.asarray(target_levels)
    shape = (cfg.crossbar.tile_rows, cfg.crossbar.tile_cols)
    if t.shape != shape or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"target levels must be an integer array shaped {shape}, got {t.dtype} {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= cfg.quant.weight_levels):
        raise ValueError(f"target levels must be in 0..{cfg.quant.weight_levels - 1}")
    return t.astype(np.int64)


def _address_counts(cfg: ChipConfig, pulses: np.ndarray) -> tuple[int, int]:
    """(total_pulses, steps) from per-cell pulse counts: an address lasts as long as its slowest cell."""
    maxr, cols = max(cfg.partition_rows), cfg.crossbar.tile_cols
    per_address = np.zeros((maxr, cols), dtype=np.int64)
    for start, n in zip(cfg.partition_start, cfg.partition_rows):
        per_address[:n] = np.maximum(per_address[:n], pulses[start:start + n])
    total = int(per_address.sum())
    return total, total + maxr * cols


def _result(cfg, targets, device, pulses, failed) -> ProgrammingResult:
    total, steps = _address_counts(cfg, pulses)
    rows, cols = (a.ravel() for a in np.indices(targets.shape))
    ok = device.verify_cells(rows, cols, targets.ravel())[0].reshape(targets.shape)
    return ProgrammingResult(
        target_levels=targets, pulses_per_cell=pulses, failed=failed, failures=int(failed.sum()),
        total_pulses=total, steps=steps, conductance=device.conductance(), lam=device.lam.copy(),
        device=device, disturb_events=device.disturb_events.copy(),
        disturb_change=device.disturb_change.copy(), v_selected_min=device.v_selected_min.copy(),
        v_disturb_max=device.v_disturb_max.copy(), disturbed_out=~ok & ~failed)


def program_array(cfg: ChipConfig, target_levels: np.ndarray,
                  device: DeviceArray | None = None) -> ProgrammingResult:
    """Replay the chip's write-verify on `device` (default: a pristine DeviceArray(cfg)).

    The device is modified in place and returned in the result."""
    targets = _check_targets(cfg, target_levels)
    dev = device if device is not None else DeviceArray(cfg)
    if cfg.programming.bias != "ideal":
        return _program_through_array(cfg, targets, dev, None)
    prog = cfg.programming
    rows, cols = (a.ravel() for a in np.indices(targets.shape))
    refs = targets.ravel()
    pulses = np.zeros(targets.shape, dtype=np.int64)
    failed = np.zeros(targets.shape, dtype=bool)
    for k in range(prog.timeout_pulses + 1):      # k = pulses so far at this verify
        ok, high = dev.verify_cells(rows, cols, refs)
        rows, cols, refs, high = rows[~ok], cols[~ok], refs[~ok], high[~ok]
        if rows.size == 0:
            break
        if k == prog.timeout_pulses:
            failed[rows, cols] = True
            break
        level = min(k // prog.pulses_per_level, prog.amplitude_levels - 1)
        amp = np.where(high, prog.amplitude(level, False), prog.amplitude(level, True))
        dev.pulse_cells(rows, cols, amp)
        pulses[rows, cols] += 1
    return _result(cfg, targets, dev, pulses, failed)


def program_chip_array(cfg: ChipConfig, targets: np.ndarray,
                       tiles=None) -> list[ProgrammingResult | None]:
    """Replay the write-verify of every tile in `tiles` (default all) on its own pristine
    `DeviceArray(cfg, tile)`; one result per tile of the chip, None for a tile not programmed."""
    t = check_chip_targets(cfg, targets)
    chosen = range(len(cfg.tiles)) if tiles is None else tiles
    results: list[ProgrammingResult | None] = [None] * len(cfg.tiles)
    for k in chosen:
        if not 0 <= k < len(cfg.tiles):
            raise IndexError(f"tile {k} out of range: config '{cfg.name}' has tiles "
                             f"0..{len(cfg.tiles) - 1}")
        results[k] = program_array(cfg, t[k], DeviceArray(cfg, tile=k))
    return results


def program_array_stepwise(cfg: ChipConfig, target_levels: np.ndarray,
                           device: DeviceArray | None = None,
                           trace: list | None = None) -> ProgrammingResult:
    """The write FSM literally, one scalar device call per cell and event (slow; the reference).

    With `trace` (a list), appends the bus-level events the RTL must produce, masks bit p =
    partition p:  ("verify", i, j, refs, ok_mask, high_mask) and
    ("pulse", i, j, level, enable_mask, polarity_mask) with polarity bit 1 = reset.
    """
    targets = _check_targets(cfg, target_levels)
    dev = device if device is not None else DeviceArray(cfg)
    if cfg.programming.bias != "ideal":
        return _program_through_array(cfg, targets, dev, trace)
    prog = cfg.programming
    starts, nrows = cfg.partition_start, cfg.partition_rows
    parts = range(cfg.crossbar.partitions)
    pulses = np.zeros(targets.shape, dtype=np.int64)
    failed = np.zeros(targets.shape, dtype=bool)
    failures = total_pulses = steps = 0
    for i in range(max(nrows)):
        for j in range(cfg.crossbar.tile_cols):
            present = [i < nrows[p] for p in parts]
            acked = [False for _ in parts]
            ref = [int(targets[starts[p] + i, j]) if present[p] else 0 for p in parts]
            n = 0
            while True:
                ok, high = [False for _ in parts], [False for _ in parts]
                for p in parts:
                    if present[p]:
                        ok[p], high[p] = dev.verify(starts[p] + i, j, ref[p])
                    acked[p] |= ok[p] and present[p]
                steps += 1
                if trace is not None:
                    trace.append(("verify", i, j, tuple(ref), _mask(ok), _mask(high)))
                waiting = [present[p] and not acked[p] for p in parts]
                if not any(waiting):
                    break
                if n == prog.timeout_pulses:
                    failures += sum(waiting)
                    for p in parts:
                        if waiting[p]:
                            failed[starts[p] + i, j] = True
                    break
                level = min(n // prog.pulses_per_level, prog.amplitude_levels - 1)
                for p in parts:
                    if waiting[p]:
                        row = starts[p] + i
                        dev.pulse(row, j, prog.amplitude(level, not high[p]))   # keyed by the cell's count
                        pulses[row, j] += 1
                if trace is not None:
                    trace.append(("pulse", i, j, level, _mask(waiting),
                                  _mask([w and h for w, h in zip(waiting, high)])))
                total_pulses += 1
                n += 1
    result = _result(cfg, targets, dev, pulses, failed)
    assert (result.failures, result.total_pulses, result.steps) == (failures, total_pulses, steps)
    return result


def _mask(bits) -> int:
    return sum(1 << p for p, b in enumerate(bits) if b)


def _program_through_array(cfg: ChipConfig, targets: np.ndarray, dev: DeviceArray,
                           trace: list | None) -> ProgrammingResult:
    """The write FSM's loop with every event solved on the array (module docstring), on the
    tile `dev` is (its disturb draws keyed by that tile)."""
    path = WritePath(cfg, dev.tile)
    prog = cfg.programming
    starts = np.asarray(cfg.partition_start)
    nrows = np.asarray(cfg.partition_rows)
    parts = cfg.crossbar.partitions
    pulses = np.zeros(targets.shape, dtype=np.int64)
    failed = np.zeros(targets.shape, dtype=bool)
    failures = total_pulses = steps = 0
    for i in range(int(nrows.max())):
        present = i < nrows
        rows = starts + i
        for j in range(cfg.crossbar.tile_cols):
            ref = np.where(present, targets[np.minimum(rows, targets.shape[0] - 1), j], 0)
            acked = np.zeros(parts, dtype=bool)
            n = 0
            while True:
                ok, high = np.zeros(parts, dtype=bool), np.zeros(parts, dtype=bool)
                ok[present], high[present] = path.verify(dev, rows[present], j, ref[present])
                acked |= ok
                steps += 1
                if trace is not None:
                    trace.append(("verify", i, j, tuple(int(r) for r in ref), _mask(ok), _mask(high)))
                waiting = present & ~acked
                if not waiting.any():
                    break
                if n == prog.timeout_pulses:
                    failures += int(waiting.sum())
                    failed[rows[waiting], j] = True
                    break
                level = min(n // prog.pulses_per_level, prog.amplitude_levels - 1)
                amps = np.where(high[waiting], prog.amplitude(level, False), prog.amplitude(level, True))
                path.pulse(dev, rows[waiting], j, amps, total_pulses)
                pulses[rows[waiting], j] += 1
                if trace is not None:
                    trace.append(("pulse", i, j, level, _mask(waiting), _mask(waiting & high)))
                total_pulses += 1
                n += 1
    result = _result(cfg, targets, dev, pulses, failed)
    assert (result.failures, result.total_pulses, result.steps) == (failures, total_pulses, steps)
    return result


# -- accuracy after programming ---------------------------------------------------------------

@dataclass
class ProgrammedAccuracy:
    ideal: float                 # golden accuracy with every cell exactly at its target
    programmed: float            # golden accuracy on the programmed conductances
    result: ProgrammingResult

    @property
    def drop(self) -> float:
        return self.ideal - self.programmed


def layer_conductances(cfg: ChipConfig, tile_conductance) -> list[np.ndarray]:
    """Per layer (n_in, 2 n_out) conductances assembled from each tile's (R, C) conductances
    (a sequence in `ChipConfig.tiles` order): tile t gives its top-left block."""
    g = [np.asarray(c, dtype=np.float64) for c in tile_conductance]
    if len(g) != len(cfg.tiles):
        raise ValueError(f"need {len(cfg.tiles)} tile conductances, got {len(g)}")
    layers = [np.empty((n_in, 2 * n_out)) for n_in, n_out in cfg.network.layer_shapes]
    for spec in cfg.tiles:
        layers[spec.layer][spec.row_start:spec.row_stop, 2 * spec.out_start:2 * spec.out_stop] = \
            g[spec.index][:spec.rows, :2 * spec.outputs]
    return layers


def programmed_chip(cfg: ChipConfig, result, requant_mult=None, targets=None) -> GoldenChip:
    """The golden chip on the programmed conductances of the used blocks.

    `result`: one `ProgrammingResult` (a one-tile chip) or one per tile (`program_chip_array`);
    a tile whose entry is None was not programmed and holds its ideal target conductances
    (`targets`, (tiles, R, C), needed then). `requant_mult`: the hidden layers' multipliers."""
    results = [result] if isinstance(result, ProgrammingResult) else list(result)
    if any(r is None for r in results):
        if targets is None:
            raise ValueError("tiles left unprogrammed need their targets")
        ideal = level_conductance(check_chip_targets(cfg, targets), cfg)
    conductance = [r.conductance if r is not None else ideal[k] for k, r in enumerate(results)]
    return GoldenChip(cfg, layer_conductances(cfg, conductance), requant_mult)


def accuracy_after_programming(cfg: ChipConfig, weights: np.ndarray, codes: np.ndarray,
                               labels: np.ndarray, device: DeviceArray | None = None
                               ) -> ProgrammedAccuracy:
    """Program the tile for `weights` ((rows, outputs) floats) and compare golden accuracies on
    DAC codes (n, rows) with labels (n,): programmed conductances vs ideal targets."""
    labels = np.asarray(labels)
    result = program_array(cfg, tile_target_levels(cfg, weights), device)
    ideal = GoldenChip.from_weights(cfg, weights).infer(codes).classes
    programmed = programmed_chip(cfg, result).infer(codes).classes
    return ProgrammedAccuracy(ideal=float(np.mean(ideal == labels)),
                              programmed=float(np.mean(programmed == labels)), result=result)

