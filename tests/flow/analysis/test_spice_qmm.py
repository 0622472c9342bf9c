"""ngspice with behavioural QMM cells vs an independent Newton solve of the same nonlinear array.

The reference below is written from the QMM I-V and the network description alone (scipy sparse
Newton on the nodal equations, the implicit Rs solved per cell); ngspice solves the deck with its
own Newton iteration. Column currents must agree within 1e-6 relative. Needs ngspice: without it
these tests fail (SpiceError with the install command), they never skip.
"""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from xbarflow.analog_models import adc
from xbarflow.analog_models.array import QMM_TOL_LSB, AnalogArray
from xbarflow.analog_models.dac import dac_voltages
from xbarflow.analog_models.mapping import map_weights
from xbarflow.analog_models.memdiode import QmmParams, cell_params, state_for_conductance
from xbarflow.flow.analysis import spice, spice_qmm
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.data import to_dac_codes

TOLERANCE = 1e-6


# -- independent reference ------------------------------------------------------------------------

def _junction(vd, i0, alpha, beta):
    """QMM junction current at intrinsic voltage vd, and its slope."""
    up, down = np.exp(beta * alpha * vd), np.exp(-(1 - beta) * alpha * vd)
    return i0 * (up - down), i0 * alpha * (beta * up + (1 - beta) * down)


def _cells(v, i0, alpha, beta, rs):
    """Cell current and dI/dV at terminal voltage v: Newton on vd + rs f(vd) = v from vd = v
    (monotone and convex on either side of 0, so the iteration converges monotonically)."""
    vd = np.array(v, dtype=np.float64)
    for _ in range(100):
        f, df = _junction(vd, i0, alpha, beta)
        step = (vd + rs * f - v) / (1 + rs * df)
        vd = vd - step
        if np.all(np.abs(step) <= 1e-16 * np.abs(vd)):
            break
    f, df = _junction(vd, i0, alpha, beta)
    return f, df / (1 + rs * df)


def _partition(i0, alpha, beta, rs, v, wire_r):
    """Column currents of one row partition: row nodes u, column nodes w, KCL residual
    wires @ x - sources + incidence @ cell currents, Newton to machine precision."""
    r, c = i0.shape
    n = r * c
    u = np.arange(n).reshape(r, c)
    w = u + n
    a = np.concatenate([u[:, :-1].ravel(), w[:-1, :].ravel()])   # row and column segments
    b = np.concatenate([u[:, 1:].ravel(), w[1:, :].ravel()])
    gw = 1.0 / wire_r
    diag = np.bincount(np.concatenate([a, b, u[:, 0], w[-1, :]]), minlength=2 * n) * gw
    wires = sp.csr_matrix((np.concatenate([np.full(2 * len(a), -gw), diag]),
                           (np.concatenate([a, b, np.arange(2 * n)]),
                            np.concatenate([b, a, np.arange(2 * n)]))), shape=(2 * n, 2 * n))
    sources = np.zeros(2 * n)
    sources[u[:, 0]] = gw * v                                      # DAC through one segment
    incidence = sp.csr_matrix((np.r_[np.ones(n), -np.ones(n)],
                               (np.r_[u.ravel(), w.ravel()], np.tile(np.arange(n), 2))),
                              shape=(2 * n, n))
    cell = (i0.ravel(), alpha.ravel(), beta.ravel(), rs.ravel())
    x = np.zeros(2 * n)
    x[u.ravel()] = np.repeat(v, c)
    for _ in range(60):
        current, slope = _cells(incidence.T @ x, *cell)
        step = spsolve((wires + incidence @ sp.diags(slope) @ incidence.T).tocsc(),
                       wires @ x - sources + incidence @ current)
        x -= step
        if np.max(np.abs(step)) <= 1e-15 * np.max(np.abs(x)):
            break
    else:
        raise AssertionError("reference Newton did not converge")
    return _cells(incidence.T @ x, *cell)[0].reshape(r, c).sum(axis=0)


def reference_currents(i0, alpha, beta, rs, v, wire_r, partitions):
    """Column currents of the QMM array with wires (partitions share only the virtual ground)."""
    beta = np.broadcast_to(beta, i0.shape)
    return sum(_partition(i0[p], alpha[p], beta[p], rs[p], v[p], wire_r)
               for p in np.array_split(np.arange(i0.shape[0]), partitions))


