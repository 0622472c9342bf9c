"""`xbarflow` command line: demo, verilog.

Usage errors (bad arguments, missing or malformed files, invalid configs) print one line on
stderr and exit with status 2; a co-simulation that disagrees with the golden model exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from .core import config as config_mod
from .commands.common import (
    dataset_or_usage,
    load_config,
    override,
    positive_int,
    toolchain_or_usage,
    writable_dir,
)
from .core import paths
from .core.errors import UsageError
from .sim.runner import ROOT, SIMULATORS

EXIT_USAGE = 2
HOSTS = ("spi", "uart")
WEIGHTS_DIR = paths.WEIGHTS   # the weights cache (build/weights)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of argparse's usage block
        raise UsageError(f"{self.prog}: {message}")


# Until every command lives in flow/commands: the helpers the plugins still import from here.
_positive_int = positive_int
_override = override
_writable_dir = writable_dir
_dataset_or_usage = dataset_or_usage
_toolchain_or_usage = toolchain_or_usage
_load_config = load_config


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xbarflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="train if needed, generate Verilog, co-simulate MNIST, report")
    demo.add_argument("--config", type=Path, default=None, help="ChipConfig TOML (default configs/slp.toml)")
    demo.add_argument("--sim", choices=SIMULATORS, default="verilator")
    demo.add_argument("--images", type=_positive_int, default=100, help="test images to co-simulate")
    demo.add_argument("--data", type=Path, default=None, help="dataset: .npz or IDX folder (default: shipped MNIST)")
    demo.add_argument("--out", type=Path, default=None, help="run folder (default runs/demo-<config>-<sim>)")
    demo.add_argument("--waves", action="store_true", help="also dump a VCD of the first image")
    demo.add_argument("--program", action="store_true",
                      help="program the array through the chip's write path first, then infer on it")
    demo.add_argument("--host", choices=HOSTS, default=None, help="host interface (default: from config)")

    prog = sub.add_parser("program", help="program the array through the write path, then co-simulate inference")
    prog.add_argument("--config", type=Path, default=None)
    prog.add_argument("--sim", choices=SIMULATORS, default="verilator")
    prog.add_argument("--host", choices=HOSTS, default=None, help="host interface (default: from config)")
    prog.add_argument("--images", type=_positive_int, default=20, help="test images to co-simulate after programming")
    prog.add_argument("--data", type=Path, default=None)
    prog.add_argument("--out", type=Path, default=None)
    prog.add_argument("--waves", action="store_true", help="also dump a VCD of the first image")
    for p in (demo, prog):
        p.add_argument("--set", type=_override, action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set device.stuck_on_rate=0.025 (repeatable)")

    ver = sub.add_parser("verilog", help="write the chip's Verilog and its JSON sidecar")
    ver.add_argument("--config", type=Path, default=None)
    ver.add_argument("--out", type=Path, required=True)

    for name, (module, help_text) in PLUGINS.items():
        plugin = importlib.import_module(module)
        plugin.add_arguments(sub.add_parser(name, help=help_text))
    return parser


def cmd_verilog(args) -> int:
    from .sim.verilog import generate

    cfg = _load_config(args.config)
    out = _writable_dir(args.out)
    rtl = generate(cfg, out)
    print(f"wrote {rtl.verilog} and {rtl.sidecar} ({rtl.seconds:.1f} s)")
    return 0


def _programming_report(cfg, weights, test_codes, labels, full_ideal, out: Path):
    """Golden programming of the whole tile through the write-verify replay, and the golden
    chip on the programmed conductances (what the co-simulation must then match)."""
    from .model.programming import program_array, programmed_chip, tile_target_levels
    from .analysis.report import plot_pulse_histogram

    targets = tile_target_levels(cfg, weights.w)
    result = program_array(cfg, targets)
    chip = programmed_chip(cfg, result)
    full = chip.infer(test_codes)
    used = result.pulses_per_cell[:cfg.rows, :cfg.cols]
    summary = {
        "golden_accuracy_ideal_targets": round(float(np.mean(full_ideal.classes == labels)), 6),
        "golden_accuracy_programmed": round(float(np.mean(full.classes == labels)), 6),
        "pulses_per_cell_mean": round(float(used.mean()), 4),
        "pulses_per_cell_max": int(used.max()),
        "failures": int(result.failures),
        "pulse_events": int(result.total_pulses),
        "histogram": str(plot_pulse_histogram(used, out / "programming_pulses.png",
                                              title=f"{cfg.name}: pulses per cell")),
    }
    return targets, chip, full, summary


def cmd_demo(args) -> int:
    from .sim import parity
    from .data import to_dac_codes
    from .model.golden import GoldenChip
    from .sim.runner import SimulatorError, build, run
    from .model.train import load_or_train, software_accuracy

    t_start = time.perf_counter()
    program = args.command == "program" or args.program
    cfg = _load_config(args.config)
    overrides = dict(args.set)
    if args.host:
        overrides["host.interface"] = args.host
    if overrides:
        try:
            cfg = cfg.replace(**overrides)
        except config_mod.ConfigError as exc:
            raise UsageError(str(exc)) from None
    if program and len(cfg.tiles) > 1:
        raise UsageError(f"--program supports single-tile chips; {cfg.name} has {len(cfg.tiles)} tiles")
    kind = "program" if program else "demo"
    out = _writable_dir(args.out or paths.RUNS / f"{kind}-{cfg.name}-{args.sim}")
    _toolchain_or_usage(args.sim)
    dataset = _dataset_or_usage(args.data)
    n_test = len(dataset.y_test)
    if args.images > n_test:
        raise UsageError(f"--images {args.images} exceeds the {n_test} test images")

    print(f"[xbarflow] config {cfg.name} ({cfg.digest()}): {cfg.network.input_size}x{cfg.network.input_size} "
          f"inputs, {cfg.outputs} classes, {cfg.rows}x{cfg.cols} crossbar, wire {cfg.crossbar.wire_r} ohm, "
          f"host {cfg.host.interface}")
    weights = load_or_train(cfg, dataset, WEIGHTS_DIR)
    test_codes = to_dac_codes(dataset.x_test, cfg)
    labels = dataset.y_test.astype(np.int64)
    software_acc = software_accuracy(weights, test_codes, labels, cfg)

    golden = GoldenChip.from_weights(cfg, weights)
    if weights.device_conductance and not program:
        # Trained in situ: the chip is the trained devices themselves, not a level mapping.
        from .model.insitu import device_chip
        golden = device_chip(cfg, weights)
        print("[xbarflow] weights trained in situ (train.method manhattan): the chip infers "
              "with the trained devices' own conductances")
    t0 = time.perf_counter()
    full = golden.infer(test_codes)
    golden_s = time.perf_counter() - t0
    golden_full_acc = float(np.mean(full.classes == labels))
    print(f"[xbarflow] software accuracy {software_acc:.4f}, golden accuracy (full {n_test}) "
          f"{golden_full_acc:.4f} in {golden_s:.2f} s")

    # With --program the chip programs its own array first; the reference for every image is
    # then the golden chip on the programmed conductances.
    targets, reference, reference_full, programming = None, golden, full, None
    if program:
        targets, reference, reference_full, programming = _programming_report(
            cfg, weights, test_codes, labels, full, out)
        print(f"[xbarflow] golden programming: {programming['pulses_per_cell_mean']:.2f} pulses/cell "
              f"(max {programming['pulses_per_cell_max']}), {programming['failures']} failures; "
              f"accuracy {programming['golden_accuracy_programmed']:.4f} programmed vs "
              f"{programming['golden_accuracy_ideal_targets']:.4f} ideal targets")

    try:
        sim_build = build(cfg, args.sim)
        print(f"[xbarflow] {args.sim} model built in {sim_build.build_seconds:.1f} s "
              f"(Verilog generation {sim_build.rtl.seconds:.1f} s)")
        indices = np.arange(args.images)
        result = run(sim_build, golden.layer_conductance, dataset.x_test[indices], labels[indices],
                     indices, out, targets=targets, requant_mult=golden.requant_mult)
        waves = None
        if args.waves:
            waves_build = build(cfg, args.sim, waves=True)
            waves = run(waves_build, reference.layer_conductance, dataset.x_test[:1], labels[:1],
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
    from .analysis.report import logit_scale, write_report

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
        print(f"[xbarflow] chip programmed itself over {cfg.host.interface}: {c['pulses_total']} pulse "
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


COMMANDS = {"demo": cmd_demo, "program": cmd_demo, "verilog": cmd_verilog}

#: Subcommands that live in their own module: `add_arguments(parser)` declares the options,
#: `run(args) -> int` does the work and raises `UsageError` for bad input.
PLUGINS: dict[str, tuple[str, str]] = {
    "report": ("xbarflow.flow.analysis.report", "metrics, confusion matrix and per-class table of a demo run"),
    "waves": ("xbarflow.flow.analysis.waves.command", "inspect a co-simulation VCD: signals, FSM states, SPI/UART frames, GTKWave file"),
    "spice": ("xbarflow.flow.analysis.spice", "ngspice netlist of the crossbar tile, cross-checked against analog_models"),
    "cost": ("xbarflow.flow.analysis.cost", "energy, latency, TOPS/W and area per inference (optionally synthesised)"),
    "sweep": ("xbarflow.flow.analysis.sweep", "golden accuracy and cost over a grid of config overrides (CSV, PNG)"),
    "sim": ("xbarflow.flow.sim.shards", "co-simulate the test set in shards over local processes or a Dask cluster"),
    "classify": ("xbarflow.flow.commands.classify", "classify one image (.npy or .pgm) with the golden model, "
                                  "optionally co-simulated"),
}


def _dispatch(args) -> int:
    if args.command in COMMANDS:
        return COMMANDS[args.command](args)
    return importlib.import_module(PLUGINS[args.command][0]).run(args)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _dispatch(args)
    except UsageError as exc:
        print(f"xbarflow: {exc}" if not str(exc).startswith("xbarflow") else str(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("xbarflow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # `python -m xbarflow.flow.cli` runs this file as __main__, a second copy of the module whose
    # UsageError is not the xbarflow.flow.cli.UsageError the plugins raise: run the real module's main.
    from .cli import main as _main
    sys.exit(_main())
