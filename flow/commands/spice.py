"""`xbarflow spice`: ngspice netlist of the crossbar tile, cross-checked against analog_models.

The netlist and the cross-check are `xbarflow.flow.analysis.spice`; this module reads the
arguments and reports.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from xbarflow.analog_models.dac import dac_voltages
from xbarflow.analog_models.mapping import map_weights

from xbarflow.analog_models import selector_memdiode
from xbarflow.analog_models.memdiode import QmmParams, cell_params, state_for_conductance
from xbarflow.analog_models.selector import check_read, memristor_for_chord

from ..analysis import spice_1s1r, spice_qmm
from ..analysis.spice_write import cross_check_write, write_event_deck
from ..analysis.spice import SpiceError, cross_check, netlist, ngspice_path, results_file
from ..data import DataError, load_dataset
from ..model import weights as weights_mod
from ..model.context import RunContext
from .common import UsageError, load_config, with_overrides, writable_dir
from .demo import add_set_argument

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = ("Write an ngspice netlist of the crossbar tile (mapped target "
                          "conductances, wire segments, partitions, TIA virtual grounds), run it "
                          "and compare the column currents with analog_models.")
    parser.add_argument("--config", type=Path, default=None, help="ChipConfig TOML (default configs/slp.toml)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the netlist and results")
    parser.add_argument("--weights", type=Path, default=None,
                        help="weights .npz (default: trained or cached weights for the config)")
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: shipped MNIST)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--image", type=int, default=None,
                     help="drive the rows with the DAC voltages of this test image")
    how.add_argument("--vread", action="store_true", help="all rows at V_read (the default)")
    parser.add_argument("--no-run", action="store_true", help="only write the netlist")
    parser.add_argument("--write", type=int, nargs=2, metavar=("ROW", "COL"), default=None,
                        help="instead: the deck of one program event on cell (ROW, COL) of the tile "
                             "(programming.bias, crossbar.cell; the other cells at their mapped "
                             "targets), comparing the selected and half-selected cell voltages "
                             "with analog_models.write_path")
    parser.add_argument("--amplitude", type=float, default=None,
                        help="with --write: pulse amplitude in V (default: the first set pulse)")
    add_set_argument(parser)
    parser.add_argument("--read-model", choices=("linear", "qmm"), default=None,
                        help="cells as conductances (linear) or QMM memdiodes (behavioural sources, "
                             "compared with the nonlinear array solve); default: device.read_model")


def run(args) -> int:
    cfg = with_overrides(load_config(args.config), dict(args.set))
    out = writable_dir(args.out)
    if not args.no_run:
        try:
            ngspice_path()     # a missing simulator is a usage error (exit 2), found before the work
        except SpiceError as exc:
            raise UsageError(str(exc)) from None
    try:
        # the data set only when it is used: for the weights or the image
        dataset = load_dataset(args.data) if (args.weights is None or args.image is not None) else None
        weights = weights_mod.load(args.weights, cfg) if args.weights is not None else None
        context = RunContext.build(cfg, dataset, weights=weights) if dataset is not None else None
        weights = context.weights if context is not None else weights
    except DataError as exc:
        raise UsageError(str(exc)) from None
    g = map_weights(weights.w, cfg).conductance
    if args.write is not None:
        if args.read_model is not None:      # the cells of the write deck: the config's read model
            cfg = with_overrides(cfg, {"device.read_model": args.read_model})
        return _write_event(cfg, g, args, out)
    if args.image is not None:
        n = len(context.labels)
        if not 0 <= args.image < n:
            raise UsageError(f"--image {args.image} is outside the {n} test images")
        volts = dac_voltages(context.test_codes[args.image], cfg)
        what = f"test image {args.image}"
    else:
        volts = np.full(g.shape[0], cfg.crossbar.v_read)
        what = f"all rows at V_read = {cfg.crossbar.v_read} V"
    x = cfg.crossbar
    name = f"tile-{cfg.name}"
    title = f"xbarflow {cfg.name} ({cfg.digest()}), {what}"
    qmm = (args.read_model or cfg.device.read_model) == "qmm"
    s1r = x.cell == "1S1R"
    if s1r:
        # 1S1R: the memristor (or QMM state) behind each cell's chord conductance, the selector
        # in series
        check_read(cfg)
        if qmm:
            params = selector_memdiode.qmm_params(cfg)
            lam = selector_memdiode.state_for_chord(g, x, params)
            g_mem = selector_memdiode.QmmCells(*cell_params(params, lam), params.beta)
            name, what = f"{name}-1s1r-qmm", f"{what}, 1S1R QMM cells ({x.selector} selector)"
        else:
            g_mem = memristor_for_chord(g, x)
            name, what = f"{name}-1s1r", f"{what}, 1S1R cells ({x.selector} selector)"
        title = f"xbarflow {cfg.name} ({cfg.digest()}), {what}"
    elif qmm:
        # QMM cells in the memory states whose chord conductance at V_read is the mapped target
        params = QmmParams.from_config(cfg)
        lam = state_for_conductance(g, x.v_read, params)
        name, what = f"{name}-qmm", f"{what}, QMM cells (preset {cfg.device.preset})"
        title = f"xbarflow {cfg.name} ({cfg.digest()}), {what}"
    elif not qmm and x.cell == "1T1R":
        g = g / (1.0 + g * x.access_r_on)     # every word line on: r_on in series (array.py)
    if args.no_run:
        path = out / f"{name}.cir"
        if s1r:
            text = spice_1s1r.netlist(g_mem, x, volts, title=title, results=results_file(name))
        elif qmm:
            i0, alpha, rs = cell_params(params, lam)
            text = spice_qmm.netlist(i0, alpha, params.beta, rs, volts, x.wire_r, x.partitions,
                                     title=title, results=results_file(name))
        else:
            text = netlist(g, volts, x.wire_r, x.partitions, title=title, results=results_file(name))
        path.write_text(text)
        print(f"wrote {path} ({g.shape[0]}x{g.shape[1]} cells, {what})")
        return 0
    try:
        if s1r:
            check = spice_1s1r.cross_check(g_mem, x, volts, out, name, title)
        elif qmm:
            check = spice_qmm.cross_check(params, lam, volts, x.wire_r, x.partitions, out, name, title)
        else:
            check = cross_check(g, volts, x.wire_r, x.partitions, out, name, title)
    except SpiceError as exc:
        print(f"xbarflow: {exc}", file=sys.stderr)
        return 1
    table = out / f"{name}.columns.csv"
    with table.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["column", "spice_A", "model_A", "ideal_A", "spice_vs_model_rel", "ir_drop_rel"])
        for j in range(len(check.spice)):
            wr.writerow([j, f"{check.spice[j]:.12e}", f"{check.model[j]:.12e}", f"{check.ideal[j]:.12e}",
                         f"{abs(check.spice[j] - check.model[j]) / abs(check.model[j]):.3e}",
                         f"{abs(check.model[j] - check.ideal[j]) / abs(check.ideal[j]):.3e}"])
    print(f"[spice] {g.shape[0]}x{g.shape[1]} tile, {x.partitions} partitions, wire {x.wire_r} ohm, {what}")
    print(f"[spice] ngspice {check.run.seconds:.2f} s: max |SPICE - model| / model = "
          f"{check.max_rel_error:.2e}; IR drop (model vs ideal) up to {check.ir_drop:.2e}")
    print(f"[spice] wrote {check.run.deck} and {table}")
    return 0


def _write_event(cfg, g: np.ndarray, args, out: Path) -> int:
    """`--write ROW COL`: one program event's deck, run and compared (or only written)."""
    x, d = cfg.crossbar, cfg.device
    row, col = args.write
    if not (0 <= row < x.tile_rows and 0 <= col < x.tile_cols):
        raise UsageError(f"--write {row} {col} is outside the {x.tile_rows} x {x.tile_cols} tile")
    if cfg.programming.bias == "ideal":
        raise UsageError("--write needs programming.bias = v2, v3 or float (ideal has no array)")
    if d.read_model == "qmm" and x.cell == "1T1R":
        raise UsageError("--write decks have QMM cells for crossbar.cell = 1R and 1S1R only")
    amplitude = args.amplitude if args.amplitude is not None else cfg.programming.amplitude(0, True)
    if amplitude == 0:
        raise UsageError("--amplitude must be non-zero (> 0 set, < 0 reset)")
    lam = np.zeros((x.tile_rows, x.tile_cols))      # unused cells pristine, the rest at target
    lam[:g.shape[0], :g.shape[1]] = (g - d.g_off) / (d.g_on - d.g_off)
    name = f"write-{cfg.name}-r{row}-c{col}"
    if args.no_run:
        path = out / f"{name}.cir"
        path.write_text(write_event_deck(cfg, lam, row, col, amplitude, results=f"{name}.voltages.txt"))
        print(f"wrote {path} (program event on cell ({row}, {col}), {amplitude} V)")
        return 0
    try:
        check = cross_check_write(cfg, lam, row, col, amplitude, out, name)
    except SpiceError as exc:
        print(f"xbarflow: {exc}", file=sys.stderr)
        return 1
    table = out / f"{name}.cells.csv"
    half = check.half_selected
    s1r = check.spice_mem is not None        # 1S1R: the memristor voltages too
    with table.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["row", "col", "role", "spice_V", "model_V"]
                    + (["spice_memristor_V", "model_memristor_V"] if s1r else []))
        for k, r in enumerate(check.rows):
            for j in range(x.tile_cols):
                role = "selected" if (k, j) == check.selected else "half" if half[k, j] else "other"
                wr.writerow([int(r), j, role, f"{check.spice[k, j]:.12e}", f"{check.model[k, j]:.12e}"]
                            + ([f"{check.spice_mem[k, j]:.12e}", f"{check.model_mem[k, j]:.12e}"]
                               if s1r else []))
    sel = check.selected
    worst = float(np.abs(check.model[half]).max())
    err = max(check.rel_error(m, memristor) for m in (half, check.selected_mask)
              for memristor in ((False, True) if s1r else (False,)))
    print(f"[spice] program event {amplitude} V on cell ({row}, {col}), bias {cfg.programming.bias}, "
          f"cell {x.cell}, wire {x.wire_r} ohm: selected {check.spice[sel]:.9f} V (model "
          f"{check.model[sel]:.9f}), worst half-selected {worst:.6f} V")
    if s1r:
        print(f"[spice] 1S1R{' QMM' if d.read_model == 'qmm' else ''} ({x.selector} selector): selected memristor {check.spice_mem[sel]:.9f} V "
              f"(model {check.model_mem[sel]:.9f}), worst half-selected memristor "
              f"{float(np.abs(check.model_mem[half]).max()):.6f} V")
    print(f"[spice] ngspice {check.seconds:.2f} s: max |SPICE - model| / model over the selected and "
          f"half-selected cells{' (terminal and memristor voltages)' if s1r else ''} = {err:.2e}; wrote {check.deck} and {table}")
    return 0 if err <= 0.01 else 1

