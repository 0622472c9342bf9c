"""ngspice deck of one crossbar tile with quasi-static memdiode (QMM) cells: an independent
implementation of the nonlinear read path.

The network is the linear deck's (`spice.array_deck`: DAC sources, row and column wire segments,
row partitions, TIA virtual grounds ``Vtia<j>`` whose currents are the column currents); only the
cell differs. Cell (i, j) with parameters (I0, alpha, beta, Rs) is

* ``Rs<i>_<j>``: the series resistance Rs from row node (i, j) to an internal node ``m<i>_<j>``
  (left out when Rs = 0: the source then sits directly on the row node);
* ``Bq<i>_<j>``: an ngspice behavioural current source from ``m<i>_<j>`` to column node (i, j),
  I = I0 (exp(beta alpha V_D) - exp(-(1 - beta) alpha V_D)) with V_D = V(m<i>_<j>, col), the
  intrinsic junction's voltage.

So V_D = V - I Rs, the implicit part of the QMM I-V, is solved by ngspice's own Newton iteration
together with the wires. Cells with I0 = 0 are open (no elements).

ngspice clamps the argument of a B source's exp() at 227.96 (exp = 1e99, ngspice's PTexp), so a
deck is the QMM only while alpha |V_D| < 227.96; `netlist` refuses decks where alpha times the
largest row voltage exceeds `MAX_EXP_ARG` (|V_D| never exceeds the largest |row voltage|: the
network is passive). Tolerances are far below the 1e-6 relative agreement we ask for: reltol
1e-12, vntol 1e-15 V, abstol 1e-20 A (the smallest cell currents are ~1e-11 A), gmin 1e-18 S as
in the linear deck.

`cross_check` runs the deck and compares ngspice's column currents with the model's nonlinear
array solve (`xbarflow.analog_models.nonlinear_crossbar.NonlinearCrossbar`), asked for an error
below `MODEL_REL_TOL` of the largest no-wire column current (far below the 1e-6 we compare at,
and far below the ADC-LSB tolerance the read path uses), and with the no-wire currents (every
cell at its full row voltage, `memdiode.current`) to show how large the IR drop is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xbarflow.analog_models.memdiode import QmmParams, cell_params, current
from xbarflow.analog_models.nonlinear_crossbar import NonlinearCrossbar

from .spice import GMIN, CrossCheck, array_deck, results_file, run_ngspice, spice_number

__all__ = ["MAX_EXP_ARG", "MODEL_REL_TOL", "OPTIONS", "cross_check", "memdiode_branch", "model_currents",
           "netlist", "no_wire_currents"]

MODEL_REL_TOL = 1e-10

MAX_EXP_ARG = 200.0   # below ngspice's exp clamp at 227.96 (module docstring)
OPTIONS = (f".options gmin={GMIN:g} reltol=1e-12 vntol=1e-15 abstol=1e-20 itl1=500",)


def _cell_array(name: str, x, shape: tuple[int, int]) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(x, dtype=np.float64), shape)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


def memdiode_branch(i: int, j: int, a: str, b: str, i0: float, alpha: float, beta: float,
                    rs: float) -> list[str]:
    """The QMM branch of cell (i, j) from node `a` to node `b` (module docstring): ``Rs<i>_<j>``
    to ``m<i>_<j>`` (left out when Rs = 0), then the diode ``Bq<i>_<j>``; shared with the 1S1R
    read deck and the write-event deck (the selector follows it from `b`)."""
    num = spice_number
    lines = []
    if rs > 0:
        lines.append(f"Rs{i}_{j} {a} m{i}_{j} {num(rs)}")
        a = f"m{i}_{j}"
    vd = f"V({a},{b})"
    bt, al = num(beta), num(alpha)
    lines.append(f"Bq{i}_{j} {a} {b} I = {num(i0)}*(exp({bt}*{al}*{vd})"
                 f" - exp(-(1-{bt})*{al}*{vd}))")
    return lines


def netlist(i0: np.ndarray, alpha: np.ndarray, beta, rs: np.ndarray, row_volts: np.ndarray,
            wire_r: float, partitions: int, *, title: str = "xbarflow QMM crossbar tile",
            results: str | Path = "currents.txt") -> str:
    """ngspice deck of the tile with QMM cells (module docstring); an .op writes the column
    currents. i0 (A), alpha (1/V) and rs (ohm) are (rows, cols) per-cell arrays, beta a scalar or
    an array broadcastable to them, row_volts the (rows,) DAC voltages."""
    i0 = np.asarray(i0, dtype=np.float64)
    if i0.ndim != 2 or 0 in i0.shape:
        raise ValueError(f"i0 must be a non-empty (rows, cols) array, got shape {i0.shape}")
    shape = i0.shape
    rows, cols = shape
    v = np.asarray(row_volts, dtype=np.float64)
    if v.shape != (rows,):
        raise ValueError(f"need one row voltage per row: expected ({rows},), got {v.shape}")
    i0 = _cell_array("i0", i0, shape)
    alpha = _cell_array("alpha", alpha, shape)
    beta = _cell_array("beta", beta, shape)
    rs = _cell_array("rs", rs, shape)
    if i0.min() < 0 or alpha.min() <= 0 or rs.min() < 0:
        raise ValueError("need i0 >= 0 A, alpha > 0 /V and rs >= 0 ohm")
    if not (0 < beta.min() and beta.max() < 1):
        raise ValueError("beta must lie strictly between 0 and 1")
    peak = float(alpha.max() * np.abs(v).max())
    if peak > MAX_EXP_ARG:
        raise ValueError(f"alpha * |V| reaches {peak:.3g} > {MAX_EXP_ARG:g}: ngspice's exp() "
                         "clamps its argument, the deck would not be the QMM")

    def cell(i: int, j: int, a: str, b: str) -> list[str]:
        if i0[i, j] == 0:
            return []
        return memdiode_branch(i, j, a, b, i0[i, j], alpha[i, j], beta[i, j], rs[i, j])

    return array_deck(v, cols, wire_r, partitions, cell, title=title, results=results,
                      what="QMM cells", options=OPTIONS)


def no_wire_currents(params: QmmParams, lam: np.ndarray, row_volts: np.ndarray) -> np.ndarray:
    """Column currents (cols,) without wire resistance: every cell at its full row voltage."""
    v = np.asarray(row_volts, dtype=np.float64)
    return current(v[:, None], np.asarray(lam, dtype=np.float64), params).sum(axis=0)


def model_currents(params: QmmParams, lam: np.ndarray, row_volts: np.ndarray, wire_r: float,
                   partitions: int, current_tol: float | None = None) -> np.ndarray:
    """Column currents (cols,) of the model's nonlinear array solve for row voltages >= 0 (each
    distinct voltage becomes one input level of the solver), to within current_tol A (default
    MODEL_REL_TOL of the largest no-wire column current)."""
    v = np.asarray(row_volts, dtype=np.float64)
    if current_tol is None:
        current_tol = MODEL_REL_TOL * float(np.abs(no_wire_currents(params, lam, v)).max()) \
            or MODEL_REL_TOL
    levels, codes = np.unique(v, return_inverse=True)
    i0, alpha, rs = cell_params(params, lam)
    solver = NonlinearCrossbar(i0, alpha, rs, params.beta, wire_r, partitions, levels, current_tol)
    return solver.column_currents(codes.reshape(1, -1))[0]


def cross_check(params: QmmParams, lam: np.ndarray, row_volts: np.ndarray, wire_r: float,
                partitions: int, folder: str | Path, name: str = "tile",
                title: str | None = None) -> CrossCheck:
    """Run ngspice on the QMM tile of memory states `lam` and compare its column currents with the
    model's solve (module docstring)."""
    lam = np.asarray(lam, dtype=np.float64)
    v = np.asarray(row_volts, dtype=np.float64)
    i0, alpha, rs = cell_params(params, lam)
    deck = netlist(i0, alpha, params.beta, rs, v, wire_r, partitions, title=title or name,
                   results=results_file(name))
    run = run_ngspice(deck, folder, name)
    return CrossCheck(spice=run.currents, model=model_currents(params, lam, v, wire_r, partitions),
                      ideal=no_wire_currents(params, lam, v), run=run)
