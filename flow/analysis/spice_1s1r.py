"""ngspice deck of one crossbar tile with 1S1R cells: an independent check of the 1S1R read path.

The network is the linear deck's (`spice.array_deck`: DAC sources, row and column wire segments,
row partitions, TIA virtual grounds ``Vtia<j>`` whose currents are the column currents); only the
cell differs. Cell (i, j) with memristor conductance G is

* ``Rm<i>_<j>``: the memristor 1/G from row node (i, j) to an internal node ``s<i>_<j>``;
* ``Bs<i>_<j>``: the selector, an ngspice behavioural current source from ``s<i>_<j>`` to column
  node (i, j): threshold, I = g_leak V below |V| = v_th and sgn(V) (g_leak v_th + g_on (|V| -
  v_th)) above; exponential, I = i_s sinh(V / v0).

ngspice solves the series pair together with the wires by its own Newton iteration. `cross_check`
compares its column currents with the model's solve (analog_models.selector_crossbar, asked for an
error below MODEL_REL_TOL of the largest no-wire column current) and with the no-wire currents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from xbarflow.analog_models.selector import series_current
from xbarflow.analog_models.selector_crossbar import SelectorCrossbar
from xbarflow.flow.core.config import CrossbarConfig

from .spice import GMIN, CrossCheck, array_deck, results_file, run_ngspice, spice_number

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


def netlist(g_mem: np.ndarray, x: CrossbarConfig, row_volts: np.ndarray, *,
            title: str = "xbarflow 1S1R crossbar tile", results: str | Path = "currents.txt") -> str:
    """ngspice deck of the tile with memristors g_mem (rows, cols) in S in series with the
    selector of `x` (module docstring); row_volts the (rows,) DAC voltages."""
    g = np.asarray(g_mem, dtype=np.float64)
    if g.ndim != 2 or 0 in g.shape or not np.isfinite(g).all() or g.min() <= 0:
        raise ValueError(f"g_mem must be a non-empty (rows, cols) array > 0 S, got shape {g.shape}")
    v = np.asarray(row_volts, dtype=np.float64)
    if v.shape != (g.shape[0],):
        raise ValueError(f"need one row voltage per row: expected ({g.shape[0]},), got {v.shape}")
    num = spice_number
    law = selector_law(x)

    def cell(i: int, j: int, a: str, b: str) -> list[str]:
        m = f"s{i}_{j}"
        return [f"Rm{i}_{j} {a} {m} {num(1.0 / g[i, j])}",
                f"Bs{i}_{j} {m} {b} I = {law(f'V({m},{b})')}"]

    return array_deck(v, g.shape[1], x.wire_r, x.partitions, cell, title=title, results=results,
                      what="1S1R cells", options=OPTIONS)


def no_wire_currents(g_mem: np.ndarray, x: CrossbarConfig, row_volts: np.ndarray) -> np.ndarray:
    """Column currents (cols,) without wire resistance: every cell at its full row voltage."""
    v = np.asarray(row_volts, dtype=np.float64)
    return series_current(np.asarray(g_mem, dtype=np.float64), v[:, None] + 0 * np.asarray(g_mem),
                          x, slope=False)[0].sum(axis=0)


def model_currents(g_mem: np.ndarray, x: CrossbarConfig, row_volts: np.ndarray) -> np.ndarray:
    """Column currents (cols,) of the model's 1S1R array solve for row voltages >= 0 (each distinct
    voltage one input level), to within MODEL_REL_TOL of the largest no-wire column current."""
    v = np.asarray(row_volts, dtype=np.float64)
    tol = MODEL_REL_TOL * float(np.abs(no_wire_currents(g_mem, x, v)).max()) or MODEL_REL_TOL
    levels, codes = np.unique(v, return_inverse=True)
    return SelectorCrossbar(g_mem, x, levels, tol).column_currents(codes.reshape(1, -1))[0]


def cross_check(g_mem: np.ndarray, x: CrossbarConfig, row_volts: np.ndarray, folder: str | Path,
                name: str = "tile", title: str | None = None) -> CrossCheck:
    """Run ngspice on the 1S1R tile and compare its column currents with the model's solve."""
    v = np.asarray(row_volts, dtype=np.float64)
    deck = netlist(g_mem, x, v, title=title or name, results=results_file(name))
    run = run_ngspice(deck, folder, name)
    return CrossCheck(spice=run.currents, model=model_currents(g_mem, x, v),
                      ideal=no_wire_currents(g_mem, x, v), run=run)
