"""A layered network co-simulated: the tiny CNN of tests/support/tiny_cnn.py (6 x 6 image, conv
3x3x2 with zero padding, max pool 2, flatten, dense 4, dense 3 on 10 tiles of 8 x 4) on Icarus
and Verilator, with keyed ADC noise: the bridge keys VMM event j of image i by i * events_per_image + j, the
scoreboard checks every event (tile, window slice on the DAC bus, ADC codes) against the golden
trace, the class and sums read back equal the golden model's, and the cycle counters read over
SPI equal the controller's phase lengths plus the bridge's analog waits."""

import numpy as np
import pytest

from xbarflow.flow.analysis import cost
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim import parity
from xbarflow.flow.sim.runner import build, run
from xbarflow.flow.sim.schema import LAYERED_CYCLE_COUNTERS

from tests.support.layered_cycles import expected_phases
from tests.support.tiny_cnn import tiny_cfg

IMAGES = 6


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_tiny_cnn_cosimulates_at_parity(sim, dataset, tmp_path):
    cfg = tiny_cfg(**{"adc.noise_lsb": 0.7})
    rng = np.random.default_rng(5)
    weights = [rng.normal(size=shape) for shape in cfg.network.layer_shapes]
    chip = GoldenChip.from_weights(cfg, weights, requant_mult=[60, 120])
    indices = np.arange(IMAGES, dtype=np.int64) * 101
    images = dataset.x_test[indices]
    result = run(build(cfg, sim), chip.layer_conductance, images, dataset.y_test[indices],
                 indices, tmp_path, timeout_s=900, requant_mult=chip.requant_mult)
    codes = to_dac_codes(images, cfg)
    golden = chip.infer(codes, indices, trace=True)

    assert result.mismatches == []
    trace = golden.trace
    for k, image in enumerate(result.tile_dac_codes):   # every VMM event, in order
        assert [t for t, _ in image] == [ev.tile for ev in trace.events], k
        for j, (t, driven) in enumerate(image):
            assert np.array_equal(driven, trace.event_dac_codes(j)[k][:cfg.tiles[t].rows]), (k, j)
    assert len(result.tile_dac_codes[0]) == cfg.events_per_image
    assert np.array_equal(result.sums, golden.adc_codes), "sums read back over SPI"
    assert np.array_equal(result.classes, golden.classes)
    assert len(set(golden.classes.tolist())) > 1, "a spread of classes"
    assert parity.check(result, golden, codes).same.all()
    # The chip's cycle counters: the controller's phases from the geometry, and the analog
    # side's waits as the bridge answers them (settling per event, conversion + 1 per group).
    settle, conversion = chip.tiles[0].array.latency_cycles()
    groups = cfg.tile_adc_groups
    drive = len(trace.events) * settle
    convert = sum(groups[ev.tile] * conversion + 1 for ev in trace.events)
    phases = expected_phases(cfg)
    assert set(result.cycles["drive"]) == {drive}
    assert set(result.cycles["convert"]) == {convert}
    assert set(result.cycles["argmax"]) == {phases["cycles_argmax"]}
    assert set(result.cycles["total"]) == {phases["cycles_total"] + drive + convert}
    model = cost.phase_cycles(cfg)                  # the cost model's phases, the same clocks
    for phase in ("drive", "convert", "argmax"):
        assert set(result.cycles[phase]) == {model[phase]}, phase
    assert set(result.cycles["total"]) == {sum(model.values())}
    # The layered controller's phase counters, read over SPI (CYCLES_LOAD_WINDOW .. CYCLES_POOL):
    # the hand-counted phase lengths and the cost model's.
    for phase in LAYERED_CYCLE_COUNTERS:
        assert set(result.cycles[phase]) == {phases[f"cycles_{phase}"]} == {model[phase]}, phase


# -- cnn.toml with its trained reference weights (issue #18's done-means) -----------------------------

CNN_IMAGES = 20


