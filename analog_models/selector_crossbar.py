"""Inference read of a 1S1R array (crossbar.cell = "1S1R"): the nodal equations solved per input.

The network is the one of `crossbar.py` and `nonlinear_crossbar.py` (per row partition: rows
driven at their left end through one wire segment, one segment between consecutive row nodes
and column nodes, each column ending in one segment into the TIA virtual ground; cell (i, j)
between row node (i, j) and column node (i, j)). In a read every row is driven and every column
held by its TIA, so each cell is its memristor G in series with the selector
(selector.series_current, solved per element to the last bit): the array is nonlinear even with
linear memristors, and every input vector needs its own solve. With device.read_model = "qmm"
the memristor is a QMM memdiode (selector_memdiode.QmmCells: memdiode, its Rs and the selector
solved per element by a bracketed Newton that freezes each element at its own convergence);
the solve below is the same, only the cell law differs (the cells' `current`, `padded` and
`slope_max`).

Method: the wire-drop fixed point (wire_drops.py). Given the cell currents every wire is a tree
fed from one end, so its node voltages are sequential cumulative sums of the currents (row drop
a = R cumsum(revcumsum(i)), column voltage w = R revcumsum(cumsum(i))), and
i = f(V_row - a(i) - w(i)) contracts by kappa = max slope * R * (C (C + 1) + D (D + 1)) / 2 (D the
rows of a partition, the slope of a cell at most its memristor's G, or for QMM cells its
diode's slope at the largest drive): ~1e-5 on nS tiles with 1-ohm wires. The count of iterations makes rows * kappa**n * (the first guess's error) below
`current_tol`, plus one. Where kappa > FIXED_POINT_KAPPA (uS cells, long wires) the constructor
refuses (the line relaxation of nonlinear_crossbar.py is written for the QMM law only).

Read noise (QMM cells, device.read_noise_sigma > 0; read_variation.py): `scale` (n, rows, cols)
multiplies every cell's I0 for that read, as in nonlinear_crossbar.py; the bounds (largest
current and slope) are taken at `scale_max` times I0 (the selector in series makes a cell's
current grow less than its I0), so the iteration count stays one per array, and the first guess
is the no-wire current of each read's own cells (the level table is for the unscaled ones).

Bit-identical whatever the batch size or order, by construction (as nonlinear_crossbar.py): the
batch is the last axis, every per-input operation is elementwise or a sequential accumulation
along a wire (wire_drops.wire_sums adds in order), the cell laws are elementwise (fixed counts
of halvings, or per-element Newton steps independent of the other elements), the iteration
count is fixed per array; the cell currents are put on an integer grid (a power of two,
~2**-52 of the largest possible column current) and summed along the column as whole
numbers, exact in any order. The first iteration starts from the no-wire currents at the DAC
levels, tabulated per cell and level once (the same law on the same numbers).
"""

from __future__ import annotations

import math

import numpy as np

from .selector import MemristorCells
from .selector_memdiode import QmmCells
from .wire_drops import (
    FIXED_POINT_KAPPA, check_current_tol, check_levels, current_grid, fixed_point, level_codes,
    partition_layout, shared_resistance,
)
from xbarflow.flow.core.config import CrossbarConfig

__all__ = ["SelectorCrossbar"]

_MAX_ITERATIONS = 400


