"""`xbarflow verilog`: write the chip's Verilog and its JSON sidecar."""

from __future__ import annotations

from pathlib import Path

from ..api import Chip
from .common import load_config, writable_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)


def run(args) -> int:
    cfg = load_config(args.config)
    out = writable_dir(args.out)
    rtl = Chip.verilog_of(cfg, out)
    print(f"wrote {rtl.verilog} and {rtl.sidecar} ({rtl.seconds:.1f} s)")
    return 0
