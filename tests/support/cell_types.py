"""Shared setup of the cell-type tests (1S1R and QMM, and their co-simulations): the selector
kinds, the configs that switch a cell type on, the images a co-simulation classifies, and the
parity every inference co-simulation asserts on what the RTL computed, and the golden-vs-bridge
identity every nonlinear array read must keep."""

import numpy as np

from xbarflow.analog_models import adc
from xbarflow.flow.core import config
from xbarflow.flow.core.config import ChipConfig
from xbarflow.flow.model.context import RunContext
from xbarflow.flow.sim import parity

__all__ = ["QMM", "SELECTOR_KINDS", "assert_golden_equals_bridge", "assert_inference_parity",
           "image_indices", "one_s_one_r", "selector_current", "slp_context"]

SELECTOR_KINDS = ("exponential", "threshold")
QMM = {"device.read_model": "qmm"}


def one_s_one_r(kind: str, qmm: bool = False, base: ChipConfig | None = None, **overrides) -> ChipConfig:
    """`base` (default ChipConfig()) with 1S1R cells of selector `kind`, QMM cells if `qmm`, and
    further dotted overrides (given as keyword arguments with '__' for '.')."""
    extra = {k.replace("__", "."): v for k, v in overrides.items()}
    return (base or ChipConfig()).replace(**{"crossbar.cell": "1S1R", "crossbar.selector": kind,
                                             **(QMM if qmm else {}), **extra})


def selector_current(x, vs):
    """The selector's own I-V of crossbar section `x`, written out with numpy's sinh (not the
    module's kernels; odd in its voltage): the reference of the 1S1R solver tests."""
    if x.selector == "threshold":
        a = np.abs(vs)
        i = np.where(a <= x.selector_v_th, x.selector_g_leak * a,
                     x.selector_g_leak * x.selector_v_th + x.selector_g_on * (a - x.selector_v_th))
        return np.sign(vs) * i
    return x.selector_i_s * np.sinh(vs / x.selector_v0)


def image_indices(dataset, n: int) -> np.ndarray:
    """n test-set indices spread over the whole set (first and last included)."""
    return np.linspace(0, len(dataset.y_test) - 1, n).astype(np.int64)


def assert_inference_parity(result, golden, codes: np.ndarray, indices: np.ndarray) -> None:
    """An inference co-simulation equals its golden model image by image, on what the RTL
    computed: the sums it read back, its RESULT class, the DAC codes it drove."""
    assert result.mismatches == []
    assert np.array_equal(result.indices, indices)
    assert parity.check(result, golden, codes).same.all()
    assert np.array_equal(result.sums, golden.adc_codes), "sums the RTL read back"
    assert np.array_equal(result.classes, golden.classes), "RESULT class"
    assert all(len(image) == 1 and np.array_equal(image[0][1], c)
               for image, c in zip(result.tile_dac_codes, codes)), "the chip drove the host's codes"


def slp_context(overrides: dict) -> RunContext:
    """The shipped SLP (reference weights, MNIST test set) with `overrides`."""
    return RunContext.load(config.CONFIG_DIR / "slp.toml", overrides)


def assert_golden_equals_bridge(ctx: RunContext, images: int | None = None) -> np.ndarray:
    """The golden model (a whole batch at once) and the cocotb bridge (one vector per event,
    then the ADC) give the same ADC codes on the first `images` test images (all: None), to the
    last bit of the TIA voltages, and in any order; returns the golden ADC codes."""
    array = ctx.golden.array
    assert array.solver is not None
    codes = ctx.test_codes if images is None else ctx.test_codes[:images]
    batched = ctx.golden.infer(codes).adc_codes
    volts = np.array([array.scores_volts(c) for c in codes])
    single = np.array([adc.convert(v, ctx.cfg, event_index=k) for k, v in enumerate(volts)])
    assert np.array_equal(batched, single)
    assert np.array_equal(volts, array.scores_volts(codes))          # to the last bit
    order = np.random.default_rng(0).permutation(len(codes))[:2000]
    assert np.array_equal(array.adc_codes(codes[order], order), batched[order])
    return batched
