"""Multi-layer networks on tiled crossbars, co-simulated: the 196-256-10 ReLU MLP (10 tiles of
128 x 128, 16 shared ADCs per tile), its binary-hidden-layer twin (one ADC per output) and the
784-256-128-10 mlp28 on full 28 x 28 images (33 tiles, two requantiser lanes, the 392-byte image
in two WRITE_BUF frames), image by image against the golden model on Icarus and Verilator."""

import numpy as np
import pytest

from xbarflow.flow.analysis import cost
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.core.paths import WEIGHTS as WEIGHTS_DIR
from xbarflow.flow.sim import parity
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim.runner import build, run
from xbarflow.flow.model.train import load_or_train
from xbarflow.hdl import protocol

IMAGES = 20
TILES = {"mlp": 10, "mlp_binary": 10, "mlp28": 33}


# mlp28 on Icarus (33 tiles, ~6 min for 20 images on a loaded machine) runs in `make cosim-slow`;
# `make test` co-simulates it on Verilator.
CASES = [pytest.param(name, sim, id=f"{name}-{sim}",
                      marks=[pytest.mark.slow, pytest.mark.cosim_slow] if (name, sim) == ("mlp28", "icarus") else [])
         for name in ("mlp", "mlp_binary", "mlp28") for sim in ("icarus", "verilator")]


@pytest.mark.parametrize("name, sim", CASES)
def test_mlp_images_match_golden(name, sim, dataset, tmp_path):
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / f"{name}.toml")
    assert len(cfg.tiles) == TILES[name]
    assert (cfg.adc_groups > 1) == (name != "mlp_binary"), "mlp and mlp28 share ADCs"
    weights = load_or_train(cfg, dataset, WEIGHTS_DIR)
    chip = GoldenChip.from_weights(cfg, weights)
    indices = np.linspace(0, len(dataset.y_test) - 1, IMAGES).astype(np.int64)
    result = run(build(cfg, sim), chip.layer_conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, timeout_s=900,
                 requant_mult=chip.requant_mult)
    codes = to_dac_codes(dataset.x_test[indices], cfg)
    golden = chip.infer(codes, indices, trace=True)

    assert result.mismatches == []
    hidden = golden.trace.activations
    for k, image in enumerate(result.tile_dac_codes):   # every tile, in order, with its inputs
        assert [t for t, _ in image] == list(range(len(cfg.tiles))), k
        for t, driven in image:
            spec = cfg.tiles[t]
            layer_in = codes[k] if spec.layer == 0 else hidden[spec.layer - 1][k]
            assert np.array_equal(driven, layer_in[spec.row_start:spec.row_stop]), (k, t)
    assert len(hidden) == len(cfg.network.layers) - 1 and all(h.any() for h in hidden), \
        "every hidden layer's codes were driven"
    if name == "mlp28":   # image codes past byte 255 came in the second WRITE_BUF frame
        assert cfg.input_bytes == 392 and any(s.layer == 0 and s.row_stop > 510 for s in cfg.tiles)
    assert np.array_equal(result.sums, golden.adc_codes), "sums read back over SPI"
    assert np.array_equal(result.classes, golden.classes)
    assert parity.check(result, golden, codes).same.all()
    assert np.array_equal(result.bridge_adc_codes, golden.adc_codes)
    assert np.mean(result.classes == dataset.y_test[indices]) >= 0.9
    # The chip's own cycle counters against the cost model's phases (each tile converts only
    # the ADC groups its outputs need: 4 for the 64-output tiles, 1 for the 10-output tile).
    model = cost.phase_cycles(cfg)
    for phase in ("drive", "convert", "argmax"):
        assert set(result.cycles[phase]) == {model[phase]}, phase
    assert set(result.cycles["total"]) == {sum(model.values())}


