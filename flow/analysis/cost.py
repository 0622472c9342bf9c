"""Energy, latency, throughput and area per inference: `xbarflow cost --config C [--synth]`.

Energy per inference, summed over the chip's tiles (`GoldenChip.tiles`), with the figures of
merit of the config's `[cost]` section:

* crossbar read: the power the row drivers deliver into the array, P = sum_i V_i I_i, averaged
  over `cost.images` test images (their DAC voltages; hidden layers get the golden model's
  activations), times the read time (DRIVE + CONVERT: the DACs hold the rows from vmm_start
  until the ADC has its sample); `read_power`. Linear cells: the row current taken as
  I_i = V_i * sum_j M_ij (M = the tile's effective matrix from the exact wire-network solve,
  `AnalogArray.matrix`): exact for wire_r = 0, and exact in total for equal row voltages (then
  P = V * sum of column currents, by KCL); otherwise it neglects the wires' own dissipation
  (first order in wire_r * G). QMM cells (`device.read_model = "qmm"`): I_i is the sum of the
  row's cell currents from the nonlinear solve of each image, exact;
* row DACs: one conversion per row per tile, `dac_fom_j * 2**dac_bits` each;
* TIAs: `tia_power_w` per differential TIA during the read time;
* ADCs: one conversion per output per tile, Walden FoM `adc_fom_j * 2**bits` each;
* digital periphery: `digital_j_per_cycle` per clock cycle of the inference.

Latency: the controller's phase lengths in clock cycles (`phase_cycles`, checked against the
cycle counters of a co-simulation in tests/flow/analysis/test_cost.py) times the clock period; DRIVE is the TIA
settling time and CONVERT the ADC conversion, rounded up to whole cycles exactly as the analog
bridge waits. A co-simulation report (`--report run/report.json`) can supply measured counts.
Host I/O (SPI or UART transfer of the input and the result) is estimated separately.

Throughput: ops = 2 * sum over layers of n_in * n_out (a MAC is two ops) per inference;
TOPS = ops / latency, TOPS/W = ops / energy, printed next to the reference chips of the paper.

Layered networks (conv, pool, flatten, dense): the same tiles serve every output position, so
every per-VMM figure above counts each VMM event (positions x tiles of each weight layer,
`ChipConfig.events_per_image`): the crossbar read power is averaged over every window a tile
is driven with, DAC and ADC conversions and TIA time are per event, and ops = 2 * sum over
weight layers of positions * n_in * n_out. The feature-map memory adds its area
(feature_map_codes * dac_bits bits at `cost.fmap_bit_area_um2`). The phase model of a layered
controller (`phase_cycles`) is the FSM of `xbarflow.hdl.layered_controller` (a window loaded
one code per clock, sliding on along each output row); tests/cosim/test_inference_cnn.py checks it against
the chip's cycle counters.

Area: analog from the figures of merit (cells, DACs, TIAs, ADCs: SAR arrays scale with 2**bits);
digital from synthesising the generated Verilog with Yosys for an iCE40 (LUT4, DFF, BRAM) and
its fmax from nextpnr-ice40 (`--synth`, tools from `make setup` or `make synth-tools`; the
command skips them with a one-line message when absent, the test suite fails). nextpnr needs every port on a pin, so for the fmax run the wide analog
buses go through a wrapper (a shift register per wide input, a load/shift register per wide
output: one LUT level, so it does not set the critical path); the area comes from the bare chip.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xbarflow.analog_models.crossbar import distortion
from xbarflow.analog_models.sensing import settling_cycles
from xbarflow.hdl import protocol

from ..core.errors import XbarflowError
from ..model.conv import vmm_events
from ..model.golden import GoldenChip
from ..sim.verilog import generate

__all__ = [
    "CostError", "CostReport", "ICE40_DEVICE", "REFERENCE_CHIPS", "SYNTH_HINT", "SYNTH_TOOLS",
    "SynthUnavailable", "cell_area_um2", "evaluate", "fmax_wrapper", "host_io_cycles",
    "layered_phase_cycles", "markdown_table", "phase_cycles", "synth_rows", "synth_tools_missing",
    "synthesize",
]

#: TOPS/W of the reference chips quoted in the paper (shared/PAPER.md).
REFERENCE_CHIPS: dict[str, float] = {"NVIDIA T4": 0.32, "TPU v1": 2.3, "ISAAC": 0.63, "PUMA": 0.42}
SYNTH_TOOLS = ("yosys", "nextpnr-ice40")
SYNTH_HINT = "install them with 'make synth-tools' (Debian: apt-get install yosys nextpnr-ice40 fpga-icestorm)"
ICE40_DEVICE = ("--hx8k", "--package", "ct256")   # 7680 logic cells, 206 I/O


class CostError(XbarflowError, ValueError):
    """Unusable input for the cost model; one line."""


# -- latency ---------------------------------------------------------------------------------------

def phase_cycles(cfg) -> dict[str, int]:
    """Clock cycles of each controller phase for one inference (hdl/controller.py):

    LOAD 1 (latch the input buffer, pulse vmm_start); DRIVE = TIA settling cycles (the analog
    bridge answers vmm_done that many cycles after vmm_start); CONVERT = conversion cycles + 1
    (adc_start is raised on the cycle that sees vmm_done); ARGMAX = outputs + 2 (start, one
    code per cycle, done); DONE 1. Per tile for DRIVE and CONVERT (one VMM event per tile);
    ACCUMULATE, NEXT_TILE and ACTIVATE as counted below.
    """
    if cfg.network.layered:
        return layered_phase_cycles(cfg)
    tiles = len(cfg.tiles)
    phases = {
        "load": tiles,
        "drive": tiles * settling_cycles(cfg),
        # Each tile converts only the groups its own outputs need (the last MLP tile: one).
        "convert": sum(groups * cfg.adc.conversion_cycles + 1 for groups in cfg.tile_adc_groups),
        # One sum per clock for every tile output, a NEXT_TILE step per tile, and one
        # activation per hidden neuron.
        "accumulate": sum(t.outputs for t in cfg.tiles),
        "next_tile": tiles,
        "activate": sum(n_out for _, n_out in cfg.network.layer_shapes[:-1]),
        "argmax": cfg.outputs + 2,
        "done": 1,
    }
    return {name: n for name, n in phases.items() if n}   # no ACTIVATE phase without hidden layers


def layered_phase_cycles(cfg) -> dict[str, int]:
    """Clock cycles of each phase of a layered network's inference, as
    `xbarflow.hdl.layered_controller.LayeredController` runs it (CNN_SPEC.md, amendments of
    cnn-rtl): START_STEP per conv, pool and dense stage and NEXT_STEP between them; per output
    position of a weight layer LOAD_WINDOW its window's rows one code per clock (K*K*C_in, or
    a dense layer's inputs) + 1 for the last read, except that a conv with S < K loads only
    the S new columns (K*S*C_in codes) of every window after the first of an output row, plus
    1 for SLIDE_WINDOW; per VMM event (`vmm_events`) LOAD 1, DRIVE,
    CONVERT and ACCUMULATE as for a dense tile and NEXT_TILE 1; per position of a hidden weight
    layer ACTIVATE C_out writes and NEXT_POSITION 1; per pool stage, for each output position
    C*size^2 reads + 1 + C writes, and 2 (start, finish); ARGMAX outputs + 2, DONE 1."""
    tiles, groups = cfg.tiles, cfg.tile_adc_groups
    events = vmm_events(cfg)
    net = cfg.network
    weight = net.weight_stages
    steps = [s for s in net.stages if s.kind != "flatten"]

    def window_rows(s):
        return s.kernel * s.kernel * s.in_shape[2] if s.kind == "conv" else math.prod(s.in_shape)

    def window_loads(s):
        """LOAD_WINDOW (+ LOAD_WINDOW_END, SLIDE_WINDOW) clocks of a weight stage."""
        if s.kind == "conv" and s.stride < s.kernel:   # rows slide on: S new columns
            new = s.kernel * s.stride * s.in_shape[2]
            return s.out_shape[0] * (window_rows(s) + 1 + (s.out_shape[1] - 1) * (new + 2))
        return s.positions * (window_rows(s) + 1)
    phases = {
        "start_step": len(steps),
        "load_window": sum(window_loads(s) for s in weight),
        "load": len(events),
        "drive": len(events) * settling_cycles(cfg),
        "convert": sum(groups[e.tile] * cfg.adc.conversion_cycles + 1 for e in events),
        "accumulate": sum(tiles[e.tile].outputs for e in events),
        "next_tile": len(events),
        "activate": sum(s.positions * s.channels_out for s in weight[:-1]),
        "next_position": sum(s.positions for s in weight[:-1]),
        "pool": sum(s.out_shape[0] * s.out_shape[1] * (s.out_shape[2] * (s.kernel * s.kernel + 1) + 1) + 2
                    for s in net.stages if s.kind == "pool"),
        "next_step": len(steps) - 1,
        "argmax": cfg.outputs + 2,
        "done": 1,
    }
    return {name: n for name, n in phases.items() if n}


def host_io_cycles(cfg) -> int:
    """Clock cycles to move one image in and the class out over the host link (estimate).

    Bytes on the wire: the WRITE_BUF request frames (6 bytes of framing per <= 255 payload
    bytes) and their 4-byte ACKs, START and its ACK, one READ_RESULT and its 6-byte answer.
    SPI: 8 * spi_clk_div clocks per byte; UART: 10 bits * uart_divider per byte.
    """
    chunks = math.ceil(cfg.input_bytes / protocol.MAX_PAYLOAD)
    wire = cfg.input_bytes + chunks * (6 + 4) + (6 + 4) + (6 + 6)
    return wire * cfg.host.byte_cycles


# -- the model -------------------------------------------------------------------------------------

@dataclass
class CostReport:
    config: str
    digest: str
    ops: int                          # per inference
    energy_j: dict[str, float]        # per inference, by component
    cycles: dict[str, int]            # per inference, by controller phase
    clock_hz: float
    read_s: float                     # time the rows are driven, longest tile
    host_io_s: float
    area_um2: dict[str, float]        # analog, by component
    ir_drop: float                    # largest relative column-current change from the wires
    cycles_source: str = "controller phase model"
    synth: dict | None = None
    synth_note: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def energy_total_j(self) -> float:
        return float(sum(self.energy_j.values()))

    @property
    def latency_s(self) -> float:
        return sum(self.cycles.values()) / self.clock_hz

    @property
    def tops(self) -> float:
        return self.ops / self.latency_s / 1e12

    @property
    def tops_per_w(self) -> float:
        return self.ops / self.energy_total_j / 1e12

    @property
    def area_total_um2(self) -> float:
        return float(sum(self.area_um2.values()))

    def summary(self) -> dict:
        """Flat numbers, e.g. for a sweep's CSV."""
        out = {"energy_pj": self.energy_total_j * 1e12, "latency_ns": self.latency_s * 1e9,
               "cycles": sum(self.cycles.values()), "tops": self.tops, "tops_per_w": self.tops_per_w,
               "analog_area_um2": self.area_total_um2, "ir_drop": self.ir_drop,
               "host_io_us": self.host_io_s * 1e6}
        out.update({f"energy_{k}_pj": v * 1e12 for k, v in self.energy_j.items()})
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(energy_total_j=self.energy_total_j, latency_s=self.latency_s, tops=self.tops,
                 tops_per_w=self.tops_per_w, area_total_um2=self.area_total_um2)
        return d

    def table_rows(self) -> list[tuple[str, str]]:
        """(quantity, value) of every figure, as the README's table shows them."""
        e, a = self.energy_j, self.area_um2
        rows = [("ops per inference (2 x MACs)", f"{self.ops:,}")]
        if "vmm_events" in self.meta:   # a layered network: each tile serves many positions
            rows += [("VMM events per inference (positions x tiles)", f"{self.meta['vmm_events']:,}")]
        rows += [(f"energy: {k}", _eng(v, "J")) for k, v in e.items()]
        rows += [("**energy per inference**", f"**{_eng(self.energy_total_j, 'J')}**")]
        phases = ", ".join(f"{k} {v}" for k, v in self.cycles.items())
        rows += [("latency (cycles)", f"{sum(self.cycles.values())} ({phases}; {self.cycles_source})"),
                 ("read time (rows driven, longest tile)", _eng(self.read_s, "s")),
                 ("**latency per inference**", f"**{_eng(self.latency_s, 's')}** at "
                                                f"{self.clock_hz / 1e6:g} MHz"),
                 ("host I/O per image (estimate)", _eng(self.host_io_s, "s")),
                 ("**throughput**", f"**{self.tops:.4g} TOPS** (compute; "
                                    f"{self.ops / (self.latency_s + self.host_io_s) / 1e12:.3g} with host I/O)"),
                 ("**efficiency**", f"**{self.tops_per_w:.3g} TOPS/W**"),
                 ("reference chips (paper)", ", ".join(f"{k} {v}" for k, v in REFERENCE_CHIPS.items())
                  + " TOPS/W")]
        rows += [(f"area: {k}", f"{v:,.0f} um^2") for k, v in a.items()]
        total = "analog area and feature-map memory" if "feature-map memory" in a else "analog area"
        rows += [(f"**{total}**", f"**{self.area_total_um2 / 1e6:.4g} mm^2**")]
        rows += [("IR drop (max relative column-current change)", f"{self.ir_drop:.2e}")]
        if self.synth:
            rows += synth_rows(self.synth, self.clock_hz)
        elif self.synth_note:
            rows += [("digital area / fmax", self.synth_note)]
        return rows

    def table(self) -> list[str]:
        """A Markdown table of every figure (what the README shows)."""
        return markdown_table(self.table_rows())


