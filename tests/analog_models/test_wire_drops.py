"""The wire-drop helper (analog_models/wire_drops.py) against a dense nodal solve of the wire
network written here (numpy.linalg on the Laplacian built segment by segment), for given cell
currents and for linear cells by the fixed point; batched sums equal one-by-one to the last bit."""

import numpy as np
import pytest
import scipy.linalg

from xbarflow.analog_models.wire_drops import (
    check_current_tol, check_levels, column_drops, fixed_point, level_codes, partition_layout,
    shared_resistance, wire_drops, wire_sums,
)


def dense_network(n, c, wire_r, g=None, v_row=None, v_col=None, inject=None):
    """Node voltages (row nodes u, column nodes w), each (n, c), of one partition: rows driven
    at their left end through one segment (at v_row), columns below the last row (at v_col),
    cells of conductance g between u and w, and currents `inject` leaving u into w."""
    gw = 1.0 / wire_r
    size = 2 * n * c
    lap, rhs = np.zeros((size, size)), np.zeros(size)
    v_row = np.zeros(n) if v_row is None else v_row
    v_col = np.zeros(c) if v_col is None else v_col

    def u(k, j):
        return k * c + j

    def w(k, j):
        return n * c + k * c + j

    def link(p, q, y):
        lap[p, p] += y
        lap[q, q] += y
        lap[p, q] -= y
        lap[q, p] -= y

    for k in range(n):
        for j in range(c):
            if j + 1 < c:
                link(u(k, j), u(k, j + 1), gw)
            if k + 1 < n:
                link(w(k, j), w(k + 1, j), gw)
            if g is not None:
                link(u(k, j), w(k, j), g[k, j])
            if inject is not None:
                rhs[u(k, j)] -= inject[k, j]
                rhs[w(k, j)] += inject[k, j]
        lap[u(k, 0), u(k, 0)] += gw
        rhs[u(k, 0)] += gw * v_row[k]
    for j in range(c):
        lap[w(n - 1, j), w(n - 1, j)] += gw
        rhs[w(n - 1, j)] += gw * v_col[j]
    x = scipy.linalg.solve(lap, rhs)
    return x[:n * c].reshape(n, c), x[n * c:].reshape(n, c)


def padded(values, index):
    """(P, depth, cols) of per-row values (rows, cols); padding rows zero."""
    real = index >= 0
    return np.where(real[:, :, None], values[np.where(real, index, 0)], 0.0)


@pytest.mark.parametrize("rows, partitions, cols, wire_r", [(1, 1, 1, 2.0), (5, 2, 4, 3.0),
                                                             (7, 3, 3, 1.0), (4, 4, 6, 0.5)])
