"""Ex-situ training of the paper's single-layer perceptron, aware of what the chip can realise.

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

Multi-layer networks (train.method "qat", the default for more than one layer) are trained
quantisation-aware instead: Adam on minibatches through the chip's exact forward pass (level
mapping, per-tile ADC rounding and saturation at the config's real analog scale, digital sums,
requantising ReLU with a calibrated 8-bit multiplier or binary activation) with straight-through
gradients; see the "multi-layer" section below. `Weights.layers` and `Weights.requant_mult`
carry the result to the golden model and the chip's registers. On full MNIST (14x14, 4-bit DAC,
32 levels, 128 x 128 tiles, 12 epochs, ~20-30 s on 2 cores): 196-256-10 relu 97.72 %, binary
hidden layer 96.53 % (golden model, wire resistance on; README "MLP").

In-situ training (train.method "manhattan", never chosen by "auto") lives in flow/model/insitu.py:
sign-of-gradient pulses on the device programming model; `train` dispatches to it, and its
Weights also carry the trained devices' conductances (`device_conductance`).

`python -m xbarflow.flow.model.train CONFIG [--set KEY=VALUE ...]` loads the shipped reference weights (see
"reference weights" below) or the cached weights, or trains, and prints software and golden test
accuracies as one JSON line (for in-situ weights also the golden accuracy on the device state,
device_golden_test_accuracy); with `--reference` it trains afresh and ships the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize

from xbarflow.analog_models.adc import code_range, lsb as adc_lsb
from xbarflow.analog_models.mapping import map_weights, normalize
from ..core.config import ChipConfig
from ..data import DataError, Dataset, to_dac_codes

# Bump when the recipe changes so cached weights from an older recipe are not reused.
RECIPE_VERSION = 1
_CLIP_SCALES = np.round(np.arange(1.0, 0.2999, -0.025), 3)  # 1.0 (no clip) first; ties keep range
_STE_STEPS = 60
_STE_LR = 0.03  # Adam step in conductance levels; 0.1-1 overshoot at 4-8 levels (measured)


class WeightsError(DataError):
    """A weights file that cannot be used with this config; one line for the user."""


@dataclass
class Weights:
    """Trained weights of every layer; map_weights(layer) gives its programmed levels.

    `w` is the first layer's matrix (for the SLP: the network). `layers` holds every layer's
    (n_in, n_out) float64 matrix (filled with (w,) when not given), `requant_mult` one unsigned
    register value per hidden layer (0 for a binary layer; empty for the SLP).

    In-situ training (train.method "manhattan", flow/model/insitu.py) also keeps the trained devices'
    own state: `device_conductance` per layer (n_in, 2 n_out) in S and `device_requant_mult`
    calibrated on it (`xbarflow.flow.model.insitu.device_chip` infers with them); empty otherwise.
    """
    w: np.ndarray
    config_digest: str   # training_digest of the config it was trained for
    meta: dict[str, Any] = field(default_factory=dict)
    layers: tuple[np.ndarray, ...] = ()
    requant_mult: tuple[int, ...] = ()
    device_conductance: tuple[np.ndarray, ...] = ()
    device_requant_mult: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.layers:
            self.layers = (self.w,)
        self.layers = tuple(self.layers)
        self.requant_mult = tuple(int(m) for m in self.requant_mult)
        self.device_conductance = tuple(self.device_conductance)
        self.device_requant_mult = tuple(int(m) for m in self.device_requant_mult)


def _uses_lbfgs(cfg: ChipConfig) -> bool:
    return cfg.train.resolved_method(len(cfg.network.layers)) == "lbfgs"


def training_digest(cfg: ChipConfig) -> str:
    """Hash of only what training depends on, so changing e.g. wire resistance reuses weights.

    The SLP recipe (lbfgs) hashes exactly the fields it always did, so its cached weights stay
    valid as the config grows. Quantisation-aware training also depends on the analog scale
    (ADC codes per unit of weighted input), the ADC range and the row tiling (ADC saturation is
    per tile), so those are part of its digest.
    """
    method = cfg.train.resolved_method(len(cfg.network.layers))
    if method == "manhattan":
        from .insitu import digest_blob
        return hashlib.sha256(json.dumps(digest_blob(cfg), sort_keys=True).encode()).hexdigest()[:12]
    if method == "lbfgs":
        n, t = cfg.network, cfg.train
        blob = {
            "network": {"input_size": n.input_size, "layers": list(n.layers),
                        "activations": list(n.activations)},
            "quant": cfg.to_dict()["quant"],
            "train": {"l2": t.l2, "maxiter": t.maxiter},
            "seed": cfg.seeds.train,
            "recipe": RECIPE_VERSION,
        }
    else:
        blob = {
            "network": cfg.to_dict()["network"],
            "quant": cfg.to_dict()["quant"],
            # the manhattan_* knobs do not touch qat: leaving them out keeps cached weights valid
            "train": {k: v for k, v in cfg.to_dict()["train"].items() if not k.startswith("manhattan_")},
            "seed": cfg.seeds.train,
            "recipe": QAT_RECIPE_VERSION,
            "analog": {"codes_per_unit": repr(analog_gain(cfg)), "adc_bits": cfg.adc.bits,
                       "tile_rows": cfg.crossbar.tile_rows},
        }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]


def dataset_fingerprint(dataset: Dataset) -> str:
    h = hashlib.sha256()
    for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


# -- accuracy -----------------------------------------------------------------------------------

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


def _accuracy(w: np.ndarray, codes: np.ndarray, labels: np.ndarray) -> float:
    pred = float_scores(w, codes).argmax(axis=1)
    return float(np.mean(pred == np.asarray(labels)))


def software_accuracy(weights: Weights, codes: np.ndarray, labels: np.ndarray,
                      cfg: ChipConfig | None = None) -> float:
    """Accuracy on DAC codes (N, rows) of the software model.

    Single layer: the float weights (the chip's ideal, unquantised twin). Several layers (needs
    `cfg`): the quantisation-aware training's forward pass (levels, per-tile ADC rounding and
    saturation, requantiser), on an ideal crossbar without wire resistance."""
    if len(weights.layers) == 1:
        return _accuracy(weights.w, codes, labels)
    if cfg is None:
        raise ValueError("software_accuracy of a multi-layer network needs its config")
    return float(np.mean(software_scores(weights, codes, cfg).argmax(axis=1) == np.asarray(labels)))


def software_scores(weights: Weights, codes: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """The last layer's sums s_L (n, classes) of the quantisation-aware training's forward pass
    (ideal crossbar): what the golden model gives without wire resistance, up to float rounding
    on an ADC threshold."""
    model = _ChipModel(cfg)
    lev = [model.levels(w) for w in weights.layers]
    hidden = len(lev) - 1
    mult = list(weights.requant_mult) or [0] * hidden
    s = _sums_in_chunks(model, lev, mult, [1.0] * hidden, np.asarray(codes))[-1]
    return s.astype(np.int64)


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
    method = cfg.train.resolved_method(len(cfg.network.layers))
    if method == "manhattan":
        from .insitu import train_manhattan
        return train_manhattan(cfg, dataset)
    if method == "qat":
        return train_qat(cfg, dataset)
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


# -- multi-layer: quantisation-aware training through the chip's forward pass ------------------
#
# The forward pass is the chip's arithmetic (flow/model/golden.py) on an ideal crossbar:
#   levels    lev_l = map_weights(clip(theta_l, -1, 1)).signed_levels   (normalised by max - min)
#   per tile  a = clip(floor(unit * x[:, rows] @ lev_l[rows] + 1/2), adc_lo, adc_hi),
#             unit = analog_gain / (dac_max * (levels - 1)): the config's real analog scale
#   sum       s_l = sum of a over row tiles (integers)
#   hidden    relu: clip(floor(s * mult_l / 2**shift), 0, dac_max);  binary: dac_max * (s > 0)
#   output    logits = tau * s_L (tau a learned temperature: argmax does not see it)
# Wire resistance is left out (at these conductances it moves column currents by ~1e-6, see
# analog_models/crossbar.py); the golden model includes it. Gradients pass straight through
# every rounding (level, ADC, requantiser) and stop where a value saturates (ADC rails, clip at
# 0 / dac_max, weights outside [-1, 1]); the binary step passes dac_max / (2 w) for |s| < w, w
# the calibrated spread of s. Adam on minibatches, cosine step decay, deterministic from
# seeds.train. mult_l is calibrated (the calib_percentile of the positive sums maps to dac_max)
# at the start of every epoch on a fixed set of training images, so the last epoch trains with
# the delivered registers.

QAT_RECIPE_VERSION = 1
_CALIB_IMAGES = 10000
_INIT_STD = 0.25      # latent weights start N(0, 0.25) inside the clip range [-1, 1]
_EVAL_CHUNK = 5000


def analog_gain(cfg: ChipConfig) -> float:
    """ADC codes per unit of sum_i (x_i / dac_max) * Wn_i on an ideal crossbar, Wn = W / span:
    tia_gain * v_read * (0.9 g_on - g_off) / adc_lsb (derivation: flow/analysis/report.py)."""
    d = cfg.device
    return cfg.sensing.tia_gain * cfg.crossbar.v_read * (0.9 * d.g_on - d.g_off) / adc_lsb(cfg)


class _ChipModel:
    """The chip's forward pass in float64 (exact on integers) and its straight-through backward."""

    def __init__(self, cfg: ChipConfig) -> None:
        self.cfg = cfg
        self.shapes = cfg.network.layer_shapes
        self.acts = cfg.network.activations
        tr = cfg.crossbar.tile_rows
        self.row_tiles = [[slice(r, min(r + tr, n_in)) for r in range(0, n_in, tr)]
                          for n_in, _ in self.shapes]
        self.top = cfg.quant.weight_levels - 1
        self.dac_max = cfg.quant.dac_max
        self.unit = analog_gain(cfg) / (self.dac_max * self.top)
        self.lo, self.hi = (float(v) for v in code_range(cfg.adc.bits))
        self.shift = 2.0 ** -cfg.network.requant_shift
        self.mult_max = (1 << cfg.network.requant_mult_bits) - 1

    def levels(self, w: np.ndarray) -> np.ndarray:
        return map_weights(w, self.cfg).signed_levels.astype(np.float64)

    def forward(self, lev: list[np.ndarray], mult: list[int], width: list[float], x: np.ndarray,
                keep: bool = False, exact: bool = True) -> tuple[list[np.ndarray], list[Any]]:
        """Sums of every layer for DAC codes x; with `keep`, what backward needs. exact=False is
        the float twin (unrounded levels passed in, no ADC / requantiser rounding or clipping)."""
        x = np.asarray(x, dtype=np.float64)
        sums, cache = [], []
        last = len(self.shapes) - 1
        for layer in range(len(lev)):
            s = np.zeros((x.shape[0], self.shapes[layer][1]))
            masks = []
            for sl in self.row_tiles[layer]:
                z = (x[:, sl] @ lev[layer][sl]) * self.unit
                if exact:
                    s += np.clip(np.floor(z + 0.5), self.lo, self.hi)
                    if keep:
                        masks.append((z > self.lo - 0.5) & (z < self.hi + 0.5))
                else:
                    s += z
            sums.append(s)
            entry: list[Any] = [x, masks, None, 0.0]
            if layer < last:
                if self.acts[layer] == "relu":
                    gain = mult[layer] * self.shift
                    u = s * gain
                    x = np.clip(np.floor(u) if exact else u, 0.0, self.dac_max)
                    if keep:
                        entry[2:] = [(u > 0) & (u < self.dac_max + 1), gain]
                else:
                    x = np.where(s > 0, float(self.dac_max), 0.0)
                    if keep:
                        w = width[layer]
                        entry[2:] = [np.abs(s) < w, self.dac_max / (2.0 * w)]
            if keep:
                cache.append(entry)
        return sums, cache

    def backward(self, lev: list[np.ndarray], cache: list[Any], ds: np.ndarray) -> list[np.ndarray]:
        """Gradients w.r.t. every layer's signed levels, given dLoss/ds of the last layer's sums."""
        grads: list[np.ndarray] = [np.empty(0)] * len(lev)
        g = ds
        for layer in range(len(lev) - 1, -1, -1):
            x, masks = cache[layer][0], cache[layer][1]
            dlev = np.empty_like(lev[layer])
            dx = np.empty_like(x) if layer > 0 else None
            for sl, m in zip(self.row_tiles[layer], masks):
                dz = g * m * self.unit
                dlev[sl] = x[:, sl].T @ dz
                if dx is not None:
                    dx[:, sl] = dz @ lev[layer][sl].T
            grads[layer] = dlev
            if dx is not None:
                act_mask, act_gain = cache[layer - 1][2], cache[layer - 1][3]
                g = dx * act_mask * act_gain
        return grads


