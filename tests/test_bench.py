"""The bench machinery: BENCHMARKS.md rendering, profile summaries, the phase runner, and the
fast co-simulation path it measures (the HDL SPI transactor harness), checked for correctness
only -- no timing is asserted anywhere."""

import contextlib
import cProfile
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from xbarflow.flow.analysis import bench
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.sim.runner import TIMESCALE, build, cocotb_runner, prepare_toolchain, run

from xbarflow.cocotb_tests.spi_transactor import HARNESS_TOP, REQ_BYTES, RESP_BYTES, harness_verilog
from processes import process_group


# -- rendering ---------------------------------------------------------------------------------

def _results(**over):
    cos = lambda sim, tr, ips, parity=1.0: {   # noqa: E731
        "sim": sim, "transport": tr, "images": 100, "wall_s": 100 / ips, "loop_s": 50 / ips,
        "images_per_s": ips, "loop_images_per_s": 2 * ips, "clocks_per_image": 3600.0,
        "parity": parity, "cycles_by_phase": {"total": 28, "drive": 4}, "peak_rss_mb": 170.0,
        "load": [1.0, 1.5]}
    r = {
        "machine": {"cores": 2, "cpu": "Test CPU 9000", "mem_gb": 8, "os": "Linux", "python": "3.11",
                    "icarus": "Icarus 11", "verilator": "Verilator 5"},
        "targets": bench.TARGETS, "date": "today", "quick": False,
        "golden": {"images": 10000, "ideal": {"wire_r": 0.0, "setup_s": 0.001, "infer_s": 0.01,
                                              "images_per_s": 1e6, "accuracy": 0.92,
                                              "tracemalloc_peak_mb": 30},
                   "wire": {"wire_r": 1.0, "setup_s": 0.05, "infer_s": 0.01, "images_per_s": 1e6,
                            "accuracy": 0.92, "tracemalloc_peak_mb": 30},
                   "ratio_infer": 1.01, "ratio_with_setup": 5.0, "peak_rss_mb": 200, "load": [2, 2]},
        "builds": [{"sim": "verilator", "transport": "hdl", "runtime": "fresh", "generate_s": 1.0,
                    "build_s": 10.0, "total_s": 11.0, "cold": True, "peak_rss_mb": 300, "load": [1, 1]},
                   {"sim": "verilator", "transport": "hdl", "runtime": "shared", "generate_s": 1.0,
                    "build_s": 4.0, "total_s": 5.0, "cold": True, "peak_rss_mb": 300, "load": [1, 1]}],
        "cosim": [cos("verilator", "hdl", 100.0), cos("verilator", "pins", 10.0),
                  cos("icarus", "hdl", 12.0), cos("icarus", "pins", 3.0)],
        "profiles": [dict(cos("verilator", "hdl", 100.0),
                          profile={"python_s": 0.1, "loop_s": 1.0,
                                   "top": [{"function": "x.py:1(f)", "tottime_s": 0.05,
                                            "cumtime_s": 0.1, "calls": 10}]})],
        "shard": {"command": "xbarflow sim --sim verilator --images all --jobs 2", "wall_s": 120.0,
                  "peak_rss_mb": 180, "load": [2, 2],
                  "report": {"images": 10000, "cosim_wall_s": 110.0, "parity": 1.0, "shards": 10,
                             "images_per_s": 90.0, "cosim_accuracy": 0.92, "golden_accuracy": 0.92}},
    }
    r.update(over)
    return r


def _target_rows(text: str) -> dict[str, list[str]]:
    section = text.split("## Targets", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| Figure")]
    return {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[1:-1]] for r in rows}


def test_render_states_every_target_with_the_machine():
    text = bench.render(_results())
    rows = _target_rows(text)
    assert len(rows) == 7
    for name, cells in rows.items():
        assert "Test CPU 9000" in cells[4], f"machine beside '{name}'"
        assert cells[3] == "yes", f"{name}: {cells}"
    assert "2 cores Test CPU 9000" in text
    for heading in ("## Golden model", "## Co-simulation over SPI", "## Cycles per inference",
                    "## Build times", "## Sharded run", "## Profile"):
        assert heading in text
    assert "Verilator 10.0x" in text, "hdl/pins speed-up from the same run"


def test_render_phase_table_from_counters_and_the_cost_model():
    r = _results()
    model = {"load": 1, "drive": 4, "convert": 10, "accumulate": 10, "next_tile": 1, "argmax": 12, "done": 1}
    for c in r["cosim"]:
        c["cycles_by_phase"] = {"total": 39, "drive": 4, "convert": 10, "argmax": 12}
        c["cycles_model"] = model
    text = bench.render(r).split("## Cycles per inference by phase", 1)[1].split("\n## ", 1)[0]
    assert "| accumulate | - | 10 |" in text and "| drive | 4 | 4 |" in text
    assert "| **total** | **39** | **39** |" in text and "counted total: yes" in text
    r["cosim"][0]["cycles_model"] = dict(model, accumulate=9)
    assert "counted total: no" in bench.render(r)


def test_render_marks_missed_targets():
    r = _results()
    r["cosim"][0]["images_per_s"] = 20.0                      # Verilator below 40/s
    r["cosim"][2]["parity"] = 0.99                            # a parity failure
    r["shard"]["report"]["cosim_wall_s"] = 400.0              # over 5 minutes
    r["builds"][0]["build_s"] = 45.0
    rows = _target_rows(bench.render(r))
    missed = {name for name, cells in rows.items() if cells[3] == "**no**"}
    assert any(n.startswith("Verilator over SPI") for n in missed)
    assert any(n.startswith("Full test set") for n in missed)
    assert any(n.startswith("Verilog generation") for n in missed)
    assert any(n.startswith("Parity") for n in missed)
    assert not any(n.startswith("Golden") for n in missed)


