"""Crossbar of nonlinear (QMM) cells with wire resistance: the nodal equations solved per input.

The network is the one of `crossbar.py` (read its docstring): per row partition, row i is driven
at its left end through one wire segment, consecutive row nodes and column nodes are joined by one
segment each, every column ends in one segment into the TIA virtual ground, and cell (i, j) joins
row node (i, j) to column node (i, j). Partitions split the rows like np.array_split and share the
virtual ground. Here a cell is the QMM branch (memdiode.py): I = I0 s(x), x + Rs I = t, with t the
cell's terminal voltage, so the network is nonlinear and every input vector needs its own solve.

Two methods, chosen per array from contraction bounds (`method`):

* "fixed_point", when the wires are small against the cells (the shipped nS configs): given the
  cell currents, every wire is a tree fed from one end, so its node voltages are sequential
  cumulative sums of the currents (wire_drops.py); iterate i = I0 s(V - a(i) - w(i) - Rs i).
  It contracts by kappa (see __init__), ~1e-5 on the default tile: two iterations.
* "lines", otherwise (uS cells, long wires): nonlinear block Gauss-Seidel by lines, below.

Lines: nonlinear block Gauss-Seidel. With the wire conductance scaled out, the unknowns
are each row node's drop a = V_row - u below its DAC voltage and each column node's voltage w
(both small, so differences of them keep full precision). A sweep solves every row wire for a
with the column voltages fixed, then every column wire for w with the row voltages fixed; each
wire is a chain, a tridiagonal system with the cells linearised at the present voltages, solved
by the Thomas algorithm written as elementwise operations along the wire. The diode voltage x of
each cell is updated by one fixed-point step x = t - Rs I per cell evaluation.

In both, a cell's exponentials are tabulated at the DAC levels once per array (inputs take only
dac_max + 1 levels), so an evaluation is a Taylor polynomial in the small deviation x - V_level
(see `taylor_degree`), or the full expm1 where the IR drop bound is too large for that. The
start of each solve depends on the row levels only, so it is tabulated as well (without read
noise): the fixed point's first row-wire sums, and the line method's first row half-sweep.

Fixed sweep count of "lines", from a contraction bound per array. All node voltages lie in
[0, v_max] (monotone cells, sources in [0, v_max], ground at 0), so every cell's small-signal
slope is at most d_max = its diode slope at |x| = v_max. With those slopes a row-wire solve damps
a column-voltage error by rho_row = max (T_row^-1 D 1) < 1, a column-wire solve damps a row-drop
error by rho_col, and the fixed-point step for x contracts by q = max Rs d_max. A sweep thus
contracts the voltage error by rho = max(rho_row rho_col, q), from at most v_max at the start.
A column current moves by at most 2 (max column sum of d_max) times the voltage error, so
`sweeps` = ceil(log(tol_v / v_max) / log(rho)) + 1 makes every column current's error below
`current_tol` (the caller states it in ADC LSBs: analog_models/array.py). `residual` gives the
sum of |KCL residual| over all nodes and cells of an image, a bound on any column current's
error (a current injected at a node of a passive network reaches each TIA by a fraction <= 1).

Bit-identical whatever the batch size or order, by construction: the batch is the last axis and
every per-image operation is elementwise (+, -, *, /, rint, where, and `expm1_deterministic`,
built from correctly rounded operations only), with fixed loops along the wires and a fixed
iteration or sweep count; no BLAS call, no float reduction that rounds, no convergence test
that looks at the batch. The cell currents are then put on an integer grid (a power of two, ~2**-52 of the
largest possible column current) and summed along the column as whole numbers whose absolute
sum stays below 2**53, exact in any order (float64 holds them exactly; int64 at the end).
"""

from __future__ import annotations

import math

import numpy as np

from .memdiode import expm1_deterministic
from .wire_drops import (
    FIXED_POINT_KAPPA, check_current_tol, check_levels, current_grid, level_codes,
    partition_layout, shared_resistance, wire_sums,
)

__all__ = ["NonlinearCrossbar"]

_MAX_SWEEPS = 400


