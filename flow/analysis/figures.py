"""Every figure of README.md that comes from running the flow, computed into one JSON file.

`make figures` (`xbarflow figures`, xbarflow.flow.commands.figures) computes them into figures.json (in git, like
BENCHMARKS.md: a source of the README's numbers) and rewrites the README's marked blocks from it
(`flow/analysis/figures_readme.py`). Each figure, or each row of a table, says where it comes from:

* "reference": the shipped reference weights (see `xbarflow.flow.model.weights`, "reference weights") through
  the golden model, the programming replay and the cost model. These are the same bits on every
  machine, core count and BLAS kernel: the golden model works on an integer grid, the replay is
  elementwise, `xbarflow.flow.model.lbfgs.float_scores` sums in a fixed order.
  tests/flow/analysis/test_figures.py recomputes the fast ones and requires them exactly equal to
  the JSON; `xbarflow figures --check` recomputes all of them.
* "retrained": rows whose config changes a training input, so the flow trains them (cached in
  build/weights like any training). Deterministic on one machine, but another BLAS kernel or
  thread count moves their last digits (tests/flow/model/test_weights_reference.py bounds the drift).
* "cosim": short Verilator co-simulations through the CLI (the demo's 100 images, `program`
  runs): parity, cycle counters and the programming cycle count (the programmer has no cycle
  model). The cycle counters must equal `xbarflow.flow.analysis.cost.phase_cycles`, or this command fails.
* "synth", "tools": Yosys and nextpnr-ice40 (`xbarflow cost --synth`), ngspice (`xbarflow spice`).

Timing figures (images/s, seconds) are not figures here: `make bench` writes BENCHMARKS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from xbarflow.analog_models.mapping import map_weights
from xbarflow.analog_models.programming import level_step, logistic_rate

from ..core import config as config_mod
from ..core import paths
from ..core.errors import XbarflowError
from ..data import load_dataset, to_dac_codes
from ..model.context import RunContext
from ..model.programming import (chip_target_levels, program_array, program_chip_array,
                                 programmed_chip, tile_target_levels)
from ..model.train import load_or_train, software_accuracy, software_scores
from ..model.weights import reference_manifest, reference_path, training_digest
from .cost import SynthUnavailable, evaluate, phase_cycles, synthesize
from .figure_cases import (COSIM_PROGRAMMING, DEMO_IMAGES, INSITU, INSITU_LIMITS,
                           MLP_CALIBRATION, MLP_LIMITS, PAPER_SPICE_SLP, PROGRAMMING_CASES, QMM,
                           QMM_DRIFT, QMM_DRIFT_TIMES, QMM_MLP, QMM_NOISE, QMM_V_READ, SHIPPED,
                           SLOW_PROGRAMMING, SWEEP, Row)
from .figures_readme import README, check_readme, render_readme
from .metrics import classification_metrics, logit_scale
from .report import write_margins
from .spice import SpiceError, cross_check
from .sweep import evaluate_point

__all__ = ["Context", "FIGURES_JSON", "FiguresError", "GROUPS", "Group", "SPICE_ARRAYS", "check",
           "compute", "load_stored", "reference_digests", "reference_view", "rewrite_readme",
           "set_step_levels", "update"]

FIGURES_JSON = paths.ROOT / "figures.json"
SCHEMA = 1


class FiguresError(XbarflowError, RuntimeError):
    """A figure could not be computed (a co-simulation disagreed, a tool failed); one line."""


# -- helpers ------------------------------------------------------------------------------------

def acc(x: float) -> float:
    """An accuracy as stored: k / n exactly, at 6 decimals."""
    return round(float(x), 6)


def sig(x: float, digits: int = 6) -> float:
    """A float of a model (energies, means) at `digits` significant digits: a last-bit difference
    of a BLAS kernel cannot reach them."""
    return float(f"{float(x):.{digits}g}")


def set_step_levels(cfg, v: float | None = None) -> float:
    """Level steps one set pulse of amplitude v (default programming.v_set) moves a device from
    g_off, at the nominal rate (no d2d or c2c spread): rate(v) (g_on - g_off) / level step."""
    d = cfg.device
    return logistic_rate(cfg.programming.v_set if v is None else v, cfg) * (d.g_on - d.g_off) / level_step(cfg)


def _say(text: str) -> None:
    print(f"[figures] {text}", file=sys.stderr, flush=True)


class Context:
    """The data set, DAC codes, weights and run contexts (xbarflow.flow.model.context) every group
    shares, each made once per config; `reference_only` leaves out every row that would train."""

    def __init__(self, *, reference_only: bool = False, include_slow: bool = True,
                 cache_dir: str | Path | None = None, data: str | Path | None = None) -> None:
        self.dataset = load_dataset(data)
        self.labels = self.dataset.y_test.astype(np.int64)
        self.reference_only = reference_only
        self.include_slow = include_slow
        self.cache_dir = Path(cache_dir) if cache_dir is not None else paths.WEIGHTS
        self._codes: dict[tuple[int, int], np.ndarray] = {}
        self._weights: dict[str, Any] = {}
        self._runs: dict[tuple, RunContext] = {}
        self._golden: dict[tuple, Any] = {}
        self._reference: dict[str, bool] = {}

    def config(self, name: str, overrides: dict[str, Any] | None = None):
        cfg = config_mod.load(config_mod.CONFIG_DIR / f"{name}.toml")
        return cfg.replace(**overrides) if overrides else cfg

    def codes(self, cfg) -> np.ndarray:
        key = (cfg.network.input_size, cfg.quant.dac_bits)
        if key not in self._codes:
            self._codes[key] = to_dac_codes(self.dataset.x_test, cfg)
        return self._codes[key]

    def is_reference(self, cfg) -> bool:
        """Whether shipped reference weights apply to cfg (memoised per training digest)."""
        key = training_digest(cfg)
        if key not in self._reference:
            self._reference[key] = reference_path(cfg, self.dataset) is not None
        return self._reference[key]

    def wanted(self, cfg) -> bool:
        return self.is_reference(cfg) or not self.reference_only

    def weights(self, cfg):
        """(weights, "reference" | "retrained")."""
        key = training_digest(cfg)
        kind = "reference" if self.is_reference(cfg) else "retrained"
        if kind == "retrained" and self.reference_only:
            raise FiguresError(f"{cfg.name} ({key}) has no reference weights; make reference-weights")
        if key not in self._weights:
            if kind == "retrained":
                _say(f"training {cfg.name} ({key}) into {self.cache_dir} (or reusing it there)")
            self._weights[key] = load_or_train(cfg, self.dataset, self.cache_dir)
        return self._weights[key], kind

    def run_context(self, cfg, device: bool = False) -> RunContext:
        """The setup chain of cfg on this data set, with this run's weights and codes: its
        golden chip is the level mapping, or with `device` the in-situ devices' own
        conductances."""
        key = (cfg.digest(), training_digest(cfg), device)
        if key not in self._runs:
            w, _ = self.weights(cfg)
            self._runs[key] = RunContext.build(cfg, self.dataset, weights=w,
                                               test_codes=self.codes(cfg), device=device)
        return self._runs[key]

    def golden(self, cfg, device: bool = False):
        """The golden chip's result on the full test set (`run_context`); cached, an MLP's tiles
        take seconds."""
        key = (cfg.digest(), training_digest(cfg), device)
        if key not in self._golden:
            context = self.run_context(cfg, device)
            self._golden[key] = context.golden.infer(context.test_codes)
        return self._golden[key]

    def golden_accuracy(self, cfg, device: bool = False) -> float:
        return acc(np.mean(self.golden(cfg, device).classes == self.labels))

    def chip_accuracy(self, chip, cfg) -> float:
        return acc(np.mean(chip.infer(self.codes(cfg)).classes == self.labels))


# -- groups: each returns its JSON value --------------------------------------------------------

def group_accuracy(ctx: Context) -> dict:
    """Software and golden accuracy (full test set, wire resistance on) of each shipped config."""
    out = {}
    for name in SHIPPED:
        cfg = ctx.config(name)
        w, kind = ctx.weights(cfg)
        codes = ctx.codes(cfg)
        relu = "relu" in cfg.network.activations[:-1]
        out[name] = {"software": acc(software_accuracy(w, codes, ctx.labels, cfg)),
                     "golden": ctx.golden_accuracy(cfg),
                     "mult": int(w.requant_mult[0]) if relu else None,
                     "tiles": len(cfg.tiles), "weights": kind}
    return out


def group_golden_slp(ctx: Context) -> dict:
    """The default config's golden run as the demo reports it: the paper's metrics on the full
    test set, and the golden accuracy of the images the demo co-simulates."""
    cfg = ctx.config("slp")
    w, kind = ctx.weights(cfg)
    full = ctx.golden(cfg)
    m = classification_metrics(ctx.labels, full.classes, scores=full.adc_codes, scale=logit_scale(cfg, w))
    return {"f1_macro": m["f1_macro"], "cohen_kappa": m["cohen_kappa"],
            "kappa_balanced_shortcut": m["kappa_balanced_shortcut"],
            "cross_entropy": m["cross_entropy"], "logit_scale": m["logit_scale"],
            "demo_images": DEMO_IMAGES,
            "demo_golden_accuracy": acc(np.mean(full.classes[:DEMO_IMAGES] == ctx.labels[:DEMO_IMAGES])),
            "weights": kind}


def group_cycles(ctx: Context) -> dict:
    """Clock cycles per inference by controller phase (the cost model's phase lengths, which
    tests/flow/analysis/test_cost.py and the demo co-simulation check against the chip's counters)."""
    out = {}
    for name in SHIPPED:
        phases = phase_cycles(ctx.config(name))
        out[name] = {**phases, "total": sum(phases.values())}
    return out


def group_programming(ctx: Context) -> dict:
    """Golden write-verify replay of the default config's trained SLP, per fault case, and the
    golden accuracy on the programmed conductances (full test set)."""
    base = ctx.config("slp")
    w, kind = ctx.weights(base)
    ideal = ctx.golden_accuracy(base)
    out = {}
    for case, label, overrides in PROGRAMMING_CASES:
        if case in SLOW_PROGRAMMING and not ctx.include_slow:
            continue
        cfg = base.replace(**overrides) if overrides else base
        r = program_array(cfg, tile_target_levels(cfg, w.w))
        used = r.pulses_per_cell[:cfg.rows, :cfg.cols]
        out[case] = {
            "label": label, "overrides": overrides, "cells": [cfg.rows, cfg.cols],
            "failures": int(r.failures), "pulse_events": int(r.total_pulses), "steps": int(r.steps),
            "pulses_per_cell_mean": round(float(used.mean()), 4), "pulses_per_cell_max": int(used.max()),
            "timeout_pulses": cfg.programming.timeout_pulses,
            "golden_ideal": ideal, "golden_programmed": ctx.chip_accuracy(programmed_chip(cfg, r), cfg),
            "weights": kind}
        _say(f"programming {case}: {r.failures} failures, {r.total_pulses} pulse events")
    return out


def group_programming_mlp(ctx: Context) -> dict:
    """Golden write-verify replay of the MLP's tiles as shipped (programming.bias, crossbar.cell
    and device of configs/mlp.toml: through the array), each on its own keyed devices, and the
    golden accuracy on the programmed conductances (full test set); what `xbarflow program
    --config configs/mlp.toml` prints before its co-simulation. Slow: ~110k events solved on
    the array."""
    cfg = ctx.config("mlp")
    w, kind = ctx.weights(cfg)
    results = program_chip_array(cfg, chip_target_levels(cfg, w))
    used = np.concatenate([r.pulses_per_cell[:t.rows, :2 * t.outputs].ravel()
                           for t, r in zip(cfg.tiles, results)])
    with tempfile.TemporaryDirectory(prefix="xbarflow-figures-margins-") as tmp:
        margins = write_margins(cfg, results, Path(tmp))
    margins.pop("margins_histogram", None)
    chip = programmed_chip(cfg, results, ctx.run_context(cfg).golden.requant_mult)
    out = {"tiles": len(cfg.tiles), "bias": cfg.programming.bias, "cell": cfg.crossbar.cell,
           "preset": cfg.device.preset, "cells_used": int(used.size),
           "pulse_events": sum(int(r.total_pulses) for r in results),
           "failures": sum(int(r.failures) for r in results),
           "pulses_per_cell_mean": round(float(used.mean()), 4), "pulses_per_cell_max": int(used.max()),
           "disturb_events": margins.get("disturb_events", 0),
           "disturb_failures": margins.get("disturb_failures", 0),
           "disturb_change_steps_max": sig(margins.get("disturb_change_steps_max", 0.0), 2),
           "write_margin_min_v": sig(margins["write_margin_min_v"], 4)
           if margins.get("write_margin_min_v") is not None else None,
           "golden_ideal": ctx.golden_accuracy(cfg), "golden_programmed": ctx.chip_accuracy(chip, cfg),
           "weights": kind}
    _say(f"programming mlp: {out['pulse_events']} pulse events, {out['failures']} failures, "
         f"{out['disturb_events']} disturb events, programmed {out['golden_programmed']:.4f}")
    return out


def group_cost(ctx: Context) -> dict:
    """`xbarflow cost` of the default config (without --synth; the synth group adds those rows)."""
    cfg = ctx.config("slp")
    w, kind = ctx.weights(cfg)
    report = evaluate(cfg, w, ctx.codes(cfg)[:cfg.cost.images])
    return {"rows": [list(r) for r in report.table_rows()],
            "energy_pj": sig(report.energy_total_j * 1e12),
            "crossbar_read_fj": sig(report.energy_j["crossbar read"] * 1e15),
            "latency_ns": sig(report.latency_s * 1e9), "cycles": sum(report.cycles.values()),
            "tops_per_w": sig(report.tops_per_w), "clock_hz": cfg.clock.freq_hz, "weights": kind}


def group_sweep(ctx: Context) -> dict:
    """`xbarflow sweep --param adc.bits=4,6,8` on the default config."""
    key, values = SWEEP
    cfg = ctx.config("slp")
    rows = []
    for v in values:
        point = cfg.replace(**{key: v})
        if not ctx.wanted(point):
            continue
        r = evaluate_point(cfg.to_dict(), {key: v})
        rows.append({"value": v, "golden_accuracy": acc(r["golden_accuracy"]),
                     "software_accuracy": acc(r["software_accuracy"]),
                     "energy_pj": sig(r["energy_pj"]), "tops_per_w": sig(r["tops_per_w"]),
                     "weights": "reference" if ctx.is_reference(point) else "retrained"})
    return {"param": key, "rows": rows}


def group_mlp_wire(ctx: Context) -> dict:
    """How often the golden sums (1 ohm wires) differ from training's ideal-crossbar sums."""
    out = {}
    for name in ("mlp", "mlp_binary"):
        cfg = ctx.config(name)
        w, kind = ctx.weights(cfg)
        codes = ctx.codes(cfg)
        golden = ctx.golden(cfg)
        soft = software_scores(w, codes, cfg)
        out[name] = {"images": int(len(codes)),
                     "sums_differ": int(np.sum(np.any(golden.adc_codes != soft, axis=1))),
                     "classes_differ": int(np.sum(golden.classes != soft.argmax(axis=1))),
                     "weights": kind}
    return out


def _rows(ctx: Context, rows, figures_of) -> list:
    """figures_of(ctx, row, cfg, weights, kind) for each row whose config this run computes."""
    out = []
    for row in rows:
        cfg = ctx.config(row.config, row.overrides)
        if ctx.wanted(cfg):
            out.append(figures_of(ctx, row, cfg, *ctx.weights(cfg)))
    return out


def _row_head(row: Row) -> dict:
    """The keys every row of a case table starts with: what changed, on which config, how."""
    return {"change": row.change, "config": row.config, "overrides": row.overrides}


def _golden_row(ctx: Context, row: Row, cfg, w, kind: str) -> dict:
    relu = "relu" in cfg.network.activations[:-1]
    out = {**_row_head(row), "tiles": len(cfg.tiles), "golden": ctx.golden_accuracy(cfg),
           "mult": int(w.requant_mult[0]) if relu else None, "weights": kind}
    _say(f"{row.config} {row.change}: golden {out['golden']:.4f} ({kind})")
    return out


def group_mlp_limits(ctx: Context) -> list:
    """README "what limits it" (MLP): golden accuracy and mult per change of configs/mlp.toml."""
    return _rows(ctx, MLP_LIMITS, _golden_row)


def group_mlp_calibration(ctx: Context) -> list:
    return _rows(ctx, MLP_CALIBRATION, _golden_row)


def _insitu_row(ctx: Context, row: Row, cfg, w, kind: str) -> dict:
    m = w.meta
    history = m["train_loss_history"]
    lam = [(g - cfg.device.g_off) / (cfg.device.g_on - cfg.device.g_off) for g in w.device_conductance]
    out = {**_row_head(row), "device": ctx.golden_accuracy(cfg, device=True),
           "mapped": ctx.golden_accuracy(cfg),
           "steps": int(m["steps"]), "epochs": int(m["epochs"]), "pulses_total": int(m["pulses_total"]),
           "pulses_per_step": m["pulses_per_step"], "init_pulses": int(m["init_pulses"]),
           "pulses_per_device_mean": m["pulses_per_device_mean"],
           "pulses_per_device_max": int(m["pulses_per_device_max"]),
           "devices_pulsed_fraction": m["devices_pulsed_fraction"],
           "loss_min_epoch": int(np.argmin(history)) + 1,
           "state_mean": sig(float(np.mean(np.concatenate([x.ravel() for x in lam]))), 4),
           "v_set": cfg.programming.v_set, "v_reset": cfg.programming.v_reset,
           "set_step_levels": sig(set_step_levels(cfg), 4),
           "weights": kind}
    _say(f"in situ {row.config} {row.change}: device {out['device']:.4f}, mapped {out['mapped']:.4f} ({kind})")
    return out


def group_insitu(ctx: Context) -> list:
    """README "In-situ Manhattan rule": trained in situ, golden on the device state and mapped."""
    return _rows(ctx, INSITU, _insitu_row)


def group_insitu_limits(ctx: Context) -> list:
    return _rows(ctx, INSITU_LIMITS, _insitu_row)


def group_device(ctx: Context) -> dict:
    """Nominal pulse steps of the shipped configs' write drivers (device model, no training)."""
    out = {}
    for name in ("slp", "mlp"):
        cfg = ctx.config(name)
        p = cfg.programming
        out[name] = {"v_set": p.v_set, "v_reset": p.v_reset,
                     "set_step_levels": sig(set_step_levels(cfg), 4),
                     "set_over_reset_rate": sig(logistic_rate(p.v_set, cfg) / logistic_rate(-p.v_reset, cfg), 4)}
    return out


def _read_models(ctx: Context, name: str, overrides: dict[str, Any]) -> dict:
    """Golden accuracy of config `name` with `overrides` under each read model (full test set)."""
    out = {}
    for model in ("linear", "qmm"):
        cfg = ctx.config(name, {**overrides, "device.read_model": model})
        if not ctx.is_reference(cfg):
            raise FiguresError(f"{name} {overrides}: no reference weights (a read-model row must "
                               "not change a training input)")
        out[model] = ctx.golden_accuracy(cfg)
    return out


def group_qmm(ctx: Context) -> dict:
    """The default SLP read through linear cells vs QMM memdiodes (`device.read_model`), golden
    on the full test set with the reference weights: as shipped, vs v_read, vs read noise (qmm
    only: a solve per read) and vs drift time; beside the paper's SPICE figure."""
    slp = _read_models(ctx, "slp", {})
    v_read = [{"v_read": v, **_read_models(ctx, "slp", {"crossbar.v_read": v})} for v in QMM_V_READ]
    noise = [{"read_noise_sigma": s, "qmm": ctx.golden_accuracy(ctx.config(
        "slp", {**QMM, "device.read_noise_sigma": s}))} for s in QMM_NOISE]
    drift = [{"read_time_s": t, **_read_models(ctx, "slp", {**QMM_DRIFT, "device.read_time_s": t})}
             for t in QMM_DRIFT_TIMES]
    cfg = ctx.config("slp", QMM)
    d = cfg.device
    _say(f"qmm slp: linear {slp['linear']:.4f}, qmm {slp['qmm']:.4f}")
    return {"paper_spice_slp": PAPER_SPICE_SLP, "preset": d.preset, "v_read": cfg.crossbar.v_read,
            "alpha": [d.qmm_alpha_hrs, d.qmm_alpha_lrs], "beta": d.qmm_beta,
            "slp": slp, "v_read_rows": v_read, "noise_rows": noise,
            "drift": {**{k.split(".")[1]: v for k, v in QMM_DRIFT.items()}, "t0_s": d.drift_t0_s},
            "drift_rows": drift, "weights": "reference"}


def _read_model_row(ctx: Context, row: Row, cfg, w, kind: str) -> dict:
    out = {"change": row.change, "config": row.config, "overrides": row.overrides,
           "golden": ctx.golden_accuracy(cfg), "weights": kind}
    _say(f"qmm {row.config} {row.change}: golden {out['golden']:.4f} ({kind})")
    return out


def group_qmm_mlp(ctx: Context) -> list:
    """The MLP under each read model, read noise and drift (golden, full test set); slow."""
    return _rows(ctx, QMM_MLP, _read_model_row)


# -- co-simulation and synthesis ------------------------------------------------------------------

def _cli(argv: list[str], out: Path) -> dict:
    """Run `xbarflow ARGV --out OUT` in a fresh process; its report.json."""
    cmd = [sys.executable, "-m", "xbarflow.flow.cli", *argv, "--out", str(out)]
    _say(" ".join(["xbarflow", *argv]))
    proc = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()][-3:]
        raise FiguresError(f"xbarflow {' '.join(argv)} exited {proc.returncode}: {' | '.join(tail)}")
    return json.loads((out / "report.json").read_text())


