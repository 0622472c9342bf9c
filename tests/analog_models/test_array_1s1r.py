"""AnalogArray with crossbar.cell = "1S1R": the golden model (whole test set) and the bridge's
one-event-at-a-time calls give the same ADC codes; a level reads its conductance at full input
and the selector shows below it; the same with QMM memdiodes behind the selector."""

import numpy as np
import pytest

from xbarflow.analog_models.array import AnalogArray
from xbarflow.flow.core import config

from tests.support.cell_types import (QMM, SELECTOR_KINDS, assert_golden_equals_bridge, one_s_one_r,
                                      slp_context)


@pytest.fixture(scope="module")
def context():
    return slp_context({"crossbar.cell": "1S1R"})


def test_full_test_set_batched_equals_one_by_one(context):
    ctx = context
    array = ctx.golden.array
    assert array.solver is not None and array.solver.iterations >= 1
    batched = assert_golden_equals_bridge(ctx)
    # not vacuous: the selector changes what the chip computes against the 1R read
    linear = AnalogArray(ctx.cfg.replace(**{"crossbar.cell": "1R"}), array.conductance)
    assert (linear.adc_codes(ctx.test_codes[:500]) != batched[:500]).any(axis=1).mean() > 0.5


def test_exponential_selector_batched_equals_one_by_one(context):
    ctx = context
    cfg = ctx.cfg.replace(**{"crossbar.selector": "exponential"})
    array = AnalogArray(cfg, ctx.golden.array.conductance)
    codes = ctx.test_codes[:40]
    batched = array.scores_volts(codes)
    assert np.array_equal(batched, np.array([array.scores_volts(c) for c in codes]))
    assert np.array_equal(batched[::-1], array.scores_volts(codes[::-1]))


@pytest.mark.parametrize("kind", ["threshold", "exponential"])
def test_levels_read_their_conductance_at_full_input_and_the_selector_below(kind):
    cfg = config.load().replace(**{"crossbar.cell": "1S1R", "crossbar.selector": kind,
                                   "crossbar.wire_r": 0.0})
    rng = np.random.default_rng(1)
    g = rng.uniform(cfg.device.g_off, cfg.device.g_on, (196, 20))
    array = AnalogArray(cfg, g)
    linear = AnalogArray(cfg.replace(**{"crossbar.cell": "1R"}), g)
    full = np.full(196, cfg.quant.dac_max)
    np.testing.assert_allclose(array.scores_volts(full), linear.scores_volts(full), rtol=1e-9, atol=1e-12)
    half = np.full(196, 7)                      # 7/15 of V_read: below the 0.1 V threshold
    ratio = array.scores_volts(half) / linear.scores_volts(half)
    if kind == "threshold":
        assert np.abs(ratio).max() < 1e-3       # the leak alone
    else:
        assert np.all((0.2 < ratio) & (ratio < 0.95))   # the sinh selector takes a share


# 1S1R with QMM memdiodes (device.read_model = "qmm", analog_models/selector_memdiode.py)

@pytest.mark.parametrize("kind", SELECTOR_KINDS)
def test_qmm_cells_golden_equals_bridge(kind):
    ctx = slp_context({"crossbar.cell": "1S1R", "crossbar.selector": kind, **QMM})
    assert ctx.golden.array.states is not None and ctx.golden.array.memristor is None
    batched = assert_golden_equals_bridge(ctx, images=60)
    # not vacuous: the memdiode changes the read against the linear memristor behind the selector
    # (measured: 20 % of the images with the threshold selector, which holds most of a low input)
    linear = AnalogArray(one_s_one_r(kind, base=ctx.cfg.replace(**{"device.read_model": "linear"})),
                         ctx.golden.array.conductance)
    assert (linear.adc_codes(ctx.test_codes[:60]) != batched).any(axis=1).mean() >= 0.1


@pytest.mark.parametrize("kind", SELECTOR_KINDS)
def test_qmm_levels_read_their_conductance_at_full_input_and_the_selector_below(kind):
    cfg = one_s_one_r(kind, qmm=True, base=config.load(), crossbar__wire_r=0.0)
    g = np.random.default_rng(1).uniform(cfg.device.g_off, cfg.device.g_on, (196, 20))
    array = AnalogArray(cfg, g)
    linear = AnalogArray(cfg.replace(**{"crossbar.cell": "1R", "device.read_model": "linear"}), g)
    alone = AnalogArray(cfg.replace(**{"crossbar.cell": "1R"}), g)          # QMM, no selector
    full = np.full(196, cfg.quant.dac_max)
    np.testing.assert_allclose(array.scores_volts(full), linear.scores_volts(full), rtol=1e-9, atol=1e-12)
    half = np.full(196, 7)                      # 7/15 of V_read: below the 0.1 V threshold
    ratio = array.scores_volts(half) / alone.scores_volts(half)
    if kind == "threshold":
        assert np.abs(ratio).max() < 1e-3       # the leak alone
    else:
        assert np.all((0.2 < ratio) & (ratio < 0.95))   # the sinh selector takes a share
