"""The nonlinear array solver (analog_models/nonlinear_crossbar.py) against independent solves:
a plain Newton solve of the full nodal system with scipy (numpy's exp, dense or sparse LU), and
the linear limit against crossbar.effective_matrix; its residual criterion; batch independence."""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

from xbarflow.analog_models import memdiode
from xbarflow.analog_models.crossbar import effective_matrix
from xbarflow.analog_models.memdiode import QmmParams
from xbarflow.analog_models.nonlinear_crossbar import NonlinearCrossbar


def newton_reference(i0, alpha, rs, beta, wire_r, partitions, volts, dense=True):
    """Column currents of one input by Newton on the whole network of each partition.

    Unknowns: row node voltages u, column node voltages w and each cell's diode voltage x (its
    Rs as a separate equation x + Rs I0 s(x) = u - w), in physical units; KCL from the
    netlist built edge by edge; numpy's exp; scipy LU; one step after the step is below 1e-15 V."""
    total = np.zeros(i0.shape[1])
    gw = 1.0 / wire_r
    for rows in np.array_split(np.arange(i0.shape[0]), partitions):
        r, c = len(rows), i0.shape[1]
        n = r * c
        ci0, ca, crs = i0[rows].ravel(), alpha[rows].ravel(), rs[rows].ravel()
        vin = volts[rows]
        u_of = np.arange(n).reshape(r, c)
        w_of = u_of + n
        edges = [(u_of[i, j], u_of[i, j + 1]) for i in range(r) for j in range(c - 1)]
        edges += [(w_of[i, j], w_of[i + 1, j]) for i in range(r - 1) for j in range(c)]
        lap = sp.lil_matrix((2 * n, 2 * n))
        for a, b in edges:
            lap[a, a] += gw; lap[b, b] += gw; lap[a, b] -= gw; lap[b, a] -= gw
        src = np.zeros(2 * n)
        for i in range(r):
            lap[u_of[i, 0], u_of[i, 0]] += gw
            src[u_of[i, 0]] = gw * vin[i]
        for j in range(c):
            lap[w_of[r - 1, j], w_of[r - 1, j]] += gw
        lap = lap.tocsr()
        z = np.concatenate([np.repeat(vin, c), np.zeros(n), np.repeat(vin, c)])  # u, w, x

        def parts(x):
            e1, e2 = np.exp(beta * ca * x), np.exp(-(1 - beta) * ca * x)
            return ci0 * (e1 - e2), ci0 * ca * (beta * e1 + (1 - beta) * e2)

        done = 0
        for _ in range(100):
            u, w, x = z[:n], z[n:2 * n], z[2 * n:]
            cur, slope = parts(x)
            f_nodes = lap @ z[:2 * n] - src
            f_nodes[:n] += cur
            f_nodes[n:] -= cur
            f_cell = x + crs * cur - (u - w)
            jac = sp.bmat([[lap, sp.vstack([sp.diags(slope), -sp.diags(slope)])],
                           [sp.hstack([-sp.eye(n), sp.eye(n)]), sp.diags(1 + crs * slope)]]).tocsc()
            f = np.concatenate([f_nodes, f_cell])
            step = scipy.linalg.solve(jac.toarray(), f) if dense else scipy.sparse.linalg.spsolve(jac, f)
            z = z - step
            if np.abs(step).max() < 1e-15:     # quadratic convergence: one more step is at ulp level
                done += 1
                if done == 2:
                    break
        else:
            raise AssertionError("reference Newton did not converge")
        cur = parts(z[2 * n:])[0].reshape(r, c)
        total += cur.sum(axis=0)
    return total


def random_cells(rng, shape, params, g_lo, g_hi):
    g = rng.uniform(g_lo, g_hi, shape)
    lam = memdiode.state_for_conductance(g, 0.2, params)
    return memdiode.cell_params(params, lam)


def qmm_params(g_off, g_on, alpha=(12.0, 10.0), beta=0.6, rs=(200.0, 100.0)):
    """QMM parameters with I0 set (closed form, numpy) for chord conductances g_off, g_on at 0.2 V."""
    def i0(g, a, r):
        vd = 0.2 * (1 - g * r)
        return g * 0.2 / (np.expm1(beta * a * vd) - np.expm1(-(1 - beta) * a * vd))
    return QmmParams(i0(g_off, alpha[0], rs[0]), i0(g_on, alpha[1], rs[1]), alpha[0], alpha[1],
                     beta, rs[0], rs[1])


def strong_params(g_off, g_on, rs=(200.0, 100.0)):
    return qmm_params(g_off, g_on, rs=rs)


def fitted_params(g_off, g_on):
    """The authors' fitted memdiode (alpha 2.947 / 2.544, beta 0.5, Rs 1 ohm)."""
    return qmm_params(g_off, g_on, alpha=(2.947, 2.544), beta=0.5, rs=(1.0, 1.0))


LEVELS = np.arange(16) * (0.2 / 15)


