"""Wire drops of a partitioned crossbar: the line voltages that cell currents cause, and the
fixed point that solves the cells against them.

The network (crossbar.py): per row partition, each row driven at its left end through one wire
segment `wire_r`, one segment between consecutive row nodes and column nodes, each column ending
in one segment into its driver below the last row; cell (i, j) between row node (i, j) and column
node (i, j). Arrays are in the padded layout (partition, row in partition, column, ...any batch
axes): a partition with fewer rows has empty rows at its top (`partition_layout`), cut off the
column wire, with no cells.

Given the cell currents i, every wire is a tree fed from its driver, so its node voltages are
sequential cumulative sums: the row segment into node j carries the currents of nodes j..
(row drop a = R cumsum(revcumsum(i)) along the row), the column segment below node k those of
nodes ..k (column voltage w = R revcumsum(cumsum(i)) along the column). `fixed_point` iterates
i = f((V_row - a(i)) - (V_col + w(i))); it contracts by kappa = max cell slope *
`shared_resistance` (the largest wire resistance a cell shares, summed over the cells sharing it).

Every sum is a sequential accumulation along its wire over whole slices (out[k] = out[k - 1] +
x[k]), so a cell's result never depends on the batch size or order: the read solvers'
batched == one-by-one guarantee rests on it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["FIXED_POINT_KAPPA", "check_current_tol", "check_levels", "column_drops", "current_grid",
           "fixed_point", "level_codes", "partition_layout", "shared_resistance", "wire_drops",
           "wire_sums"]

FIXED_POINT_KAPPA = 0.05   # largest contraction for which the fixed point is used
_EXACT_BITS = 52           # column sums of grid currents stay below 2**52 (exact in int64 and float64)


def partition_layout(rows: int, partitions: int) -> np.ndarray:
    """(partitions, depth) global row of each padded row, -1 for the padding above a partition's
    top row; partitions split the rows like np.array_split."""
    if not 1 <= partitions <= rows:
        raise ValueError(f"partitions must be in 1..{rows} (the row count), got {partitions}")
    sizes = [len(p) for p in np.array_split(np.arange(rows), partitions)]
    depth = max(sizes)
    index = np.full((partitions, depth), -1, dtype=np.int64)
    start = 0
    for p, n in enumerate(sizes):
        index[p, depth - n:] = np.arange(start, start + n)
        start += n
    return index


def check_levels(v_levels) -> np.ndarray:
    """The DAC levels (V) of a read solve, as float64."""
    levels = np.asarray(v_levels, dtype=np.float64)
    if levels.ndim != 1 or levels.size == 0 or levels.min() < 0:
        raise ValueError("v_levels must be a non-empty 1-D array of voltages >= 0")
    return levels


def check_current_tol(current_tol: float) -> float:
    if not current_tol > 0:
        raise ValueError(f"current_tol must be > 0 A, got {current_tol}")
    return float(current_tol)


def level_codes(codes, rows: int, n_levels: int, row_index: np.ndarray) -> np.ndarray:
    """Input level codes (n, rows) in the padded layout (P, depth, 1, n); padded rows: any level."""
    c = np.asarray(codes)
    if c.ndim != 2 or c.shape[1] != rows:
        raise ValueError(f"codes must be shaped (n, {rows}), got {c.shape}")
    if c.size and (c.min() < 0 or c.max() >= n_levels):
        raise ValueError(f"codes must be in 0..{n_levels - 1}")
    return c.T[np.where(row_index >= 0, row_index, 0)][:, :, None, :]


def current_grid(column_peak: float) -> float:
    """The power of two (A) on which cell currents are put so that column sums of up to
    `column_peak` are whole numbers below 2**52 (exact in any order)."""
    return math.ldexp(1.0, math.frexp(column_peak / 2 ** _EXACT_BITS)[1]) if column_peak > 0 else 1.0


def shared_resistance(wire_r: float, cols: int, depth: int) -> float:
    """Largest wire resistance shared by a cell, summed over the cells that share it (ohm):
    kappa = max slope * this."""
    return wire_r * (cols * (cols + 1) + depth * (depth + 1)) / 2


def wire_sums(i: np.ndarray, split: bool = True, rows: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """(a, w) of `wire_drops` over R for currents i (P, depth, cols, ...), or (a + w, None)
    unless `split` (the same bits as a + w); `rows`, when given, is a already (it may be
    overwritten). A batch axis of one or none: np.add.accumulate along each wire; a batch: the
    same sequential sums as loops over whole slices (several times faster there; same bits)."""
    if i.ndim == 3 or (i.ndim == 4 and i.shape[3] == 1):
        return _wire_sums_one(i, split, rows)
    m, n = i.shape[1], i.shape[2]
    seg = np.empty_like(i)
    if rows is None:
        at = [(slice(None), slice(None), k) for k in range(n)]
        a = np.empty_like(i)
        acc = i[at[n - 1]].copy()                   # row segment k carries nodes k..
        seg[at[n - 1]] = acc
        for k in range(n - 2, -1, -1):
            acc += i[at[k]]
            seg[at[k]] = acc
        acc = seg[at[0]].copy()
        a[at[0]] = acc
        for k in range(1, n):
            acc += seg[at[k]]
            a[at[k]] = acc
    else:
        a = rows
    acc = i[:, 0].copy()                            # column segment below k carries nodes ..k
    seg[:, 0] = acc
    for k in range(1, m):
        acc += i[:, k]
        seg[:, k] = acc
    w = np.empty_like(i) if split else None
    acc = seg[:, m - 1].copy()
    for k in range(m - 1, -1, -1):
        if k < m - 1:
            acc += seg[:, k]
        if split:
            w[:, k] = acc
        else:
            a[:, k] += acc
    return a, w


def _wire_sums_one(i: np.ndarray, split: bool, rows: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """`wire_sums` without a batch (or of a batch of one): the row sums by np.add.accumulate
    (sequential along its axis; reversed views give the sums from the far end), the column sums
    by the loops of `wire_sums`."""
    one = i.ndim == 4
    x = i[..., 0] if one else i                         # (P, depth, cols)
    add = np.add.accumulate
    if rows is None:
        seg = add(x[:, :, ::-1], axis=2)                # row segment into node j, reversed
        a = add(seg[:, :, ::-1], axis=2)
    else:
        a = rows[..., 0] if one else rows
    # the column sums as loops over whole rows of the partitions (the same sequential sums as
    # np.add.accumulate along axis 1, several times faster: every column at once)
    m = x.shape[1]
    seg = np.empty_like(x)
    acc = x[:, 0].copy()                                # column segment below node k: nodes ..k
    seg[:, 0] = acc
    for k in range(1, m):
        acc += x[:, k]
        seg[:, k] = acc
    w = np.empty_like(x)
    acc = seg[:, m - 1].copy()
    w[:, m - 1] = acc
    for k in range(m - 2, -1, -1):
        acc += seg[:, k]
        w[:, k] = acc
    if not split:
        a, w = a + w, None
    if one:
        return a[..., None], (None if w is None else w[..., None])
    return a, w


def wire_drops(i: np.ndarray, wire_r: float) -> tuple[np.ndarray, np.ndarray]:
    """Row drops a and column voltages w (V) that cell currents i (A, padded layout) cause
    (module docstring); fresh arrays."""
    a, w = wire_sums(i)
    if wire_r != 1.0:                               # r * x, skipped where exact
        a *= wire_r
        w *= wire_r
    return a, w


def column_drops(i: np.ndarray, col: int, wire_r: float) -> tuple[np.ndarray, np.ndarray]:
    """`wire_drops(i, wire_r)` at column `col` only: (a, w), each (P, depth), the same bits.

    The same sequential sums on fewer elements: the column sums of column `col` alone (every
    column's sums are its own), the row sums only along the rows that carry a current, and
    only up to node `col` (a prefix of a sequential sum does not depend on what follows). A row
    of zero currents has a zero drop whose sign is that of a sum of zeros in any order: -0.0
    exactly when every current of the row is -0.0."""
    p, m, n = i.shape
    rows = i.reshape(p * m, n)
    live = rows.any(axis=1)
    a = np.where(np.signbit(rows).all(axis=1), -0.0, 0.0)
    if live.any():
        x = rows[live]
        seg = np.add.accumulate(x[:, ::-1], axis=1)      # row segment into node j, reversed
        a[live] = np.add.accumulate(seg[:, ::-1][:, :col + 1], axis=1)[:, col]
    a = a.reshape(p, m)
    x = i[:, :, col]                                     # the loops of `_wire_sums_one`
    seg = np.empty_like(x)
    acc = x[:, 0].copy()
    seg[:, 0] = acc
    for k in range(1, m):
        acc += x[:, k]
        seg[:, k] = acc
    w = np.empty_like(x)
    acc = seg[:, m - 1].copy()
    w[:, m - 1] = acc
    for k in range(m - 2, -1, -1):
        acc += seg[:, k]
        w[:, k] = acc
    if wire_r != 1.0:                                    # as `wire_drops`
        a *= wire_r
        w *= wire_r
    return a, w


def fixed_point(law: Callable[[np.ndarray], tuple], start: tuple, t: np.ndarray,
                v_row: np.ndarray, v_col: np.ndarray | None, wire_r: float, iterations: int
                ) -> tuple[np.ndarray, tuple]:
    """`iterations` steps of cell terminal voltage t = (v_row - a(i)) - (v_col + w(i)) (v_col
    None: t = (v_row - a) - w), cells by `law(t)` -> a tuple whose [0] are the cell currents.
    `start` is that tuple at the first guess t. -> (t, law(t)) of the last step."""
    out = start
    for _ in range(iterations):
        a, w = wire_drops(out[0], wire_r)
        t = np.subtract(v_row, a, out=a)
        if v_col is not None:
            w += v_col
        t -= w
        out = law(t)
    return t, out
