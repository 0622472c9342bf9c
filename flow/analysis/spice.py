"""SPICE export of one crossbar tile, and the ngspice cross-check of `xbarflow.analog_models.crossbar`.

`netlist` writes the very network that `xbarflow.analog_models.crossbar.effective_matrix` solves (see its
docstring), element by element:

* row i: a DAC source ``Vin<i>`` (0 V reference) drives node ``in<i>``, one wire segment into
  row node (i, 0), then one segment between consecutive row nodes (i, j) - (i, j+1);
* column j of each row partition: one segment between consecutive column nodes
  (i, j) - (i+1, j) of the partition, one final segment from its last row into ``t<j>``;
* cell (i, j): a resistor 1/G[i, j] between row node (i, j) and column node (i, j);
* TIA virtual ground: ``Vtia<j> t<j> 0 DC 0``, shared by all partitions, so the current through
  it, ``i(vtia<j>)`` (positive into the array's side), is column j's current.

Partitions split the rows like np.array_split, as the model does. With wire_r = 0 the wire nodes
collapse onto ``in<i>`` and ``t<j>`` (SPICE dislikes 0-ohm resistors). Row voltages come from DAC
codes (an input image) or are all V_read. The analysis is ``.op``; the column currents are
written with ``wrdata`` (12 significant digits) and compared with ``V @ M``. gmin is set to
1e-18 S (default 1e-12 S would load every node of a nS-scale array by ~0.1 %).

`array_deck` is that network with the cell left open (a callback gives each cell's elements):
`netlist` puts a resistor there, `spice_qmm.netlist` a QMM memdiode.

CLI: ``xbarflow spice --config C --out DIR [--weights W.npz] [--image N | --vread]``. The
conductances are the mapped targets of the (trained or given) weights: ideal programming.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from xbarflow.analog_models.crossbar import effective_matrix

from ..core.errors import XbarflowError

__all__ = ["CellLines", "CrossCheck", "GMIN", "INSTALL_HINT", "SpiceError", "SpiceRun",
           "array_deck", "cross_check", "netlist", "ngspice_path", "results_file", "run_ngspice",
           "spice_number"]

INSTALL_HINT = ("install it with 'sudo apt-get install ngspice' (or 'make setup', which runs "
                "tools/ensure-ngspice.sh)")
GMIN = 1e-18


class SpiceError(XbarflowError, RuntimeError):
    """ngspice missing or failing; one line."""


def spice_number(x: float) -> str:
    """A float as a SPICE literal with full double precision."""
    return f"{x:.15g}"


CellLines = Callable[[int, int, str, str], list[str]]


def array_deck(row_volts: np.ndarray, cols: int, wire_r: float, partitions: int, cell: CellLines,
               *, title: str, results: str | Path, what: str = "",
               options: tuple[str, ...] = (f".options gmin={GMIN:g}",)) -> str:
    """The tile's network (module docstring) with the cells left to `cell(i, j, row_node,
    col_node)`, which returns the element lines of cell (i, j) between those two nodes; an .op
    that writes the column currents to `results`. Shared by the linear and the QMM decks."""
    v = np.asarray(row_volts, dtype=np.float64)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise ValueError(f"need one finite row voltage per row, got shape {v.shape}")
    rows = len(v)
    if not 1 <= partitions <= rows:
        raise ValueError(f"partitions must be in 1..{rows}, got {partitions}")
    if not (np.isfinite(wire_r) and wire_r >= 0):
        raise ValueError(f"wire_r must be finite and >= 0 ohm, got {wire_r}")
    wired = wire_r > 0
    rw = spice_number(wire_r)
    out = [f"* {title}",
           f"* {rows} rows x {cols} columns, {partitions} row partition(s), wire {wire_r} ohm/segment"
           + (f", {what}" if what else ""),
           "* nodes: in<i> DAC output, r<i>_<j> row wire, c<i>_<j> column wire, t<j> TIA input"]
    out += [f"Vin{i} in{i} 0 DC {spice_number(v[i])}" for i in range(rows)]
    out += [f"Vtia{j} t{j} 0 DC 0" for j in range(cols)]
    row_node = (lambda i, j: f"r{i}_{j}") if wired else (lambda i, j: f"in{i}")
    col_node = (lambda i, j: f"c{i}_{j}") if wired else (lambda i, j: f"t{j}")
    bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(rows), partitions)])
    for p in range(partitions):
        lo, hi = int(bounds[p]), int(bounds[p + 1])
        for i in range(lo, hi):
            if wired:
                out.append(f"Rd{i} in{i} r{i}_0 {rw}")
                out += [f"Rr{i}_{j} r{i}_{j} r{i}_{j + 1} {rw}" for j in range(cols - 1)]
                if i + 1 < hi:
                    out += [f"Rc{i}_{j} c{i}_{j} c{i + 1}_{j} {rw}" for j in range(cols)]
                else:
                    out += [f"Rt{i}_{j} c{i}_{j} t{j} {rw}" for j in range(cols)]
            for j in range(cols):
                out += cell(i, j, row_node(i, j), col_node(i, j))
    out += [*options,
            ".control",
            "set wr_singlescale",
            "set wr_vecnames",
            "set numdgt=12",
            "op",
            f"wrdata {results} " + " ".join(f"i(vtia{j})" for j in range(cols)),
            "quit 0",   # batch mode would otherwise exit 1 ("no simulations run")
            ".endc",
            ".end", ""]
    return "\n".join(out)


def netlist(conductance: np.ndarray, row_volts: np.ndarray, wire_r: float, partitions: int,
            *, title: str = "xbarflow crossbar tile", results: str | Path = "currents.txt") -> str:
    """ngspice deck of the tile (module docstring) with an .op that writes the column currents."""
    g = np.asarray(conductance, dtype=np.float64)
    v = np.asarray(row_volts, dtype=np.float64)
    rows, cols = g.shape
    if v.shape != (rows,):
        raise ValueError(f"need one row voltage per row: expected ({rows},), got {v.shape}")
    if not (np.isfinite(g).all() and g.min() >= 0):
        raise ValueError("conductances must be finite and >= 0 S")

    def cell(i: int, j: int, a: str, b: str) -> list[str]:
        return [f"Rx{i}_{j} {a} {b} {spice_number(1.0 / g[i, j])}"] if g[i, j] > 0 else []

    return array_deck(v, cols, wire_r, partitions, cell, title=title, results=results)


def ngspice_path() -> str:
    exe = shutil.which("ngspice")
    if exe is None:
        raise SpiceError(f"ngspice not found; {INSTALL_HINT}")
    return exe


@dataclass(frozen=True)
class SpiceRun:
    deck: Path
    currents: np.ndarray   # (cols,) A, into the TIA virtual grounds
    seconds: float


def results_file(name: str) -> str:
    """Where a deck named `name` writes its column currents (relative to its folder)."""
    return f"{name}.currents.txt"


def run_ngspice(deck_text: str, folder: str | Path, name: str = "tile") -> SpiceRun:
    """Write `<name>.cir` into folder, run ngspice in batch mode there, read the column currents
    (the deck must write them to `results_file(name)`, as `netlist(results=...)` does)."""
    exe = ngspice_path()
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    results = folder / results_file(name)
    results.unlink(missing_ok=True)
    deck = folder / f"{name}.cir"
    deck.write_text(deck_text)
    t0 = time.perf_counter()
    proc = subprocess.run([exe, "-b", str(deck)], capture_output=True, text=True, cwd=folder,
                          timeout=600)
    seconds = time.perf_counter() - t0
    (folder / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not results.is_file():
        last = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise SpiceError(f"ngspice failed on {deck} (exit {proc.returncode}): "
                         f"{last[-1] if last else 'no output'}; see {folder / (name + '.log')}")
    lines = results.read_text().split("\n")
    names = lines[0].split()
    values = [float(x) for x in lines[1].split()]
    cols = [k for k, n in enumerate(names) if n.startswith("i(vtia")]
    order = sorted(cols, key=lambda k: int(names[k][6:-1]))
    return SpiceRun(deck, np.array([values[k] for k in order]), seconds)


@dataclass(frozen=True)
class CrossCheck:
    spice: np.ndarray      # (cols,) A
    model: np.ndarray      # (cols,) A, V @ effective_matrix
    ideal: np.ndarray      # (cols,) A, without wire resistance (V @ G for linear cells)
    run: SpiceRun

    @property
    def max_rel_error(self) -> float:
        """Largest |SPICE - model| / |model| over the columns."""
        return float(np.max(np.abs(self.spice - self.model) / np.abs(self.model)))

    @property
    def ir_drop(self) -> float:
        """Largest |model - ideal| / ideal over the columns: how visible the wires are."""
        return float(np.max(np.abs(self.model - self.ideal) / np.abs(self.ideal)))


def cross_check(conductance: np.ndarray, row_volts: np.ndarray, wire_r: float, partitions: int,
                folder: str | Path, name: str = "tile", title: str | None = None) -> CrossCheck:
    """Run ngspice on the tile and compare its column currents with xbarflow.analog_models.crossbar."""
    g = np.asarray(conductance, dtype=np.float64)
    v = np.asarray(row_volts, dtype=np.float64)
    deck = netlist(g, v, wire_r, partitions, title=title or name, results=results_file(name))
    run = run_ngspice(deck, folder, name)
    model = v @ effective_matrix(g, wire_r, partitions)
    return CrossCheck(spice=run.currents, model=model, ideal=v @ g, run=run)
