"""The mutant catalogue and its runner (flow/analysis/mutants.py): every mutant still applies to the
code, a fast subset is killed through the real runner, and the runner itself can fail (a
harmless mutant survives, a mutant whose code moved stops the run, a hang is no kill)."""

import json
import subprocess
import sys
import textwrap

import pytest

from xbarflow.flow.analysis import mutants as mut
from xbarflow.flow.cli import main as xbarflow

# Each killed by one fast unit test; together they cover hdl/, analog_models/ and flow/.
FAST_SUBSET = ["argmax_tie_break_last", "write_ack_and_becomes_or", "adc_round_floor",
               "host_frame_crc_includes_sync", "golden_argmax_tie_break_last"]


@pytest.fixture(scope="module")
def catalogue():
    return mut.load_catalogue()


def write_catalogue(path, entries):
    """A catalogue file from dicts (TOML literal strings: no escapes needed in code)."""
    lines = []
    for e in entries:
        lines.append("[[mutant]]")
        for key in ("name", "file", "original", "replacement", "description"):
            lines.append(f"{key} = '''{e[key]}'''")
        lines.append("tests = [" + ", ".join(f"'{t}'" for t in e["tests"]) + "]")
        if "timeout_s" in e:
            lines.append(f"timeout_s = {e['timeout_s']}")
    path.write_text("\n".join(lines) + "\n")
    return path


# -- the catalogue applies to today's code ------------------------------------------------------

def test_every_mutant_applies_to_the_current_code(catalogue):
    mut.check_catalogue(catalogue, mut.ROOT)      # each original found exactly once, tests exist
    assert len(catalogue) >= 32
    files = {m.file for m in catalogue}
    assert {"flow/host/driver.py", "flow/model/golden.py"} <= files
    assert sum(f.startswith("hdl/") for f in files) >= 10
    assert sum(f.startswith("analog_models/") for f in files) >= 6


