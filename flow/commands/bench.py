"""`xbarflow bench`: measure the flow's speed on this machine and write BENCHMARKS.md (`make bench`).

The measurements are `xbarflow.flow.analysis.bench` (each phase in its own process:
`xbarflow bench --phase NAME --params JSON`, hidden), the page `xbarflow.flow.analysis.bench_render`.
Exit status 1 if any phase failed (the page says which).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..analysis import bench
from ..core import paths

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = bench.__doc__.splitlines()[0]
    parser.add_argument("--out", type=Path, default=paths.ROOT / "BENCHMARKS.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--quick", action="store_true", help="fewer images (for trying the bench)")
    parser.add_argument("--phase", choices=sorted(bench.PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--params", type=_params, default={}, help=argparse.SUPPRESS)


def _params(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--params is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--params must be a JSON object")
    return value


def run(args) -> int:
    if args.phase:
        print(json.dumps(bench.PHASES[args.phase](args.params)))
        return 0
    results = bench.measure(quick=args.quick, log=lambda msg: print(msg, flush=True))
    args.out.write_text(bench.render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"[bench] wrote {args.out} in {results['bench_s']:.0f} s")
    return 1 if bench.failed(results) else 0
