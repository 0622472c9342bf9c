"""Crossbar effective matrix vs an independent dense nodal solve, and IR-drop properties."""

import time

import numpy as np
import pytest

from xbarflow.analog_models.crossbar import distortion, effective_matrix, ideal_matrix


def _dense_reference(g: np.ndarray, wire_r: float, partitions: int) -> np.ndarray:
    """Same network in physical units: nodal matrix built node by node, one solve per input,
    column current read from the last wire segment into the virtual ground."""
    gw = 1.0 / wire_r
    blocks = []
    for part in np.array_split(g, partitions, axis=0):
        r, c = part.shape
        n = 2 * r * c

        def row_node(i, j):
            return i * c + j

        def col_node(i, j):
            return r * c + i * c + j

        y = np.zeros((n, n))

        def connect(a, b, cond):
            y[a, a] += cond
            y[b, b] += cond
            y[a, b] -= cond
            y[b, a] -= cond

        for i in range(r):
            y[row_node(i, 0), row_node(i, 0)] += gw          # segment from the DAC source
            for j in range(c - 1):
                connect(row_node(i, j), row_node(i, j + 1), gw)
        for j in range(c):
            for i in range(r - 1):
                connect(col_node(i, j), col_node(i + 1, j), gw)
            y[col_node(r - 1, j), col_node(r - 1, j)] += gw  # segment into the TIA (0 V)
        for i in range(r):
            for j in range(c):
                connect(row_node(i, j), col_node(i, j), part[i, j])
        m = np.empty((r, c))
        for i in range(r):
            rhs = np.zeros(n)
            rhs[row_node(i, 0)] = gw * 1.0                   # 1 V on row i, 0 V elsewhere
            v = np.linalg.solve(y, rhs)
            m[i] = gw * v[[col_node(r - 1, j) for j in range(c)]]
        blocks.append(m)
    return np.vstack(blocks)


@pytest.mark.parametrize("shape, partitions", [
    ((3, 2), 1), ((3, 2), 2), ((5, 4), 1), ((5, 4), 2), ((1, 1), 1), ((4, 1), 2), ((1, 3), 1),
])
@pytest.mark.parametrize("wire_r", [1.0, 30.0, 1e3])
def test_matches_dense_reference(shape, partitions, wire_r):
    g = np.random.default_rng(shape[0] * 10 + shape[1]).uniform(1e-4, 1e-3, shape)
    m = effective_matrix(g, wire_r, partitions)
    np.testing.assert_allclose(m, _dense_reference(g, wire_r, partitions), rtol=1e-9)


def test_single_row_partitions_and_zero_cells_match_reference():
    rng = np.random.default_rng(7)
    g = rng.uniform(0, 1e-3, (5, 4))
    g[1, 2] = g[3, 0] = 0.0
    np.testing.assert_allclose(effective_matrix(g, 1e3, 5), _dense_reference(g, 1e3, 5), rtol=1e-9)


def test_large_wire_resistance_effect_is_large():
    g = np.full((5, 4), 1e-3)
    m = effective_matrix(g, 1e3, 1)
    assert distortion(m, g).max_rel > 0.5


def test_single_cell_is_a_series_circuit():
    r, g = 50.0, 2e-3
    m = effective_matrix(np.array([[g]]), r, 1)
    assert m[0, 0] == pytest.approx(1.0 / (2 * r + 1.0 / g), rel=1e-12)


def test_zero_wire_resistance_is_exactly_ideal():
    g = np.random.default_rng(1).uniform(1e-9, 1e-7, (7, 6))
    m = effective_matrix(g, 0.0, 3)
    assert m is not g and np.array_equal(m, g)
    assert np.array_equal(ideal_matrix(g), g)


def test_tiny_wire_resistance_tends_to_ideal():
    g = np.random.default_rng(2).uniform(1e-9, 1e-7, (16, 6))
    np.testing.assert_allclose(effective_matrix(g, 1e-9, 2), g, rtol=1e-9)


def test_currents_fall_monotonically_with_wire_resistance():
    rng = np.random.default_rng(3)
    g = rng.uniform(1e-4, 1e-3, (6, 3))
    v = rng.uniform(0.1, 0.5, 6)
    currents = np.array([v @ effective_matrix(g, r, 2) for r in (0.0, 0.1, 1.0, 10.0, 100.0, 1e3)])
    assert np.all(currents > 0)
    assert np.all(np.diff(currents, axis=0) < 0)


def test_more_partitions_less_distortion():
    g = np.random.default_rng(4).uniform(1e-6, 1e-4, (64, 8))
    d = [distortion(effective_matrix(g, 1.0, p), g).max_rel for p in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(d, d[1:])), d


def test_distortion_summary():
    g = np.array([[1.0, 2.0], [1.0, 2.0]])
    d = distortion(g * np.array([0.9, 0.8]), g)
    assert d.max_rel == pytest.approx(0.2)
    assert d.rms_rel == pytest.approx(np.sqrt((0.01 + 0.04) / 2))
    assert distortion(g, g).max_rel == 0.0


def test_distortion_rejects_zero_column_and_shape_mismatch():
    with pytest.raises(ValueError, match="zero ideal current"):
        distortion(np.zeros((2, 2)), np.array([[1.0, 0.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="same shape"):
        distortion(np.ones((2, 3)), np.ones((2, 2)))


@pytest.mark.parametrize("g, wire_r, partitions, match", [
    (np.ones(3), 1.0, 1, "2-D"),
    (-np.ones((2, 2)), 1.0, 1, ">= 0"),
    (np.full((2, 2), np.nan), 1.0, 1, "finite"),
    (np.ones((2, 2)), -1.0, 1, "wire_r"),
    (np.ones((2, 2)), np.inf, 1, "wire_r"),
    (np.ones((2, 2)), 1.0, 0, "partitions"),
    (np.ones((2, 2)), 1.0, 3, "partitions"),
])
def test_invalid_arguments(g, wire_r, partitions, match):
    with pytest.raises(ValueError, match=match):
        effective_matrix(g, wire_r, partitions)


def test_full_size_tile_is_fast():
    g = np.random.default_rng(5).uniform(1e-9, 1e-7, (196, 20))
    t0 = time.perf_counter()
    m = effective_matrix(g, 1.0, 8)
    assert time.perf_counter() - t0 < 0.5
    assert m.shape == (196, 20) and np.all(m < g)
