"""Classification metrics as the paper tabulates them: confusion matrix, per-class ratios,
Cohen's kappa, cross-entropy and the chip's logit scale (numpy only; the report writer is
`xbarflow.flow.analysis.report`).

For K classes, from the confusion matrix C (rows = true class,
columns = predicted class, C[t, p] = images of class t classified as p):

    accuracy      trace(C) / n
    sensitivity   TP / (TP + FN)      (recall; per class)
    specificity   TN / (TN + FP)      (per class, one-vs-rest)
    precision     TP / (TP + FP)
    F1            2 TP / (2 TP + FP + FN)   (= harmonic mean of precision and sensitivity)
    macro         unweighted mean over all K classes of each per-class metric
    Cohen's kappa (p_o - p_e) / (1 - p_e),  p_o = trace(C) / n,
                  p_e = sum_k rows_k * cols_k / n**2 (agreement expected by chance)
    cross-entropy mean over images of -ln p[true class]  (nats per image)

The paper's shortcut kappa = (acc - 0.1) / 0.9 is (acc - 1/K) / (1 - 1/K); it equals the general
kappa only when the true classes are balanced (then p_e = 1/K whatever the predictions). MNIST's
test set is not exactly balanced (980 to 1135 images per digit), so the general kappa is the
headline value and the shortcut is reported next to it for comparison with the paper.

Edge cases (a 0/0 ratio), all reported as 0 and listed under `undefined` in the metrics dict,
marked with `*` in report.md and named in the `undefined` column of per_class.csv:

  * a class never predicted (TP + FP = 0): precision 0 (as scikit-learn's zero_division=0);
    its F1 is then 2*0 / (0 + FN) = 0, which is defined when the class occurs in the labels;
  * a class absent from the labels (TP + FN = 0): sensitivity 0; its F1 is 0 if the class
    was predicted (FP > 0), undefined (reported 0) if it was not;
  * every image of one class (TN + FP = 0): that class's specificity 0;
  * p_e = 1 (labels and predictions all one and the same class): kappa 0.
  Macro averages include these zeros (all K classes count), so they are conservative.
  K = 2 needs no special case: both classes get their own row (class 1's sensitivity is
  class 0's specificity and vice versa).

Probabilities from the chip. The chip outputs signed ADC codes per class; argmax picks the class.
For the cross-entropy, codes are turned back into the trained model's logits: softmax(codes / s)
with s = `logit_scale(cfg, weights)` ADC codes per logit unit. Derivation (SLP, logits
z = x @ W with x = dac_codes / dac_max, analog_models/{mapping,array,adc}.py):

    DAC:      V_i = x_i * v_read
    mapping:  G+_ik - G-_ik = (0.9 g_on - g_off) * (level+ - level-) / (L - 1),
              level+ - level- ~= (L - 1) * W_ik / span,   span = max W - min W
    TIA:      V_k = gain * sum_i V_i (G+_ik - G-_ik) ~= gain * v_read * (0.9 g_on - g_off) * z_k / span
    ADC:      code_k = round(V_k / lsb),  lsb = v_fs / 2**(bits - 1)
    =>        s = gain * v_read * (0.9 g_on - g_off) / (lsb * span)

(L - 1) cancels. What remains is weight-level rounding (<= half a level per weight), ADC
rounding (<= half a code), wire IR drop (~1e-6 relative at 1 ohm) and ADC saturation (codes at
the rails under-state large logits). Another network (an MLP's last layer) passes its own scale
to `write_report`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xbarflow.analog_models.adc import lsb

from ..core.config import ChipConfig

__all__ = ["accuracy", "classification_metrics", "cohen_kappa", "confusion_matrix", "cross_entropy",
           "cross_entropy_from_scores", "kappa_balanced_shortcut", "log_softmax", "logit_scale",
           "per_class_metrics", "softmax"]

_EPS = 1e-12


def _as_class_vector(a: Any, name: str) -> np.ndarray:
    v = np.asarray(a)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {v.shape}")
    if v.size and not (np.issubdtype(v.dtype, np.integer)
                       or (np.issubdtype(v.dtype, np.floating) and np.all(v == np.round(v)))):
        raise ValueError(f"{name} must hold integer class indices, got dtype {v.dtype}")
    return v.astype(np.int64)


def confusion_matrix(labels: Any, predictions: Any, num_classes: int | None = None) -> np.ndarray:
    """(K, K) int64 counts, rows = true class, columns = predicted class.

    K defaults to max(labels, predictions) + 1; classes must lie in 0 .. K-1.
    """
    y = _as_class_vector(labels, "labels")
    p = _as_class_vector(predictions, "predictions")
    if y.shape != p.shape:
        raise ValueError(f"labels ({y.size}) and predictions ({p.size}) differ in length")
    if y.size == 0:
        raise ValueError("no images: labels and predictions are empty")
    k = int(max(y.max(), p.max())) + 1 if num_classes is None else int(num_classes)
    if k < 2:
        raise ValueError(f"need at least 2 classes, got {k}")
    for v, name in ((y, "labels"), (p, "predictions")):
        if v.min() < 0 or v.max() >= k:
            raise ValueError(f"{name} must lie in 0..{k - 1}, got {int(v.min())}..{int(v.max())}")
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def _check_cm(cm: Any) -> np.ndarray:
    c = np.asarray(cm)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 2:
        raise ValueError(f"confusion matrix must be square with K >= 2, got shape {c.shape}")
    if np.any(c < 0) or c.sum() == 0:
        raise ValueError("confusion matrix must hold non-negative counts, not all zero")
    return c.astype(np.int64)


def _ratio(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """num / den with 0 where den == 0; also the mask of those undefined entries."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    undefined = den == 0
    return np.divide(num, den, out=np.zeros_like(num), where=~undefined), undefined


