"""`ChipConfig`: the one source of truth for generator, analog models, golden model and benches.

A frozen dataclass tree loaded from TOML with `tomllib`. Every problem (missing file, bad TOML,
unknown key, value out of range) raises `ConfigError` with a one-line message; the CLI turns
that into exit status 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from . import paths
from .errors import XbarflowError

__all__ = [
    "AdcConfig", "CONFIG_DIR", "ChipConfig", "ClockConfig", "ConfigError", "CostConfig",
    "CrossbarConfig", "DEFAULT_CONFIG", "DeviceConfig", "FeatureMapSpec", "HostConfig",
    "LAYER_FIELDS", "LayerSpec", "MAX_ACTIVATED_LAYERS", "NetworkConfig", "ProgrammingConfig",
    "QuantConfig", "SeedConfig", "SensingConfig", "TileSpec", "TrainConfig", "from_dict", "load",
    "validate",
]

CONFIG_DIR = paths.CONFIGS
DEFAULT_CONFIG = CONFIG_DIR / "slp.toml"
DEVICE_PRESETS_FILE = CONFIG_DIR / "devices" / "presets.toml"  # not a chip config: own folder


class ConfigError(XbarflowError, ValueError):
    """A config that cannot be used; the message is one line meant for the user."""


def _load_device_presets() -> dict[str, dict[str, Any]]:
    """configs/devices/presets.toml: preset name -> its qmm_* values (the first preset is the default)."""
    with open(DEVICE_PRESETS_FILE, "rb") as fh:
        table = tomllib.load(fh)
    return {name: {k: v for k, v in entry.items() if k.startswith("qmm_") or k in PRESET_WRITE_FIELDS}
            for name, entry in table.items()}


# Device fields of the programming model that a preset may set too (a low-threshold device)
PRESET_WRITE_FIELDS = ("rate_max", "set_v_half", "reset_v_half", "v_slope")


DEVICE_PRESETS = _load_device_presets()
DEFAULT_DEVICE_PRESET = next(iter(DEVICE_PRESETS))
# Device fields that only the read path sees (the QMM read model): recipes that train on the
# ideal linear crossbar leave them out of their training digest.
READ_MODEL_FIELDS = ("read_model", "preset", "qmm_alpha_hrs", "qmm_alpha_lrs", "qmm_beta",
                     "qmm_rs_hrs", "qmm_rs_lrs", "read_noise_sigma", "drift_nu", "drift_nu_sigma",
                     "drift_t0_s", "read_time_s")
# Crossbar fields of the cell type (crossbar.cell, its transistor and selector): seen by the
# write path, its verify reads and the cost model, not by in-situ training (ideal write)
CELL_FIELDS = ("cell", "access_r_on", "selector", "selector_v_th", "selector_g_leak", "selector_g_on",
               "selector_i_s", "selector_v0")


#: Fields each kind of entry of the layered `network.layers` accepts (besides `kind`), with their
#: defaults; `None` = required. Pool: stride defaults to the window size.
LAYER_FIELDS: dict[str, dict[str, Any]] = {
    "conv": {"out_channels": None, "kernel": None, "stride": 1, "padding": 0, "activation": None},
    "pool": {"mode": None, "size": None, "stride": None},
    "flatten": {},
    "dense": {"outputs": None, "activation": None},
}
#: Activated (hidden) weight layers the REQUANT_MULT register holds: one 8-bit lane each.
MAX_ACTIVATED_LAYERS = 4


@dataclass(frozen=True)
class LayerSpec:
    """One stage of the network with its shapes resolved (CNN_SPEC.md section 1).

    kind: conv | pool | flatten | dense. Shapes are (H, W, C). `kernel`: the conv kernel or the
    pool window (square); `stride`, `padding` (conv only, zero padding on every side);
    `channels_out`: conv out_channels, dense outputs (pool, flatten: the map's channels);
    `mode`: max | avg (pool); `activation`: relu | binary | none (conv, dense);
    `weight_layer`: index among the conv and dense stages (None for pool and flatten).
    """
    kind: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    channels_out: int = 0
    mode: str = ""
    activation: str = ""
    weight_layer: int | None = None

    @property
    def weight_shape(self) -> tuple[int, int]:
        """(n_in, n_out) of a weight stage: a conv's im2col matrix is (K*K*C_in, C_out)."""
        if self.kind == "conv":
            return self.kernel * self.kernel * self.in_shape[2], self.channels_out
        if self.kind == "dense":
            return math.prod(self.in_shape), self.channels_out
        raise ValueError(f"a {self.kind} stage has no weights")

    @property
    def positions(self) -> int:
        """Output positions (H_out * W_out): VMMs per tile of a conv, 1 for a dense layer."""
        return self.out_shape[0] * self.out_shape[1]

    def table(self) -> dict[str, Any]:
        """The TOML table this stage came from (every field, defaults filled in)."""
        if self.kind == "conv":
            return {"kind": "conv", "out_channels": self.channels_out, "kernel": self.kernel,
                    "stride": self.stride, "padding": self.padding, "activation": self.activation}
        if self.kind == "pool":
            return {"kind": "pool", "mode": self.mode, "size": self.kernel, "stride": self.stride}
        if self.kind == "dense":
            return {"kind": "dense", "outputs": self.channels_out, "activation": self.activation}
        return {"kind": "flatten"}


@dataclass(frozen=True)
class FeatureMapSpec:
    """A map in the on-chip feature-map memory: element (y, x, c) at base + (y*W + x)*C + c.

    `stage`: the index in `NetworkConfig.stages` of the stage that writes it (-1: the image).
    """
    base: int
    shape: tuple[int, int, int]
    stage: int = -1

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class NetworkConfig:
    input_size: int = 14                 # images are resized to n x n
    # Per weight layer (conv or dense): its outputs (the last one is the class count) and its
    # activation: relu | binary | none (last layer). The dense form gives both in the TOML; the
    # layered form (a list of tables in the TOML, see LAYER_FIELDS) derives them from
    # `stage_specs`, so everything that walks weight layers reads them the same way.
    layers: tuple[int, ...] = (10,)
    activations: tuple[str, ...] = ("none",)
    # Requantising ReLU of hidden layers: y = clip((s * mult) >> requant_shift, 0, dac_max), s the
    # layer's digital sum of ADC codes, mult an unsigned requant_mult_bits-bit runtime register
    # (trained/calibrated, stored with the weights, written by the host).
    requant_shift: int = 8
    requant_mult_bits: int = 8
    # The layered form only (a dense network keeps 1, 0, ()):
    input_channels: int = 1              # channels of the input image
    feature_map_codes: int = 0           # feature-map memory in codes (>= what the maps need)
    stage_specs: tuple[LayerSpec, ...] = ()  # every entry of the TOML `layers`, shapes resolved

    @property
    def layered(self) -> bool:
        """True for the layered form (conv/pool/flatten/dense tables)."""
        return bool(self.stage_specs)

    @property
    def inputs(self) -> int:
        """DAC codes of one input image (n * n * input_channels)."""
        return self.input_size * self.input_size * self.input_channels

    @property
    def classes(self) -> int:
        return self.layers[-1]

    @property
    def layer_shapes(self) -> tuple[tuple[int, int], ...]:
        """(inputs, outputs) of every weight layer: layer 0 reads the image, layer l the codes of
        l-1; a conv layer's inputs are its im2col rows K*K*C_in."""
        if self.stage_specs:
            return tuple(s.weight_shape for s in self.stage_specs if s.weight_layer is not None)
        ins = (self.inputs, *self.layers[:-1])
        return tuple(zip(ins, self.layers))

    @property
    def stages(self) -> tuple[LayerSpec, ...]:
        """Every stage in order; a dense network's stages are its dense layers."""
        if self.stage_specs:
            return self.stage_specs
        return tuple(LayerSpec("dense", (1, 1, n_in), (1, 1, n_out), channels_out=n_out,
                               activation=act, weight_layer=l)
                     for l, ((n_in, n_out), act) in enumerate(zip(self.layer_shapes, self.activations)))

    @property
    def weight_stages(self) -> tuple[LayerSpec, ...]:
        """The conv and dense stages, in weight-layer order."""
        return tuple(s for s in self.stages if s.weight_layer is not None)

    @property
    def positions(self) -> tuple[int, ...]:
        """Output positions per weight layer: H_out * W_out of a conv, 1 of a dense layer."""
        return tuple(s.positions for s in self.weight_stages)

    @property
    def feature_maps(self) -> tuple[FeatureMapSpec, ...]:
        """Every map of the feature-map memory (empty for a dense network): map 0 the image at
        base 0, then the output of each conv, pool and hidden dense stage; odd maps in region B
        (base = size of map 0), even maps from 2 in region C (after the largest odd map)."""
        if not self.stage_specs:
            return ()
        shapes = [((self.input_size, self.input_size, self.input_channels), -1)]
        last = len(self.stage_specs) - 1
        for i, s in enumerate(self.stage_specs):
            if s.kind in ("conv", "pool") or (s.kind == "dense" and i != last):
                shapes.append((s.out_shape, i))
        size0 = math.prod(shapes[0][0])
        odd = max((math.prod(sh) for sh, _ in shapes[1::2]), default=0)
        maps = []
        for k, (shape, stage) in enumerate(shapes):
            base = 0 if k == 0 else size0 if k % 2 else size0 + odd
            maps.append(FeatureMapSpec(base, shape, stage))
        return tuple(maps)

    @property
    def feature_map_need(self) -> int:
        """Codes the feature maps need: map 0 + the largest odd map + the largest even map."""
        maps = self.feature_maps
        if not maps:
            return 0
        return maps[0].size + max((m.size for m in maps[1::2]), default=0) + max(
            (m.size for m in maps[2::2]), default=0)

    @property
    def stage_maps(self) -> tuple[tuple[int, int], ...]:
        """(input map, output map) index into `feature_maps` per stage; -1 as the output of the
        last dense stage (its sums go to the output buffer); flatten reads and "writes" the same
        map (it moves nothing). Empty for a dense network (no feature-map memory)."""
        if not self.stage_specs:
            return ()
        produced = {m.stage: k for k, m in enumerate(self.feature_maps)}
        out, current = [], 0
        for i, _ in enumerate(self.stage_specs):
            nxt = produced.get(i, -1 if i == len(self.stage_specs) - 1 else current)
            out.append((current, nxt))
            current = nxt
        return tuple(out)


@dataclass(frozen=True)
class QuantConfig:
    dac_bits: int = 4        # input code width: V_in = code * V_read / (2**dac_bits - 1)
    weight_levels: int = 32  # conductance levels per device, 0 .. weight_levels - 1

    @property
    def dac_max(self) -> int:
        return (1 << self.dac_bits) - 1


@dataclass(frozen=True)
class DeviceConfig:
    g_on: float = 2.0e-8   # S, highest conductance (LRS), memory state lambda = 1
    g_off: float = 1.0e-9  # S, lowest conductance (HRS), lambda = 0; pristine cells start here
    # QMM-like programming: a pulse of amplitude |V| moves lambda by rate(|V|) * (1 - lambda)
    # (set) or rate(|V|) * lambda (reset), rate = rate_max / (1 + exp(-(|V| - v_half) / v_slope)).
    rate_max: float = 0.25
    set_v_half: float = 1.3      # V, set amplitude at half the maximum rate
    reset_v_half: float = 1.35   # V, reset amplitude at half the maximum rate (magnitude)
    v_slope: float = 0.05        # V, logistic slope of the rate
    c2c_sigma: float = 0.1       # relative cycle-to-cycle spread of each pulse's step (seeded)
    d2d_sigma: float = 0.1       # relative device-to-device spread of the rate (seeded)
    stuck_on_rate: float = 0.0   # fraction of cells stuck at g_on
    stuck_off_rate: float = 0.0  # fraction of cells stuck at g_off
    dead_partition: int = -1     # row partition whose cells are all open (stuck at g_off, e.g. a
                                 # broken write driver or column segment); -1 = none
    # Read model: "linear" (I = G V, the effective-matrix path) or "qmm", the quasi-static
    # memdiode I = I0 [exp(beta alpha V_D) - exp(-(1 - beta) alpha V_D)], V_D = V - I Rs, with I0,
    # alpha, Rs linear in the memory state between HRS and LRS (analog_models/memdiode.py). I0
    # is derived so that a cell's chord conductance I(V_read) / V_read is its configured
    # conductance (g_off at HRS, g_on at LRS): mapping, programming and training keep their
    # meaning. alpha, beta, Rs come from `preset` (configs/devices/presets.toml); explicit qmm_* fields
    # override it. Defaults: the authors' fitted HfO2 memdiode (PAPER.md, "A fitted memdiode").
    read_model: str = "linear"
    preset: str = DEFAULT_DEVICE_PRESET
    qmm_alpha_hrs: float = DEVICE_PRESETS[DEFAULT_DEVICE_PRESET]["qmm_alpha_hrs"]   # 1/V
    qmm_alpha_lrs: float = DEVICE_PRESETS[DEFAULT_DEVICE_PRESET]["qmm_alpha_lrs"]   # 1/V
    qmm_beta: float = DEVICE_PRESETS[DEFAULT_DEVICE_PRESET]["qmm_beta"]
    qmm_rs_hrs: float = DEVICE_PRESETS[DEFAULT_DEVICE_PRESET]["qmm_rs_hrs"]         # ohm
    qmm_rs_lrs: float = DEVICE_PRESETS[DEFAULT_DEVICE_PRESET]["qmm_rs_lrs"]         # ohm
    # Read noise and drift (analog_models/read_variation.py), off by default: no measured values
    # come with the fitted memdiode. Read noise scales each cell's I0 by 1 + sigma N(0, 1) per
    # read, keyed by (seeds.noise, tile, event, cell); it needs read_model = "qmm" (a per-read
    # solve). Drift scales each cell's conductance (linear) or I0 (qmm) by (t / t0)^-nu at
    # t = read_time_s, nu per cell = drift_nu * max(0, 1 + drift_nu_sigma N(0, 1)) keyed by
    # (seeds.device, tile, cell); PCM-like cells drift with nu ~ 0.05, filamentary RRAM less.
    read_noise_sigma: float = 0.0  # relative, per read
    drift_nu: float = 0.0          # drift exponent (0 = no drift)
    drift_nu_sigma: float = 0.0    # relative per-cell spread of nu
    drift_t0_s: float = 1.0        # s after programming where G is the programmed value
    read_time_s: float = 1.0       # s after programming when the array is read


@dataclass(frozen=True)
class ProgrammingConfig:
    """Write-verify with incremental step pulses (ISPP), the paper's write periphery."""
    timeout_pulses: int = 150    # pulses per cell step before the write-ack counter forces on
    v_set: float = 1.2           # V, first set pulse amplitude
    v_reset: float = 1.1         # V, first reset pulse amplitude (magnitude, applied negative)
    v_step: float = 0.05         # V, amplitude increment per level
    amplitude_levels: int = 8    # prog_level codes 0 .. amplitude_levels - 1
    pulses_per_level: int = 4    # pulses at one amplitude before stepping up
    pulse_width_ns: float = 100.0  # program pulse width
    sense_time_ns: float = 40.0  # verify read: sense-amplifier settling and decision
    margin: float = 0.4          # verify window: |G - G_target| <= margin * level step
    # How a program pulse reaches the array (analog_models/write_path.py): "v2" (unselected
    # lines at V/2), "v3" (unselected rows at V/3, columns at 2V/3) or "float" (unselected lines
    # left floating), each solved on the array network with its wire segments and every other
    # cell as load; "ideal" is the pulse at exactly its amplitude on the selected cell alone.
    bias: str = "v2"

    def amplitude(self, level: int, polarity_set: bool) -> float:
        """Signed pulse amplitude (V) of amplitude code `level`."""
        base = self.v_set if polarity_set else self.v_reset
        v = base + self.v_step * level
        return v if polarity_set else -v


@dataclass(frozen=True)
class CrossbarConfig:
    tile_rows: int = 196
    tile_cols: int = 20
    partitions: int = 8     # row partitions; each has its own column wires into the TIA node
    wire_r: float = 1.0     # ohm per wire segment (row and column lines)
    v_read: float = 0.2     # V, read voltage at full-scale DAC code
    # Cell type: "1R" (passive memristor), "1T1R" (an access transistor gated by the row's word
    # line, `access_r_on` in series when on) or "1S1R" (a two-terminal selector in series:
    # selector = "threshold", leaking `selector_g_leak` below `selector_v_th` and conducting
    # `selector_g_on` above it, or "exponential", I = selector_i_s sinh(V / selector_v0)).
    # A 1S1R cell's conductance is its chord conductance at v_read, selector included
    # (analog_models/selector.py), so the selector must conduct at v_read: v_th = v_read / 2
    # (a cell at full input reads, one at half input does not), i_s with 7x g_on at v_read.
    cell: str = "1R"
    access_r_on: float = 1.0e3      # ohm, 1T1R transistor when its word line is on
    selector: str = "threshold"
    selector_v_th: float = 0.1      # V, threshold selector: threshold voltage
    selector_g_leak: float = 1.0e-12  # S, threshold selector below threshold
    selector_g_on: float = 1.0e-5   # S, threshold selector above threshold (incremental)
    selector_i_s: float = 1.0e-9    # A, exponential selector scale current
    selector_v0: float = 0.05       # V, exponential selector voltage scale


@dataclass(frozen=True)
class SensingConfig:
    tia_gain: float = 1.0e8       # V/A, differential TIA: V = gain * (I+ - I-)
    bandwidth_hz: float = 1.0e7   # TIA closed-loop bandwidth, sets the settling latency


@dataclass(frozen=True)
class AdcConfig:
    kind: str = "sar"             # sar: bits + 1 cycles per conversion; flash: 1 cycle
    bits: int = 8                 # signed two's complement output
    v_fs: float = 1.0             # V, input range is [-v_fs, +v_fs)
    noise_lsb: float = 0.0        # rms input-referred noise in LSB (seeded, keyed draws)
    adcs_per_tile: int = 0        # shared ADCs per tile (column mux); 0 = one ADC per output.
                                  # Conversion order only: numerically identical results.

    @property
    def conversion_cycles(self) -> int:
        return self.bits + 1 if self.kind == "sar" else 1


@dataclass(frozen=True)
class HostConfig:
    interface: str = "spi"   # spi | uart
    spi_clk_div: int = 4     # SCLK period in system clocks used by the benches (>= 4)
    uart_divider: int = 16   # system clocks per UART bit

    @property
    def bit_cycles(self) -> int:
        """System clocks per bit on the host link: an SCLK period (SPI) or a UART bit."""
        return self.uart_divider if self.interface == "uart" else self.spi_clk_div

    @property
    def byte_cycles(self) -> int:
        """System clocks per host byte on the wire: 8 SCLK periods (SPI), or 10 bit times for a
        UART 8N1 character (start, 8 data, stop)."""
        return 10 * self.uart_divider if self.interface == "uart" else 8 * self.spi_clk_div


@dataclass(frozen=True)
class ClockConfig:
    freq_hz: float = 50.0e6


@dataclass(frozen=True)
class TrainConfig:
    l2: float = 1.0e-4       # L2 penalty on the weights
    maxiter: int = 300       # L-BFGS iterations
    # auto: lbfgs for a single layer (the SLP recipe), qat for more; qat = quantisation-aware
    # Adam on minibatches through the chip's exact forward pass (flow/model/train.py); manhattan =
    # in-situ sign-of-gradient pulses on the device model (flow/model/insitu.py), never chosen by auto
    method: str = "auto"
    epochs: int = 12         # qat: passes over the training set
    batch: int = 128         # qat: minibatch size
    lr: float = 2.0e-3       # qat: Adam step size (decays to lr / 20 by a cosine schedule)
    calib_percentile: float = 99.9  # qat: percentile of positive hidden sums mapped to dac_max
    # manhattan: in-situ Manhattan-rule training on the device programming model (flow/model/insitu.py):
    # one fixed-amplitude set/reset pulse per device of every pair whose |dL/dW| is above
    # manhattan_threshold * (the layer's largest |dL/dW| in the minibatch); no write-verify
    manhattan_epochs: int = 5        # passes over the training set
    manhattan_batch: int = 300       # minibatch size (one pulse step per minibatch)
    manhattan_threshold: float = 0.35  # fraction of the layer's max |gradient| a pair must exceed
    manhattan_init_pulses: int = 8   # hidden layers start with 0..N random set pulses per device
    # lbfgs and qat: train through the device's read model (needs device.read_model = "qmm"):
    # each cell contributes its QMM current I(V_code, lambda_level) instead of G V, so training
    # sees that a cell's effective weight depends on its input code and state
    # (flow/model/device_read.py). A training input only when true: false keeps every digest.
    device_aware: bool = False
    # A weights file made elsewhere (`xbarflow import`): when set, load_or_train uses it instead
    # of training (flow/model/imported.py). In a TOML file a relative path is relative to the
    # file's folder. Not part of any training digest: moving the folder keeps the weights valid.
    weights: str = ""

    def resolved_method(self, layers: int) -> str:
        if self.method != "auto":
            return self.method
        return "lbfgs" if layers == 1 else "qat"


@dataclass(frozen=True)
class CostConfig:
    """Figures of merit behind `xbarflow cost` (flow/analysis/cost.py): energy and area per inference."""
    adc_fom_j: float = 1.0e-14       # ADC Walden FoM, J per conversion step: E = FoM * 2**bits
    dac_fom_j: float = 5.0e-15       # row DAC, J per conversion step: E = FoM * 2**dac_bits per row
    tia_power_w: float = 1.0e-5      # W per differential TIA while the array is read
    digital_j_per_cycle: float = 1.0e-12  # digital periphery, J per clock cycle of an inference
    cell_area_um2: float = 0.05      # one 1T1R crossbar cell (crossbar.cell = "1T1R")
    cell_area_1r_um2: float = 0.0058   # one passive 1R cell: 4 F**2 at the paper's F = 38 nm
    cell_area_1s1r_um2: float = 0.0058  # one 1S1R cell: the selector stacked on the cell, 4 F**2
    dac_area_um2: float = 2.0        # row DAC area per conversion step: A = a * 2**dac_bits per row
    adc_area_um2: float = 10.0       # ADC area per conversion step (SAR capacitor array): a * 2**bits
    tia_area_um2: float = 2000.0     # one differential TIA
    images: int = 1000               # test images averaged for the crossbar's read energy
    # feature-map memory of a layered network (SRAM, dac_bits per code): area per bit, cell and
    # its share of the periphery. Left out of to_dict() at its default (digests stay).
    fmap_bit_area_um2: float = 0.3


@dataclass(frozen=True)
class SeedConfig:
    train: int = 1
    noise: int = 2
    device: int = 3


@dataclass(frozen=True)
class ChipConfig:
    name: str = "slp"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    crossbar: CrossbarConfig = field(default_factory=CrossbarConfig)
    sensing: SensingConfig = field(default_factory=SensingConfig)
    adc: AdcConfig = field(default_factory=AdcConfig)
    host: HostConfig = field(default_factory=HostConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    programming: ProgrammingConfig = field(default_factory=ProgrammingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: SeedConfig = field(default_factory=SeedConfig)
    cost: CostConfig = field(default_factory=CostConfig)

    # -- derived quantities, computed here so nobody re-derives them --------------------------
    @property
    def rows(self) -> int:
        """Inputs of layer 0, one crossbar row per input pixel (the SLP: its one tile's rows;
        a bigger layer spans several row tiles, see `tiles`)."""
        return self.network.inputs

    @property
    def outputs(self) -> int:
        return self.network.classes

    @property
    def cols(self) -> int:
        """Physical columns of the last layer: one differential pair (G+, G-) per class."""
        return 2 * self.outputs

    @property
    def tile_adcs(self) -> int:
        """ADCs per tile: adc.adcs_per_tile (shared through a column multiplexer), or one per
        tile output when 0 (not shared)."""
        return self.adc.adcs_per_tile or self.crossbar.tile_cols // 2

    @property
    def tile_adc_groups(self) -> tuple[int, ...]:
        """Column-multiplexer steps of each tile: its outputs over the tile's ADCs, rounded up."""
        return tuple(math.ceil(t.outputs / self.tile_adcs) for t in self.tiles)

    @property
    def adc_groups(self) -> int:
        """Most column-multiplexer steps any tile needs (1 when ADCs are not shared)."""
        return max(self.tile_adc_groups)

    @property
    def partition_rows(self) -> tuple[int, ...]:
        """Rows per row partition (np.array_split rule: the first partitions get one more)."""
        q, r = divmod(self.crossbar.tile_rows, self.crossbar.partitions)
        return tuple(q + 1 if p < r else q for p in range(self.crossbar.partitions))

    @property
    def partition_start(self) -> tuple[int, ...]:
        """First global row of each partition."""
        starts, acc = [], 0
        for n in self.partition_rows:
            starts.append(acc)
            acc += n
        return tuple(starts)

    @property
    def tiles(self) -> tuple["TileSpec", ...]:
        """Every crossbar tile of the network in `tile_sel` order: layer, column tile, row tile.

        Row tile r of a layer covers inputs [r*tile_rows, min((r+1)*tile_rows, n_in)) and column
        tile c covers outputs [c*tile_cols/2, min((c+1)*tile_cols/2, n_out)) (contiguous blocks,
        the last one possibly smaller). The SLP default (196 x 20 tile) is a single tile.
        """
        tr, to = self.crossbar.tile_rows, self.crossbar.tile_cols // 2
        specs: list[TileSpec] = []
        for layer, (n_in, n_out) in enumerate(self.network.layer_shapes):
            for c in range(-(-n_out // to)):
                for r in range(-(-n_in // tr)):
                    specs.append(TileSpec(len(specs), layer, r, c, r * tr, min((r + 1) * tr, n_in),
                                          c * to, min((c + 1) * to, n_out)))
        return tuple(specs)

    @property
    def events_per_image(self) -> int:
        """VMM events of one inference: per weight layer, positions x that layer's tiles (a dense
        network: len(tiles)). Event j of image i draws ADC noise with index
        i * events_per_image + j."""
        per_layer = [0] * len(self.network.layer_shapes)
        for t in self.tiles:
            per_layer[t.layer] += 1
        return sum(p * n for p, n in zip(self.network.positions, per_layer))

    def cycles(self, seconds: float) -> int:
        """A physical duration in whole clock cycles (rounded up, at least 1)."""
        return max(1, math.ceil(seconds * self.clock.freq_hz - 1e-9))

    @property
    def pulse_cycles(self) -> int:
        return self.cycles(self.programming.pulse_width_ns * 1e-9)

    @property
    def sense_cycles(self) -> int:
        return self.cycles(self.programming.sense_time_ns * 1e-9)

    @property
    def target_bytes(self) -> int:
        """Programming targets: one level code byte per physical cell, row-major."""
        return self.crossbar.tile_rows * self.crossbar.tile_cols

    @property
    def input_bytes(self) -> int:
        """Bytes of the packed DAC-code input buffer (codes packed LSB first)."""
        return (self.rows * self.quant.dac_bits + 7) // 8

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data that `from_dict` reads back. A dense network's [network] is
        exactly what it always was (digests stay); the layered form gives its TOML tables."""
        data = dataclasses.asdict(self)
        if self.cost.fmap_bit_area_um2 == CostConfig.fmap_bit_area_um2:
            del data["cost"]["fmap_bit_area_um2"]
        net = self.network
        data["network"] = {k: v for k, v in data["network"].items()
                           if k not in ("input_channels", "feature_map_codes", "stage_specs")}
        if net.layered:
            del data["network"]["activations"]
            data["network"]["layers"] = [s.table() for s in net.stage_specs]
            if net.input_channels != 1:
                data["network"]["input_channels"] = net.input_channels
            if net.feature_map_codes != net.feature_map_need:
                data["network"]["feature_map_codes"] = net.feature_map_codes
        return data

    def digest(self) -> str:
        """Short stable hash of the whole config (keys weights and build caches)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def replace(self, **overrides: Any) -> "ChipConfig":
        """Copy with dotted overrides, e.g. replace(**{"crossbar.wire_r": 0.0}); validated."""
        data = self.to_dict()
        if "device.preset" in overrides:
            # a new preset replaces every value a preset sets (qmm_*, and the programming
            # model's for presets that set it; the defaults come back where the new one does not)
            for key in {k for preset in DEVICE_PRESETS.values() for k in preset}:
                if f"device.{key}" not in overrides:
                    data["device"].pop(key, None)
        tables = overrides.get("network.layers")
        if isinstance(tables, list) and tables and isinstance(tables[0], dict):
            # a layered network replaces a dense one: its activations go with its tables
            if "network.activations" not in overrides:
                data["network"].pop("activations", None)
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            if not key:
                data[section] = value
            elif isinstance(data.get(section, {}), dict):
                # an unknown section reaches from_dict, which names the nearest one
                data.setdefault(section, {})[key] = value
            else:
                raise ConfigError(f"override: '{section}' is not a section, cannot set '{dotted}'")
        return from_dict(data, source="override")


@dataclass(frozen=True)
class TileSpec:
    """Geometry of one tile: its global index (`tile_sel`), layer, position and covered ranges."""
    index: int
    layer: int
    row_tile: int
    col_tile: int
    row_start: int   # first input (crossbar row) of the layer this tile holds
    row_stop: int    # one past the last
    out_start: int   # first output of the layer; physical columns 2*out_start .. 2*out_stop - 1
    out_stop: int

    @property
    def rows(self) -> int:
        return self.row_stop - self.row_start

    @property
    def outputs(self) -> int:
        return self.out_stop - self.out_start


# -- loading and validation ------------------------------------------------------------------

_SECTIONS = {f.name: f.type for f in fields(ChipConfig) if f.name != "name"}
_SECTION_TYPES = {
    "network": NetworkConfig, "quant": QuantConfig, "device": DeviceConfig,
    "crossbar": CrossbarConfig, "sensing": SensingConfig, "adc": AdcConfig,
    "host": HostConfig, "clock": ClockConfig, "programming": ProgrammingConfig,
    "train": TrainConfig, "seeds": SeedConfig, "cost": CostConfig,
}


def _unknown(key: str, known: list[str], where: str) -> ConfigError:
    near = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {', '.join(sorted(known))}"
    return ConfigError(f"{where}: unknown key '{key}'{hint}")


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{where}: expected a non-empty list, got {value!r}")
        return tuple(_coerce(v, default[0], f"{where}[{i}]") for i, v in enumerate(value))
    raise AssertionError(f"unhandled default type at {where}")


def from_dict(data: dict[str, Any], source: str = "config") -> ChipConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table at the top level")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "name":
            kwargs["name"] = _coerce(value, "", f"{source}: name")
            continue
        if key not in _SECTION_TYPES:
            raise _unknown(key, ["name", *_SECTION_TYPES], source)
        cls = _SECTION_TYPES[key]
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{key}] must be a table")
        if cls is NetworkConfig:
            kwargs[key] = _network(value, source)
            continue
        defaults = cls()
        known = [f.name for f in fields(cls)]
        if cls is DeviceConfig:
            value = _with_preset(value, source)
        sect = {}
        for k, v in value.items():
            if k not in known:
                raise _unknown(k, known, f"{source}: [{key}]")
            sect[k] = _coerce(v, getattr(defaults, k), f"{source}: {key}.{k}")
        kwargs[key] = cls(**sect)
    cfg = ChipConfig(**kwargs)
    validate(cfg, source)
    return cfg


def _network(table: dict[str, Any], source: str) -> NetworkConfig:
    """[network] in either form: `layers` a list of integers (dense, with `activations`) or a
    list of tables (layered: conv, pool, flatten, dense; shapes resolved and checked here)."""
    defaults = NetworkConfig()
    layers = table.get("layers")
    layered = isinstance(layers, list) and any(isinstance(e, dict) for e in layers)
    user_keys = ["input_size", "layers", "activations", "requant_shift", "requant_mult_bits"]
    if layered:
        user_keys = [k for k in user_keys if k != "activations"] + ["input_channels",
                                                                   "feature_map_codes"]
    sect: dict[str, Any] = {}
    for k, v in table.items():
        if layered and k == "activations":
            raise ConfigError(f"{source}: network.activations must be absent when network.layers "
                              "is a list of tables (each table has its own activation)")
        if not layered and k in ("input_channels", "feature_map_codes"):
            raise ConfigError(f"{source}: network.{k} needs the layered form of network.layers "
                              "(a list of tables)")
        if k not in user_keys:
            raise _unknown(k, user_keys, f"{source}: [network]")
        if k != "layers" or not layered:
            sect[k] = _coerce(v, getattr(defaults, k), f"{source}: network.{k}")
    if not layered:
        return NetworkConfig(**sect)
    net = NetworkConfig(**sect)
    _check(2 <= net.input_size <= 28, source,
           f"network.input_size must be in 2..28, got {net.input_size}")
    _check(1 <= net.input_channels <= 64, source,
           f"network.input_channels must be in 1..64, got {net.input_channels}")
    stages = _resolve_stages(layers, (net.input_size, net.input_size, net.input_channels), source)
    weights = [s for s in stages if s.weight_layer is not None]
    net = dataclasses.replace(net, stage_specs=stages,
                              layers=tuple(s.channels_out for s in weights),
                              activations=tuple(s.activation for s in weights))
    need = net.feature_map_need
    given = net.feature_map_codes
    _check(given == 0 or given >= need, source,
           f"feature map memory of {given} codes is too small: needs {need}")
    return dataclasses.replace(net, feature_map_codes=given or need)


def _layer_field(entry: dict[str, Any], key: str, default: Any, where: str) -> Any:
    value = entry.get(key, default)
    if value is None:
        raise ConfigError(f"{where}: missing field '{key}'")
    if key in ("mode", "activation"):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key}: expected a string, got {value!r}")
        return value
    return _coerce(value, 0, f"{where}: {key}")


def _resolve_stages(entries: list[Any], shape: tuple[int, int, int],
                    source: str) -> tuple[LayerSpec, ...]:
    """The layered `network.layers` as LayerSpecs, every rule of CNN_SPEC.md section 1 checked."""
    stages: list[LayerSpec] = []
    flattened = False
    weight_layer = 0
    for i, entry in enumerate(entries):
        where = f"{source}: network.layers[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table like {{ kind = \"conv\", ... }}, "
                              f"got {entry!r} (do not mix integers and tables)")
        kind = entry.get("kind")
        if kind not in LAYER_FIELDS:
            raise ConfigError(f"{where}: unknown kind {kind!r}; known kinds: "
                              f"{', '.join(LAYER_FIELDS)}")
        where = f"{where} ({kind})"
        known = LAYER_FIELDS[kind]
        for k in entry:
            if k != "kind" and k not in known:
                raise _unknown(k, ["kind", *known], where)
        f = {k: _layer_field(entry, k, d, where) for k, d in known.items() if d is not None
             or k != "stride"}
        if kind == "pool":
            f["stride"] = _layer_field(entry, "stride", f["size"], where)  # default: the window
        h, w, c = shape
        if kind in ("conv", "pool") and flattened:
            raise ConfigError(f"{where}: a {kind} layer after flatten (flatten leads into the "
                              "dense layers)")
        if kind == "flatten":
            _check(not flattened, source, f"network.layers[{i}]: a second flatten")
            flattened = True
            stages.append(LayerSpec("flatten", shape, (1, 1, h * w * c), channels_out=h * w * c))
        elif kind == "conv":
            k_, s_, p_ = f["kernel"], f["stride"], f["padding"]
            _check(1 <= f["out_channels"] <= 1024, source,
                   f"network.layers[{i}] (conv): out_channels must be in 1..1024, got {f['out_channels']}")
            _check(k_ >= 1, source, f"network.layers[{i}] (conv): kernel must be >= 1, got {k_}")
            _check(s_ >= 1, source, f"network.layers[{i}] (conv): stride must be >= 1, got {s_}")
            _check(0 <= p_ < k_, source,
                   f"network.layers[{i}] (conv): padding must be in 0..kernel-1 = {k_ - 1}, got {p_}")
            _check(k_ <= h + 2 * p_ and k_ <= w + 2 * p_, source,
                   f"network.layers[{i}] (conv): kernel {k_} is larger than its padded input map "
                   f"{h + 2 * p_}x{w + 2 * p_}")
            out = ((h + 2 * p_ - k_) // s_ + 1, (w + 2 * p_ - k_) // s_ + 1, f["out_channels"])
            stages.append(LayerSpec("conv", shape, out, k_, s_, p_, f["out_channels"],
                                    activation=f["activation"], weight_layer=weight_layer))
            weight_layer += 1
        elif kind == "pool":
            size, s_ = f["size"], f["stride"]
            _check(f["mode"] in ("max", "avg"), source,
                   f"network.layers[{i}] (pool): mode must be max or avg, got '{f['mode']}'")
            _check(size >= 1, source, f"network.layers[{i}] (pool): size must be >= 1, got {size}")
            _check(s_ >= 1, source, f"network.layers[{i}] (pool): stride must be >= 1, got {s_}")
            _check(size <= h and size <= w, source,
                   f"network.layers[{i}] (pool): window {size} is larger than its input map {h}x{w}")
            _check(f["mode"] == "max" or (size * size) & (size * size - 1) == 0, source,
                   f"network.layers[{i}] (pool): avg pool needs size*size a power of two (the "
                   f"average is a shift), got {size}x{size}")
            out = ((h - size) // s_ + 1, (w - size) // s_ + 1, c)
            stages.append(LayerSpec("pool", shape, out, size, s_, 0, c, mode=f["mode"]))
        else:
            _check(flattened, source,
                   f"network.layers[{i}] (dense): dense before flatten on a {h}x{w}x{c} map; "
                   "add { kind = \"flatten\" } before it")
            _check(1 <= f["outputs"] <= 1024, source,
                   f"network.layers[{i}] (dense): outputs must be in 1..1024, got {f['outputs']}")
            stages.append(LayerSpec("dense", shape, (1, 1, f["outputs"]), channels_out=f["outputs"],
                                    activation=f["activation"], weight_layer=weight_layer))
            weight_layer += 1
        shape = stages[-1].out_shape
    _check(bool(stages) and stages[-1].kind == "dense", source,
           "network.layers must end with a dense layer (the classes)")
    for j, s in enumerate(stages):
        if s.weight_layer is None:
            continue
        if j == len(stages) - 1:
            _check(s.activation == "none", source,
                   f"network.layers[{j}]: the last layer's activation must be 'none' (argmax on "
                   f"its sums), got '{s.activation}'")
        else:
            _check(s.activation in ("relu", "binary"), source,
                   f"network.layers[{j}] ({s.kind}): activation must be relu or binary ('none' only "
                   f"on the last layer), got '{s.activation}'")
    hidden = weight_layer - 1
    _check(hidden <= MAX_ACTIVATED_LAYERS, source,
           f"network.layers: {hidden} activated layers, at most {MAX_ACTIVATED_LAYERS} fit the "
           "REQUANT_MULT register")
    return tuple(stages)


def _with_preset(device: dict[str, Any], source: str) -> dict[str, Any]:
    """[device] with its preset's qmm_* values filled in under the explicit ones."""
    name = device.get("preset", DEFAULT_DEVICE_PRESET)
    if not isinstance(name, str):
        raise ConfigError(f"{source}: device.preset: expected a string, got {name!r}")
    if name not in DEVICE_PRESETS:
        raise ConfigError(f"{source}: device.preset: unknown preset '{name}'; known presets "
                          f"({DEVICE_PRESETS_FILE.name}): {', '.join(DEVICE_PRESETS)}")
    return {**DEVICE_PRESETS[name], **device}


def _check(cond: bool, source: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{source}: {msg}")


def validate(cfg: ChipConfig, source: str = "config") -> None:
    n, q, d, x, s, a, h = (cfg.network, cfg.quant, cfg.device, cfg.crossbar, cfg.sensing,
                           cfg.adc, cfg.host)
    _check(2 <= n.input_size <= 28, source, f"network.input_size must be in 2..28, got {n.input_size}")
    _check(len(n.layers) == len(n.activations), source,
           f"network.layers ({len(n.layers)}) and network.activations ({len(n.activations)}) differ in length")
    _check(all(1 <= k <= 1024 for k in n.layers), source, "network.layers entries must be in 1..1024")
    _check(n.layers[-1] >= 2, source, "network.layers must end with at least 2 classes")
    for act in n.activations[:-1]:
        _check(act in ("relu", "binary"), source, f"hidden activation must be relu or binary, got '{act}'")
    _check(n.activations[-1] == "none", source, "the last layer's activation must be 'none' (argmax on ADC codes)")
    _check(0 <= n.requant_shift <= 24, source, f"network.requant_shift must be in 0..24, got {n.requant_shift}")
    _check(1 <= n.requant_mult_bits <= 16, source,
           f"network.requant_mult_bits must be in 1..16, got {n.requant_mult_bits}")
    _check(1 <= q.dac_bits <= 8, source, f"quant.dac_bits must be in 1..8, got {q.dac_bits}")
    # The feature-map memory (hdl/feature_map.py) holds whole codes per byte of WRITE_BUF.
    _check(not n.layered or q.dac_bits in (1, 2, 4, 8), source,
           f"a layered network needs quant.dac_bits 1, 2, 4 or 8 (whole codes per byte of "
           f"the feature-map memory), got {q.dac_bits}")
    _check(2 <= q.weight_levels <= 256, source, f"quant.weight_levels must be in 2..256, got {q.weight_levels}")
    _check(0 < d.g_off < d.g_on, source, f"need 0 < device.g_off < device.g_on, got {d.g_off} and {d.g_on}")
    _check(0.9 * d.g_on > d.g_off, source, "device.g_off must be below 0.9 * device.g_on (paper mapping)")
    # Layers larger than a tile are split over several tiles (ChipConfig.tiles).
    _check(1 <= x.tile_rows <= 4096, source, f"crossbar.tile_rows must be in 1..4096, got {x.tile_rows}")
    _check(2 <= x.tile_cols <= 4096 and x.tile_cols % 2 == 0, source,
           f"crossbar.tile_cols must be even and in 2..4096 (G+, G- pairs), got {x.tile_cols}")
    _check(1 <= x.partitions <= x.tile_rows, source, f"crossbar.partitions must be in 1..{x.tile_rows}")
    _check(0 <= x.wire_r <= 1e3, source, f"crossbar.wire_r must be in 0..1000 ohm, got {x.wire_r}")
    _check(0 < x.v_read <= 1.0, source, f"crossbar.v_read must be in (0, 1] V, got {x.v_read}")
    _check(s.tia_gain > 0, source, "sensing.tia_gain must be positive")
    _check(s.bandwidth_hz > 0, source, "sensing.bandwidth_hz must be positive")
    _check(a.kind in ("sar", "flash"), source, f"adc.kind must be sar or flash, got '{a.kind}'")
    _check(2 <= a.bits <= 16, source, f"adc.bits must be in 2..16, got {a.bits}")
    _check(a.v_fs > 0, source, "adc.v_fs must be positive")
    _check(a.noise_lsb >= 0, source, "adc.noise_lsb must be >= 0")
    _check(0 <= a.adcs_per_tile <= x.tile_cols // 2, source,
           f"adc.adcs_per_tile must be in 0..{x.tile_cols // 2} (the tile's outputs; 0 = one per output), "
           f"got {a.adcs_per_tile}")
    _check(h.interface in ("spi", "uart"), source, f"host.interface must be spi or uart, got '{h.interface}'")
    _check(4 <= h.spi_clk_div <= 1024 and h.spi_clk_div % 2 == 0, source,
           "host.spi_clk_div must be even and in 4..1024")
    _check(4 <= h.uart_divider <= 65535, source, "host.uart_divider must be in 4..65535")
    _check(cfg.clock.freq_hz > 0, source, "clock.freq_hz must be positive")
    _check(d.rate_max > 0 and d.rate_max <= 1, source, "device.rate_max must be in (0, 1]")
    _check(d.v_slope > 0, source, "device.v_slope must be positive")
    _check(d.c2c_sigma >= 0 and d.d2d_sigma >= 0, source, "device.c2c_sigma and d2d_sigma must be >= 0")
    _check(0 <= d.stuck_on_rate and 0 <= d.stuck_off_rate and d.stuck_on_rate + d.stuck_off_rate <= 1,
           source, "device.stuck_on_rate and stuck_off_rate must be >= 0 and sum to <= 1")
    _check(-1 <= d.dead_partition < x.partitions, source,
           f"device.dead_partition must be -1 (none) or a partition in 0..{x.partitions - 1}, "
           f"got {d.dead_partition}")
    _check(d.read_model in ("linear", "qmm"), source,
           f"device.read_model must be linear or qmm, got '{d.read_model}'")
    _check(0 < d.qmm_alpha_hrs <= 100 and 0 < d.qmm_alpha_lrs <= 100, source,
           f"device.qmm_alpha_hrs and qmm_alpha_lrs must be in (0, 100] 1/V, got "
           f"{d.qmm_alpha_hrs} and {d.qmm_alpha_lrs}")
    _check(0 < d.qmm_beta < 1, source, f"device.qmm_beta must be in (0, 1), got {d.qmm_beta}")
    _check(d.qmm_rs_hrs >= 0 and d.qmm_rs_lrs >= 0, source,
           "device.qmm_rs_hrs and qmm_rs_lrs must be >= 0 ohm")
    # I(V_read) / V_read < 1 / Rs whatever I0 is: the configured levels must be reachable
    _check(d.g_off * d.qmm_rs_hrs < 1 and d.g_on * d.qmm_rs_lrs < 1, source,
           "device.qmm_rs_hrs * g_off and qmm_rs_lrs * g_on must be < 1 (a series resistance "
           "Rs caps the chord conductance below 1 / Rs)")
    _check(0 <= d.read_noise_sigma <= 0.5, source,
           f"device.read_noise_sigma must be in 0..0.5 (relative), got {d.read_noise_sigma}")
    _check(d.read_noise_sigma == 0 or d.read_model == "qmm", source,
           "device.read_noise_sigma > 0 needs device.read_model = 'qmm' (a solve per read)")
    _check(0 <= d.drift_nu <= 1 and 0 <= d.drift_nu_sigma <= 1, source,
           "device.drift_nu and drift_nu_sigma must be in 0..1")
    _check(d.drift_t0_s > 0 and d.read_time_s >= d.drift_t0_s, source,
           f"need 0 < device.drift_t0_s <= device.read_time_s, got {d.drift_t0_s} and {d.read_time_s}")
    pr = cfg.programming
    _check(1 <= pr.timeout_pulses <= 65535, source, "programming.timeout_pulses must be in 1..65535")
    _check(1 <= pr.amplitude_levels <= 256, source, "programming.amplitude_levels must be in 1..256")
    _check(pr.pulses_per_level >= 1, source, "programming.pulses_per_level must be >= 1")
    _check(pr.v_set > 0 and pr.v_reset > 0 and pr.v_step >= 0, source,
           "programming.v_set and v_reset must be positive and v_step >= 0")
    _check(pr.pulse_width_ns > 0 and pr.sense_time_ns > 0, source,
           "programming.pulse_width_ns and sense_time_ns must be positive")
    _check(0 < pr.margin < 1, source, "programming.margin must be in (0, 1) level steps")
    _check(pr.bias in ("v2", "v3", "float", "ideal"), source,
           f"programming.bias must be v2, v3, float or ideal, got '{pr.bias}'")
    _check(pr.bias != "float" or x.wire_r > 0, source,
           "programming.bias = 'float' needs crossbar.wire_r > 0 (a floating line is its wire segments)")
    _check(x.cell in ("1R", "1T1R", "1S1R"), source, f"crossbar.cell must be 1R, 1T1R or 1S1R, got '{x.cell}'")
    _check(x.access_r_on >= 0, source, f"crossbar.access_r_on must be >= 0 ohm, got {x.access_r_on}")
    _check(x.selector in ("threshold", "exponential"), source,
           f"crossbar.selector must be threshold or exponential, got '{x.selector}'")
    _check(x.selector_v_th > 0 and 0 < x.selector_g_leak < x.selector_g_on, source,
           "crossbar.selector_v_th must be > 0 V and 0 < selector_g_leak < selector_g_on")
    _check(x.selector_i_s > 0 and x.selector_v0 > 0, source,
           "crossbar.selector_i_s and selector_v0 must be > 0")
    # 1S1R with QMM cells (analog_models/selector_memdiode.py): not trained through
    _check(x.cell != "1S1R" or d.read_model == "linear" or not cfg.train.device_aware, source,
           "crossbar.cell = '1S1R' with device.read_model = 'qmm': train.device_aware is not "
           "modelled (its read tables have no selector)")
    t = cfg.train
    _check(t.l2 >= 0 and t.maxiter >= 1, source, "train.l2 >= 0 and train.maxiter >= 1 required")
    _check(t.method in ("auto", "lbfgs", "qat", "manhattan"), source,
           f"train.method must be auto, lbfgs, qat or manhattan, got '{t.method}'")
    _check(t.resolved_method(len(n.layers)) != "lbfgs" or len(n.layers) == 1, source,
           "train.method 'lbfgs' trains single-layer networks only; use 'qat' (or 'auto')")
    _check(1 <= t.epochs <= 1000 and 1 <= t.batch <= 65536, source,
           "train.epochs must be in 1..1000 and train.batch in 1..65536")
    _check(0 < t.lr <= 1, source, f"train.lr must be in (0, 1], got {t.lr}")
    _check(50 <= t.calib_percentile <= 100, source,
           f"train.calib_percentile must be in 50..100, got {t.calib_percentile}")
    _check(1 <= t.manhattan_epochs <= 1000, source,
           f"train.manhattan_epochs must be in 1..1000, got {t.manhattan_epochs}")
    _check(1 <= t.manhattan_batch <= 65536, source,
           f"train.manhattan_batch must be in 1..65536, got {t.manhattan_batch}")
    _check(0 <= t.manhattan_threshold < 1, source,
           f"train.manhattan_threshold must be in [0, 1) (a fraction of the largest |gradient|), "
           f"got {t.manhattan_threshold}")
    _check(0 <= t.manhattan_init_pulses <= 1000, source,
           f"train.manhattan_init_pulses must be in 0..1000, got {t.manhattan_init_pulses}")
    _check(not t.device_aware or t.resolved_method(len(n.layers)) in ("lbfgs", "qat"), source,
           "train.device_aware applies to the lbfgs and qat recipes only")
    _check(not t.device_aware or cfg.device.read_model == "qmm", source,
           "train.device_aware needs device.read_model = 'qmm' (the read model it trains through)")
    c = cfg.cost
    for key in ("adc_fom_j", "dac_fom_j", "tia_power_w", "digital_j_per_cycle", "cell_area_um2",
                "cell_area_1r_um2", "cell_area_1s1r_um2",
                "dac_area_um2", "adc_area_um2", "tia_area_um2", "fmap_bit_area_um2"):
        _check(getattr(c, key) >= 0, source, f"cost.{key} must be >= 0, got {getattr(c, key)}")
    _check(1 <= c.images <= 100_000, source, f"cost.images must be in 1..100000, got {c.images}")


def load(path: str | Path | None = None) -> ChipConfig:
    """Load and validate a TOML config; `None` gives configs/slp.toml."""
    p = Path(path) if path is not None else DEFAULT_CONFIG
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    if p.is_dir():
        raise ConfigError(f"config path is a directory, not a TOML file: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {p}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML in {p}: {exc}") from None
    train = data.get("train")
    if isinstance(train, dict) and isinstance(train.get("weights"), str) and train["weights"]:
        # an imported network's weights file sits next to its config
        train["weights"] = str((p.parent / train["weights"]).resolve())
        if not Path(train["weights"]).is_file():
            raise ConfigError(f"{p}: train.weights names {train['weights']}, which is not a file")
    return from_dict(data, source=str(p))
