"""Writes through the array: program pulses and verify reads solved on the crossbar network.

A program event of the write FSM pulses one cell per enabled row partition, all on the same
column. Each row partition is its own network (crossbar.py: its rows, its own column wires, one
wire segment `wire_r` between consecutive nodes, the row drivers at the left end of the rows, the
column drivers below the last row), so an event is one solve per pulsed partition:

* the selected row at the pulse amplitude V, the selected column at 0 V, and the others by
  `programming.bias`: "v2" every unselected line at V/2 (half-selected cells see V/2, the rest
  0 V); "v3" unselected rows at V/3 and columns at 2V/3 (half-selected cells see V/3, the rest
  -V/3); "float" unselected lines driven by nothing (the network decides);
* every other cell of the partition is the load it is: its I-V by `crossbar.cell` ("1R": the
  memristor, linear G or the QMM memdiode of device.read_model; "1T1R": the memristor behind an
  access transistor that only the selected row's word line turns on, `access_r_on` in series;
  "1S1R": the memristor, linear (selector.py) or the QMM memdiode (selector_memdiode.py), in
  series with a threshold or exponential selector; a state's conductance is the whole cell's
  chord conductance at V_read, as in the read path);
* 1T1R: the word line isolates every unselected row, so the unselected columns are held at the
  selected row's level (v2, v3) and the other cells of the selected row see 0 V: no half-select
  at all (the bias only sets the unselected rows, whose transistors are off);
* the voltage each memristor sees (its terminal voltage minus the selector's or transistor's
  share) is what moves it (programming.DeviceArray.expose): the selected cell by its pulse, every
  other cell by half-select disturb.

A verify read (`verify`) drives the selected row at V_read and senses the selected column's
driver current: in "v2" / "v3" every other line is held at 0 V, so only wire drops make sneak
currents; in "float" the unselected lines float and the sneak paths through unselected cells add
to the sensed current. The sense amplifier compares that current with the currents of a replica
cell at the window edges (target level conductance +- margin level steps) at V_read: the same
decision as the ideal verify for a lone linear cell.

Solution methods. With every line driven (v2, v3, and the verify reads of both), each wire is a
tree fed from its driver: given the cell currents, its node voltages are two cumulative sums (the
inverse of the wire network, never refactored), so the cells enter by a fixed point (wire_drops.py)
i = f(V_row - a(i) - V_col - w(i)) that contracts by kappa = max slope * R * (C (C + 1) + D (D + 1))
/ 2 (~1e-5 on the shipped tiles); the count of iterations makes kappa**(n + 1) below VOLTAGE_TOL (1e-9 of the
largest drive, six orders below the wire drops themselves: one iteration on the shipped tiles). Where
kappa > FIXED_POINT_KAPPA, or lines float, each pulsed partition is solved by Newton on its full
nodal equations (scipy sparse LU of the wire Laplacian plus the cells' slopes; one step for linear
cells), converged to VOLTAGE_TOL / 100 of the largest drive (one step for linear cells). A verify read by
the fixed point needs one column's current: its last iteration is solved for that column only
(`column_drops`, the same bits as the whole). All are deterministic functions of the tile's
states and the event: the cocotb bridge and the golden replay call the same `pulse` and `verify`
on the same states and get the same bits.

QMM loads take the read model's memory state of each cell (the state whose chord conductance at
V_read is the cell's conductance, as the read path maps it), interpolated from a 4097-point table
of memdiode.state_for_conductance (a bisection per cell and event would cost seconds); 1S1R QMM
cells the same from selector_memdiode.state_for_chord (the whole cell's chord, selector
included), with I0 at HRS / LRS from selector_memdiode.qmm_params. Their law is
selector_memdiode.series_current (the memdiode voltage behind the selector is what moves the
cell) and its slope series_slope.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from . import memdiode, selector, selector_memdiode
from .mapping import level_conductance
from .programming import DeviceArray, verify_window
from .wire_drops import FIXED_POINT_KAPPA, column_drops, fixed_point, shared_resistance
from xbarflow.flow.core.config import ChipConfig

__all__ = ["GMIN", "PulseEvent", "Solution", "VOLTAGE_TOL", "WritePath", "bias_levels"]

VOLTAGE_TOL = 1e-9    # relative error of every cell voltage (of v_max) the solves leave
GMIN = 1e-15          # S from every wire node to ground in the Newton path (and the write deck)
_STATE_TABLE = 4097
_NEWTON_MAX = 60
_DRIVE_MEMO = 8192      # drive sets remembered (memory only)


def bias_levels(bias: str, amplitude: float) -> tuple[float, float]:
    """(unselected row, unselected column) voltages of a pulse of `amplitude` (NaN: floating)."""
    if bias == "v2":
        return amplitude / 2.0, amplitude / 2.0
    if bias == "v3":
        return amplitude / 3.0, 2.0 * amplitude / 3.0
    if bias == "float":
        return math.nan, math.nan
    raise ValueError(f"no array bias for programming.bias = '{bias}'")


@dataclass
class Solution:
    """One solve of the pulsed partitions, arrays shaped (active partitions, depth, cols)."""
    v: np.ndarray            # cell terminal voltage (row node - column node)
    v_mem: np.ndarray        # voltage across the memristor itself
    i: np.ndarray            # cell current (row node -> column node)
    column_current: np.ndarray   # (active, cols) current into each column's driver


@dataclass
class PulseEvent:
    """What one program event put on the array (per pulsed row, in the order given)."""
    v_selected: np.ndarray     # memristor voltage of each selected cell
    v_disturb_max: np.ndarray  # largest |memristor voltage| of another cell in its partition
    v_mem: np.ndarray          # (R, C) memristor voltages of the whole tile (0 where unpulsed)


class WritePath:
    """The array seen by the write periphery of one tile (module docstring)."""

    def __init__(self, cfg: ChipConfig, tile: int = 0) -> None:
        if cfg.programming.bias == "ideal":
            raise ValueError("programming.bias = 'ideal' has no array write path")
        self.cfg, self.tile = cfg, int(tile)
        x, d = cfg.crossbar, cfg.device
        self.bias, self.cell, self.wire_r = cfg.programming.bias, x.cell, float(x.wire_r)
        self.rows, self.cols = x.tile_rows, x.tile_cols
        self.partitions = x.partitions
        sizes, starts = cfg.partition_rows, cfg.partition_start
        self.depth = max(sizes)
        index = np.full((self.partitions, self.depth), -1, dtype=np.int64)
        for p, (s, n) in enumerate(zip(starts, sizes)):
            index[p, self.depth - n:] = np.arange(s, s + n)     # padding above the top row
        self.index = index
        self.real = index >= 0
        self._take = np.where(self.real, index, 0)
        self._starts = np.asarray(starts)
        self._pad = self.depth - np.asarray(sizes)         # padding rows above each partition
        self.qmm = d.read_model == "qmm"
        if self.cell == "1S1R":
            selector.check_read(cfg)
        if self.qmm:
            grid = np.linspace(0.0, 1.0, _STATE_TABLE)
            chords = d.g_off + (d.g_on - d.g_off) * grid
            self._lam_grid = grid
            if self.cell == "1S1R":      # the whole cell's chord, selector included
                self.params = selector_memdiode.qmm_params(cfg)
                self._state_table = selector_memdiode.state_for_chord(chords, x, self.params)
            else:
                self.params = memdiode.QmmParams.from_config(cfg)
                self._state_table = memdiode.state_for_conductance(chords, x.v_read, self.params)
        pr = cfg.programming
        top = pr.amplitude_levels - 1
        self.v_max = max(abs(pr.amplitude(top, True)), abs(pr.amplitude(top, False)), x.v_read)
        slope = self._slope_bound()
        self.kappa = slope * shared_resistance(self.wire_r, self.cols, self.depth)
        if self.wire_r == 0 or self.kappa == 0:
            self.iterations = 0
        elif self.kappa < FIXED_POINT_KAPPA:
            # the first drops are at most kappa * v_max, each iteration multiplies the error by
            # kappa: kappa**(n + 1) <= VOLTAGE_TOL
            self.iterations = max(1, math.ceil(math.log(VOLTAGE_TOL) / math.log(self.kappa)) - 1)
        else:
            self.iterations = -1          # Newton path for every solve
        self.window = verify_window(cfg)
        self._networks: dict[tuple, tuple] = {}
        self._references: tuple[np.ndarray, np.ndarray] | None = None
        self._drive_memo: dict[tuple, tuple] = {}

    # -- cells ----------------------------------------------------------------------------
    def _slope_bound(self) -> float:
        """Largest dI/dV of any cell at |V| <= v_max (for the fixed point's contraction)."""
        d = self.cfg.device
        if self.cell == "1S1R" and not self.qmm:
            return float(selector.memristor_for_chord(d.g_on, self.cfg.crossbar))  # the selector only lowers it
        if not self.qmm:
            return d.g_on          # a series element only lowers the slope
        p = self.params
        x = np.array([self.v_max, -self.v_max])
        return float(max(memdiode.diode_slope(x, p.i0_hrs, p.alpha_hrs, p.beta).max(),
                         memdiode.diode_slope(x, p.i0_lrs, p.alpha_lrs, p.beta).max()))

    def cell_params(self, lam: np.ndarray) -> dict[str, np.ndarray]:
        """Per-cell law parameters of memory states lam (any shape)."""
        d = self.cfg.device
        lam = np.asarray(lam, dtype=np.float64)
        if self.cell == "1S1R" and not self.qmm:   # the memristor behind the chord conductance of lam
            return {"g": selector.memristor_for_chord(d.g_off + (d.g_on - d.g_off) * lam, self.cfg.crossbar)}
        if not self.qmm:
            return {"g": d.g_off + (d.g_on - d.g_off) * lam}
        state = np.interp(lam, self._lam_grid, self._state_table)
        i0, alpha, rs = memdiode.cell_params(self.params, np.clip(state, 0.0, 1.0))
        return {"i0": i0, "alpha": alpha, "rs": rs}

    def law(self, params: dict[str, np.ndarray], v: np.ndarray, gate: np.ndarray,
            slope: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(current, memristor voltage, dI/dV) of cells at terminal voltage v; `gate` (bool,
        broadcast) is the word line of 1T1R cells (ignored otherwise). slope=False: dI/dV is
        not formed (None; the fixed point needs none)."""
        need_slope = slope
        x = self.cfg.crossbar
        v = np.asarray(v, dtype=np.float64)
        if self.qmm and self.cell == "1S1R":
            i0, alpha, rs, beta = params["i0"], params["alpha"], params["rs"], self.params.beta
            i, v_mem = selector_memdiode.series_current(i0, alpha, rs, beta, v, x)
            slope = selector_memdiode.series_slope(i, v_mem, i0, alpha, rs, beta, x) if need_slope else None
            return i, v_mem, slope
        if self.qmm:
            rs = params["rs"] + (x.access_r_on if self.cell == "1T1R" else 0.0)
            i0, alpha, beta = params["i0"], params["alpha"], self.params.beta
            xd = memdiode.diode_voltage(v, i0, alpha, beta, rs)
            i = memdiode.diode_current(xd, i0, alpha, beta)
            slope = memdiode.branch_slope(xd, i0, alpha, beta, rs) if need_slope else None
            v_mem = v - i * x.access_r_on if self.cell == "1T1R" else v
        else:
            g = params["g"]
            if self.cell == "1S1R":
                return selector.series_current(g, v, x, need_slope)
            if self.cell == "1T1R":
                g = g / (1.0 + g * x.access_r_on)
                v_mem = v / (1.0 + params["g"] * x.access_r_on)
            else:
                v_mem = v
            i, slope = g * v, g
        if self.cell == "1T1R":
            on = np.broadcast_to(gate, v.shape)
            return (np.where(on, i, 0.0), np.where(on, v_mem, 0.0),
                    np.where(on, slope, 0.0) if need_slope else None)
        return i, v_mem, slope

    # -- the network ------------------------------------------------------------------------
    def solve(self, lam: np.ndarray, parts: np.ndarray, row_v: np.ndarray, col_v: np.ndarray,
              gate: np.ndarray, full: bool = True) -> Solution:
        """Solve partitions `parts` with row drives (active, depth) and column drives
        (active, cols), NaN = floating; memory states lam (R, C); 1T1R word lines gate (active,
        depth). full=False leaves v and v_mem unmasked (padding rows not zeroed: the verify reads
        use the column currents only)."""
        parts, real, params, gate = self._loads(lam, parts, gate)
        floating = bool(np.isnan(row_v).any() or np.isnan(col_v).any())
        if floating or self.iterations < 0:
            return self._newton(params, parts, row_v, col_v, gate)
        vr, vc = row_v[:, :, None], col_v[:, None, :]
        v = vr - vc
        v += 0.0                                            # (-0.0 -> 0.0, as before)
        v, (i, v_mem, _) = fixed_point(lambda t: self.law(params, t, gate, slope=False),
                                       self.law(params, v, gate, slope=False), v, vr, vc,
                                       self.wire_r, self.iterations)
        if not full:
            return Solution(v=v, v_mem=v_mem, i=i, column_current=i.sum(axis=1))
        return Solution(v=np.where(real, v, 0.0), v_mem=np.where(real, v_mem, 0.0), i=i,
                        column_current=i.sum(axis=1))

    def _network(self, n: int, driven_r: np.ndarray, driven_c: np.ndarray) -> tuple:
        """The wire Laplacian of a partition of n real rows with these driven lines, and its
        index arrays, built once per (n, driven rows, driven columns) and reused."""
        key = (n, driven_r.tobytes(), driven_c.tobytes())
        hit = self._networks.get(key)
        if hit is not None:
            return hit
        c, gw = self.cols, 1.0 / self.wire_r
        u = np.arange(n * c).reshape(n, c)
        w = u + n * c
        size = 2 * n * c
        a_idx = np.concatenate([u[:, :-1].ravel(), w[:-1, :].ravel()])
        b_idx = np.concatenate([u[:, 1:].ravel(), w[1:, :].ravel()])
        diag = np.full(size, GMIN)
        np.add.at(diag, a_idx, gw)
        np.add.at(diag, b_idx, gw)
        diag[u[driven_r, 0]] += gw
        diag[w[-1, driven_c]] += gw
        lap = sp.csc_matrix((np.concatenate([-np.full(a_idx.size, gw), -np.full(a_idx.size, gw), diag]),
                             (np.concatenate([a_idx, b_idx, np.arange(size)]),
                              np.concatenate([b_idx, a_idx, np.arange(size)]))), shape=(size, size))
        cu, cw = u.ravel(), w.ravel()
        hit = (u, w, size, lap, cu, cw, np.concatenate([cu, cw, cu, cw]),
               np.concatenate([cu, cw, cw, cu]))
        self._networks[key] = hit
        return hit

    def _newton(self, params, parts, row_v, col_v, gate) -> Solution:
        """Full nodal solve per partition (module docstring), real rows only."""
        shape = (len(parts), self.depth, self.cols)
        out_v, out_m, out_i = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        gw = 1.0 / self.wire_r
        linear = not self.qmm and self.cell != "1S1R"      # one Newton step is the solution
        for n_p, p in enumerate(parts):
            keep = self.real[p]
            n, c = int(keep.sum()), self.cols
            prm = {k: a[n_p][keep] for k, a in params.items()}
            g_on = gate[n_p][keep]
            vr, vc = row_v[n_p][keep], col_v[n_p]
            driven_r, driven_c = ~np.isnan(vr), ~np.isnan(vc)
            u, w, size, lap, cu, cw, jac_rows, jac_cols = self._network(n, driven_r, driven_c)
            rhs = np.zeros(size)
            rhs[u[driven_r, 0]] += gw * vr[driven_r]
            rhs[w[-1, driven_c]] += gw * vc[driven_c]
            x = np.zeros(size)
            x[u.ravel()] = np.repeat(np.where(driven_r, vr, 0.0), c)
            x[w.ravel()] = np.tile(np.where(driven_c, vc, 0.0), n)
            scale = max(float(np.nanmax(np.abs(np.concatenate([vr, vc])))), 1e-300)
            for _ in range(_NEWTON_MAX):
                vcell = (x[cu] - x[cw]).reshape(n, c)
                i, _, s = self.law(prm, vcell, g_on)
                i, s = i.ravel(), np.broadcast_to(s, (n, c)).ravel()
                f = lap @ x - rhs
                f[cu] += i                                   # every cell's nodes once each
                f[cw] -= i
                jac = lap + sp.csc_matrix((np.concatenate([s, s, -s, -s]), (jac_rows, jac_cols)),
                                          shape=(size, size))
                dx = splu(jac.tocsc()).solve(f)
                x = x - dx
                if linear or np.abs(dx).max() <= VOLTAGE_TOL * 1e-2 * scale:
                    break
            else:
                raise ArithmeticError("the write-path Newton solve did not converge")
            vcell = (x[cu] - x[cw]).reshape(n, c)
            i, vm, _ = self.law(prm, vcell, g_on, slope=False)
            out_v[n_p][keep], out_m[n_p][keep], out_i[n_p][keep] = vcell, vm, i
        return Solution(v=out_v, v_mem=out_m, i=out_i, column_current=out_i.sum(axis=1))

    # -- events ----------------------------------------------------------------------------
    def partition_of(self, rows) -> np.ndarray:
        r = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        return np.searchsorted(self._starts, r, side="right") - 1

    def _drives(self, rows, col: int, levels: np.ndarray, unselected: tuple[np.ndarray, np.ndarray]):
        r = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        parts = self.partition_of(r)
        if len(set(parts.tolist())) != parts.size:
            raise ValueError(f"two selected rows in one partition: {r.tolist()}")
        if not 0 <= col < self.cols:
            raise IndexError(f"column {col} outside the tile's {self.cols}")
        local = r - self._starts[parts] + self._pad[parts]
        k = np.arange(len(r))
        row_v = np.repeat(unselected[0][:, None], self.depth, axis=1)
        col_v = np.repeat(unselected[1][:, None], self.cols, axis=1)
        row_v[k, local] = levels
        col_v[:, col] = 0.0
        if self.cell != "1T1R":
            gate = np.ones((len(r), self.depth), dtype=bool)
        else:
            gate = np.zeros((len(r), self.depth), dtype=bool)
            gate[k, local] = True
        return r, parts, local, row_v, col_v, gate

    def pulse_drives(self, rows, col: int, amplitudes):
        """(rows, partitions, local rows, row drives, column drives, word lines) of a program
        event (NaN drive: floating), in the padded layout of `solve`."""
        amps = np.broadcast_to(np.asarray(amplitudes, dtype=np.float64),
                               np.atleast_1d(np.asarray(rows)).shape).copy()
        r = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        key = ("pulse", r.tobytes(), int(col), amps.tobytes())
        hit = self._drive_memo.get(key)
        if hit is not None:
            return hit
        if np.any(amps == 0):
            raise ValueError("a program pulse needs a non-zero amplitude (> 0 set, < 0 reset)")
        un = np.array([bias_levels(self.bias, a) for a in amps]).reshape(-1, 2)
        if self.cell == "1T1R" and self.bias != "float":
            un[:, 1] = amps          # unselected columns follow the selected row: no half-select
        return self._remember(key, self._drives(r, col, amps, (un[:, 0], un[:, 1])))

    def _remember(self, key: tuple, drives: tuple) -> tuple:
        """Memoise the drives of an event (the write FSM repeats the same ones), read-only."""
        for a in drives:
            a.flags.writeable = False
        if len(self._drive_memo) >= _DRIVE_MEMO:
            self._drive_memo.clear()
        self._drive_memo[key] = drives
        return drives

    def pulse_solution(self, lam: np.ndarray, rows, col: int, amplitudes) -> Solution:
        """The solve of a program event on states lam (nothing moves)."""
        _, parts, _, row_v, col_v, gate = self.pulse_drives(rows, col, amplitudes)
        return self.solve(lam, parts, row_v, col_v, gate)

    def pulse_voltages(self, lam: np.ndarray, rows, col: int, amplitudes) -> PulseEvent:
        """The memristor voltages of a program event on states lam (nothing moves)."""
        r, parts, local, row_v, col_v, gate = self.pulse_drives(rows, col, amplitudes)
        sol = self.solve(lam, parts, row_v, col_v, gate)
        k = np.arange(len(r))
        v_sel = sol.v_mem[k, local, col]
        others = np.abs(sol.v_mem)
        others[k, local, col] = 0.0
        tile = np.zeros((self.rows, self.cols))
        real = self.real[parts]
        tile[self.index[parts][real]] = sol.v_mem[real]
        return PulseEvent(v_selected=v_sel, v_disturb_max=others.max(axis=(1, 2)), v_mem=tile)

    def pulse(self, device: DeviceArray, rows, col: int, amplitudes, event_index: int) -> PulseEvent:
        """One program event: solve, then every cell of the pulsed partitions moves
        (DeviceArray.expose, draws keyed by (seed, tile, event_index, cell))."""
        ev = self.pulse_voltages(device.lam, rows, col, amplitudes)
        r = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        device.expose(ev.v_mem, r, np.full(r.shape, col), event_index, self.tile)
        return ev

    def read_currents(self, lam: np.ndarray, rows, col: int) -> np.ndarray:
        """Selected column current of each listed row's partition in a verify read (A)."""
        r = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        key = ("read", r.tobytes(), int(col))
        drives = self._drive_memo.get(key)
        if drives is None:
            v = self.cfg.crossbar.v_read
            held = math.nan if self.bias == "float" else 0.0
            un = np.full(r.shape, held)
            drives = self._remember(key, self._drives(r, col, np.full(r.shape, v), (un, un)))
        r, parts, _, row_v, col_v, gate = drives
        if np.isnan(row_v).any() or np.isnan(col_v).any() or self.iterations < 0:
            return self.solve(lam, parts, row_v, col_v, gate, full=False).column_current[:, col]
        return self._column_current(lam, parts, row_v, col_v, gate, col)

    def _loads(self, lam, parts, gate) -> tuple:
        """(parts, real-cell mask, cell parameters, word-line gate) of partitions `parts`, the
        padding rows' cells open: the states of the solved partitions only (every law is
        elementwise: the same bits as the whole tile's parameters gathered)."""
        parts = np.asarray(parts, dtype=np.int64)
        real = self.real[parts][:, :, None]
        params = self.cell_params(lam[self._take[parts]])
        key = "g" if "g" in params else "i0"
        params[key] = np.where(real, params[key], 0.0)
        return parts, real, params, gate[:, :, None]

    def _column_current(self, lam, parts, row_v, col_v, gate, col: int) -> np.ndarray:
        """`solve(...).column_current[:, col]` of a fixed-point solve, the same bits: every
        iteration but the last on the whole partitions, the last only where column `col`
        needs it (`column_drops`; the laws are elementwise), then the same sequential sum
        down the column as `i.sum(axis=1)` (numpy reduces a middle axis row by row)."""
        parts, _, params, gate = self._loads(lam, parts, gate)
        vr, vc = row_v[:, :, None], col_v[:, None, :]
        v = vr - vc
        v += 0.0                                            # (-0.0 -> 0.0, as `solve`)
        start = self.law(params, v, gate, slope=False)
        if self.iterations == 0:
            i = start[0][:, :, col]
        else:
            _, (i_all, _, _) = fixed_point(lambda t: self.law(params, t, gate, slope=False), start,
                                           v, vr, vc, self.wire_r, self.iterations - 1)
            a, w = column_drops(i_all, col, self.wire_r)    # the last iteration, column col
            t = np.subtract(row_v, a, out=a)
            w += col_v[:, col][:, None]
            t -= w
            i = self.law({k: q[:, :, col] for k, q in params.items()}, t, gate[:, :, 0],
                         slope=False)[0]
        total = i[:, 0].copy()
        for k in range(1, i.shape[1]):
            total += i[:, k]
        return total

    def reference_currents(self, ref_levels) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) currents of a replica cell at the window edges at V_read, alone (a table
        over every level, made once: the laws are elementwise, so the same bits as per call)."""
        if self._references is None:
            gt = level_conductance(np.arange(self.cfg.quant.weight_levels), self.cfg)
            d = self.cfg.device
            v = np.full(gt.shape, self.cfg.crossbar.v_read)
            out = []
            for g in (gt - self.window, gt + self.window):
                lam = (g - d.g_off) / (d.g_on - d.g_off)
                if self.qmm:
                    lam = np.clip(lam, 0.0, 1.0)     # a replica beyond the device's own range
                if self.qmm:
                    prm = self.cell_params(lam)
                elif self.cell == "1S1R":      # the replica's memristor behind chord g
                    prm = {"g": selector.memristor_for_chord(g, self.cfg.crossbar)}
                else:
                    prm = {"g": g}
                out.append(self.law(prm, v, np.ones(gt.shape, dtype=bool), slope=False)[0])
            self._references = (out[0], out[1])
        refs = np.asarray(ref_levels, dtype=np.int64)
        return self._references[0][refs], self._references[1][refs]

    def verify(self, device: DeviceArray, rows, col: int, ref_levels) -> tuple[np.ndarray, np.ndarray]:
        """Sense-amplifier decisions (ok, high) of the selected cells, read through the array."""
        refs = np.atleast_1d(np.asarray(ref_levels, dtype=np.int64))
        if refs.size and (refs.min() < 0 or refs.max() >= self.cfg.quant.weight_levels):
            raise ValueError(f"reference level outside 0..{self.cfg.quant.weight_levels - 1}")
        current = self.read_currents(device.lam, rows, col)
        low, high = self.reference_currents(refs)
        ok = (current >= low) & (current <= high)
        return ok, ~ok & (current > high)
