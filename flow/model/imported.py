"""Weights of a network trained elsewhere (`xbarflow import`): calibrated for the chip as the
quantisation-aware recipe calibrates its own, and found again through `train.weights`.

An imported network is its float weight matrices, (n_in, n_out) per layer, no bias. The chip
maps each layer onto levels normalised by its span (analog_models/mapping.py), so a positive
scale per layer does not matter: ReLU and the step are positively homogeneous and argmax ignores
a scale. What the chip adds is the requantiser register of every hidden ReLU layer: calibrated
here exactly as flow/model/qat.py does at the start of each epoch (`calibrate_requant` on the
first CALIB_IMAGES training images, train.calib_percentile of the positive sums -> dac_max).

A config with `train.weights` set uses that file (load_or_train). Its training digest is the one
of the config it was imported for; when a config differs in what the calibration depends on
(e.g. `--set adc.bits=6` or a sweep), the file's float weights are re-calibrated for it, as
training would retrain: the layers themselves never change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.config import ChipConfig
from ..data import Dataset, to_dac_codes
from .forward import CALIB_IMAGES, calibrate_requant, sums_in_chunks, training_set
from .weights import Weights, WeightsError, dataset_fingerprint, load, training_digest

__all__ = ["IMPORTED_METHOD", "calibrate", "load_imported"]

IMPORTED_METHOD = "imported"   # meta["method"] of an imported network's weights


def calibrate(cfg: ChipConfig, dataset: Dataset, layers: Sequence[np.ndarray],
              meta: dict[str, Any] | None = None) -> Weights:
    """Weights for `cfg` from float layers: requantiser registers calibrated on the training
    images, the chip's forward-pass accuracies in meta (as qat records them)."""
    shapes = cfg.network.layer_shapes
    mats = tuple(np.array(w, dtype=np.float64) for w in layers)
    if len(mats) != len(shapes) or any(m.shape != s for m, s in zip(mats, shapes)):
        raise WeightsError(f"layers of shapes {[m.shape for m in mats]} do not fit the config's "
                           f"{list(shapes)}")
    if not all(np.isfinite(m).all() for m in mats):
        raise WeightsError("imported weights are not all finite")
    model, codes, labels, calib = training_set(cfg, dataset)
    lev = [model.levels(w) for w in mats]
    hidden = len(mats) - 1
    mult, width = [0] * hidden, [1.0] * hidden
    calibrate_requant(model, lev, mult, width, calib, cfg.train.calib_percentile)
    out: dict[str, Any] = dict(meta or {})
    out.update({"method": IMPORTED_METHOD, "dataset": dataset_fingerprint(dataset),
                "requant_mult": list(mult), "train_accuracy_images": min(len(labels), CALIB_IMAGES)})
    test_codes = to_dac_codes(dataset.x_test, cfg)
    for split, c, y in (("train", codes[:CALIB_IMAGES], labels[:CALIB_IMAGES]),
                        ("test", test_codes, dataset.y_test)):
        s = sums_in_chunks(model, lev, mult, width, c)[-1]
        out[f"software_{split}_accuracy"] = float(np.mean(s.argmax(axis=1) == np.asarray(y)))
    return Weights(w=mats[0], config_digest=training_digest(cfg), meta=out, layers=mats,
                   requant_mult=tuple(mult))


def load_imported(cfg: ChipConfig, dataset: Dataset) -> Weights:
    """The weights file `cfg.train.weights` names; re-calibrated when cfg or the data set is
    not the one it was calibrated for. WeightsError for a missing or unusable file."""
    path = Path(cfg.train.weights)
    try:
        weights = load(path, cfg)
    except WeightsError as exc:
        if "trained for a different config" not in str(exc):
            raise
        weights = None
    if weights is not None and weights.meta.get("dataset") == dataset_fingerprint(dataset):
        return weights
    layers = _layers_of(path)
    meta = {"source_weights": str(path), "recalibrated": True}
    return calibrate(cfg, dataset, layers, meta)


def _layers_of(path: Path) -> tuple[np.ndarray, ...]:
    """The float layers of a weights file, whatever config it was calibrated for."""
    try:
        with np.load(path, allow_pickle=False) as z:
            n = sum(1 for k in z.files if k.startswith("layer_"))
            names = [f"layer_{k}" for k in range(n)] if n else ["w"]
            return tuple(np.array(z[name], dtype=np.float64) for name in names)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise WeightsError(f"{path}: not a readable weights file ({' '.join(str(exc).split())})") from None
