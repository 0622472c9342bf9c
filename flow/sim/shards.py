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

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .parity import ChipAnswers, check, readback_digest
from .runner import run

__all__ = [
    "FORMAT", "MAX_SHARD", "RUN_KEYS", "ShardJob", "merge", "plan_shards", "read_result",
    "run_shard", "shard_key", "stable_view", "write_result",
]


FORMAT = 2                # 2: shards carry the chip's read-back sums and DAC codes
MAX_SHARD = 1000          # default shard size cap: ~10-15 s of Verilator per shard
# Report keys that describe the execution, not the results: timings, and how the work was cut
# and which part of it was reused (both depend on --jobs/--shard-size and on earlier runs).
RUN_KEYS = ("wall_s", "cosim_wall_s", "images_per_s", "shards", "shards_reused", "shards_run")



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
              conductance: np.ndarray | Sequence[np.ndarray], indices: np.ndarray, images: np.ndarray,
              labels: np.ndarray, requant_mult: Sequence[int] = ()) -> str:
    """What a shard's results depend on; a result file with another key is rerun."""
    layers = [conductance] if isinstance(conductance, np.ndarray) else list(conductance)
    parts = {"format": FORMAT, "config": config_digest, "sim": sim, "transport": transport,
             "model": model_digest, "data": _sha(*layers, indices, images, labels)}
    if requant_mult:   # a multi-layer chip's ReLU scales (absent: the single-layer key as before)
        parts["requant_mult"] = [int(m) for m in requant_mult]
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
    conductance: np.ndarray | tuple[np.ndarray, ...]   # one array, or a tiled chip's per-layer matrices
    indices: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    work_dir: Path
    timeout_s: float = 24 * 3600.0
    requant_mult: tuple[int, ...] = ()   # the hidden layers' ReLU multipliers (multi-layer chips)


def run_shard(job: ShardJob) -> dict:
    """Co-simulate one shard; return its per-image results (JSON-ready)."""
    work = Path(job.work_dir)
    if work.exists():
        shutil.rmtree(work)          # leftovers of an interrupted attempt
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    result = run(job.sim_build, job.conductance, job.images, job.labels, job.indices, work,
                 timeout_s=job.timeout_s, progress=work / "progress", requant_mult=job.requant_mult)
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