def _cnn_toml_cosim(sim, images, dataset, tmp_path):
    """cnn.toml's reference weights co-simulated on `images` spread test images: the scoreboard
    checked every VMM event (tile, the window's codes on the DAC bus, the tile's ADC codes)
    against the golden trace; here the driven codes are checked again, the sums read back and
    the class, parity, and the chip's cycle counters against the cost model."""
    from xbarflow.flow.core import config as cfgmod
    from xbarflow.flow.model.weights import load_reference

    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "cnn.toml")
    assert cfg.network.layered and cfg.events_per_image == 706
    weights = load_reference(cfg, dataset)
    assert weights is not None, "the shipped reference weights (data/weights/cnn-qat.npz)"
    chip = GoldenChip.from_weights(cfg, weights)
    indices = np.linspace(0, len(dataset.y_test) - 1, images).astype(np.int64)
    result = run(build(cfg, sim), chip.layer_conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, timeout_s=3600,
                 requant_mult=chip.requant_mult)
    codes = to_dac_codes(dataset.x_test[indices], cfg)
    golden = chip.infer(codes, indices, trace=True)

    assert result.mismatches == []
    assert result.images == images
    trace = golden.trace
    for k, image in enumerate(result.tile_dac_codes):   # every VMM event, in order
        assert [t for t, _ in image] == [ev.tile for ev in trace.events], k
        for j, (t, driven) in enumerate(image):
            assert np.array_equal(driven, trace.event_dac_codes(j)[k][:cfg.tiles[t].rows]), (k, j)
    assert np.array_equal(result.sums, golden.adc_codes), "sums read back over SPI"
    assert np.array_equal(result.classes, golden.classes)
    assert np.array_equal(result.bridge_adc_codes, golden.adc_codes)
    assert parity.check(result, golden, codes).same.all()
    assert np.mean(result.classes == dataset.y_test[indices]) >= 0.9
    model = cost.phase_cycles(cfg)
    for phase in ("drive", "convert", "argmax"):
        assert set(result.cycles[phase]) == {model[phase]}, phase
    assert set(result.cycles["total"]) == {sum(model.values())} == {40_175}
    # The layered controller's phase counters read over SPI against the cost model (README: 8,705
    # clocks loading windows, 6,676 accumulating, 5,632 activating, 7,204 pooling).
    read_back = {phase: set(result.cycles[phase]) for phase in LAYERED_CYCLE_COUNTERS}
    assert read_back == {phase: {model[phase]} for phase in LAYERED_CYCLE_COUNTERS}
    assert read_back == {"load_window": {8705}, "accumulate": {6676}, "activate": {5632}, "pool": {7204}}


def test_cnn_toml_cosimulates_at_parity_on_verilator(dataset, tmp_path):
    _cnn_toml_cosim("verilator", CNN_IMAGES, dataset, tmp_path)


def test_cnn_toml_cosimulates_at_parity_on_icarus_two_images(dataset, tmp_path):
    """`make test`'s Icarus check of cnn.toml (~30-40 s an image here); `make cosim-slow` runs 20."""
    _cnn_toml_cosim("icarus", 2, dataset, tmp_path)


@pytest.mark.slow
@pytest.mark.cosim_slow
def test_cnn_toml_cosimulates_at_parity_on_icarus(dataset, tmp_path):
    _cnn_toml_cosim("icarus", CNN_IMAGES, dataset, tmp_path)


@pytest.mark.slow
@pytest.mark.cosim_slow
def test_cnn_toml_sim_200_images_at_parity(tmp_path):
    """`xbarflow sim --config configs/cnn.toml --images 200 --jobs 2` (Verilator, sharded)."""
    import json

    from xbarflow.flow.cli import main
    from xbarflow.flow.core import config as cfgmod

    argv = ["sim", "--config", str(cfgmod.CONFIG_DIR / "cnn.toml"), "--images", "200",
            "--jobs", "2", "--out", str(tmp_path / "sim")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "sim" / "report.json").read_text())
    assert report["images"] == 200 and report["simulator"] == "verilator"
    assert report["parity"] == 1.0 and report["mismatched_images"] == 0 and report["mismatches"] == []
    assert report["cosim_accuracy"] == report["golden_accuracy"] >= 0.95
    assert report["cycles_per_inference"] == 40_175
