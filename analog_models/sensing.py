"""Differential transimpedance amplifiers: one per (G+, G-) column pair.

The TIA holds its inputs at a 0 V virtual ground and outputs V_k = gain * (I[2k] - I[2k+1]);
the subtraction cancels G_off and makes the pair a signed weight. Its closed-loop bandwidth sets
how long the outputs take to settle after the DACs change, which is the latency the analog
bridge waits before answering the RTL.
"""

from __future__ import annotations

import math

import numpy as np

from xbarflow.flow.core.config import ChipConfig

__all__ = ["differential_voltage", "settling_cycles", "settling_time"]


def differential_voltage(i_cols: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """TIA outputs (V) of column currents (A) shaped (..., 2 * outputs) -> (..., outputs)."""
    i = np.asarray(i_cols, dtype=np.float64)
    if i.ndim == 0 or i.shape[-1] % 2:
        raise ValueError(f"column currents need an even last axis (G+, G- pairs), got shape {i.shape}")
    return cfg.sensing.tia_gain * (i[..., 0::2] - i[..., 1::2])


def settling_time(cfg: ChipConfig) -> float:
    """Seconds for a single-pole TIA to settle within 1 %: ln(100) / (2 pi f_3dB)."""
    return math.log(100.0) / (2.0 * math.pi * cfg.sensing.bandwidth_hz)


def settling_cycles(cfg: ChipConfig) -> int:
    """1 % settling time in system clock cycles, rounded up, at least one cycle."""
    return max(1, math.ceil(settling_time(cfg) * cfg.clock.freq_hz))
