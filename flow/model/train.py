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

`xbarflow train CONFIG [--set KEY=VALUE ...]` (xbarflow.flow.commands.train) loads the shipped
reference weights (see "reference weights" in flow/model/weights.py) or the cached weights, or
trains (`obtain`), and prints software and golden test accuracies as one JSON line; with
`--reference` it trains afresh and ships the result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.config import ChipConfig
from ..data import DataError, Dataset
from .conv_forward import chip_model
from .forward import sums_in_chunks
from .imported import load_imported
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
    write_reference,
)

__all__ = ["load_or_train", "obtain", "software_accuracy", "software_scores", "train"]


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
    dataset; otherwise train and cache. A config naming a weights file (`train.weights`, an
    imported network) uses that file, re-calibrated if needed (flow/model/imported.py).

    A stale, foreign or damaged cache file is retrained over rather than reported: the cache is
    ours, the user never wrote it.
    """
    if cfg.train.weights:   # imported (`xbarflow import`): never trained here
        return load_imported(cfg, dataset)
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
    model = chip_model(cfg)
    lev = [model.levels(w) for w in weights.layers]
    hidden = len(lev) - 1
    mult = list(weights.requant_mult) or [0] * hidden
    s = sums_in_chunks(model, lev, mult, [1.0] * hidden, np.asarray(codes))[-1]
    return s.astype(np.int64)



def obtain(cfg: ChipConfig, dataset: Dataset, cache_dir: str | Path, *,
           reference_command: str | None = None, reference_dir: str | Path | None = None
           ) -> tuple[Weights, str, Path | None]:
    """(weights, source, reference file) for `xbarflow train`: with `reference_command`, trained
    afresh (no cache, no shipped weights) and shipped as cfg's reference weights, recording that
    command; otherwise the shipped reference weights in `reference_dir`, else `load_or_train`.
    source is "trained", "reference", "cache" or "imported" (`train.weights`)."""
    if reference_command is not None:
        weights = train(cfg, dataset)
        return weights, "trained", write_reference(cfg, weights, dataset, reference_command, reference_dir)
    if cfg.train.weights:
        return load_imported(cfg, dataset), "imported", None
    shipped = load_reference(cfg, dataset, reference_dir)
    if shipped is not None:
        return shipped, "reference", None
    cached = cache_path(cfg, cache_dir)

    def stamp() -> int | None:
        return cached.stat().st_mtime_ns if cached.is_file() else None

    before = stamp()
    weights = load_or_train(cfg, dataset, cache_dir)
    return weights, "cache" if before is not None and stamp() == before else "trained", None
