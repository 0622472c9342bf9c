"""xbarflow.flow.model.device_read: the QMM read tables device-aware training uses equal the cells'
currents summed per column (computed here from memdiode.current) and the golden model's qmm
read; their derivatives match finite differences of the device model."""

from __future__ import annotations

import numpy as np
import pytest

from xbarflow.analog_models import memdiode
from xbarflow.analog_models.adc import code_range, lsb
from xbarflow.analog_models.array import QMM_TOL_LSB
from xbarflow.analog_models.mapping import level_conductance, map_weights
from xbarflow.flow.core import config
from xbarflow.flow.model.device_read import DeviceRead
from xbarflow.flow.model.forward import ChipModel
from xbarflow.flow.model.golden import GoldenChip

PRESETS = ("hfo2_aguirre2024", "strongly_nonlinear")


def qmm_cfg(preset: str, **more) -> config.ChipConfig:
    return config.load().replace(**{"device.read_model": "qmm", "device.preset": preset,
                                    "train.device_aware": True, **more})


def column_codes(cfg, w, x):
    """The tile's ADC inputs (n, outputs) in LSB, from first principles: each cell's QMM current
    at its DAC voltage and mapped state, summed per column, the pair subtracted, TIA and ADC."""
    params = memdiode.QmmParams.from_config(cfg)
    lam = memdiode.state_for_conductance(map_weights(w, cfg).conductance, cfg.crossbar.v_read, params)
    volts = x * (cfg.crossbar.v_read / cfg.quant.dac_max)
    cur = memdiode.current(volts[:, :, None], lam[None, :, :], params).sum(axis=1)   # (n, cols)
    return (cur[:, 0::2] - cur[:, 1::2]) * cfg.sensing.tia_gain / lsb(cfg)


def continuous_pair(cfg, c, s):
    """D(c, s) in ADC codes for a continuous signed level s (for finite differences)."""
    params = memdiode.QmmParams.from_config(cfg)
    v = np.array([c * cfg.crossbar.v_read / cfg.quant.dac_max])

    def cell(level):
        lam = memdiode.state_for_conductance(level_conductance(np.array([level]), cfg),
                                             cfg.crossbar.v_read, params)
        return memdiode.current(v, lam, params)[0]
    return (cell(max(s, 0.0)) - cell(max(-s, 0.0))) * cfg.sensing.tia_gain / lsb(cfg)


@pytest.fixture(scope="module")
def slp_case():
    rng = np.random.default_rng(5)
    w = rng.normal(0.0, 1.0, (196, 10))
    x = rng.integers(0, 16, (6, 196))
    return w, x


@pytest.mark.parametrize("preset", PRESETS)
def test_forward_equals_summed_cell_currents_and_the_golden_qmm_read(preset, slp_case):
    w, x = slp_case
    cfg = qmm_cfg(preset, **{"crossbar.wire_r": 0.0})
    expected = column_codes(cfg, w, x)
    model = ChipModel(cfg)
    lev = model.levels(w)
    z = model.read.sums(x.astype(np.float64), lev)
    assert np.abs(z - expected).max() < 1e-6 * np.abs(expected).max()
    # and it is not the linear read (the check would not see a forward pass that ignores the QMM)
    assert np.abs((x @ lev) * model.unit - expected).max() > 0.1
    golden = GoldenChip.from_weights(cfg, w)
    g_volts = golden.array.scores_volts(x) / lsb(cfg)
    assert np.abs(g_volts - expected).max() < QMM_TOL_LSB
    sums, _ = model.forward([lev], [], [], x.astype(np.float64))
    lo, hi = code_range(cfg.adc.bits)
    assert np.array_equal(sums[0], np.clip(np.floor(expected + 0.5), lo, hi))
    assert np.array_equal(sums[0].astype(np.int64), golden.infer(x).adc_codes)


