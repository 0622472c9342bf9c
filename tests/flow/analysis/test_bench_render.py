"""BENCHMARKS.md rendering (flow/analysis/bench_render.py): every target stated with the machine,
the phase table from the counters and the cost model, missed targets, failed phases."""

from xbarflow.flow.analysis import bench


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
    r["qmm"] = {"images": 10000, "load": [1.0, 1.2], "peak_rss_mb": 200,
                "golden": {"wire_r": 1.0, "partitions": 8, "preset": "hfo2_aguirre2024",
                           "method": "fixed_point", "setup_s": 0.1, "infer_s": 0.5,
                           "images_per_s": 20000.0, "accuracy": 0.9218},
                "stress": {"rows": 196, "cols": 20, "g_on": 1e-4, "g_off": 5e-6, "wire_r": 1.0,
                           "partitions": 1, "method": "lines", "ir_drop": 0.106, "images": 2000,
                           "setup_s": 0.2, "infer_s": 1.0, "images_per_s": 2000.0, "accuracy": 0.915},
                "spice": {"images": 3, "seconds_per_image": 4.0, "golden_seconds_per_image": 5e-4,
                          "ratio": 8000.0, "max_rel_error": 8.7e-12, "max_error_lsb": 1.8e-9,
                          "ir_drop": 0.113}}
    r["cosim_qmm"] = dict(cos("verilator", "hdl", 150.0), set={"device.read_model": "qmm"},
                          read_model="qmm")
    r.update(over)
    return r


def _target_rows(text: str) -> dict[str, list[str]]:
    section = text.split("## Targets", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| Figure")]
    return {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[1:-1]] for r in rows}


