"""The classification report writer (report.md, per_class.csv, confusion.png from the metrics of
`xbarflow.flow.analysis.metrics`) and `xbarflow report`."""

from __future__ import annotations

import csv
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import classification_metrics, logit_scale
from .plots import plot_confusion

__all__ = ["GOLDEN_SUFFIX", "NPZ_COSIM", "NPZ_GOLDEN", "add_arguments", "run", "write_report"]

#: Names the demo's predictions.npz must provide: co-simulated images ...
NPZ_COSIM = ("indices", "labels", "classes", "adc_codes")
#: ... and, optionally (all or none), the golden model on the full test set.
NPZ_GOLDEN = ("golden_classes", "golden_adc_codes", "labels_full")
GOLDEN_SUFFIX = "_golden"


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


# -- `xbarflow report RUN_DIR` ----------------------------------------------------------------

def add_arguments(parser) -> None:
    parser.description = ("Metrics of a demo run folder: report.md, confusion.png, per_class.csv "
                          "(and *_golden.* for the golden model on the full test set).")
    parser.add_argument("run_dir", type=Path, help="a demo run folder (report.json, predictions.npz)")
    parser.add_argument("--scale", type=float, default=None,
                        help="ADC codes per logit for the cross-entropy (default: report.json's "
                             "logit_scale, else the config's cached weights)")
    parser.add_argument("--config", type=Path, default=None,
                        help="config of the run, for the logit scale (default configs/<config>.toml)")


def _usage(msg: str):
    from ..cli import UsageError
    return UsageError(msg)


