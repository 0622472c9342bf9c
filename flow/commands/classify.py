"""`xbarflow classify`: classify one image with the golden model, optionally co-simulated.

    xbarflow classify IMAGE [--config C] [--sim icarus|verilator] [--out DIR]

IMAGE is a .npy (2-D uint8, or float in [0, 1]) or a binary .pgm (P5), square, at least as
large as the config's input (it is area-resized to n x n and quantised to DAC codes by
`xbarflow.flow.data.image_to_codes`, exactly as the test set is). The golden model gives the class and
the ADC codes; with --sim the image is also co-simulated through the chip (`xbarflow.flow.api.Chip.cosimulate`) and
what the chip computed, the class from RESULT, the sums read back and the DAC codes it drove,
must equal the golden model's (`xbarflow.flow.sim.parity.check`; exit status 1 if they do not).
Weights are the cached trained weights for the config (trained once if missing).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..core import paths
from ..data import DataError, image_to_codes, load_image
from ..api import Chip
from ..sim.runner import SIMULATORS, SimulatorError
from .common import UsageError, dataset_or_usage, load_config, toolchain_or_usage, writable_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("image", type=Path, help="the image: .npy or binary .pgm, square")
    parser.add_argument("--config", type=Path, default=None, help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--sim", choices=SIMULATORS, default=None,
                        help="also co-simulate the image on this simulator and check parity")
    parser.add_argument("--out", type=Path, default=None,
                        help="co-simulation folder (default runs/classify-<config>-<sim>)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset to train on if no cached weights match (default: shipped MNIST)")


def run(args) -> int:
    cfg = load_config(args.config)
    try:
        image = load_image(args.image)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    try:
        image_to_codes(image, cfg)   # checks the size before any training
    except DataError as exc:      # e.g. smaller than the config's input size
        raise UsageError(f"{args.image}: {exc}") from None
    out = None
    if args.sim:
        out = writable_dir(args.out or paths.RUNS / f"classify-{cfg.name}-{args.sim}")
        toolchain_or_usage(args.sim)

    dataset = dataset_or_usage(args.data)
    # the demo's chain: weights trained in situ classify on the trained devices themselves
    chip = Chip.from_context(cfg, dataset)
    ref = chip.infer(image, 0)
    cls, adc = int(ref.classes[0]), ref.adc_codes[0].tolist()
    print(f"[xbarflow] {args.image}: class {cls} (golden model, config {cfg.name}), ADC codes {adc}")
    if not args.sim:
        return 0

    if len(chip.golden.tiles) != 1:
        raise UsageError(f"config {cfg.name} has {len(cfg.tiles)} crossbar tiles; classify "
                         f"--sim co-simulates single-tile chips")
    try:
        result = chip.cosimulate(image, sim=args.sim, out_dir=out, indices=np.zeros(1, np.int64))
    except SimulatorError as exc:
        print(f"xbarflow: {exc}", file=sys.stderr)
        return 1
    print(f"[xbarflow] {args.sim} co-simulation: class {int(result.classes[0])}, sums read back "
          f"{result.sums[0].tolist()}: "
          f"{'parity with the golden model' if result.ok else 'DIFFERS from the golden model'}")
    return 0 if result.ok else 1
