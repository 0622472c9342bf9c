"""README.md's figure blocks, rendered from figures.json (`xbarflow.flow.analysis.figures`).

Each block sits between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->` lines; `make
figures` rewrites what is between them with `BLOCKS[NAME](figures)`, and
tests/flow/analysis/test_figures_readme.py renders the README in memory and requires it to equal the file, so a number typed into the
README, or a figure changed in the JSON, fails `make test`. Text outside the markers is the
README's own; wording inside a block lives here.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any, Callable

from ..core import paths
from ..core.errors import XbarflowError
from .cost import markdown_table, synth_rows
from .figure_cases import INSITU_LIMITS, MLP_LIMITS, PROGRAMMING_CASES

__all__ = ["BLOCKS", "README", "ReadmeError", "check_readme", "render_readme"]

README = paths.ROOT / "README.md"
_MARK = re.compile(r"^<!-- (/?)figures:([a-z0-9-]+) -->$")


class ReadmeError(XbarflowError, ValueError):
    """Markers that do not pair up, or name no block; one line."""


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def num(n: int) -> str:
    return f"{n:,}"


def points(x: float) -> str:
    return f"{100 * x:.1f}"


_KEEP = (re.compile(r"(\d) (%|s\b|fJ|pJ|V\b|MHz|cycles|points?\b|level)"),   # a number and its unit
         re.compile(r"(\(\d) ([-+] \w+\))"))                                    # (1 - W)


def para(*parts: str, indent: str = "", first: str | None = None) -> list[str]:
    """One paragraph, wrapped at 96 columns (`first`: the first line's indent, e.g. "- "),
    never between a number and its unit."""
    text = " ".join(parts)
    for keep in _KEEP:
        text = keep.sub(lambda m: m.group(1) + "\0" + m.group(2).replace(" ", "\0"), text)
    lines = textwrap.wrap(text, width=96, initial_indent=indent if first is None else first,
                          subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
    return [line.replace("\0", " ") for line in lines]


def note_cell(note: str) -> str:
    return f" {note} |" if note else " |"


# -- the blocks -------------------------------------------------------------------------------------

def demo_output(f: dict) -> list[str]:
    a, g, demo = f["accuracy"]["slp"], f["golden_slp"], f["cosim"]["demo"]
    # timings in this sample output are one run's (they vary: BENCHMARKS.md)
    return [
        "```",
        "[xbarflow] config slp (...): 14x14 inputs, 10 classes, 196x20 crossbar, wire 1.0 ohm, host spi",
        f"[xbarflow] software accuracy {a['software']:.4f}, golden accuracy (full 10000) "
        f"{a['golden']:.4f} in 0.01 s",
        "[xbarflow] verilator model built in 13.8 s (Verilog generation 1.1 s)",
        f"[xbarflow] co-simulated {demo['images']} images on verilator: accuracy "
        f"{demo['cosim_accuracy']:.4f} (golden {demo['golden_accuracy']:.4f}), parity "
        f"{demo['parity']:.3f}, {demo['cycles_per_inference']} cycles/inference, 14.4 images/s",
        f"[xbarflow] golden full test set: macro F1 {g['f1_macro']:.4f}, Cohen's kappa "
        f"{g['cohen_kappa']:.4f}, cross-entropy {g['cross_entropy']:.4f} (report_golden.md, "
        "confusion_golden.png)",
        "```",
    ]


def _phases(cycles: dict) -> str:
    return ", ".join(f"{k.upper()} {v}" for k, v in cycles.items() if k != "total")


def figures_table(f: dict) -> list[str]:
    a, g, demo, cyc = f["accuracy"]["slp"], f["golden_slp"], f["cosim"]["demo"], f["cycles"]["slp"]
    return [
        "| figure | value | command |",
        "|---|---|---|",
        f"| software accuracy (float weights, 4-bit inputs, 10k test set) | {pct(a['software'])} | "
        "`make demo` (`software_accuracy` in report.json) |",
        f"| golden-model accuracy, full 10k test set, wire resistance on | **{pct(a['golden'])}** "
        "(paper's SPICE SLP: ~91 %) | `make demo` (`golden_accuracy_full_test_set`) |",
        f"| co-simulation vs golden, {demo['images']} images, Verilator | parity {demo['parity']:.3f} | "
        "`make demo` (`parity`) |",
        "| co-simulation vs golden, 20 images each, Icarus and Verilator | every RESULT class, "
        "read-back sum and DAC code driven equal | `make test` (`tests/cosim/test_inference.py`) |",
        f"| cycles per inference ({_phases(cyc)}) | {cyc['total']} | `make demo` (`cycles_per_inference`) |",
        f"| macro F1 / Cohen's kappa / cross-entropy (golden, 10k) | {g['f1_macro']:.4f} / "
        f"{g['cohen_kappa']:.4f} / {g['cross_entropy']:.4f} | `make demo` then `report_golden.md` |",
    ]


def programming_table(f: dict) -> list[str]:
    p, c = f["programming"], f["cosim"]["program"]
    none, stuck = p["none"], p["stuck_at"]
    rows, cols = none["cells"]
    clock = f["cost"]["clock_hz"]
    cyc = c["none"]["programming_cycles"]
    equal = lambda case: "all equal" if c[case]["all_equal"] else "DIFFER"  # noqa: E731
    timeout = " (timeout)" if stuck["pulses_per_cell_max"] == stuck["timeout_pulses"] else ""
    return [
        "| figure | no faults | 5 % stuck-at (`--set device.stuck_on_rate=0.025 --set "
        "device.stuck_off_rate=0.025`) |",
        "|---|---|---|",
        f"| pulses per cell, mean / max ({rows} x {cols} used cells) | {none['pulses_per_cell_mean']:.2f} / "
        f"{none['pulses_per_cell_max']} | {stuck['pulses_per_cell_mean']:.2f} / {stuck['pulses_per_cell_max']}"
        f"{timeout} |",
        f"| pulse events / failures | {num(none['pulse_events'])} / {none['failures']} | "
        f"{num(stuck['pulse_events'])} / {stuck['failures']} (exactly the stuck cells that cannot reach "
        "their target) |",
        f"| programming time | {num(cyc)} cycles ({cyc / clock * 1e3:.2f} ms at {clock / 1e6:g} MHz) | "
        f"{num(c['stuck_at']['programming_cycles'])} cycles |",
        f"| co-simulated pulses per cell, final states, PROG_* registers vs golden | {equal('none')} | "
        f"{equal('stuck_at')} |",
        f"| golden accuracy, full 10k test set: ideal targets / programmed | {pct(none['golden_ideal'])} / "
        f"{pct(none['golden_programmed'])} | {pct(stuck['golden_ideal'])} / {pct(stuck['golden_programmed'])} |",
    ]


def programming_mlp_table(f: dict) -> list[str]:
    """The MLP's golden replay through the array (`figures --only programming_mlp`)."""
    m = f["programming_mlp"]
    margin = "-" if m["write_margin_min_v"] is None else f"{m['write_margin_min_v']:.3f} V"
    return [
        "| chip | bias | cell | pulse events | pulses per cell, mean / max | timeouts | disturb events "
        "(>= 1e-3 level step) | cells disturbed out of their window | largest disturb (level steps) | "
        "smallest write margin | golden accuracy, full 10k: ideal targets / programmed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| mlp, {m['tiles']} tiles ({num(m['cells_used'])} used cells), {m['preset']} device | {m['bias']} | "
        f"{m['cell']} | {num(m['pulse_events'])} | {m['pulses_per_cell_mean']:.2f} / {m['pulses_per_cell_max']} | "
        f"{m['failures']} | {num(m['disturb_events'])} | {m['disturb_failures']} | "
        f"{m['disturb_change_steps_max']:g} | {margin} | {pct(m['golden_ideal'])} / "
        f"{pct(m['golden_programmed'])} |",
    ]


_SHAPES = {"slp": "slp (196-10, one tile)", "mlp": "mlp (196-256-10, relu, {tiles} tiles)",
           "mlp_binary": "mlp_binary (196-256-10, binary)"}


def mlp_accuracy(f: dict) -> list[str]:
    out = ["| config | software | golden | mult | command |", "|---|---|---|---|---|"]
    for name, a in f["accuracy"].items():
        golden = pct(a["golden"]) if name == "slp" else f"**{pct(a['golden'])}**"
        mult = "-" if a["mult"] is None else str(a["mult"])
        out.append(f"| {_SHAPES[name].format(tiles=a['tiles'])} | {pct(a['software'])} | {golden} | {mult} | "
                   f"`.venv/bin/xbarflow train configs/{name}.toml` |")
    return out


def mlp_wire(f: dict) -> list[str]:
    w = f["mlp_wire"]
    changed = sum(v["classes_differ"] for v in w.values())
    which = "none of which changes the class" if changed == 0 else f"{changed} of which change the class"
    return para(
        "The targets (>= 97 % and >= 94 %) are checked by `tests/flow/model/test_golden.py`. Training takes",
        "about 23 s (slp, L-BFGS) and 20 s (mlp, 12 epochs) on 2 unloaded cores, but these three",
        "configs come with reference weights (see [Reproducible figures](#reproducible-figures)), so",
        "`xbarflow train` trains only when a training input changes. Wire resistance costs nothing here",
        "(20 nS devices): the golden sums differ from training's ideal-crossbar sums on",
        f"{w['mlp']['sums_differ']} (mlp) and {w['mlp_binary']['sums_differ']} (mlp_binary) of",
        f"{num(w['mlp']['images'])} images, {which}.")


def _change(row: dict, base: str, same: str) -> str:
    label = f"`{row['change']}`" if row["change"] != "none" else "none"
    if row["config"] != base:
        label = f"{row['config']} {label}"
    if "crossbar.wire_r" in row["overrides"]:
        label += f" ({same})"
    elif "network.layers" in row["overrides"]:
        label += f" ({row['tiles']} tiles)"
    return label


def mlp_limits(f: dict) -> list[str]:
    notes = {(r.config, r.change): r.note for r in MLP_LIMITS}
    out = ["| change from configs/mlp.toml | golden | mult | note |", "|---|---|---|---|"]
    for row in f["mlp_limits"]:
        mult = "-" if row["mult"] is None else str(row["mult"])
        out.append(f"| {_change(row, 'mlp', 'same weights')} | {pct(row['golden'])} | {mult} |"
                   + note_cell(notes[(row['config'], row['change'])]))
    return out


def mlp_calibration(f: dict) -> list[str]:
    rows = f["mlp_calibration"]
    ps = ", ".join(f"{r['overrides']['train.calib_percentile']:g} %" for r in rows)
    accs = ", ".join(f"{100 * r['golden']:.2f}" for r in rows)
    return para(
        "So with the default analog scale the limits are the hidden size and, below ~6 ADC bits, the",
        "requantiser's gain range (mult / 2**shift <= 255/256 at shift 8): pick `requant_shift` so the",
        "calibrated mult lands well inside 1..255. The calibration percentile hardly matters",
        f"({ps}: {accs} %).")


_INSITU_COMMANDS = {
    "slp": "`.venv/bin/xbarflow train configs/slp.toml --set train.method=manhattan`",
    "mlp (defaults)": "`.venv/bin/xbarflow train configs/mlp.toml --set train.method=manhattan`",
    "mlp, batch 100": "`.venv/bin/xbarflow train configs/mlp.toml --set train.method=manhattan "
                      "--set train.manhattan_batch=100`",
    "mlp, batch 100, 10 epochs": "the same `--set train.manhattan_epochs=10`",
}


def insitu_table(f: dict) -> list[str]:
    rows = {r["change"]: r for r in f["insitu"]}
    exsitu = f["accuracy"]
    init = rows["mlp (defaults)"]["init_pulses"]
    out = [
        f"Full 10k MNIST test set (training pulses exclude the hidden layers' init pulses, {num(init)} "
        "for the",
        "mlp; \"devices pulsed\" counts the used devices that got at least one training pulse):",
        "",
        "| config | device | mapped | ex-situ golden | steps | training pulses (per step) | pulses per "
        "device mean / max, devices pulsed | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    best = max((r["device"] for r in f["insitu"] if r["config"] == "mlp"), default=None)
    for r in f["insitu"]:
        device = pct(r["device"])
        if r["config"] == "slp" or r["device"] == best:
            device = f"**{device}**"
        mean = r["pulses_per_device_mean"]
        mean_s = f"{mean:.0f}" if mean >= 10 else f"{mean:.1f}"
        out.append(
            f"| {r['change']} | {device} | {pct(r['mapped'])} | {pct(exsitu[r['config']]['golden'])} | "
            f"{num(r['steps'])} | {num(r['pulses_total'])} ({r['pulses_per_step']:.0f}) | {mean_s} / "
            f"{num(r['pulses_per_device_max'])}, {100 * r['devices_pulsed_fraction']:.0f} % | "
            f"{_INSITU_COMMANDS[r['change']]} |")
    return out


def _insitu_note(row: dict, f: dict) -> str:
    spec = {(r.config, r.change): r for r in INSITU_LIMITS}[(row["config"], row["change"])]
    rows = {(r["config"], r["change"]): r for r in f["insitu_limits"]}
    slp_none = rows.get(("slp", "none"), row)
    mlp_default = next(r for r in f["insitu"] if r["change"] == "mlp (defaults)")
    values = {
        **row,
        "spread": abs(100 * (row["device"] - slp_none["device"])),
        "default_v_set": f["device"]["slp"]["v_set"],
        "default_set_step_levels": f["device"]["slp"]["set_step_levels"],
        "exsitu_stuck": 100 * f["programming"]["stuck_at"]["golden_programmed"],
        "gain": 100 * (row["device"] - mlp_default["device"]),
        "mlp_v_reset": f["device"]["mlp"]["v_reset"],
    }
    return spec.note.format(**values)


def insitu_limits(f: dict) -> list[str]:
    ins = {r["change"]: r for r in f["insitu"]}
    exsitu = f["accuracy"]
    best_mlp = max(r["device"] for r in f["insitu"] if r["config"] == "mlp")
    out = [
        f"In situ is {points(exsitu['slp']['golden'] - ins['slp']['device'])} points (slp) and "
        f"{points(exsitu['mlp']['golden'] - best_mlp)} points (mlp) below ex-situ training. What limits "
        "it (the",
        "slp command, or the mlp one where it says so, plus `--set KEY=VALUE ...`):",
        "",
        "| change | device | mapped | note |",
        "|---|---|---|---|",
    ]
    for row in f["insitu_limits"]:
        label = _change(row, "slp", "same devices").replace("mlp `", "mlp: `")
        out.append(f"| {label} | {pct(row['device'])} | {pct(row['mapped'])} |" + note_cell(_insitu_note(row, f)))
    return out


def insitu_why(f: dict) -> list[str]:
    dev = f["device"]["slp"]
    ins = {r["change"]: r for r in f["insitu"]}
    mlp = [r for r in f["insitu"] if r["config"] == "mlp"]
    pulsed = sorted(100 * r["devices_pulsed_fraction"] for r in mlp)
    rounding = sorted(100 * (r["device"] - r["mapped"]) for r in f["insitu"])
    return para(
        "The limits are the pulse granularity (every selected weight moves by the same step, about",
        f"{dev['set_step_levels']:.1f} level at the default {dev['v_set']:g} V, whatever its gradient:",
        "no learning rate to anneal, only finer pulses and more steps help), the state-dependent,",
        "nonlinear steps (set moves the state by k_set (1 - lambda), reset by k_reset lambda: with",
        "equal rates an up and a down update move W by k (1 - W) and -k (1 + W), a built-in pull of",
        f"every weight towards 0; with the slp's weak {dev['v_reset']:g} V reset,",
        f"{dev['set_over_reset_rate']:.0f}x slower than its set, the steps shrink instead as both",
        f"devices of a pair drift up, mean lambda {ins['slp']['state_mean']:.2f} after training) and,",
        "for the mlp, the sparse updates (the threshold relative to the layer's largest gradient keeps",
        f"picking the same few hundred pairs: only {pulsed[0]:.0f}-{pulsed[-1]:.0f} % of the devices",
        "ever get a training pulse). Device variation costs nothing measurable and stuck-at faults far",
        "less than ex situ, since training sees the devices it has. Rounding the device state to 32",
        f"levels costs {rounding[0]:.1f}-{rounding[-1]:.1f} point.")


def spice_item(f: dict) -> list[str]:
    s = f["spice"]
    tile, arrays = s["tile"], s["arrays"]
    drops = sorted(100 * a["ir_drop"] for a in arrays)
    worst = max(a["max_rel_error"] for a in arrays)
    return para(
        "`spice` (`flow/analysis/spice.py`) writes an ngspice deck of the tile with the mapped conductances and",
        "exactly the wire network of `analog_models/crossbar.py` (row and column segments, row",
        "partitions, TIA virtual grounds as 0 V sources), runs `.op` and compares the column currents",
        f"with the model: they agree to {tile['max_rel_error']:.0e} relative ({tile['rows']} x",
        f"{tile['cols']} default tile, {tile['v_read']:g} V on every row; random 10-100 uS arrays where",
        f"1-5 ohm wires move the currents by {drops[0]:.1f}-{drops[-1]:.1f} %: {worst:.0e}).",
        indent="  ", first="- ")


def cost_table(f: dict) -> list[str]:
    c = f["cost"]
    return markdown_table([tuple(r) for r in c["rows"]] + synth_rows(f["synth"], c["clock_hz"]))


def cost_note(f: dict) -> list[str]:
    c = f["cost"]
    return para(
        "With the paper's 20 nS devices the array itself is almost free",
        f"({c['crossbar_read_fj']:.0f} fJ); the periphery (DACs, TIAs, ADCs, digital) sets the",
        f"~{c['tops_per_w']:.0f} TOPS/W, above the digital reference chips and in the range the paper",
        "gives for analog-AI chips. Throughput is bound by the host link (SPI at clk/4).", indent="  ")


def sweep_item(f: dict) -> list[str]:
    s = f["sweep"]
    values = ",".join(str(r["value"]) for r in s["rows"])
    accs = ", ".join(pct(r["golden_accuracy"]) for r in s["rows"])
    energy = ", ".join(f"{r['energy_pj']:.0f}" for r in s["rows"])
    return para(
        "`sweep` (`flow/analysis/sweep.py`) evaluates golden accuracy on the full test set and the cost model",
        "over the cartesian product of the parameters (a process pool, `--jobs`, or a Dask cluster,",
        "`--dask ADDRESS`, through the same `flow/sim/executor.py` as `sim`), writing `sweep.csv`,",
        f"`sweep.json` and `sweep.png`. E.g. `--param {s['param']}={values}` gives {accs} at",
        f"{energy} pJ per inference.", indent="  ", first="- ")


def faults_table(f: dict) -> list[str]:
    p = f["programming"]
    out = ["| fault | failures | pulse events | golden accuracy, ideal targets / programmed |",
           "|---|---|---|---|"]
    for case, label, _ in PROGRAMMING_CASES:
        r = p[case]
        out.append(f"| {label} | {num(r['failures'])} | {num(r['pulse_events'])} | "
                   f"{pct(r['golden_ideal'])} / {pct(r['golden_programmed'])} |")
    return out


def faults_cosim(f: dict) -> list[str]:
    c = f["cosim"]["program"]["dead_partition_3"]
    same = "equal to" if c["all_equal"] else "DIFFERENT from"
    return para(
        "A dead partition costs only its own cells. With the ideal write the other partitions",
        "receive exactly the pulses and end in exactly the states of a healthy chip (the write-ack",
        "only holds each address longer); through the array (the default) the dead partition's",
        "extra events shift the event index that keys every later c2c draw, so the other partitions",
        "take other, equally likely draws and still all converge. Co-simulated (Verilator, SPI, `tests/flow/model/test_programming_faults.py`),",
        "the chip with partition 3",
        f"dead programs itself in {num(c['programming_cycles'])} cycles with PROG_FAILURES =",
        f"{c['failures']} and {num(c['pulse_events'])} pulse events, every cell's pulse count and",
        f"final state {same} the golden replay, and the inference after it equal to the golden chip",
        "on the damaged array.")


_SWEEP = "`.venv/bin/xbarflow sweep"


def seconds(t: float) -> str:
    """A read time as typed in a --param: 100, 10000, 1e6."""
    return f"{t:.0e}".replace("e+0", "e").replace("e+", "e") if t >= 1e5 else f"{t:g}"


def qmm_table(f: dict) -> list[str]:
    """Linear cells vs QMM memdiodes (issue #14), with the commands that give each row."""
    q = f["qmm"]
    mlp = {r["change"]: r["golden"] for r in f.get("qmm_mlp", [])}
    mlp_cmd = "--config configs/mlp.toml "
    v_reads = ",".join(f"{r['v_read']:g}" for r in q["v_read_rows"])
    sigmas = ",".join(f"{r['read_noise_sigma']:g}" for r in q["noise_rows"])
    times = ",".join(seconds(r["read_time_s"]) for r in q["drift_rows"])
    d = q["drift"]
    drift_set = (f"--param device.drift_nu={d['drift_nu']:g} "
                 f"--param device.drift_nu_sigma={d['drift_nu_sigma']:g}")
    out = ["| golden accuracy, full 10k test set, reference weights | linear cells | QMM memdiodes "
           "| command |", "|---|---|---|---|",
           f"| slp as shipped ({q['v_read']:g} V, 1 ohm wires) | {pct(q['slp']['linear'])} "
           f"| **{pct(q['slp']['qmm'])}** (paper's SPICE SLP: ~{100 * q['paper_spice_slp']:.0f} %) "
           "| `.venv/bin/xbarflow demo --set device.read_model=qmm` |"]
    if mlp:
        out.append(f"| mlp as shipped | {pct(mlp['linear'])} | **{pct(mlp['qmm'])}** "
                   f"| `.venv/bin/xbarflow demo {mlp_cmd}--set device.read_model=qmm` |")
    for k, r in enumerate(q["v_read_rows"]):
        cmd = (f"{_SWEEP} --param device.read_model=linear,qmm --param crossbar.v_read={v_reads}`"
               if k == 0 else "the same sweep")
        out.append(f"| slp, `crossbar.v_read={r['v_read']:g}` | {pct(r['linear'])} | {pct(r['qmm'])} "
                   f"| {cmd} |")
    for k, r in enumerate(q["noise_rows"]):
        cmd = (f"{_SWEEP} --param device.read_model=qmm --param device.read_noise_sigma={sigmas}`"
               if k == 0 else "the same sweep")
        out.append(f"| slp, read noise `device.read_noise_sigma={r['read_noise_sigma']:g}` | - (qmm only) "
                   f"| {pct(r['qmm'])} | {cmd} |")
    for k, r in enumerate(q["drift_rows"]):
        cmd = (f"{_SWEEP} --param device.read_model=linear,qmm {drift_set} "
               f"--param device.read_time_s={times}`" if k == 0 else "the same sweep")
        out.append(f"| slp, drift read at `device.read_time_s={seconds(r['read_time_s'])}` | {pct(r['linear'])} "
                   f"| {pct(r['qmm'])} | {cmd} |")
    for r in f.get("qmm_mlp", []):
        if r["change"] in ("linear", "qmm"):
            continue
        sets = " ".join(f"--set {k}={seconds(v) if k == 'device.read_time_s' else v}"
                        for k, v in r["overrides"].items())
        out.append(f"| mlp, {r['change'].removeprefix('qmm, ')} | - | {pct(r['golden'])} "
                   f"| `.venv/bin/xbarflow demo {mlp_cmd}{sets}` |")
    return out


def qmm_note(f: dict) -> list[str]:
    q = f["qmm"]
    rows = {r["v_read"]: r for r in q["v_read_rows"]}
    top = q["v_read_rows"][-1]
    gap = max(abs(r["qmm"] - r["linear"]) for r in q["v_read_rows"])
    drift = q["drift"]
    last = q["drift_rows"][-1]
    return para(
        f"The cells are the default preset `{q['preset']}` (alpha {q['alpha'][0]:g} / "
        f"{q['alpha'][1]:g} /V at HRS / LRS, beta {q['beta']:g}, configs/devices/presets.toml), I0",
        "fitted so that every level reads its mapped conductance at V_read: the nonlinearity then",
        "only changes the partial inputs, and costs at most",
        f"{points(gap)} point against linear cells at any V_read here. The drop at",
        f"{top['v_read']:g} V ({pct(rows[top['v_read']]['linear'])} linear, {pct(top['qmm'])} qmm) is",
        f"the ADC range (the currents are {top['v_read'] / q['v_read']:g}x those at {q['v_read']:g} V and clip",
        "at full scale, for both models), not the",
        f"device. Drift: nu = {drift['drift_nu']:g} with a {100 * drift['drift_nu_sigma']:.0f} % per-cell",
        f"spread (PCM-like, not a measured default; off as shipped), t0 = {drift['t0_s']:g} s; at",
        f"{seconds(last['read_time_s'])} s (conductances at ~{(last['read_time_s'] / drift['t0_s']) ** -drift['drift_nu']:.2f}",
        "of their programmed values, spread apart by the per-cell nu) drift costs",
        f"{points(q['slp']['qmm'] - last['qmm'])} points. Read noise draws per read and cell (keyed, so the co-simulation draws the same).")


BLOCKS: dict[str, Callable[[dict], list[str]]] = {
    "demo-output": demo_output,
    "figures-table": figures_table,
    "programming-table": programming_table,
    "programming-mlp": programming_mlp_table,
    "mlp-accuracy": mlp_accuracy,
    "mlp-wire": mlp_wire,
    "mlp-limits": mlp_limits,
    "mlp-calibration": mlp_calibration,
    "insitu-table": insitu_table,
    "insitu-limits": insitu_limits,
    "insitu-why": insitu_why,
    "spice": spice_item,
    "qmm-table": qmm_table,
    "qmm-note": qmm_note,
    "cost-table": cost_table,
    "cost-note": cost_note,
    "sweep": sweep_item,
    "faults-table": faults_table,
    "faults-cosim": faults_cosim,
}


# -- rendering ----------------------------------------------------------------------------------

def _blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """(name, index of the opening marker, index of the closing marker) of every block."""
    found, open_at = [], None
    for i, line in enumerate(lines):
        m = _MARK.match(line.strip())
        if not m:
            continue
        closing, name = m.group(1) == "/", m.group(2)
        if name not in BLOCKS:
            raise ReadmeError(f"line {i + 1}: unknown figures block '{name}'")
        if not closing:
            if open_at is not None:
                raise ReadmeError(f"line {i + 1}: block '{name}' opens inside '{open_at[0]}'")
            open_at = (name, i)
        else:
            if open_at is None or open_at[0] != name:
                raise ReadmeError(f"line {i + 1}: '/figures:{name}' closes no open block")
            found.append((name, open_at[1], i))
            open_at = None
    if open_at is not None:
        raise ReadmeError(f"line {open_at[1] + 1}: block '{open_at[0]}' is never closed")
    names = [b[0] for b in found]
    missing = [n for n in BLOCKS if n not in names]
    twice = sorted({n for n in names if names.count(n) > 1})
    if missing or twice:
        raise ReadmeError(f"figures blocks missing: {', '.join(missing) or '-'}; twice: {', '.join(twice) or '-'}")
    return found


def render_readme(text: str, stored: dict[str, Any]) -> str:
    """`text` with every figures block rewritten from `stored` (the figures JSON)."""
    figures = stored["figures"]
    lines = text.split("\n")
    out, last = [], 0
    for name, start, end in _blocks(lines):
        out += lines[last:start + 1]
        out += BLOCKS[name](figures)
        last = end
    out += lines[last:]
    return "\n".join(out)


def check_readme(text: str, stored: dict[str, Any]) -> list[str]:
    """Problems: blocks whose text is not what `stored` renders (empty list: they agree)."""
    try:
        rendered = render_readme(text, stored)
    except (ReadmeError, KeyError) as exc:
        return [f"README figures: {exc}"]
    if rendered == text:
        return []
    have, want = text.split("\n"), rendered.split("\n")
    problems = []
    for name, start, end in _blocks(have):
        new_start = next(s for n, s, _ in _blocks(want) if n == name)
        new_end = next(e for n, _, e in _blocks(want) if n == name)
        got, expected = have[start + 1:end], want[new_start + 1:new_end]
        if got != expected:
            diff = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            problems.append(f"README block '{name}' differs from figures.json at its line {diff + 1}: "
                            f"README {got[diff] if diff < len(got) else '<end>'!r}, figures "
                            f"{expected[diff] if diff < len(expected) else '<end>'!r}")
    return problems
