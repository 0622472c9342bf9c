"""Crossbar with wire resistance, reduced to an effective matrix M with I_col = V_in @ M.

For a fixed conductance state the crossbar is a linear resistive network, so IR drop along the
row and column wires is captured exactly by one matrix: solve the network once, then every
inference is a matmul.

Network of one row partition (r rows, c columns, every wire segment `wire_r` ohm):
  * row i is driven at its left end by its DAC voltage through one segment into row node (i, 0),
    then one segment between consecutive row nodes (i, j) - (i, j+1);
  * column j runs from the top column node (0, j) down, one segment between consecutive column
    nodes (i, j) - (i+1, j), and one final segment from (r-1, j) into the TIA virtual ground (0 V);
  * cell (i, j) is a conductance G[i, j] between row node (i, j) and column node (i, j).
Partitions split the rows like np.array_split and share only the virtual ground, so their column
currents add and M stacks the partition matrices vertically.

Solution method (adjoint, with the wire conductance scaled out). Dividing the nodal equations by
the wire conductance gives A x = B V with A = L_wires + wire_r * L_cells (L_wires has unit
entries: well conditioned whatever wire_r is) and B putting V_i on row node (i, 0). The column
current is I_j = c_j . x with c_j = G[:, j] on the row nodes and -G[:, j] on the column nodes of
column j (the sum of its cell currents). A is symmetric, so M[i, j] = (A^-1 c_j)[row node (i, 0)]:
one sparse LU per partition and c right-hand sides. Computing I_j from cell currents rather than
from the tiny voltage across the last wire segment keeps full relative precision even for
wire_r * G ~ 1e-7, and M -> G smoothly as wire_r -> 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

__all__ = ["Distortion", "distortion", "effective_matrix", "ideal_matrix"]


def _check_conductance(g: np.ndarray) -> np.ndarray:
    arr = np.asarray(g, dtype=np.float64)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"conductance matrix must be 2-D and non-empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0:
        raise ValueError("conductances must be finite and >= 0 S")
    return arr


def _partition_matrix(g: np.ndarray, wire_r: float) -> np.ndarray:
    """Effective matrix of one partition (see the module docstring for the network)."""
    r, c = g.shape
    n = r * c
    u = np.arange(n).reshape(r, c)   # row node (i, j)
    w = u + n                        # column node (i, j)
    # Edges between two unknown nodes: (a, b, conductance / wire conductance).
    a = np.concatenate([u[:, :-1].ravel(), w[:-1, :].ravel(), u.ravel()])
    b = np.concatenate([u[:, 1:].ravel(), w[1:, :].ravel(), w.ravel()])
    y = np.concatenate([np.ones(r * (c - 1) + (r - 1) * c), wire_r * g.ravel()])
    # Edges to a fixed potential (DAC source, virtual ground) only add to the diagonal.
    diag = np.bincount(a, y, 2 * n) + np.bincount(b, y, 2 * n)
    diag[u[:, 0]] += 1.0
    diag[w[-1, :]] += 1.0
    rows = np.concatenate([a, b, np.arange(2 * n)])
    cols = np.concatenate([b, a, np.arange(2 * n)])
    vals = np.concatenate([-y, -y, diag])
    lap = sp.csc_matrix((vals, (rows, cols)), shape=(2 * n, 2 * n))
    rhs = np.zeros((2 * n, c))
    col_of = np.broadcast_to(np.arange(c), (r, c)).ravel()
    rhs[u.ravel(), col_of] = g.ravel()
    rhs[w.ravel(), col_of] = -g.ravel()
    return splu(lap, permc_spec="MMD_AT_PLUS_A").solve(rhs)[u[:, 0]]


def effective_matrix(g: np.ndarray, wire_r: float, partitions: int = 1) -> np.ndarray:
    """M (rows, cols) with column currents I = V_in @ M into the TIA virtual ground.

    `g` is the (rows, cols) conductance matrix in S, `wire_r` the resistance of one wire segment
    in ohm, `partitions` the number of row partitions. wire_r == 0 returns `g` exactly (a copy).
    """
    arr = _check_conductance(g)
    if not (np.isfinite(wire_r) and wire_r >= 0):
        raise ValueError(f"wire_r must be finite and >= 0 ohm, got {wire_r}")
    if not 1 <= partitions <= arr.shape[0]:
        raise ValueError(f"partitions must be in 1..{arr.shape[0]} (the row count), got {partitions}")
    if wire_r == 0:
        return ideal_matrix(arr)
    return np.vstack([_partition_matrix(part, float(wire_r))
                      for part in np.array_split(arr, partitions, axis=0)])


def ideal_matrix(g: np.ndarray) -> np.ndarray:
    """Effective matrix of an ideal crossbar (no wire resistance): a float64 copy of G."""
    return _check_conductance(g).copy()


@dataclass(frozen=True)
class Distortion:
    """Relative deviation of the column currents from the ideal crossbar at full-scale input."""
    max_rel: float   # largest |I - I_ideal| / |I_ideal| over the columns
    rms_rel: float   # root mean square of the same over the columns


def distortion(m: np.ndarray, g: np.ndarray) -> Distortion:
    """IR-drop summary: column currents of M vs G with every row at the same voltage."""
    i_eff = np.asarray(m, dtype=np.float64).sum(axis=0)
    i_ideal = _check_conductance(g).sum(axis=0)
    if i_eff.shape != i_ideal.shape:
        raise ValueError(f"M and G must have the same shape, got {np.shape(m)} and {np.shape(g)}")
    if np.any(i_ideal == 0):
        raise ValueError("a column has zero ideal current (all cells 0 S); relative distortion is undefined")
    rel = np.abs(i_eff - i_ideal) / i_ideal
    return Distortion(max_rel=float(rel.max()), rms_rel=float(np.sqrt(np.mean(rel ** 2))))
