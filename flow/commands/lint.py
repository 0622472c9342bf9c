"""`xbarflow lint`: `verilator --lint-only -Wall` on the generated Verilog, with the waiver file.

Without `--config`, every shipped config and the UART host variant (`make lint`), and then every
waiver that none of them needs is an error too (the file stays narrow); with `--config`, that
config (and its `--set` overrides) alone. Prints one line per unwaived warning (or unused waiver)
and exits 1 if there is any; a missing Verilator is a usage error (exit 2), never a skip.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ..analysis.lint import (WAIVERS, LintError, lint_variant, read_waivers, shipped_variants,
                             unused_waivers)
from .common import UsageError, load_config, override, toolchain_or_usage, with_overrides, writable_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--config", type=Path, default=None,
                        help="lint this ChipConfig TOML only (default: every shipped config and the UART host)")
    parser.add_argument("--set", type=override, action="append", default=[], metavar="KEY=VALUE",
                        help="override a value of --config, e.g. --set host.interface=uart (repeatable)")
    parser.add_argument("--waivers", type=Path, default=WAIVERS, help="Verilator waiver file")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the generated and split Verilog in this folder")


def run(args) -> int:
    if args.config is not None:
        cfg = with_overrides(load_config(args.config), args.set)
        variants = {cfg.name: cfg}
    elif args.set:
        raise UsageError("--set needs --config")
    else:
        variants = shipped_variants()
    if not args.waivers.is_file():
        raise UsageError(f"waiver file {args.waivers} not found")
    try:
        waivers = read_waivers(args.waivers)
    except LintError as exc:
        raise UsageError(str(exc)) from None
    keep = writable_dir(args.keep) if args.keep is not None else None
    toolchain_or_usage("verilator")
    total, raw = 0, []
    with tempfile.TemporaryDirectory(prefix="xbarflow-lint-") as tmp:
        for name, cfg in variants.items():
            try:
                result = lint_variant(cfg, (keep or Path(tmp)) / name, args.waivers)
            except LintError as exc:
                print(f"[lint] {name}: {exc}", file=sys.stderr)
                return 1
            for w in result.warnings:
                print(f"{name}: {w}")
            print(f"[lint] {name}: {len(result.warnings)} unwaived warnings "
                  f"({len(result.raw)} before the waivers)", file=sys.stderr)
            total += len(result.warnings)
            raw += result.raw
    if args.config is None:   # a waiver may serve one config only: judge them over all
        for w in unused_waivers(waivers, raw):
            print(f"unused waiver {args.waivers.name}:{w.line}: {w.rule} {w.file} {w.match}")
            total += 1
    return 1 if total else 0