def no_wire_currents(i0, alpha, beta, rs, v):
    """Column currents with ideal wires: every cell sees its full row voltage."""
    return _cells(np.broadcast_to(v[:, None], i0.shape), i0, alpha,
                  np.broadcast_to(beta, i0.shape), rs)[0].sum(axis=0)


def max_rel(a, b):
    return float(np.max(np.abs(a - b) / np.abs(b)))


# -- tiles --------------------------------------------------------------------------------------

def stress_params(cfg):
    """uS cells: 1 uS (HRS) to 10 uS (LRS) at 0.2 V, Rs 1 kohm to 100 ohm (the implicit Rs matters:
    Rs G ~ 1e-3), the default preset's alpha and beta."""
    return QmmParams.from_config(cfg.replace(**{
        "device.read_model": "qmm", "device.g_off": 1e-6, "device.g_on": 1e-5,
        "device.qmm_rs_hrs": 1000.0, "device.qmm_rs_lrs": 100.0}))


def stress_tile(cfg, seed=64):
    """64 x 64 memory states and row voltages, uniform in [0, 1] and [0, 0.2 V]."""
    rng = np.random.default_rng(seed)
    return stress_params(cfg), rng.uniform(0, 1, (64, 64)), rng.uniform(0, 0.2, 64)


def reference_of(params, lam, v, wire_r, partitions):
    i0, alpha, rs = cell_params(params, lam)
    return reference_currents(i0, alpha, params.beta, rs, v, wire_r, partitions)


def check_tile(label, params, lam, v, wire_r, partitions, tmp_path):
    check = spice_qmm.cross_check(params, lam, v, wire_r, partitions, tmp_path, "tile")
    ref = reference_of(params, lam, v, wire_r, partitions)
    i0, alpha, rs = cell_params(params, lam)
    no_wire = no_wire_currents(i0, alpha, params.beta, rs, v)
    np.testing.assert_allclose(check.ideal, no_wire, rtol=1e-12)
    print(f"{label}: ngspice {check.run.seconds:.2f} s, max rel ngspice vs model "
          f"{check.max_rel_error:.2e}, vs reference {max_rel(check.spice, ref):.2e}, "
          f"IR drop {check.ir_drop:.2e}")
    assert check.max_rel_error < TOLERANCE, "ngspice vs the model's solver"
    assert max_rel(check.spice, ref) < TOLERANCE, "ngspice vs the independent reference"
    return check


def test_default_tile_with_an_mnist_image(cfg, dataset, weights, tmp_path):
    qcfg = cfg.replace(**{"device.read_model": "qmm"})
    params = QmmParams.from_config(qcfg)
    lam = state_for_conductance(map_weights(weights.w, qcfg).conductance, qcfg.crossbar.v_read, params)
    codes = to_dac_codes(dataset.x_test[3:4], qcfg)[0]
    v = dac_voltages(codes, qcfg)
    x = qcfg.crossbar
    assert lam.shape == (196, 20) and (x.wire_r, x.partitions) == (1.0, 8)
    check = check_tile("default 196x20", params, lam, v, x.wire_r, x.partitions, tmp_path)
    # the chip's read path (AnalogArray, qmm) gives ngspice's TIA voltages within its stated bound
    g = map_weights(weights.w, qcfg).conductance
    tia = (check.spice[0::2] - check.spice[1::2]) * qcfg.sensing.tia_gain
    chip = AnalogArray(qcfg, g).scores_volts(codes)
    assert np.max(np.abs(chip - tia)) <= QMM_TOL_LSB * adc.lsb(qcfg)


@pytest.mark.parametrize("wire_r, partitions", [(5.0, 1), (1.0, 2)])
def test_stress_tile_with_large_ir_drop(cfg, wire_r, partitions, tmp_path):
    params, lam, v = stress_tile(cfg)
    check = check_tile(f"stress 64x64 wire {wire_r} ohm, {partitions} partition(s)",
                       params, lam, v, wire_r, partitions, tmp_path)
    assert check.ir_drop > 0.01, "the IR drop must be visible for this to test anything"