def test_render_survives_failed_phases():
    r = _results(cosim=[{"error": "phase cosim failed (exit 1)", "load": [1, 1]}],
                 shard={"error": "phase shard failed (exit 1)", "load": [1, 1]}, profiles=[])
    text = bench.render(r)
    assert "phase cosim failed" in text and "Not measured" in text
    assert _target_rows(text)["Verilator over SPI, 1 core (HDL transactor)"][3] == "n/a"


def test_machine_and_profile_summary(tmp_path):
    m = bench.machine()
    assert m["cores"] >= 1 and m["cpu"]
    prof = cProfile.Profile()
    prof.enable()
    sum(i * i for i in range(200_000))
    sorted(range(100_000), key=lambda x: -x)
    prof.disable()
    prof.dump_stats(tmp_path / "p.prof")
    s = bench._profile_summary(tmp_path / "p.prof", loop_s=1.0, top=3)
    assert s["python_s"] > 0 and len(s["top"]) == 3
    times = [t["tottime_s"] for t in s["top"]]
    assert times == sorted(times, reverse=True)
    assert s["python_s"] >= sum(times)


def test_run_phase_reports_a_failing_phase():
    r = bench.run_phase("build", {"sim": "no-such-simulator", "transport": "hdl", "root": "/nonexistent"})
    assert "error" in r and "build" in r["error"]
    assert len(r["load"]) == 2


def test_golden_phase_figures():
    r = bench.phase_golden({"repeats": 2})
    assert r["images"] == 10000
    for name in ("ideal", "wire"):
        assert r[name]["images_per_s"] > 0 and 0.5 < r[name]["accuracy"] <= 1
    assert r["ideal"]["wire_r"] == 0.0 and r["wire"]["wire_r"] > 0
    assert r["ratio_infer"] > 0


# -- the harness and its transactor ------------------------------------------------------------

PORTS = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1},
         {"name": "spi_sclk", "dir": "in", "width": 1}, {"name": "spi_cs_n", "dir": "in", "width": 1},
         {"name": "spi_mosi", "dir": "in", "width": 1}, {"name": "spi_miso", "dir": "out", "width": 1},
         {"name": "dac_codes", "dir": "out", "width": 784}, {"name": "adc_codes", "dir": "in", "width": 80},
         {"name": "new_port", "dir": "in", "width": 3}]


def test_harness_passes_every_chip_port_through():
    text = harness_verilog(PORTS, 5e7, 4)
    top = text.split(f"module {HARNESS_TOP}(", 1)[1]
    assert "output [783:0] dac_codes;" in top and "input [79:0] adc_codes;" in top
    assert "input [2:0] new_port;" in top and ".new_port(new_port)" in top
    assert f"input [{REQ_BYTES * 8 - 1}:0] xtor_req;" in top
    assert f"output [{RESP_BYTES * 8 - 1}:0] xtor_resp;" in top
    assert ".spi_sclk(xtor_en ? xtor_sclk : spi_sclk)" in top
    assert "always #(10.0) clk = ~clk;" in text          # 50 MHz: 10 ns half period
    assert ".HALF(2)" in text and "8'ha5" in text.lower()
    assert "input clk" not in top.split(");", 1)[1]       # the clock is internal
    with pytest.raises(ValueError, match="SPI"):
        harness_verilog([p for p in PORTS if p["name"] != "spi_miso"], 5e7, 4)
    with pytest.raises(ValueError, match="divider"):
        harness_verilog(PORTS, 5e7, 5)


@pytest.fixture(scope="module")
def golden_chip(cfg, weights):
    return GoldenChip.from_weights(cfg, weights.w)


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_transactor_frames_equal_the_bit_banged_bfm(sim, cfg, tmp_path):
    """Same chip, same requests: identical response bytes over both transports."""
    b = build(cfg, sim, transport="hdl")
    prepare_toolchain(sim)
    out = tmp_path / "transports.json"
    cocotb_runner(sim).test(test_module="cocotb_transports", hdl_toplevel=b.toplevel,
                      hdl_toplevel_lang="verilog", build_dir=b.sim_build, test_dir=tmp_path / "sim",
                      extra_env={"XBARFLOW_TRANSPORT_OUT": str(out),
                                 "XBARFLOW_SPI_HALF_NS": str(1e9 / cfg.clock.freq_hz * cfg.host.spi_clk_div / 2),
                                 "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
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


def test_concurrent_builds_share_one_model(cfg, tmp_path):
    """Two processes building the same model at once: one builds, the other waits and reuses."""
    import subprocess
    import sys

    code = ("import sys, pathlib; from xbarflow.flow.core import config; from xbarflow.flow.sim.runner import build; "
            "b = build(config.load(), 'icarus', root=pathlib.Path(sys.argv[1])); "
            "print(b.digest, b.build_seconds > 0)")
    with contextlib.ExitStack() as stack:   # both process groups are killed however this ends
        procs = [stack.enter_context(process_group([sys.executable, "-c", code, str(tmp_path)],
                                                   stdout=subprocess.PIPE, text=True))
                 for _ in range(2)]
        outs = [p.communicate(timeout=600)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0][0] == outs[1][0], "same model digest"
    assert sorted(o[1] for o in outs) == ["False", "True"], "built once, reused once"
    assert re.fullmatch(r"[0-9a-f]{64}", outs[0][0])


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
