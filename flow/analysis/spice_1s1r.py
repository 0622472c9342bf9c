"""ngspice deck of one crossbar tile with 1S1R cells: an independent check of the 1S1R read path.

The network is the linear deck's (`spice.array_deck`: DAC sources, row and column wire segments,
row partitions, TIA virtual grounds ``Vtia<j>`` whose currents are the column currents); only the
cell differs. Cell (i, j) with memristor conductance G is

* ``Rm<i>_<j>``: the memristor 1/G from row node (i, j) to an internal node ``s<i>_<j>``;
* ``Bs<i>_<j>``: the selector, an ngspice behavioural current source from ``s<i>_<j>`` to column
  node (i, j): threshold, I = g_leak V below |V| = v_th and sgn(V) (g_leak v_th + g_on (|V| -
  v_th)) above; exponential, I = i_s sinh(V / v0).

QMM cells (device.read_model = "qmm", selector_memdiode.QmmCells): the memristor is the QMM
branch of spice_qmm.py, ``Rs<i>_<j>`` to ``m<i>_<j>`` then the diode ``Bq<i>_<j>`` to
``s<i>_<j>``, and the selector from there as above.

ngspice solves the series pair together with the wires by its own Newton iteration. `cross_check`
compares its column currents with the model's solve (analog_models.selector_crossbar, asked for an
error below MODEL_REL_TOL of the largest no-wire column current) and with the no-wire currents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from xbarflow.analog_models.selector import MemristorCells
from xbarflow.analog_models.selector_crossbar import SelectorCrossbar
from xbarflow.analog_models.selector_memdiode import QmmCells
from xbarflow.flow.core.config import CrossbarConfig

from .spice import GMIN, CrossCheck, array_deck, results_file, run_ngspice, spice_number
from .spice_qmm import memdiode_branch

__all__ = ["MODEL_REL_TOL", "OPTIONS", "cross_check", "model_currents", "netlist", "no_wire_currents",
           "selector_law"]

MODEL_REL_TOL = 1e-10
OPTIONS = (f".options gmin={GMIN:g} reltol=1e-12 vntol=1e-15 abstol=1e-20 itl1=500",)


def selector_law(x: CrossbarConfig) -> Callable[[str], str]:
    """The selector's current as an ngspice expression of its voltage expression `vs`
    (module docstring); shared with the 1S1R write-event deck (spice_write.py)."""
    num = spice_number
    if x.selector == "threshold":
        gl, gon, vth = num(x.selector_g_leak), num(x.selector_g_on), num(x.selector_v_th)

        def law(vs: str) -> str:
            return (f"abs({vs}) <= {vth} ? {gl}*{vs} : "
                    f"sgn({vs})*({gl}*{vth} + {gon}*(abs({vs}) - {vth}))")
    else:
        i_s, v0 = num(x.selector_i_s), num(x.selector_v0)

        def law(vs: str) -> str:
            return f"{i_s}*sinh({vs}/{v0})"
    return law


def _cells(g_mem: np.ndarray | QmmCells) -> MemristorCells | QmmCells:
    cells = g_mem if isinstance(g_mem, QmmCells) else MemristorCells(g_mem)
    if len(cells.shape) != 2 or 0 in cells.shape:
        raise ValueError(f"cells must be a non-empty (rows, cols) array, got shape {cells.shape}")
    return cells


def netlist(g_mem: np.ndarray | QmmCells, x: CrossbarConfig, row_volts: np.ndarray, *,
            title: str = "xbarflow 1S1R crossbar tile", results: str | Path = "currents.txt") -> str:
    """ngspice deck of the tile with memristors g_mem (rows, cols) in S, or QMM cells, in series
    with the selector of `x` (module docstring); row_volts the (rows,) DAC voltages."""
    cells = _cells(g_mem)
    qmm = isinstance(cells, QmmCells)
    g = cells.i0 if qmm else cells.g
    if not qmm and g.min() <= 0:
        raise ValueError(f"g_mem must be a non-empty (rows, cols) array > 0 S, got shape {g.shape}")
    v = np.asarray(row_volts, dtype=np.float64)
    if v.shape != (g.shape[0],):
        raise ValueError(f"need one row voltage per row: expected ({g.shape[0]},), got {v.shape}")
    num = spice_number
    law = selector_law(x)

    def cell(i: int, j: int, a: str, b: str) -> list[str]:
        m = f"s{i}_{j}"
        if not qmm:
            lines = [f"Rm{i}_{j} {a} {m} {num(1.0 / g[i, j])}"]
        elif cells.i0[i, j] == 0:
            return []
        else:
            lines = memdiode_branch(i, j, a, m, cells.i0[i, j], cells.alpha[i, j], cells.beta,
                                    cells.rs[i, j])
        return lines + [f"Bs{i}_{j} {m} {b} I = {law(f'V({m},{b})')}"]

    return array_deck(v, g.shape[1], x.wire_r, x.partitions, cell, title=title, results=results,
                      what="1S1R QMM cells" if qmm else "1S1R cells", options=OPTIONS)


def no_wire_currents(g_mem: np.ndarray | QmmCells, x: CrossbarConfig, row_volts: np.ndarray) -> np.ndarray:
    """Column currents (cols,) without wire resistance: every cell at its full row voltage."""
    cells = _cells(g_mem)
    v = np.asarray(row_volts, dtype=np.float64)
    return cells.current(np.broadcast_to(v[:, None], cells.shape), x).sum(axis=0)


def model_currents(g_mem: np.ndarray | QmmCells, x: CrossbarConfig, row_volts: np.ndarray) -> np.ndarray:
    """Column currents (cols,) of the model's 1S1R array solve for row voltages >= 0 (each distinct
    voltage one input level), to within MODEL_REL_TOL of the largest no-wire column current."""
    v = np.asarray(row_volts, dtype=np.float64)
    tol = MODEL_REL_TOL * float(np.abs(no_wire_currents(g_mem, x, v)).max()) or MODEL_REL_TOL
    levels, codes = np.unique(v, return_inverse=True)
    return SelectorCrossbar(_cells(g_mem), x, levels, tol).column_currents(codes.reshape(1, -1))[0]


def cross_check(g_mem: np.ndarray | QmmCells, x: CrossbarConfig, row_volts: np.ndarray, folder: str | Path,
                name: str = "tile", title: str | None = None) -> CrossCheck:
    """Run ngspice on the 1S1R tile and compare its column currents with the model's solve."""
    v = np.asarray(row_volts, dtype=np.float64)
    deck = netlist(g_mem, x, v, title=title or name, results=results_file(name))
    run = run_ngspice(deck, folder, name)
    return CrossCheck(spice=run.currents, model=model_currents(g_mem, x, v),
                      ideal=no_wire_currents(g_mem, x, v), run=run)
