"""The Python API (`xbarflow.flow.api`): the chip's golden model, Verilog and co-simulation as
numpy arrays and result objects, checked against the flow's own chain built here by hand."""

import json

import numpy as np
import pytest

from xbarflow.flow.api import Chip
from xbarflow.flow.core.config import ConfigError
from xbarflow.flow.data import DataError, image_to_codes, to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.programming import program_array, programmed_chip, tile_target_levels

IMAGES = np.array([0, 1, 2])


@pytest.fixture(scope="module")
def chip():
    return Chip.from_config("configs/slp.toml")


def test_classify_is_the_golden_model(chip, cfg, dataset, weights):
    golden = GoldenChip.from_weights(cfg, weights)
    codes = to_dac_codes(dataset.x_test, cfg)
    full = golden.infer(codes)
    want = full.classes
    images, labels = chip.test_images(50)
    assert np.array_equal(chip.infer(images).adc_codes, full.adc_codes[:50])
    assert np.array_equal(labels, dataset.y_test[:50])
    classes = chip.classify(images)
    assert classes.dtype.kind == "i" and np.array_equal(classes, want[:50])
    assert chip.accuracy() == float(np.mean(want == dataset.y_test))
    assert chip.accuracy(images, labels) == float(np.mean(want[:50] == dataset.y_test[:50]))
    # one 2-D image of another size is area-resized as `xbarflow classify` does
    big = np.kron(dataset.x_test[7], np.ones((2, 2), dtype=np.uint8))
    assert chip.classify(big)[0] == golden.infer(image_to_codes(big, cfg)[None]).classes[0]


def test_bad_input_raises_one_line(chip, tmp_path):
    with pytest.raises(DataError, match="uint8"):
        chip.classify(np.zeros((2, 28, 28), dtype=np.float32))
    with pytest.raises(DataError, match="smaller"):
        chip.classify(np.zeros((2, 4, 4), dtype=np.uint8))
    with pytest.raises(DataError, match="test images"):
        chip.test_images(10**6)
    with pytest.raises(ConfigError, match="not found"):
        Chip.from_config(tmp_path / "missing.toml")


def test_overrides_make_another_chip(chip):
    other = Chip.from_config(None, overrides={"device.stuck_on_rate": 0.05})
    assert other.cfg.device.stuck_on_rate == 0.05 and other.cfg.digest() != chip.cfg.digest()


def test_verilog(chip, tmp_path):
    rtl = chip.verilog(tmp_path)
    assert rtl.verilog == tmp_path / "xbarflow_top.v" and "module xbarflow_top" in rtl.verilog.read_text()
    assert json.loads(rtl.sidecar.read_text())["config_digest"] == chip.cfg.digest()


def test_program_golden_replay(chip, cfg, weights, dataset):
    done = chip.program(sim=None)
    replay = program_array(cfg, tile_target_levels(cfg, weights.w))
    assert np.array_equal(done.targets, tile_target_levels(cfg, weights.w))
    assert done.golden.failures == replay.failures and done.cosim is None
    codes = to_dac_codes(dataset.x_test[:200], cfg)
    assert np.array_equal(done.chip.infer(codes).adc_codes,
                          programmed_chip(cfg, replay).infer(codes).adc_codes)


@pytest.mark.parametrize("fault", [None, "flip_class:image=1"])
def test_cosimulate_checks_parity_on_what_the_rtl_computed(chip, cfg, dataset, weights, fault,
                                                           tmp_path, monkeypatch):
    """At parity the chip's classes and read-back sums are the golden model's; a class flipped
    between the chip and the scoreboard (cocotb_tests/sabotage.py) is one image off parity."""
    if fault:
        monkeypatch.setenv("XBARFLOW_TEST_FAULT", fault)
    golden = GoldenChip.from_weights(cfg, weights).infer(to_dac_codes(dataset.x_test[IMAGES], cfg), IMAGES)
    run = chip.cosimulate(dataset.x_test[IMAGES], dataset.y_test[IMAGES], sim="verilator",
                          out_dir=tmp_path, indices=IMAGES)
    assert np.array_equal(run.golden_classes, golden.classes)
    assert np.array_equal(run.golden_sums, golden.adc_codes)
    assert np.array_equal(run.sums, golden.adc_codes)
    if fault is None:
        assert run.ok and run.parity == 1.0 and np.array_equal(run.classes, golden.classes)
        # the README's phase lengths: LOAD 1, DRIVE 4, CONVERT 10, ACCUMULATE 10, NEXT_TILE 1,
        # ARGMAX 12, DONE 1
        assert run.cycles == {"total": 39, "drive": 4, "convert": 10, "argmax": 12}
    else:
        assert not run.ok and run.mismatched_images == 1 and run.parity == pytest.approx(2 / 3)
        assert run.failures == (f"image {IMAGES[1]}: differs from golden in class",)
        assert run.classes[1] == golden.classes[1] ^ 1
    assert run.accuracy == float(np.mean(run.classes == dataset.y_test[IMAGES]))
