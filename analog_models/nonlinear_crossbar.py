"""Crossbar of nonlinear (QMM) cells with wire resistance: the nodal equations solved per input.

The network is the one of `crossbar.py` (read its docstring): per row partition, row i is driven
at its left end through one wire segment, consecutive row nodes and column nodes are joined by one
segment each, every column ends in one segment into the TIA virtual ground, and cell (i, j) joins
row node (i, j) to column node (i, j). Partitions split the rows like np.array_split and share the
virtual ground. Here a cell is the QMM branch (memdiode.py): I = I0 s(x), x + Rs I = t, with t the
cell's terminal voltage, so the network is nonlinear and every input vector needs its own solve.

Method: nonlinear block Gauss-Seidel by lines. With the wire conductance scaled out, the unknowns
are each row node's drop a = V_row - u below its DAC voltage and each column node's voltage w
(both small, so differences of them keep full precision). A sweep solves every row wire for a
with the column voltages fixed, then every column wire for w with the row voltages fixed; each
wire is a chain, a tridiagonal system with the cells linearised at the present voltages, solved
by the Thomas algorithm written as elementwise operations along the wire. The diode voltage x of
each cell is updated by one fixed-point step x = t - Rs I per cell evaluation.

Fixed iteration count, from a contraction bound per array. All node voltages lie in
[0, v_max] (monotone cells, sources in [0, v_max], ground at 0), so every cell's small-signal
slope is at most d_max = its diode slope at |x| = v_max. With those slopes a row-wire solve damps
a column-voltage error by rho_row = max (T_row^-1 D 1) < 1, a column-wire solve damps a row-drop
error by rho_col, and the fixed-point step for x contracts by q = max Rs d_max. A sweep thus
contracts the voltage error by rho = max(rho_row rho_col, q), from at most v_max at the start.
A column current moves by at most 2 (max column sum of d_max) times the voltage error, so
`sweeps` = ceil(log(tol_v / v_max) / log(rho)) + 2 makes every column current's error below
`current_tol` (the caller states it in ADC LSBs: analog_models/array.py). `residual` gives the
sum of |KCL residual| over all nodes and cells of an image, a bound on any column current's
error (a current injected at a node of a passive network reaches each TIA by a fraction <= 1).

Bit-identical whatever the batch size or order, by construction: the batch is the last axis and
every per-image operation is elementwise (+, -, *, /, rint, where, and `expm1_deterministic`,
built from correctly rounded operations only), with fixed loops along the wires and a fixed sweep
count; no BLAS call, no reduction over floats, no convergence test that looks at the batch. The
cell currents are then put on an integer grid (a power of two, ~2**-52 of the largest possible
column current) and summed along the column as int64, exact in any order.
"""

from __future__ import annotations

import math

import numpy as np

from .memdiode import expm1_deterministic

__all__ = ["NonlinearCrossbar"]

_EXACT_BITS = 52      # column sums of grid currents stay below 2**52 (exact in int64 and float64)
_MAX_SWEEPS = 400


