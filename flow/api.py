"""The Python API: one chip, its golden model, Verilog, co-simulation and programming.

    import xbarflow
    chip = xbarflow.Chip.from_config("configs/slp.toml")
    images, labels = chip.test_images(20)
    chip.classify(images)                         # numpy array of classes (golden model)
    run = chip.cosimulate(images, labels, sim="verilator")
    run.parity, run.classes, run.cycles_per_inference

Nothing here prints: every method returns numpy arrays or a result dataclass, and bad input
raises an `xbarflow.flow.core.errors.XbarflowError` (ConfigError, DataError, SimulatorError)
whose message is one line. Built on `xbarflow.flow.model.context.RunContext`, the setup chain
every subcommand uses, so a chip made here is the chip `xbarflow demo` co-simulates. The
subcommands that overlap (classify, verilog, sim) are thin layers over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .core import paths
from .core.config import ChipConfig
from .data import DataError, image_to_codes, to_dac_codes
from .model.context import RunContext
from .model.golden import GoldenChip, GoldenResult
from .model.programming import ProgrammingResult, program_array, programmed_chip, tile_target_levels
from .sim import parity
from .sim.runner import CosimResult, SimBuild, build
from .sim.runner import run as run_cosim
from .sim.verilog import GeneratedRTL, generate

__all__ = ["Chip", "Cosimulation", "Programming"]


@dataclass(frozen=True)
class Cosimulation:
    """A co-simulation checked against the golden model. `classes` and `sums` are what the RTL
    computed (RESULT, the final-layer sums read back); `parity` is on them and the DAC codes it
    drove (`xbarflow.flow.sim.parity.check`)."""
    sim: str
    indices: np.ndarray          # (n,) event indices of the images
    classes: np.ndarray          # (n,) class read from the chip's RESULT
    sums: np.ndarray             # (n, outputs) final-layer sums read back
    golden_classes: np.ndarray   # (n,) the golden model's classes
    golden_sums: np.ndarray      # (n, outputs) the golden model's final-layer sums
    labels: np.ndarray | None    # (n,) labels, when given
    parity: float                # share of images at parity (1.0: all)
    mismatched_images: int
    failures: tuple[str, ...]    # 'image 3: differs from golden in sums', first 20
    mismatches: tuple[str, ...]  # the bench's scoreboard messages (empty: all matched)
    cycles: dict[str, int]       # per-phase cycle counters of the first image
    wall_s: float
    waves: Path | None           # the waveform file, with waves=...
    raw: CosimResult             # everything the runner returned

    @property
    def images(self) -> int:
        return int(self.indices.size)

    @property
    def cycles_per_inference(self) -> int:
        return int(self.cycles["total"])

    @property
    def accuracy(self) -> float | None:
        """Accuracy of the chip's classes against `labels` (None without labels)."""
        return None if self.labels is None else float(np.mean(self.classes == self.labels))

    @property
    def golden_accuracy(self) -> float | None:
        return None if self.labels is None else float(np.mean(self.golden_classes == self.labels))

    @property
    def ok(self) -> bool:
        """Every image at parity and no scoreboard message."""
        return self.mismatched_images == 0 and not self.mismatches


@dataclass(frozen=True)
class Programming:
    """The chip programmed its own array through the write path (golden replay predicted it),
    then inferred on the programmed conductances."""
    targets: np.ndarray           # (tile rows, tile cols) level codes asked for
    golden: ProgrammingResult     # the golden write-verify replay
    chip: GoldenChip              # the golden chip on the programmed conductances
    cosim: Cosimulation | None    # inference after programming (None: golden replay only)

    @property
    def summary(self) -> dict | None:
        """The bench's programming summary (pulses, failures, cycles), when co-simulated."""
        return None if self.cosim is None else self.cosim.raw.programming


