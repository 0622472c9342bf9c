"""Independent oracle of the SLP tile's read path: ADC codes derived by hand from the numbers in
configs/slp.toml, never from the code under test.

The oracle reads the TOML itself (tomllib, every number as an exact fraction) and computes, with
plain rational arithmetic:

    G(level)  = (0.9 g_on - g_off) * level / (L - 1) + g_off        paper: I* = (0.9 I_max - I_min) G + I_min
                                                                    (I = G V_read, G normalised in [0, 1])
    V_i       = code_i * V_read / (2**dac_bits - 1)                 row DAC, full code = V_read
    I_k       = sum_i V_i (G+_ik - G-_ik)                           differential pair, column 2k minus 2k+1
    V_tia,k   = tia_gain * I_k                                      TIA: V = gain * (I+ - I-)
    lsb       = v_fs / 2**(bits - 1)                                signed ADC on [-v_fs, v_fs)
    code_k    = clip(floor(V_tia,k / lsb + 1/2), -2**(bits-1), 2**(bits-1) - 1)   round half up, saturate

and compares it with `analog_models` (level_conductance, AnalogArray's exact effective-matrix
path and its ideal float path, map_weights, GoldenChip) and with what the co-simulated chip
reads back over SPI for the same stimuli. The stimuli include one cell at full input, a row of
cells, both ADC rails, negative outputs and values a few thousandths of an LSB from a rounding
boundary; each such margin is asserted against a first-principles bound of the IR drop of the
configured 1 ohm wires, so the expected codes hold on the real tile.
"""

import math
import tomllib
from fractions import Fraction

import numpy as np
import pytest

from xbarflow.analog_models.array import AnalogArray
from xbarflow.analog_models.mapping import level_conductance, map_weights
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.model.golden import GoldenChip

SLP_TOML = cfgmod.CONFIG_DIR / "slp.toml"


# -- the oracle: numbers straight from the TOML, exact arithmetic ------------------------------

def toml_numbers(path=SLP_TOML):
    """The config's numbers as exact fractions of the decimals written in the file."""
    with open(path, "rb") as f:
        return tomllib.load(f, parse_float=Fraction)


RAW = toml_numbers()
G_ON, G_OFF = RAW["device"]["g_on"], RAW["device"]["g_off"]
LEVELS = RAW["quant"]["weight_levels"]
DAC_MAX = 2 ** RAW["quant"]["dac_bits"] - 1
V_READ = RAW["crossbar"]["v_read"]
TIA_GAIN = RAW["sensing"]["tia_gain"]
BITS = RAW["adc"]["bits"]
LSB = RAW["adc"]["v_fs"] / 2 ** (BITS - 1)            # volts per code step
CODE_LO, CODE_HI = -2 ** (BITS - 1), 2 ** (BITS - 1) - 1
ROWS = RAW["network"]["input_size"] ** 2
OUTPUTS = RAW["network"]["layers"][-1]
PARTITIONS = RAW["crossbar"]["partitions"]
WIRE_R = RAW["crossbar"]["wire_r"]
SEED_NOISE = RAW["seeds"]["noise"]


def oracle_g(level):
    """Paper mapping: G = (0.9 g_on - g_off) * level / (L - 1) + g_off (exact)."""
    return (Fraction(9, 10) * G_ON - G_OFF) * Fraction(level, LEVELS - 1) + G_OFF


def oracle_lsb_units(codes, signed_levels):
    """TIA volts / lsb of each output, exact: sum_i V_i (G+ - G-) * gain / lsb. `signed_levels`
    is (rows, outputs) of level+ - level- (g_off cancels in the pair)."""
    out = []
    for k in range(OUTPUTS):
        current = sum(Fraction(int(c)) * V_READ / DAC_MAX * (oracle_g(max(d, 0)) - oracle_g(max(-d, 0)))
                      for c, d in zip(codes, signed_levels[:, k].tolist()) if c and d)
        out.append(TIA_GAIN * current / LSB)
    return out


def oracle_code(x):
    """Round half up, then saturate at both rails."""
    return min(max(math.floor(x + Fraction(1, 2)), CODE_LO), CODE_HI)


def boundary_distance(x):
    """Distance (in LSB) of x from the nearest rounding boundary k + 1/2."""
    return abs((x - math.floor(x)) - Fraction(1, 2))


def oracle_pair_conductance(signed_levels):
    """(G+, G-) in S, each (rows, outputs), of signed levels d: level+ = max(d, 0), level- = max(-d, 0)."""
    g = np.vectorize(lambda l: float(oracle_g(int(l))))
    return g(np.maximum(signed_levels, 0)), g(np.maximum(-signed_levels, 0))