def accuracy(cm: Any) -> float:
    c = _check_cm(cm)
    return float(np.trace(c) / c.sum())


def per_class_metrics(cm: Any) -> dict[str, np.ndarray]:
    """Per-class counts and ratios (one-vs-rest) of a confusion matrix.

    Keys: support, predicted, tp, fp, fn, tn (int64) and sensitivity, specificity, precision,
    f1 (float64, 0 where undefined) plus undefined_<metric> boolean masks.
    """
    c = _check_cm(cm)
    n = c.sum()
    tp = np.diag(c).copy()
    support = c.sum(axis=1)
    predicted = c.sum(axis=0)
    fn, fp = support - tp, predicted - tp
    tn = n - tp - fn - fp
    out: dict[str, np.ndarray] = {"support": support, "predicted": predicted,
                                  "tp": tp, "fp": fp, "fn": fn, "tn": tn}
    for name, num, den in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                           ("precision", tp, tp + fp), ("f1", 2 * tp, 2 * tp + fp + fn)):
        out[name], out[f"undefined_{name}"] = _ratio(num, den)
    return out


def cohen_kappa(cm: Any) -> float:
    """General Cohen's kappa (p_o - p_e) / (1 - p_e); 0 when p_e == 1 (see the module doc)."""
    c = _check_cm(cm).astype(np.float64)
    p_o, p_e = np.trace(c) / c.sum(), _chance_agreement(c)
    return 0.0 if p_e >= 1.0 else float((p_o - p_e) / (1.0 - p_e))


def _chance_agreement(cm: np.ndarray) -> float:
    """p_e = sum_k rows_k * cols_k / n**2 (exact in integers, so p_e == 1 is detected exactly)."""
    c = np.asarray(cm, dtype=np.int64)
    n = int(c.sum())
    return sum(int(r) * int(k) for r, k in zip(c.sum(axis=1), c.sum(axis=0))) / (n * n)


def kappa_balanced_shortcut(acc: float, num_classes: int) -> float:
    """The paper's (acc - 1/K) / (1 - 1/K); exact only for balanced true classes."""
    return (acc - 1.0 / num_classes) / (1.0 - 1.0 / num_classes)


