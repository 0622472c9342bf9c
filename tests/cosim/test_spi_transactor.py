"""The HDL SPI transactor (cocotb_tests/spi_transactor.py), the fast transport the bench measures:
the same response bytes as the bit-banged BFM, parity on what the RTL computed, and its Verilator
runtime objects reused by fresh builds. Checked for correctness only: no timing is asserted."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim.runner import TIMESCALE, build, cocotb_runner, prepare_toolchain, run


@pytest.fixture(scope="module")
def golden_chip(cfg, weights):
    return GoldenChip.from_weights(cfg, weights.w)


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_transactor_frames_equal_the_bit_banged_bfm(sim, cfg, tmp_path):
    """Same chip, same requests: identical response bytes over both transports."""
    b = build(cfg, sim, transport="hdl")
    prepare_toolchain(sim)
    out = tmp_path / "transports.json"
    cocotb_runner(sim).test(test_module="tests.support.cocotb_transports", hdl_toplevel=b.toplevel,
                      hdl_toplevel_lang="verilog", build_dir=b.sim_build, test_dir=tmp_path / "sim",
                      extra_env={"XBARFLOW_TRANSPORT_OUT": str(out),
                                 "XBARFLOW_SPI_HALF_NS": str(1e9 / cfg.clock.freq_hz * cfg.host.spi_clk_div / 2),
                                 "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                                os.environ.get("PYTHONPATH", "")]),
                                 "COCOTB_LOG_LEVEL": "WARNING"},
                      timescale=TIMESCALE, log_file=tmp_path / "log.txt",
                      results_xml=str(tmp_path / "results.xml"))
    res = json.loads(out.read_text())
    assert len(res["pins"]) == len(res["hdl"]) == 9
    assert res["hdl"] == res["pins"]
    assert res["hdl"][0] == "a5060458424631" + res["hdl"][0][-2:]       # ACK, CHIP_ID "XBF1"
    assert bytes.fromhex(res["hdl"][6])[1] == 0x15                       # bad CRC: NACK
    assert len(bytes.fromhex(res["hdl"][5])) == 4 + 20                   # READ_BUF 20 bytes
    assert "no SYNC" in (res["no_response"] or "")
    assert res["after_error"] == res["hdl"][0]


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_hdl_transport_parity_with_readback(sim, cfg, dataset, golden_chip, tmp_path):
    indices = np.linspace(0, len(dataset.y_test) - 1, 16).astype(np.int64)
    b = build(cfg, sim, transport="hdl")
    r = run(b, golden_chip.array.conductance, dataset.x_test[indices], dataset.y_test[indices],
            indices, tmp_path, cycles_every_image=True, timeout_s=600, progress=tmp_path / "progress")
    codes = to_dac_codes(dataset.x_test[indices], cfg)
    golden = golden_chip.infer(codes, indices)
    assert r.mismatches == []
    assert np.array_equal(r.indices, indices)
    for k, image in enumerate(r.tile_dac_codes):   # the whole image on the bus, delta writes included
        assert [t for t, _ in image] == [0] and np.array_equal(image[0][1], codes[k]), k
    assert np.array_equal(r.sums, golden.adc_codes)
    assert np.array_equal(r.classes, golden.classes)
    assert np.array_equal(r.bridge_adc_codes, golden.adc_codes)
    assert (r.cycles["total"] == r.cycles["total"][0]).all() and r.cycles["total"][0] > 0
    assert (tmp_path / "progress").read_text() == str(len(indices))
    assert r.loop_s > 0 and r.loop_sim_ns > 0


def test_verilator_runtime_objects_are_reused_by_fresh_builds(cfg, dataset, golden_chip, tmp_path,
                                                              monkeypatch):
    from xbarflow.flow.sim import runner as sim_mod

    monkeypatch.setattr(sim_mod, "RUNTIME_CACHE", tmp_path / "runtime")
    first = build(cfg, "verilator", transport="hdl", root=tmp_path / "a")
    cached = sorted(p.name for p in (tmp_path / "runtime").glob("*/verilated*.o"))
    assert "verilated.o" in cached and "verilated_vpi.o" in cached
    second = build(cfg, "verilator", transport="hdl", root=tmp_path / "b")
    assert first.build_seconds > 0 and second.build_seconds > 0 and first.digest == second.digest
    log_a = (first.directory / "build.log").read_text()
    log_b = (second.directory / "build.log").read_text()
    assert "include/verilated.cpp" in log_a, "the first build compiles the runtime"
    assert "include/verilated.cpp" not in log_b, "the second one takes the cached objects"
    indices = np.arange(6)
    r = run(second, golden_chip.array.conductance, dataset.x_test[indices], dataset.y_test[indices],
            indices, tmp_path / "run", timeout_s=600)
    golden = golden_chip.infer(to_dac_codes(dataset.x_test[indices], cfg), indices)
    assert r.mismatches == [] and np.array_equal(r.classes, golden.classes)
