"""The bench machinery (flow/analysis/bench.py): machine and profile summaries, the phase runner,
the golden phase's figures. Checked for correctness only: no timing is asserted anywhere."""

import cProfile
import json

import pytest
from xbarflow.flow import cli
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


def test_qmm_phase_figures():
    """The QMM phase: the default config read through QMM cells, the uS stress tile with its IR
    drop visible, and ngspice on the same tile and input agreeing with the golden solve."""
    r = bench.phase_qmm({"repeats": 1, "stress_images": 50, "spice_images": 1})
    assert r["images"] == 10000
    g, st, sp = r["golden"], r["stress"], r["spice"]
    assert g["images_per_s"] > 0 and 0.9 < g["accuracy"] <= 1 and g["wire_r"] > 0
    assert (st["rows"], st["cols"], st["partitions"], st["wire_r"]) == (196, 20, 1, 1.0)
    assert st["g_on"] >= 1e-6 and st["ir_drop"] > 0.05 and st["images"] == 50
    assert 0.5 < st["accuracy"] <= 1
    assert sp["images"] == 1 and sp["ratio"] > 0 and sp["ir_drop"] > 0.05
    assert sp["max_rel_error"] < 1e-6 and sp["max_error_lsb"] < 1e-3


def _fake_phases(monkeypatch) -> list[tuple[str, dict]]:
    """run_phase and machine replaced by recorders: the case selection without running anything."""
    calls: list[tuple[str, dict]] = []

    def fake_run_phase(name, params):
        calls.append((name, params))
        return {"phase": name, "load": [0.0, 0.0]}

    monkeypatch.setattr(bench, "run_phase", fake_run_phase)
    monkeypatch.setattr(bench, "machine", lambda: {"cores": 2, "cpu": "test"})
    return calls


#: the phases and how many runs of each a case makes (builds: 4 flavours; cosim: 4 sim x transport
#: pairs; profiles: 3), written out here rather than read from the bench's own tables
CASE_PHASES = {"golden": ["golden"], "builds": ["build"] * 4, "cosim": ["cosim"] * 4,
               "profiles": ["cosim"] * 3, "qmm": ["qmm"], "cosim_qmm": ["cosim"],
               "cosim_cnn": ["cosim"], "waves": ["waves"], "shard": ["shard"]}


@pytest.mark.parametrize("case", sorted(CASE_PHASES))
def test_collect_only_runs_that_case(case, monkeypatch):
    calls = _fake_phases(monkeypatch)
    results = bench.collect(quick=True, log=lambda msg: None, only=case)
    assert [name for name, _ in calls] == CASE_PHASES[case]
    assert set(results) & set(CASE_PHASES) == {case}
    if case == "cosim_qmm":
        assert calls[0][1]["set"] == {"device.read_model": "qmm"} and calls[0][1]["images"] == 200
    if case == "qmm":
        assert calls[0][1] == {"stress_images": 500, "spice_images": 1}


def test_collect_runs_every_case_without_only(monkeypatch):
    calls = _fake_phases(monkeypatch)
    results = bench.collect(quick=True, log=lambda msg: None)
    assert [name for name, _ in calls] == [p for case in bench.CASES for p in CASE_PHASES[case]]
    assert set(CASE_PHASES) <= set(results)


def test_collect_rejects_an_unknown_case(monkeypatch):
    _fake_phases(monkeypatch)
    with pytest.raises(ValueError, match="unknown bench case 'nope'"):
        bench.collect(only="nope")


def test_bench_only_prints_the_case_and_writes_no_page(monkeypatch, tmp_path, capsys):
    calls = _fake_phases(monkeypatch)
    page = tmp_path / "BENCHMARKS.md"
    assert cli.main(["bench", "--only", "qmm", "--quick", "--out", str(page)]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{"):])
    assert printed["qmm"]["phase"] == "qmm" and [name for name, _ in calls] == ["qmm"]
    assert not page.exists()
    monkeypatch.setattr(bench, "run_phase", lambda name, params: {"error": "failed", "load": [0, 0]})
    assert cli.main(["bench", "--only", "qmm", "--out", str(page)]) == 1   # a failed phase