def test_render_states_every_target_with_the_machine():
    text = bench.render(_results())
    rows = _target_rows(text)
    assert len(rows) == 11
    for name, cells in rows.items():
        assert "Test CPU 9000" in cells[4], f"machine beside '{name}'"
        assert cells[3] == "yes", f"{name}: {cells}"
    assert "2 cores Test CPU 9000" in text
    for heading in ("## Golden model", "## QMM read model", "## Co-simulation over SPI", "## Cycles per inference",
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


def _qmm_rows(text: str) -> dict[str, list[str]]:
    rows = _target_rows(text)
    return {k: v for k, v in rows.items() if "QMM" in k}


def test_render_qmm_targets_with_their_figures():
    text = bench.render(_results())
    rows = _qmm_rows(text)
    assert len(rows) == 4 and all(cells[3] == "yes" for cells in rows.values()), rows
    golden = next(v for k, v in rows.items() if k.startswith("Golden model, QMM cells"))
    assert golden[1] == "20,000 images/s" and golden[2] == ">= 10,000"
    stress = next(v for k, v in rows.items() if "stress tile (196 x 20, 100 uS" in k)
    assert stress[1] == "2,000 images/s" and "10.6 %" in next(k for k in rows if "stress tile (" in k)
    spice = next(v for k, v in rows.items() if k.startswith("ngspice"))
    assert spice[1].startswith("8,000x (4.00 s vs 0.50 ms") and "8.7e-12 relative" in spice[1]
    verilator = next(v for k, v in rows.items() if k.startswith("Verilator"))
    assert verilator[1] == "150.0 images/s (300.0 without start-up), parity 1.000"
    section = text.split("## QMM read model", 1)[1].split("\n## ", 1)[0]
    assert "| stress tile, 100 uS cells, 1.0 ohm, 1 partition | lines |" in section
    assert "8,000x" in section
    assert "300.0 images/s without start-up against 200.0 with linear cells in the same run (1.50x" in section
    assert "CPU-second" not in section        # older results without the CPU time


def test_render_states_images_per_cpu_second():
    r = _results()
    r["cosim_qmm"]["cpu_s"] = 0.8                                       # 100 images
    next(c for c in r["cosim"] if c["transport"] == "hdl")["cpu_s"] = 0.5
    section = bench.render(r).split("## QMM read model", 1)[1].split("\n## ", 1)[0]
    assert ("By the simulator process's CPU time, start-up included: 125.0 images per CPU-second "
            "against 200.0 with linear cells (100 and 100 images).") in section


def test_render_marks_missed_qmm_targets():
    r = _results()
    r["qmm"]["golden"]["images_per_s"] = 3179.0
    r["qmm"]["stress"]["images_per_s"] = 642.0
    r["qmm"]["spice"]["ratio"] = 900.0
    r["cosim_qmm"]["parity"] = 0.99
    rows = _qmm_rows(bench.render(r))
    assert [cells[3] for cells in rows.values()] == ["**no**"] * 4, rows
    assert any(cells[1] == "3,179 images/s" for cells in rows.values())


def test_render_survives_a_failed_qmm_phase():
    r = _results(qmm={"error": "phase qmm failed (exit 1)", "load": [1, 1]},
                 cosim_qmm={"error": "phase cosim failed (exit 1)", "load": [1, 1]})
    text = bench.render(r)
    assert "Not measured: phase qmm failed" in text
    assert [cells[3] for cells in _qmm_rows(text).values()] == ["n/a"] * 4
    assert bench.failed(r) and not bench.failed(_results())


def test_render_waves_reader_table():
    """The waveform reader section: one row per query with each reader's time and the ratios,
    and a failed comparison marked; a missing phase says why."""
    r = _results(waves={"images": 100, "vcd_mb": 80.5, "load": [1, 1],
                        "header_s": {"pywellen": 0.05, "scan": 0.3},
                        "queries": [{"query": "--spi", "signals": 5, "changes": 123456,
                                     "pywellen_s": 0.25, "scan_s": 1.0, "vcdvcd_s": 7.5,
                                     "speedup_vs_scan": 4.0, "speedup_vs_vcdvcd": 30.0, "same": True},
                                    {"query": "-s x", "signals": 2, "changes": 10, "pywellen_s": 0.1,
                                     "scan_s": 0.2, "vcdvcd_s": 0.3, "speedup_vs_scan": 2.0,
                                     "speedup_vs_vcdvcd": 3.0, "same": False}]})
    section = bench.render(r).split("## Waveform reader", 1)[1].split("\n## ", 1)[0]
    assert "100 test images (80.5 MB)" in section
    assert "| `--spi` | 5 | 123,456 | 0.25 s | 1.00 s | 7.50 s | 4.0x | 30.0x | yes |" in section
    assert section.rstrip().endswith("| **no** |")
    assert "Not measured: phase waves failed" in bench.render(
        _results(waves={"error": "phase waves failed"})).split("## Waveform reader", 1)[1]


def test_render_cnn_cosimulation_row():
    cnn = {"sim": "verilator", "transport": "hdl", "images": 50, "events_per_image": 706,
           "wall_s": 25.0, "images_per_s": 2.0, "loop_images_per_s": 2.5, "parity": 1.0,
           "cycles_by_phase": {"total": 40175, "drive": 2824}, "cycles_model": {"drive": 2824, "rest": 37351},
           "load": [1.0, 1.5]}
    text = bench.render(_results(cosim_cnn=cnn))
    section = text.split("## CNN co-simulation (configs/cnn.toml)", 1)[1].split("\n## ", 1)[0]
    row = [ln for ln in section.splitlines() if ln.startswith("| verilator")][0]
    assert [c.strip() for c in row.split("|")[1:11]] == [
        "verilator", "hdl", "50", "706", "25.0 s", "2.00", "2.50", "40175", "40175", "1.000"]
    failed = bench.render(_results(cosim_cnn={"error": "phase cosim failed (exit 1)", "load": [1, 1]}))
    assert "Not measured: phase cosim failed" in failed
    assert "## CNN co-simulation" not in bench.render(_results())
    assert bench.failed(_results(cosim_cnn={"error": "x"}))
