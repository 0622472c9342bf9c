"""Ex-situ training of the paper's single-layer perceptron, aware of what the chip can realise.

The chip sees DAC codes, not pixels, and realises each weight as (level+ - level-) after
`analog_models.mapping.map_weights`. So training

1. fits float weights by full-batch L-BFGS on softmax cross-entropy + l2 * ||W||^2 over the
   quantised inputs codes / dac_max (no bias, like the paper; float64 and full batch so the
   result is bit-for-bit reproducible),
2. picks the clip range [a*min W, a*max W] whose level-quantised weights give the lowest
   training loss (with few levels one outlier weight otherwise wastes most of the range),
3. fine-tunes inside that range with a straight-through estimator through the level rounding,
   keeping the iterate with the lowest level-quantised training loss.

Steps 2 and 3 never accept a higher level-quantised training loss than the step before. The
delivered weights are the clipped float weights; `map_weights` of them gives exactly the levels
that were evaluated here.

Measured on the 10k MNIST test set (14x14, 4-bit DAC; float -> levels of the float weights ->
levels after steps 2-3):
    32 levels, l2 1e-4:  91.92 % -> 91.84 % -> 91.89 %   (~10 s on 2 cores)
    32 levels, l2 1e-5:  92.46 % -> 91.60 % -> 92.26 %   (~21 s: L-BFGS needs 274 iterations)
     8 levels, l2 1e-4:  91.92 % -> 88.65 % -> 90.57 %
     4 levels, l2 1e-4:  91.92 % -> 56.48 % -> 90.04 %
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize

from analog_models.mapping import map_weights
from flow.config import ChipConfig
from flow.data import DataError, Dataset, to_dac_codes

# Bump when the recipe changes so cached weights from an older recipe are not reused.
RECIPE_VERSION = 1
_CLIP_SCALES = np.round(np.arange(1.0, 0.2999, -0.025), 3)  # 1.0 (no clip) first; ties keep range
_STE_STEPS = 60
_STE_LR = 0.03  # Adam step in conductance levels; 0.1-1 overshoot at 4-8 levels (measured)


class WeightsError(DataError):
    """A weights file that cannot be used with this config; one line for the user."""


@dataclass
class Weights:
    w: np.ndarray        # (rows, outputs) float64; map_weights(w) gives the programmed levels
    config_digest: str   # training_digest of the config it was trained for
    meta: dict[str, Any] = field(default_factory=dict)


def training_digest(cfg: ChipConfig) -> str:
    """Hash of only what training depends on, so changing e.g. wire resistance reuses weights."""
    blob = json.dumps({
        "network": cfg.to_dict()["network"],
        "quant": cfg.to_dict()["quant"],
        "train": cfg.to_dict()["train"],
        "seed": cfg.seeds.train,
        "recipe": RECIPE_VERSION,
    }, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def dataset_fingerprint(dataset: Dataset) -> str:
    h = hashlib.sha256()
    for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


# -- accuracy -----------------------------------------------------------------------------------

def _accuracy(w: np.ndarray, codes: np.ndarray, labels: np.ndarray) -> float:
    pred = (np.asarray(codes, dtype=np.float64) @ w).argmax(axis=1)
    return float(np.mean(pred == np.asarray(labels)))


def software_accuracy(weights: Weights, codes: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the float weights on DAC codes (N, rows): the chip's ideal, unquantised twin."""
    return _accuracy(weights.w, codes, labels)


def level_weights(w: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """Signed level differences (rows, outputs) the chip realises for weights w (ints)."""
    return map_weights(w, cfg).signed_levels


# -- training -----------------------------------------------------------------------------------

class _Objective:
    """Full-batch softmax cross-entropy on fixed inputs; float64 throughout."""

    def __init__(self, x: np.ndarray, y: np.ndarray, classes: int) -> None:
        self.x = x
        self.xt = np.ascontiguousarray(x.T)  # the gradient matmul is ~2x faster on a C-order copy
        self.y = y
        self.onehot = np.eye(classes)[y]

    def loss_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        z = self.x @ w
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1)
        loss = float(np.mean(np.log(s) - z[np.arange(len(z)), self.y]))
        return loss, self.xt @ (e / s[:, None] - self.onehot) / len(z)


