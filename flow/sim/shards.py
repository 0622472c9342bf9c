"""`xbarflow sim`: co-simulate a whole test set in shards, locally or on a Dask cluster.

    xbarflow sim [--config C] [--sim icarus|verilator] --images all|N [--jobs N] [--out DIR]
                 [--dask ADDRESS] [--shard-size N]

The test set (its first N images) is cut into consecutive shards. The simulator model is
built once, here, and every shard runs it in its own work folder (OUT/shards/NNNN/) as an
independent job of `xbarflow.flow.sim.executor.map_jobs`: a local process pool (--jobs) or an existing Dask
cluster (--dask). A tqdm bar follows the images as the benches report them.

Each finished shard is written at once to OUT/shards/NNNN.json: its per-image results, a key
(config, simulator, transport, model, conductances and images it was run with) and a SHA-256
of the results. A later run with the same inputs reuses every shard whose file checks out and
reruns the others, so an interrupted run (Ctrl-C) resumes where it stopped; a truncated or
altered file fails its checksum and is rerun, never merged. The merged report (OUT/report.json)
depends only on the inputs: rerunning, resuming, --jobs and --dask change nothing in it but
the run-dependent keys in `RUN_KEYS` (timings, shard counts).

Co-simulation uses the HDL SPI transactor harness (cocotb_tests/spi_transactor.py) when the
host interface is SPI, the pin-level BFM otherwise. Every shard reads back what the chip
computed for each image (the class from RESULT, the final-layer sums from the output buffer)
and records the DAC codes it drove, tile by tile; the merge checks them against the golden
model with `xbarflow.flow.sim.parity.check` (the one definition of parity) and the report carries
`readback_sha256`, a SHA-256 over every image's (index, class, read-back sums), beside the
golden model's. The exit status is 1 if any image disagrees.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core import paths

FORMAT = 2                # 2: shards carry the chip's read-back sums and DAC codes
MAX_SHARD = 1000          # default shard size cap: ~10-15 s of Verilator per shard
# Report keys that describe the execution, not the results: timings, and how the work was cut
# and which part of it was reused (both depend on --jobs/--shard-size and on earlier runs).
RUN_KEYS = ("wall_s", "cosim_wall_s", "images_per_s", "shards", "shards_reused", "shards_run")


# -- arguments -------------------------------------------------------------------------------------

def _images_arg(text: str) -> int | None:
    from ..cli import _positive_int

    if text == "all":
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"expected 'all' or a {str(exc).removeprefix('expected a ')}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import _positive_int
    from .executor import default_jobs
    from .runner import SIMULATORS

    parser.add_argument("--config", type=Path, default=None, help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--sim", choices=SIMULATORS, default="verilator")
    parser.add_argument("--images", type=_images_arg, required=True, metavar="all|N",
                        help="co-simulate the whole test set or its first N images")
    parser.add_argument("--jobs", type=_positive_int, default=default_jobs(),
                        help="local worker processes (default: the CPU cores)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/sim-<config>-<sim>)")
    parser.add_argument("--dask", metavar="ADDRESS", default=None,
                        help="run the shards on this Dask scheduler (e.g. tcp://10.0.0.5:8786)")
    parser.add_argument("--shard-size", type=_positive_int, default=None,
                        help=f"images per shard (default: split evenly over --jobs, at most {MAX_SHARD})")


# -- plan ------------------------------------------------------------------------------------------

def plan_shards(n_images: int, jobs: int, shard_size: int | None = None) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges covering range(n_images)."""
    if n_images < 1:
        return []
    size = shard_size or max(1, min(MAX_SHARD, math.ceil(n_images / jobs)))
    return [(start, min(start + size, n_images)) for start in range(0, n_images, size)]