def _sums_in_chunks(model: _ChipModel, lev, mult, width, codes, exact=True) -> list[np.ndarray]:
    parts = [model.forward(lev, mult, width, codes[i:i + _EVAL_CHUNK], exact=exact)[0]
             for i in range(0, len(codes), _EVAL_CHUNK)]
    return [np.concatenate([p[layer] for p in parts]) for layer in range(len(lev))]


def _calibrate(model: _ChipModel, lev, mult, width, codes, percentile: float) -> None:
    """Set each hidden layer's mult (relu) or STE width (binary) from its sums, layer by layer."""
    shift = model.cfg.network.requant_shift
    for layer in range(len(lev) - 1):
        s = _sums_in_chunks(model, lev[:layer + 1], mult, width, codes)[layer]
        if model.acts[layer] == "relu":
            pos = s[s > 0]
            p = float(np.percentile(pos, percentile)) if pos.size else 1.0
            mult[layer] = int(np.clip(np.rint(model.dac_max * 2.0 ** shift / max(p, 1.0)), 1,
                                      model.mult_max))
        else:
            width[layer] = max(float(np.std(s)), 1.0)


def _qat_accuracy(model: _ChipModel, layers, mult, codes, labels) -> float:
    lev = [model.levels(w) for w in layers]
    s = _sums_in_chunks(model, lev, list(mult), [1.0] * len(lev), codes)[-1]
    return float(np.mean(s.argmax(axis=1) == np.asarray(labels)))