def test_wire_resistance_neglected_in_training_is_below_a_thousandth_lsb(slp_case):
    """The shipped tile (1 ohm segments, 8 partitions): the golden qmm read with its IR drop stays
    within 1e-3 LSB of the wire-free sums training uses."""
    w, x = slp_case
    cfg = qmm_cfg("hfo2_aguirre2024")
    assert cfg.crossbar.wire_r == 1.0
    golden = GoldenChip.from_weights(cfg, w).array.scores_volts(x) / lsb(cfg)
    model = ChipModel(cfg)
    assert np.abs(model.read.sums(x, model.levels(w)) - golden).max() < 1e-3


@pytest.mark.parametrize("preset", PRESETS)
def test_derivatives_match_finite_differences(preset):
    cfg = qmm_cfg(preset)
    read = DeviceRead(cfg)
    top, h = read.top, 1e-4
    assert np.abs(read.a @ read.b - read.table).max() <= 196 * read.truncation + 1e-12
    for c, s in [(1, 1), (4, -7), (9, 20), (15, 31 - 1e-3), (15, -30), (7, 0)]:
        fd = (continuous_pair(cfg, c, s + h) - continuous_pair(cfg, c, s - h)) / (2 * h)
        k = int(round(s)) + top
        assert read.d_level[c, k] == pytest.approx(fd, rel=1e-6)
        assert (read.a[c] @ read.b_level[:, k]) == pytest.approx(fd, rel=1e-6)
    for c, s in [(1, 5), (8, -12), (14, 31), (3, 0)]:
        k = s + top

        def at(code):
            params = memdiode.QmmParams.from_config(cfg)
            lam = memdiode.state_for_conductance(
                level_conductance(np.array([max(s, 0), max(-s, 0)]), cfg), cfg.crossbar.v_read, params)
            cur = memdiode.current(np.full(2, code * cfg.crossbar.v_read / cfg.quant.dac_max), lam, params)
            return (cur[0] - cur[1]) * cfg.sensing.tia_gain / lsb(cfg)
        fd = (at(c + h) - at(c - h)) / (2 * h)
        assert read.d_code[c, k] == pytest.approx(fd, rel=1e-6, abs=1e-9)
        assert (read.a_code[c] @ read.b[:, k]) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_gathered_gradients_are_the_table_derivatives_summed():
    """grad_levels / grad_inputs = sum over images / outputs of g times dD/ds, dD/dc (by loops)."""
    cfg = qmm_cfg("strongly_nonlinear")
    read = DeviceRead(cfg)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 16, (5, 7))
    lev = rng.integers(-31, 32, (7, 3)).astype(np.float64)
    g = rng.normal(size=(5, 3))
    dl = np.zeros((7, 3))
    dx = np.zeros((5, 7))
    for n in range(5):
        for i in range(7):
            for k in range(3):
                dl[i, k] += g[n, k] * read.d_level[x[n, i], int(lev[i, k]) + 31]
                dx[n, i] += g[n, k] * read.d_code[x[n, i], int(lev[i, k]) + 31]
    assert np.allclose(read.grad_levels(x, lev, g), dl, rtol=1e-9, atol=1e-12)
    assert np.allclose(read.grad_inputs(x, lev, g), dx, rtol=1e-9, atol=1e-12)


def test_noise_std_is_the_golden_read_noise_spread(slp_case):
    """The injected noise's standard deviation per output equals the spread of the golden qmm
    read over 2000 keyed read-noise events of one image (Monte Carlo, 5 % sigma)."""
    w, x = slp_case
    cfg = qmm_cfg("strongly_nonlinear", **{"device.read_noise_sigma": 0.05, "crossbar.wire_r": 0.0})
    model = ChipModel(cfg)
    image = np.repeat(x[:1], 2000, axis=0)
    golden = GoldenChip.from_weights(cfg, w).array.scores_volts(image, np.arange(2000)) / lsb(cfg)
    predicted = model.read.noise_std(x[:1], model.levels(w))[0]
    assert np.allclose(golden.std(axis=0), predicted, rtol=0.08)
    assert np.allclose(golden.mean(axis=0), model.read.sums(x[:1], model.levels(w))[0],
                       atol=4 * predicted.max() / np.sqrt(2000))