class NonlinearCrossbar:
    """Nonlinear cells (rows, cols) -> column currents for batches of row-voltage level codes.

    `i0`, `alpha`, `rs` are per-cell QMM parameters (memdiode.cell_params), `beta` the shared
    exponent split; `v_levels[k]` is the row voltage of input code k (the DAC levels);
    `current_tol` (A) the error allowed on every column current. `scale_max` bounds the per-read
    I0 factors (read noise) that `solve` may be given.
    """

    def __init__(self, i0: np.ndarray, alpha: np.ndarray, rs: np.ndarray, beta: float,
                 wire_r: float, partitions: int, v_levels: np.ndarray, current_tol: float,
                 scale_max: float = 1.0, method: str = "auto") -> None:
        i0, alpha, rs = (np.asarray(a, dtype=np.float64) for a in (i0, alpha, rs))
        if i0.ndim != 2 or 0 in i0.shape or alpha.shape != i0.shape or rs.shape != i0.shape:
            raise ValueError(f"cell parameters must be equal non-empty 2-D arrays, got {i0.shape}, "
                             f"{alpha.shape}, {rs.shape}")
        if not (np.all(i0 >= 0) and np.all(alpha > 0) and np.all(rs >= 0)):
            raise ValueError("need I0 >= 0, alpha > 0 and Rs >= 0 for every cell")
        rows, cols = i0.shape
        index = partition_layout(rows, partitions)
        if not (math.isfinite(wire_r) and wire_r >= 0):
            raise ValueError(f"wire_r must be finite and >= 0 ohm, got {wire_r}")
        levels = check_levels(v_levels)
        current_tol = check_current_tol(current_tol)
        if not (math.isfinite(scale_max) and scale_max >= 1):
            raise ValueError(f"scale_max must be finite and >= 1, got {scale_max}")
        self.scale_max = float(scale_max)
        self.rows, self.cols, self.beta, self.wire_r = rows, cols, float(beta), float(wire_r)
        self.v_levels = levels
        self.current_tol = float(current_tol)
        v_max = float(levels.max())

        # Padded layout (partition, row in partition, column, batch): a partition with fewer rows
        # gets empty rows at its top, cut off the column wire (link 0), with no cells.
        self.partitions, self.depth = partitions, index.shape[1]
        self._row_index = index
        real = index >= 0
        take = np.where(real, index, 0)

        def padded(a: np.ndarray, fill: float) -> np.ndarray:
            return np.where(real[:, :, None], a[take], fill)[..., None]   # (P, depth, cols, 1)

        self._i0, self._alpha, self._rs = padded(i0, 0.0), padded(alpha, 1.0), padded(rs, 0.0)
        self._has_rs = bool(np.any(rs > 0))
        # Every column node has a segment below (to the next node, or to the virtual ground) and
        # one above except at the top. A partition's padding rows sit above its top row: a wire
        # stub without cells, which carries no current (its nodes sit at the top node's voltage),
        # so every column wire is the same uniform chain.
        self._col_base = np.full((partitions, self.depth), 2.0)
        self._col_base[:, 0] = 1.0
        self._row_base = np.full(cols, 2.0)
        self._row_base[-1] = 1.0                              # the far end of a row wire

        # Bounds at |x| = v_max (the slope and current of a cell are largest there).
        d_max = np.maximum(self._diode(np.full_like(self._i0, v_max))[1],
                           self._diode(np.full_like(self._i0, -v_max))[1])[..., 0]
        i_max = np.maximum(np.abs(self._diode(np.full_like(self._i0, v_max))[0]),
                           np.abs(self._diode(np.full_like(self._i0, -v_max))[0]))[..., 0]
        d_max, i_max = d_max * self.scale_max, i_max * self.scale_max   # read noise scales I0
        column_peak = float(i_max.sum(axis=(0, 1)).max())
        self.grid = current_grid(column_peak)
        self.q_rs = float((self._rs[..., 0] * d_max).max())
        if self.q_rs >= 0.5:
            raise ValueError(f"series resistance too large for the array solver: Rs * dI/dV up to "
                             f"{self.q_rs:.3g} (needs < 0.5)")
        if self.wire_r == 0:
            self.rho_row = self.rho_col = 0.0
        else:
            rd = self.wire_r * d_max
            self.rho_row = float(self._solve_rows(self._row_base[:, None] + rd[..., None],
                                                  rd[..., None]).max())
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
            self.sweeps = math.ceil(math.log(tol_v / v_max) / math.log(self.rho)) + 1
        if self.sweeps > _MAX_SWEEPS:
            raise ValueError(f"the array solve would need {self.sweeps} sweeps (rho = {self.rho:.3g})")

        # Exponentials at the DAC levels, once per array: a cell at level k with diode voltage
        # x = V_k - delta has exp(b alpha x) = exp(b alpha V_k) exp(-b alpha delta). delta (IR
        # drop plus Rs I) is bounded by the wire currents: every segment carries at most the sum
        # of its line's largest cell currents, so delta <= cols R max_row(sum i_max) +
        # depth R max_col(sum i_max) + max(Rs i_max) (tighter: below). When alpha delta stays
        # small, expm1 of the small factor is a short Taylor polynomial (degree `taylor_degree`,
        # remainder < 2**-56 relative, with a factor 2 margin on the bound); otherwise the full
        # range-reduced expm1.
        ax = self._alpha * levels                               # (P, depth, cols, levels)
        e1m = expm1_deterministic(self.beta * ax)
        e2m = expm1_deterministic(-(1.0 - self.beta) * ax)
        i0a = self._i0 * self._alpha
        # per cell and level: current, slope, and the coefficients of the two small factors
        # (i = I + B1 p1 - B2 p2, d = S + A1 p1 + A2 p2 with p = expm1 of the small arguments)
        self._tables = np.stack([self._i0 * (e1m - e2m),
                                 i0a * (self.beta * (e1m + 1.0) + (1.0 - self.beta) * (e2m + 1.0)),
                                 self._i0 * (e1m + 1.0), self._i0 * (e2m + 1.0),
                                 i0a * self.beta * (e1m + 1.0), i0a * (1.0 - self.beta) * (e2m + 1.0)]
                                ).reshape(6, -1)
        self._c1 = -self.beta * self._alpha
        self._c2 = (1.0 - self.beta) * self._alpha
        self._cell_offset = (np.arange(partitions * self.depth * cols).reshape(
            partitions, self.depth, cols, 1) * levels.size)
        r = self.wire_r
        # (every cell's drop is R times the sum of its row and column wire sums, linear and
        # positive in the currents, so the wire sums of i_max bound it: about half of
        # cols R max_row(sum i_max) + depth R max_col(sum i_max), which they imply)
        row_sums, col_sums = wire_sums(i_max[..., None])
        self.delta_max = (r * float((row_sums + col_sums).max())
                          + float((self._rs[..., 0] * i_max).max()))
        y_max = 2.0 * max(self.beta, 1.0 - self.beta) * float(alpha.max()) * self.delta_max
        self.taylor_degree = 0
        if y_max <= 0.3:
            term = 1.0
            while term > 2.0 ** -56:
                self.taylor_degree += 1
                term *= y_max / (self.taylor_degree + 1)
        # The fixed point needs no slopes: there the two truncated series are merged into one
        # polynomial in delta per cell and level, i(V_k - delta) = sum_m C_m delta^m with
        # C_m = I0 [e1 (-b alpha)^m - e2 ((1 - b) alpha)^m] / m! (e1, e2 = exp at V_k): the same
        # truncation, so the same remainder, evaluated by Horner in 2 * degree passes.
        if self.taylor_degree:
            e1, e2 = e1m + 1.0, e2m + 1.0
            coef = [self._i0 * (e1m - e2m)]
            for m in range(1, self.taylor_degree + 1):
                coef.append(self._i0 * (e1 * (-self.beta * self._alpha) ** m
                                        - e2 * ((1.0 - self.beta) * self._alpha) ** m)
                            / math.factorial(m))
            # and the row-wire sums of the no-wire currents C_0, which depend on the row's level
            # only: the first iteration's row loops become one more gathered table (the same
            # sequential sums along the row, so the same bits as the loops per input)
            coef.append(wire_sums(coef[0])[0])
            self._poly = np.stack(coef).reshape(len(coef), -1)

        # Fixed-point alternative: given the cell currents, the wires are trees fed from one end,
        # so their voltages are cumulative sums (wire_drops.py); iterating i = I0 s(V - delta(i))
        # contracts by kappa = max d_max (R (cols (cols + 1) + depth (depth + 1)) / 2 + Rs) (the
        # largest shared wire resistance a cell sees, summed over the cells that share it).
        # Chosen when kappa <= FIXED_POINT_KAPPA; the count makes rows * kappa**n * the first
        # guess's error (max d_max * delta_max) <= current_tol, plus one, so that the a-posteriori
        # residual (which measures the last iteration's step) meets the criterion as well.
        shared = shared_resistance(r, cols, self.depth)
        self.kappa = float((d_max * (shared + self._rs[..., 0])).max())
        first = rows * float(d_max.max()) * self.delta_max
        if first <= self.current_tol or self.kappa == 0:
            self.iterations = 1 if (r > 0 or self._has_rs) else 0
        elif self.kappa < 1:
            self.iterations = math.ceil(math.log(self.current_tol / first) / math.log(self.kappa)) + 1
        else:
            self.iterations = _MAX_SWEEPS + 1
        if method not in ("auto", "fixed_point", "lines"):
            raise ValueError(f"method must be auto, fixed_point or lines, got '{method}'")
        if method == "auto":
            method = "fixed_point" if self.kappa <= FIXED_POINT_KAPPA else "lines"
        if method == "fixed_point" and self.iterations > _MAX_SWEEPS:
            raise ValueError(f"the fixed-point iteration does not contract (kappa = {self.kappa:.3g})")
        self.method = method

        # The first row half-sweep starts from the no-wire state (w = 0, cells at their levels),
        # so its row drops and cell currents and slopes depend on the row's level only: tabulated
        # here by the same operations (the level as the batch axis), gathered per input in
        # `_solve` (not with read noise, whose factors differ per read). (taylor degree, tables)
        self._first_half: tuple[int, np.ndarray] | None = None
        if method == "lines" and self.sweeps > 0:
            tab_all = self._tables.reshape((6,) + self._i0.shape[:3] + (levels.size,))
            zero = np.zeros(tab_all.shape[1:])
            a, _, i, d = self._row_half(tab_all, levels, self._i0, zero, zero, tab_all[0],
                                        self._branch(tab_all[1]))
            self._first_half = (self.taylor_degree, np.stack([a, i, d]).reshape(3, -1))

    # -- cells -----------------------------------------------------------------------------
    def _diode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(I0 s(x), I0 s'(x)) of the padded cells at diode voltages x."""
        ax = self._alpha * x
        e1 = expm1_deterministic(self.beta * ax)
        e2 = expm1_deterministic(-(1.0 - self.beta) * ax)
        return (self._i0 * (e1 - e2),
                self._i0 * self._alpha * (self.beta * (e1 + 1.0) + (1.0 - self.beta) * (e2 + 1.0)))

    def _expm1_small(self, y: np.ndarray) -> np.ndarray:
        """expm1(y) for |y| <= 0.3 by the Taylor polynomial of degree `taylor_degree` (Horner)."""
        n = self.taylor_degree
        p = y * (1.0 / math.factorial(n))
        for k in range(n - 1, 0, -1):
            p += 1.0 / math.factorial(k)
            p *= y
        return p

    def _cells(self, tab: np.ndarray | None, delta: np.ndarray, v: np.ndarray, i0: np.ndarray,
               slope: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(current, branch slope) of every cell at diode voltage x = V_level - delta; `tab` are
        the level tables of `_tables` gathered at each cell's input level, `i0` the cells' I0 as
        read (the full-expm1 path, taylor_degree = 0, uses it instead of the tables)."""
        if self.taylor_degree:
            # i = I + B1 p1 - B2 p2, d = S + A1 p1 + A2 p2, formed in place
            p1 = self._expm1_small(self._c1 * delta)
            if self.beta == 0.5:
                # expm1(-y) = -expm1(y) / (1 + expm1(y)): one polynomial; q = -p2 (exactly)
                q = 1.0 + p1
                np.divide(p1, q, out=q)
                q_sign = -1.0
            else:
                q, q_sign = self._expm1_small(self._c2 * delta), 1.0
            i = tab[2] * p1
            i += tab[0]
            t = tab[3] * q
            if q_sign > 0:
                i -= t
            else:
                i += t
            if not slope:
                return i, None
            d = tab[4] * p1
            d += tab[1]
            np.multiply(tab[5], q, out=t)
            if q_sign > 0:
                d += t
            else:
                d -= t
        else:
            ax = self._alpha * (v - delta)
            e1 = expm1_deterministic(self.beta * ax)
            e2 = expm1_deterministic(-(1.0 - self.beta) * ax)
            i = i0 * (e1 - e2)
            d = i0 * self._alpha * (self.beta * (e1 + 1.0) + (1.0 - self.beta) * (e2 + 1.0))
        if self._has_rs:
            den = self._rs * d
            den += 1.0
            d /= den
        return i, d

    def _branch(self, d: np.ndarray) -> np.ndarray:
        """Branch slope d / (1 + Rs d) of diode slopes d (d itself without Rs)."""
        return d / (1.0 + self._rs * d) if self._has_rs else d

    def _row_half(self, tab: np.ndarray, v: np.ndarray, i0: np.ndarray, a: np.ndarray,
                  w: np.ndarray, i: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, ...]:
        """First half of a line sweep: the row wires for a at fixed w, then the cells at the new
        drops (x = t - Rs I as one fixed-point step): (a, delta, i, d)."""
        r = self.wire_r
        if r > 0:
            if r == 1.0:                                   # r * x, skipped where exact
                diag, rhs = self._row_base[:, None] + d, i + d * a
            else:
                diag, rhs = self._row_base[:, None] + r * d, r * (i + d * a)
            a = self._solve_rows(diag, rhs)
        delta = a + w + self._rs * i if self._has_rs else a + w
        i, d = self._cells(tab, delta, v, i0)
        return a, delta, i, d

    # -- wires: Thomas algorithm along a chain, elementwise over everything else -------------
    @staticmethod
    def _chain(diag: np.ndarray, rhs: np.ndarray, axis: int) -> np.ndarray:
        """Solve -x[k-1] + diag[k] x[k] - x[k+1] = rhs[k] along `axis` (1 or 2), x = 0 beyond
        both ends (the ends' own segments are in diag): the Thomas algorithm, elementwise over
        the other axes (gam = 1 / pivot, dl = the eliminated right-hand side)."""
        n = diag.shape[axis]
        at = [(slice(None),) * axis + (k,) for k in range(n)]
        shape = np.broadcast_shapes(diag.shape, rhs.shape)
        gam, out = np.empty(shape), np.empty(shape)          # out holds dl until the back pass
        g_prev = d_prev = 0.0
        for k in range(n):
            g, d = gam[at[k]], out[at[k]]
            np.subtract(diag[at[k]], g_prev, out=g)
            np.divide(1.0, g, out=g)
            np.add(rhs[at[k]], d_prev, out=d)
            d *= g
            g_prev, d_prev = g, d
        for k in range(n - 2, -1, -1):                      # x[k] = dl[k] + gam[k] x[k + 1]
            g = gam[at[k]]
            g *= out[at[k + 1]]
            out[at[k]] += g
        return out

    def _solve_rows(self, diag: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Row wires (axis 2): source at index 0, free far end."""
        return self._chain(diag, rhs, 2)

    def _solve_cols(self, diag: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Column wires (axis 1): free top end, virtual ground below the last node."""
        return self._chain(diag, rhs, 1)

    # -- the solve ---------------------------------------------------------------------------
    def _read_scale(self, scale: np.ndarray | None, n: int) -> np.ndarray | None:
        """The per-read I0 factors (n, rows, cols) in the padded layout (P, depth, cols, n)."""
        if scale is None:
            return None
        sc = np.asarray(scale, dtype=np.float64)
        if sc.shape != (n, self.rows, self.cols):
            raise ValueError(f"scale must be shaped ({n}, {self.rows}, {self.cols}), "
                             f"got {sc.shape}")
        if sc.size and not (sc.min() >= 0 and sc.max() <= self.scale_max):
            raise ValueError(f"I0 scale factors must be in [0, {self.scale_max}]")
        rows = np.where(self._row_index >= 0, self._row_index, 0)
        return sc.transpose(1, 2, 0)[rows]

    def solve(self, codes: np.ndarray, scale: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Row-node drops a, column voltages w, cell terminal voltages t, diode voltages x and
        cell currents i, each shaped (partition, depth, cols, n), of codes shaped (n, rows);
        `scale` (n, rows, cols) multiplies every cell's I0 for that read (read noise)."""
        return self._solve(codes, scale, full=True)

    def _solve(self, codes: np.ndarray, scale: np.ndarray | None, full: bool
               ) -> dict[str, np.ndarray]:
        """`solve`; with full=False only the cell currents "i" (the rest is not formed)."""
        k = level_codes(codes, self.rows, self.v_levels.size, self._row_index)
        sc = self._read_scale(scale, k.shape[3])
        flat = self._cell_offset + k                               # (P, depth, cols, n)
        v = self.v_levels[k]
        if self.method == "fixed_point":
            return self._fixed_point(flat, v, sc, full)
        tab = self._tables.take(flat, axis=1)                      # (6, P, depth, cols, n)
        if sc is not None:
            tab = tab * sc                                          # every table scales with I0
        shape = k.shape[:2] + (self.cols, k.shape[3])
        a, w, delta = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        r, rs = self.wire_r, self._rs
        i0 = self._i0 if sc is None else self._i0 * sc             # the full-expm1 path's I0
        i, d = tab[0], self._branch(tab[1])
        first = sc is None and self._first_half is not None \
            and self._first_half[0] == self.taylor_degree
        if first:
            a, i, d = self._first_half[1].take(flat, axis=1)

        def scaled(x: np.ndarray) -> np.ndarray:            # r * x (skipped when exact: r = 1)
            return x if r == 1.0 else r * x

        for sweep in range(self.sweeps):
            if not (first and sweep == 0):
                a, delta, i, d = self._row_half(tab, v, i0, a, w, i, d)
            if r > 0:
                w = self._solve_cols(self._col_base[:, :, None, None] + scaled(d),
                                     scaled(i + d * w))
            delta = a + w + rs * i if self._has_rs else a + w
            i, d = self._cells(tab, delta, v, i0, slope=sweep < self.sweeps - 1)   # last: unused
        if not full:
            return {"i": i}
        return {"a": a, "w": w, "t": v - a - w, "x": v - delta, "i": i}

    def _fixed_point(self, flat: np.ndarray, v: np.ndarray, sc: np.ndarray | None, full: bool
                     ) -> dict[str, np.ndarray]:
        """The cumsum fixed point (module docstring) from the no-wire currents, `iterations`
        times; the cell law by the merged polynomial (or the full expm1 when taylor_degree = 0)."""
        r, rs = self.wire_r, self._rs
        n = self.taylor_degree
        if n:
            coef = self._poly.take(flat, axis=1)                   # (degree + 2, P, depth, cols, n)
            rows = coef[n + 1] if sc is None else None             # read noise: per-read sums
            if sc is not None:
                coef *= sc
            i = coef[0]
        else:
            i0 = self._i0 if sc is None else self._i0 * sc
            tab = rows = None
            i = self._cells(tab, np.zeros(flat.shape), v, i0, slope=False)[0]
        a = w = delta = np.zeros(flat.shape)
        for it in range(self.iterations):
            given = rows if it == 0 else None
            if full and it == self.iterations - 1:     # the drops themselves, for `solve`
                a, w = wire_sums(i, rows=given)
                delta = a + w
            else:
                delta = wire_sums(i, split=False, rows=given)[0]
            if r != 1.0:
                delta *= r
            if self._has_rs:
                delta += rs * i
            if n:
                i = coef[n] * delta
                for m in range(n - 1, 0, -1):
                    i += coef[m]
                    i *= delta
                i += coef[0]
            else:
                i = self._cells(tab, delta, v, i0, slope=False)[0]
        if not full:
            return {"i": i}
        a, w = r * a, r * w        # the drops the last iteration evaluated the cells at
        return {"a": a, "w": w, "t": v - a - w, "x": v - delta, "i": i}

    def column_currents_grid(self, codes: np.ndarray, scale: np.ndarray | None = None,
                             chunk: int | None = None) -> np.ndarray:
        """Column currents (n, cols) as int64 multiples of `grid` A (exact column sums), solved
        `chunk` inputs at a time (speed and memory only: every input's result is the same in any
        chunk; 32 keeps the working set in cache)."""
        codes = np.asarray(codes)
        chunk = chunk or 32
        out = np.empty((codes.shape[0], self.cols), dtype=np.int64)
        for s in range(0, codes.shape[0], chunk):
            part = None if scale is None else scale[s:s + chunk]
            cells = self._solve(codes[s:s + chunk], part, full=False)["i"]
            np.multiply(cells, 1.0 / self.grid, out=cells)         # a power of two: exact
            np.rint(cells, out=cells)
            # whole numbers whose absolute sum stays below 2**53: the float sum is exact in any
            # order (no rounding), so it equals the int64 sum
            out[s:s + chunk] = cells.sum(axis=(0, 1)).T
        return out

    def row_currents(self, codes: np.ndarray, scale: np.ndarray | None = None,
                     chunk: int = 32) -> np.ndarray:
        """Current each row's driver delivers, (n, rows) in A: the sum of the row's cell currents
        (a row wire is a chain whose only outlets are its cells). sum_i V_i I_i is then the power
        the drivers put into the array, wires and series resistances included (the virtual
        grounds sit at 0 V and take none); used by the cost model (flow/analysis/cost.py)."""
        codes = np.asarray(codes)
        out = np.empty((codes.shape[0], self.rows))
        real = self._row_index >= 0
        for s in range(0, codes.shape[0], chunk):
            part = None if scale is None else scale[s:s + chunk]
            per_row = self.solve(codes[s:s + chunk], part)["i"].sum(axis=2)   # (P, depth, n)
            out[s:s + chunk][:, self._row_index[real]] = per_row[real].T
        return out

    def column_currents(self, codes: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
        """Column currents (n, cols) in A into the virtual ground."""
        return self.column_currents_grid(codes, scale) * self.grid

    def residual(self, codes: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
        """Per image: sum over all nodes and cells of |KCL residual| (A), Rs mismatch included as
        current (|x + Rs I - t| times the cell's slope). Bounds every column current's error."""
        s = self.solve(codes, scale)
        a, w, t, x, i = s["a"], s["w"], s["t"], s["x"], s["i"]
        if self.wire_r == 0:
            kcl = np.zeros_like(a)
        else:
            g = 1.0 / self.wire_r
            # row node j: wire currents in = cell current out
            left = np.concatenate([np.zeros_like(a[:, :, :1]), a[:, :, :-1]], axis=2)
            right = np.concatenate([a[:, :, 1:], a[:, :, -1:]], axis=2)
            row_res = g * ((a - left) + (a - right)) - i
            above = np.concatenate([w[:, :1], w[:, :-1]], axis=1)     # top: no segment above
            below = np.concatenate([w[:, 1:], np.zeros_like(w[:, :1])], axis=1)
            col_res = g * ((w - above) + (w - below)) - i
            real = (self._row_index >= 0)[:, :, None, None]
            kcl = np.abs(row_res) * real + np.abs(col_res) * real
        d = self._diode(x)[1]
        cell = np.abs(x + self._rs * i - t) * d
        return (kcl + cell).sum(axis=(0, 1, 2))
