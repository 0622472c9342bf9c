"""The co-simulation job and its result, as the runner and the cocotb benches exchange them.

`xbarflow.flow.sim.runner.run` writes a `BenchJob` into the run folder (`job.json` for the
config and flags, `job.npz` for the arrays); the bench (`xbarflow.cocotb_tests.test_inference`)
reads it back, fills a `BenchResult` image by image and writes it (`cosim.json`), which the
runner reads. One typed schema on both sides, so neither re-reads the other's string keys.
The files keep their names and keys: the waveform tools and the tests read them too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["ARRAYS_FILE", "BenchJob", "BenchResult", "CYCLE_COUNTERS", "FSM_SAMPLES_ENV",
           "FSM_SAMPLES_FILE", "GOLDEN_PREFIX", "JOB_FILE", "JobArrays", "LAYERED_CYCLE_COUNTERS",
           "RESULTS_FILE", "golden_programming_arrays"]

JOB_FILE = "job.json"        # config and flags
ARRAYS_FILE = "job.npz"      # conductances, images, targets
RESULTS_FILE = "cosim.json"  # what the bench saw
#: Coverage runs: the environment variable naming the file a bench writes its FSM states,
#: state changes and host exchanges to (`xbarflow.cocotb_tests.coverage_monitor`), and its name.
FSM_SAMPLES_ENV = "XBARFLOW_FSM_SAMPLES"
FSM_SAMPLES_FILE = "fsm_samples.json"
#: The per-phase cycle counters the bench reads (first image, or every image).
CYCLE_COUNTERS = ("total", "drive", "convert", "argmax")
#: the layered controller's per-phase counters (CYCLES_LOAD_WINDOW .. CYCLES_POOL), read on
#: layered networks' chips only
LAYERED_CYCLE_COUNTERS = ("load_window", "accumulate", "activate", "pool")


#: job.npz keys of the golden programming replay (`golden_programming_arrays`)
GOLDEN_PREFIX = "golden_programming_"


def golden_programming_arrays(results) -> dict[str, np.ndarray]:
    """The golden replay's per-tile results (`program_chip_array`: one `ProgrammingResult` or
    None per tile of the chip) as the job's arrays: "programmed" (tiles,) bool, "pulses",
    "lam", "disturb_events" (tiles, R, C) and "counts" (tiles, 3: total_pulses, steps,
    failures); zeros for a tile not programmed."""
    done = [r for r in results if r is not None]
    if not done:
        raise ValueError("no programmed tile in the golden replay")
    shape = (len(results),) + done[0].lam.shape
    out = {"programmed": np.array([r is not None for r in results]),
           "pulses": np.zeros(shape, dtype=np.int64), "lam": np.zeros(shape),
           "disturb_events": np.zeros(shape, dtype=np.int64),
           "counts": np.zeros((len(results), 3), dtype=np.int64)}
    for k, r in enumerate(results):
        if r is not None:
            out["pulses"][k], out["lam"][k] = r.pulses_per_cell, r.lam
            out["disturb_events"][k] = r.disturb_events
            out["counts"][k] = (r.total_pulses, r.steps, r.failures)
    return out


def _file(path: str | Path, name: str) -> Path:
    """`path`, or the file `name` in it when it is a folder."""
    path = Path(path)
    return path / name if path.is_dir() else path


@dataclass
class JobArrays:
    """The job's arrays: one conductance array per layer, the hidden layers' ReLU multipliers,
    the images (uint8, (n, H, W)) with labels and test-set indices, and the level-code targets
    ((tiles, R, C), or (R, C) for a one-tile chip) when the chip programs its own array first.

    `golden_programming`, optional with the targets: the host's golden replay of that
    programming (`golden_programming_arrays`), so that the bench scores the chip against it
    instead of replaying the same write-verify again inside the simulator."""
    conductances: list
    requant_mult: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    targets: np.ndarray | None = None
    golden_programming: dict[str, np.ndarray] | None = None

    def write(self, path: Path) -> None:
        np.savez(path, **{f"conductance_{l}": np.asarray(g, dtype=np.float64)
                          for l, g in enumerate(self.conductances)},
                 requant_mult=np.asarray(self.requant_mult, dtype=np.int64),
                 images=np.asarray(self.images, dtype=np.uint8), labels=np.asarray(self.labels),
                 indices=np.asarray(self.indices, dtype=np.int64),
                 **({} if self.targets is None else {"targets": np.asarray(self.targets, dtype=np.int64)}),
                 **{GOLDEN_PREFIX + k: np.asarray(a) for k, a in (self.golden_programming or {}).items()})

    @classmethod
    def read(cls, path: str | Path) -> "JobArrays":
        with np.load(path) as data:
            layers = sorted((k for k in data.files if k.startswith("conductance_")),
                            key=lambda k: int(k.split("_")[1]))
            golden = {k[len(GOLDEN_PREFIX):]: data[k] for k in data.files if k.startswith(GOLDEN_PREFIX)}
            return cls(conductances=[data[k] for k in layers], requant_mult=data["requant_mult"],
                       images=data["images"], labels=data["labels"], indices=data["indices"],
                       targets=data["targets"] if "targets" in data.files else None,
                       golden_programming=golden or None)


@dataclass
class BenchJob:
    """What the bench is to do: the config (as `ChipConfig.to_dict()`), the sidecar of the
    Verilog it simulates, the host transport, the flags, and where to write its results."""
    config: dict
    sidecar: str
    results: str
    data: str
    transport: str = "pins"
    cycles_every_image: bool = False
    timeout_s: float = 3600.0
    progress: str | None = None
    program: bool = False
    program_tiles: list | None = None   # tiles the chip programs (default all); others ideal
    spi_timing: dict | None = None
    # Checks beyond inference (coverage runs, tests): a START and a WRITE_BUF sent during every
    # inference must be refused with NACK BUSY; every writable register's bits written to all
    # ones and back to zero (PROG_TILE: every tile index, then one past the last), read back.
    busy_probe: bool = False
    register_patterns: bool = False
    test_fault: str | None = None   # test-only (xbarflow.cocotb_tests.sabotage); never written by run()

    @classmethod
    def in_folder(cls, folder: Path, **fields) -> "BenchJob":
        """A job whose data and results files live in `folder`."""
        folder = Path(folder)
        return cls(results=str(folder / RESULTS_FILE), data=str(folder / ARRAYS_FILE), **fields)

    def to_json(self) -> dict:
        doc = {"config": self.config, "data": self.data, "results": self.results,
               "cycles_every_image": self.cycles_every_image, "timeout_s": self.timeout_s,
               "sidecar": self.sidecar, "transport": self.transport, "progress": self.progress,
               "program": self.program}
        if self.program_tiles is not None:
            doc["program_tiles"] = [int(t) for t in self.program_tiles]
        if self.spi_timing is not None:
            doc["spi_timing"] = dict(self.spi_timing)
        if self.test_fault is not None:
            doc["test_fault"] = self.test_fault
        if self.busy_probe:
            doc["busy_probe"] = True
        if self.register_patterns:
            doc["register_patterns"] = True
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> "BenchJob":
        return cls(config=doc["config"], sidecar=doc["sidecar"], results=doc["results"],
                   data=doc["data"], transport=doc.get("transport", "pins"),
                   cycles_every_image=bool(doc.get("cycles_every_image", False)),
                   timeout_s=doc["timeout_s"], progress=doc.get("progress"),
                   program=bool(doc.get("program", False)), program_tiles=doc.get("program_tiles"),
                   spi_timing=doc.get("spi_timing"),
                   busy_probe=bool(doc.get("busy_probe", False)),
                   register_patterns=bool(doc.get("register_patterns", False)),
                   test_fault=doc.get("test_fault"))

    def write(self, folder: Path, arrays: JobArrays) -> Path:
        """Write the arrays and the job file into `folder`; return the job file's path."""
        arrays.write(Path(self.data))
        path = Path(folder) / JOB_FILE
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    @classmethod
    def read(cls, path: str | Path) -> "BenchJob":
        """From a job file, or the folder holding one."""
        return cls.from_json(json.loads(_file(path, JOB_FILE).read_text()))

    def arrays(self) -> JobArrays:
        return JobArrays.read(self.data)


