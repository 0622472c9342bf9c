"""The classification report writer (report.md, per_class.csv, confusion.png from the metrics of
`xbarflow.flow.analysis.metrics`) and `xbarflow report`; the write-margin and disturb summary of
a programming run (`write_margins`)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import classification_metrics
from xbarflow.analog_models.programming import level_step
from .plots import plot_confusion, plot_write_margins

__all__ = ["GOLDEN_SUFFIX", "NPZ_COSIM", "NPZ_GOLDEN", "write_margins", "write_report"]

#: Names the demo's predictions.npz must provide: co-simulated images ...
NPZ_COSIM = ("indices", "labels", "classes", "adc_codes")
#: ... and, optionally (all or none), the golden model on the full test set.
NPZ_GOLDEN = ("golden_classes", "golden_adc_codes", "labels_full")
GOLDEN_SUFFIX = "_golden"


def write_margins(cfg, results, out: Path) -> dict:
    """Disturb record and write margins of the used cells of a programming result, or of a
    list of per-tile results (None for a tile not programmed; flow/model/programming.py; writes
    through the array), with the margin histogram programming_margins.png beside the pulses
    histogram; just the bias with the ideal write."""
    summary = {"bias": cfg.programming.bias, "cell": cfg.crossbar.cell}
    if cfg.programming.bias == "ideal":
        return summary
    per_tile = results if isinstance(results, (list, tuple)) else [results]

    def used(field: str) -> np.ndarray:   # every programmed tile's used block, flattened
        return np.concatenate([getattr(r, field)[:cfg.tiles[k].rows, :2 * cfg.tiles[k].outputs].ravel()
                               for k, r in enumerate(per_tile) if r is not None])

    d = cfg.device
    steps = np.abs(used("disturb_change")) * (d.g_on - d.g_off) / level_step(cfg)
    sel, dis = used("v_selected_min"), used("v_disturb_max")
    pulsed = np.isfinite(sel)
    summary.update({
        "disturb_events": int(used("disturb_events").sum()),
        "disturb_failures": int(used("disturbed_out").sum()),
        "disturb_change_steps_mean": float(steps.mean()),
        "disturb_change_steps_max": float(steps.max()),
        "v_selected_min": float(sel[pulsed].min()) if pulsed.any() else None,
        "v_disturb_max": float(dis.max()),
        "write_margin_min_v": float((sel[pulsed] - dis[pulsed]).min()) if pulsed.any() else None,
        "margins_histogram": str(plot_write_margins(sel, dis, out / "programming_margins.png",
                                                    title=f"{cfg.name} ({cfg.programming.bias}, "
                                                          f"{cfg.crossbar.cell})")),
    })
    return summary


# -- report files -----------------------------------------------------------------------------

_HEADLINE = (("accuracy", "accuracy"), ("sensitivity (macro)", "sensitivity_macro"),
             ("specificity (macro)", "specificity_macro"), ("precision (macro)", "precision_macro"),
             ("F1 (macro)", "f1_macro"), ("Cohen's kappa", "cohen_kappa"),
             ("kappa, balanced shortcut (acc - 1/K)/(1 - 1/K)", "kappa_balanced_shortcut"),
             ("cross-entropy (nats/image)", "cross_entropy"),
             ("logit scale (score units per logit)", "logit_scale"))
_PER_CLASS = ("sensitivity", "specificity", "precision", "f1")


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def _markdown(m: dict[str, Any], title: str, extra: dict | None, png: str) -> str:
    k, pc, und = m["classes"], m["per_class"], m["undefined"]
    lines = [f"# {title}", ""]
    if extra:
        lines += ["| Run | |", "|---|---|", *[f"| {key} | {_fmt(v)} |" for key, v in extra.items()], ""]
    lines += ["| Metric | Value |", "|---|---|", f"| images | {m['images']} |", f"| classes | {k} |"]
    for label, key in _HEADLINE:
        mark = "*" if key == "cohen_kappa" and und["kappa"] else ""
        lines.append(f"| {label} | {_fmt(m[key])}{mark} |")
    lines += ["", "## Per class", "",
              "| class | support | predicted | sensitivity | specificity | precision | F1 |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for c in range(k):
        cells = [f"{pc[name][c]:.4f}" + ("*" if c in und[name] else "") for name in _PER_CLASS]
        lines.append(f"| {c} | {pc['support'][c]} | {pc['predicted'][c]} | " + " | ".join(cells) + " |")
    lines.append(f"| macro | {m['images']} | {m['images']} | {m['sensitivity_macro']:.4f} | "
                 f"{m['specificity_macro']:.4f} | {m['precision_macro']:.4f} | {m['f1_macro']:.4f} |")
    if any(und[name] for name in _PER_CLASS) or und["kappa"]:
        lines += ["", "\\* undefined (0/0: a class never predicted, absent from the labels, or the "
                  "only class), reported as 0; macro averages include it."]
    lines += ["", "Sensitivity = recall = TP/(TP+FN), specificity = TN/(TN+FP) one-vs-rest, "
              "precision = TP/(TP+FP), F1 = 2TP/(2TP+FP+FN); kappa = (p_o - p_e)/(1 - p_e); "
              "cross-entropy = mean -ln softmax(scores / logit scale)[true class].",
              "", "## Confusion matrix", "", "Rows: true class; columns: predicted class.", "",
              f"![confusion matrix]({png})", ""]
    if k <= 20:
        lines += ["| true \\ pred | " + " | ".join(str(c) for c in range(k)) + " |",
                  "|---:|" + "---:|" * k]
        lines += [f"| {t} | " + " | ".join(str(v) for v in row) + " |"
                  for t, row in enumerate(m["confusion"])]
        lines.append("")
    return "\n".join(lines)


def _write_csv(path: Path, m: dict[str, Any]) -> None:
    pc, und = m["per_class"], m["undefined"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "support", "predicted", "tp", "fp", "fn", "tn",
                    *_PER_CLASS, "undefined"])
        for c in range(m["classes"]):
            w.writerow([c, *(pc[key][c] for key in ("support", "predicted", "tp", "fp", "fn", "tn")),
                        *(f"{pc[name][c]:.6f}" for name in _PER_CLASS),
                        ";".join(name for name in _PER_CLASS if c in und[name])])


def write_report(run_dir: str | Path, labels: Any, predictions: Any, *, scores: Any = None,
                 scale: float | None = None, title: str = "Classification report",
                 extra: dict | None = None, num_classes: int | None = None,
                 suffix: str = "") -> dict[str, Any]:
    """Write report{suffix}.md, confusion{suffix}.png and per_class{suffix}.csv into run_dir.

    labels, predictions: (n,) class indices. scores: optional (n, K) per-class scores (the chip's
    signed ADC codes) for the cross-entropy of softmax(scores / scale); scale in score units per
    logit (`logit_scale`), None meaning the scores already are logits. extra: key/value rows shown
    at the top of report.md (not repeated in the returned dict). Returns the JSON-serialisable
    metrics dict (`classification_metrics` plus "files"); ValueError on inconsistent input.
    """
    if scale is not None and not (math.isfinite(float(scale)) and float(scale) > 0):
        raise ValueError(f"scale must be a positive number, got {scale}")
    m = classification_metrics(labels, predictions, num_classes=num_classes, scores=scores,
                               scale=scale)
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"markdown": f"report{suffix}.md", "confusion_png": f"confusion{suffix}.png",
             "per_class_csv": f"per_class{suffix}.csv"}
    (out / files["markdown"]).write_text(_markdown(m, title, extra, files["confusion_png"]))
    plot_confusion(out / files["confusion_png"], np.asarray(m["confusion"]), title)
    _write_csv(out / files["per_class_csv"], m)
    m["title"] = title
    m["files"] = files
    return m
