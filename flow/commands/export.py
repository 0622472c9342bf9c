"""`xbarflow export --out DIR [--config C]`: the bundle a lab bench or firmware needs (per-tile
targets and pulse schedule, register map, C header, protocol page, Verilog, manifest).

The bundle is xbarflow.flow.interop.bundle; this module reads the arguments and reports.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..interop.bundle import export_bundle
from ..model.context import RunContext
from .common import dataset_or_usage, load_config, with_overrides, writable_dir
from .demo import add_set_argument

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = ("Export what a bench or firmware needs: per-tile target levels and "
                          "conductances, the predicted write-verify pulse schedule, the register "
                          "map (JSON, C header, markdown), the Verilog and a manifest.")
    parser.add_argument("--config", type=Path, default=None, help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: shipped MNIST)")
    parser.add_argument("--no-verilog", action="store_true", help="leave out rtl/ (no Amaranth elaboration)")
    add_set_argument(parser)


def run(args) -> int:
    cfg = with_overrides(load_config(args.config), args.set)
    out = writable_dir(args.out)
    dataset = dataset_or_usage(args.data)
    context = RunContext.build(cfg, dataset, device=False)
    bundle = export_bundle(context, out, verilog=not args.no_verilog)
    m = bundle.manifest
    print(f"[xbarflow] exported config {cfg.name} ({m['config_digest']}) to {out}: {len(m['tiles'])} tile(s), "
          f"{len(m['files'])} files")
    print(json.dumps({k: m[k] for k in ("config", "config_digest", "golden_accuracy",
                                         "golden_accuracy_programmed", "requant_mult")}))
    return 0
