"""The `cost` subcommand (flow/commands/cost.py): the table, JSON, --report, and --synth without
the tools still prints the rest."""

import json

from xbarflow.flow.cli import main


def test_cli_table_json_and_report(tmp_path, capsys):
    out = tmp_path / "cost.json"
    assert main(["cost", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| **efficiency**" in text and "TOPS/W" in text and "PUMA 0.42" in text
    data = json.loads(out.read_text())
    assert data["tops_per_w"] > 0 and data["energy_total_j"] > 0 and data["latency_s"] > 0
    rep = tmp_path / "report.json"
    rep.write_text(json.dumps({"cycles_by_phase": {"total": 40, "drive": 10, "convert": 12, "argmax": 12}}))
    assert main(["cost", "--report", str(rep), "--json", str(out)]) == 0
    assert "measured in" in capsys.readouterr().out
    assert sum(json.loads(out.read_text())["cycles"].values()) == 40
    rep.write_text("{}")
    assert main(["cost", "--report", str(rep)]) == 2
    err = capsys.readouterr().err
    assert "cycles_by_phase" in err and err.count("\n") == 1


def test_cli_synth_without_tools_still_prints_the_rest(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))   # no yosys, no nextpnr
    assert main(["cost", "--synth"]) == 0
    captured = capsys.readouterr()
    assert "**efficiency**" in captured.out and "skipped" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "make synth-tools" in err[0] and "yosys" in err[0]


def test_cli_set_read_model_qmm(tmp_path, capsys):
    """--set overrides the config: with QMM cells the crossbar read energy is the solved cells'
    (less than linear cells at partial inputs: tests/flow/analysis/test_cost_qmm.py); a bad
    override is a usage error."""
    energy = {}
    for model in ("linear", "qmm"):
        out = tmp_path / f"{model}.json"
        assert main(["cost", "--set", f"device.read_model={model}", "--json", str(out)]) == 0
        energy[model] = json.loads(out.read_text())["energy_j"]["crossbar read"]
    assert 0 < energy["qmm"] < energy["linear"]
    capsys.readouterr()
    assert main(["cost", "--set", "device.read_model=spline"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