def group_cosim(ctx: Context) -> dict:
    """The demo's co-simulation (100 images, Verilator) and the chip programming itself (default,
    stuck-at, dead partition 3): parity, cycle counters, programming cycles."""
    out: dict[str, Any] = {}
    cfg = ctx.config("slp")
    with tempfile.TemporaryDirectory(prefix="xbarflow-figures-") as tmp:
        rep = _cli(["demo", "--sim", "verilator", "--images", str(DEMO_IMAGES)], Path(tmp) / "demo")
        # the chip counts some phases (and the total); each must be the cost model's
        model = phase_cycles(cfg)
        counted = rep["cycles_by_phase"]
        if any(counted[k] != (sum(model.values()) if k == "total" else model.get(k)) for k in counted) \
                or rep["cycles_per_inference"] != sum(model.values()):
            raise FiguresError(f"the chip's cycle counters {counted} differ from the cost model's "
                               f"phase lengths {model}")
        out["demo"] = {k: rep[k] for k in ("images", "parity", "cosim_accuracy", "golden_accuracy",
                                           "cycles_per_inference", "cycles_by_phase")}
        out["demo"]["simulator"] = "verilator"
        programs = {}
        cases = {case: overrides for case, _, overrides in PROGRAMMING_CASES}
        for case in COSIM_PROGRAMMING:
            argv = ["program", "--sim", "verilator"]
            for k, v in cases[case].items():
                argv += ["--set", f"{k}={v}"]
            rep = _cli(argv, Path(tmp) / f"program-{case}")
            c = rep["programming"]["cosim"]
            programs[case] = {"programming_cycles": int(c["programming_cycles"]),
                              "pulse_events": int(c["pulses_total"]), "failures": int(c["failures"]),
                              "golden_pulse_events": int(c["golden_pulses_total"]),
                              "golden_failures": int(c["golden_failures"]),
                              "all_equal": not rep["mismatches"] and rep["parity"] == 1.0,
                              "parity": rep["parity"], "images": rep["images"]}
        out["program"] = programs
    return out


