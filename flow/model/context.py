"""The one setup chain of a run: config -> data set -> weights -> DAC codes -> golden chip.

Every command that infers on the test set (demo, program, sim, classify, cost, spice, sweep,
train, bench, figures) builds it here, so they agree on which chip the co-simulation must
match: for weights trained in situ (`train.method = "manhattan"`, weights carrying the trained
devices' conductances) the golden chip is the devices themselves (`insitu.device_chip`), not
their level mapping, unless the caller programs the array itself (`device=False`).
"""

from __future__ import annotations

from dataclasses import dataclass
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
    golden: GoldenChip           # the chip the co-simulation must match
    in_situ: bool                # golden is the trained devices' own conductances

    @classmethod
    def build(cls, cfg: ChipConfig, dataset: Dataset, *, cache_dir: str | Path | None = None,
              device: bool = True) -> "RunContext":
        """Weights (cached, shipped reference or trained once), codes and golden chip for `cfg`
        on `dataset`; `device=False` keeps the level mapping even for in-situ weights."""
        # paths.WEIGHTS read at call time, so a test can redirect the cache
        weights = load_or_train(cfg, dataset, paths.WEIGHTS if cache_dir is None else cache_dir)
        in_situ = bool(weights.device_conductance) and device
        golden = device_chip(cfg, weights) if in_situ else GoldenChip.from_weights(cfg, weights)
        return cls(cfg, dataset, weights, to_dac_codes(dataset.x_test, cfg),
                   dataset.y_test.astype(np.int64), golden, in_situ)

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
