"""xbarflow.flow.model.forward with train.device_aware: the QMM read path through a tiled MLP, its
backward pass against the linear crossbar's (near-linear cells) and against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from xbarflow.analog_models import memdiode
from xbarflow.analog_models.adc import lsb
from xbarflow.analog_models.mapping import level_conductance
from xbarflow.flow.core import config
from xbarflow.flow.model.forward import ChipModel

# 16 inputs on two row tiles of 8, a relu hidden layer of 6, 10 classes
SMALL = {"network.input_size": 4, "network.layers": [6, 10], "network.activations": ["relu", "none"],
         "crossbar.tile_rows": 8, "crossbar.tile_cols": 20, "crossbar.partitions": 2,
         "adc.adcs_per_tile": 0}


def small_cfg(**more) -> config.ChipConfig:
    return config.load("configs/mlp.toml").replace(**{**SMALL, **more})


def device_cfg(preset: str) -> config.ChipConfig:
    return small_cfg(**{"device.read_model": "qmm", "device.preset": preset, "train.device_aware": True})


def case(model, seed=3):
    rng = np.random.default_rng(seed)
    lev = [np.rint(rng.uniform(-20, 20, shape)) for shape in model.shapes]
    x = rng.integers(0, 16, (12, 16)).astype(np.float64)
    g = rng.normal(size=(12, 10))
    return lev, x, g


def test_config_refuses_device_aware_without_the_qmm_or_in_situ():
    with pytest.raises(config.ConfigError, match="read_model"):
        small_cfg(**{"train.device_aware": True})
    with pytest.raises(config.ConfigError, match="lbfgs and qat"):
        small_cfg(**{"device.read_model": "qmm", "train.device_aware": True, "train.method": "manhattan"})


def test_near_linear_cells_give_the_linear_forward_and_backward():
    """linear_like cells (alpha 1e-3 /V, Rs 0) read within ~1e-4 of G V: the device-aware pass
    through both tiles and the hidden layer must then agree with the linear one (its wiring:
    row tiles, ADC masks, the input gradient into the hidden layer)."""
    lin = ChipModel(small_cfg())
    dev = ChipModel(device_cfg("linear_like"))
    assert lin.read is None and dev.read is not None
    lev, x, g = case(lin)
    mult = [40]
    z_lin = lin.forward([lev[0]], mult, [1.0], x)[0][0]
    z_dev = dev.forward([lev[0]], mult, [1.0], x)[0][0]
    assert np.abs(z_lin - z_dev).max() <= 1.0       # ADC codes: a rounding flip at most
    _, c_lin = lin.forward(lev, mult, [1.0], x, keep=True)
    _, c_dev = dev.forward(lev, mult, [1.0], x, keep=True)
    # the same cache masks (no flips on this case), so the gradients compare directly
    for a, b in zip(c_lin, c_dev):
        for m_a, m_b in zip(a[1], b[1]):
            assert np.array_equal(m_a, m_b)
    for gl, gd in zip(lin.backward(lev, c_lin, g), dev.backward(lev, c_dev, g)):
        assert np.allclose(gd, gl, rtol=2e-3, atol=2e-3 * np.abs(gl).max())


def test_device_aware_backward_matches_finite_differences_of_the_cells():
    """The last layer's level gradient is sum_n g dD/ds with D the pair's QMM current at its
    code: finite differences of the cells' currents (memdiode, continuous level) computed here."""
    cfg = device_cfg("strongly_nonlinear")
    model = ChipModel(cfg)
    lev, x, g = case(model)
    # one layer (the SLP view): the network's first layer on its own, no ADC saturation
    lev0 = [np.rint(lev[0] / 4)]
    model.shapes = [model.shapes[0]]
    model.row_tiles = [model.row_tiles[0]]
    g6 = g[:, :6]
    _, cache = model.forward(lev0, [], [], x, keep=True)
    assert all(m.all() for m in cache[0][1])
    grad = model.backward(lev0, cache, g6)[0]
    params = memdiode.QmmParams.from_config(cfg)
    k_code = cfg.sensing.tia_gain / lsb(cfg)
    volts = x * (cfg.crossbar.v_read / cfg.quant.dac_max)

    def objective(i, k, s):
        """sum_n g_nk D(x_ni, s): the pair (i, k) at continuous signed level s."""
        lam = memdiode.state_for_conductance(level_conductance(np.array([max(s, 0), max(-s, 0)]), cfg),
                                             cfg.crossbar.v_read, params)
        cur = memdiode.current(volts[:, i, None], lam[None, :], params)
        return float(np.sum(g6[:, k] * (cur[:, 0] - cur[:, 1]))) * k_code

    h = 1e-4
    for i, k in [(0, 0), (5, 3), (11, 5), (15, 2)]:
        s = lev0[0][i, k]
        fd = (objective(i, k, s + h) - objective(i, k, s - h)) / (2 * h)
        assert grad[i, k] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    # the linear backward (x^T g * unit) is measurably different on these cells
    assert np.abs(grad - x.T @ g6 * model.unit).max() > 0.05 * np.abs(grad).max()
