"""Weights -> balanced differential conductance pairs, with the paper's formula.

    Wn = W / (max W - min W)             (clipped to [-1, 1])
    G+ = max(Wn, 0),  G- = max(-Wn, 0)   (normalised, then quantised to `weight_levels` levels)
    G  = (0.9 G_on - G_off) * Gn + G_off  (the paper's I* = (0.9 I_max - I_min) G + I_min at V_read)

Physical column 2k holds G+ of output k and column 2k+1 holds G- of output k; a differential
TIA subtracts the pair, so G_off cancels and the effective signed weight is
(0.9 G_on - G_off) * (level+ - level-) / (levels - 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarflow.flow.core.config import ChipConfig

__all__ = ["Mapping", "level_conductance", "map_weights", "normalize", "quantize_normalized"]


@dataclass(frozen=True)
class Mapping:
    levels: np.ndarray       # (rows, cols) int level codes 0 .. weight_levels-1, columns interleaved +,-
    conductance: np.ndarray  # (rows, cols) float64 target conductances in S

    @property
    def signed_levels(self) -> np.ndarray:
        """(rows, outputs) level+ - level-: the quantised weight each pair realises."""
        return self.levels[:, 0::2] - self.levels[:, 1::2]


def normalize(weights: np.ndarray) -> np.ndarray:
    """Wn = W / (max W - min W), clipped to [-1, 1]; an all-equal matrix maps to zeros."""
    w = np.asarray(weights, dtype=np.float64)
    span = float(w.max() - w.min())
    if span == 0.0:
        return np.zeros_like(w)
    return np.clip(w / span, -1.0, 1.0)


def level_conductance(levels: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """Target conductance (S) of level codes: (0.9 G_on - G_off) * level / (L - 1) + G_off."""
    d, top = cfg.device, cfg.quant.weight_levels - 1
    return (0.9 * d.g_on - d.g_off) * (np.asarray(levels, dtype=np.float64) / top) + d.g_off


def quantize_normalized(wn: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Level codes (positive, negative) of normalised weights Wn in [-1, 1]."""
    top = levels - 1
    pos = np.rint(np.maximum(wn, 0.0) * top).astype(np.int64)
    neg = np.rint(np.maximum(-wn, 0.0) * top).astype(np.int64)
    return pos, neg


def map_weights(weights: np.ndarray, cfg: ChipConfig) -> Mapping:
    """Map a (rows, outputs) weight matrix onto (rows, 2*outputs) differential conductances."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D (rows, outputs), got shape {w.shape}")
    pos, neg = quantize_normalized(normalize(w), cfg.quant.weight_levels)
    levels = np.empty((w.shape[0], 2 * w.shape[1]), dtype=np.int64)
    levels[:, 0::2], levels[:, 1::2] = pos, neg
    return Mapping(levels=levels, conductance=level_conductance(levels, cfg))
