"""Cost model (flow/analysis/cost.py): positive figures, scaling with array size and ADC bits, the
controller's phase lengths against a co-simulation, the fmax wrapper, and synthesis of a small
chip with Yosys and nextpnr-ice40 (the `cost` command: tests/flow/commands/test_cost.py)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from xbarflow.flow.analysis import cost
from xbarflow.flow.core.paths import WEIGHTS as WEIGHTS_DIR
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim.runner import build, run
from xbarflow.flow.model.train import load_or_train


def _report(cfg, dataset, images=200):
    weights = load_or_train(cfg, dataset, WEIGHTS_DIR)
    return cost.evaluate(cfg, weights, to_dac_codes(dataset.x_test[:images], cfg))


def test_all_figures_positive(cfg, dataset):
    r = _report(cfg, dataset)
    assert r.ops == 2 * cfg.rows * cfg.outputs
    assert all(v > 0 for v in r.energy_j.values()), r.energy_j
    assert all(v > 0 for v in r.area_um2.values()), r.area_um2
    assert all(v > 0 for v in r.cycles.values()), r.cycles
    assert r.latency_s > 0 and r.tops > 0 and r.tops_per_w > 0 and r.host_io_s > 0
    assert r.ir_drop > 0, "wire resistance changes the column currents (if only slightly)"
    assert r.energy_total_j == pytest.approx(sum(r.energy_j.values()))
    assert r.latency_s == pytest.approx(sum(r.cycles.values()) / cfg.clock.freq_hz)
    assert r.tops_per_w == pytest.approx(r.ops / r.energy_total_j / 1e12)
    table = "\n".join(r.table())
    for needle in ("TOPS/W", "NVIDIA T4 0.32", "TPU v1 2.3", "ISAAC 0.63", "PUMA 0.42", "energy per inference"):
        assert needle in table


def test_crossbar_read_energy_is_the_driven_power(cfg, dataset):
    """At wire_r = 0 the read power is exactly sum_ij V_i^2 G_ij, computed here independently."""
    ideal = cfg.replace(**{"crossbar.wire_r": 0.0})
    weights = load_or_train(ideal, dataset, WEIGHTS_DIR)
    codes = to_dac_codes(dataset.x_test[:50], ideal)
    r = cost.evaluate(ideal, weights, codes)
    g = GoldenChip.from_weights(ideal, weights).array.conductance
    v = codes * (ideal.crossbar.v_read / ideal.quant.dac_max)
    power = np.mean([sum(v[k, i] ** 2 * g[i, j] for i in range(g.shape[0]) for j in range(g.shape[1]))
                     for k in range(3)])
    power3 = cost.evaluate(ideal, weights, codes[:3]).energy_j["crossbar read"] / r.read_s
    assert power3 == pytest.approx(power, rel=1e-12)
    # with wires, slightly less current flows than into an ideal array
    assert _report(cfg, dataset, 50).energy_j["crossbar read"] < r.energy_j["crossbar read"]


def test_energy_and_area_scale_with_array_size(cfg, dataset):
    def sized(n):
        return cfg.replace(**{"network.input_size": n, "crossbar.tile_rows": n * n})
    small, big = _report(sized(8), dataset), _report(cfg, dataset)
    ratio = big.ops / small.ops
    assert ratio == pytest.approx(196 / 64)
    assert big.energy_j["row DACs"] / small.energy_j["row DACs"] == pytest.approx(196 / 64)
    assert big.area_um2["crossbar cells"] / small.area_um2["crossbar cells"] == pytest.approx(196 / 64)
    assert big.area_um2["row DACs"] / small.area_um2["row DACs"] == pytest.approx(196 / 64)
    assert big.energy_j["crossbar read"] > small.energy_j["crossbar read"]
    assert big.energy_total_j > small.energy_total_j
    assert big.area_total_um2 > small.area_total_um2
    assert big.area_um2["ADCs"] == small.area_um2["ADCs"], "same outputs, same ADCs"


def test_energy_area_latency_scale_with_adc_bits(cfg, dataset):
    reps = {b: _report(cfg.replace(**{"adc.bits": b}), dataset) for b in (4, 6, 8)}
    for lo, hi in ((4, 6), (6, 8)):
        assert reps[hi].energy_j["ADCs"] / reps[lo].energy_j["ADCs"] == pytest.approx(4.0)
        assert reps[hi].area_um2["ADCs"] / reps[lo].area_um2["ADCs"] == pytest.approx(4.0)
        assert sum(reps[hi].cycles.values()) - sum(reps[lo].cycles.values()) == 2, "SAR: one cycle per bit"
        assert reps[hi].energy_total_j > reps[lo].energy_total_j
        assert reps[hi].tops_per_w < reps[lo].tops_per_w
    # crossbar and DAC energy do not depend on the ADC
    assert reps[4].energy_j["row DACs"] == reps[8].energy_j["row DACs"]


@pytest.mark.parametrize("overrides", [{}, {"adc.bits": 6, "sensing.bandwidth_hz": 2.0e6}])
def test_phase_model_matches_cosimulation(cfg, dataset, overrides, tmp_path):
    c = cfg.replace(**overrides)
    rng = np.random.default_rng(5)
    chip = GoldenChip.from_weights(c, rng.normal(size=(c.rows, c.outputs)))
    idx = np.array([0])
    result = run(build(c, "icarus"), chip.array.conductance, dataset.x_test[idx], dataset.y_test[idx],
                 idx, tmp_path, timeout_s=600)
    model = cost.phase_cycles(c)
    for phase in ("drive", "convert", "argmax"):
        assert int(result.cycles[phase][0]) == model[phase], phase
    assert int(result.cycles["total"][0]) == sum(model.values())


def test_fmax_wrapper_keeps_every_port(cfg, tmp_path):
    from xbarflow.flow.sim.verilog import generate
    rtl = generate(cfg, tmp_path)
    sidecar = json.loads(rtl.sidecar.read_text())
    text = cost.fmax_wrapper(sidecar)
    for p in sidecar["ports"]:
        assert re.search(rf"\.{p['name']}\(", text), p["name"]
    wide = [p for p in sidecar["ports"] if p["width"] > 1]
    assert text.count("_sr <=") == len(wide)


#: 32-bit registers of the register map (hdl/protocol.py `Reg`) that hold state of their own:
#: the counters (each counts its own events and is read back whole) and the two RW registers.
#: Synthesis cannot drop a bit of them, so the chip has at least 32 flip-flops per register.
STATEFUL_REGS = ("CYCLES_TOTAL", "CYCLES_DRIVE", "CYCLES_CONVERT", "CYCLES_ARGMAX", "INFERENCES",
                 "FRAMES_OK", "ERR_CRC", "ERR_CMD", "ERR_LEN", "ERR_TIMEOUT", "PROG_PULSES",
                 "PROG_FAILURES", "PROG_CYCLES", "PROG_STEPS", "SCRATCH", "REQUANT_MULT")
COUNTERS = 14          # the first 14: each a 32-bit incrementer, a carry chain of >= 30 SB_CARRY
ICE40_HX8K = {"logic_cells": 7680, "bram": 32}


def test_synthesis_of_a_small_chip(cfg, tmp_path):
    """Yosys and nextpnr-ice40 run for real (`make setup` installs them; without them this
    fails with the install command): the area is plausible for a 16-row chip and the fmax is
    the one nextpnr reports after routing."""
    from xbarflow.hdl.protocol import Reg

    missing = cost.synth_tools_missing()
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run 'make setup' as root, or "
                    "'sudo apt-get install yosys nextpnr-ice40 fpga-icestorm'")
    small = cfg.replace(**{"network.input_size": 4, "crossbar.tile_rows": 16, "crossbar.partitions": 2})
    s = cost.synthesize(small, tmp_path)
    assert all(hasattr(Reg, name) for name in STATEFUL_REGS)
    assert s["dff"] >= 32 * len(STATEFUL_REGS), s
    assert s["carry"] >= 30 * COUNTERS, s
    assert s["lut4"] > s["dff"] / 2, s       # every counter bit and register bit needs logic
    assert 1 <= s["bram"] <= ICE40_HX8K["bram"], s   # targets, frame staging, the two FIFOs
    assert max(s["lut4"], s["dff"]) <= ICE40_HX8K["logic_cells"], "it fits the HX8K it was placed on"
    # the figures are the tools' own: the cell counts of Yosys' `stat`, nextpnr's last fmax
    folder = Path(s["folder"])
    cells = {m[0]: int(m[1]) for m in re.findall(r"^\s*(SB_\w+)\s+(\d+)\s*$",
                                                 (folder / "area.txt").read_text(), re.M)}
    assert (s["lut4"], s["carry"], s["bram"]) == (cells["SB_LUT4"], cells["SB_CARRY"],
                                                  cells.get("SB_RAM40_4K", 0))
    assert s["dff"] == sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
    fmax = re.findall(r"Max frequency for clock +'[^']+': ([0-9.]+) MHz \((?:PASS|FAIL)",
                      (folder / "nextpnr.log").read_text())
    assert len(fmax) >= 2, "nextpnr reports fmax after placement and after routing"
    assert s["fmax_mhz"] == float(fmax[-1]) and 1.0 < s["fmax_mhz"] < 1000.0, fmax
    assert cost.synthesize(small, tmp_path) == s, "cached by the Verilog's hash"


def test_cell_area_follows_the_cell_type():
    from xbarflow.flow.analysis.cost import cell_area_um2
    from xbarflow.flow.core.config import ChipConfig

    cfg = ChipConfig()
    assert cell_area_um2(cfg) == cfg.cost.cell_area_1r_um2 == 0.0058      # 4 F**2, F = 38 nm
    assert cell_area_um2(cfg.replace(**{"crossbar.cell": "1T1R"})) == cfg.cost.cell_area_um2 == 0.05
    assert cell_area_um2(cfg.replace(**{"crossbar.cell": "1S1R"})) == cfg.cost.cell_area_1s1r_um2
    assert abs(4 * 0.038 ** 2 - cfg.cost.cell_area_1r_um2) < 1e-4
