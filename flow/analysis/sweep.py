"""Design-space sweeps: `xbarflow sweep --param adc.bits=4,6,8 --param crossbar.wire_r=0,1,5`.

The grid is the cartesian product of the `--param KEY=V1,V2,...` values (KEY a dotted config
field; values are TOML scalars, or TOML lists for list fields such as network.layers=[10]).
Each point is evaluated by `evaluate_point`, a pure function of (base config, overrides): it
loads or trains the weights (only network/quant/train/seed changes retrain;
`xbarflow.flow.model.train.load_or_train` caches them by training digest), runs the golden model over the whole
test set and the cost model (`xbarflow.flow.analysis.cost.evaluate`), and returns a flat dict. Points run through
`xbarflow.flow.sim.executor.map_jobs`: in this process (--jobs 1), in a local process pool (--jobs N) or on a
Dask cluster (--dask ADDRESS; its workers need this package and the same weights folder).

Output in --out (default runs/sweep-<config>): sweep.csv (one row per point), sweep.json, and
sweep.png (golden accuracy, energy per inference and TOPS/W against the first parameter, one
line per combination of the others). Ctrl-C stops every point, wherever it runs (exit 130,
"interrupted", nothing written), never as a failed point.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..core import config as config_mod
from ..core import paths
from ..core.errors import XbarflowError
from ..core.hold import hold
from ..core.overrides import toml_value
from ..data import load_dataset
from ..model.context import RunContext
from ..model.train import load_or_train, software_accuracy
from ..model.weights import training_digest, weights_path
from ..sim.executor import JobError, map_jobs
from .cost import evaluate
from .plots import value_label

__all__ = [
    "RESULT_COLUMNS", "SweepError", "cached_dataset", "ensure_weights", "evaluate_point", "grid",
    "map_points", "parse_param", "sweep", "write_csv",
]

#: columns of the CSV after the swept parameters, in order
RESULT_COLUMNS = ("golden_accuracy", "software_accuracy", "energy_pj", "latency_ns", "cycles",
                  "tops", "tops_per_w", "analog_area_um2", "ir_drop", "seconds")


class SweepError(XbarflowError, ValueError):
    """Bad --param syntax or values; one line."""


# -- the grid --------------------------------------------------------------------------------------

def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: '[10],[32,10]' -> ['[10]', '[32,10]']."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def parse_param(text: str) -> tuple[str, list[Any]]:
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise SweepError(f"bad --param '{text}': use KEY=V1,V2,... (e.g. adc.bits=4,6,8)")
    items = _split_top(values)
    if any(not v for v in items):
        raise SweepError(f"bad --param '{text}': empty value")
    return key, [toml_value(v) for v in items]


def grid(params: Iterable[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Cartesian product of the parameter values, as override dicts (first parameter slowest)."""
    params = list(params)
    keys = [k for k, _ in params]
    if len(set(keys)) != len(keys):
        raise SweepError(f"a parameter is given twice: {', '.join(keys)}")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in params))]


# -- one point ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def cached_dataset(path: str | None):
    return load_dataset(path)


def ensure_weights(base: dict, overrides: dict, data_path: str | None = None) -> str:
    """Train (or find the reference or cached) weights of one point; returns their file's path."""
    cfg = config_mod.from_dict(base, source="sweep base").replace(**overrides)
    dataset = cached_dataset(data_path)
    load_or_train(cfg, dataset, paths.WEIGHTS)
    return str(weights_path(cfg, paths.WEIGHTS, dataset))


def evaluate_point(base: dict, overrides: dict, data_path: str | None = None) -> dict[str, Any]:
    """Pure function of one grid point: config (base + overrides) -> flat dict of results."""
    hold("sweep-" + ",".join(f"{k}={value_label(v)}" for k, v in overrides.items()))   # test hook
    t0 = time.perf_counter()
    cfg = config_mod.from_dict(base, source="sweep base").replace(**overrides)
    dataset = cached_dataset(data_path)
    # the level mapping's chip for every point, in-situ training included (as before)
    context = RunContext.build(cfg, dataset, device=False)
    weights, codes, labels = context.weights, context.test_codes, context.labels
    golden = context.golden.infer(codes, np.arange(len(labels)))
    cost = evaluate(cfg, weights, codes).summary()
    out: dict[str, Any] = dict(overrides)
    out["golden_accuracy"] = float(np.mean(golden.classes == labels))
    out["software_accuracy"] = float(software_accuracy(weights, codes, labels, cfg))
    out.update(cost)
    out["config_digest"] = cfg.digest()
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


# -- where the points run ------------------------------------------------------------------------

def map_points(fn: Callable[[dict], Any], points: list[dict], jobs: int,
               dask_address: str | None = None) -> list[Any]:
    """[fn(p) for p in points], in order, wherever `xbarflow.flow.sim.executor.map_jobs` runs them. `fn`
    must be picklable (a module-level function or a functools.partial of one)."""
    try:
        return map_jobs(fn, points, jobs=jobs, dask_address=dask_address)
    except JobError as exc:   # the point's own error (e.g. a config the model rejects)
        raise exc.exc from None


def sweep(base: dict, params: list[tuple[str, list[Any]]], *, jobs: int = 1,
          data_path: str | None = None, dask_address: str | None = None) -> list[dict[str, Any]]:
    """Validate every point, train what needs training (once per training digest), evaluate."""
    points = grid(params)
    base_cfg = config_mod.from_dict(base, source="sweep base")
    digests: dict[str, dict] = {}
    for p in points:   # every point's config is built here first: errors surface before any work
        cfg = base_cfg.replace(**p)
        digests.setdefault(training_digest(cfg), p)
    map_points(functools.partial(ensure_weights, base, data_path=data_path), list(digests.values()),
               jobs, dask_address)
    return map_points(functools.partial(evaluate_point, base, data_path=data_path), points, jobs,
                      dask_address)


# -- output ----------------------------------------------------------------------------------------

def write_csv(rows: list[dict], keys: list[str], path: Path) -> None:
    cols = keys + [c for c in RESULT_COLUMNS if c not in keys]
    extra = sorted({k for r in rows for k in r} - set(cols))
    with path.open("w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=cols + extra)
        wr.writeheader()
        for r in rows:
            wr.writerow({k: (json.dumps(v) if isinstance(v, (list, tuple)) else v) for k, v in r.items()})