def softmax(scores: Any, scale: float = 1.0) -> np.ndarray:
    """Row-wise softmax of scores / scale (scale: score units per logit unit)."""
    z = np.asarray(scores, dtype=np.float64) / float(scale)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(scores: Any, scale: float = 1.0) -> np.ndarray:
    z = np.asarray(scores, dtype=np.float64) / float(scale)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def cross_entropy(probabilities: Any, labels: Any, eps: float = _EPS) -> float:
    """Mean -ln p[true class] in nats; p is clipped to >= eps so a zero gives -ln(eps), not inf."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = _as_class_vector(labels, "labels")
    if p.ndim != 2 or p.shape[0] != y.size or y.size == 0:
        raise ValueError(f"probabilities must be (n, K) with n = {y.size} labels, got {p.shape}")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in 0..{p.shape[1] - 1}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("probabilities must be non-negative and sum to 1 per row")
    return float(-np.mean(np.log(np.clip(p[np.arange(y.size), y], eps, 1.0))))


def cross_entropy_from_scores(scores: Any, labels: Any, scale: float = 1.0) -> float:
    """Cross-entropy of softmax(scores / scale), computed stably with a log-softmax."""
    s = np.asarray(scores, dtype=np.float64)
    y = _as_class_vector(labels, "labels")
    if s.ndim != 2 or s.shape[0] != y.size or y.size == 0:
        raise ValueError(f"scores must be (n, K) with n = {y.size} labels, got {s.shape}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale}")
    if y.min() < 0 or y.max() >= s.shape[1]:
        raise ValueError(f"labels must lie in 0..{s.shape[1] - 1}")
    return float(-np.mean(log_softmax(s, scale)[np.arange(y.size), y]))


def logit_scale(cfg: ChipConfig, weights: Any) -> float:
    """ADC codes per logit unit of the layer whose weight matrix is `weights` (a
    `xbarflow.flow.model.weights.Weights` or an array), logits = (dac_codes / dac_max) @ W; see the module doc."""
    w = np.asarray(getattr(weights, "w", weights), dtype=np.float64)
    span = float(w.max() - w.min()) if w.size else 0.0
    if not (span > 0 and math.isfinite(span)):
        raise ValueError("weights must be finite and not all equal (span max W - min W is 0)")
    d = cfg.device
    return cfg.sensing.tia_gain * cfg.crossbar.v_read * (0.9 * d.g_on - d.g_off) / (lsb(cfg) * span)


def classification_metrics(labels: Any, predictions: Any, *, num_classes: int | None = None,
                           scores: Any = None, scale: float | None = None) -> dict[str, Any]:
    """All headline and per-class metrics as a JSON-serialisable dict (see `write_report`)."""
    if scores is not None:
        s = np.asarray(scores)
        if s.ndim != 2:
            raise ValueError(f"scores must be (n, K), got shape {s.shape}")
        if num_classes is None:
            num_classes = s.shape[1]
        elif s.shape[1] != num_classes:
            raise ValueError(f"scores have {s.shape[1]} classes, expected {num_classes}")
    cm = confusion_matrix(labels, predictions, num_classes)
    k = cm.shape[0]
    pc = per_class_metrics(cm)
    acc = accuracy(cm)
    ce = None
    if scores is not None:
        ce = cross_entropy_from_scores(scores, labels, 1.0 if scale is None else float(scale))
    undefined = {m: np.flatnonzero(pc[f"undefined_{m}"]).tolist()
                 for m in ("sensitivity", "specificity", "precision", "f1")}
    undefined["kappa"] = _chance_agreement(cm) >= 1.0
    r = lambda v: round(float(v), 6)  # noqa: E731
    return {
        "images": int(cm.sum()),
        "classes": k,
        "accuracy": r(acc),
        "sensitivity_macro": r(pc["sensitivity"].mean()),
        "specificity_macro": r(pc["specificity"].mean()),
        "precision_macro": r(pc["precision"].mean()),
        "f1_macro": r(pc["f1"].mean()),
        "cohen_kappa": r(cohen_kappa(cm)),
        "kappa_balanced_shortcut": r(kappa_balanced_shortcut(acc, k)),
        "cross_entropy": None if ce is None else r(ce),
        "logit_scale": None if scale is None or scores is None else r(scale),
        "per_class": {
            **{m: [int(v) for v in pc[m]] for m in ("support", "predicted", "tp", "fp", "fn", "tn")},
            **{m: [r(v) for v in pc[m]] for m in ("sensitivity", "specificity", "precision", "f1")},
        },
        "confusion": cm.tolist(),
        "undefined": undefined,
    }
