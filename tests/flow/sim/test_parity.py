"""Parity is on what the chip computed (`xbarflow.flow.sim.parity`): the class from RESULT, the final-layer
sums read back and the DAC codes driven tile by tile, never the analog bridge's own codes.

The unit tests feed hand-written answers and golden results; the co-simulations apply a
mutant to the controller's ACCUMULATE step (each ADC code is added with half of itself) before
the Verilog is generated, and require `demo` and `sim` to report parity below 1 and exit 1,
while the bridge's ADC codes, which the old definition of parity compared, stay equal to the
golden model's."""

import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from xbarflow.flow.sim import parity
from xbarflow.flow.core.config import TileSpec
from xbarflow.flow.model.golden import GoldenResult, GoldenTrace

# -- the definition ------------------------------------------------------------------------------


def _two_layer_golden():
    """A traced golden result of a 4-input, 2-hidden, 2-output chip on two tiles, by hand."""
    tiles = (TileSpec(0, 0, 0, 0, 0, 4, 0, 2), TileSpec(1, 1, 0, 0, 0, 2, 0, 2))
    hidden = np.array([[3, 0], [1, 2]])
    sums = np.array([[5, -2], [0, 7]])
    trace = GoldenTrace(np.zeros((2, 2), dtype=np.int64), (hidden, sums), (hidden, sums), (hidden,), tiles)
    return GoldenResult(adc_codes=sums, classes=np.array([0, 1]), trace=trace), np.array([[1, 2, 3, 4],
                                                                                            [5, 6, 7, 0]])


def _answers(golden, codes, **change):
    hidden = golden.trace.activations[0]
    base = dict(indices=np.array([10, 11]), classes=golden.classes.copy(), sums=golden.adc_codes.copy(),
                tile_dac_codes=tuple(((0, codes[k].copy()), (1, hidden[k].copy())) for k in range(2)))
    return parity.ChipAnswers(**{**base, **change})


def test_every_term_of_parity_can_fail_on_its_own():
    golden, codes = _two_layer_golden()
    ok = parity.check(_answers(golden, codes), golden, codes)
    assert ok.same.tolist() == [True, True] and ok.fraction == 1.0 and ok.failures() == []

    v = parity.check(_answers(golden, codes, classes=np.array([0, 0])), golden, codes)
    assert v.classes.tolist() == [True, False] and v.sums.all() and v.dac_codes.all()
    assert v.failures() == ["image 11: differs from golden in class"]

    v = parity.check(_answers(golden, codes, sums=np.array([[5, -2], [0, 6]])), golden, codes)
    assert v.sums.tolist() == [True, False] and v.classes.all() and v.dac_codes.all()

    wrong_hidden = (((0, codes[0]), (1, np.array([3, 1]))), ((0, codes[1]), (1, np.array([1, 2]))))
    v = parity.check(_answers(golden, codes, tile_dac_codes=wrong_hidden), golden, codes)
    assert v.dac_codes.tolist() == [False, True], "a hidden layer's codes on tile 1"
    swapped = (((1, np.array([3, 0])), (0, codes[0])), ((0, codes[1]), (1, np.array([1, 2]))))
    assert parity.check(_answers(golden, codes, tile_dac_codes=swapped), golden, codes).dac_codes.tolist() \
        == [False, True], "tiles out of order"
    missing = (((0, codes[0]),), ((0, codes[1]), (1, np.array([1, 2]))))
    assert parity.check(_answers(golden, codes, tile_dac_codes=missing), golden, codes).dac_codes.tolist() \
        == [False, True], "a tile never driven"
    assert parity.check(_answers(golden, codes, sums=np.zeros((2, 3), dtype=np.int64)), golden,
                        codes).sums.tolist() == [False, False], "wrong number of sums"


def test_parity_needs_the_traced_golden_result():
    golden, codes = _two_layer_golden()
    with pytest.raises(ValueError, match="trace"):
        parity.check(_answers(golden, codes), GoldenResult(golden.adc_codes, golden.classes), codes)
    with pytest.raises(ValueError, match="golden results"):
        parity.check(_answers(golden, codes), golden, codes[:1])


def test_answers_survive_json_and_concatenation():
    golden, codes = _two_layer_golden()
    a = _answers(golden, codes)
    back = parity.ChipAnswers.from_json(json.loads(json.dumps(a.to_json())))
    both = parity.ChipAnswers.concatenate([back, back])
    assert both.indices.tolist() == [10, 11, 10, 11] and both.sums.shape == (4, 2)
    assert [t for t, _ in both.tile_dac_codes[3]] == [0, 1]
    assert np.array_equal(both.tile_dac_codes[2][0][1], codes[0])


def test_summary_never_rounds_a_failure_up_to_one():
    assert parity.summary(0, 10000) == "parity 1.000"
    assert parity.summary(1, 10000) == "parity 0.999 (1 of 10000 images differ)"
    assert parity.summary(1, 1000) == "parity 0.999 (1 of 1000 images differ)"
    assert parity.summary(20, 20) == "parity 0.000 (20 of 20 images differ)"
    assert parity.summary(7, 20) == "parity 0.650 (7 of 20 images differ)"


