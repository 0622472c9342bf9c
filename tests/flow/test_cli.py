"""CLI: usage errors are one line on stderr with exit status 2; verilog writes its files."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from xbarflow.flow.cli import main


@pytest.mark.parametrize("argv, needle", [
    ([], "required"),
    (["frobnicate"], "invalid choice"),
    (["demo", "--sim", "modelsim"], "invalid choice"),
    (["demo", "--images", "0"], "positive integer"),
    (["demo", "--images", "ten"], "positive integer"),
    (["demo", "--config", "/no/such.toml"], "config file not found"),
    (["demo", "--data", "/no/such/mnist.npz"], "/no/such/mnist.npz"),
    (["demo", "--images", "100000"], "exceeds"),
    (["verilog"], "--out"),
    (["verilog", "--config", "/no/such.toml", "--out", "x"], "config file not found"),
])
def test_usage_errors_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err


def test_malformed_config(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[adc]\nbitz = 3\n")
    assert main(["verilog", "--config", str(bad), "--out", str(tmp_path)]) == 2
    assert "did you mean 'bits'" in capsys.readouterr().err


def test_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["verilog", "--out", str(blocker / "sub")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_verilog_command_writes_files(tmp_path, capsys):
    assert main(["verilog", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "xbarflow_top.v").exists() and (tmp_path / "xbarflow_top.json").exists()


def test_console_script_exit_status():
    proc = subprocess.run([sys.executable, "-m", "xbarflow.flow.cli", "demo", "--sim", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "invalid choice" in proc.stderr


# -- every subcommand is listed with a help line, and answers --help ------------------------------

#: The subcommands, written out (not read from xbarflow.flow.cli.COMMANDS): one module each in
#: flow/commands/, and no other entry point (`python -m xbarflow.flow.<module>`) left.
SUBCOMMANDS = {"demo", "program", "verilog", "report", "waves", "spice", "cost", "sweep", "sim",
               "classify", "train", "figures", "bench", "fuzz", "mutants", "lint", "import", "coverage",
               "export"}
#: subcommands whose module has another name ("import" is a Python keyword)
MODULE_NAMES = {"import": "import_model"}
FLOW = Path(__file__).resolve().parents[2] / "flow"


def test_help_lists_every_subcommand_with_a_one_line_help():
    proc = subprocess.run([sys.executable, "-m", "xbarflow.flow.cli", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = dict(re.findall(r"^    ([a-z]+) +(\S.*)$", proc.stdout, flags=re.M))
    assert set(listed) == SUBCOMMANDS
    modules = {p.stem for p in (FLOW / "commands").glob("*.py")} - {"__init__", "common"}
    assert modules == {MODULE_NAMES.get(c, c) for c in SUBCOMMANDS}, "one module per subcommand in flow/commands"
    mains = sorted(str(p.relative_to(FLOW)) for p in FLOW.rglob("*.py")
                   if '__name__ == "__main__"' in p.read_text() and p.name != "cli.py")
    assert mains == [], f"entry points outside xbarflow: {mains}"


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_each_subcommand_answers_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: xbarflow {command}")
