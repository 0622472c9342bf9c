"""`xbarflow figures`: every README figure that comes from running the flow, into figures.json,
then the README's marked blocks rewritten from it (`make figures`); `--check` recomputes every
reference figure and compares (`make figures-check`).

The figures are `xbarflow.flow.analysis.figures`. Exit status 1 when a figure could not be
computed (what was done is kept in the JSON) or, with `--check`, when anything differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..analysis import figures
from ..analysis.figures_readme import README
from .common import UsageError

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = figures.__doc__.splitlines()[0]
    parser.add_argument("--out", type=Path, default=figures.FIGURES_JSON, help="figures JSON (default figures.json)")
    parser.add_argument("--readme", type=Path, default=README, help="README to rewrite (default README.md)")
    parser.add_argument("--only", nargs="+", choices=list(figures.GROUPS), default=None,
                        help="recompute only these groups (the others are kept from --out)")
    parser.add_argument("--check", action="store_true",
                        help="recompute every reference figure and compare with --out and the README; "
                             "write nothing (exit 1 on a difference)")
    parser.add_argument("--readme-only", action="store_true", help="only re-render the README from --out")


def run(args) -> int:
    try:
        figures.load_stored(args.out)   # a bad --out is bad input, found before any work
    except figures.FiguresError as exc:
        raise UsageError(str(exc)) from None
    if not args.readme.is_file():
        raise UsageError(f"README not found: {args.readme}")
    if args.check:
        problems = figures.check(args.out, args.readme)
        for p in problems:
            print(f"xbarflow figures: {p}", file=sys.stderr)
        print(f"[figures] {'DIFFER' if problems else 'all reference figures equal'} ({args.out})")
        return 1 if problems else 0
    if args.readme_only:
        stored = figures.load_stored(args.out)
    else:
        stored = figures.update(args.out, args.only)   # FiguresError: exit 1 (xbarflow.flow.cli)
        print(f"[figures] wrote {args.out}")
    figures.rewrite_readme(args.readme, stored)
    print(f"[figures] rewrote the marked blocks of {args.readme}")
    return 0
