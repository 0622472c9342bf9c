"""ngspice deck of one program event, cross-checked against analog_models.write_path.

The deck is the row partition that holds the selected cell, element by element as
`write_path` solves it: row k driven at its left end (``Vr<k>`` then one wire segment into row
node (k, 0)) unless it floats, one segment between consecutive row nodes; column j one segment
between consecutive column nodes and, unless it floats, one segment from the last row into its
driver ``Vc<j>``; cell (k, j) between row node (k, j) and column node (k, j): a resistor 1/G
(1R), or for 1T1R the memristor 1/G to an internal node and the transistor's on-resistance to the
column node on the selected row (on the other rows the transistor is off: no element). The
drive levels are the bias scheme's (`write_path.bias_levels`, 1T1R: unselected columns at the
row's level). Every wire node leaks GMIN to ground (as the model's Newton path). The .op writes every cell's row and column node voltage; the cross-check compares
the selected and every half-selected cell's terminal voltage (row node - column node) with the
model's solve. 1S1R: the memristor 1/G (the memristor behind the cell's chord conductance,
as write_path maps it) to an internal node ``s<k>_<j>``, then the selector as a behavioural
current source into the column node (`spice_1s1r.selector_law`), with the 1S1R read deck's tight
.options; the .op then also writes the internal nodes, so the memristor voltages (what moves a
cell) are compared too. QMM cells (device.read_model = "qmm", 1R and 1S1R): the memristor is the
QMM branch of the read decks (`spice_qmm.memdiode_branch`: Rs to ``m<k>_<j>``, then the diode as
a behavioural source) at the memory state the write path gives the cell (WritePath.cell_params),
with the QMM decks' tight .options; for 1S1R the selector follows from ``s<k>_<j>`` as above, and
the memdiode voltages (row node - ``s<k>_<j>``, what moves a 1S1R QMM cell) are compared too.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xbarflow.analog_models.write_path import GMIN, WritePath

from ..core.config import ChipConfig
from .spice import GMIN as GMIN_SPICE
from .spice import SpiceError, ngspice_path, spice_number
from .spice_1s1r import OPTIONS, selector_law
from .spice_qmm import memdiode_branch

__all__ = ["QMM_OPTIONS", "QMM_OPTIONS_FLOATING", "WriteCheck", "cross_check_write", "write_event_deck"]

# QMM cells: a cell's 1-ohm Rs carries ~1e-16 A of rounding noise per 1e-16 V, far above the read
# decks' abstol (1e-20 A), so the branch currents are converged to 1e-15 A (node voltages still
# to 1e-12 relative); with floating lines a wire island's potential is set only to ~1e-8 V (its
# 1-ohm segments' rounding currents against nS cells), so ngspice is asked for 1e-8 there.
QMM_OPTIONS = (f".options gmin={GMIN_SPICE:g} reltol=1e-12 vntol=1e-15 abstol=1e-15 itl1=500",)
QMM_OPTIONS_FLOATING = (f".options gmin={GMIN_SPICE:g} reltol=1e-8 vntol=1e-12 abstol=1e-15 itl1=500",)


def write_event_deck(cfg: ChipConfig, lam: np.ndarray, row: int, col: int, amplitude: float, *,
                     results: str, title: str = "xbarflow program event") -> str:
    """The deck (module docstring) of a pulse of `amplitude` on cell (row, col) at states lam."""
    x = cfg.crossbar
    qmm = cfg.device.read_model == "qmm"
    if qmm and x.cell == "1T1R":
        raise ValueError("the write-event deck has QMM cells for 1R and 1S1R only (not 1T1R)")
    if cfg.programming.bias == "ideal":
        raise ValueError("programming.bias = 'ideal' has no array to write a deck of")
    path = WritePath(cfg)
    _, parts, local, row_v, col_v, gate = path.pulse_drives([row], col, [amplitude])
    p = int(parts[0])
    keep = path.real[p]
    rows = path.index[p][keep]
    vr, vc, on = row_v[0][keep], col_v[0], gate[0][keep]
    d = cfg.device
    g = d.g_off + (d.g_on - d.g_off) * np.asarray(lam)[rows]
    if x.cell == "1S1R" and not qmm:
        g = path.cell_params(np.asarray(lam)[rows])["g"]     # the memristor behind the chord
    if qmm:
        prm = path.cell_params(np.asarray(lam)[rows])         # I0, alpha, Rs of each state
    law = selector_law(x)
    n, c = len(rows), x.tile_cols
    rw = spice_number(x.wire_r)
    out = [f"* {title}",
           f"* partition {p} (rows {rows[0]}..{rows[-1]}), pulse {amplitude} V on cell ({row}, {col}), "
           f"bias {cfg.programming.bias}, cell {x.cell}, wire {x.wire_r} ohm/segment"]
    for k in range(n):
        if not np.isnan(vr[k]):
            out += [f"Vr{k} dr{k} 0 DC {spice_number(vr[k])}", f"Rd{k} dr{k} r{k}_0 {rw}"]
        out += [f"Rr{k}_{j} r{k}_{j} r{k}_{j + 1} {rw}" for j in range(c - 1)]
        if k + 1 < n:
            out += [f"Rc{k}_{j} c{k}_{j} c{k + 1}_{j} {rw}" for j in range(c)]
    for j in range(c):
        if not np.isnan(vc[j]):
            out += [f"Vc{j} dc{j} 0 DC {spice_number(vc[j])}", f"Rt{j} c{n - 1}_{j} dc{j} {rw}"]
    for k in range(n):
        for j in range(c):
            if qmm:
                end = f"s{k}_{j}" if x.cell == "1S1R" else f"c{k}_{j}"
                out += memdiode_branch(k, j, f"r{k}_{j}", end, prm["i0"][k, j], prm["alpha"][k, j],
                                       path.params.beta, prm["rs"][k, j])
                if x.cell == "1S1R":
                    out.append(f"Bs{k}_{j} {end} c{k}_{j} I = {law(f'V({end},c{k}_{j})')}")
            elif x.cell == "1T1R":
                if on[k]:
                    out += [f"Rm{k}_{j} r{k}_{j} m{k}_{j} {spice_number(1.0 / g[k, j])}",
                            f"Rs{k}_{j} m{k}_{j} c{k}_{j} {spice_number(max(x.access_r_on, 1e-6))}"]
            elif x.cell == "1S1R":
                s = f"s{k}_{j}"
                out += [f"Rm{k}_{j} r{k}_{j} {s} {spice_number(1.0 / g[k, j])}",
                        f"Bs{k}_{j} {s} c{k}_{j} I = {law(f'V({s},c{k}_{j})')}"]
            else:
                out.append(f"Rm{k}_{j} r{k}_{j} c{k}_{j} {spice_number(1.0 / g[k, j])}")
    # every wire node leaks GMIN to ground, as in the model's Newton path: a floating line
    # behind off transistors has no other DC path
    leak = spice_number(1.0 / GMIN)
    out += [f"Rg{w}{k}_{j} {w}{k}_{j} 0 {leak}" for w in "rc" for k in range(n) for j in range(c)]
    nodes = [f"v(r{k}_{j}) v(c{k}_{j})" for k in range(n) for j in range(c)]
    if x.cell == "1S1R":
        nodes += [f"v(s{k}_{j})" for k in range(n) for j in range(c)]
    if qmm:
        floating = bool(np.isnan(vr).any() or np.isnan(vc).any())
        out += list(QMM_OPTIONS_FLOATING if floating else QMM_OPTIONS)
    elif x.cell == "1S1R":
        out += list(OPTIONS)
    out += [".control", "set wr_singlescale", "set wr_vecnames",
            "set numdgt=12", "op", f"wrdata {results} " + " ".join(nodes), "quit 0", ".endc",
            ".end", ""]
    return "\n".join(out)


@dataclass(frozen=True)
class WriteCheck:
    rows: np.ndarray          # (n,) global rows of the partition
    spice: np.ndarray         # (n, cols) cell terminal voltages from ngspice
    model: np.ndarray         # (n, cols) the same from write_path
    selected: tuple[int, int]  # (local row, column) of the selected cell
    deck: Path
    seconds: float
    spice_mem: np.ndarray | None = None   # 1S1R: (n, cols) memristor voltages from ngspice
    model_mem: np.ndarray | None = None   # 1S1R: the same from write_path

    @property
    def half_selected(self) -> np.ndarray:
        """(n, cols) mask: the other cells of the selected row and column."""
        k, j = self.selected
        m = np.zeros(self.model.shape, dtype=bool)
        m[k, :] = True
        m[:, j] = True
        m[k, j] = False
        return m

    @property
    def selected_mask(self) -> np.ndarray:
        m = np.zeros(self.model.shape, dtype=bool)
        m[self.selected] = True
        return m

    def rel_error(self, mask: np.ndarray, memristor: bool = False) -> float:
        """Largest |SPICE - model| / |model| over the cells of `mask`; a cell at less than 1 % of
        the selected cell's voltage (0 V cells, cells behind off transistors, set by GMIN alone)
        is compared against 1 % of the selected cell's voltage instead. memristor=True: the
        memristor voltages of 1S1R cells (the terminal voltage minus the selector's share)."""
        spice, model = (self.spice_mem, self.model_mem) if memristor else (self.spice, self.model)
        if spice is None:
            raise ValueError("memristor voltages are recorded for 1S1R cells only")
        ref = np.abs(model[mask])
        scale = np.maximum(ref, 0.01 * abs(model[self.selected]))
        return float(np.max(np.abs(spice[mask] - model[mask]) / scale))


def cross_check_write(cfg: ChipConfig, lam: np.ndarray, row: int, col: int, amplitude: float,
                      folder: str | Path, name: str = "write-event") -> WriteCheck:
    """Run the write-event deck in ngspice and compare the cell voltages with the model."""
    exe = ngspice_path()
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    results = folder / f"{name}.voltages.txt"
    results.unlink(missing_ok=True)
    deck = folder / f"{name}.cir"
    deck.write_text(write_event_deck(cfg, lam, row, col, amplitude, results=results.name,
                                     title=f"xbarflow {cfg.name} ({cfg.digest()}) program event"))
    t0 = time.perf_counter()
    proc = subprocess.run([exe, "-b", str(deck)], capture_output=True, text=True, cwd=folder,
                          timeout=600)
    seconds = time.perf_counter() - t0
    (folder / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not results.is_file():
        raise SpiceError(f"ngspice failed on {deck} (exit {proc.returncode}); see "
                         f"{folder / (name + '.log')}")
    lines = results.read_text().split("\n")
    names, values = lines[0].split(), [float(v) for v in lines[1].split()]
    volt = dict(zip(names, values))
    path = WritePath(cfg)
    _, parts, local, _, _, _ = path.pulse_drives([row], col, [amplitude])
    p = int(parts[0])
    keep = path.real[p]
    rows = path.index[p][keep]
    n, c = len(rows), cfg.crossbar.tile_cols
    spice = np.array([[volt[f"v(r{k}_{j})"] - volt[f"v(c{k}_{j})"] for j in range(c)] for k in range(n)])
    solution = path.pulse_solution(np.asarray(lam), [row], col, [amplitude])
    model = solution.v[0][keep]
    spice_mem = model_mem = None
    if cfg.crossbar.cell == "1S1R":
        spice_mem = np.array([[volt[f"v(r{k}_{j})"] - volt[f"v(s{k}_{j})"] for j in range(c)]
                              for k in range(n)])
        model_mem = solution.v_mem[0][keep]
    k_sel = int(local[0]) - (path.depth - n)
    return WriteCheck(rows=rows, spice=spice, model=model, selected=(k_sel, col), deck=deck,
                      seconds=seconds, spice_mem=spice_mem, model_mem=model_mem)
