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
