"""The export bundle: what a lab bench or firmware needs to program and run a config's chip.

    <out>/manifest.json            config name and digest, training digest, requantiser registers,
                                   golden accuracies, tiles, every file with its SHA-256
    <out>/config.toml              the whole config (every key written out)
    <out>/tiles/tile_<t>_targets.csv   per cell as the hardware addresses it: row, col (physical
                                   column, 2k = G+ and 2k+1 = G- of output k), partition and
                                   partition_row (the write FSM's row counter), target_address
                                   (WRITE_TARGETS byte offset row * tile_cols + col), level code,
                                   target conductance (S), and the layer input / output / sign it holds
    <out>/tiles/tile_<t>_schedule.csv  the write-verify the golden replay predicts per cell: pulses,
                                   polarity of each pulse (S set, R reset), amplitude level of each
                                   pulse, expected final conductance (S), failed (timeout)
    <out>/protocol/registers.json, xbarflow.h, protocol.md   from hdl/protocol.py (protocol_files.py)
    <out>/rtl/xbarflow_top.v, xbarflow_top.json               the Verilog and its sidecar

Targets are the level mapping of each layer (normalised by its own span, as the golden chip
maps it); a tile holds its block of its layer's mapping at its top left, level 0 elsewhere.
The schedule is `program_array` (flow/model/programming.py), the golden write-verify replay, run
on each tile in turn from a pristine `DeviceArray`, recorded pulse by pulse through the device's
`pulse_cells` calls; tile t draws its own keyed device-to-device and cycle-to-cycle numbers
(`DeviceArray(cfg, tile=t)`), as `xbarflow program` does.
Floats are written with repr(), so reading the CSV gives back the same float64 bits.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xbarflow.analog_models.mapping import level_conductance
from xbarflow.analog_models.programming import DeviceArray
from xbarflow.hdl import protocol
from ..core.config import ChipConfig, TileSpec
from ..model.context import RunContext
from ..model.golden import GoldenChip
from ..model.programming import chip_target_levels, program_array, program_array_stepwise
from ..sim.verilog import generate
from .network import config_toml
from .protocol_files import c_header, markdown, protocol_map, requant_word

__all__ = ["BUNDLE_FORMAT", "Bundle", "SCHEDULE_COLUMNS", "TARGET_COLUMNS", "export_bundle",
           "pulse_schedule"]

BUNDLE_FORMAT = 1
TARGET_COLUMNS = ("row", "col", "partition", "partition_row", "target_address", "level",
                  "target_conductance_S", "layer", "input", "output", "sign")
SCHEDULE_COLUMNS = ("row", "col", "partition", "partition_row", "target_level", "pulses",
                    "polarity", "amplitude_levels", "final_conductance_S", "failed")


@dataclass(frozen=True)
class Bundle:
    folder: Path
    manifest: dict[str, Any]


class _RecordingDevice(DeviceArray):
    """A DeviceArray that keeps every pulse_cells call (cells and signed amplitudes, in order)."""

    def __init__(self, cfg: ChipConfig, tile: int = 0) -> None:
        super().__init__(cfg, tile)
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def pulse_cells(self, rows, cols, amplitudes, pulse_indices=None) -> None:
        r, c = np.atleast_1d(np.asarray(rows)), np.atleast_1d(np.asarray(cols))
        amp = np.broadcast_to(np.asarray(amplitudes, dtype=np.float64), r.shape)
        self.calls.append((r.astype(np.int64).copy(), c.astype(np.int64).copy(), amp.copy()))
        return super().pulse_cells(rows, cols, amplitudes, pulse_indices)


def _amplitude_level(cfg: ChipConfig, amp: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Amplitude code of signed pulse amplitudes; by the pulse's index when v_step = 0."""
    prog = cfg.programming
    if prog.v_step == 0:
        return np.minimum(index // prog.pulses_per_level, prog.amplitude_levels - 1)
    base = np.where(amp > 0, prog.v_set, prog.v_reset)
    return np.rint((np.abs(amp) - base) / prog.v_step).astype(np.int64)


def _partition_of(cfg: ChipConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per tile row: its partition and its row inside the partition (the FSM's row counter)."""
    part = np.empty(cfg.crossbar.tile_rows, dtype=np.int64)
    local = np.empty(cfg.crossbar.tile_rows, dtype=np.int64)
    for p, (start, n) in enumerate(zip(cfg.partition_start, cfg.partition_rows)):
        part[start:start + n] = p
        local[start:start + n] = np.arange(n)
    return part, local


def _write_csv(path: Path, header: tuple[str, ...], rows) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _targets_rows(cfg: ChipConfig, spec: TileSpec, levels: np.ndarray):
    part, local = _partition_of(cfg)
    g = level_conductance(levels, cfg)
    cols = cfg.crossbar.tile_cols
    for r in range(levels.shape[0]):
        for c in range(cols):
            used = r < spec.rows and c < 2 * spec.outputs
            yield (r, c, int(part[r]), int(local[r]), r * cols + c, int(levels[r, c]), repr(float(g[r, c])),
                   spec.layer if used else -1, spec.row_start + r if used else -1,
                   spec.out_start + c // 2 if used else -1, ("+" if c % 2 == 0 else "-") if used else "")


def pulse_schedule(cfg: ChipConfig, levels: np.ndarray, tile: int = 0):
    """Replay tile `tile`'s write-verify on its pristine device: (result, per-cell polarity
    strings, one letter per pulse, S set / R reset; per-cell amplitude codes, ';'-joined).

    The ideal write (programming.bias = "ideal") is `program_array`, recorded pulse by pulse
    through the device's `pulse_cells` calls; through the array every event is the write FSM's
    own ("pulse", i, j, level, enable, polarity) record (`program_array_stepwise`'s trace)."""
    shape = levels.shape
    polarity = np.full(shape, "", dtype=object)
    amps = np.full(shape, "", dtype=object)
    if cfg.programming.bias == "ideal":
        result, letters, codes = _recorded_schedule(cfg, levels, tile)
    else:
        result, letters, codes = _traced_schedule(cfg, levels, tile)
    for (r, c), text in letters.items():
        polarity[r, c] = text
        amps[r, c] = ";".join(str(int(v)) for v in codes[r, c])
    if not np.array_equal(np.vectorize(len)(polarity), result.pulses_per_cell):
        raise AssertionError("recorded pulses differ from the replay's pulse counts")
    return result, polarity, amps


def _recorded_schedule(cfg: ChipConfig, levels: np.ndarray, tile: int):
    device = _RecordingDevice(cfg, tile)
    result = program_array(cfg, levels, device)
    letters, codes = {}, {}
    if device.calls:
        rows = np.concatenate([c[0] for c in device.calls])
        cols = np.concatenate([c[1] for c in device.calls])
        amp = np.concatenate([c[2] for c in device.calls])
        cell = rows * levels.shape[1] + cols
        order = np.argsort(cell, kind="stable")           # per cell, in pulse order
        cell, amp = cell[order], amp[order]
        starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
        index = np.arange(len(cell)) - np.repeat(starts, np.diff(np.r_[starts, len(cell)]))
        level = _amplitude_level(cfg, amp, index)
        for s, e in zip(starts, np.r_[starts[1:], len(cell)]):
            key = divmod(int(cell[s]), levels.shape[1])
            letters[key] = "".join("S" if a > 0 else "R" for a in amp[s:e])
            codes[key] = list(level[s:e])
    return result, letters, codes


def _traced_schedule(cfg: ChipConfig, levels: np.ndarray, tile: int):
    trace: list = []
    result = program_array_stepwise(cfg, levels, DeviceArray(cfg, tile), trace=trace)
    letters: dict = {}
    codes: dict = {}
    for event in trace:
        if event[0] != "pulse":
            continue
        _, i, j, level, enable, reset = event
        for p, start in enumerate(cfg.partition_start):
            if enable >> p & 1:
                key = (start + i, j)
                letters[key] = letters.get(key, "") + ("R" if reset >> p & 1 else "S")
                codes.setdefault(key, []).append(level)
    return result, letters, codes


def _schedule_rows(cfg: ChipConfig, levels, result, polarity, amps):
    part, local = _partition_of(cfg)
    for r in range(levels.shape[0]):
        for c in range(levels.shape[1]):
            yield (r, c, int(part[r]), int(local[r]), int(levels[r, c]), int(result.pulses_per_cell[r, c]),
                   polarity[r, c], amps[r, c], repr(float(result.conductance[r, c])),
                   int(result.failed[r, c]))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_bundle(context: RunContext, out_dir: str | Path, *, verilog: bool = True) -> Bundle:
    """Write the bundle of `context` (its config, weights and test set) into `out_dir`."""
    cfg, weights = context.cfg, context.weights
    out = Path(out_dir)
    for sub in ("tiles", "protocol", "rtl"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    mult = list(context.golden.requant_mult)
    (out / "config.toml").write_text(config_toml(cfg, f"Exported by `xbarflow export`: config {cfg.name} "
                                                      f"({cfg.digest()})."))
    levels = chip_target_levels(cfg, weights)
    tiles, programmed = [], []
    for spec, lv in zip(cfg.tiles, levels):
        targets = out / "tiles" / f"tile_{spec.index}_targets.csv"
        _write_csv(targets, TARGET_COLUMNS, _targets_rows(cfg, spec, lv))
        result, polarity, amps = pulse_schedule(cfg, lv, spec.index)
        schedule = out / "tiles" / f"tile_{spec.index}_schedule.csv"
        _write_csv(schedule, SCHEDULE_COLUMNS, _schedule_rows(cfg, lv, result, polarity, amps))
        programmed.append(result.conductance[:spec.rows, :2 * spec.outputs])
        tiles.append({"index": spec.index, "layer": spec.layer, "row_tile": spec.row_tile,
                      "col_tile": spec.col_tile, "inputs": [spec.row_start, spec.row_stop],
                      "outputs": [spec.out_start, spec.out_stop], "targets": str(targets.relative_to(out)),
                      "schedule": str(schedule.relative_to(out)), "pulse_events": result.total_pulses,
                      "write_periods": result.steps, "failures": result.failures,
                      "pulses_per_cell_max": int(result.pulses_per_cell.max())})
    (out / "protocol" / "registers.json").write_text(json.dumps(protocol_map(), indent=1) + "\n")
    (out / "protocol" / "xbarflow.h").write_text(c_header(cfg, mult))
    (out / "protocol" / "protocol.md").write_text(markdown())
    if verilog:
        generate(cfg, out / "rtl")

    ideal = context.golden.infer(context.test_codes).classes
    layers = [np.empty((n_in, 2 * n_out)) for n_in, n_out in cfg.network.layer_shapes]
    for spec, g in zip(cfg.tiles, programmed):
        layers[spec.layer][spec.row_start:spec.row_stop, 2 * spec.out_start:2 * spec.out_stop] = g
    after = GoldenChip(cfg, layers, mult).infer(context.test_codes).classes
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest = {
        "format": BUNDLE_FORMAT, "config": cfg.name, "config_digest": cfg.digest(),
        "training_digest": weights.config_digest,
        "weights": str(weights.meta.get("method", "")), "requant_mult": mult,
        "requant_mult_register": requant_word(mult), "geometry_register": protocol.geometry_word(cfg),
        "test_images": int(len(context.labels)),
        "golden_accuracy": float(np.mean(ideal == context.labels)),
        "golden_accuracy_programmed": float(np.mean(after == context.labels)),
        "pulse_schedule": ("flow/model/programming.py program_array on each tile from a pristine "
                           "DeviceArray(cfg, tile) with the tile's own keyed device draws"),
        "tiles": tiles,
        "files": {str(p.relative_to(out)): _sha256(p) for p in files},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return Bundle(out, manifest)
