"""Read noise and drift of the cells, keyed so the bridge and the golden model draw the same.

* Drift (static for an array, read at `device.read_time_s` after programming): every cell's
  conductance (linear read model) or I0 (QMM) is scaled by (t / t0)^-nu, G(t) = G(t0) (t/t0)^-nu,
  with nu = drift_nu * max(0, 1 + drift_nu_sigma N(0, 1)) per cell, drawn once per tile from
  `default_rng([seeds.device, DRIFT_KEY, tile])` in row-major cell order.
* Read noise (per read): every cell's I0 is scaled by clip(1 + read_noise_sigma N(0, 1), 0,
  NOISE_CLIP_MAX) for one inference event, drawn from `default_rng([seeds.noise, tile, event,
  READ_NOISE_KEY])` in row-major cell order: a generator keyed by the event, like the ADC noise
  (adc.py, whose key [seeds.noise, tile, event] SeedSequence treats as padded with a zero, so the
  two never coincide). The clip at 1 + 8 sigma (never reached in practice: p ~ 1e-15) keeps the
  array solver's bounds valid (nonlinear_crossbar.py).
"""

from __future__ import annotations

import numpy as np

from xbarflow.flow.core.config import ChipConfig

__all__ = ["DRIFT_KEY", "READ_NOISE_KEY", "drift_factor", "read_noise_factors", "read_noise_max"]

DRIFT_KEY = 0x44524946        # b"DRIF"
READ_NOISE_KEY = 0x52454144   # b"READ"
_CLIP_SIGMAS = 8.0


def drift_factor(cfg: ChipConfig, tile: int, shape: tuple[int, int]) -> np.ndarray | None:
    """(t / t0)^-nu per cell of a tile, or None when there is no drift (nu = 0 or t = t0)."""
    d = cfg.device
    if d.drift_nu == 0 or d.read_time_s == d.drift_t0_s:
        return None
    rng = np.random.default_rng([cfg.seeds.device, DRIFT_KEY, tile])
    nu = d.drift_nu * np.maximum(0.0, 1.0 + d.drift_nu_sigma * rng.standard_normal(shape))
    return np.power(d.read_time_s / d.drift_t0_s, -nu)


def read_noise_max(cfg: ChipConfig) -> float:
    """Largest read-noise factor (the clip)."""
    return 1.0 + _CLIP_SIGMAS * cfg.device.read_noise_sigma


def read_noise_factors(cfg: ChipConfig, tile: int, events: np.ndarray,
                       shape: tuple[int, int]) -> np.ndarray:
    """(len(events), rows, cols) per-read I0 factors, one keyed generator per event."""
    sigma = cfg.device.read_noise_sigma
    out = np.empty((len(events),) + tuple(shape))
    for k, ev in enumerate(events):
        rng = np.random.default_rng([cfg.seeds.noise, tile, int(ev), READ_NOISE_KEY])
        out[k] = rng.standard_normal(shape)
    return np.clip(1.0 + sigma * out, 0.0, read_noise_max(cfg))