def group_synth(ctx: Context) -> dict:
    """Yosys area and nextpnr-ice40 fmax of the default config (`xbarflow cost --synth`)."""
    try:
        s = synthesize(ctx.config("slp"), paths.SYNTH)
    except SynthUnavailable as exc:
        raise FiguresError(f"synthesis: {exc}") from None
    return {k: s[k] for k in ("lut4", "dff", "carry", "bram", "fmax_mhz", "device")}


#: (rows, cols, wire_r ohm, partitions, seed): random 10-100 uS arrays whose 1-5 ohm wires move
#: the column currents by whole percents (tests/flow/analysis/test_spice.py checks the same kind of array)
SPICE_ARRAYS = ((32, 8, 1.0, 1), (24, 6, 5.0, 3), (40, 10, 2.0, 4))


def group_spice(ctx: Context) -> dict:
    """ngspice against the crossbar model: the default tile (mapped reference weights, every
    row at V_read) and random 10-100 uS arrays with visible IR drop (`xbarflow spice`)."""
    cfg = ctx.config("slp")
    w, _ = ctx.weights(cfg)
    g = map_weights(w.w, cfg).conductance
    x = cfg.crossbar
    arrays = []
    try:
        with tempfile.TemporaryDirectory(prefix="xbarflow-figures-spice-") as tmp:
            tile = cross_check(g, np.full(g.shape[0], x.v_read), x.wire_r, x.partitions, tmp, "tile")
            for rows, cols, wire_r, parts in SPICE_ARRAYS:
                rng = np.random.default_rng(rows * cols)
                c = cross_check(rng.uniform(1e-5, 1e-4, (rows, cols)), rng.uniform(0.0, 0.2, rows),
                                wire_r, parts, tmp, f"a{rows}x{cols}")
                arrays.append({"rows": rows, "cols": cols, "wire_r": wire_r, "partitions": parts,
                               "max_rel_error": sig(c.max_rel_error, 2), "ir_drop": sig(c.ir_drop, 3)})
    except SpiceError as exc:
        raise FiguresError(f"spice: {exc}") from None
    return {"tile": {"rows": g.shape[0], "cols": g.shape[1], "v_read": x.v_read,
                     "max_rel_error": sig(tile.max_rel_error, 2), "ir_drop": sig(tile.ir_drop, 3)},
            "arrays": arrays}


