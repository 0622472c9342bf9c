"""The `spice` subcommand (flow/commands/spice.py): the configured tile exported and checked,
one program event (`--write ROW COL`), usage errors, and the install command when ngspice is
missing."""

import re

import pytest

from xbarflow.flow.analysis import spice
from xbarflow.flow.cli import main


def test_cli_exports_and_checks_the_configured_tile(tmp_path, capsys):
    assert main(["spice", "--out", str(tmp_path), "--image", "3"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"max \|SPICE - model\| / model = ([0-9.e+-]+)", out)
    assert m and float(m.group(1)) < 1e-3
    csv_rows = (tmp_path / "tile-slp.columns.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 20
    assert "Vtia19 t19 0 DC 0" in (tmp_path / "tile-slp.cir").read_text()
    assert main(["spice", "--out", str(tmp_path / "n"), "--no-run"]) == 0
    assert (tmp_path / "n" / "tile-slp.cir").is_file()


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["spice", "--out", str(tmp_path), "--image", "99999"]) == 2
    err = capsys.readouterr().err
    assert "outside the" in err and err.count("\n") == 1
    assert main(["spice"]) == 2
    assert "--out" in capsys.readouterr().err


def test_missing_ngspice_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(spice.SpiceError, match="apt-get install ngspice"):
        spice.ngspice_path()
    assert main(["spice", "--out", str(tmp_path / "o")]) == 2    # usage error: not installed
    assert "apt-get install ngspice" in capsys.readouterr().err


def test_cli_write_event(tmp_path, capsys):
    assert main(["spice", "--out", str(tmp_path), "--write", "30", "7"]) == 0
    out = capsys.readouterr().out
    assert "program event 1.2 V on cell (30, 7), bias v2, cell 1R" in out
    rows = (tmp_path / "write-slp-r30-c7.cells.csv").read_text().splitlines()
    assert len(rows) == 1 + 25 * 20 and sum(",half," in r for r in rows) == 24 + 19
    assert main(["spice", "--out", str(tmp_path), "--write", "196", "0"]) == 2
    err = capsys.readouterr().err
    assert "outside the 196 x 20 tile" in err and err.count("\n") == 1
    assert main(["spice", "--out", str(tmp_path), "--write", "0", "0",
                 "--set", "programming.bias=ideal"]) == 2
    assert "ideal has no array" in capsys.readouterr().err


def test_cli_write_event_1s1r(tmp_path, capsys):
    assert main(["spice", "--out", str(tmp_path), "--write", "30", "7",
                 "--set", "crossbar.cell=1S1R"]) == 0
    out = capsys.readouterr().out
    assert "cell 1S1R" in out and "selected memristor" in out
    m = re.search(r"\(terminal and memristor voltages\) = ([0-9.e+-]+)", out)
    assert m and float(m.group(1)) < 0.01
    rows = (tmp_path / "write-slp-r30-c7.cells.csv").read_text().splitlines()
    assert rows[0].endswith("spice_memristor_V,model_memristor_V") and len(rows) == 1 + 25 * 20
    for bad, why in ((["--write", "30", "20"], "outside the 196 x 20 tile"),
                     (["--write", "3", "2", "--set", "crossbar.selector_v_th=0.3"],
                      "the threshold selector passes only"),
                     (["--write", "3", "2", "--set", "crossbar.selector_g_leak=-1"],
                      "0 < selector_g_leak < selector_g_on")):
        assert main(["spice", "--out", str(tmp_path), "--set", "crossbar.cell=1S1R", *bad]) == 2
        err = capsys.readouterr().err
        assert why in err and err.count("\n") == 1
