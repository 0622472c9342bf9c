"""`xbarflow cost`: energy, latency, TOPS/W and area per inference (optionally synthesised).

The cost model and synthesis are `xbarflow.flow.analysis.cost`; this module reads the
arguments and reports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..analysis.cost import CostError, SynthUnavailable, evaluate, phase_cycles, synthesize
from ..core import paths
from ..model.context import RunContext
from .common import UsageError, dataset_or_usage, load_config, with_overrides, writable_dir
from .demo import add_set_argument

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = "Energy, latency, TOPS/W and area per inference, next to reference chips."
    parser.add_argument("--config", type=Path, default=None, help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: shipped MNIST)")
    parser.add_argument("--report", type=Path, default=None,
                        help="a co-simulation report.json: take the cycle counts measured there")
    parser.add_argument("--synth", action="store_true",
                        help="also synthesise the Verilog (Yosys, nextpnr-ice40) for area and fmax")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    add_set_argument(parser)   # e.g. --set device.read_model=qmm (read energy from the solved cells)


def _report_cycles(path: Path, cfg) -> dict[str, int]:
    try:
        rep = json.loads(path.read_text())
        by_phase = rep["cycles_by_phase"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a co-simulation report with cycles_by_phase "
                         f"({' '.join(str(exc).split())})") from None
    if rep.get("config_digest") not in (None, cfg.digest()):
        print(f"xbarflow: note: {path} was run with config {rep.get('config_digest')}, "
              f"this is {cfg.digest()}", file=sys.stderr)
    model = phase_cycles(cfg)
    total = int(by_phase["total"])
    measured = {"load": model["load"], "drive": int(by_phase.get("drive", model["drive"])),
                "convert": int(by_phase.get("convert", model["convert"])),
                "argmax": int(by_phase.get("argmax", model["argmax"]))}
    measured["done"] = total - sum(measured.values())
    return measured


def run(args) -> int:

    cfg = with_overrides(load_config(args.config), args.set)
    if args.json:   # refuse an unwritable --json before the work, not after it
        writable_dir(args.json.parent)
        if args.json.is_dir():
            raise UsageError(f"--json {args.json} is a folder, not a file")
    cycles = _report_cycles(args.report, cfg) if args.report else None
    dataset = dataset_or_usage(args.data)
    context = RunContext.build(cfg, dataset)
    weights, codes = context.weights, context.test_codes[:cfg.cost.images]
    try:
        report = evaluate(cfg, weights, codes, cycles=cycles,
                          cycles_source=f"measured in {args.report}" if args.report else None)
    except CostError as exc:
        raise UsageError(str(exc)) from None
    if args.synth:
        try:
            report.synth = synthesize(cfg, paths.SYNTH)
        except SynthUnavailable as exc:
            report.synth_note = f"skipped: {exc}"
            print(f"xbarflow: --synth skipped: {exc}", file=sys.stderr)
    x = cfg.crossbar
    print(f"xbarflow cost: config {cfg.name} ({cfg.digest()}), {len(cfg.tiles)} tile(s) of "
          f"{x.tile_rows}x{x.tile_cols}, {cfg.quant.dac_bits}-bit DACs, {cfg.adc.bits}-bit "
          f"{cfg.adc.kind} ADCs, wire {x.wire_r} ohm, {cfg.clock.freq_hz / 1e6:g} MHz, "
          f"{report.meta['images']} images")
    print("\n".join(report.table()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=1, default=float) + "\n")
    return 0
