"""Input DACs: integer codes from the input buffer -> row voltages.

V_in = code * V_read / (2**dac_bits - 1), so the full-scale code drives exactly V_read. Codes are
checked here because everything downstream (the exact integer VMM in `array.py`) relies on them
being small non-negative integers.
"""

from __future__ import annotations

import numpy as np

from xbarflow.flow.core.config import ChipConfig

__all__ = ["dac_voltages", "validate_codes"]


def validate_codes(codes: np.ndarray | list[int] | int, dac_bits: int) -> np.ndarray:
    """Return `codes` as int64 after checking they are integers in 0 .. 2**dac_bits - 1."""
    arr = np.asarray(codes)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"DAC codes must be integers, got dtype {arr.dtype}")
    top = (1 << dac_bits) - 1
    if arr.size and (arr.min() < 0 or arr.max() > top):
        raise ValueError(f"DAC codes must be in 0..{top} for {dac_bits}-bit DACs, "
                         f"got values in {arr.min()}..{arr.max()}")
    return arr.astype(np.int64, copy=False)


def dac_voltages(codes: np.ndarray | list[int] | int, cfg: ChipConfig) -> np.ndarray:
    """Row voltages (V, float64) driven by the DAC codes; same shape as `codes`."""
    arr = validate_codes(codes, cfg.quant.dac_bits)
    return arr * (cfg.crossbar.v_read / cfg.quant.dac_max)
