"""`xbarflow report RUN_DIR`: metrics, confusion matrix and per-class table of a demo run folder.

The metrics and the writer are `xbarflow.flow.analysis.report`; this module reads and checks the
run folder (report.json, predictions.npz) and turns what is wrong with it into usage errors.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from ..analysis.metrics import logit_scale
from ..analysis.report import GOLDEN_SUFFIX, NPZ_COSIM, NPZ_GOLDEN, write_report
from ..core import config as config_mod
from ..core import paths
from ..model.weights import WeightsError, load, weights_path
from .common import UsageError

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = ("Metrics of a demo run folder: report.md, confusion.png, per_class.csv "
                          "(and *_golden.* for the golden model on the full test set).")
    parser.add_argument("run_dir", type=Path, help="a demo run folder (report.json, predictions.npz)")
    parser.add_argument("--scale", type=float, default=None,
                        help="ADC codes per logit for the cross-entropy (default: report.json's "
                             "logit_scale, else the config's cached weights)")
    parser.add_argument("--config", type=Path, default=None,
                        help="config of the run, for the logit scale (default configs/<config>.toml)")


def _usage(msg: str) -> UsageError:
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
        weights = load(weights_path(cfg, paths.WEIGHTS), cfg)
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
