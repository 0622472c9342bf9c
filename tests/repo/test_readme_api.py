"""The README's Python API example runs as a doctest: every output it shows is what the API
returns (classes, golden accuracy, a Verilator co-simulation at parity, the Verilog written)."""

import doctest
import os
import re
from pathlib import Path

import xbarflow

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- api-example -->\n```pycon\n(.*?)```\n<!-- /api-example -->", re.S)


def readme_example() -> str:
    found = BLOCK.findall((ROOT / "README.md").read_text())
    assert len(found) == 1, "README.md has one marked API example"
    return found[0]


def run_example(text: str, folder: Path) -> doctest.TestResults:
    test = doctest.DocTestParser().get_doctest(text, {}, "README.md", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    cwd = os.getcwd()
    os.chdir(folder)   # the example's relative paths (build/verilog) land in tmp_path
    try:
        runner.run(test)
    finally:
        os.chdir(cwd)
    return runner.summarize(verbose=False)


def test_the_package_exposes_the_api():
    assert xbarflow.Chip.__module__ == "xbarflow.flow.api", \
        "import xbarflow gives the API (top/__init__.py; the dev shim needs its __init__.py link)"


def test_readme_example_runs(tmp_path):
    results = run_example(readme_example(), tmp_path)
    assert results.attempted >= 6 and results.failed == 0, results
    assert (tmp_path / "build" / "verilog" / "xbarflow_top.v").is_file()


def test_a_wrong_output_in_the_example_fails(tmp_path):
    """The doctest really compares: a class changed in the shown output is a failure."""
    text = readme_example().replace("array([7, 2, 1, 0, 4])", "array([7, 2, 1, 0, 5])")
    text = text.split(">>> run = ")[0]    # no co-simulation needed for this
    assert run_example(text, tmp_path).failed == 1
