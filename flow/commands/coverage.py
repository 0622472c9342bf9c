"""`xbarflow coverage`: line, branch, toggle, FSM and functional coverage of the generated
Verilog over the co-simulations `make test` runs (`make coverage`), into coverage/summary.md.

The runs (`xbarflow.flow.analysis.coverage_runs.CAMPAIGN`) co-simulate on Verilator coverage
builds with a modest number of images and fuzz frames; their raw data, the merged .dat file of
each design and its annotated Verilog go to OUT (build/coverage), never into git. The summary
lists every uncovered item: waived in coverage/waivers.toml (with its reason) or open.
`--reuse` re-analyses the runs recorded in OUT (after editing the waivers, or the runs an
interrupted campaign finished: the record is saved after each run); `--only RUN` runs just
those and analyses them with the other runs recorded in OUT. Exit 1 on a
failed run, or with `--strict` when an item is open or a done-means check of issue #16 is not
met (`xbarflow.flow.analysis.coverage.done_means`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..analysis import coverage_runs
from ..analysis.coverage import WAIVERS, CoverageError, read_waivers
from ..core import paths
from .common import UsageError, dataset_or_usage, positive_int, toolchain_or_usage, writable_dir

__all__ = ["add_arguments", "run"]

RECORD = "campaign.json"


def add_arguments(parser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--out", type=Path, default=paths.BUILD / "coverage",
                        help="raw and merged coverage data, annotated Verilog (default build/coverage)")
    parser.add_argument("--summary", type=Path, default=paths.ROOT / "coverage" / "summary.md",
                        help="the summary to write (default coverage/summary.md)")
    parser.add_argument("--waivers", type=Path, default=WAIVERS, help="coverage waiver file")
    parser.add_argument("--images", type=positive_int, default=5, help="images per inference run")
    parser.add_argument("--frames", type=positive_int, default=300, help="fuzz frames per host")
    parser.add_argument("--only", action="append", default=[], metavar="RUN",
                        choices=[s.name for s in coverage_runs.CAMPAIGN],
                        help="run only this one of the campaign (repeatable); the runs recorded in --out "
                             "before are analysed with it")
    parser.add_argument("--reuse", action="store_true",
                        help="analyse the runs recorded in --out again, without simulating")
    parser.add_argument("--strict", action="store_true", help="exit 1 if an item is left open or a done-means check fails")


def run(args) -> int:
    if not args.waivers.is_file():
        raise UsageError(f"waiver file {args.waivers} not found")
    try:
        waivers = read_waivers(args.waivers)
    except CoverageError as exc:
        raise UsageError(str(exc)) from None
    out = writable_dir(args.out)
    if args.reuse:
        try:
            records = coverage_runs.load_records(out / RECORD)
        except coverage_runs.CampaignError as exc:
            raise UsageError(f"{exc} (run without --reuse first)") from None
    else:
        toolchain_or_usage("verilator")
        dataset = dataset_or_usage()
        # With --only, the runs recorded before in OUT stay in the analysis.
        keep = []
        if args.only and (out / RECORD).exists():
            try:
                keep = coverage_runs.load_records(out / RECORD)
            except coverage_runs.CampaignError as exc:
                raise UsageError(str(exc)) from None
        try:
            records = coverage_runs.run_campaign(
                dataset, out, images=args.images, frames=args.frames, only=tuple(args.only),
                progress=lambda msg: print(f"[coverage] {msg}", file=sys.stderr, flush=True),
                record=out / RECORD, keep=keep)
        except coverage_runs.CampaignError as exc:
            print(f"[coverage] FAILED: {exc}", file=sys.stderr)
            return 1
    text, open_items, unmet = coverage_runs.analyse_campaign(records, out, waivers)
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(text)
    print(f"[coverage] {args.summary}: {open_items} open items; done-means not met: "
          f"{', '.join(unmet) or 'none'}; data in {out}", file=sys.stderr)
    return 1 if args.strict and (open_items or unmet) else 0
