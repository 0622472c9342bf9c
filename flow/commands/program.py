"""`xbarflow program`: program the array through the write path, then co-simulate inference.

The demo with `--program` (`xbarflow.flow.commands.demo.run_demo`), with its own defaults.
"""

from __future__ import annotations

from pathlib import Path

from ..sim.runner import SIMULATORS
from .common import positive_int
from .demo import HOSTS, add_set_argument, add_waves_argument, run_demo

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--sim", choices=SIMULATORS, default="verilator")
    parser.add_argument("--host", choices=HOSTS, default=None, help="host interface (default: from config)")
    parser.add_argument("--images", type=positive_int, default=20, help="test images to co-simulate after programming")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    add_waves_argument(parser)
    add_set_argument(parser)


def run(args) -> int:
    return run_demo(args, program=True)
