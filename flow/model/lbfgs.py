"""The SLP recipe (train.method "lbfgs"): ex-situ training of the paper's single-layer
perceptron, aware of what the chip can realise.

The chip sees DAC codes, not pixels, and realises each weight as (level+ - level-) after
`xbarflow.analog_models.mapping.map_weights`. So training

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

With `train.device_aware` (read_model "qmm") steps 2 and 3 judge and fine-tune the levels through
the device's read model instead (flow/model/device_read.py: every cell's QMM current at its
input code and programmed state, wire resistance neglected), in the same units as the linear
loss, with the read noise when device.read_noise_sigma > 0 (one fixed draw per training image and
output); step 1 stays the linear float fit, the starting point. Figures: README "Device-aware
training".

`float_scores` sums codes @ w in a fixed order, so the SLP's software accuracy is the same bits
on every machine. The recipe's version is `xbarflow.flow.model.weights.RECIPE_VERSION`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.optimize

from xbarflow.analog_models.mapping import map_weights
from ..core.config import ChipConfig
from ..data import Dataset, to_dac_codes
from .device_read import DeviceRead
from .forward import TRAIN_NOISE_KEY, analog_gain
from .weights import Weights, dataset_fingerprint, training_digest

__all__ = ["float_accuracy", "float_scores", "level_weights", "train_lbfgs"]

_CLIP_SCALES = np.round(np.arange(1.0, 0.2999, -0.025), 3)  # 1.0 (no clip) first; ties keep range
_STE_STEPS = 60
_STE_LR = 0.03  # Adam step in conductance levels; 0.1-1 overshoot at 4-8 levels (measured)


def float_scores(w: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """codes @ w (n, outputs) summed row by row in a fixed order with elementwise numpy ops.

    A BLAS matmul's last bits depend on its kernel and thread count, and an argmax on a near tie
    with them; this sum is the same bits on every machine, so the software accuracy is too."""
    ct = np.ascontiguousarray(np.asarray(codes, dtype=np.float64).T)
    w = np.asarray(w, dtype=np.float64)
    z = np.zeros((ct.shape[1], w.shape[1]))
    for k in range(w.shape[0]):
        z += ct[k][:, None] * w[k]
    return z


def float_accuracy(w: np.ndarray, codes: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the argmax of `float_scores`."""
    pred = float_scores(w, codes).argmax(axis=1)
    return float(np.mean(pred == np.asarray(labels)))


def level_weights(w: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """Signed level differences (rows, outputs) the chip realises for weights w (ints)."""
    return map_weights(w, cfg).signed_levels


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


class _DeviceObjective:
    """The same cross-entropy on the level-quantised chip read through the QMM (device_read.py):
    logits = (span / analog_gain) * sum_i D[code_i, level_i], which is codes / dac_max @
    dequantised weights for linear cells; gradients straight through the level rounding."""

    def __init__(self, codes: np.ndarray, y: np.ndarray, classes: int, cfg: ChipConfig) -> None:
        self.codes = np.asarray(codes)
        self.y = y
        self.onehot = np.eye(classes)[y]
        self.cfg = cfg
        self.read = DeviceRead(cfg)
        self.scale = 1.0 / analog_gain(cfg)
        # read noise: one frozen draw per image and output (a deterministic objective for the
        # clip scan and the best-iterate choice), scaled by each evaluation's noise_std
        self.normal = (np.random.default_rng([cfg.seeds.train, TRAIN_NOISE_KEY])
                       .standard_normal((len(y), classes)) if self.read.sigma > 0 else None)

    def loss_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and its gradient w.r.t. the dequantised weights, for clipped weights w."""
        span = float(w.max() - w.min())
        lev = level_weights(w, self.cfg)
        z = self.read.sums(self.codes, lev)
        if self.normal is not None:
            z += self.read.noise_std(self.codes, lev) * self.normal
        z *= span * self.scale
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1)
        loss = float(np.mean(np.log(s) - z[np.arange(len(z)), self.y]))
        dz = (e / s[:, None] - self.onehot) / len(z)
        dlev = self.read.grad_levels(self.codes, lev, dz) * (span * self.scale)
        return loss, dlev * ((self.cfg.quant.weight_levels - 1) / span)


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


def _fit_levels(obj: _Objective, w: np.ndarray, cfg: ChipConfig,
                device: _DeviceObjective | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Clip-range search, then a straight-through fine-tune; both judged on level-quantised loss
    (through the device's read model when `device` is given)."""

    def level_loss(clipped: np.ndarray) -> tuple[float, np.ndarray]:
        if device is not None:
            return device.loss_grad(clipped)
        return obj.loss_grad(_dequantised(clipped, cfg))

    lo0, hi0 = float(w.min()), float(w.max())
    scan = [(level_loss(np.clip(w, a * lo0, a * hi0))[0], float(a)) for a in _CLIP_SCALES]
    best_loss, best_scale = min(scan, key=lambda t: t[0])
    lo, hi = best_scale * lo0, best_scale * hi0
    best = np.clip(w, lo, hi)
    clip_loss, best_step = best_loss, 0

    lr = _STE_LR * (hi - lo) / (cfg.quant.weight_levels - 1)
    latent, m, v = best.copy(), np.zeros_like(w), np.zeros_like(w)
    b1, b2 = 0.9, 0.999
    for step in range(1, _STE_STEPS + 1):
        clipped = np.clip(latent, lo, hi)
        loss, grad = level_loss(clipped)
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


def train_lbfgs(cfg: ChipConfig, dataset: Dataset) -> Weights:
    """The SLP recipe (train.method "lbfgs"): L-BFGS float fit, clip-range search and
    straight-through fine-tune; statistics (train and test accuracies, timing) in meta."""
    t0 = time.perf_counter()
    codes = to_dac_codes(dataset.x_train, cfg)
    labels = dataset.y_train.astype(np.int64)
    obj = _Objective(codes / float(cfg.quant.dac_max), labels, cfg.outputs)
    w_float, fit_info = _fit_float(obj, cfg)
    device = (_DeviceObjective(codes, labels, cfg.outputs, cfg) if cfg.train.device_aware
              else None)
    w, level_info = _fit_levels(obj, w_float, cfg, device)
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
    if device is not None:
        meta["device_aware"] = True
    for split, c, y in (("train", codes, labels), ("test", test_codes, dataset.y_test)):
        meta[f"float_{split}_accuracy"] = float_accuracy(w_float, c, y)
        meta[f"naive_level_{split}_accuracy"] = float_accuracy(level_weights(w_float, cfg), c, y)
        meta[f"software_{split}_accuracy"] = float_accuracy(w, c, y)
        meta[f"level_{split}_accuracy"] = float_accuracy(level_weights(w, cfg), c, y)
    return Weights(w=w, config_digest=training_digest(cfg), meta=meta)