@dataclass(frozen=True)
class Group:
    compute: Callable[[Context], Any]
    kind: str   # "reference" (all rows from reference weights, unless a row says otherwise),
                # "mixed" (rows say), "cosim", "synth", "tools" (ngspice)
    slow: bool = False   # minutes: left out of `Context(include_slow=False)` (the fast test)


GROUPS: dict[str, Group] = {
    "accuracy": Group(group_accuracy, "reference"),
    "golden_slp": Group(group_golden_slp, "reference"),
    "cycles": Group(group_cycles, "reference"),
    "programming": Group(group_programming, "reference"),
    "cost": Group(group_cost, "reference"),
    "programming_mlp": Group(group_programming_mlp, "reference", slow=True),
    "sweep": Group(group_sweep, "mixed"),
    "mlp_wire": Group(group_mlp_wire, "reference"),
    "device": Group(group_device, "reference"),
    "qmm": Group(group_qmm, "reference"),
    "qmm_mlp": Group(group_qmm_mlp, "mixed", slow=True),
    "mlp_limits": Group(group_mlp_limits, "mixed"),
    "mlp_calibration": Group(group_mlp_calibration, "mixed"),
    "insitu": Group(group_insitu, "mixed"),
    "insitu_limits": Group(group_insitu_limits, "mixed"),
    "cosim": Group(group_cosim, "cosim"),
    "synth": Group(group_synth, "synth"),
    "spice": Group(group_spice, "tools"),
}