def test_readback_digest_covers_index_class_and_every_sum():
    idx, cls, sums = np.arange(3), np.array([1, 2, 3]), np.array([[1, -1], [2, 0], [3, 9]])
    d = parity.readback_digest(idx, cls, sums)
    assert d == parity.readback_digest(idx.astype(np.int32), cls, sums.astype(np.int16))
    for other in ((idx + 1, cls, sums), (idx, cls[::-1], sums), (idx, cls, sums + np.eye(3, 2, dtype=int))):
        assert parity.readback_digest(*other) != d


# -- the ACCUMULATE mutant, co-simulated ------------------------------------------------------------

ACCUMULATE = "m.d.sync += [sums[self.group_base + k].eq(base + self.codes[k]), k.eq(k + 1)]"
MUTANT = ("m.d.sync += [sums[self.group_base + k].eq(base + self.codes[k] + (self.codes[k] >> 1)), "
          "k.eq(k + 1)]")
IMAGES = 20


@pytest.fixture(scope="module")
def mutant_flow(cfg, weights, tmp_path_factory):
    """The flow with the mutated controller (ACCUMULATE is the tile sequencer's): Verilog
    generated from it, simulator models built into a temporary folder (never the checkout's
    build/), cached weights in a temporary folder."""
    import xbarflow.hdl.tile_sequencer as tile_sequencer
    from xbarflow.flow.core import paths
    from xbarflow.flow.sim import runner as sim
    from xbarflow.flow.model.weights import cache_path, save

    source = Path(tile_sequencer.__file__).read_text()
    assert source.count(ACCUMULATE) == 1, "hdl/tile_sequencer.py's ACCUMULATE line changed: update MUTANT"
    namespace = {"__name__": tile_sequencer.__name__, "__file__": tile_sequencer.__file__,
                 "__package__": "hdl"}
    exec(compile(source.replace(ACCUMULATE, MUTANT), tile_sequencer.__file__, "exec"), namespace)

    tmp = tmp_path_factory.mktemp("accumulate-mutant")
    save(weights, cache_path(cfg, tmp / "weights"))
    runtime = tmp / "verilator-runtime"
    if sim.RUNTIME_CACHE.is_dir():   # read the machine's Verilator runtime objects, never write them
        shutil.copytree(sim.RUNTIME_CACHE, runtime)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tile_sequencer.TileSequencer, "tile_states", namespace["TileSequencer"].tile_states)
        mp.setattr(sim, "build", partial(sim.build, root=tmp / "sim"))
        mp.setattr(sim, "RUNTIME_CACHE", runtime)
        mp.setattr(paths, "WEIGHTS", tmp / "weights")
        yield tmp


def _wrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement wrap-around into a signed `bits`-bit register."""
    half = 1 << (bits - 1)
    return (values + half) % (1 << bits) - half


def test_demo_on_the_accumulate_mutant_reports_parity_below_one(cfg, mutant_flow, capsys):
    from xbarflow.flow.cli import main
    from xbarflow.hdl.controller import sum_bits

    out = mutant_flow / "demo"
    assert main(["demo", "--sim", "verilator", "--images", str(IMAGES), "--out", str(out)]) == 1
    printed = capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == IMAGES
    assert report["parity"] < 1.0 and report["mismatched_images"] > 0
    assert "parity 1.000" not in printed.out and f"of {IMAGES} images differ" in printed.out
    assert all("sums" in line for line in report["parity_failures"])
    assert report["readback_sha256"] != report["golden_readback_sha256"]

    pred = np.load(out / "predictions.npz")
    golden = pred["golden_adc_codes"][pred["indices"]]
    # What the old parity compared, the bridge's codes, is still equal to golden ...
    assert np.array_equal(pred["bridge_adc_codes"], golden)
    # ... while the sums read back are the mutant's: code + (code >> 1) in the sum register.
    assert np.array_equal(pred["adc_codes"], _wrap(golden + (golden >> 1), sum_bits(cfg)))
    assert report["parity"] == np.mean(np.all(pred["adc_codes"] == golden, axis=1))


def test_sim_on_the_accumulate_mutant_reports_parity_below_one(mutant_flow, capsys):
    """On Icarus: its build takes seconds where Verilator's takes most of a minute (and the demo
    above has shown Verilator)."""
    from xbarflow.flow.cli import main

    out = mutant_flow / "sim-run"
    assert main(["sim", "--sim", "icarus", "--images", str(IMAGES), "--jobs", "1",
                 "--out", str(out)]) == 1
    printed = capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == IMAGES
    assert report["parity"] < 1.0 and report["mismatched_images"] > 0
    assert "parity 1.000" not in printed.out and f"of {IMAGES} images differ" in printed.out
    assert report["readback_sha256"] != report["golden_readback_sha256"]
    assert any("read-back sums" in m for m in report["mismatches"]), "the scoreboard saw it too"
