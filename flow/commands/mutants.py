"""`xbarflow mutants`: run the mutant catalogue (tests/mutants/catalogue.toml); every mutant must
be killed by its tests (`make mutants`).

The catalogue and its runner are `xbarflow.flow.analysis.mutants`. Exit status 0 when every
mutant was killed, 1 when any survived (or timed out, errored, or the baseline failed, or a
mutant no longer applies), 2 on bad usage (a malformed catalogue, an unknown mutant, a README
without the table's markers), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..analysis import mutants as mut
from ..sim.executor import JobError
from .common import UsageError, positive_int

__all__ = ["add_arguments", "run"]

PROG = "xbarflow mutants"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def add_arguments(parser) -> None:
    parser.description = "Run the mutant catalogue: every mutant must be killed by its tests."
    parser.add_argument("--catalogue", default=str(mut.CATALOGUE), help="catalogue TOML file")
    parser.add_argument("--root", default=str(mut.ROOT), help="the tree to mutate (a git work tree)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--check", action="store_true",
                        help="only check that every mutant applies to the tree (no tests)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=positive_int, default=mut.DEFAULT_JOBS, help="parallel workers (2)")
    parser.add_argument("--timeout", type=_positive_float, default=mut.DEFAULT_TIMEOUT_S,
                        help=f"seconds per mutant ({mut.DEFAULT_TIMEOUT_S:.0f})")
    parser.add_argument("--out", default=str(mut.DEFAULT_OUT),
                        help="folder for mutants.md and mutants.json (runs/mutants)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run of the selected tests on the unmutated tree")
    parser.add_argument("--keep", action="store_true", help="keep the mutated copies (debugging)")
    parser.add_argument("--readme", metavar="FILE",
                        help="also write the table into FILE between the markers "
                             f"{mut.README_BEGIN} and {mut.README_END}")


def run(args) -> int:
    try:
        mutants = mut.select(mut.load_catalogue(args.catalogue), args.only)
    except mut.CatalogueError as exc:
        raise UsageError(str(exc)) from None
    if args.list:
        for m in mutants:
            print(f"{m.name:40s} {m.file:28s} {m.description}")
        return 0
    problems = mut.catalogue_problems(mutants, args.root)
    if problems:
        for p in problems:
            print(f"{PROG}: {p}", file=sys.stderr)
        return 1
    if args.readme:
        text = Path(args.readme).read_text() if Path(args.readme).is_file() else ""
        if mut.README_BEGIN not in text or mut.README_END not in text:
            raise UsageError(f"{args.readme} has no {mut.README_BEGIN} ... {mut.README_END} block")
    if args.check:
        print(f"catalogue OK: {len(mutants)} mutants, each original found exactly once")
        return 0

    def progress(done: int, total: int, o: mut.Outcome) -> None:
        by = f" by {o.killed_by}" if o.killed_by else ""
        print(f"[{done}/{total}] {o.status:8s} {o.name}{by} ({o.seconds:.1f} s)", file=sys.stderr,
              flush=True)
        if o.status != "killed":
            print(f"    {o.detail}".replace("\n", "\n    "), file=sys.stderr, flush=True)

    def on_baseline(ok: bool, detail: str) -> None:
        print(f"[baseline] {'passed' if ok else 'FAILED'}: {detail}", file=sys.stderr, flush=True)

    print(f"{PROG}: {len(mutants)} mutants{'' if args.no_baseline else ' and the baseline'} "
          f"on {args.jobs} workers", file=sys.stderr, flush=True)
    try:
        report = mut.run_catalogue(mutants, args.root, jobs=args.jobs, timeout_s=args.timeout,
                                   keep=args.keep, with_baseline=not args.no_baseline,
                                   progress=progress, on_baseline=on_baseline)
    except JobError as exc:     # the runner itself failed (e.g. no room to copy the tree)
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    # KeyboardInterrupt: the workers have stopped their pytest runs and copies; xbarflow exits 130
    md, js = mut.write_report(report, mutants, Path(args.out))
    print(mut.markdown_table(report, mutants))
    if args.readme:
        mut.update_readme(Path(args.readme), report, mutants)
    print(f"\n(written to {md} and {js}{f', table in {args.readme}' if args.readme else ''})",
          file=sys.stderr)
    if not report.baseline_ok:
        print(f"{PROG}: the run does not count: {report.baseline_detail}", file=sys.stderr)
    return 0 if report.ok else 1