def compute(names: list[str] | None = None, ctx: Context | None = None) -> dict[str, Any]:
    """The figures of the named groups (default all), in GROUPS order."""
    ctx = ctx or Context()
    out = {}
    for name, group in GROUPS.items():
        if names is not None and name not in names:
            continue
        if ctx.reference_only and group.kind in ("cosim", "synth", "tools"):
            continue
        if group.slow and not ctx.include_slow:
            continue
        t0 = time.perf_counter()
        out[name] = group.compute(ctx)
        _say(f"{name} done ({time.perf_counter() - t0:.0f} s)")
    return out


def reference_view(figures: dict[str, Any], *, include_slow: bool = True) -> dict[str, Any]:
    """Only what comes from the reference weights: what `Context(reference_only=True)` computes
    (so the fast test can require equality), without the slow rows unless `include_slow`."""
    out: dict[str, Any] = {}
    for name, value in figures.items():
        group = GROUPS.get(name)
        if group is None or group.kind in ("cosim", "synth", "tools"):
            continue
        if group.slow and not include_slow:
            continue
        if isinstance(value, list):
            value = [r for r in value if r.get("weights") == "reference"]
        elif name == "sweep":
            value = {**value, "rows": [r for r in value["rows"] if r["weights"] == "reference"]}
        elif name == "programming" and not include_slow:
            value = {k: v for k, v in value.items() if k not in SLOW_PROGRAMMING}
        out[name] = value
    return out


