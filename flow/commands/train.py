"""`xbarflow train [CONFIG]`: load or train a config's weights, print software and golden test
accuracies as one JSON line.

The weights come from `xbarflow.flow.model.train.obtain`: the shipped reference weights, the
cache, or training; with `--reference` trained afresh and shipped as the config's reference
weights (data/weights, manifest.json, which records this command). For in-situ weights the line
also has the golden accuracy on the trained devices' own conductances
(device_golden_test_accuracy) and the pulse counts.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import numpy as np

from ..core import config as config_mod
from ..core import paths
from ..core.overrides import OverrideError, parse_override
from ..data import DataError
from ..model.context import RunContext
from ..model.insitu import device_chip
from ..model.train import obtain, software_accuracy
from ..model.weights import training_digest
from .common import UsageError, dataset_or_usage, load_config, with_overrides

__all__ = ["add_arguments", "reference_command", "run"]


def add_arguments(parser) -> None:
    parser.description = ("Load or train the weights of a config and print software and golden "
                          "test accuracies as one JSON line.")
    parser.add_argument("config", nargs="?", type=Path, default=None,
                        help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--config", type=Path, default=None, dest="config_option",
                        help="the same as the positional CONFIG")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, TOML value syntax, e.g. --set adc.bits=6 "
                             "--set 'network.layers=[128, 10]' (repeatable)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="weights cache (default build/weights, the CLI's cache)")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: the shipped MNIST)")
    parser.add_argument("--reference", action="store_true",
                        help="train afresh (no cache, no shipped weights) and ship the result as "
                             "this config's reference weights (data/weights, manifest.json)")
    parser.add_argument("--reference-dir", type=Path, default=None,
                        help="folder of the reference weights (default data/weights)")


def reference_command(config: Path | None, sets: list[str]) -> str:
    """The command the manifest records for reference weights made by this command."""
    where = Path(config or config_mod.CONFIG_DIR / "slp.toml").resolve()
    shown = where.relative_to(paths.ROOT) if where.is_relative_to(paths.ROOT) else where
    return shlex.join(["xbarflow", "train", str(shown),
                       *(a for item in sets for a in ("--set", item)), "--reference"])


def run(args) -> int:
    if args.config is not None and args.config_option is not None:
        raise UsageError("give the config once: as CONFIG or as --config")
    config = args.config if args.config is not None else args.config_option
    try:
        overrides = dict(parse_override(item, dotted=False) for item in args.set)
    except OverrideError as exc:
        raise UsageError(str(exc)) from None
    cfg = with_overrides(load_config(config), overrides)
    dataset = dataset_or_usage(args.data)
    cache_dir = paths.WEIGHTS if args.cache_dir is None else args.cache_dir
    t0 = time.perf_counter()
    try:
        weights, source, reference = obtain(
            cfg, dataset, cache_dir, reference_dir=args.reference_dir,
            reference_command=reference_command(config, args.set) if args.reference else None)
    except (config_mod.ConfigError, DataError) as exc:   # labels the network cannot output, ...
        raise UsageError(str(exc)) from None
    load_s = time.perf_counter() - t0
    # the level mapping's golden chip; in-situ devices are scored on their own below
    context = RunContext.build(cfg, dataset, weights=weights, device=False)
    codes, labels = context.test_codes, context.labels
    t1 = time.perf_counter()
    golden = context.golden.infer(codes)
    golden_s = time.perf_counter() - t1
    summary = {
        "config": cfg.name, "overrides": overrides, "training_digest": training_digest(cfg),
        "layers": [list(s) for s in cfg.network.layer_shapes], "tiles": len(cfg.tiles),
        "requant_mult": list(weights.requant_mult),
        "weights": source, "cached": source != "trained",
        "train_seconds": round(load_s, 1) if source == "trained" else None,
        "software_test_accuracy": software_accuracy(weights, codes, labels, cfg),
        "golden_test_accuracy": float(np.mean(golden.classes == labels)),
        "golden_seconds": round(golden_s, 3), "wire_r": cfg.crossbar.wire_r,
    }
    if weights.device_conductance:
        # in-situ training: the golden chip on the trained devices' own conductances, next to
        # golden_test_accuracy of their level mapping (flow/model/insitu.py)
        device = device_chip(cfg, weights).infer(codes)
        summary["device_golden_test_accuracy"] = float(np.mean(device.classes == labels))
        summary.update({k: weights.meta[k] for k in ("pulses_total", "pulses_per_device_mean",
                                                     "pulses_per_device_max", "steps")})
    if reference is not None:
        summary["reference_weights"] = str(reference)
    print(json.dumps(summary))
    return 0
