"""What figures.json computes: the tables' rows (config, --set overrides, README note) and the
programming cases, shared by the computation (figures) and the README renderer (figures_readme)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["COSIM_PROGRAMMING", "DEMO_IMAGES", "INSITU", "INSITU_LIMITS", "MANHATTAN", "MLP_CALIBRATION",
           "MLP_LIMITS", "PAPER_SPICE_SLP", "PROGRAMMING_CASES", "QMM", "QMM_DRIFT", "QMM_DRIFT_TIMES",
           "QMM_MLP", "QMM_NOISE", "QMM_V_READ", "Row", "SHIPPED", "SLOW_PROGRAMMING", "SWEEP"]

@dataclass(frozen=True)
class Row:
    """One row of a table that retrains or re-evaluates a config: `change` is what the README
    shows, `config` the shipped config it starts from, `overrides` the --set values."""
    change: str
    config: str
    overrides: dict[str, Any] = field(default_factory=dict)
    note: str = ""


MANHATTAN = {"train.method": "manhattan"}

PROGRAMMING_CASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("none", "none", {}),
    ("stuck_at", "2.5 % stuck-on + 2.5 % stuck-off",
     {"device.stuck_on_rate": 0.025, "device.stuck_off_rate": 0.025}),
    ("weak_drivers", "weak write drivers (`v_set = v_reset = 0.6 V`, `v_step = 0`)",
     {"programming.v_set": 0.6, "programming.v_reset": 0.6, "programming.v_step": 0.0}),
    ("dead_partition_3", "dead partition 3 (image rows ~5-7)", {"device.dead_partition": 3}),
    ("dead_partition_0", "dead partition 0 (top rows, mostly background)", {"device.dead_partition": 0}),
)
#: replays too slow for the fast exact test (keyed c2c draws of every cell for 150 pulses)
SLOW_PROGRAMMING = ("weak_drivers",)
#: programming cases also co-simulated (Verilator) for the chip's own cycle count
COSIM_PROGRAMMING = ("none", "stuck_at", "dead_partition_3")

MLP_LIMITS = (
    Row("none", "mlp"),
    Row("network.layers=[128, 10]", "mlp", {"network.layers": [128, 10]}),
    Row("network.layers=[64, 10]", "mlp", {"network.layers": [64, 10]}, "hidden size"),
    Row("adc.bits=6", "mlp", {"adc.bits": 6}),
    Row("adc.bits=5", "mlp", {"adc.bits": 5}, "mult near its 8-bit top"),
    Row("adc.bits=4", "mlp", {"adc.bits": 4}, "mult saturated: sums of a few codes cannot reach 15"),
    Row("adc.bits=4 network.requant_shift=4", "mlp", {"adc.bits": 4, "network.requant_shift": 4},
        "a smaller shift restores the gain"),
    Row("network.requant_shift=5", "mlp", {"network.requant_shift": 5}, "coarse multiplier, training adapts"),
    Row("crossbar.wire_r=20.0", "mlp", {"crossbar.wire_r": 20.0}, "IR drop negligible at 20 nS"),
    Row("adc.bits=6", "mlp_binary", {"adc.bits": 6}),
)
MLP_CALIBRATION = tuple(Row(f"train.calib_percentile={p}", "mlp", {"train.calib_percentile": p})
                        for p in (99.0, 99.9, 99.99))

INSITU = (
    Row("slp", "slp", MANHATTAN),
    Row("mlp (defaults)", "mlp", MANHATTAN),
    Row("mlp, batch 100", "mlp", {**MANHATTAN, "train.manhattan_batch": 100}),
    Row("mlp, batch 100, 10 epochs", "mlp",
        {**MANHATTAN, "train.manhattan_batch": 100, "train.manhattan_epochs": 10}),
)
INSITU_LIMITS = (
    Row("none", "slp", MANHATTAN),
    Row("device.c2c_sigma=0.0 device.d2d_sigma=0.0", "slp",
        {**MANHATTAN, "device.c2c_sigma": 0.0, "device.d2d_sigma": 0.0},
        "the 10 % c2c / d2d spread is not the limit"),
    Row("seeds.train=2 seeds.device=4", "slp", {**MANHATTAN, "seeds.train": 2, "seeds.device": 4},
        "run-to-run spread ~{spread:.1f} point"),
    Row("programming.v_set=1.3 programming.v_reset=1.2", "slp",
        {**MANHATTAN, "programming.v_set": 1.3, "programming.v_reset": 1.2},
        "coarser pulses: a set from g_off moves {set_step_levels:.1f} level steps "
        "(default {default_v_set:g} V: {default_set_step_levels:.1f})"),
    Row("programming.v_set=1.1 programming.v_reset=1.0 train.manhattan_epochs=10", "slp",
        {**MANHATTAN, "programming.v_set": 1.1, "programming.v_reset": 1.0, "train.manhattan_epochs": 10},
        "finer pulses ({set_step_levels:.2f} level step), twice the steps"),
    Row("programming.v_reset=1.25", "slp", {**MANHATTAN, "programming.v_reset": 1.25},
        "reset as strong as set (the mlp config's): see below"),
    Row("device.stuck_on_rate=0.025 device.stuck_off_rate=0.025", "slp",
        {**MANHATTAN, "device.stuck_on_rate": 0.025, "device.stuck_off_rate": 0.025},
        "training works around stuck cells (ex-situ + write-verify: {exsitu_stuck:.2f} %)"),
    Row("crossbar.wire_r=20.0", "slp", {**MANHATTAN, "crossbar.wire_r": 20.0}, "IR drop negligible at 20 nS"),
    Row("programming.v_reset=1.1", "mlp", {**MANHATTAN, "programming.v_reset": 1.1},
        "the slp's weak reset: {gain:+.1f} points over the mlp's {mlp_v_reset:g} V in "
        "{epochs} epochs"),
    Row("programming.v_reset=1.1 train.manhattan_batch=100 train.manhattan_epochs=10", "mlp",
        {**MANHATTAN, "programming.v_reset": 1.1, "train.manhattan_batch": 100,
         "train.manhattan_epochs": 10},
        "... but its loss stops falling after {loss_min_epoch} epochs (drift), and the wider "
        "device range maps worse"),
)
SWEEP = ("adc.bits", (4, 6, 8))
DEMO_IMAGES = 100
SHIPPED = ("slp", "mlp", "mlp_binary")

# The read model (issue #14): linear cells vs the QMM memdiode (analog_models/memdiode.py, the
# default preset of configs/devices/presets.toml), full test set, shipped reference weights.
QMM = {"device.read_model": "qmm"}
PAPER_SPICE_SLP = 0.91                   # the paper's SPICE SLP with the QMM (shared/PAPER.md)
QMM_V_READ = (0.1, 0.2, 0.3, 0.5)        # V, the paper's 0.2-0.5 V range and below
QMM_NOISE = (0.01, 0.03, 0.1)            # device.read_noise_sigma, relative per read
#: a PCM-like drift (nu ~ 0.05, device.drift_nu's config comment) with a 30 % per-cell spread of
#: nu, so the cells drift apart (a common nu is only a gain); not a measured default
QMM_DRIFT = {"device.drift_nu": 0.05, "device.drift_nu_sigma": 0.3}
QMM_DRIFT_TIMES = (1.0e2, 1.0e4, 1.0e6)  # device.read_time_s, t0 = 1 s after programming
#: mlp rows (slow: a nonlinear solve per tile and image, minutes; `figures --only qmm_mlp`)
QMM_MLP = (
    Row("linear", "mlp"),
    Row("qmm", "mlp", QMM),
    Row("qmm, read noise 3 %", "mlp", {**QMM, "device.read_noise_sigma": 0.03}),
    Row("qmm, drift to 1e4 s", "mlp", {**QMM, **QMM_DRIFT, "device.read_time_s": 1.0e4}),
)