def reference_digests() -> dict[str, str]:
    return {k: v["sha256"] for k, v in reference_manifest()["weights"].items()}


# -- figures.json and the README -------------------------------------------------------------------

def _stored(figures: dict[str, Any]) -> dict[str, Any]:
    return {"schema": SCHEMA,
            "about": "Every README figure that comes from running the flow: make figures "
                     "(xbarflow figures). Rows say where they come from: reference "
                     "(shipped reference weights, the same on every machine), retrained, "
                     "cosim, synth. Timing figures are in BENCHMARKS.md.",
            "reference_weights": reference_digests(),
            "figures": {k: figures[k] for k in GROUPS if k in figures}}


def load_stored(path: Path = FIGURES_JSON) -> dict[str, Any]:
    """The figures JSON at `path` ({} if there is none yet); FiguresError if it is not one."""
    if not path.exists():
        return {}
    try:
        stored = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FiguresError(f"{path} is not a readable figures JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(stored, dict):
        raise FiguresError(f"{path} is not a figures JSON (not an object)")
    return stored


def check(path: Path = FIGURES_JSON, readme: Path = README) -> list[str]:
    """Recompute every reference figure; what differs from the JSON at `path` and the README
    (one line each; empty when all agree). Writes nothing."""
    stored = load_stored(path)
    fresh = compute(ctx=Context(reference_only=True))
    want = reference_view(stored.get("figures", {}))
    problems = [f"{name}: recomputed {json.dumps(fresh.get(name))[:300]} != stored "
                f"{json.dumps(want.get(name))[:300]}" for name in sorted(want.keys() | fresh.keys())
                if fresh.get(name) != want.get(name)]
    if stored.get("reference_weights") != reference_digests():
        problems.append("the reference weights are not the ones the figures were made with")
    return problems + check_readme(readme.read_text(), stored)


def update(path: Path = FIGURES_JSON, only: list[str] | None = None) -> dict[str, Any]:
    """Recompute the groups `only` (default all) into the JSON at `path`, keeping the others;
    the JSON is saved after every group, so a failure keeps what was done (trained weights
    are cached in build/weights anyway). Returns what was stored; raises FiguresError naming
    the group that failed."""
    figures = dict(load_stored(path).get("figures", {}))
    ctx = Context()
    stored = _stored(figures)
    for name in (only or list(GROUPS)):
        try:
            figures.update(compute([name], ctx))
        except FiguresError as exc:
            raise FiguresError(f"{name}: {exc}") from None
        finally:
            stored = _stored(figures)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(stored, indent=1) + "\n")
    return stored


def rewrite_readme(readme: Path, stored: dict[str, Any]) -> None:
    """Rewrite the marked blocks of `readme` from the stored figures."""
    readme.write_text(render_readme(readme.read_text(), stored))
