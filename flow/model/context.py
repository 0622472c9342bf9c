"""The one setup chain of a run: config -> data set -> weights -> DAC codes -> golden chip.

Every command that infers on the test set (demo, program, sim, classify, cost, spice, sweep,
train, bench, figures) builds it here, so they agree on which chip the co-simulation must
match: for weights trained in situ (`train.method = "manhattan"`, weights carrying the trained
devices' conductances) the golden chip is the devices themselves (`insitu.device_chip`), not
their level mapping, unless the caller programs the array itself (`device=False`).

The golden chip is built on first use (a tiled MLP's takes seconds), and at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..core import config as config_mod
from ..core import paths
from ..core.config import ChipConfig
from ..data import Dataset, load_dataset, to_dac_codes
from .golden import GoldenChip
from .insitu import device_chip
from .train import load_or_train
from .weights import Weights

__all__ = ["RunContext"]


@dataclass(frozen=True)
class RunContext:
    cfg: ChipConfig
    dataset: Dataset
    weights: Weights
    test_codes: np.ndarray       # DAC codes of the whole test set
    labels: np.ndarray           # int64 test labels
    in_situ: bool                # golden is the trained devices' own conductances

    @cached_property
    def golden(self) -> GoldenChip:
        """The chip the co-simulation must match (built once, on first use)."""
        if self.in_situ:
            return device_chip(self.cfg, self.weights)
        return GoldenChip.from_weights(self.cfg, self.weights)

    @classmethod
    def build(cls, cfg: ChipConfig, dataset: Dataset, *, cache_dir: str | Path | None = None,
              device: bool = True, weights: Weights | None = None,
              test_codes: np.ndarray | None = None) -> "RunContext":
        """Weights (cached, shipped reference or trained once), codes and golden chip for `cfg`
        on `dataset`; `device=False` keeps the level mapping even for in-situ weights.
        `weights` / `test_codes`: ones the caller already has for this cfg and dataset."""
        if weights is None:
            # paths.WEIGHTS read at call time, so a test can redirect the cache
            weights = load_or_train(cfg, dataset, paths.WEIGHTS if cache_dir is None else cache_dir)
        if test_codes is None:
            test_codes = to_dac_codes(dataset.x_test, cfg)
        return cls(cfg, dataset, weights, test_codes, dataset.y_test.astype(np.int64),
                   bool(weights.device_conductance) and device)

    @classmethod
    def load(cls, config_path: str | Path | None = None,
             overrides: dict[str, Any] | Iterable[tuple[str, Any]] = (),
             data_path: str | Path | None = None, **kwargs: Any) -> "RunContext":
        """The chain from files: raises ConfigError / DataError for bad input."""
        cfg = config_mod.load(config_path)
        overrides = dict(overrides)
        if overrides:
            cfg = cfg.replace(**overrides)
        return cls.build(cfg, load_dataset(data_path), **kwargs)