def test_drops_of_given_currents_equal_a_dense_nodal_solve(rows, partitions, cols, wire_r):
    rng = np.random.default_rng(rows * 10 + cols)
    i = rng.uniform(-1e-3, 1e-3, (rows, cols))
    index = partition_layout(rows, partitions)
    a, w = wire_drops(padded(i, index), wire_r)
    batch = np.stack([padded(i, index), padded(-2.0 * i, index)], axis=-1)   # the batched path
    a2, w2 = wire_drops(batch, wire_r)
    assert np.array_equal(a2[..., 0], a) and np.array_equal(w2[..., 0], w)
    for p in range(partitions):
        real = index[p] >= 0
        u_ref, w_ref = dense_network(int(real.sum()), cols, wire_r, inject=i[index[p][real]])
        scale = np.abs(u_ref).max() + np.abs(w_ref).max()
        np.testing.assert_allclose(a[p][real], -u_ref, rtol=0, atol=1e-12 * scale)   # drivers at 0 V
        np.testing.assert_allclose(w[p][real], w_ref, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("with_columns", [False, True])
def test_fixed_point_of_linear_cells_converges_to_the_dense_solve(with_columns):
    rng = np.random.default_rng(3)
    rows, partitions, cols, wire_r = 6, 2, 5, 50.0
    g = rng.uniform(1e-5, 1e-4, (rows, cols))
    v_row = rng.uniform(0.0, 0.3, rows)
    v_col = rng.uniform(0.0, 0.1, cols) if with_columns else np.zeros(cols)
    index = partition_layout(rows, partitions)
    gp = padded(g, index)
    vr = padded(np.repeat(v_row[:, None], cols, axis=1), index)[:, :, :1]     # (P, depth, 1)
    vc = v_col[None, None, :] if with_columns else None
    t0 = np.broadcast_to(vr - (vc if with_columns else 0.0), gp.shape)
    kappa = gp.max() * shared_resistance(wire_r, cols, index.shape[1])
    assert 0 < kappa < 0.2                          # a contraction, slow enough to need steps
    t, (i,) = fixed_point(lambda t: (gp * t,), (gp * t0,), t0, vr, vc, wire_r, 40)
    for p in range(partitions):
        real = index[p] >= 0
        u_ref, w_ref = dense_network(int(real.sum()), cols, wire_r, g=g[index[p][real]],
                                     v_row=v_row[index[p][real]], v_col=v_col)
        np.testing.assert_allclose(t[p][real], u_ref - w_ref, rtol=0, atol=1e-13)
    # and one step is not the solution: the iteration does something
    t1, _ = fixed_point(lambda t: (gp * t,), (gp * t0,), t0, vr, vc, wire_r, 1)
    assert np.abs(t1 - t).max() > 1e-7


def test_batched_sums_equal_one_by_one_to_the_last_bit():
    rng = np.random.default_rng(5)
    index = partition_layout(9, 2)
    i = rng.uniform(0, 1e-6, index.shape + (7, 11))        # a batch of 11
    a, w = wire_sums(i)
    both = wire_sums(i, split=False)[0]
    assert np.array_equal(both, a + w)
    for n in range(i.shape[3]):
        one_a, one_w = wire_sums(i[..., n:n + 1])
        assert np.array_equal(one_a[..., 0], a[..., n]) and np.array_equal(one_w[..., 0], w[..., n])
        bare_a, bare_w = wire_sums(np.ascontiguousarray(i[..., n]))    # no batch axis
        assert np.array_equal(bare_a, a[..., n]) and np.array_equal(bare_w, w[..., n])
    given = a.copy()
    assert np.array_equal(wire_sums(i, split=False, rows=given)[0], a + w)


def bits(a):
    """The bit patterns of float64s (np.array_equal takes -0.0 for 0.0)."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


@pytest.mark.parametrize("wire_r", [1.0, 2.5])
def test_one_column_of_the_drops_is_the_same_bits_as_the_whole(wire_r):
    """column_drops(i, col) == wire_drops(i)[..., col] bit for bit (signed zeros too): currents
    of mixed sign and magnitude, rows of +0.0 and of -0.0 only, a row of both."""
    rng = np.random.default_rng(9)
    i = rng.standard_normal((3, 5, 40)) * np.exp(4 * rng.standard_normal((3, 5, 40))) * 1e-6
    i[0, 1] = 0.0
    i[1, 2] = -0.0
    i[2, 3] = np.where(np.arange(40) % 2, -0.0, 0.0)
    i[2, 4, :3] = -0.0
    i[2, 4, 3:] = 0.0
    a, w = wire_drops(i, wire_r)
    assert np.signbit(a[1, 2]).all() and not np.signbit(a[0, 1]).any(), "the zeros the test needs"
    for col in range(40):
        ca, cw = column_drops(i, col, wire_r)
        assert np.array_equal(bits(ca), bits(a[:, :, col])), col
        assert np.array_equal(bits(cw), bits(w[:, :, col])), col


def test_layout_and_input_checks():
    assert partition_layout(5, 2).tolist() == [[0, 1, 2], [-1, 3, 4]]
    for bad in (0, 6):
        with pytest.raises(ValueError, match="partitions must be in 1..5"):
            partition_layout(5, bad)
    with pytest.raises(ValueError, match="v_levels"):
        check_levels([-0.1, 0.2])
    with pytest.raises(ValueError, match="current_tol"):
        check_current_tol(0.0)
    index = partition_layout(3, 1)
    assert level_codes([[1, 2, 0]], 3, 4, index)[0, :, 0, 0].tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match=r"codes must be in 0..3"):
        level_codes([[1, 4, 0]], 3, 4, index)
    with pytest.raises(ValueError, match=r"shaped \(n, 3\)"):
        level_codes([[1, 2]], 3, 4, index)
