"""`xbarflow fuzz`: seeded random and mutated host frames on Verilator against the reference
model, per host interface (`make fuzz`: 10,000 per host).

The plan and the bench runner are `xbarflow.flow.analysis.fuzz`; this command prints each
host's summary and writes them all to OUT/fuzz.json. Exit status 1 if any host failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..analysis.fuzz import DEFAULT_FRAMES, HOSTS, FuzzError, format_summary, run_fuzz
from ..core import paths
from ..sim.runner import SIMULATORS
from .common import load_config, positive_int, toolchain_or_usage, writable_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES, help="fuzz frames per host")
    parser.add_argument("--host", nargs="+", choices=HOSTS, default=list(HOSTS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sim", choices=SIMULATORS, default="verilator")
    parser.add_argument("--config", type=Path, default=None, help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--out", type=Path, default=paths.RUNS / "fuzz",
                        help="run folder (default runs/fuzz)")


def run(args) -> int:
    cfg = load_config(args.config)
    out = writable_dir(args.out)
    toolchain_or_usage(args.sim)
    status = 0
    report = {}
    for host in args.host:
        try:
            s = run_fuzz(cfg, host, args.frames, out / host, seed=args.seed, sim=args.sim)
        except FuzzError as exc:
            print(f"[fuzz] {host}: FAILED: {exc}", file=sys.stderr)
            status = 1
            continue
        report[host] = s
        print(format_summary(s), flush=True)
    (out / "fuzz.json").write_text(json.dumps(report, indent=1) + "\n")
    return status
