"""`xbarflow bench`: measure the flow's speed on this machine and write BENCHMARKS.md (`make bench`).

The measurements are `xbarflow.flow.analysis.bench` (each phase in its own process:
`xbarflow bench --phase NAME --params JSON`, hidden), the page `xbarflow.flow.analysis.bench_render`.
Exit status 1 if any phase failed (the page says which). `--only CASE` runs one case of the bench
(`bench.CASES`, e.g. qmm or cosim_qmm) and prints its results as JSON instead of writing the page
(a page of one case would drop every other figure); an unknown case is a usage error (exit 2).
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
    parser.add_argument("--only", metavar="CASE", choices=bench.CASES,
                        help="run only this case and print its results (JSON), no page written: "
                             + ", ".join(bench.CASES))
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
    results = bench.measure(quick=args.quick, log=lambda msg: print(msg, flush=True), only=args.only)
    if args.only:
        print(json.dumps({args.only: results[args.only], "bench_s": results["bench_s"]}, indent=1))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        return 1 if bench.failed(results) else 0
    args.out.write_text(bench.render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"[bench] wrote {args.out} in {results['bench_s']:.0f} s")
    return 1 if bench.failed(results) else 0