def _float_accuracy(model: _ChipModel, layers, mult, codes, labels) -> float:
    """The float twin: the same weights and registers, no rounding or saturation anywhere."""
    lev = [model.top * normalize(w) for w in layers]
    s = _sums_in_chunks(model, lev, list(mult), [1.0] * len(lev), codes, exact=False)[-1]
    return float(np.mean(s.argmax(axis=1) == np.asarray(labels)))


def _training_set(cfg: ChipConfig, dataset: Dataset) -> tuple["_ChipModel", np.ndarray, np.ndarray, np.ndarray]:
    """What every chip-forward training loop starts from: the model, the training images as
    float DAC codes, their labels, and the images the requantiser is calibrated on."""
    codes = to_dac_codes(dataset.x_train, cfg).astype(np.float64)
    return _ChipModel(cfg), codes, dataset.y_train.astype(np.int64), codes[:_CALIB_IMAGES]


def train_qat(cfg: ChipConfig, dataset: Dataset) -> Weights:
    """Quantisation-aware training of a (multi-layer) network through the chip's forward pass."""
    t0 = time.perf_counter()
    tc = cfg.train
    model, codes, labels, calib = _training_set(cfg, dataset)
    n = len(labels)
    classes = cfg.network.classes
    rng = np.random.default_rng(cfg.seeds.train)
    theta = [rng.normal(0.0, _INIT_STD, shape) for shape in model.shapes]
    hidden = len(theta) - 1
    mult, width = [0] * hidden, [1.0] * hidden

    def delivered(t: np.ndarray) -> np.ndarray:
        return np.clip(t, -1.0, 1.0)

    lev = [model.levels(delivered(t)) for t in theta]
    _calibrate(model, lev, mult, width, calib, tc.calib_percentile)
    s_last = _sums_in_chunks(model, lev, mult, width, calib)[-1]
    log_tau = float(-np.log(max(float(np.std(s_last)), 1e-3)))

    params = [*theta, np.array([log_tau])]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = -(-n // tc.batch)
    total = tc.epochs * steps_per_epoch
    step = 0
    history = []
    onehot_eye = np.eye(classes)
    for epoch in range(tc.epochs):
        lev = [model.levels(delivered(t)) for t in theta]
        _calibrate(model, lev, mult, width, calib, tc.calib_percentile)
        order = rng.permutation(n)
        loss_sum = 0.0
        for start in range(0, n, tc.batch):
            idx = order[start:start + tc.batch]
            xb, yb = codes[idx], labels[idx]
            wd = [delivered(t) for t in theta]
            spans = [float(w.max() - w.min()) or 1.0 for w in wd]
            lev = [model.levels(w) for w in wd]
            sums, cache = model.forward(lev, mult, width, xb, keep=True)
            tau = float(np.exp(params[-1][0]))
            z = tau * sums[-1]
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            p = e / e.sum(axis=1, keepdims=True)
            loss_sum += float(-np.log(p[np.arange(len(yb)), yb] + 1e-300).sum())
            dz = (p - onehot_eye[yb]) / len(yb)
            dlev = model.backward(lev, cache, dz * tau)
            grads = [dl * (model.top / span) * (np.abs(t) <= 1.0) + tc.l2 * t
                     for dl, span, t in zip(dlev, spans, theta)]
            grads.append(np.array([float(np.sum(dz * sums[-1])) * tau]))
            step += 1
            lr = tc.lr * (0.05 + 0.95 * 0.5 * (1.0 + np.cos(np.pi * (step - 1) / total)))
            for k, (prm, g) in enumerate(zip(params, grads)):
                m1[k] = b1 * m1[k] + (1 - b1) * g
                m2[k] = b2 * m2[k] + (1 - b2) * g * g
                prm -= lr * (m1[k] / (1 - b1 ** step)) / (np.sqrt(m2[k] / (1 - b2 ** step)) + eps)
        history.append(round(loss_sum / n, 5))
    layers = tuple(delivered(t) for t in theta)
    seconds = time.perf_counter() - t0

    test_codes = to_dac_codes(dataset.x_test, cfg)
    meta: dict[str, Any] = {
        "method": "qat",
        "seconds": round(seconds, 3),
        "train_images": int(n),
        "dataset": dataset_fingerprint(dataset),
        "epochs": tc.epochs,
        "train_loss_history": history,
        "requant_mult": list(mult),
        "binary_ste_width": [float(w) for w in width],
        # ADC codes of s_L per logit unit (softmax(s_L / logit_scale) is the trained model's p)
        "logit_scale": float(np.exp(-params[-1][0])),
        "analog_codes_per_unit": analog_gain(cfg),
    }
    meta["train_accuracy_images"] = min(n, _CALIB_IMAGES)   # *_train_accuracy: the first ones
    for split, c, y in (("train", codes[:_CALIB_IMAGES], labels[:_CALIB_IMAGES]),
                        ("test", test_codes, dataset.y_test)):
        meta[f"software_{split}_accuracy"] = _qat_accuracy(model, layers, mult, c, y)
        meta[f"float_{split}_accuracy"] = _float_accuracy(model, layers, mult, c, y)
    meta["level_test_accuracy"] = meta["software_test_accuracy"]
    return Weights(w=layers[0], config_digest=training_digest(cfg), meta=meta, layers=layers,
                   requant_mult=tuple(mult))


# -- persistence --------------------------------------------------------------------------------

def _arrays(weights: Weights) -> dict[str, np.ndarray]:
    """What a weights file holds, by array name."""
    arrays: dict[str, np.ndarray] = {
        "config_digest": np.array(weights.config_digest),
        "meta": np.array(json.dumps(weights.meta, sort_keys=True))}
    if len(weights.layers) > 1:   # w is layer_0 then: stored once
        arrays.update({f"layer_{k}": w for k, w in enumerate(weights.layers)})
        arrays["requant_mult"] = np.array(weights.requant_mult, dtype=np.int64)
    if weights.device_conductance:
        arrays.update({f"device_g_{k}": g for k, g in enumerate(weights.device_conductance)})
        arrays["device_requant_mult"] = np.array(weights.device_requant_mult, dtype=np.int64)
    if len(weights.layers) == 1:
        arrays["w"] = weights.w
    return arrays


def _write_npz_fixed(f: Any, arrays: dict[str, np.ndarray]) -> None:
    """An npz whose bytes depend only on the arrays (np.savez stamps every member with the
    current time): sorted members, a fixed date, deflate."""
    with zipfile.ZipFile(f, "w") as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(arrays[name]), allow_pickle=False)


