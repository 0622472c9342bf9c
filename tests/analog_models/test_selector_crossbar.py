"""The 1S1R array read (analog_models/selector_crossbar.py) against an independent nodal solve:
every node of the network (row nodes, column nodes and the node between each memristor and its
selector) solved by scipy.optimize.root with the selector I-V written here, on a 1 x 1 and a
2 x 2 array with wires long enough to matter; and batch independence to the last bit."""

import dataclasses

import numpy as np
import pytest
from scipy.optimize import root

from xbarflow.analog_models.selector_crossbar import SelectorCrossbar
from xbarflow.flow.core.config import ChipConfig

from tests.support.cell_types import selector_current

LEVELS = np.linspace(0.0, 0.2, 16)
SELECTORS = {"threshold": {"selector": "threshold", "selector_v_th": 0.1, "selector_g_on": 1e-4,
                           "selector_g_leak": 1e-9},
             "exponential": {"selector": "exponential", "selector_i_s": 1e-7, "selector_v0": 0.05}}


def crossbar(kind, **kw):
    return dataclasses.replace(ChipConfig().crossbar, **{**SELECTORS[kind], **kw})


def nodal_column_currents(g, x, v_rows):
    """Column currents of one partition: unknowns u (row nodes), p (memristor-selector nodes),
    w (column nodes), each (r, c); KCL at every node, residuals in A scaled to ~1."""
    r, c = g.shape
    gw = 1.0 / x.wire_r
    scale = 1.0 / (g.max() * 0.2)

    def kcl(z):
        u, p, w = z.reshape(3, r, c)
        cell = g * (u - p)                                   # memristor current = selector current
        left = np.concatenate([v_rows[:, None], u[:, :-1]], axis=1)
        right = np.concatenate([u[:, 1:], u[:, -1:]], axis=1)
        row = gw * (left - u) - gw * (u - right) - cell      # the far end has no segment beyond
        mid = cell - selector_current(x, p - w)
        above = np.concatenate([w[:1], w[:-1]], axis=0)       # the top node has no segment above
        below = np.concatenate([w[1:], np.zeros((1, c))], axis=0)    # the last segment: TIA at 0 V
        col = selector_current(x, p - w) + gw * (above - w) - gw * (w - below)
        return np.concatenate([row.ravel(), mid.ravel(), col.ravel()]) * scale

    u0 = np.repeat(v_rows[:, None], c, axis=1)
    sol = root(kcl, np.concatenate([u0.ravel(), (0.5 * u0).ravel(), np.zeros(r * c)]),
               method="hybr", options={"xtol": 1e-14})
    assert np.abs(kcl(sol.x)).max() < 1e-11          # currents to ~1e-11 of the largest
    u, p, w = sol.x.reshape(3, r, c)
    return (g * (u - p)).sum(axis=0)


@pytest.mark.parametrize("kind", sorted(SELECTORS))
@pytest.mark.parametrize("g, codes", [(np.array([[2e-5]]), [15]),
                                      (np.array([[2e-5, 5e-6], [1e-5, 3e-5]]), [15, 11])])
def test_small_arrays_equal_an_independent_nodal_solve(kind, g, codes):
    x = crossbar(kind, wire_r=250.0, partitions=1)
    solver = SelectorCrossbar(g, x, LEVELS, current_tol=1e-15)
    assert solver.iterations >= 2                     # the wires matter here
    got = solver.column_currents(np.array([codes]))[0]
    want = nodal_column_currents(g, x, LEVELS[codes])
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # not vacuous: the wire drops and the selector both move the currents
    no_wires = SelectorCrossbar(g, dataclasses.replace(x, wire_r=0.0), LEVELS, 1e-15)
    assert np.all(np.abs(no_wires.column_currents(np.array([codes]))[0] / want - 1) > 1e-3)
    assert np.all(np.abs(want / (LEVELS[codes] @ g) - 1) > 0.05)


@pytest.mark.parametrize("kind", sorted(SELECTORS))
def test_batched_equals_one_by_one_to_the_last_bit(kind):
    rng = np.random.default_rng(3)
    x = crossbar(kind, wire_r=1.0, partitions=3)
    g = rng.uniform(1e-9, 4e-8, (11, 6))              # partitions of 4, 4, 3 rows
    codes = rng.integers(0, 16, (70, 11))
    solver = SelectorCrossbar(g, x, LEVELS, current_tol=1e-14)
    batched = solver.column_currents_grid(codes)
    assert np.array_equal(batched, np.vstack([solver.column_currents_grid(c[None]) for c in codes]))
    assert np.array_equal(batched, solver.column_currents_grid(codes, chunk=7))
    order = rng.permutation(70)
    assert np.array_equal(batched[order], solver.column_currents_grid(codes[order]))


def test_zero_conductance_cells_carry_no_current():
    """G = 0 is no cell (a tile's unused cells, a chip before it is programmed): 0 A, and the
    other columns read what the independent nodal solve gives for the remaining cells."""
    x = crossbar("threshold", wire_r=250.0, partitions=1)
    g = np.array([[2e-5, 0.0], [1e-5, 0.0]])
    got = SelectorCrossbar(g, x, LEVELS, current_tol=1e-15).column_currents(np.array([[15, 11]]))[0]
    assert got[1] == 0.0
    np.testing.assert_allclose(got[0], nodal_column_currents(g[:, :1], x, LEVELS[[15, 11]])[0], rtol=1e-9)
    assert not SelectorCrossbar(np.zeros((3, 2)), x, LEVELS, 1e-15).column_currents(np.array([[1, 2, 3]])).any()
    with pytest.raises(ValueError, match=">= 0 S"):
        SelectorCrossbar(-g, x, LEVELS, 1e-15)
