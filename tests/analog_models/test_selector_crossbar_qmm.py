"""The 1S1R array read with QMM memdiodes (SelectorCrossbar on selector_memdiode.QmmCells)
against an independent nodal solve: row nodes, column nodes and the node between each memdiode
and its selector solved by scipy.optimize.root, the memdiode's own Rs by brentq and the selector
I-V written out with math.exp / math.sinh (tests/analog_models/test_selector_memdiode.py), on a
1 x 1 and a 2 x 2 array with wires long enough to matter; and batch independence to the last bit."""

import numpy as np
import pytest
from scipy.optimize import root

from xbarflow.analog_models import memdiode, selector_memdiode as sm
from xbarflow.analog_models.selector_crossbar import SelectorCrossbar

from tests.support.cell_types import SELECTOR_KINDS, one_s_one_r

from .test_selector_memdiode import memdiode_current, selector_current

LEVELS = np.linspace(0.0, 0.2, 16)
# uS cells and selectors strong enough to read them (selector.check_read)
CELLS = {"device__g_on": 5e-6, "device__g_off": 5e-7, "crossbar__selector_g_on": 1e-4,
         "crossbar__selector_g_leak": 1e-9, "crossbar__selector_i_s": 1e-7}


def qmm_cells(kind, lam, **kw):
    cfg = one_s_one_r(kind, qmm=True, **{**CELLS, **kw})
    params = sm.qmm_params(cfg)
    return cfg.crossbar, sm.QmmCells(*memdiode.cell_params(params, lam), params.beta)


def nodal_column_currents(cells, x, v_rows):
    """Column currents of one partition: unknowns u (row nodes), p (memdiode-selector nodes),
    w (column nodes), each (r, c); KCL at every node, residuals scaled to ~1."""
    r, c = cells.shape
    gw = 1.0 / x.wire_r
    scale = 1.0 / (5e-6 * 0.2)

    def mem(u, p):
        return np.array([[memdiode_current(cells.i0[k, j], cells.alpha[k, j], cells.rs[k, j],
                                           cells.beta, u[k, j] - p[k, j]) for j in range(c)]
                         for k in range(r)])

    def sel(p, w):
        return np.array([[selector_current(x, p[k, j] - w[k, j]) for j in range(c)] for k in range(r)])

    def kcl(z):
        u, p, w = z.reshape(3, r, c)
        cell, through = mem(u, p), sel(p, w)
        left = np.concatenate([v_rows[:, None], u[:, :-1]], axis=1)
        right = np.concatenate([u[:, 1:], u[:, -1:]], axis=1)
        row = gw * (left - u) - gw * (u - right) - cell
        mid = cell - through
        above = np.concatenate([w[:1], w[:-1]], axis=0)
        below = np.concatenate([w[1:], np.zeros((1, c))], axis=0)
        col = through + gw * (above - w) - gw * (w - below)
        return np.concatenate([row.ravel(), mid.ravel(), col.ravel()]) * scale

    u0 = np.repeat(v_rows[:, None], c, axis=1)
    sol = root(kcl, np.concatenate([u0.ravel(), (0.5 * u0).ravel(), np.zeros(r * c)]),
               method="hybr", options={"xtol": 1e-14})
    assert np.abs(kcl(sol.x)).max() < 1e-10
    u, p, w = sol.x.reshape(3, r, c)
    return mem(u, p).sum(axis=0)


@pytest.mark.parametrize("kind", SELECTOR_KINDS)
@pytest.mark.parametrize("lam, codes", [(np.array([[0.8]]), [15]),
                                        (np.array([[0.9, 0.2], [0.5, 1.0]]), [15, 11])])
def test_small_arrays_equal_an_independent_nodal_solve(kind, lam, codes):
    x, cells = qmm_cells(kind, lam, crossbar__wire_r=250.0, crossbar__partitions=1)
    solver = SelectorCrossbar(cells, x, LEVELS, current_tol=1e-16)
    assert solver.iterations >= 2                     # the wires matter here
    got = solver.column_currents(np.array([codes]))[0]
    want = nodal_column_currents(cells, x, LEVELS[codes])
    np.testing.assert_allclose(got, want, rtol=1e-8)
    # not vacuous: the wire drops move the currents, and so does the selector (against the
    # QMM cells alone at the same row voltages)
    x0, cells0 = qmm_cells(kind, lam, crossbar__wire_r=0.0, crossbar__partitions=1)
    no_wires = SelectorCrossbar(cells0, x0, LEVELS, 1e-16).column_currents(np.array([codes]))[0]
    assert np.all(np.abs(no_wires / want - 1) > 1e-4)
    alone = memdiode.diode_current(LEVELS[codes][:, None] + 0 * cells.i0, cells.i0, cells.alpha, cells.beta)
    assert np.all(np.abs(want / alone.sum(axis=0) - 1) > 0.05)


@pytest.mark.parametrize("kind", SELECTOR_KINDS)
def test_batched_equals_one_by_one_to_the_last_bit(kind):
    rng = np.random.default_rng(3)
    x, cells = qmm_cells(kind, rng.random((11, 6)), crossbar__wire_r=1.0, crossbar__partitions=3,
                         device__g_on=2e-8, device__g_off=1e-9)
    codes = rng.integers(0, 16, (40, 11))
    solver = SelectorCrossbar(cells, x, LEVELS, current_tol=1e-16)
    batched = solver.column_currents_grid(codes)
    assert np.array_equal(batched, np.vstack([solver.column_currents_grid(c[None]) for c in codes]))
    assert np.array_equal(batched, solver.column_currents_grid(codes, chunk=7))
    order = rng.permutation(40)
    assert np.array_equal(batched[order], solver.column_currents_grid(codes[order]))
    # what the drivers deliver is what the columns sink (rows at 0 V may sink a little)
    np.testing.assert_allclose(solver.row_currents(codes[:5]).sum(axis=1),
                               solver.column_currents(codes[:5]).sum(axis=1), rtol=1e-9)
