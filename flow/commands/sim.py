"""`xbarflow sim`: co-simulate the test set in shards, locally or on a Dask cluster.

The library (shards, their keys and result files, the merge) is `xbarflow.flow.sim.shards`;
this module reads the arguments, sets up the run and reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..core import paths
from ..api import Chip
from ..sim import parity
from ..sim.executor import ExecutorError, JobError, default_jobs, map_jobs
from ..sim.runner import SIMULATORS, SimulatorError
from ..sim.shards import (
    MAX_SHARD,
    ShardJob,
    merge,
    plan_shards,
    read_result,
    run_shard,
    shard_key,
    write_result,
)
from .common import (
    UsageError,
    dataset_or_usage,
    load_config,
    positive_int,
    toolchain_or_usage,
    writable_dir,
)
from .demo import add_waves_argument, waves_or_usage

__all__ = ["add_arguments", "run"]


def _images_arg(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"expected 'all' or a {str(exc).removeprefix('expected a ')}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--sim", choices=SIMULATORS, default="verilator")
    parser.add_argument("--images", type=_images_arg, required=True, metavar="all|N",
                        help="co-simulate the whole test set or its first N images")
    parser.add_argument("--jobs", type=positive_int, default=default_jobs(),
                        help="local worker processes (default: the CPU cores)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/sim-<config>-<sim>)")
    parser.add_argument("--dask", metavar="ADDRESS", default=None,
                        help="run the shards on this Dask scheduler (e.g. tcp://10.0.0.5:8786)")
    parser.add_argument("--shard-size", type=positive_int, default=None,
                        help=f"images per shard (default: split evenly over --jobs, at most {MAX_SHARD})")
    add_waves_argument(parser)


class _ProgressBar:
    """tqdm over images: finished shards plus what running benches report in their work dirs."""

    def __init__(self, total: int, desc: str, work_dirs: dict[int, Path], sizes: dict[int, int]):
        self.bar = tqdm(total=total, unit="img", desc=desc, dynamic_ncols=True,
                        disable=total == 0 or None)   # None: off when stderr is not a terminal
        self.work_dirs, self.sizes = work_dirs, sizes
        self.finished: set[int] = set()
        self.shown = 0

    def finish(self, number: int) -> None:
        self.finished.add(number)
        self.refresh()

    def refresh(self) -> None:
        done = sum(self.sizes[k] for k in self.finished)
        for k, d in self.work_dirs.items():
            if k in self.finished:
                continue
            try:
                done += min(int((d / "progress").read_text() or 0), self.sizes[k])
            except (OSError, ValueError):
                pass
        if done > self.shown:
            self.bar.update(done - self.shown)
            self.shown = done

    def close(self) -> None:
        self.bar.close()


def run(args) -> int:
    t_start = time.perf_counter()
    cfg = load_config(args.config)
    out = writable_dir(args.out or paths.RUNS / f"sim-{cfg.name}-{args.sim}")
    toolchain_or_usage(args.sim)
    waves_format = waves_or_usage(args.sim, args.waves)
    dataset = dataset_or_usage()
    n_test = len(dataset.y_test)
    n = n_test if args.images is None else args.images
    if n > n_test:
        raise UsageError(f"--images {n} exceeds the {n_test} test images")
    if args.dask is not None and not args.dask.strip():
        raise UsageError("--dask needs a scheduler address, e.g. tcp://127.0.0.1:8786")

    # The demo's chain: weights trained in situ co-simulate the trained devices themselves.
    chip = Chip.from_context(cfg, dataset)
    images, labels = chip.test_images(n)
    codes = chip.context.test_codes[:n]
    golden = chip.golden.infer(codes, np.arange(n), trace=True)
    if len(chip.golden.tiles) == 1:
        conductance = np.asarray(chip.golden.array.conductance, dtype=np.float64)
    else:   # tiled and layered chips: the per-layer matrices the tiles are cut from
        conductance = tuple(np.asarray(g, dtype=np.float64) for g in chip.golden.layer_conductance)
    requant_mult = tuple(int(m) for m in chip.golden.requant_mult)

    transport = "hdl" if cfg.host.interface == "spi" else "pins"
    try:
        sim_build = chip.simulator(args.sim, transport=transport)
    except SimulatorError as exc:
        print(f"xbarflow: {exc}", file=sys.stderr)
        return 1
    built = (f"built in {sim_build.build_seconds:.1f} s" if sim_build.build_seconds
             else "reused from cache")
    print(f"[xbarflow] {args.sim} model ({transport} transport) {built}")

    shards = plan_shards(n, args.jobs, args.shard_size)
    shard_dir = out / "shards"
    shard_dir.mkdir(exist_ok=True)
    jobs, keys, payloads, reused = [], {}, {}, 0
    for number, (start, stop) in enumerate(shards):
        idx = np.arange(start, stop, dtype=np.int64)
        keys[number] = shard_key(config_digest=cfg.digest(), sim=args.sim, transport=transport,
                                 model_digest=sim_build.digest, conductance=conductance,
                                 indices=idx, images=images[start:stop], labels=labels[start:stop],
                                 requant_mult=requant_mult)
        path = shard_dir / f"{number:04d}.json"
        payload, why = read_result(path, keys[number])
        if payload is not None:
            payloads[number] = payload
            reused += 1
            continue
        if why != "missing":
            print(f"[xbarflow] shard {number}: result file {why}; running it again")
            path.unlink(missing_ok=True)
        jobs.append(ShardJob(number, sim_build, conductance, idx, images[start:stop],
                             labels[start:stop], shard_dir / f"{number:04d}", requant_mult=requant_mult))

    where = f"Dask at {args.dask}" if args.dask else f"{min(args.jobs, max(len(jobs), 1))} local job(s)"
    print(f"[xbarflow] {n} images in {len(shards)} shards: {reused} reused, {len(jobs)} to run "
          f"on {where}")
    bar = _ProgressBar(sum(len(j.indices) for j in jobs), f"{args.sim}",
                       {j.number: j.work_dir for j in jobs},
                       {j.number: len(j.indices) for j in jobs})

    def finished(i: int, payload: dict) -> None:
        number = jobs[i].number
        write_result(shard_dir / f"{number:04d}.json", keys[number], payload)
        payloads[number] = payload
        bar.finish(number)

    t_sim = time.perf_counter()
    try:
        map_jobs(run_shard, jobs, jobs=args.jobs, dask_address=args.dask, progress=finished,
                 tick=bar.refresh)
    except KeyboardInterrupt:
        bar.close()
        print(f"\n[xbarflow] interrupted: {len(payloads)} of {len(shards)} shards are done and kept "
              f"in {shard_dir}; run the same command again to resume", file=sys.stderr)
        raise
    except ExecutorError as exc:
        bar.close()
        raise UsageError(str(exc)) from None
    except JobError as exc:
        bar.close()
        cause = exc.exc if isinstance(exc.exc, SimulatorError) else exc
        print(f"xbarflow: shard {jobs[exc.index].number}: {cause}; finished shards are kept, "
              "run again to resume", file=sys.stderr)
        return 1
    bar.close()
    sim_wall = time.perf_counter() - t_sim

    waves = None
    if waves_format:   # the first image again, on a model built with tracing
        try:
            waves = chip.cosimulate(images[:1], labels[:1], sim=args.sim, out_dir=out / "waves",
                                    waves=waves_format).waves
        except SimulatorError as exc:
            print(f"xbarflow: {exc}", file=sys.stderr)
            return 1

    ordered = [payloads[k] for k in range(len(shards))]
    report = {
        "config": cfg.name,
        "config_digest": cfg.digest(),
        "simulator": args.sim,
        "transport": transport,
        **merge(ordered, golden, codes, labels),
        "shards": len(shards),
        "wall_s": round(time.perf_counter() - t_start, 3),
        "cosim_wall_s": round(sim_wall, 3),
        "images_per_s": (round(sum(len(j.indices) for j in jobs) / sim_wall, 3) if jobs else None),
        "shards_reused": reused,
        "shards_run": len(jobs),
        **({"waves": str(waves) if waves else None} if waves_format else {}),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    rate = f", {report['images_per_s']:.1f} images/s" if report["images_per_s"] else ""
    print(f"[xbarflow] co-simulated {n} images on {args.sim}: accuracy {report['cosim_accuracy']:.4f} "
          f"(golden {report['golden_accuracy']:.4f}), "
          f"{parity.summary(report['mismatched_images'], n)}, "
          f"{report['cycles_per_inference']} cycles/inference{rate}, {report['wall_s']:.1f} s")
    if waves:
        print(f"[xbarflow] waveform of the first image: {waves}")
    print(f"[xbarflow] report: {out / 'report.json'}")
    for line in report["parity_failures"][:5]:
        print(f"[xbarflow] parity: {line}", file=sys.stderr)
    return 0 if report["mismatched_images"] == 0 and not report["mismatches"] else 1