def _dequantised(w: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """What the chip computes with w, in w's units: levels * (span / (levels - 1))."""
    span = float(w.max() - w.min())
    return level_weights(w, cfg) * (span / (cfg.quant.weight_levels - 1))


def _fit_float(obj: _Objective, cfg: ChipConfig) -> tuple[np.ndarray, dict[str, Any]]:
    rows, outputs = cfg.rows, cfg.outputs
    l2 = cfg.train.l2

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(rows, outputs)
        loss, grad = obj.loss_grad(w)
        return loss + l2 * float(np.sum(w * w)), (grad + 2.0 * l2 * w).ravel()

    w0 = np.random.default_rng(cfg.seeds.train).normal(0.0, 0.01, rows * outputs)
    res = scipy.optimize.minimize(fun, w0, jac=True, method="L-BFGS-B",
                                  options={"maxiter": cfg.train.maxiter})
    info = {"lbfgs_iterations": int(res.nit), "lbfgs_evaluations": int(res.nfev),
            "lbfgs_message": str(res.message)}
    return res.x.reshape(rows, outputs), info


def _fit_levels(obj: _Objective, w: np.ndarray, cfg: ChipConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Clip-range search, then a straight-through fine-tune; both judged on level-quantised loss."""
    lo0, hi0 = float(w.min()), float(w.max())
    scan = [(obj.loss_grad(_dequantised(np.clip(w, a * lo0, a * hi0), cfg))[0], float(a))
            for a in _CLIP_SCALES]
    best_loss, best_scale = min(scan, key=lambda t: t[0])
    lo, hi = best_scale * lo0, best_scale * hi0
    best = np.clip(w, lo, hi)
    clip_loss, best_step = best_loss, 0

    lr = _STE_LR * (hi - lo) / (cfg.quant.weight_levels - 1)
    latent, m, v = best.copy(), np.zeros_like(w), np.zeros_like(w)
    b1, b2 = 0.9, 0.999
    for step in range(1, _STE_STEPS + 1):
        clipped = np.clip(latent, lo, hi)
        loss, grad = obj.loss_grad(_dequantised(clipped, cfg))
        if loss < best_loss:
            best, best_loss, best_step = clipped, loss, step - 1
        grad = grad * ((latent >= lo) & (latent <= hi)) + 2.0 * cfg.train.l2 * latent
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        latent = latent - lr * (m / (1 - b1 ** step)) / (np.sqrt(v / (1 - b2 ** step)) + 1e-12)
    info = {"train_loss_levels_naive": scan[0][0], "clip_scale": best_scale,
            "train_loss_levels_clipped": clip_loss,
            "ste_best_step": best_step, "train_loss_levels": best_loss}
    return best, info


def train(cfg: ChipConfig, dataset: Dataset) -> Weights:
    """Train weights for cfg on dataset; statistics (train and test accuracies, timing) in meta."""
    if int(dataset.y_train.max()) >= cfg.outputs:
        raise DataError(f"dataset labels go up to {int(dataset.y_train.max())} but the network "
                        f"has {cfg.outputs} outputs")
    t0 = time.perf_counter()
    codes = to_dac_codes(dataset.x_train, cfg)
    labels = dataset.y_train.astype(np.int64)
    obj = _Objective(codes / float(cfg.quant.dac_max), labels, cfg.outputs)
    w_float, fit_info = _fit_float(obj, cfg)
    w, level_info = _fit_levels(obj, w_float, cfg)
    seconds = time.perf_counter() - t0

    test_codes = to_dac_codes(dataset.x_test, cfg)
    meta: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "train_images": int(len(labels)),
        "dataset": dataset_fingerprint(dataset),
        "train_loss_float": obj.loss_grad(w_float)[0],
        **fit_info,
        **level_info,
    }
    for split, c, y in (("train", codes, labels), ("test", test_codes, dataset.y_test)):
        meta[f"float_{split}_accuracy"] = _accuracy(w_float, c, y)
        meta[f"naive_level_{split}_accuracy"] = _accuracy(level_weights(w_float, cfg), c, y)
        meta[f"software_{split}_accuracy"] = _accuracy(w, c, y)
        meta[f"level_{split}_accuracy"] = _accuracy(level_weights(w, cfg), c, y)
    return Weights(w=w, config_digest=training_digest(cfg), meta=meta)


# -- persistence --------------------------------------------------------------------------------

def save(weights: Weights, path: str | Path) -> None:
    """Write an npz (w, config digest, meta as JSON) atomically, so readers never see half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, w=weights.w, config_digest=np.array(weights.config_digest),
                     meta=np.array(json.dumps(weights.meta, sort_keys=True)))
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path, cfg: ChipConfig) -> Weights:
    """Read weights saved by `save`; WeightsError if unreadable or trained for another config."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            w = np.array(z["w"], dtype=np.float64)
            digest = str(z["config_digest"])
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise WeightsError(f"{p}: not a readable weights file ({' '.join(str(exc).split())})") from None
    expected = training_digest(cfg)
    if digest != expected:
        raise WeightsError(f"{p}: trained for a different config (digest {digest}, this config "
                           f"needs {expected}); retrain")
    if w.shape != (cfg.rows, cfg.outputs) or not np.isfinite(w).all():
        raise WeightsError(f"{p}: weights of shape {w.shape} do not fit a "
                           f"{cfg.rows}x{cfg.outputs} layer or are not finite")
    return Weights(w=w, config_digest=digest, meta=meta)


def cache_path(cfg: ChipConfig, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / f"weights-{cfg.name}-{training_digest(cfg)}.npz"


def load_or_train(cfg: ChipConfig, dataset: Dataset, cache_dir: str | Path) -> Weights:
    """Cached weights when they match cfg and dataset; otherwise train and cache.

    A stale, foreign or damaged cache file is retrained over rather than reported: the cache is
    ours, the user never wrote it.
    """
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
