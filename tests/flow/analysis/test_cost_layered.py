"""The cost model on a layered network, from first principles: a 6x6 image, conv 3x3 -> 2
channels (16 positions), 2x2 max pool, flatten, dense 2, on 8 x 4 tiles. Every count below is
worked out by hand here; the crossbar read power is summed over windows built with loops."""

import tomllib

import numpy as np
import pytest

from xbarflow.analog_models.sensing import settling_cycles
from xbarflow.flow.analysis import cost
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.weights import Weights

TINY = """
name = "tiny_cnn"
[network]
input_size = 6
layers = [
  { kind = "conv", out_channels = 2, kernel = 3, activation = "relu" },
  { kind = "pool", mode = "max", size = 2 },
  { kind = "flatten" },
  { kind = "dense", outputs = 2, activation = "none" },
]
[crossbar]
tile_rows = 8
tile_cols = 4
partitions = 2
wire_r = 0.0
[adc]
bits = 8
kind = "sar"
"""


@pytest.fixture(scope="module")
def tiny():
    cfg = cfgmod.from_dict(tomllib.loads(TINY), source="test")
    rng = np.random.default_rng(11)
    layers = tuple(rng.standard_normal(shape) for shape in cfg.network.layer_shapes)
    weights = Weights(w=layers[0], config_digest="test", layers=layers, requant_mult=(50,))
    codes = rng.integers(0, 16, (5, 36))
    return cfg, weights, codes


def test_tiny_conv_geometry_is_what_the_counts_assume(tiny):
    cfg, _, _ = tiny
    # conv: 9 im2col rows -> row tiles of 8 and 1, 2 outputs in one column tile; dense: 8 x 2
    assert [(t.layer, t.rows, t.outputs) for t in cfg.tiles] == [(0, 8, 2), (0, 1, 2), (1, 8, 2)]
    assert cfg.network.positions == (16, 1) and cfg.events_per_image == 16 * 2 + 1


def test_phase_cycles_of_a_tiny_conv(tiny):
    cfg, _, _ = tiny
    settle = settling_cycles(cfg)
    assert cost.phase_cycles(cfg) == {
        "start_step": 3,                                       # conv, pool, dense
        # Per output row: the first window (9 rows + 1), then 3 sliding on (3 new rows + 1 + 1);
        # the dense layer's 8 inputs + 1.
        "load_window": 4 * ((9 + 1) + 3 * (3 + 2)) + (8 + 1),
        "load": 33,
        "drive": 33 * settle,
        "convert": 33 * (9 + 1),                               # SAR 8 bits: 9 cycles, + 1
        "accumulate": 16 * (2 + 2) + 2,
        "next_tile": 33,
        "activate": 16 * 2,                                    # conv outputs; the last dense none
        "next_position": 16,                                   # the last dense layer has none
        "pool": 2 * 2 * (2 * 4 + 1 + 2) + 2,                   # 4 positions: 8 reads, 1, 2 writes
        "next_step": 2,
        "argmax": 2 + 2,
        "done": 1,
    }


def test_energy_ops_and_area_count_every_vmm(tiny):
    cfg, weights, codes = tiny
    r = cost.evaluate(cfg, weights, codes)
    c, period = cfg.cost, 1 / cfg.clock.freq_hz
    assert r.ops == 2 * (16 * 9 * 2 + 8 * 2)
    assert r.energy_j["row DACs"] == pytest.approx((16 * (8 + 1) + 8) * c.dac_fom_j * 16)
    assert r.energy_j["ADCs"] == pytest.approx((16 * (2 + 2) + 2) * c.adc_fom_j * 256)
    tile_s = (settling_cycles(cfg) + 9 + 1) * period          # one ADC group per tile
    assert r.energy_j["TIAs"] == pytest.approx((16 * 4 + 2) * c.tia_power_w * tile_s)
    assert r.energy_j["digital"] == pytest.approx(c.digital_j_per_cycle * sum(r.cycles.values()))
    assert r.meta["vmm_events"] == 33

    # crossbar read at wire_r = 0: sum over rows of V_i^2 * sum_j G_ij, for every window
    chip = GoldenChip.from_weights(cfg, weights)
    g = [t.array.conductance for t in chip.tiles]
    volts = cfg.crossbar.v_read / cfg.quant.dac_max
    energy = 0.0
    for img in codes:
        x = img.reshape(6, 6)
        for oy in range(4):
            for ox in range(4):
                window = [int(x[oy + ky, ox + kx]) for ky in range(3) for kx in range(3)]
                for tile, (lo, hi) in zip(g[:2], [(0, 8), (8, 9)]):
                    energy += sum((window[lo + i] * volts) ** 2 * tile[i].sum() for i in range(hi - lo))
    # the dense layer reads the pooled map (the golden maps are checked in test_golden_layered)
    traced = chip.infer(codes, trace=True).trace
    dense_in = traced.windows[1][:, 0, :]
    for v in dense_in:
        energy += sum((int(v[i]) * volts) ** 2 * g[2][i].sum() for i in range(8))
    assert r.energy_j["crossbar read"] == pytest.approx(energy / len(codes) * tile_s, rel=1e-12)

    # area: 3 tiles of 8 x 4 cells (1R, the default cell); feature maps 36 + 32 + 8 codes of 4 bits
    assert cfg.crossbar.cell == "1R"
    assert r.area_um2["crossbar cells"] == pytest.approx(3 * 8 * 4 * c.cell_area_1r_um2)
    assert r.area_um2["feature-map memory"] == pytest.approx((36 + 32 + 8) * 4 * c.fmap_bit_area_um2)
    assert "VMM events per inference (positions x tiles)" in "\n".join(r.table())


def test_a_dense_config_has_no_feature_map_memory():
    slp = cfgmod.load()
    assert "fmap_bit_area_um2" not in slp.to_dict()["cost"]      # digests of dense configs stay
    changed = slp.replace(**{"cost.fmap_bit_area_um2": 0.5})
    assert changed.cost.fmap_bit_area_um2 == 0.5 and changed.digest() != slp.digest()
