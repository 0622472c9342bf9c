"""`xbarflow demo`: train if needed, generate Verilog, co-simulate MNIST, report.

With `--program` (or `xbarflow program`, `xbarflow.flow.commands.program`) the chip first
programs its own array through the write path, and the reference of every image is the golden
chip on the programmed conductances. Parity is on what the chip computed: the class from
RESULT, the final-layer sums read back, the DAC codes it drove; exit status 1 if any differ.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..analysis.metrics import logit_scale
from ..analysis.plots import plot_pulse_histogram
from ..analysis.report import write_margins, write_report
from ..core import paths
from ..model.context import RunContext
from ..model.programming import (
    check_chip_targets,
    chip_target_levels,
    program_chip_array,
    programmed_chip,
)
from ..model.train import software_accuracy
from ..sim import parity
from ..sim.runner import SIMULATORS, WAVE_FORMATS, SimulatorError, build, wave_format
from ..sim.runner import run as cosim
from .common import (
    UsageError,
    dataset_or_usage,
    load_config,
    override,
    positive_int,
    toolchain_or_usage,
    with_overrides,
    writable_dir,
)

__all__ = ["HOSTS", "add_arguments", "add_set_argument", "add_waves_argument", "load_targets",
           "programming_lines", "programming_report", "run", "run_demo", "waves_or_usage"]

HOSTS = ("spi", "uart")


def add_set_argument(parser) -> None:
    parser.add_argument("--set", type=override, action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set device.stuck_on_rate=0.025 (repeatable)")


def add_waves_argument(parser) -> None:
    parser.add_argument("--waves", nargs="?", const="vcd", default=None, choices=WAVE_FORMATS,
                        metavar="vcd|fst",
                        help="also dump the first image's waveform: VCD (the default, both "
                             "simulators) or FST (Verilator)")


def waves_or_usage(sim: str, waves: str | None) -> str | None:
    """The waveform format asked for, checked against the simulator (a usage error if not)."""
    try:
        return wave_format(sim, waves)
    except SimulatorError as exc:
        raise UsageError(str(exc)) from None


def add_arguments(parser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--sim", choices=SIMULATORS, default="verilator")
    parser.add_argument("--images", type=positive_int, default=100, help="test images to co-simulate")
    parser.add_argument("--data", type=Path, default=None, help="dataset: .npz or IDX folder (default: shipped MNIST)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/demo-<config>-<sim>)")
    add_waves_argument(parser)
    parser.add_argument("--program", action="store_true",
                        help="program the array through the chip's write path first, then infer on it")
    parser.add_argument("--host", choices=HOSTS, default=None, help="host interface (default: from config)")
    add_set_argument(parser)


def run(args) -> int:
    return run_demo(args, program=args.program)


def programming_report(cfg, weights, test_codes, labels, full_ideal, out: Path, *,
                       targets=None, tiles=None, requant_mult=None):
    """Golden programming of the chip's tiles (`tiles`, default all) through the write-verify
    replay, tile by tile, and the golden chip on the programmed conductances (what the
    co-simulation must then match). `targets` ((tiles, R, C) level codes) default to the
    weights' mapping (`chip_target_levels`); tiles not programmed keep their ideal targets.
    Returns (targets, chip, inference on the test codes, summary, the replay's per-tile results
    for the co-simulation to score against); the targets of a one-tile chip as one (R, C)
    array."""
    targets = chip_target_levels(cfg, weights) if targets is None else check_chip_targets(cfg, targets)
    t0 = time.perf_counter()
    results = program_chip_array(cfg, targets, tiles)
    replay_s = time.perf_counter() - t0
    chip = programmed_chip(cfg, results, requant_mult, targets=targets)
    full = chip.infer(test_codes)
    done = [r for r in results if r is not None]
    if len(cfg.tiles) == 1:
        used = done[0].pulses_per_cell[:cfg.rows, :cfg.cols]
    else:   # each programmed tile's used block
        used = np.concatenate([r.pulses_per_cell[:cfg.tiles[k].rows, :2 * cfg.tiles[k].outputs].ravel()
                               for k, r in enumerate(results) if r is not None])
    summary = {
        "golden_accuracy_ideal_targets": round(float(np.mean(full_ideal.classes == labels)), 6),
        "golden_accuracy_programmed": round(float(np.mean(full.classes == labels)), 6),
        "tiles_programmed": [k for k, r in enumerate(results) if r is not None],
        "pulses_per_cell_mean": round(float(used.mean()), 4),
        "pulses_per_cell_max": int(used.max()),
        "failures": sum(int(r.failures) for r in done),
        "pulse_events": sum(int(r.total_pulses) for r in done),
        "golden_replay_s": round(replay_s, 3),
        "histogram": str(plot_pulse_histogram(used, out / "programming_pulses.png",
                                              title=f"{cfg.name}: pulses per cell")),
        **write_margins(cfg, results, out),
    }
    np.savez_compressed(out / "targets.npz", targets=targets, config=cfg.name)
    # A one-tile chip's targets as one (R, C) array, as `program_array` takes them.
    return (targets[0] if len(cfg.tiles) == 1 else targets), chip, full, summary, results


def programming_lines(summary: dict) -> list[str]:
    """What `xbarflow program` prints of the golden programming (`programming_report`'s summary)
    before the co-simulation; the write margin only if some cell was pulsed (targets that are
    all at the pristine state need no pulse)."""
    p = summary
    lines = [f"[xbarflow] golden programming: {p['pulse_events']} pulse events, "
             f"{p['pulses_per_cell_mean']:.2f} pulses/cell (max {p['pulses_per_cell_max']}), "
             f"{p['failures']} failures; accuracy {p['golden_accuracy_programmed']:.4f} programmed vs "
             f"{p['golden_accuracy_ideal_targets']:.4f} ideal targets (replay {p['golden_replay_s']:.0f} s)"]
    if "disturb_events" in p:
        margin = ("no cell pulsed" if p["write_margin_min_v"] is None else
                  f"write margin >= {p['write_margin_min_v']:.3f} V ({p['margins_histogram']})")
        lines.append(f"[xbarflow] writes through the array ({p['bias']}, {p['cell']}): "
                     f"{p['disturb_events']} disturb events, {p['disturb_failures']} cells disturbed "
                     f"out of their window (largest move {p['disturb_change_steps_max']:.3g} level "
                     f"steps); {margin}")
    return lines


def load_targets(cfg, path: Path) -> np.ndarray:
    """(tiles, R, C) level codes from an .npz written by `xbarflow program` (key "targets";
    "config" names the config it was made for, when the file says); UsageError when the file
    is unreadable or made for another chip (another shape, or another config of the same shape:
    mlp and mlp_binary have the same tiles)."""
    try:
        with np.load(path) as data:
            targets = data["targets"]
            made_for = str(data["config"]) if "config" in data.files else None
    except (OSError, KeyError, ValueError) as exc:
        raise UsageError(f"--targets {path}: not a targets .npz with a 'targets' array ({exc})") from None
    if made_for is not None and made_for != cfg.name:
        raise UsageError(f"--targets {path}: made for config '{made_for}', not '{cfg.name}'")
    try:
        return check_chip_targets(cfg, targets)
    except ValueError as exc:
        raise UsageError(f"--targets {path}: {exc}") from None


def run_demo(args, program: bool) -> int:
    """The demo (or, with `program`, the chip programs its own array first): train if needed,
    co-simulate the first `args.images` test images, check parity, write the run folder."""
    t_start = time.perf_counter()
    overrides = dict(args.set)
    if args.host:
        overrides["host.interface"] = args.host
    cfg = with_overrides(load_config(args.config), overrides)
    tiles = getattr(args, "tile", None) or None
    for tile in tiles or ():
        if not 0 <= tile < len(cfg.tiles):
            raise UsageError(f"--tile {tile} out of range: config {cfg.name} has tiles 0..{len(cfg.tiles) - 1}")
    targets_file = getattr(args, "targets", None)
    preset_targets = load_targets(cfg, targets_file) if program and targets_file else None
    kind = "program" if program else "demo"
    out = writable_dir(args.out or paths.RUNS / f"{kind}-{cfg.name}-{args.sim}")
    toolchain_or_usage(args.sim)
    waves_format = waves_or_usage(args.sim, args.waves)
    dataset = dataset_or_usage(args.data)
    n_test = len(dataset.y_test)
    if args.images > n_test:
        raise UsageError(f"--images {args.images} exceeds the {n_test} test images")

    print(f"[xbarflow] config {cfg.name} ({cfg.digest()}): {cfg.network.input_size}x{cfg.network.input_size} "
          f"inputs, {cfg.outputs} classes, {cfg.rows}x{cfg.cols} crossbar, wire {cfg.crossbar.wire_r} ohm, "
          f"host {cfg.host.interface}")
    # Trained in situ: the chip is the trained devices themselves, not a level mapping (unless
    # the chip programs its own array from the level mapping).
    context = RunContext.build(cfg, dataset, device=not program)
    weights, test_codes, labels, golden = context.weights, context.test_codes, context.labels, context.golden
    if context.in_situ:
        print("[xbarflow] weights trained in situ (train.method manhattan): the chip infers "
              "with the trained devices' own conductances")
    software_acc = software_accuracy(weights, test_codes, labels, cfg)
    t0 = time.perf_counter()
    full = golden.infer(test_codes)
    golden_s = time.perf_counter() - t0
    golden_full_acc = float(np.mean(full.classes == labels))
    print(f"[xbarflow] software accuracy {software_acc:.4f}, golden accuracy (full {n_test}) "
          f"{golden_full_acc:.4f} in {golden_s:.2f} s")

    # With --program the chip programs its own array first; the reference for every image is
    # then the golden chip on the programmed conductances.
    targets, reference, reference_full, programming, replay = None, golden, full, None, None
    if program:
        targets, reference, reference_full, programming, replay = programming_report(
            cfg, weights, test_codes, labels, full, out, targets=preset_targets, tiles=tiles,
            requant_mult=golden.requant_mult)
        for line in programming_lines(programming):
            print(line)

    try:
        sim_build = build(cfg, args.sim)
        print(f"[xbarflow] {args.sim} model built in {sim_build.build_seconds:.1f} s "
              f"(Verilog generation {sim_build.rtl.seconds:.1f} s)")
        indices = np.arange(args.images)
        result = cosim(sim_build, golden.layer_conductance, dataset.x_test[indices], labels[indices],
                     indices, out, targets=targets, requant_mult=golden.requant_mult,
                     program_tiles=tiles, golden_programming=replay)
        waves = None
        if waves_format:
            waves_build = build(cfg, args.sim, waves=waves_format)
            waves = cosim(waves_build, reference.layer_conductance, dataset.x_test[:1], labels[:1],
                        indices[:1], out / "waves", requant_mult=reference.requant_mult).waves
    except SimulatorError as exc:
        print(f"xbarflow: {exc}", file=sys.stderr)
        return 1

    # Parity on what the chip computed: RESULT, the sums read back, the DAC codes it drove.
    ref = reference_full.classes[indices]
    traced = reference.infer(test_codes[indices], indices, trace=True)
    verdict = parity.check(result, traced, test_codes[indices])
    report = {
        "config": cfg.name,
        "config_digest": cfg.digest(),
        "simulator": args.sim,
        "host": cfg.host.interface,
        "images": int(result.images),
        "software_accuracy": round(software_acc, 6),
        "golden_accuracy": round(float(np.mean(ref == labels[indices])), 6),
        "golden_accuracy_full_test_set": round(float(np.mean(reference_full.classes == labels)), 6),
        "cosim_accuracy": round(float(np.mean(result.classes == labels[indices])), 6),
        "parity": round(verdict.fraction, 6),
        "parity_defined_on": "class from RESULT, final-layer sums read back, DAC codes driven per tile",
        "mismatched_images": verdict.mismatched_images,
        "parity_failures": verdict.failures(20),
        "mismatches": result.mismatches[:20],
        "readback_sha256": parity.readback_digest(result.indices, result.classes, result.sums),
        "golden_readback_sha256": parity.readback_digest(indices, traced.classes, traced.adc_codes),
        "cycles_per_inference": int(result.cycles["total"][0]),
        "cycles_by_phase": {k: int(v[0]) for k, v in result.cycles.items()},
        "wall_s": round(time.perf_counter() - t_start, 3),
        "cosim_wall_s": round(result.wall_s, 3),
        "images_per_s": round(result.images / result.wall_s, 3),
        "waves": str(waves) if waves else None,
    }
    if program:
        report["programming"] = {**programming, "cosim": result.programming}
    # Codes per logit: derived for one layer; an MLP's training records its own.
    scale = logit_scale(cfg, weights) if len(cfg.network.layers) == 1 else weights.meta.get("logit_scale")
    report["metrics"] = write_report(out, labels[indices], result.classes, scores=result.sums,
                                     scale=scale, title=f"{cfg.name}: co-simulation on {args.sim}")
    report["metrics_golden_full_test_set"] = write_report(
        out, labels, reference_full.classes, scores=reference_full.adc_codes, scale=scale,
        suffix="_golden", title=f"{cfg.name}: golden model, full test set")
    report["logit_scale"] = scale
    # adc_codes: the chip's final-layer sums as read back (the same quantity as golden_adc_codes).
    np.savez_compressed(out / "predictions.npz", indices=indices, labels=labels[indices],
                        classes=result.classes, adc_codes=result.sums,
                        bridge_adc_codes=result.bridge_adc_codes,
                        golden_classes=reference_full.classes,
                        golden_adc_codes=reference_full.adc_codes, labels_full=labels)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if program:
        c = result.programming
        print(f"[xbarflow] chip programmed {len(c['tiles_programmed'])} of {len(cfg.tiles)} tiles over "
              f"{cfg.host.interface}: {c['pulses_total']} pulse "
              f"events, {c['failures']} failures, {c['programming_cycles']} cycles; every cell's "
              f"pulses and final state {'match' if not result.mismatches else 'DIFFER from'} golden")
    print(f"[xbarflow] co-simulated {report['images']} images on {args.sim}: accuracy "
          f"{report['cosim_accuracy']:.4f} (golden {report['golden_accuracy']:.4f}), "
          f"{verdict.summary()}, {report['cycles_per_inference']} cycles/inference, "
          f"{report['images_per_s']:.1f} images/s")
    if waves:
        print(f"[xbarflow] waveform of the first image: {waves}")
    g = report["metrics_golden_full_test_set"]
    print(f"[xbarflow] golden full test set: macro F1 {g['f1_macro']:.4f}, Cohen's kappa "
          f"{g['cohen_kappa']:.4f}, cross-entropy {g['cross_entropy']:.4f} "
          f"(report_golden.md, confusion_golden.png)")
    print(f"[xbarflow] report: {out / 'report.json'}")
    for line in verdict.failures(5):
        print(f"[xbarflow] parity: {line}", file=sys.stderr)
    return 0 if not verdict.mismatched_images and not result.mismatches else 1