class NonlinearCrossbar:
    """Nonlinear cells (rows, cols) -> column currents for batches of row-voltage level codes.

    `i0`, `alpha`, `rs` are per-cell QMM parameters (memdiode.cell_params), `beta` the shared
    exponent split; `v_levels[k]` is the row voltage of input code k (the DAC levels);
    `current_tol` (A) the error allowed on every column current.
    """

    def __init__(self, i0: np.ndarray, alpha: np.ndarray, rs: np.ndarray, beta: float,
                 wire_r: float, partitions: int, v_levels: np.ndarray, current_tol: float) -> None:
        i0, alpha, rs = (np.asarray(a, dtype=np.float64) for a in (i0, alpha, rs))
        if i0.ndim != 2 or 0 in i0.shape or alpha.shape != i0.shape or rs.shape != i0.shape:
            raise ValueError(f"cell parameters must be equal non-empty 2-D arrays, got {i0.shape}, "
                             f"{alpha.shape}, {rs.shape}")
        if not (np.all(i0 >= 0) and np.all(alpha > 0) and np.all(rs >= 0)):
            raise ValueError("need I0 >= 0, alpha > 0 and Rs >= 0 for every cell")
        rows, cols = i0.shape
        if not 1 <= partitions <= rows:
            raise ValueError(f"partitions must be in 1..{rows} (the row count), got {partitions}")
        if not (math.isfinite(wire_r) and wire_r >= 0):
            raise ValueError(f"wire_r must be finite and >= 0 ohm, got {wire_r}")
        levels = np.asarray(v_levels, dtype=np.float64)
        if levels.ndim != 1 or levels.size == 0 or levels.min() < 0:
            raise ValueError("v_levels must be a non-empty 1-D array of voltages >= 0")
        if not current_tol > 0:
            raise ValueError(f"current_tol must be > 0 A, got {current_tol}")
        self.rows, self.cols, self.beta, self.wire_r = rows, cols, float(beta), float(wire_r)
        self.v_levels = levels
        self.current_tol = float(current_tol)
        v_max = float(levels.max())

        # Padded layout (partition, row in partition, column, batch): a partition with fewer rows
        # gets empty rows at its top, cut off the column wire (link 0), with no cells.
        sizes = [len(part) for part in np.array_split(np.arange(rows), partitions)]
        self.partitions, self.depth = partitions, max(sizes)
        index = np.full((partitions, self.depth), -1, dtype=np.int64)
        start = 0
        for p, n in enumerate(sizes):
            index[p, self.depth - n:] = np.arange(start, start + n)
            start += n
        self._row_index = index
        real = index >= 0
        take = np.where(real, index, 0)

        def padded(a: np.ndarray, fill: float) -> np.ndarray:
            return np.where(real[:, :, None], a[take], fill)[..., None]   # (P, depth, cols, 1)

        self._i0, self._alpha, self._rs = padded(i0, 0.0), padded(alpha, 1.0), padded(rs, 0.0)
        self._has_rs = bool(np.any(rs > 0))
        # link k joins column node k to k + 1 (0 above a partition's first real row)
        between = (real[:, 1:] & real[:, :-1]).astype(np.float64)
        self._col_links = np.concatenate([between, np.ones((partitions, 1))], axis=1)
        up = np.concatenate([np.zeros((partitions, 1)), between], axis=1)
        self._col_base = np.where(real, up + 1.0, 1.0)        # links of each column node
        self._row_base = np.full(cols, 2.0)
        self._row_base[-1] = 1.0                              # the far end of a row wire

        # Bounds at |x| = v_max (the slope and current of a cell are largest there).
        d_max = np.maximum(self._diode(np.full_like(self._i0, v_max))[1],
                           self._diode(np.full_like(self._i0, -v_max))[1])[..., 0]
        i_max = np.maximum(np.abs(self._diode(np.full_like(self._i0, v_max))[0]),
                           np.abs(self._diode(np.full_like(self._i0, -v_max))[0]))[..., 0]
        column_peak = float(i_max.sum(axis=(0, 1)).max())
        self.grid = math.ldexp(1.0, math.frexp(column_peak / 2 ** _EXACT_BITS)[1]) \
            if column_peak > 0 else 1.0
        self.q_rs = float((self._rs[..., 0] * d_max).max())
        if self.q_rs >= 0.5:
            raise ValueError(f"series resistance too large for the array solver: Rs * dI/dV up to "
                             f"{self.q_rs:.3g} (needs < 0.5)")
        if self.wire_r == 0:
            self.rho_row = self.rho_col = 0.0
        else:
            rd = self.wire_r * d_max
            self.rho_row = float(self._solve_rows(self._row_base[:, None] + rd[..., None], rd[..., None]).max())
            self.rho_col = float(self._solve_cols(self._col_base[..., None, None] + rd[..., None],
                                                  rd[..., None]).max())
        self.rho = max(self.rho_row * self.rho_col, self.q_rs)
        slope_sum = float(d_max.sum(axis=(0, 1)).max())
        tol_v = self.current_tol / (2.0 * slope_sum) if slope_sum > 0 else v_max
        if self.rho == 0 or v_max == 0 or tol_v >= v_max:
            self.sweeps = 0 if (self.wire_r == 0 and not self._has_rs) else 1
        elif self.rho >= 0.95:
            raise ValueError(f"the line relaxation contracts too slowly (rho = {self.rho:.3g}): wire "
                             "resistance too large against the cells")
        else:
            self.sweeps = math.ceil(math.log(tol_v / v_max) / math.log(self.rho)) + 2
        if self.sweeps > _MAX_SWEEPS:
            raise ValueError(f"the array solve would need {self.sweeps} sweeps (rho = {self.rho:.3g})")

    # -- cells -----------------------------------------------------------------------------
    def _diode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(I0 s(x), I0 s'(x)) of the padded cells at diode voltages x."""
        ax = self._alpha * x
        e1 = expm1_deterministic(self.beta * ax)
        e2 = expm1_deterministic(-(1.0 - self.beta) * ax)
        return (self._i0 * (e1 - e2),
                self._i0 * self._alpha * (self.beta * (e1 + 1.0) + (1.0 - self.beta) * (e2 + 1.0)))

    def _cells(self, t: np.ndarray, h: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, current, branch slope) at terminal voltages t: the diode voltage takes one
        fixed-point step x = t - Rs h from the previous currents h (x = t at the start)."""
        x = t - self._rs * h if (self._has_rs and h is not None) else t
        i, d = self._diode(x)
        return x, i, (d / (1.0 + self._rs * d) if self._has_rs else d)

    # -- wires: Thomas algorithm along a chain, elementwise over everything else -------------
    def _solve_rows(self, diag: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Row wires: -a[j-1] + diag[j] a[j] - a[j+1] = rhs[j], a[-1] = 0 (the source); axis 2."""
        n = diag.shape[2]
        gam, dl = [None] * n, [None] * n
        g_prev = d_prev = 0.0
        for j in range(n):
            denom = diag[:, :, j] - g_prev
            gam[j] = 1.0 / denom
            dl[j] = (rhs[:, :, j] + d_prev) * gam[j]
            g_prev, d_prev = gam[j], dl[j]
        out = np.empty(np.broadcast_shapes(diag.shape, rhs.shape))
        out[:, :, n - 1] = dl[n - 1]
        for j in range(n - 2, -1, -1):
            out[:, :, j] = dl[j] + gam[j] * out[:, :, j + 1]
        return out

    def _solve_cols(self, diag: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Column wires: -l[i-1] w[i-1] + diag[i] w[i] - l[i] w[i+1] = rhs[i], axis 1, with the
        links l of `_col_links` (the last one is the segment into the virtual ground)."""
        n = diag.shape[1]
        link = self._col_links[:, :, None, None]
        gam, dl = [None] * n, [None] * n
        g_prev = d_prev = 0.0
        for i in range(n):
            up = link[:, i - 1] if i else 0.0
            inv = 1.0 / (diag[:, i] - up * g_prev)
            gam[i] = link[:, i] * inv
            dl[i] = (rhs[:, i] + up * d_prev) * inv
            g_prev, d_prev = gam[i], dl[i]
        out = np.empty(np.broadcast_shapes(diag.shape, rhs.shape))
        out[:, n - 1] = dl[n - 1]
        for i in range(n - 2, -1, -1):
            out[:, i] = dl[i] + gam[i] * out[:, i + 1]
        return out

    # -- the solve ---------------------------------------------------------------------------
    def _volts(self, codes: np.ndarray) -> np.ndarray:
        c = np.asarray(codes)
        if c.ndim != 2 or c.shape[1] != self.rows:
            raise ValueError(f"codes must be shaped (n, {self.rows}), got {c.shape}")
        if c.size and (c.min() < 0 or c.max() >= self.v_levels.size):
            raise ValueError(f"codes must be in 0..{self.v_levels.size - 1}")
        v = self.v_levels[c.T[np.where(self._row_index >= 0, self._row_index, 0)]]
        v[self._row_index < 0] = 0.0
        return v[:, :, None, :]                               # (P, depth, 1, n)

    def solve(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """Node drops a, column voltages w, diode voltages x and cell currents i, each shaped
        (partition, depth, cols, n), of the input codes shaped (n, rows)."""
        v = self._volts(codes)
        shape = v.shape[:2] + (self.cols, v.shape[3])
        a, w = np.zeros(shape), np.zeros(shape)
        x, i, d = self._cells(np.broadcast_to(v, shape), None)
        r = self.wire_r
        for _ in range(self.sweeps):
            if r > 0:
                a = self._solve_rows(self._row_base[:, None] + r * d, r * (i + d * a))
            x, i, d = self._cells(v - a - w, i)
            if r > 0:
                w = self._solve_cols(self._col_base[:, :, None, None] + r * d, r * (i + d * w))
            x, i, d = self._cells(v - a - w, i)
        return {"a": a, "w": w, "x": x, "i": i, "v": v}

    def column_currents_grid(self, codes: np.ndarray) -> np.ndarray:
        """Column currents (n, cols) as int64 multiples of `grid` A (exact column sums)."""
        cells = np.rint(self.solve(codes)["i"] / self.grid).astype(np.int64)
        return cells.sum(axis=(0, 1)).T

    def column_currents(self, codes: np.ndarray) -> np.ndarray:
        """Column currents (n, cols) in A into the virtual ground."""
        return self.column_currents_grid(codes) * self.grid

    def residual(self, codes: np.ndarray) -> np.ndarray:
        """Per image: sum over all nodes and cells of |KCL residual| (A), Rs mismatch included as
        current (|x + Rs I - t| times the cell's slope). Bounds every column current's error."""
        s = self.solve(codes)
        a, w, x, i, v = s["a"], s["w"], s["x"], s["i"], s["v"]
        if self.wire_r == 0:
            kcl = np.zeros_like(a)
        else:
            g = 1.0 / self.wire_r
            # row node j: wire currents in = cell current out
            left = np.concatenate([np.zeros_like(a[:, :, :1]), a[:, :, :-1]], axis=2)
            right = np.concatenate([a[:, :, 1:], a[:, :, -1:]], axis=2)
            row_res = g * ((a - left) + (a - right)) - i
            link = self._col_links[:, :, None, None]
            above = np.concatenate([np.zeros_like(w[:, :1]), w[:, :-1]], axis=1)
            up_link = np.concatenate([np.zeros_like(link[:, :1]), link[:, :-1]], axis=1)
            below = np.concatenate([w[:, 1:], np.zeros_like(w[:, :1])], axis=1)
            col_res = g * (up_link * (w - above) + link * (w - below)) - i
            real = (self._row_index >= 0)[:, :, None, None]
            kcl = np.abs(row_res) * real + np.abs(col_res) * real
        d = self._diode(x)[1]
        cell = np.abs(x + self._rs * i - (v - a - w)) * d
        return (kcl + cell).sum(axis=(0, 1, 2))
