"""Cost model with QMM cells (flow/analysis/cost.py, `read_power`): the crossbar read energy is
the power the drivers put into the nonlinear array, from the solved cell currents (the solver's
row currents against hand-written nodal equations: tests/analog_models/
test_nonlinear_crossbar_row_currents.py)."""

import numpy as np
import pytest

from xbarflow.analog_models import memdiode, selector_memdiode
from xbarflow.analog_models.mapping import map_weights
from xbarflow.analog_models.memdiode import QmmParams, current, state_for_conductance
from xbarflow.flow.analysis import cost
from xbarflow.flow.core.paths import WEIGHTS as WEIGHTS_DIR
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.train import load_or_train

QMM = {"device.read_model": "qmm"}


@pytest.fixture(scope="module")
def setup(cfg, dataset):
    weights = load_or_train(cfg, dataset, WEIGHTS_DIR)
    return weights, to_dac_codes(dataset.x_test[:40], cfg)


def _read_power(c, weights, codes):
    r = cost.evaluate(c, weights, codes)
    return r.energy_j["crossbar read"] / r.read_s


def test_qmm_read_energy_is_the_cells_own_power_without_wires(cfg, setup):
    """wire_r = 0: every cell sees its row's DAC voltage, so the power is sum_ij V_i I_ij with
    I_ij the QMM current of the cell's state (memdiode.current), computed here from the mapped
    conductances."""
    weights, codes = setup
    c = cfg.replace(**QMM, **{"crossbar.wire_r": 0.0})
    g = map_weights(weights.w, c).conductance
    lam = state_for_conductance(g, c.crossbar.v_read, QmmParams.from_config(c))
    v = codes[:5] * (c.crossbar.v_read / c.quant.dac_max)
    want = np.mean([np.sum(v[k][:, None] * current(v[k][:, None], lam, QmmParams.from_config(c)))
                    for k in range(5)])
    assert _read_power(c, weights, codes[:5]) == pytest.approx(want, rel=1e-12)


def test_qmm_read_energy_is_below_the_linear_one_except_at_full_input(cfg, setup):
    """The chord conductance at V_read is the mapped one, and below V_read a sinh cell draws less
    than its chord (I/V grows with V): full-scale inputs cost what linear cells cost, MNIST images
    (most rows at partial codes or 0) less; 1 ohm wires only take a little off."""
    weights, codes = setup
    lin, qmm = cfg, cfg.replace(**QMM)
    full = np.full((2, codes.shape[1]), cfg.quant.dac_max)
    assert _read_power(qmm, weights, full) == pytest.approx(_read_power(lin, weights, full), rel=1e-5)
    p_lin, p_qmm = _read_power(lin, weights, codes), _read_power(qmm, weights, codes)
    assert p_qmm < p_lin * (1 - 1e-3)
    no_wire = _read_power(qmm.replace(**{"crossbar.wire_r": 0.0}), weights, codes)
    assert p_qmm < no_wire and p_qmm == pytest.approx(no_wire, rel=1e-3)


def test_1s1r_qmm_read_energy_and_cell_area(cfg, setup):
    """1S1R with QMM memdiodes, wire_r = 0: the power is sum_ij V_i I_ij with I_ij the series
    current of memdiode and selector (selector_memdiode.series_current on the mapped states);
    the selector takes a share below V_read, so it is less than the QMM cells' alone; the cell
    area is the 1S1R cell's, whatever the read model."""
    weights, codes = setup
    c = cfg.replace(**QMM, **{"crossbar.wire_r": 0.0, "crossbar.cell": "1S1R",
                              "crossbar.selector": "threshold", "cost.cell_area_1s1r_um2": 0.007})
    x = c.crossbar
    params = selector_memdiode.qmm_params(c)
    lam = selector_memdiode.state_for_chord(map_weights(weights.w, c).conductance, x, params)
    i0, alpha, rs = memdiode.cell_params(params, lam)
    v = codes[:3] * (x.v_read / c.quant.dac_max)
    want = np.mean([np.sum(v[k][:, None] * selector_memdiode.series_current(
        i0, alpha, rs, params.beta, np.broadcast_to(v[k][:, None], lam.shape), x)[0]) for k in range(3)])
    got = _read_power(c, weights, codes[:3])
    assert got == pytest.approx(want, rel=1e-12)
    # (the threshold selector blocks every row below 0.1 V)
    assert got < 0.95 * _read_power(c.replace(**{"crossbar.cell": "1R"}), weights, codes[:3])
    r = cost.evaluate(c, weights, codes[:3])
    assert r.area_um2["crossbar cells"] == pytest.approx(c.rows * c.cols * 0.007)