def ir_bound_lsb(codes, g_plus, g_minus):
    """First-order bound (in LSB) of what the wire resistance can move each output.

    Row i carries at most V_i * sum_j G_ij through at most `cols` segments (DAC to the last
    cell), so its nodes sag by dr_i <= wire_r * cols * V_i * sum_j G_ij. Column j of a partition
    carries at most sum_i V_i G_ij through at most rows_p segments into the virtual ground, so
    its nodes rise by vc_j <= wire_r * rows_p * sum_i V_i G_ij. Each cell current then differs
    from V_i G_ij by at most G_ij (dr_i + vc_j), and an output by the sum over both columns of
    its pair. wire_r * G * segments ~ 1e-5 here, so the factor 2 covers every higher order."""
    v = np.array([float(c) for c in codes]) * float(V_READ / DAC_MAX)
    g = np.empty((ROWS, 2 * OUTPUTS))
    g[:, 0::2], g[:, 1::2] = g_plus, g_minus
    cols, wire = g.shape[1], float(WIRE_R)
    dr = wire * cols * v * g.sum(axis=1)
    err = np.zeros(OUTPUTS)
    for part in np.array_split(np.arange(ROWS), PARTITIONS):
        vc = wire * len(part) * (v[part, None] * g[part]).sum(axis=0)
        cell = g[part] * (dr[part, None] + vc[None, :])
        err += cell[:, 0::2].sum(axis=0) + cell[:, 1::2].sum(axis=0)
    return 2 * err * float(TIA_GAIN / LSB)


# -- the stimuli: a hand-made level matrix and DAC code vectors -------------------------------
# Signed levels d = level+ - level- per (row, output); one unit of code * level is
#   C = V_read (0.9 g_on - g_off) tia_gain / (dac_max (L - 1) lsb) = 0.0935914 LSB here,
# and a cell at full level and full input gives V_read (0.9 g_on - g_off) tia_gain / lsb = 43.52.

ROW_OF_CELLS = 100     # one row driving cells on every output
ROW_OF_CELLS_LEVELS = [31, -31, 17, -5, 0, 1, 2, -1, 11, 25]
SINGLE_CELL = 7        # the only programmed cell of its row, output 0
SATURATE = (20, 21, 22)
NEAR_BOUNDARY = {40: (5, 31), 41: (6, -16), 50: (7, 13), 51: (7, 8)}   # row: (output, level)


def signed_level_matrix():
    d = np.zeros((ROWS, OUTPUTS), dtype=np.int64)
    d[ROW_OF_CELLS] = ROW_OF_CELLS_LEVELS
    d[SINGLE_CELL, 0] = 31
    for r in SATURATE:
        d[r, 2], d[r, 3] = 31, -31      # three full cells: 130.56 LSB, past both rails
    d[SATURATE[0], 4], d[SATURATE[1], 4], d[SATURATE[2], 4] = 31, 31, 29   # 127.75: rounds up into the rail
    for r, (k, level) in NEAR_BOUNDARY.items():
        d[r, k] = level
    return d


def stimulus(**codes_by_row):
    v = np.zeros(ROWS, dtype=np.int64)
    for row, code in codes_by_row.items():
        v[int(row.removeprefix("r"))] = code
    return v


STIMULI = {
    # one cell at full input: out0 = 43.52 -> 44 (0.02 LSB above a boundary)
    "single_cell_full_input": stimulus(r7=15),
    # a row of cells at full input: 43.52, -43.52 -> -44, 23.87, -7.02, 0, 1.40, 2.81, -1.40 -> -1, ...
    "row_of_cells_full_input": stimulus(r100=15),
    # the same row at code 1: every output a fifteenth, e.g. out0 = 2.90 -> 3, out3 = -0.47 -> 0
    "row_of_cells_code_1": stimulus(r100=1),
    # three full cells per column: +130.56 -> 127, -130.56 -> -128, 127.75 -> 127
    "saturation_both_rails": stimulus(r20=15, r21=15, r22=15),
    # out5 = 5 * 31 C = 14.5067 -> 15 (floor: 14); out6 = -16 C = -1.4975 -> -1 (floor: -2);
    # out7 = (15 * 13 + 3 * 8) C = 20.4965 -> 20
    "near_rounding_boundaries": stimulus(r40=5, r41=1, r50=15, r51=3),
    # everything at once, with a tie-free argmax
    "all_rows_driven": stimulus(r7=15, r100=9, r20=4, r40=5, r41=1, r50=15, r51=3),
}


@pytest.fixture(scope="module")
def cfg():
    return cfgmod.load(SLP_TOML)


@pytest.fixture(scope="module")
def levels():
    return signed_level_matrix()


