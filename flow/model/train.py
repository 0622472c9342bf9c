"""Training of the chip's weights: `train` dispatches to the config's recipe, `load_or_train` finds
or trains a config's weights, `software_accuracy` scores them in software.

The recipes, one per module, each aware of what the chip can realise:

* "lbfgs" (the SLP; flow/model/lbfgs.py): full-batch L-BFGS on softmax cross-entropy over the
  quantised inputs, then a clip-range search and a straight-through fine-tune on the
  level-quantised loss.
* "qat" (the default for more than one layer; flow/model/qat.py): quantisation-aware Adam
  through the chip's exact forward pass (flow/model/forward.py).
* "manhattan" (in situ, never chosen by "auto"; flow/model/insitu.py): sign-of-gradient pulses
  on the device programming model; its Weights also carry the trained devices' conductances
  (`device_conductance`).

The weights themselves, their training digest, the weights file and the shipped reference
weights are flow/model/weights.py.

`python -m xbarflow.flow.model.train CONFIG [--set KEY=VALUE ...]` loads the shipped reference
weights (see "reference weights" in flow/model/weights.py) or the cached weights, or trains, and
prints software and golden test accuracies as one JSON line (for in-situ weights also the golden
accuracy on the device state, device_golden_test_accuracy); with `--reference` it trains afresh
and ships the result.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import ChipConfig
from ..data import DataError, Dataset, to_dac_codes
from .forward import ChipModel, sums_in_chunks
from .insitu import train_manhattan
from .lbfgs import float_accuracy, train_lbfgs
from .qat import train_qat
from .weights import (
    Weights,
    WeightsError,
    cache_path,
    dataset_fingerprint,
    load,
    load_reference,
    save,
    training_digest,
    write_reference,
)

__all__ = ["add_arguments", "load_or_train", "main", "run", "software_accuracy",
           "software_scores", "train"]


def train(cfg: ChipConfig, dataset: Dataset) -> Weights:
    """Train weights for cfg on dataset; statistics (train and test accuracies, timing) in meta."""
    if int(dataset.y_train.max()) >= cfg.outputs:
        raise DataError(f"dataset labels go up to {int(dataset.y_train.max())} but the network "
                        f"has {cfg.outputs} outputs")
    method = cfg.train.resolved_method(len(cfg.network.layers))
    if method == "manhattan":
        return train_manhattan(cfg, dataset)
    if method == "qat":
        return train_qat(cfg, dataset)
    return train_lbfgs(cfg, dataset)


def load_or_train(cfg: ChipConfig, dataset: Dataset, cache_dir: str | Path) -> Weights:
    """The shipped reference weights when they were trained for cfg's training digest and this
    dataset (see "reference weights" below); else cached weights when they match cfg and
    dataset; otherwise train and cache.

    A stale, foreign or damaged cache file is retrained over rather than reported: the cache is
    ours, the user never wrote it.
    """
    reference = load_reference(cfg, dataset)
    if reference is not None:
        return reference
    p = cache_path(cfg, cache_dir)
    if p.is_file():
        try:
            cached = load(p, cfg)
        except WeightsError:
            cached = None
        if cached is not None and cached.meta.get("dataset") == dataset_fingerprint(dataset):
            return cached
    weights = train(cfg, dataset)
    save(weights, p)
    return weights



def software_accuracy(weights: Weights, codes: np.ndarray, labels: np.ndarray,
                      cfg: ChipConfig | None = None) -> float:
    """Accuracy on DAC codes (N, rows) of the software model.

    Single layer: the float weights (the chip's ideal, unquantised twin). Several layers (needs
    `cfg`): the quantisation-aware training's forward pass (levels, per-tile ADC rounding and
    saturation, requantiser), on an ideal crossbar without wire resistance."""
    if len(weights.layers) == 1:
        return float_accuracy(weights.w, codes, labels)
    if cfg is None:
        raise ValueError("software_accuracy of a multi-layer network needs its config")
    return float(np.mean(software_scores(weights, codes, cfg).argmax(axis=1) == np.asarray(labels)))


def software_scores(weights: Weights, codes: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """The last layer's sums s_L (n, classes) of the quantisation-aware training's forward pass
    (ideal crossbar): what the golden model gives without wire resistance, up to float rounding
    on an ADC threshold."""
    model = ChipModel(cfg)
    lev = [model.levels(w) for w in weights.layers]
    hidden = len(lev) - 1
    mult = list(weights.requant_mult) or [0] * hidden
    s = sums_in_chunks(model, lev, mult, [1.0] * hidden, np.asarray(codes))[-1]
    return s.astype(np.int64)



# -- command line: `python -m xbarflow.flow.model.train [CONFIG] [--set KEY=VALUE ...]` -------------------------

def add_arguments(parser: Any) -> None:
    """Options of the training command (argparse; usable as an `xbarflow` plugin)."""
    parser.add_argument("config", nargs="?", default=None, help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, TOML value syntax, e.g. --set adc.bits=6 "
                             "--set 'network.layers=[128, 10]' (repeatable)")
    parser.add_argument("--cache-dir", default=None,
                        help="weights cache (default build/weights, the CLI's cache)")
    parser.add_argument("--data", default=None, help="dataset (default: the shipped MNIST)")
    parser.add_argument("--reference", action="store_true",
                        help="train afresh (no cache, no shipped weights) and ship the result as "
                             "this config's reference weights (data/weights, manifest.json)")
    parser.add_argument("--reference-dir", default=None,
                        help="folder of the reference weights (default data/weights)")


def run(args: Any) -> int:
    """Load or train the weights of a config and print software and golden test accuracies."""
    import tomllib

    from ..core import config as config_mod
    from ..data import load_dataset
    from .golden import GoldenChip

    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            raise config_mod.ConfigError(f"--set needs KEY=VALUE, got '{item}'")
        try:
            overrides[key.strip()] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            overrides[key.strip()] = text
    cfg = config_mod.load(args.config)
    if overrides:
        cfg = cfg.replace(**overrides)
    if args.cache_dir is None:
        from ..core.paths import WEIGHTS
        cache_dir: str | Path = WEIGHTS
    else:
        cache_dir = args.cache_dir
    dataset = load_dataset(args.data)
    t0 = time.perf_counter()
    reference = None
    if args.reference:
        weights, source = train(cfg, dataset), "trained"
        import shlex

        from ..core.paths import ROOT
        where = Path(args.config or config_mod.CONFIG_DIR / "slp.toml").resolve()
        shown = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
        command = shlex.join(["python", "-m", "xbarflow.flow.model.train", str(shown),
                              *(a for item in args.set for a in ("--set", item)), "--reference"])
        reference = write_reference(cfg, weights, dataset, command, args.reference_dir)
    elif (shipped := load_reference(cfg, dataset, args.reference_dir)) is not None:
        weights, source = shipped, "reference"
    else:
        cached = cache_path(cfg, cache_dir)

        def stamp() -> int | None:
            return cached.stat().st_mtime_ns if cached.is_file() else None

        before = stamp()
        weights = load_or_train(cfg, dataset, cache_dir)
        source = "cache" if before is not None and stamp() == before else "trained"
    load_s = time.perf_counter() - t0
    codes = to_dac_codes(dataset.x_test, cfg)
    labels = dataset.y_test.astype(np.int64)
    t1 = time.perf_counter()
    golden = GoldenChip.from_weights(cfg, weights).infer(codes)
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
        from .insitu import device_chip
        device = device_chip(cfg, weights).infer(codes)
        summary["device_golden_test_accuracy"] = float(np.mean(device.classes == labels))
        summary.update({k: weights.meta[k] for k in ("pulses_total", "pulses_per_device_mean",
                                                     "pulses_per_device_max", "steps")})
    if reference is not None:
        summary["reference_weights"] = str(reference)
    print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    from ..core.config import ConfigError

    parser = argparse.ArgumentParser(prog="python -m xbarflow.flow.model.train", description=run.__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ConfigError, DataError) as exc:
        print(f"xbarflow.flow.model.train: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