@pytest.mark.parametrize("g_range, rs, wire_r, taylor", [
    ((5e-6, 1e-4), (200.0, 100.0), 3.0, False),   # big IR drop, lines, the full expm1
    ((1e-7, 2e-6), (2e4, 1e4), 1.0, True),        # small drops: fixed point, Taylor
])
def test_matches_a_dense_newton_solve_of_the_full_network(g_range, rs, wire_r, taylor):
    # strongly nonlinear cells with a series resistance, partitions of 13 and 12 rows
    rng = np.random.default_rng(1)
    p = strong_params(*g_range, rs=rs)
    i0, alpha, rs = random_cells(rng, (25, 10), p, *g_range)
    xb = NonlinearCrossbar(i0, alpha, rs, p.beta, wire_r, 2, LEVELS, current_tol=1e-16)
    assert xb.taylor_degree > 0
    if not taylor:
        xb.taylor_degree = 0                  # the full range-reduced expm1 instead of Taylor
    assert xb.method == ("fixed_point" if taylor else "lines")   # both methods checked here
    codes = rng.integers(0, 16, (3, 25))
    codes[0] = 15
    got = xb.column_currents(codes)
    ideal = memdiode.diode_current(LEVELS[codes][:, :, None], i0, alpha, p.beta).sum(axis=1)
    for k in range(3):
        ref = newton_reference(i0, alpha, rs, p.beta, wire_r, 2, LEVELS[codes[k]])
        np.testing.assert_allclose(got[k], ref, rtol=1e-10)
    assert np.max(np.abs(got[0] / ideal[0] - 1)) > 0.01     # the wires and Rs matter here


@pytest.mark.parametrize("shape, partitions, wire_r, g_range", [
    ((196, 40), 1, 1.0, (1e-6, 1e-5)),      # the stress tile: uS cells, one partition
    ((64, 64), 1, 5.0, (1e-6, 1e-5)),       # 64 x 64 uS tile, 5 ohm wires
])
def test_stress_tiles_converge_to_the_sparse_newton_solution(shape, partitions, wire_r, g_range):
    rng = np.random.default_rng(2)
    p = fitted_params(*g_range)
    i0, alpha, rs = random_cells(rng, shape, p, *g_range)
    xb = NonlinearCrossbar(i0, alpha, rs, p.beta, wire_r, partitions, LEVELS, current_tol=1e-13)
    codes = rng.integers(0, 16, (2, shape[0]))
    codes[0] = 15
    got = xb.column_currents(codes)
    ideal = memdiode.diode_current(LEVELS[codes][:, :, None], i0, alpha, p.beta).sum(axis=1)
    assert np.max(1 - got[0] / ideal[0]) > 0.05            # visible IR drop
    for k in range(2):
        ref = newton_reference(i0, alpha, rs, p.beta, wire_r, partitions, LEVELS[codes[k]], dense=False)
        np.testing.assert_allclose(got[k], ref, rtol=1e-10)
    assert np.all(xb.residual(codes) <= 1e-13)


def test_linear_cells_give_the_effective_matrix():
    rng = np.random.default_rng(3)
    g = rng.uniform(1e-6, 5e-5, (31, 12))          # partitions of 8, 8, 8 and 7 rows
    alpha = np.full(g.shape, 1e-6)                 # I0 s(V) = I0 alpha V (1 + 4e-14)
    xb = NonlinearCrossbar(g / alpha, alpha, np.zeros(g.shape), 0.5, 2.0, 4, LEVELS, 1e-18)
    codes = rng.integers(0, 16, (5, 31))
    np.testing.assert_allclose(xb.column_currents(codes), LEVELS[codes] @ effective_matrix(g, 2.0, 4),
                               rtol=1e-11)


def test_default_cells_need_few_sweeps_and_meet_the_lsb_criterion():
    # the shipped SLP tile: 20 nS cells, 1 ohm, 8 partitions; tolerance 1e-3 ADC LSB
    rng = np.random.default_rng(4)
    p = strong_params(1e-9, 2e-8, rs=(1.0, 1.0))
    i0, alpha, rs = random_cells(rng, (196, 20), p, 1e-9, 2e-8)
    lsb_current = (1.0 / 128) / 1e8
    xb = NonlinearCrossbar(i0, alpha, rs, p.beta, 1.0, 8, LEVELS, 1e-3 * lsb_current)
    assert xb.method == "fixed_point" and xb.iterations <= 2 and xb.kappa < 1e-4
    codes = rng.integers(0, 16, (4, 196))
    assert np.all(xb.residual(codes) <= 1e-3 * lsb_current)
    lines = NonlinearCrossbar(i0, alpha, rs, p.beta, 1.0, 8, LEVELS, 1e-3 * lsb_current, method="lines")
    assert lines.sweeps <= 3 and lines.rho < 1e-6
    assert np.all(lines.residual(codes) <= 1e-3 * lsb_current)
    np.testing.assert_allclose(xb.column_currents(codes), lines.column_currents(codes), rtol=1e-13)