@pytest.fixture(scope="module")
def oracle(levels):
    """name -> (exact LSB values, expected codes) for every stimulus."""
    out = {}
    for name, codes in STIMULI.items():
        x = oracle_lsb_units(codes.tolist(), levels)
        out[name] = (x, [oracle_code(v) for v in x])
    return out


def device_levels(levels):
    """Interleaved (rows, 2 outputs) level codes: level+ in column 2k, level- in 2k + 1."""
    lv = np.zeros((ROWS, 2 * OUTPUTS), dtype=np.int64)
    lv[:, 0::2], lv[:, 1::2] = np.maximum(levels, 0), np.maximum(-levels, 0)
    return lv


@pytest.fixture(scope="module")
def conductance(cfg, levels):
    """The code under test's conductances of the hand-made levels (`level_conductance`)."""
    return level_conductance(device_levels(levels), cfg)


# -- the oracle's own claims about the stimuli -------------------------------------------------

def test_the_stimuli_cover_what_they_claim(oracle):
    x_full, codes_full = oracle["single_cell_full_input"]
    assert x_full[0] == Fraction(4352, 100) and codes_full[0] == 44, "43.52 LSB: a full cell"
    assert codes_full[1:] == [0] * (OUTPUTS - 1)
    row = oracle["row_of_cells_full_input"][1]
    assert row[:2] == [44, -44] and min(row) < 0 and len(set(row)) >= 8
    sat = oracle["saturation_both_rails"]
    assert sat[1][2:5] == [CODE_HI, CODE_LO, CODE_HI]
    assert sat[0][2] > CODE_HI + 1 and sat[0][3] < CODE_LO - 1 and CODE_HI < sat[0][4] < CODE_HI + 1
    near_x, near = oracle["near_rounding_boundaries"]
    assert near[5:8] == [15, -1, 20]
    assert all(boundary_distance(near_x[k]) < Fraction(1, 100) for k in (5, 6, 7))
    assert near_x[5] > 0 and math.floor(near_x[5]) != near[5], "out5 rounds up: floor would differ"
    assert near_x[6] < 0 and math.floor(near_x[6]) != near[6], "out6 rounds toward zero"


@pytest.mark.parametrize("name", list(STIMULI))
def test_margins_exceed_the_ir_drop_bound(name, oracle, levels):
    """Every expected code is safe on the real 1 ohm tile: each value's distance from its
    rounding boundary exceeds what the wires can move it."""
    bound = ir_bound_lsb(STIMULI[name], *oracle_pair_conductance(levels))
    x, _ = oracle[name]
    for k, v in enumerate(x):
        if CODE_LO - Fraction(1, 2) < v < CODE_HI + Fraction(1, 2):
            assert boundary_distance(v) > bound[k], f"{name} out{k}: {float(v)} within {bound[k]} of a boundary"
        assert bound[k] < 1e-2


# -- the code under test against the oracle ----------------------------------------------------

def test_level_conductance_is_the_paper_mapping(cfg):
    levels = np.arange(LEVELS)
    got = level_conductance(levels, cfg)
    want = np.array([float(oracle_g(int(l))) for l in levels])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    assert got[0] == float(G_OFF) and got[-1] == pytest.approx(0.9 * float(G_ON), rel=1e-13)


@pytest.mark.parametrize("name", list(STIMULI))
def test_analog_array_codes_match_the_oracle(name, cfg, conductance, oracle, levels):
    """The effective-matrix path on the configured tile (wire_r, partitions as in the TOML)."""
    array = AnalogArray(cfg, conductance)
    x, want = oracle[name]
    assert array.adc_codes(STIMULI[name]).tolist() == want
    # The exact VMM's volts sit where the oracle says, within the bound of the IR drop.
    volts = array.scores_volts(STIMULI[name]) / float(LSB)
    bound = ir_bound_lsb(STIMULI[name], *oracle_pair_conductance(levels))
    assert np.all(np.abs(volts - [float(v) for v in x]) <= bound + 1e-9)


