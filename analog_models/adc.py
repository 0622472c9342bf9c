"""Signed ADC: TIA volts -> two's complement codes, with optional keyed input-referred noise.

Range [-v_fs, +v_fs), lsb = v_fs / 2**(bits-1), code = clip(floor(V/lsb + noise + 0.5)) (round
half up, saturate at both rails). Noise for one inference event is drawn from
`np.random.default_rng([seeds.noise, tile, event_index])`: a generator keyed by the event, not a
shared stream, so the bridge (one event at a time) and the golden model (a whole test set at
once) draw exactly the same numbers. The conversion latency is `cfg.adc.conversion_cycles`.
"""

from __future__ import annotations

import numpy as np

from xbarflow.flow.core.config import ChipConfig

__all__ = ["code_range", "convert", "event_indices", "lsb", "noise_lsb"]


def lsb(cfg: ChipConfig) -> float:
    """Volts per code step."""
    return cfg.adc.v_fs / (1 << (cfg.adc.bits - 1))


def code_range(bits: int) -> tuple[int, int]:
    """Lowest and highest signed code of a `bits`-bit ADC."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def event_indices(event_index: int | np.ndarray, n: int) -> np.ndarray:
    """Per-event indices for a batch of n events.

    A scalar is the index of the first event (the batch is events e0, e0+1, ...), so converting
    events one by one with index k matches converting them all at once starting from 0.
    """
    ev = np.asarray(event_index)
    if ev.dtype == np.bool_ or not np.issubdtype(ev.dtype, np.integer):
        raise ValueError(f"event indices must be integers, got dtype {ev.dtype}")
    if ev.ndim == 0:
        ev = int(ev) + np.arange(n, dtype=np.int64)
    elif ev.shape != (n,):
        raise ValueError(f"need one event index per event: expected shape ({n},), got {ev.shape}")
    if ev.size and ev.min() < 0:
        raise ValueError("event indices must be >= 0")
    return ev.astype(np.int64, copy=False)


def noise_lsb(cfg: ChipConfig, tile: int, events: np.ndarray, outputs: int) -> np.ndarray:
    """(len(events), outputs) Gaussian input noise in LSB, one keyed generator per event."""
    out = np.zeros((len(events), outputs))
    if cfg.adc.noise_lsb > 0:
        for row, ev in enumerate(events):
            rng = np.random.default_rng([cfg.seeds.noise, tile, int(ev)])
            out[row] = rng.standard_normal(outputs)
        out *= cfg.adc.noise_lsb
    return out


def convert(volts: np.ndarray, cfg: ChipConfig, *, tile: int = 0,
            event_index: int | np.ndarray = 0) -> np.ndarray:
    """ADC codes (int64) of TIA voltages shaped (outputs,) for one event or (n, outputs).

    `event_index` keys the noise draws: a scalar for one event (or the first of a batch), or an
    array of n indices. Without noise it has no effect.
    """
    v = np.asarray(volts, dtype=np.float64)
    if v.ndim not in (1, 2):
        raise ValueError(f"volts must be (outputs,) or (events, outputs), got shape {v.shape}")
    if tile < 0:
        raise ValueError(f"tile index must be >= 0, got {tile}")
    v2 = v.reshape(-1, v.shape[-1])
    x = v2 / lsb(cfg) + noise_lsb(cfg, tile, event_indices(event_index, v2.shape[0]), v2.shape[1])
    lo, hi = code_range(cfg.adc.bits)
    codes = np.clip(np.floor(x + 0.5), lo, hi).astype(np.int64)
    return codes.reshape(v.shape)
