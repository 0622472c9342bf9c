"""End-to-end co-simulation through cocotb's runner: MNIST images over SPI into the generated
Verilog, the analog bridge serving the crossbar, every image checked against the golden model.
Runs on Icarus and on Verilator."""

import numpy as np
import pytest

from xbarflow.flow.sim import parity
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim.runner import build, run

IMAGES = 20


@pytest.fixture(scope="module")
def golden_chip(cfg, weights):
    return GoldenChip.from_weights(cfg, weights.w)


@pytest.fixture(scope="module")
def cosim_results():
    return {}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_images_match_golden(sim, cfg, dataset, golden_chip, cosim_results, tmp_path):
    # A spread of test images, not just the first ones.
    indices = np.linspace(0, len(dataset.y_test) - 1, IMAGES).astype(np.int64)
    result = run(build(cfg, sim), golden_chip.array.conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, cycles_every_image=True, timeout_s=600)
    codes = to_dac_codes(dataset.x_test[indices], cfg)
    golden = golden_chip.infer(codes, indices, trace=True)

    assert result.mismatches == []
    assert result.images == IMAGES
    assert np.array_equal(result.indices, indices)
    # The chip's own answers: one tile transaction per image carrying the host's DAC codes, the
    # sums read back over SPI and the class from RESULT.
    for k, image in enumerate(result.tile_dac_codes):
        assert [t for t, _ in image] == [0] and np.array_equal(image[0][1], codes[k]), k
    assert np.array_equal(result.sums, golden.adc_codes), "sums read back over SPI"
    assert np.array_equal(result.classes, golden.classes)
    assert parity.check(result, golden, codes).same.all()
    assert np.array_equal(result.bridge_adc_codes, golden.adc_codes)
    assert len(set(golden.classes.tolist())) > 3, "a meaningful spread of classes"
    cosim_results[sim] = result


def test_simulators_agree_on_cycle_counts(cosim_results):
    if set(cosim_results) != {"icarus", "verilator"}:
        pytest.fail("needs both co-simulation runs above to have passed")
    a, b = cosim_results["icarus"], cosim_results["verilator"]
    for phase in ("total", "drive", "convert", "argmax"):
        assert np.array_equal(a.cycles[phase], b.cycles[phase]), phase
    assert (a.cycles["total"] > 0).all()


# -- the scoreboard's self-test: one answer of the chip corrupted on its way to the scoreboard ------

SABOTAGE_IMAGES = np.array([7, 300, 4242])


def _expected_mismatch(kind, golden, codes):
    """(fault, image position, parity term, the scoreboard's message), from the golden model."""
    idx = SABOTAGE_IMAGES
    if kind == "sum":
        want = golden.adc_codes[1].tolist()
        seen = list(want)
        seen[3] ^= 1
        return "flip_sum:image=1,output=3", 1, "sums", f"image {idx[1]}: read-back sums {seen} != golden {want}"
    if kind == "class":
        want = int(golden.classes[2])
        return "flip_class:image=2", 2, "class", f"image {idx[2]}: class {want ^ 1} != golden {want}"
    row = 97
    return (f"flip_dac:image=0,tile=0,row={row}", 0, "dac_codes",
            f"image {idx[0]}: tile 0: DAC codes on the bus differ from the reference in rows [{row}] "
            f"(row {row}: {int(codes[0][row]) ^ 1} != {int(codes[0][row])})")


@pytest.mark.parametrize("kind", ["sum", "class", "dac"])
def test_scoreboard_reports_exactly_one_corrupted_answer(kind, cfg, dataset, golden_chip, tmp_path,
                                                         monkeypatch):
    """A read-back sum, the RESULT class or one DAC code seen on the bus has one bit flipped
    between the chip and the scoreboard (cocotb_tests/sabotage.py): the scoreboard reports exactly
    that difference, the bench fails, and parity fails for that image in that term alone."""
    from cocotb_tools.check_results import get_results

    codes = to_dac_codes(dataset.x_test[SABOTAGE_IMAGES], cfg)
    golden = golden_chip.infer(codes, SABOTAGE_IMAGES, trace=True)
    fault, bad, term, message = _expected_mismatch(kind, golden, codes)
    monkeypatch.setenv("XBARFLOW_TEST_FAULT", fault)
    result = run(build(cfg, "verilator"), golden_chip.array.conductance, dataset.x_test[SABOTAGE_IMAGES],
                 dataset.y_test[SABOTAGE_IMAGES], SABOTAGE_IMAGES, tmp_path, timeout_s=600)

    assert result.mismatches == [message]
    assert get_results(tmp_path / "results-verilator.xml") == (1, 1), "the bench's test failed"
    verdict = parity.check(result, golden, codes)
    assert verdict.same.tolist() == [k != bad for k in range(len(SABOTAGE_IMAGES))]
    assert verdict.failures() == [f"image {SABOTAGE_IMAGES[bad]}: differs from golden in {term}"]
    assert np.array_equal(result.bridge_adc_codes, golden.adc_codes), "the analog side was untouched"