def _cycles() -> dict[str, list]:
    return {name: [] for name in CYCLE_COUNTERS}


@dataclass
class BenchResult:
    """What the bench saw, image by image. `classes`, `sums` and `tile_dac_codes` are what the
    chip computed (parity is defined on them); `bridge_adc_codes` the analog bridge's own
    outputs, a diagnostic. `error` says why a run stopped early (then the lists are short)."""
    indices: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    sums: list = field(default_factory=list)
    tile_dac_codes: list = field(default_factory=list)   # per image: [[tile, codes], ...]
    bridge_adc_codes: list = field(default_factory=list)
    cycles: dict = field(default_factory=_cycles)
    mismatches: list = field(default_factory=list)
    programming: dict | None = None
    spi_edges: dict | None = None
    probes: dict | None = None   # the job's extra checks: {"busy_refused": n, "register_reads": n}
    loop_s: float = 0.0
    loop_sim_ns: float = 0.0
    error: str | None = None

    def add_image(self, index: int, cls: int, sums, tile_dac_codes, bridge_adc_codes) -> None:
        self.indices.append(int(index))
        self.classes.append(int(cls))
        self.sums.append([int(s) for s in sums])
        self.tile_dac_codes.append([[int(t), np.asarray(c).tolist()] for t, c in tile_dac_codes])
        self.bridge_adc_codes.append(np.asarray(bridge_adc_codes).tolist())

    def to_json(self) -> dict:
        doc = {"indices": self.indices, "classes": self.classes, "sums": self.sums,
               "tile_dac_codes": self.tile_dac_codes, "bridge_adc_codes": self.bridge_adc_codes,
               "cycles": self.cycles, "mismatches": self.mismatches,
               "loop_s": self.loop_s, "loop_sim_ns": self.loop_sim_ns}
        for key in ("programming", "spi_edges", "probes", "error"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> "BenchResult":
        return cls(indices=list(doc["indices"]), classes=list(doc["classes"]), sums=list(doc["sums"]),
                   tile_dac_codes=list(doc["tile_dac_codes"]),
                   bridge_adc_codes=list(doc["bridge_adc_codes"]),
                   cycles={k: list(v) for k, v in doc["cycles"].items()},
                   mismatches=list(doc["mismatches"]), programming=doc.get("programming"),
                   spi_edges=doc.get("spi_edges"), probes=doc.get("probes"), loop_s=float(doc.get("loop_s", 0.0)),
                   loop_sim_ns=float(doc.get("loop_sim_ns", 0.0)), error=doc.get("error"))

    def write(self, path: str | Path) -> None:
        """Write the results file (`path`: the job's `results`, or the folder to hold it)."""
        _file(path, RESULTS_FILE).write_text(json.dumps(self.to_json()))

    @classmethod
    def read(cls, path: str | Path) -> "BenchResult":
        """From a results file, or the folder holding one."""
        return cls.from_json(json.loads(_file(path, RESULTS_FILE).read_text()))