def synth_rows(synth: dict, clock_hz: float) -> list[tuple[str, str]]:
    """The table rows of a `synthesize` result."""
    s = synth
    meets = "meets" if s["fmax_mhz"] * 1e6 >= clock_hz else "misses"
    return [("digital area (iCE40, Yosys)", f"{s['lut4']} LUT4, {s['dff']} DFF, "
                                            f"{s['carry']} CARRY, {s['bram']} BRAM 4k"),
            ("digital fmax (nextpnr-ice40 HX8K)",
             f"{s['fmax_mhz']:.1f} MHz ({meets} {clock_hz / 1e6:g} MHz)")]


def markdown_table(rows: list[tuple[str, str]]) -> list[str]:
    """| quantity | value | rows, the first column padded to one width."""
    width = max(len(r[0]) for r in rows)
    out = [f"| {'quantity'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    out += [f"| {k.ljust(width)} | {v} |" for k, v in rows]
    return out


def _eng(x: float, unit: str) -> str:
    if x == 0:
        return f"0 {unit}"
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"),
                          (1e-18, "a")):
        if abs(x) >= scale:
            return f"{x / scale:.4g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def evaluate(cfg, weights, test_codes: np.ndarray, *, cycles: dict[str, int] | None = None,
             cycles_source: str | None = None) -> CostReport:
    """The cost model for one config (see the module docstring); pure, no tools needed.

    `weights`: a `xbarflow.flow.model.weights.Weights` (or per-layer arrays); `test_codes`: (n, inputs) DAC codes,
    the first `cost.images` of which are the representative input set.
    """
    c = cfg.cost
    chip = GoldenChip.from_weights(cfg, weights)
    codes = np.asarray(test_codes)[:c.images]
    if codes.shape[0] == 0:
        raise CostError("the cost model needs at least one input image")
    trace = chip.infer(codes, trace=True).trace
    positions = cfg.network.positions   # VMMs per tile (1 for a dense layer)
    layer_inputs = [w.reshape(-1, w.shape[-1]) for w in trace.windows]   # every window driven
    scale = cfg.crossbar.v_read / cfg.quant.dac_max
    period = 1.0 / cfg.clock.freq_hz
    cyc = dict(cycles) if cycles else phase_cycles(cfg)
    # A tile's rows stay driven while it settles and converts its own ADC groups.
    tile_read_s = [(settling_cycles(cfg) + groups * cfg.adc.conversion_cycles + 1) * period
                   for groups in cfg.tile_adc_groups]
    read_s = max(tile_read_s)

    xbar_j, tia_j, ir = 0.0, 0.0, 0.0
    rows_total = outputs_total = 0
    for tile, tile_s in zip(chip.tiles, tile_read_s):
        m = tile.array.matrix
        vmms = positions[tile.layer]
        xbar_j += read_power(tile.array, layer_inputs[tile.layer][:, tile.row_slice], scale) * tile_s * vmms
        tia_j += tile.array.outputs * c.tia_power_w * tile_s * vmms
        ir = max(ir, distortion(m, tile.array.conductance).max_rel)
        rows_total += tile.array.rows * vmms
        outputs_total += tile.array.outputs * vmms
    energy = {
        "crossbar read": xbar_j,
        "row DACs": rows_total * c.dac_fom_j * (1 << cfg.quant.dac_bits),
        "TIAs": tia_j,
        "ADCs": outputs_total * c.adc_fom_j * (1 << cfg.adc.bits),
        "digital": c.digital_j_per_cycle * sum(cyc.values()),
    }
    n_tiles = len(chip.tiles)
    x = cfg.crossbar
    area = {
        "crossbar cells": n_tiles * x.tile_rows * x.tile_cols * cell_area_um2(cfg),
        "row DACs": n_tiles * x.tile_rows * c.dac_area_um2 * (1 << cfg.quant.dac_bits),
        "TIAs": n_tiles * (x.tile_cols // 2) * c.tia_area_um2,
        "ADCs": n_tiles * cfg.tile_adcs * c.adc_area_um2 * (1 << cfg.adc.bits),
    }
    if cfg.network.layered:
        area["feature-map memory"] = (cfg.network.feature_map_codes * cfg.quant.dac_bits
                                      * c.fmap_bit_area_um2)
    ops = 2 * sum(p * n_in * n_out for p, (n_in, n_out) in zip(positions, cfg.network.layer_shapes))
    return CostReport(config=cfg.name, digest=cfg.digest(), ops=ops, energy_j=energy, cycles=cyc,
                      clock_hz=cfg.clock.freq_hz, read_s=read_s,
                      host_io_s=host_io_cycles(cfg) * period, area_um2=area, ir_drop=ir,
                      cycles_source=cycles_source or (
                          "layered controller phase model" if cfg.network.layered
                          else "controller phase model" if n_tiles == 1
                          else "controller phase model, extrapolated per tile"),
                      meta={"images": int(codes.shape[0]), "tiles": n_tiles,
                            **({"vmm_events": cfg.events_per_image,
                                "feature_map_codes": cfg.network.feature_map_codes}
                               if cfg.network.layered else {})})


def cell_area_um2(cfg) -> float:
    """Area of one crossbar cell of the configured type (crossbar.cell)."""
    c = cfg.cost
    return {"1R": c.cell_area_1r_um2, "1T1R": c.cell_area_um2,
            "1S1R": c.cell_area_1s1r_um2}[cfg.crossbar.cell]


def read_power(array, codes: np.ndarray, volts_per_code: float) -> float:
    """Mean power (W) the row drivers put into one tile's array over the input vectors `codes`
    (n, rows): sum_i V_i I_i per image (module docstring). Linear cells: I_i = V_i sum_j M_ij
    from the effective matrix. QMM cells (`array.solver`): I_i is the sum of row i's solved cell
    currents (`NonlinearCrossbar.row_currents`), so the power is exact, wires, series resistance
    and the cells' nonlinearity included (nominal read: no read noise; drift as the array reads)."""
    codes = np.asarray(codes)
    v = codes.astype(np.float64) * volts_per_code
    if array.solver is None:
        return float(np.mean((v * v) @ array.matrix.sum(axis=1)))
    return float(np.mean(np.sum(v * array.solver.row_currents(codes), axis=1)))


# -- synthesis -------------------------------------------------------------------------------------

class SynthUnavailable(XbarflowError, RuntimeError):
    """The synthesis tools are missing or failed; the message is one line."""


def synth_tools_missing() -> list[str]:
    return [t for t in SYNTH_TOOLS if shutil.which(t) is None]


def fmax_wrapper(sidecar: dict) -> str:
    """Verilog around the chip for place and route: every 1-bit port on a pin; each wide input
    fed by a shift register from one pin; each wide output captured into a register that loads
    on `<name>_ld` and otherwise shifts out of one pin (one LUT level per bit)."""
    top = sidecar["top"]
    ports = sidecar["ports"]
    decl, body, conns = ["input wire clk"], [], []
    for p in ports:
        name, width, d = p["name"], int(p["width"]), p["dir"]
        if name == "clk":
            conns.append(".clk(clk)")
            continue
        if width == 1:
            decl.append(f"{'input' if d == 'in' else 'output'} wire {name}")
            conns.append(f".{name}({name})")
        elif d == "in":
            decl.append(f"input wire {name}_si")
            body += [f"  reg [{width - 1}:0] {name}_sr = 0;",
                     f"  always @(posedge clk) {name}_sr <= {{{name}_sr[{width - 2}:0], {name}_si}};"]
            conns.append(f".{name}({name}_sr)")
        else:
            decl += [f"input wire {name}_ld", f"output wire {name}_so"]
            body += [f"  wire [{width - 1}:0] {name}_w;",
                     f"  reg [{width - 1}:0] {name}_sr = 0;",
                     f"  always @(posedge clk) {name}_sr <= {name}_ld ? {name}_w : "
                     f"{{1'b0, {name}_sr[{width - 1}:1]}};",
                     f"  assign {name}_so = {name}_sr[0];"]
            conns.append(f".{name}({name}_w)")
    return ("module xbarflow_fmax(\n  " + ",\n  ".join(decl) + "\n);\n" + "\n".join(body)
            + f"\n  {top} chip (\n    " + ",\n    ".join(conns) + "\n  );\nendmodule\n")


def synthesize(cfg, workdir: str | Path, *, timeout_s: float = 1800) -> dict:
    """Yosys area of the bare chip and nextpnr-ice40 fmax of the wrapped chip, cached by the
    Verilog's hash under `workdir`. Raises SynthUnavailable with a one-line reason."""
    missing = synth_tools_missing()
    if missing:
        raise SynthUnavailable(f"{', '.join(missing)} not found; {SYNTH_HINT}")
    workdir = Path(workdir)
    rtl = generate(cfg, workdir / "rtl")
    verilog = rtl.verilog.read_text()
    key = hashlib.sha256((verilog + repr(ICE40_DEVICE)).encode()).hexdigest()[:16]
    folder = workdir / key
    done = folder / "synth.json"
    if done.is_file():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    sidecar = json.loads(rtl.sidecar.read_text())
    (folder / "fmax_wrapper.v").write_text(fmax_wrapper(sidecar))
    t0 = time.perf_counter()
    top = sidecar["top"]
    _tool(["yosys", "-q", "-l", "yosys-area.log", "-p",
           f"read_verilog {rtl.verilog}; synth_ice40 -top {top}; tee -q -o area.txt stat"],
          folder, timeout_s)
    cells = _cells((folder / "area.txt").read_text())
    _tool(["yosys", "-q", "-l", "yosys-fmax.log", "-p",
           f"read_verilog {rtl.verilog} fmax_wrapper.v; synth_ice40 -top xbarflow_fmax -json fmax.json"],
          folder, timeout_s)
    # --timing-allow-fail: an fmax below the clock is a figure to report ("misses"), not an error
    _tool(["nextpnr-ice40", *ICE40_DEVICE, "--json", "fmax.json", "--pcf-allow-unconstrained",
           "--freq", f"{cfg.clock.freq_hz / 1e6:g}", "--seed", "1", "--log", "nextpnr.log", "-q",
           "--timing-allow-fail"],
          folder, timeout_s)
    log = (folder / "nextpnr.log").read_text()
    freqs = re.findall(r"Max frequency for clock\s+'[^']*':\s*([0-9.]+)\s*MHz", log)
    if not freqs:
        raise SynthUnavailable(f"nextpnr-ice40 reported no fmax; see {folder / 'nextpnr.log'}")
    result = {
        "lut4": cells.get("SB_LUT4", 0),
        "dff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
        "carry": cells.get("SB_CARRY", 0),
        "bram": cells.get("SB_RAM40_4K", 0),
        "fmax_mhz": float(freqs[-1]),   # the last report is after routing
        "device": "iCE40 " + " ".join(ICE40_DEVICE).replace("--", ""),
        "seconds": round(time.perf_counter() - t0, 1),
        "folder": str(folder),
    }
    done.write_text(json.dumps(result, indent=1))
    return result


def _tool(cmd: list[str], cwd: Path, timeout_s: float) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SynthUnavailable(f"{cmd[0]} timed out after {timeout_s:.0f} s in {cwd}") from None
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise SynthUnavailable(f"{cmd[0]} failed (exit {proc.returncode}): "
                               f"{tail[-1] if tail else 'no output'}; see {cwd}")


def _cells(stat: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(SB_\w+)\s+(\d+)\s*$", stat, re.M)}


# -- CLI -------------------------------------------------------------------------------------------