@pytest.mark.parametrize("preset", list(cfgmod.DEVICE_PRESETS))
def test_every_device_preset_at_full_read_voltage(cfg, preset, tmp_path):
    """Each preset of configs/devices/presets.toml at 0.5 V (its most nonlinear read), uS cells."""
    params = QmmParams.from_config(cfg.replace(**{
        "device.read_model": "qmm", "device.preset": preset, "crossbar.v_read": 0.5,
        "device.g_off": 1e-6, "device.g_on": 1e-5}))
    rng = np.random.default_rng(48)
    lam, v = rng.uniform(0, 1, (48, 12)), rng.integers(0, 16, 48) * 0.5 / 15
    check = check_tile(f"preset {preset}", params, lam, v, 2.0, 3, tmp_path)
    assert check.ir_drop > 1e-3


@pytest.mark.parametrize("wrong", ["beta", "rs"])
def test_a_wrong_cell_parameter_in_the_deck_fails_the_comparison(cfg, wrong, tmp_path):
    params, lam, v = stress_tile(cfg)
    i0, alpha, rs = cell_params(params, lam)
    deck = dict(i0=i0, alpha=alpha, beta=params.beta, rs=rs)
    deck[wrong] = {"beta": params.beta + 1e-3, "rs": rs * 1.1}[wrong]
    run = ngspice_run(tmp_path, "wrong", deck["i0"], deck["alpha"], deck["beta"], deck["rs"], v, 1.0, 2)
    model = spice_qmm.model_currents(params, lam, v, 1.0, 2)
    assert max_rel(run.currents, model) > 10 * TOLERANCE
    assert max_rel(run.currents, reference_of(params, lam, v, 1.0, 2)) > 10 * TOLERANCE


def ngspice_run(tmp_path, name, i0, alpha, beta, rs, v, wire_r, partitions):
    deck = spice_qmm.netlist(i0, alpha, beta, rs, v, wire_r, partitions, title=name,
                             results=spice.results_file(name))
    return spice.run_ngspice(deck, tmp_path, name)

def test_netlist_cells():
    rows, cols = 5, 2
    i0 = np.full((rows, cols), 1e-9)
    i0[1, 1] = 0.0                                  # an open cell: no elements
    rs = np.full((rows, cols), 1.0)
    rs[2, 0] = 0.0                                  # no series resistor: the source on the row node
    deck = spice_qmm.netlist(i0, 2.5, 0.5, rs, np.full(rows, 0.2), 1.0, 2)
    lines = deck.splitlines()
    assert sum(ln.startswith("Bq") for ln in lines) == rows * cols - 1
    assert sum(ln.startswith("Rs") for ln in lines) == rows * cols - 2
    assert "Rs0_0 r0_0 m0_0 1" in lines
    assert "Bq0_0 m0_0 c0_0 I = 1e-09*(exp(0.5*2.5*V(m0_0,c0_0)) - exp(-(1-0.5)*2.5*V(m0_0,c0_0)))" in lines
    assert any(ln.startswith("Bq2_0 r2_0 c2_0 ") for ln in lines)
    assert not any(re.match(r"(Bq|Rs)1_1 ", ln) for ln in lines)
    assert "Rt2_0 c2_0 t0 1" in lines and "Rt4_1 c4_1 t1 1" in lines   # partitions of 3 and 2 rows
    assert any(ln.startswith(".options") and "reltol=1e-12" in ln for ln in lines)


def test_netlist_refuses_what_ngspice_would_clamp():
    with pytest.raises(ValueError, match="clamps"):
        spice_qmm.netlist(np.full((2, 2), 1e-9), 300.0, 0.5, 0.0, np.full(2, 1.0), 1.0, 1)
    with pytest.raises(ValueError, match="beta"):
        spice_qmm.netlist(np.full((2, 2), 1e-9), 2.5, 1.0, 0.0, np.full(2, 0.2), 1.0, 1)


def test_missing_ngspice_fails_loudly(cfg, tmp_path, monkeypatch):
    params, lam, v = stress_tile(cfg)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(spice.SpiceError, match="apt-get install ngspice"):
        spice_qmm.cross_check(params, lam, v, 1.0, 1, tmp_path)
