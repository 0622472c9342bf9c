"""`xbarflow sweep`: golden accuracy and cost over a grid of config overrides (CSV, JSON, PNG).

The sweep itself (grid, points, files) is `xbarflow.flow.analysis.sweep`; this module reads the
arguments and turns bad input into usage errors.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..analysis.sweep import (
    SweepError,
    cached_dataset,
    grid,
    parse_param,
    sweep,
    write_csv,
)
from ..analysis.plots import plot_sweep, value_label
from ..core import config as config_mod
from ..core import paths
from ..data import DataError
from ..sim.executor import ExecutorError
from .common import UsageError, load_config, writable_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = ("Golden-model accuracy (full test set) and cost over a grid of config "
                          "overrides; CSV and PNG plots.")
    parser.add_argument("--param", action="append", required=True, metavar="KEY=V1,V2,...",
                        help="a config field and its values, e.g. adc.bits=4,6,8 (repeatable: "
                             "the grid is the cartesian product)")
    parser.add_argument("--config", type=Path, default=None, help="base ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: shipped MNIST)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/sweep-<config>)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (1: run in this process)")
    parser.add_argument("--dask", metavar="ADDRESS", default=None,
                        help="run the points on this Dask scheduler (e.g. tcp://10.0.0.5:8786) "
                             "instead of local processes")


def run(args) -> int:

    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    if args.dask is not None and not args.dask.strip():
        raise UsageError("--dask needs a scheduler address, e.g. tcp://127.0.0.1:8786")
    base_cfg = load_config(args.config)
    try:
        params = [parse_param(p) for p in args.param]
        points = grid(params)
        for p in points:
            base_cfg.replace(**p)
    except (SweepError, config_mod.ConfigError) as exc:
        raise UsageError(str(exc)) from None
    data_path = str(args.data) if args.data else None
    try:
        cached_dataset(data_path)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    out = writable_dir(args.out or paths.RUNS / f"sweep-{base_cfg.name}")
    keys = [k for k, _ in params]
    where = f"Dask at {args.dask}" if args.dask else f"{args.jobs} job(s)"
    print(f"[sweep] {len(points)} point(s) over {', '.join(keys)}; {where}", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        rows = sweep(base_cfg.to_dict(), params, jobs=args.jobs, data_path=data_path,
                     dask_address=args.dask)
    except ExecutorError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:   # an interrupt, never a failed point (xbarflow.flow.sim.executor)
        print(f"[sweep] interrupted after {time.perf_counter() - t0:.1f} s; nothing written to {out}",
              file=sys.stderr)
        raise
    write_csv(rows, keys, out / "sweep.csv")
    (out / "sweep.json").write_text(json.dumps(rows, indent=1) + "\n")
    plot_sweep(rows, keys, out / "sweep.png")
    head = keys + ["accuracy", "energy", "latency", "TOPS/W"]
    print(" | ".join(head))
    for r in rows:
        print(" | ".join([value_label(r[k]) for k in keys]
                         + [f"{r['golden_accuracy']:.4f}", f"{r['energy_pj']:.1f} pJ",
                            f"{r['latency_ns']:.0f} ns", f"{r['tops_per_w']:.3g}"]))
    print(f"[sweep] wrote {out / 'sweep.csv'}, {out / 'sweep.png'} in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    return 0