@pytest.mark.parametrize("kind", ["hidden_dac", "sum"])
def test_mlp_scoreboard_reports_exactly_one_corrupted_answer(kind, dataset, tmp_path, monkeypatch):
    """Self-test on the tiled chip: one DAC code that the second-layer tile 9 (hidden neurons
    128..255) showed on the bus, or one read-back sum, has a bit flipped between the chip and the
    scoreboard; exactly that difference is reported, the bench fails, parity fails there alone."""
    from cocotb_tools.check_results import get_results

    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml")
    weights = load_or_train(cfg, dataset, WEIGHTS_DIR)
    chip = GoldenChip.from_weights(cfg, weights)
    indices = np.array([11, 2024])
    codes = to_dac_codes(dataset.x_test[indices], cfg)
    golden = chip.infer(codes, indices, trace=True)
    if kind == "hidden_dac":
        tile, row = cfg.tiles[9], 5
        assert tile.layer == 1 and tile.row_start == 128
        want = golden.trace.activations[0][0][tile.row_start:tile.row_stop]
        fault, bad, term = f"flip_dac:image=0,tile=9,row={row}", 0, "dac_codes"
        message = (f"image {indices[0]}: tile 9: DAC codes on the bus differ from the reference in rows "
                   f"[{row}] (row {row}: {int(want[row]) ^ 1} != {int(want[row])})")
    else:
        want = golden.adc_codes[1].tolist()
        seen = list(want)
        seen[4] ^= 1
        fault, bad, term = "flip_sum:image=1,output=4", 1, "sums"
        message = f"image {indices[1]}: read-back sums {seen} != golden {want}"
    monkeypatch.setenv("XBARFLOW_TEST_FAULT", fault)
    result = run(build(cfg, "verilator"), chip.layer_conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, timeout_s=900,
                 requant_mult=chip.requant_mult)

    assert result.mismatches == [message]
    assert get_results(tmp_path / "results-verilator.xml") == (1, 1), "the bench's test failed"
    verdict = parity.check(result, golden, codes)
    assert verdict.same.tolist() == [k != bad for k in range(len(indices))]
    assert verdict.failures() == [f"image {indices[bad]}: differs from golden in {term}"]


def test_mlp_refuses_start_and_write_buf_during_an_inference(dataset, tmp_path):
    """NACK BUSY during an inference: the MLP's inference (1,177 clocks, the cost model's
    phases, which the chip's own counters equal above) outlasts a START frame, so a START and a
    WRITE_BUF (the first input byte inverted) sent right after each image's START are both
    refused with NACK BUSY, and the inference goes on with the input it started with (the DAC
    codes on the bus, the sums and the class equal golden). The register patterns run first:
    SCRATCH and REQUANT_MULT to all ones and back, PROG_TILE to every tile and one past the last
    (ignored), each read back."""
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml")
    weights = load_or_train(cfg, dataset, WEIGHTS_DIR)
    chip = GoldenChip.from_weights(cfg, weights)
    # The probe START's CRC is on the wire at least 6 + 6 bytes after the first START's CRC
    # (the ACK, then the probe frame): the inference must still be running then.
    start_frame = len(protocol.encode_request(protocol.Cmd.START))
    assert sum(cost.phase_cycles(cfg).values()) > 2 * start_frame * cfg.host.byte_cycles
    indices = np.array([3, 77, 4096])
    result = run(build(cfg, "verilator"), chip.layer_conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, timeout_s=900,
                 requant_mult=chip.requant_mult, busy_probe=True, register_patterns=True)
    golden = chip.infer(to_dac_codes(dataset.x_test[indices], cfg), indices, trace=True)

    assert result.mismatches == []
    assert result.probes == {"busy_refused": 2 * len(indices),
                             "register_reads": 2 * 2 + len(cfg.tiles) + 2}
    assert np.array_equal(result.sums, golden.adc_codes)
    assert np.array_equal(result.classes, golden.classes)
    for image in result.tile_dac_codes:
        assert [t for t, _ in image] == list(range(len(cfg.tiles)))