def _read_run(run_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    if not run_dir.is_dir():
        raise _usage(f"run folder not found: {run_dir}")
    rj = run_dir / "report.json"
    if not rj.is_file():
        raise _usage(f"{rj} not found (run `xbarflow demo` first)")
    try:
        report = json.loads(rj.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _usage(f"{rj}: not readable JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(report, dict):
        raise _usage(f"{rj}: expected a JSON object at the top level")
    npz = run_dir / "predictions.npz"
    if not npz.is_file():
        raise _usage(f"{npz} not found (the demo saves it next to report.json)")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {key: np.array(z[key]) for key in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _usage(f"{npz}: not a readable npz ({' '.join(str(exc).split())})") from None
    missing = [key for key in NPZ_COSIM if key not in arrays]
    if missing:
        raise _usage(f"{npz}: missing array(s) {', '.join(missing)}")
    present = [key for key in NPZ_GOLDEN if key in arrays]
    if present and len(present) != len(NPZ_GOLDEN):
        raise _usage(f"{npz}: has {', '.join(present)} but not "
                     f"{', '.join(k for k in NPZ_GOLDEN if k not in present)}")
    for key, arr in arrays.items():
        if key in NPZ_COSIM + NPZ_GOLDEN and not np.issubdtype(arr.dtype, np.integer):
            raise _usage(f"{npz}: {key} must hold integers, got dtype {arr.dtype}")
    return report, arrays


def _check_set(npz: Path, labels: np.ndarray, classes: np.ndarray, codes: np.ndarray,
               names: tuple[str, str, str]) -> None:
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise _usage(f"{npz}: {names[2]} must be (images, classes), got shape {codes.shape}")
    n, k = codes.shape
    for arr, name in ((labels, names[0]), (classes, names[1])):
        if arr.shape != (n,):
            raise _usage(f"{npz}: {name} must be ({n},) like {names[2]}, got shape {arr.shape}")
        if n and (arr.min() < 0 or arr.max() >= k):
            raise _usage(f"{npz}: {name} must lie in 0..{k - 1}, got {arr.min()}..{arr.max()}")
    if n == 0:
        raise _usage(f"{npz}: {names[2]} holds no images")


def _find_scale(report: dict) -> float | None:
    candidates = [report] + [v for v in report.values() if isinstance(v, dict)]
    for d in candidates:
        v = d.get("logit_scale")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
            return float(v)
    return None


def _scale_from_config(args, report: dict) -> tuple[float | None, str]:
    from ..core import config as config_mod
    from ..cli import WEIGHTS_DIR
    from ..model.weights import WeightsError, load, weights_path

    path = args.config
    if path is None:
        name = report.get("config")
        if not isinstance(name, str):
            return None, "no logit scale: report.json names no config; pass --scale or --config"
        path = config_mod.CONFIG_DIR / f"{name}.toml"
        if not path.is_file():
            return None, f"no logit scale: {path} not found; pass --scale or --config"
    try:
        cfg = config_mod.load(path)
    except config_mod.ConfigError as exc:
        raise _usage(str(exc)) from None
    digest = report.get("config_digest")
    if digest is not None and digest != cfg.digest():
        msg = f"config {path} (digest {cfg.digest()}) is not the run's ({digest})"
        if args.config is not None:
            raise _usage(msg)
        return None, f"no logit scale: {msg}; pass --scale or --config"
    try:
        weights = load(weights_path(cfg, WEIGHTS_DIR), cfg)
    except WeightsError as exc:
        return None, f"no logit scale: {exc}"
    return logit_scale(cfg, weights), f"from {path} and its cached weights"


def run(args) -> int:
    run_dir: Path = args.run_dir
    if args.scale is not None and not (math.isfinite(args.scale) and args.scale > 0):
        raise _usage(f"--scale must be a positive number, got {args.scale}")
    report, a = _read_run(run_dir)
    npz = run_dir / "predictions.npz"
    _check_set(npz, a["labels"], a["classes"], a["adc_codes"], ("labels", "classes", "adc_codes"))
    if a["indices"].shape != a["labels"].shape:
        raise _usage(f"{npz}: indices must be shaped like labels {a['labels'].shape}, "
                     f"got {a['indices'].shape}")
    golden = "golden_adc_codes" in a
    if golden:
        _check_set(npz, a["labels_full"], a["golden_classes"], a["golden_adc_codes"],
                   ("labels_full", "golden_classes", "golden_adc_codes"))
        if a["golden_adc_codes"].shape[1] != a["adc_codes"].shape[1]:
            raise _usage(f"{npz}: golden_adc_codes and adc_codes differ in class count")

    if args.scale is not None:
        scale, source = float(args.scale), "from --scale"
    elif (scale := _find_scale(report)) is not None:
        source = "from report.json"
    else:
        scale, source = _scale_from_config(args, report)
    if scale is None:
        print(f"[xbarflow] {source}; cross-entropy not reported")

    extra = {key: report[key] for key in ("config", "config_digest", "simulator", "parity",
                                          "software_accuracy") if key in report}
    if scale is not None:
        extra["logit scale source"] = source
    cfg_name = report.get("config", "?")
    n, idx = len(a["labels"]), a["indices"]
    span = f"test images {idx.min()}..{idx.max()}" if n else "no images"
    sets = [("", f"{cfg_name}: co-simulated chip on {report.get('simulator', '?')}, {n} images ({span})",
             a["labels"], a["classes"], a["adc_codes"])]
    if golden:
        sets.append((GOLDEN_SUFFIX, f"{cfg_name}: golden model, full test set ({len(a['labels_full'])} images)",
                     a["labels_full"], a["golden_classes"], a["golden_adc_codes"]))
    for suffix, title, labels, classes, codes in sets:
        try:
            m = write_report(run_dir, labels, classes, scores=codes if scale is not None else None,
                             scale=scale, title=title, extra=extra, suffix=suffix)
        except OSError as exc:
            raise _usage(f"cannot write the report into {run_dir}: {exc.strerror or exc}") from None
        ce = "n/a" if m["cross_entropy"] is None else f"{m['cross_entropy']:.4f}"
        print(f"[xbarflow] {title}: accuracy {m['accuracy']:.4f}, macro F1 {m['f1_macro']:.4f}, "
              f"kappa {m['cohen_kappa']:.4f}, cross-entropy {ce} -> {run_dir / m['files']['markdown']}")
    return 0