@pytest.mark.parametrize("name", list(STIMULI))
def test_ideal_wires_match_the_oracle_exactly(name, cfg, conductance, oracle):
    """wire_r = 0: no IR drop, so both the exact integer-grid path and the float path (DAC
    voltages -> G -> differential TIA) must give the oracle's volts to rounding error."""
    array = AnalogArray(cfg.replace(**{"crossbar.wire_r": 0.0}), conductance)
    x, want = oracle[name]
    exact = np.array([float(v) for v in x])
    np.testing.assert_allclose(array.scores_volts(STIMULI[name]) / float(LSB), exact, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(array.ideal_scores_volts(STIMULI[name]) / float(LSB), exact,
                               rtol=1e-9, atol=1e-9)
    assert array.adc_codes(STIMULI[name]).tolist() == want


def test_batched_and_golden_paths_match_the_oracle(cfg, conductance, oracle):
    codes = np.stack(list(STIMULI.values()))
    want = np.array([oracle[name][1] for name in STIMULI])
    assert np.array_equal(AnalogArray(cfg, conductance).adc_codes(codes), want)
    golden = GoldenChip(cfg, conductance).infer(codes)
    assert np.array_equal(golden.adc_codes, want)
    # Class: the first (lowest-index) maximum.
    assert golden.classes.tolist() == [row.index(max(row)) for row in want.tolist()]


def test_weights_through_the_paper_normalisation(cfg):
    """W -> Wn = W / (max W - min W), G+ = max(Wn, 0), G- = max(-Wn, 0), levels
    round((L - 1) Wn): integer-valued weights spanning exactly L - 1 give the levels back."""
    i, k = np.meshgrid(np.arange(ROWS), np.arange(OUTPUTS), indexing="ij")
    d = (i * 7 + k * 5) % LEVELS - 13                      # integers in -13 .. 18, both ends hit
    assert d.min() == -13 and d.max() == 18
    weights = d / 3.7                                       # any scale: the mapping normalises
    mapping = map_weights(weights, cfg)
    want_levels = device_levels(d)
    assert np.array_equal(mapping.levels, want_levels)
    want_g = np.vectorize(lambda l: float(oracle_g(int(l))))(want_levels)
    np.testing.assert_allclose(mapping.conductance, want_g, rtol=1e-13, atol=0)
    # A row of cells at full input and a column-wide stimulus through the whole chip model.
    chip = GoldenChip.from_weights(cfg, weights)
    stimuli = np.stack([stimulus(r3=15), np.arange(ROWS) % (DAC_MAX + 1) // 5])
    want = []
    for s in stimuli:
        x = oracle_lsb_units(s.tolist(), d)
        bound = ir_bound_lsb(s, *oracle_pair_conductance(d))
        assert all(boundary_distance(v) > b for v, b in zip(x, bound) if CODE_LO < v < CODE_HI)
        want.append([oracle_code(v) for v in x])
    assert chip.infer(stimuli).adc_codes.tolist() == want
    assert min(want[0]) < 0 < max(want[0])


def test_noise_adds_the_keyed_draw_before_rounding(cfg, conductance, oracle):
    """With noise: code = clip(floor(V / lsb + sigma z + 1/2)), z the standard normals of
    numpy's generator keyed [seeds.noise, tile, event] (the ADC's documented key)."""
    sigma = Fraction(7, 10)
    # Ideal wires, so the oracle's volts are exact and only the noise moves the codes.
    noisy = AnalogArray(cfg.replace(**{"adc.noise_lsb": float(sigma), "crossbar.wire_r": 0.0}),
                        conductance)
    x, _ = oracle["row_of_cells_full_input"]
    changed = 0
    for event in (0, 1, 17):
        z = np.random.default_rng([SEED_NOISE, 0, event]).standard_normal(OUTPUTS)
        noisy_x = [v + Fraction(float(sigma) * zk) for v, zk in zip(x, z)]
        assert all(boundary_distance(v) > 1e-6 for v in noisy_x)
        want = [oracle_code(v) for v in noisy_x]
        assert noisy.adc_codes(STIMULI["row_of_cells_full_input"], event).tolist() == want
        changed += sum(w != oracle_code(v) for w, v in zip(want, x))
    assert changed > 0, "the noise moves some codes"


# -- the co-simulated chip ----------------------------------------------------------------------

def test_cosimulated_chip_reads_back_the_oracle_codes(cfg, conductance, oracle, tmp_path,
                                                      tmp_path_factory):
    """The stimuli as 14 x 14 images (pixel = 17 * code, so to_dac_codes gives the code back)
    through the Icarus-simulated chip; the sums the RTL read back and its RESULT class."""
    from xbarflow.flow.sim.runner import build, run

    codes = np.stack(list(STIMULI.values()))
    side = RAW["network"]["input_size"]
    images = (codes * (255 // DAC_MAX)).astype(np.uint8).reshape(len(codes), side, side)
    want = np.array([oracle[name][1] for name in STIMULI])
    sim_root = tmp_path_factory.getbasetemp() / "sim-builds"
    result = run(build(cfg, "icarus", root=sim_root), conductance, images,
                 np.zeros(len(codes), dtype=np.int64), np.arange(len(codes)), tmp_path,
                 timeout_s=600)
    assert result.mismatches == []
    assert all(len(image) == 1 and image[0][0] == 0 and np.array_equal(image[0][1], code)
               for image, code in zip(result.tile_dac_codes, codes))
    assert np.array_equal(result.sums, want), "the RTL's read-back sums"
    assert result.classes.tolist() == [row.index(max(row)) for row in want.tolist()]