def save(weights: Weights, path: str | Path, *, fixed: bool = False) -> None:
    """Write an npz (w, config digest, meta as JSON; for several layers also layer_<l> and
    requant_mult; for in-situ weights device_g_<l> and device_requant_mult) atomically, so
    readers never see half a file. `fixed`: compressed, and the same bytes for the same weights
    (the shipped reference weights, whose SHA-256 is recorded)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    arrays = _arrays(weights)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if fixed:
                _write_npz_fixed(f, arrays)
            else:
                np.savez(f, **arrays)
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
            w = np.array(z["w" if "w" in z.files else "layer_0"], dtype=np.float64)
            digest = str(z["config_digest"])
            meta = json.loads(str(z["meta"]))
            n_layers = sum(1 for k in z.files if k.startswith("layer_"))
            layers = tuple(np.array(z[f"layer_{k}"], dtype=np.float64) for k in range(n_layers))
            mult = tuple(int(m) for m in z["requant_mult"]) if n_layers else ()
            n_dev = sum(1 for k in z.files if k.startswith("device_g_"))
            dev_g = tuple(np.array(z[f"device_g_{k}"], dtype=np.float64) for k in range(n_dev))
            dev_mult = tuple(int(m) for m in z["device_requant_mult"]) if n_dev else ()
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise WeightsError(f"{p}: not a readable weights file ({' '.join(str(exc).split())})") from None
    expected = training_digest(cfg)
    if digest != expected:
        raise WeightsError(f"{p}: trained for a different config (digest {digest}, this config "
                           f"needs {expected}); retrain")
    layers = layers or (w,)
    shapes = cfg.network.layer_shapes
    if len(layers) != len(shapes) or len(mult) != len(shapes) - 1:
        raise WeightsError(f"{p}: holds {len(layers)} layers, the config has {len(shapes)}")
    for layer, (m, shape) in enumerate(zip(layers, shapes)):
        if m.shape != shape or not np.isfinite(m).all():
            raise WeightsError(f"{p}: weights of shape {m.shape} do not fit a "
                               f"{shape[0]}x{shape[1]} layer or are not finite")
    if dev_g and (len(dev_g) != len(shapes) or len(dev_mult) != len(shapes) - 1 or any(
            g.shape != (n_in, 2 * n_out) or not np.isfinite(g).all()
            for g, (n_in, n_out) in zip(dev_g, shapes))):
        raise WeightsError(f"{p}: its device conductances do not fit the config's layers")
    return Weights(w=w, config_digest=digest, meta=meta, layers=layers, requant_mult=mult,
                   device_conductance=dev_g, device_requant_mult=dev_mult)


def cache_path(cfg: ChipConfig, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / f"weights-{cfg.name}-{training_digest(cfg)}.npz"


def weights_path(cfg: ChipConfig, cache_dir: str | Path, dataset: Dataset | None = None) -> Path:
    """Where `load_or_train` finds cfg's weights: the shipped reference weights if they apply,
    else the cache file (which may not exist yet)."""
    return reference_path(cfg, dataset) or cache_path(cfg, cache_dir)


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


# -- reference weights --------------------------------------------------------------------------
#
# Training is deterministic from the config's seeds on one machine, but not across machines:
# L-BFGS and Adam run on BLAS matmuls whose last bits depend on the BLAS kernel (CPU) and its
# thread count, and after a few hundred iterations the weights differ enough to move the test
# accuracy by a few hundredths of a point (and every figure downstream: programming pulses,
# fault figures). So the weights of the shipped configs are shipped too: data/weights/<config>-
# <method>.npz, their SHA-256 in data/weights/manifest.json, and `load_or_train` uses them
# whenever a config's training digest (and the dataset) is the one they were trained for.
# Everything computed from them (the golden model on its integer grid, the programming replay,
# `float_scores` in a fixed order) is then the same bits everywhere. Regenerate with
# `python -m xbarflow.flow.model.train CONFIG [--set ...] --reference` (`make reference-weights`); a test
# retrains each one and requires the retrained golden accuracy within 0.3 points.

REFERENCE_MANIFEST = "manifest.json"


def reference_name(cfg: ChipConfig) -> str:
    """File stem of a config's reference weights: <config name>-<training method>."""
    return f"{cfg.name}-{cfg.train.resolved_method(len(cfg.network.layers))}"