def test_residual_criterion_fails_with_too_few_sweeps():
    rng = np.random.default_rng(5)
    p = strong_params(1e-6, 1e-5, rs=(1.0, 1.0))
    i0, alpha, rs = random_cells(rng, (196, 40), p, 1e-6, 1e-5)
    tol = 1e-3 * (1.0 / 128) / 1e4
    xb = NonlinearCrossbar(i0, alpha, rs, p.beta, 1.0, 1, LEVELS, tol)
    assert xb.method == "lines"
    codes = np.full((1, 196), 15)
    assert xb.residual(codes)[0] <= tol
    xb.sweeps //= 2
    assert xb.residual(codes)[0] > tol
    # the fixed point on a default-like tile: one iteration fewer than the count fails too
    q = strong_params(1e-9, 2e-7, rs=(1.0, 1.0))
    i0, alpha, rs = random_cells(rng, (196, 20), q, 1e-9, 2e-7)
    fp = NonlinearCrossbar(i0, alpha, rs, q.beta, 1.0, 1, LEVELS, 1e-3 * (1.0 / 128) / 1e8)
    assert fp.method == "fixed_point"
    assert fp.residual(codes)[0] <= fp.current_tol
    fp.iterations -= 2
    assert fp.residual(codes)[0] > fp.current_tol


def test_result_is_bit_identical_whatever_the_batch():
    rng = np.random.default_rng(6)
    p = strong_params(1e-6, 1e-5, rs=(1.0, 1.0))
    i0, alpha, rs = random_cells(rng, (50, 16), p, 1e-6, 1e-5)
    xb = NonlinearCrossbar(i0, alpha, rs, p.beta, 2.0, 3, LEVELS, 1e-14)
    codes = rng.integers(0, 16, (37, 50))
    batch = xb.column_currents_grid(codes)
    single = np.vstack([xb.column_currents_grid(codes[k:k + 1]) for k in range(37)])
    order = rng.permutation(37)
    shuffled = xb.column_currents_grid(codes[order])
    strided = xb.column_currents_grid(np.repeat(codes, 2, axis=0)[::2])
    assert np.array_equal(batch, single) and np.array_equal(batch[order], shuffled)
    assert np.array_equal(batch, strided)


@pytest.mark.parametrize("partitions", [1, 8])
def test_fixed_point_floats_of_one_input_are_those_of_the_batch(partitions):
    # One input (the bridge's call) takes its own path through the wire sums: every node
    # voltage and cell current must be the batch's to the last bit, not only the grid codes.
    rng = np.random.default_rng(9)
    p = strong_params(1e-9, 2e-8, rs=(1.0, 1.0))
    i0, alpha, rs = random_cells(rng, (196, 20), p, 1e-9, 2e-8)
    xb = NonlinearCrossbar(i0, alpha, rs, p.beta, 5.0, partitions, LEVELS, 1e-14)
    assert xb.method == "fixed_point" and xb.iterations >= 2
    codes = rng.integers(0, 16, (9, 196))
    batch = xb.solve(codes)
    for k in range(len(codes)):
        one = xb.solve(codes[k:k + 1])
        for name, value in batch.items():
            assert np.array_equal(one[name][..., 0], value[..., k]), (name, k)


def test_bad_arguments_are_refused():
    ok = dict(i0=np.ones((4, 2)) * 1e-9, alpha=np.ones((4, 2)), rs=np.zeros((4, 2)), beta=0.5,
              wire_r=1.0, partitions=2, v_levels=LEVELS, current_tol=1e-15)
    NonlinearCrossbar(**ok)
    for key, value, match in [("partitions", 5, "partitions"), ("wire_r", -1.0, "wire_r"),
                              ("rs", np.full((4, 2), 1e12), "series resistance"),
                              ("current_tol", 0.0, "current_tol")]:
        with pytest.raises(ValueError, match=match):
            NonlinearCrossbar(**{**ok, key: value})
    xb = NonlinearCrossbar(**ok)
    with pytest.raises(ValueError, match="codes"):
        xb.column_currents(np.full((1, 4), 16))


@pytest.mark.parametrize("g_range, shape, partitions, method", [
    ((1e-9, 2e-8), (196, 20), 8, "fixed_point"),     # default-like: first row sums tabulated
    ((1e-6, 1e-5), (196, 40), 1, "lines"),           # stress: first row half-sweep tabulated
])
def test_per_level_tables_give_the_bits_of_the_per_read_solve(g_range, shape, partitions, method):
    # without read noise the solve starts from per-level tables; unit I0 factors force the same
    # operations per read, so both must agree to the last bit
    rng = np.random.default_rng(7)
    p = fitted_params(*g_range)
    i0, alpha, rs = random_cells(rng, shape, p, *g_range)
    xb = NonlinearCrossbar(i0, alpha, rs, p.beta, 1.0, partitions, LEVELS, 1e-3 * (1.0 / 128) / 1e8)
    assert xb.method == method
    codes = rng.integers(0, 16, (40, shape[0]))
    per_read = xb.column_currents_grid(codes, scale=np.ones((40,) + shape))
    assert np.array_equal(xb.column_currents_grid(codes), per_read)