class SelectorCrossbar:
    """Cells (rows, cols), each in series with the selector of `x`, -> column currents for
    batches of row-voltage level codes. `cells`: memristor conductances in S (an array, or
    selector.MemristorCells; 0: no cell) or QMM memdiodes (selector_memdiode.QmmCells);
    `v_levels[k]` is the row voltage of input code k, `current_tol` (A) the error allowed on
    every column current."""

    def __init__(self, cells: np.ndarray | MemristorCells | QmmCells, x: CrossbarConfig,
                 v_levels: np.ndarray, current_tol: float, scale_max: float = 1.0) -> None:
        if not isinstance(cells, (MemristorCells, QmmCells)):
            cells = MemristorCells(cells)
        if len(cells.shape) != 2 or 0 in cells.shape:
            raise ValueError(f"cells must be a non-empty 2-D array, got shape {cells.shape}")
        levels = check_levels(v_levels)
        self.x, (self.rows, self.cols) = x, cells.shape
        self.wire_r, self.v_levels = float(x.wire_r), levels
        self.current_tol = check_current_tol(current_tol)
        if not (math.isfinite(scale_max) and scale_max >= 1):
            raise ValueError(f"scale_max must be finite and >= 1, got {scale_max}")
        if scale_max > 1 and not isinstance(cells, QmmCells):
            raise ValueError("per-read I0 scale factors (read noise) need QMM cells")
        self.scale_max = float(scale_max)
        partitions = x.partitions
        index = partition_layout(self.rows, partitions)
        self.partitions, self.depth = partitions, index.shape[1]
        self._row_index = index
        real = index >= 0
        self._cells = cells.padded(np.where(real, index, 0), real)      # (P, D, C, 1)
        shape = self._cells.shape

        # bounds at the largest drive: a cell's current and slope are largest there
        v_max = float(levels.max())
        i_max = self._cells.current(np.full(shape, v_max), x)[..., 0] * self.scale_max
        d_max = cells.slope_max(v_max) * self.scale_max   # the selector only lowers the slope
        column_peak = float(i_max.sum(axis=(0, 1)).max())
        self.grid = current_grid(column_peak)
        r, c, dp = self.wire_r, self.cols, self.depth
        shared = shared_resistance(r, c, dp)
        self.kappa = d_max * shared
        if self.kappa > FIXED_POINT_KAPPA:
            raise ValueError(f"1S1R read: the fixed point contracts too slowly (kappa = {self.kappa:.3g} "
                             f"> {FIXED_POINT_KAPPA}): wire resistance too large against the cells")
        delta_max = shared * float(i_max.max())       # every cell's drop is at most this
        first = self.rows * d_max * delta_max
        if r == 0:
            self.iterations = 0
        elif first <= self.current_tol:
            self.iterations = 1
        else:
            self.iterations = math.ceil(math.log(self.current_tol / first) / math.log(self.kappa)) + 1
        if self.iterations > _MAX_ITERATIONS:
            raise ValueError(f"1S1R read would need {self.iterations} iterations")
        # the no-wire currents of every cell at every DAC level (the first guess), (P, D, C, levels)
        self._start = self._cells.current(np.broadcast_to(levels, shape[:3] + levels.shape), x)
        self._cell_offset = (np.arange(partitions * dp * c).reshape(partitions, dp, c, 1) * levels.size)

    def _scaled_cells(self, scale: np.ndarray, n: int) -> QmmCells:
        """The padded cells with I0 times `scale` (n, rows, cols) per read: (P, D, C, n)."""
        sc = np.asarray(scale, dtype=np.float64)
        if sc.shape != (n, self.rows, self.cols):
            raise ValueError(f"scale must be shaped ({n}, {self.rows}, {self.cols}), got {sc.shape}")
        if sc.size and not (sc.min() >= 0 and sc.max() <= self.scale_max):
            raise ValueError(f"I0 scale factors must be in [0, {self.scale_max}]")
        real = self._row_index >= 0
        padded = np.where(real[:, :, None, None],
                          sc.transpose(1, 2, 0)[np.where(real, self._row_index, 0)], 0.0)
        c = self._cells
        shape = padded.shape
        return QmmCells(c.i0 * padded, np.broadcast_to(c.alpha, shape), np.broadcast_to(c.rs, shape), c.beta)

    def solve(self, codes: np.ndarray, scale: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Cell terminal voltages "t" and currents "i", each (P, depth, cols, n), of codes (n, rows).
        `scale` (n, rows, cols) multiplies every QMM cell's I0 for that read (read noise)."""
        k = level_codes(codes, self.rows, self.v_levels.size, self._row_index)
        v = self.v_levels[k]                                        # (P, D, 1, n)
        if scale is None:
            cells = self._cells
            i = self._start.take(self._cell_offset + k)             # (P, D, C, n)
        else:
            cells = self._scaled_cells(scale, k.shape[3])
            i = cells.current(np.broadcast_to(v, cells.shape), self.x)   # each read's own cells
        t, (i,) = fixed_point(lambda t: (cells.current(t, self.x),),
                              (i,), np.broadcast_to(v, i.shape), v, None, self.wire_r,
                              self.iterations)
        return {"t": t, "i": i}

    def column_currents_grid(self, codes: np.ndarray, scale: np.ndarray | None = None,
                             chunk: int = 32) -> np.ndarray:
        """Column currents (n, cols) as int64 multiples of `grid` A (exact column sums), solved
        `chunk` inputs at a time (memory only: every input's result is the same in any chunk);
        `scale` as for `solve`."""
        codes = np.asarray(codes)
        out = np.empty((codes.shape[0], self.cols), dtype=np.int64)
        for s in range(0, codes.shape[0], chunk):
            part = None if scale is None else np.asarray(scale)[s:s + chunk]
            cells = self.solve(codes[s:s + chunk], part)["i"]
            cells = np.rint(cells * (1.0 / self.grid))              # a power of two: exact
            out[s:s + chunk] = cells.sum(axis=(0, 1)).T             # whole numbers: exact sums
        return out

    def column_currents(self, codes: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
        """Column currents (n, cols) in A into the virtual ground."""
        return self.column_currents_grid(codes, scale) * self.grid

    def row_currents(self, codes: np.ndarray, chunk: int = 32) -> np.ndarray:
        """Current each row's driver delivers, (n, rows) in A (the sum of its cells' currents)."""
        codes = np.asarray(codes)
        out = np.empty((codes.shape[0], self.rows))
        real = self._row_index >= 0
        for s in range(0, codes.shape[0], chunk):
            per_row = self.solve(codes[s:s + chunk])["i"].sum(axis=2)     # (P, D, n)
            out[s:s + chunk][:, self._row_index[real]] = per_row[real].T
        return out