def reference_manifest(directory: str | Path | None = None) -> dict[str, Any]:
    """The manifest of the shipped reference weights ({"weights": {stem: entry}}); empty when
    there is none."""
    from ..core.paths import REFERENCE_WEIGHTS
    p = Path(directory if directory is not None else REFERENCE_WEIGHTS) / REFERENCE_MANIFEST
    if not p.is_file():
        return {"weights": {}}
    try:
        manifest = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{p}: not a readable manifest ({' '.join(str(exc).split())})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("weights"), dict):
        raise WeightsError(f"{p}: not a reference weights manifest (no 'weights' table)")
    return manifest


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reference_path(cfg: ChipConfig, dataset: Dataset | None = None,
                   directory: str | Path | None = None) -> Path | None:
    """The shipped reference weights file trained for cfg's training digest (and `dataset`, if
    given), after checking its SHA-256 against the manifest; None if none applies. A file that
    does not match its recorded digest is not used (one line on stderr)."""
    from ..core.paths import REFERENCE_WEIGHTS
    folder = Path(directory if directory is not None else REFERENCE_WEIGHTS)
    digest = training_digest(cfg)
    fingerprint = dataset_fingerprint(dataset) if dataset is not None else None
    for entry in reference_manifest(folder)["weights"].values():
        if entry.get("training_digest") != digest:
            continue
        if fingerprint is not None and entry.get("dataset") != fingerprint:
            continue
        p = folder / str(entry.get("file"))
        if not p.is_file() or file_sha256(p) != entry.get("sha256"):
            print(f"xbarflow.flow.model.train: warning: reference weights {p} are missing or do not match their "
                  f"SHA-256 in {folder / REFERENCE_MANIFEST}; not using them", file=sys.stderr)
            continue
        return p
    return None