def _sha(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def shard_key(*, config_digest: str, sim: str, transport: str, model_digest: str,
              conductance: np.ndarray, indices: np.ndarray, images: np.ndarray,
              labels: np.ndarray) -> str:
    """What a shard's results depend on; a result file with another key is rerun."""
    parts = {"format": FORMAT, "config": config_digest, "sim": sim, "transport": transport,
             "model": model_digest, "data": _sha(conductance, indices, images, labels)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# -- shard result files ----------------------------------------------------------------------------

def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def write_result(path: Path, key: str, payload: dict) -> None:
    """Write a shard's result atomically, with its key, a checksum and a completion marker."""
    doc = {"format": FORMAT, "key": key, "sha256": hashlib.sha256(_canonical(payload)).hexdigest(),
           "payload": payload, "complete": True}
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_result(path: Path, key: str) -> tuple[dict | None, str]:
    """(payload, "") for a valid result file with this key, else (None, why it is unusable)."""
    if not path.exists():
        return None, "missing"
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, "unreadable (truncated or corrupted)"
    if not isinstance(doc, dict) or doc.get("complete") is not True or "payload" not in doc:
        return None, "incomplete"
    if doc.get("sha256") != hashlib.sha256(_canonical(doc["payload"])).hexdigest():
        return None, "checksum mismatch (corrupted)"
    if doc.get("key") != key:
        return None, "made with other inputs"
    return doc["payload"], ""


# -- one shard (runs in a worker process or on a Dask worker) -----------------------------------

@dataclass(frozen=True)
class ShardJob:
    number: int
    sim_build: Any            # xbarflow.flow.sim.runner.SimBuild
    conductance: np.ndarray
    indices: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    work_dir: Path
    timeout_s: float = 24 * 3600.0


def run_shard(job: ShardJob) -> dict:
    """Co-simulate one shard; return its per-image results (JSON-ready)."""
    from .runner import run

    work = Path(job.work_dir)
    if work.exists():
        shutil.rmtree(work)          # leftovers of an interrupted attempt
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    result = run(job.sim_build, job.conductance, job.images, job.labels, job.indices, work,
                 timeout_s=job.timeout_s, progress=work / "progress")
    (work / "job.npz").unlink(missing_ok=True)    # the inputs are in the parent's hands
    return {
        "shard": job.number,
        **result.answers.to_json(),        # indices, classes, sums, tile_dac_codes: the chip's
        "bridge_adc_codes": result.bridge_adc_codes.tolist(),   # diagnostic only
        "cycles": {k: v.tolist() for k, v in result.cycles.items()},
        "mismatches": result.mismatches,
        "wall_s": round(time.perf_counter() - t0, 3),
    }


# -- merge -------------------------------------------------------------------------------------------

def merge(payloads: list[dict], golden: Any, codes: np.ndarray, labels: np.ndarray) -> dict:
    """The deterministic part of the report, from shard payloads in shard order; `golden` is the
    traced golden result of the same images (`GoldenChip.infer(..., trace=True)`), `codes` their
    DAC codes."""
    from .parity import ChipAnswers, check, readback_digest

    answers = ChipAnswers.concatenate([ChipAnswers.from_json(p) for p in payloads])
    n = len(labels)
    if not np.array_equal(answers.indices, np.arange(n)):
        raise ValueError("shard results do not cover the images in order")
    verdict = check(answers, golden, codes)
    bridge = [p.get("bridge_adc_codes", []) for p in payloads]
    first = payloads[0]["cycles"]
    cycles = {k: int(v[0]) for k, v in first.items() if v}
    samples = [{k: v[0] for k, v in p["cycles"].items() if v} for p in payloads]
    return {
        "images": int(n),
        "cosim_accuracy": round(float(np.mean(answers.classes == labels)), 6),
        "golden_accuracy": round(float(np.mean(np.asarray(golden.classes) == labels)), 6),
        "parity": round(verdict.fraction, 6),
        "parity_defined_on": "class from RESULT, final-layer sums read back, DAC codes driven per tile",
        "mismatched_images": verdict.mismatched_images,
        "parity_failures": verdict.failures(20),
        "mismatches": [m for p in payloads for m in p["mismatches"]][:20],
        "cycles_per_inference": cycles.get("total"),
        "cycles_by_phase": cycles,
        "cycles_same_in_every_shard": all(s == samples[0] for s in samples),
        "readback_sha256": readback_digest(answers.indices, answers.classes, answers.sums),
        "golden_readback_sha256": readback_digest(np.arange(n), golden.classes, golden.adc_codes),
        "results_sha256": hashlib.sha256(_canonical({"answers": answers.to_json(),
                                                     "bridge_adc_codes": bridge})).hexdigest(),
    }


def stable_view(report: dict) -> dict:
    """The report without its run-dependent keys (what must not change between runs)."""
    return {k: v for k, v in report.items() if k not in RUN_KEYS}


# -- the command -----------------------------------------------------------------------------------

class _ProgressBar:
    """tqdm over images: finished shards plus what running benches report in their work dirs."""

    def __init__(self, total: int, desc: str, work_dirs: dict[int, Path], sizes: dict[int, int]):
        from tqdm import tqdm

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
    from ..cli import (
        ROOT,
        WEIGHTS_DIR,
        UsageError,
        _dataset_or_usage,
        _load_config,
        _toolchain_or_usage,
        _writable_dir,
    )
    from . import parity
    from ..data import to_dac_codes
    from .executor import ExecutorError, JobError, map_jobs
    from ..model.golden import GoldenChip
    from .runner import SimulatorError, build
    from ..model.train import load_or_train

    t_start = time.perf_counter()
    cfg = _load_config(args.config)
    out = _writable_dir(args.out or paths.RUNS / f"sim-{cfg.name}-{args.sim}")
    _toolchain_or_usage(args.sim)
    dataset = _dataset_or_usage()
    n_test = len(dataset.y_test)
    n = n_test if args.images is None else args.images
    if n > n_test:
        raise UsageError(f"--images {n} exceeds the {n_test} test images")
    if args.dask is not None and not args.dask.strip():
        raise UsageError("--dask needs a scheduler address, e.g. tcp://127.0.0.1:8786")

    weights = load_or_train(cfg, dataset, WEIGHTS_DIR)
    golden_chip = GoldenChip.from_weights(cfg, weights.w)
    labels = dataset.y_test[:n].astype(np.int64)
    images = dataset.x_test[:n]
    codes = to_dac_codes(images, cfg)
    golden = golden_chip.infer(codes, np.arange(n), trace=True)
    conductance = np.asarray(golden_chip.array.conductance, dtype=np.float64)

    transport = "hdl" if cfg.host.interface == "spi" else "pins"
    try:
        sim_build = build(cfg, args.sim, transport=transport)
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
                                 indices=idx, images=images[start:stop], labels=labels[start:stop])
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
                             labels[start:stop], shard_dir / f"{number:04d}"))

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
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    rate = f", {report['images_per_s']:.1f} images/s" if report["images_per_s"] else ""
    print(f"[xbarflow] co-simulated {n} images on {args.sim}: accuracy {report['cosim_accuracy']:.4f} "
          f"(golden {report['golden_accuracy']:.4f}), "
          f"{parity.summary(report['mismatched_images'], n)}, "
          f"{report['cycles_per_inference']} cycles/inference{rate}, {report['wall_s']:.1f} s")
    print(f"[xbarflow] report: {out / 'report.json'}")
    for line in report["parity_failures"][:5]:
        print(f"[xbarflow] parity: {line}", file=sys.stderr)
    return 0 if report["mismatched_images"] == 0 and not report["mismatches"] else 1
