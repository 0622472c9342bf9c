"""The bench machinery (flow/analysis/bench.py): machine and profile summaries, the phase runner,
the golden phase's figures. Checked for correctness only: no timing is asserted anywhere."""

import cProfile

from xbarflow.flow.analysis import bench


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
