"""Golden model: a bit-exact numpy twin of the whole chip.

The analog part is the very same `AnalogArray` object the cocotb bridge serves the RTL with,
and the digital part mirrors the RTL step by step (argmax: lowest index wins ties), so the
co-simulation must agree with it image by image: same DAC codes in, same ADC codes, same class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analog_models.array import AnalogArray
from analog_models.mapping import Mapping, map_weights

from .config import ChipConfig


@dataclass(frozen=True)
class GoldenResult:
    adc_codes: np.ndarray  # (n, outputs) int64 signed ADC codes
    classes: np.ndarray    # (n,) int64 winning class per image


def argmax_lowest(codes: np.ndarray) -> np.ndarray:
    """The RTL argmax: the first (lowest-index) maximum wins, as `hdl.argmax.Argmax` scans."""
    return np.argmax(np.asarray(codes), axis=-1).astype(np.int64)


class GoldenChip:
    """The chip for one config and one set of programmed conductances."""

    def __init__(self, cfg: ChipConfig, conductance: np.ndarray):
        self.cfg = cfg
        self.array = AnalogArray(cfg, conductance)

    @classmethod
    def from_weights(cls, cfg: ChipConfig, weights: np.ndarray) -> "GoldenChip":
        """Ideal programming: every device sits exactly at its mapped target conductance."""
        return cls(cfg, cls.mapping(cfg, weights).conductance)

    @staticmethod
    def mapping(cfg: ChipConfig, weights: np.ndarray) -> Mapping:
        return map_weights(weights, cfg)

    def infer(self, dac_codes: np.ndarray, event_index: np.ndarray | None = None) -> GoldenResult:
        """Classify a batch of DAC-code vectors (n, rows); `event_index` keys the noise draws
        (the image's index in the test set, as the bench uses)."""
        codes = np.atleast_2d(np.asarray(dac_codes))
        if event_index is None:
            event_index = np.arange(codes.shape[0])
        adc = self.array.adc_codes(codes, event_index)
        return GoldenResult(adc_codes=adc, classes=argmax_lowest(adc))
