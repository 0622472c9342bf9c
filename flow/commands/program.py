"""`xbarflow program`: program the array through the write path, then co-simulate inference.

The demo with `--program` (`xbarflow.flow.commands.demo.run_demo`), with its own defaults. A
chip of several tiles is programmed tile by tile over the host link (PROG_TILE, WRITE_TARGETS,
START_PROGRAM); `--tile` restricts that to some tiles, `--targets` takes the targets from a
file (checked against the config: a file for another chip is a usage error).
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
    parser.add_argument("--tile", type=int, action="append", default=None, metavar="K",
                        help="program only tile K (repeatable; default every tile); the others "
                             "hold their ideal targets")
    parser.add_argument("--targets", type=Path, default=None,
                        help="level-code targets .npz (as written to the run folder's targets.npz) "
                             "instead of the weights' mapping")
    add_set_argument(parser)


def run(args) -> int:
    return run_demo(args, program=True)