def test_check_command_says_every_mutant_applies():
    out = subprocess.run([sys.executable, "-m", "xbarflow.flow.cli", "mutants", "--check"], cwd=mut.ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "each original found exactly once" in out.stdout


def test_fast_subset_is_killed_by_the_real_runner(catalogue, tmp_path):
    chosen = mut.select(catalogue, FAST_SUBSET)
    report = mut.run_catalogue(chosen, mut.ROOT, jobs=2, work_dir=tmp_path, timeout_s=600)
    assert report.baseline_ok, report.baseline_detail
    assert [o.name for o in report.outcomes] == FAST_SUBSET
    for o, m in zip(report.outcomes, chosen):
        assert o.status == "killed", (o.name, o.detail)
        assert any(o.killed_by.startswith(t) for t in m.tests), (o.name, o.killed_by)
    assert report.ok and report.score == 1.0
    assert list(tmp_path.iterdir()) == [], "the mutated copies are removed"


# -- the runner can fail -------------------------------------------------------------------------

HARMLESS = {
    "name": "argmax_comment_only", "file": "hdl/argmax.py",
    "original": "# Strictly greater: an equal code later in the scan never displaces the first.",
    "replacement": "# (a comment changed: no behaviour changed)",
    "description": "changes a comment only", "tests": ["tests/hdl/test_argmax.py::test_lowest_index_wins_ties"],
}


def test_a_harmless_mutant_survives_and_fails_the_run(tmp_path):
    cat = write_catalogue(tmp_path / "cat.toml", [HARMLESS])
    out = tmp_path / "out"
    code = xbarflow(["mutants", "--catalogue", str(cat), "--out", str(out), "--no-baseline"])
    assert code == 1
    report = json.loads((out / "mutants.json").read_text())
    assert (report["mutants"], report["killed"], report["score"]) == (1, 0, 0.0)
    assert report["outcomes"][0]["status"] == "survived"
    assert "| `argmax_comment_only` | hdl/argmax.py | survived | - |" in (out / "mutants.md").read_text()


IMPORTS = (mut.ROOT / "hdl" / "argmax.py").read_text().count("import")


@pytest.mark.parametrize("original, found", [
    ("this text is nowhere in the file", "not found"),
    ("import", f"found {IMPORTS} times"),     # ambiguous: the code moved or the entry is vague
])
def test_a_mutant_whose_code_moved_stops_the_run_naming_it(tmp_path, capsys, original, found):
    assert IMPORTS > 1
    moved = {**HARMLESS, "name": "moved_code", "original": original}
    entries = [HARMLESS, moved]
    cat = write_catalogue(tmp_path / "cat.toml", entries)
    mutants = mut.load_catalogue(cat)
    with pytest.raises(mut.CatalogueError, match=f"mutant moved_code: original text {found}"):
        mut.check_catalogue(mutants, mut.ROOT)
    with pytest.raises(mut.CatalogueError, match="moved_code"):
        mut.run_catalogue(mutants, mut.ROOT, work_dir=tmp_path)   # before any test runs
    with pytest.raises(mut.CatalogueError, match="moved_code"):
        mut.apply_mutant(mutants[1], mut.ROOT)                     # (raises before writing)
    assert xbarflow(["mutants", "--catalogue", str(cat), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"mutant moved_code: original text {found} in hdl/argmax.py" in err
    assert "argmax_comment_only" not in err
    outcome = mut.run_mutant(mutants[1], mut.ROOT, work_dir=tmp_path)
    assert outcome.status == "error" and "moved_code" in outcome.detail


def test_a_listed_test_that_does_not_exist_is_a_catalogue_error(tmp_path):
    entry = {**HARMLESS, "tests": ["tests/hdl/test_argmax.py::test_no_such_test",
                                   "tests/test_nowhere.py"]}
    problems = mut.catalogue_problems(mut.load_catalogue(write_catalogue(tmp_path / "c.toml",
                                                                         [entry])), mut.ROOT)
    assert problems == [
        "mutant argmax_comment_only: no test test_no_such_test in tests/hdl/test_argmax.py",
        "mutant argmax_comment_only: test file tests/test_nowhere.py does not exist"]


@pytest.mark.parametrize("change, message", [
    ({"tests": []}, "'tests' must be a non-empty list"),
    ({"replacement": HARMLESS["original"]}, "the replacement equals the original"),
    ({"description": ""}, "'description' must be a non-empty string"),
])
def test_malformed_entries_are_refused(tmp_path, change, message):
    cat = write_catalogue(tmp_path / "cat.toml", [{**HARMLESS, **change}])
    with pytest.raises(mut.CatalogueError, match=message):
        mut.load_catalogue(cat)


def test_duplicate_names_and_unknown_mutants_are_refused(tmp_path):
    with pytest.raises(mut.CatalogueError, match="used twice"):
        mut.load_catalogue(write_catalogue(tmp_path / "a.toml", [HARMLESS, HARMLESS]))
    mutants = mut.load_catalogue(write_catalogue(tmp_path / "b.toml", [HARMLESS]))
    with pytest.raises(mut.CatalogueError, match="no mutant named nope"):
        mut.select(mutants, ["nope"])
    assert xbarflow(["mutants", "--catalogue", str(tmp_path / "b.toml"), "--only", "nope"]) == 2


# -- outcomes on a tiny tree: killed, timeout (a hang is no kill), collection error -------------

@pytest.fixture
def tiny_tree(tmp_path):
    """A git work tree with one module and its tests."""
    root = tmp_path / "tree"
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "tiny.py").write_text("VALUE = 1\nDELAY = 0\n")
    (root / "tests" / "conftest.py").write_text("# no hooks\n")
    (root / "tests" / "test_tiny.py").write_text(textwrap.dedent("""\
        import time
        import tiny

        def test_value():
            time.sleep(tiny.DELAY)
            assert tiny.VALUE == 1
        """))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    return root


def tiny_mutant(name, original, replacement, timeout_s=None):
    return mut.Mutant(name, "tiny.py", original, replacement, "tiny", ("tests/test_tiny.py",),
                      timeout_s)


def test_outcomes_on_a_tiny_tree(tiny_tree, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    killed = mut.run_mutant(tiny_mutant("value", "VALUE = 1", "VALUE = 2"), tiny_tree,
                            work_dir=work)
    assert (killed.status, killed.killed_by) == ("killed", "tests/test_tiny.py::test_value")
    assert (tiny_tree / "tiny.py").read_text().startswith("VALUE = 1"), "the tree is untouched"
    survived = mut.run_mutant(tiny_mutant("same", "VALUE = 1\n", "VALUE = 1  # same\n"),
                              tiny_tree, work_dir=work)
    assert survived.status == "survived"
    hang = mut.run_mutant(tiny_mutant("hang", "DELAY = 0", "DELAY = 600", timeout_s=3),
                          tiny_tree, work_dir=work)
    assert hang.status == "timeout" and "within 3 s" in hang.detail
    assert hang.seconds < 60
    broken = mut.run_mutant(tiny_mutant("syntax", "VALUE = 1", "VALUE = = 1"), tiny_tree,
                            work_dir=work)
    assert broken.status == "error" and "could not run" in broken.detail
    # pytest's exit status 1 without a failing test (here a conftest stops the session) is no
    # kill either: only a test that ran and failed is.
    stopped = mut.run_mutant(mut.Mutant("stop", "tests/conftest.py", "# no hooks",
                                        "import pytest\n\n\ndef pytest_collection_finish(session):\n"
                                        "    pytest.exit('no verdict', returncode=1)\n",
                                        "tiny", ("tests/test_tiny.py",)), tiny_tree, work_dir=work)
    assert stopped.status == "error" and "without a failing test" in stopped.detail
    assert list(work.iterdir()) == []
    report = mut.Report((killed, survived, hang, broken, stopped), True, "", 1.0)
    assert (report.killed, report.ok) == (1, False)


def test_readme_table_lists_every_mutant_killed(catalogue):
    text = (mut.ROOT / "README.md").read_text()
    block = text[text.index(mut.README_BEGIN) + len(mut.README_BEGIN):text.index(mut.README_END)]
    rows = [line.split("|") for line in block.splitlines() if line.startswith("| `")]
    assert [r[1].strip().strip("`") for r in rows] == [m.name for m in catalogue], \
        "refresh it: xbarflow mutants --readme README.md"
    assert {r[3].strip() for r in rows} == {"killed"}
    assert f"Mutation score: {len(catalogue)}/{len(catalogue)} killed (100.0 %)" in block