class Chip:
    """One config's chip: weights (cached, reference or trained once), golden model, RTL."""

    def __init__(self, context: RunContext):
        self.context = context

    @classmethod
    def from_config(cls, config: str | Path | None = None, *,
                    overrides: dict[str, Any] | Iterable[tuple[str, Any]] = (),
                    data: str | Path | None = None, device: bool = True) -> "Chip":
        """The chip of a config TOML (None: configs/slp.toml; a relative path not found here is
        looked up in the shipped configs). `overrides`: {"device.stuck_on_rate": 0.02, ...};
        `data`: the data set to train on when no cached weights match (None: shipped MNIST);
        `device=False` keeps the level mapping even for weights trained in situ."""
        return cls(RunContext.load(_config_path(config), overrides, data, device=device))

    @classmethod
    def from_context(cls, cfg: ChipConfig, dataset, **kwargs: Any) -> "Chip":
        """The chip of a config and data set already loaded (`RunContext.build`'s arguments)."""
        return cls(RunContext.build(cfg, dataset, **kwargs))

    # -- what the chip is --------------------------------------------------------------------
    @property
    def cfg(self) -> ChipConfig:
        return self.context.cfg

    @property
    def golden(self) -> GoldenChip:
        """The golden model the co-simulation must match."""
        return self.context.golden

    @property
    def weights(self):
        return self.context.weights

    def test_images(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The first `n` test images (uint8 (n, H, W)) and their labels (all for None)."""
        x, y = self.context.dataset.x_test, self.context.labels
        if n is not None and not 0 <= n <= len(y):
            raise DataError(f"asked for {n} test images; the data set has {len(y)}")
        return x[:n], y[:n]

    def codes(self, images: np.ndarray) -> np.ndarray:
        """DAC codes (n, inputs) of uint8 images (n, H, W), or of one 2-D image (1, inputs)
        of any square size (area-resized, `xbarflow.flow.data.image_to_codes`)."""
        images = np.asarray(images)
        if images.ndim == 2:
            return image_to_codes(images, self.cfg)[None]
        if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1] != images.shape[2]:
            raise DataError(f"images must be uint8 (n, H, H) or one 2-D image, got "
                            f"{images.dtype} {images.shape}")
        if images.shape[1] < self.cfg.network.input_size:
            raise DataError(f"images are {images.shape[1]}x{images.shape[2]}, smaller than the "
                            f"config's {self.cfg.network.input_size}x{self.cfg.network.input_size} input")
        return to_dac_codes(images, self.cfg)

    # -- golden model ------------------------------------------------------------------------
    def infer(self, images: np.ndarray, indices: np.ndarray | int | None = None, *,
              trace: bool = False) -> GoldenResult:
        """The golden model's full answer (classes, ADC codes, optionally the trace).
        `indices`: the images' event indices (noise keys; default 0, 1, ...)."""
        return self.golden.infer(self.codes(images), indices, trace=trace)

    def classify(self, images: np.ndarray, indices: np.ndarray | int | None = None) -> np.ndarray:
        """Classes (int64 (n,)) of the golden model."""
        return self.infer(images, indices).classes

    def accuracy(self, images: np.ndarray | None = None, labels: np.ndarray | None = None) -> float:
        """Golden accuracy on `images` against `labels` (default: the whole test set, with the
        test-set positions as event indices, as `xbarflow demo` reports it)."""
        if images is None:
            classes = self.golden.infer(self.context.test_codes).classes
            return float(np.mean(classes == self.context.labels))
        if labels is None:
            raise DataError("accuracy(images) needs the images' labels")
        return float(np.mean(self.classify(images) == np.asarray(labels)))

    # -- hardware ----------------------------------------------------------------------------
    def verilog(self, out_dir: str | Path) -> GeneratedRTL:
        """Write the chip's Verilog and its JSON sidecar into `out_dir`."""
        return self.verilog_of(self.cfg, out_dir)

    @staticmethod
    def verilog_of(cfg: ChipConfig, out_dir: str | Path) -> GeneratedRTL:
        """The Verilog of a config alone (it needs no weights: the array is programmed later)."""
        return generate(cfg, Path(out_dir))

    def simulator(self, sim: str = "verilator", *, waves: str | None = None,
                  transport: str = "pins") -> SimBuild:
        """The built simulator model (cached under build/sim while the Verilog is unchanged).
        `waves`: None, "vcd" or "fst" (FST from Verilator only)."""
        return build(self.cfg, sim, waves=waves or False, transport=transport)

    def cosimulate(self, images: np.ndarray, labels: np.ndarray | None = None, *,
                   sim: str = "verilator", out_dir: str | Path | None = None,
                   indices: np.ndarray | None = None, waves: str | None = None,
                   transport: str = "pins", sim_build: SimBuild | None = None) -> Cosimulation:
        """Co-simulate `images` (uint8 (n, H, W)) through the RTL and check parity with the
        golden model. `out_dir` (default runs/api-<config>-<sim>) keeps the bench's files;
        `indices` are the event indices (default 0..n-1, the test-set positions of
        `test_images(n)`); `waves` "vcd" or "fst" dumps a waveform of these images."""
        images = np.asarray(images)
        codes = self.codes(images)
        if images.ndim == 2:   # one image of any size: the bench takes (n, H, W)
            images = images[None]
        n = len(codes)
        indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
        labels_given = labels is not None
        bench_labels = np.asarray(labels, np.int64) if labels_given else np.zeros(n, np.int64)
        golden = self.golden
        model = sim_build or self.simulator(sim, waves=waves, transport=transport)
        out = Path(out_dir) if out_dir is not None else paths.RUNS / f"api-{self.cfg.name}-{model.sim}"
        result = run_cosim(model, golden.layer_conductance, images, bench_labels, indices, out,
                           requant_mult=golden.requant_mult)
        return self._checked(model.sim, result, golden, codes, indices,
                             bench_labels if labels_given else None)

    @staticmethod
    def _checked(sim: str, result: CosimResult, golden: GoldenChip, codes: np.ndarray,
                 indices: np.ndarray, labels: np.ndarray | None) -> Cosimulation:
        traced = golden.infer(codes, indices, trace=True)
        verdict = parity.check(result, traced, codes)
        return Cosimulation(
            sim=sim, indices=result.indices, classes=result.classes, sums=result.sums,
            golden_classes=traced.classes, golden_sums=traced.adc_codes, labels=labels,
            parity=verdict.fraction, mismatched_images=verdict.mismatched_images,
            failures=tuple(verdict.failures(20)), mismatches=tuple(result.mismatches[:20]),
            cycles={k: int(v[0]) for k, v in result.cycles.items()}, wall_s=result.wall_s,
            waves=result.waves, raw=result)

    def program(self, images: np.ndarray | None = None, labels: np.ndarray | None = None, *,
                sim: str | None = "verilator", out_dir: str | Path | None = None,
                indices: np.ndarray | None = None) -> Programming:
        """Program the array through the chip's write path (single-tile chips), as `xbarflow
        program` does: the golden write-verify replay of the targets, then (with `sim`) the
        co-simulated chip programs itself and infers `images` on the programmed conductances;
        parity is against the golden chip on those conductances. `sim=None`: replay only."""
        cfg = self.cfg
        if len(cfg.tiles) > 1:
            raise DataError(f"programming supports single-tile chips; {cfg.name} has "
                            f"{len(cfg.tiles)} tiles")
        targets = tile_target_levels(cfg, self.weights.w)
        replay = program_array(cfg, targets)
        chip = programmed_chip(cfg, replay)
        if sim is None:
            return Programming(targets, replay, chip, None)
        if images is None:
            images, labels = self.test_images(20)
        images = np.asarray(images)
        codes = self.codes(images)
        n = len(codes)
        indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
        labels_given = labels is not None
        bench_labels = np.asarray(labels, np.int64) if labels_given else np.zeros(n, np.int64)
        model = self.simulator(sim)
        out = Path(out_dir) if out_dir is not None else paths.RUNS / f"api-program-{cfg.name}-{sim}"
        result = run_cosim(model, chip.layer_conductance, images, bench_labels, indices, out,
                           targets=targets, requant_mult=chip.requant_mult)
        return Programming(targets, replay, chip,
                           self._checked(sim, result, chip, codes, indices,
                                         bench_labels if labels_given else None))


def _config_path(config: str | Path | None) -> Path | None:
    """`config` as given, or, when a relative path is not found from here, the shipped one
    (so `configs/slp.toml` works from any folder, and from an installed package)."""
    if config is None:
        return None
    p = Path(config)
    if not p.exists() and not p.is_absolute():
        for base in (paths.ROOT, paths.CONFIGS):
            if (base / p).exists():
                return base / p
    return p
