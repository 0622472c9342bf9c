"""Quantisation-aware training of multi-layer networks (train.method "qat", the default for more
than one layer) through the chip's exact forward pass (flow/model/forward.py).

The forward pass is the chip's arithmetic on an ideal crossbar (level mapping, per-tile ADC
rounding and saturation at the config's real analog scale, digital sums, requantising ReLU with
a calibrated 8-bit multiplier or binary activation); the output logits are tau * s_L (tau a
learned temperature: argmax does not see it). Gradients pass straight through every rounding
and stop where a value saturates (ADC rails, clip at 0 / dac_max, weights outside [-1, 1]).
Adam on minibatches, cosine step decay, deterministic from seeds.train. mult_l is calibrated
(the calib_percentile of the positive sums maps to dac_max) at the start of every epoch on a
fixed set of training images, so the last epoch trains with the delivered registers.
`Weights.layers` and `Weights.requant_mult` carry the result to the golden model and the chip's
registers. With `train.device_aware` the forward pass reads the cells through the QMM (forward.py,
device_read.py), and with device.read_noise_sigma > 0 the training steps see the read noise too
(noise injection; calibration and the reported accuracies are noiseless). On full MNIST (14x14, 4-bit DAC, 32 levels, 128 x 128 tiles, 12 epochs, ~20-30 s on
2 cores): 196-256-10 relu 97.72 %, binary hidden layer 96.53 % (golden model, wire resistance
on; README "MLP"); 28x28 784-256-128-10 (mlp28) 98.06 % after 30 epochs. A layered network
(conv, pool, flatten, dense) trains by the same loop through flow/model/conv_forward.py's forward
pass (`chip_model`): configs/cnn.toml 98.82 % after 8 epochs at lr 6e-3 (README "Training the
CNN"). The recipe's version is `xbarflow.flow.model.weights.QAT_RECIPE_VERSION`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from xbarflow.analog_models.mapping import normalize
from ..core.config import ChipConfig
from ..data import Dataset, to_dac_codes
from .conv_forward import chip_model
from .forward import (
    CALIB_IMAGES,
    ChipModel,
    analog_gain,
    calibrate_requant,
    sums_in_chunks,
    training_set,
)
from .weights import Weights, dataset_fingerprint, training_digest

__all__ = ["train_qat"]

_INIT_STD = 0.25      # latent weights start N(0, 0.25) inside the clip range [-1, 1]


def _qat_accuracy(model: ChipModel, layers, mult, codes, labels) -> float:
    lev = [model.levels(w) for w in layers]
    s = sums_in_chunks(model, lev, list(mult), [1.0] * len(lev), codes)[-1]
    return float(np.mean(s.argmax(axis=1) == np.asarray(labels)))


def _float_accuracy(model: ChipModel, layers, mult, codes, labels) -> float:
    """The float twin: the same weights and registers, no rounding or saturation anywhere."""
    lev = [model.top * normalize(w) for w in layers]
    s = sums_in_chunks(model, lev, list(mult), [1.0] * len(lev), codes, exact=False)[-1]
    return float(np.mean(s.argmax(axis=1) == np.asarray(labels)))


def train_qat(cfg: ChipConfig, dataset: Dataset, model: ChipModel | None = None) -> Weights:
    """Quantisation-aware training of a (multi-layer) network through the chip's forward pass
    (`model`, by default the config's)."""
    t0 = time.perf_counter()
    tc = cfg.train
    _, codes, labels, calib = training_set(cfg, dataset)
    model = chip_model(cfg) if model is None else model
    n = len(labels)
    classes = cfg.network.classes
    rng = np.random.default_rng(cfg.seeds.train)
    theta = [rng.normal(0.0, _INIT_STD, shape) for shape in model.shapes]
    hidden = len(theta) - 1
    mult, width = [0] * hidden, [1.0] * hidden

    def delivered(t: np.ndarray) -> np.ndarray:
        return np.clip(t, -1.0, 1.0)

    lev = [model.levels(delivered(t)) for t in theta]
    calibrate_requant(model, lev, mult, width, calib, tc.calib_percentile)
    s_last = sums_in_chunks(model, lev, mult, width, calib)[-1]
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
        calibrate_requant(model, lev, mult, width, calib, tc.calib_percentile)
        order = rng.permutation(n)
        loss_sum = 0.0
        for start in range(0, n, tc.batch):
            idx = order[start:start + tc.batch]
            xb, yb = codes[idx], labels[idx]
            wd = [delivered(t) for t in theta]
            spans = [float(w.max() - w.min()) or 1.0 for w in wd]
            lev = [model.levels(w) for w in wd]
            sums, cache = model.forward(lev, mult, width, xb, keep=True, noisy=True)
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
    meta["train_accuracy_images"] = min(n, CALIB_IMAGES)   # *_train_accuracy: the first ones
    for split, c, y in (("train", codes[:CALIB_IMAGES], labels[:CALIB_IMAGES]),
                        ("test", test_codes, dataset.y_test)):
        meta[f"software_{split}_accuracy"] = _qat_accuracy(model, layers, mult, c, y)
        meta[f"float_{split}_accuracy"] = _float_accuracy(model, layers, mult, c, y)
    meta["level_test_accuracy"] = meta["software_test_accuracy"]
    return Weights(w=layers[0], config_digest=training_digest(cfg), meta=meta, layers=layers,
                   requant_mult=tuple(mult))