def load_reference(cfg: ChipConfig, dataset: Dataset | None = None,
                   directory: str | Path | None = None) -> Weights | None:
    """The shipped reference weights for cfg (see `reference_path`), or None."""
    p = reference_path(cfg, dataset, directory)
    return load(p, cfg) if p is not None else None


def write_reference(cfg: ChipConfig, weights: Weights, dataset: Dataset, command: str,
                    directory: str | Path | None = None) -> Path:
    """Ship `weights` as cfg's reference weights: <directory>/<reference_name>.npz (fixed bytes,
    no wall-clock figures in meta) and its manifest entry (SHA-256, size, training digest,
    dataset fingerprint, the command that made it)."""
    from ..core.paths import REFERENCE_WEIGHTS
    folder = Path(directory if directory is not None else REFERENCE_WEIGHTS)
    if weights.config_digest != training_digest(cfg):
        raise WeightsError(f"weights trained for digest {weights.config_digest}, not for this "
                           f"config ({training_digest(cfg)})")
    name = reference_name(cfg)
    meta = {k: v for k, v in weights.meta.items() if k != "seconds"}
    meta["reference"] = name
    shipped = Weights(w=weights.w, config_digest=weights.config_digest, meta=meta,
                      layers=weights.layers, requant_mult=weights.requant_mult,
                      device_conductance=weights.device_conductance,
                      device_requant_mult=weights.device_requant_mult)
    path = folder / f"{name}.npz"
    save(shipped, path, fixed=True)
    path.chmod(0o644)   # a file of the checkout, not a private cache file
    manifest = reference_manifest(folder)
    manifest["weights"][name] = {
        "file": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path),
        "config": cfg.name, "method": cfg.train.resolved_method(len(cfg.network.layers)),
        "training_digest": training_digest(cfg), "dataset": dataset_fingerprint(dataset),
        "dtype": str(np.asarray(weights.w).dtype), "command": command,
    }
    manifest["weights"] = dict(sorted(manifest["weights"].items()))
    manifest["about"] = ("Reference weights of the shipped configs: load_or_train uses a file "
                         "when a config's training digest and the dataset match its entry and "
                         "the file matches its sha256. Regenerate: make reference-weights.")
    (folder / REFERENCE_MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path


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
