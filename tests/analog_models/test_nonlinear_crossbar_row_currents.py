"""Row currents of the nonlinear crossbar (analog_models/nonlinear_crossbar.py,
`NonlinearCrossbar.row_currents`, what the cost model's read energy is made of), checked against
the nodal equations of a small uS array written out by hand and solved by scipy, and against
each cell's own QMM current (memdiode.current) where the wires carry no drop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import root

from xbarflow.analog_models.memdiode import QmmParams, cell_params, current
from xbarflow.analog_models.nonlinear_crossbar import NonlinearCrossbar

# uS cells (chord ~ I0 alpha: 3-50 uS) with Rs, so 200 ohm wires drop whole percents
PARAMS = QmmParams(i0_hrs=1e-6, i0_lrs=2e-5, alpha_hrs=2.9, alpha_lrs=2.5, beta=0.5,
                   rs_hrs=300.0, rs_lrs=100.0)
LEVELS = np.linspace(0.0, 0.5, 16)
LAM = np.array([[0.9, 0.1], [0.5, 1.0], [0.0, 0.7]])
CODES = np.array([[15, 7, 3], [0, 15, 15], [9, 0, 12]])


def solver(wire_r: float, partitions: int = 1) -> NonlinearCrossbar:
    i0, alpha, rs = cell_params(PARAMS, LAM)
    return NonlinearCrossbar(i0, alpha, rs, PARAMS.beta, wire_r, partitions, LEVELS, 1e-16)


def nodal_row_currents(v: np.ndarray, wire_r: float) -> np.ndarray:
    """One partition, by hand: row i driven at node (i, 0) through one segment, row nodes joined
    by one segment each; column j's nodes joined likewise, its bottom node one segment above the
    virtual ground (0 V), its top node free; cell (i, j) from u[i, j] to w[i, j]."""
    rows, cols = LAM.shape

    def kcl(x):
        u, w = x[:rows * cols].reshape(rows, cols), x[rows * cols:].reshape(rows, cols)
        c = current(u - w, LAM, PARAMS)
        res_u = np.empty_like(u)
        res_w = np.empty_like(w)
        for i in range(rows):
            for j in range(cols):
                left = v[i] if j == 0 else u[i, j - 1]
                inflow = (left - u[i, j]) / wire_r
                outflow = (u[i, j] - u[i, j + 1]) / wire_r if j + 1 < cols else 0.0
                res_u[i, j] = inflow - outflow - c[i, j]
        for j in range(cols):
            for i in range(rows):
                above = (w[i - 1, j] - w[i, j]) / wire_r if i > 0 else 0.0
                below = (w[i, j] - (w[i + 1, j] if i + 1 < rows else 0.0)) / wire_r
                res_w[i, j] = c[i, j] + above - below
        return np.concatenate([res_u.ravel(), res_w.ravel()]) * wire_r   # in volts

    guess = np.concatenate([np.repeat(v, cols), np.zeros(rows * cols)])
    sol = root(kcl, guess, method="hybr", options={"xtol": 1e-15})
    assert np.max(np.abs(kcl(sol.x))) < 1e-15, sol.message   # volts: converged to rounding
    u = sol.x[:rows * cols].reshape(rows, cols)
    return (v - u[:, 0]) / wire_r


@pytest.mark.parametrize("wire_r", [50.0, 200.0])
def test_row_currents_match_the_hand_written_nodal_equations(wire_r):
    s = solver(wire_r)
    got = s.row_currents(CODES)
    for n, codes in enumerate(CODES):
        v = LEVELS[codes]
        want = nodal_row_currents(v, wire_r)
        no_wire = current(v[:, None], LAM, PARAMS).sum(axis=1)
        assert np.max(np.abs(want - no_wire) / no_wire.max()) > 1e-3        # the wires matter here
        np.testing.assert_allclose(got[n], want, rtol=1e-9, atol=1e-9 * no_wire.max())


def test_row_currents_without_wires_are_the_cells_own_currents():
    got = solver(0.0).row_currents(CODES)
    want = current(LEVELS[CODES][:, :, None], LAM[None], PARAMS).sum(axis=2)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-20)


@pytest.mark.parametrize("partitions", [1, 2, 3])
def test_row_currents_add_up_to_the_column_currents(partitions):
    """KCL over the whole array: what the drivers put in, the virtual grounds take out, for every
    partitioning (the row order of the padded partition layout is undone)."""
    s = solver(200.0, partitions)
    rows_in = s.row_currents(CODES)
    cols_out = s.column_currents(CODES)
    np.testing.assert_allclose(rows_in.sum(axis=1), cols_out.sum(axis=1), rtol=1e-12)
    one = solver(200.0, 1).row_currents(CODES) if partitions > 1 else rows_in
    assert partitions == 1 or not np.allclose(rows_in, one, rtol=1e-6)   # partitions change the network
