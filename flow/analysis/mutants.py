"""Mutation testing: a catalogue of named, hand-written bugs that the tests must catch.

    xbarflow mutants                  # the whole catalogue (`make mutants`)
    xbarflow mutants --check          # does every mutant still apply? (~0.1 s)
    xbarflow mutants --only adc_round_floor argmax_tie_break_last

The catalogue (`tests/mutants/catalogue.toml`) is data: each entry names a file, the exact
original text, its replacement, a one-line description and the tests that must kill it. For
each mutant the runner copies the files of the tree (`git ls-files`: tracked ones, and new ones
not ignored; plus data/) into a temporary folder, applies the mutant there, and runs the
mutant's tests with pytest in that copy, PYTHONPATH pointing at the copy: the copy's code is
what every import sees, the cocotb simulator subprocesses' too, and build/ (simulator builds,
the weights cache) is the copy's. A mutant is KILLED when at least one of its tests fails; it
SURVIVED when they all pass. A mutant whose tests neither pass nor fail (pytest could not
collect them, no test ran) or that runs past its time limit is an ERROR or a TIMEOUT, never a
kill: a crash of the harness or a hang is not a verdict.

An original text that is missing, or found more than once, in its file (the code moved) is a
catalogue error naming the mutant: the run stops before any test runs, never passes silently.
Beside the mutants (first in the queue of the same workers), the union of their tests runs
once on an unmutated copy and must pass, so a kill means the mutant, not a test that was
failing anyway; if it fails, the run does not count.

Results: a table (mutant, outcome, killing test, seconds) as markdown and JSON in --out
(default runs/mutants/, never tracked), and the mutation score. Exit 0 when every mutant was
killed, 1 when any survived (or timed out, or errored, or the baseline failed), 2 on bad usage
(the command line is xbarflow.flow.commands.mutants).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..core import paths
from ..core.errors import XbarflowError
from ..sim.executor import map_jobs

__all__ = ["CATALOGUE", "CatalogueError", "DEFAULT_JOBS", "DEFAULT_OUT", "DEFAULT_TIMEOUT_S",
           "Mutant", "Outcome", "PACKAGE_DIRS", "README_BEGIN", "README_END", "Report",
           "apply_mutant", "baseline", "catalogue_problems", "check_catalogue", "copy_tree",
           "load_catalogue", "markdown_table", "namespace_shim", "run_catalogue", "run_mutant",
           "run_tests", "select", "tracked_files", "update_readme", "write_report"]

ROOT = paths.ROOT
CATALOGUE = ROOT / "tests" / "mutants" / "catalogue.toml"
DEFAULT_OUT = ROOT / "runs" / "mutants"
DEFAULT_JOBS = 2
DEFAULT_TIMEOUT_S = 600.0    # per mutant; a busy 2-core machine runs a unit test file in < 60 s
KILL_GRACE_S = 5.0           # SIGTERM, then SIGKILL, for a pytest that runs past its limit
COPIED_DIRS = ("data",)      # copied besides the tracked files (the shipped data set)
OUTCOMES = ("killed", "survived", "timeout", "error")


class CatalogueError(XbarflowError, ValueError):
    """A catalogue entry that is malformed or no longer applies (names the mutant)."""


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug: replace `original` (found exactly once in `file`) by `replacement`."""
    name: str
    file: str                  # path relative to the tree's root
    original: str
    replacement: str
    description: str
    tests: tuple[str, ...]     # pytest node ids or test files, relative to the root
    timeout_s: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What one mutant's tests did: `status` is one of OUTCOMES."""
    name: str
    status: str
    killed_by: str | None      # the first failing test (node id) when killed
    seconds: float
    detail: str = ""           # why, for a timeout or an error; pytest's tail otherwise


@dataclass(frozen=True)
class Report:
    outcomes: tuple[Outcome, ...]
    baseline_ok: bool
    baseline_detail: str
    seconds: float

    @property
    def killed(self) -> int:
        return sum(o.status == "killed" for o in self.outcomes)

    @property
    def score(self) -> float:
        return self.killed / len(self.outcomes) if self.outcomes else 0.0

    @property
    def ok(self) -> bool:
        return self.baseline_ok and bool(self.outcomes) and self.killed == len(self.outcomes)

    def to_json(self) -> dict:
        return {"mutants": len(self.outcomes), "killed": self.killed,
                "score": round(self.score, 4), "baseline_ok": self.baseline_ok,
                "baseline_detail": self.baseline_detail, "seconds": round(self.seconds, 1),
                "outcomes": [asdict(o) | {"seconds": round(o.seconds, 1)} for o in self.outcomes]}


# -- the catalogue -------------------------------------------------------------------------------

_FIELDS = {"name": str, "file": str, "original": str, "replacement": str, "description": str}


def load_catalogue(path: str | Path = CATALOGUE) -> list[Mutant]:
    """The mutants of a catalogue file (TOML, one `[[mutant]]` table each), checked for form."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise CatalogueError(f"cannot read the mutant catalogue {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    entries = data.get("mutant")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{path}: no [[mutant]] entries")
    mutants, seen = [], set()
    for k, entry in enumerate(entries):
        label = entry.get("name", f"entry {k + 1}")
        for key, kind in _FIELDS.items():
            if not isinstance(entry.get(key), kind) or not entry[key]:
                raise CatalogueError(f"mutant {label}: '{key}' must be a non-empty string")
        tests = entry.get("tests")
        if (not isinstance(tests, list) or not tests
                or not all(isinstance(t, str) and t.startswith("tests/") for t in tests)):
            raise CatalogueError(f"mutant {label}: 'tests' must be a non-empty list of test ids "
                                 "under tests/")
        unknown = set(entry) - set(_FIELDS) - {"tests", "timeout_s"}
        if unknown:
            raise CatalogueError(f"mutant {label}: unknown keys {sorted(unknown)}")
        if entry["name"] in seen:
            raise CatalogueError(f"mutant {label}: the name is used twice")
        if entry["original"] == entry["replacement"]:
            raise CatalogueError(f"mutant {label}: the replacement equals the original")
        seen.add(entry["name"])
        timeout = entry.get("timeout_s")
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise CatalogueError(f"mutant {label}: 'timeout_s' must be a positive number")
        mutants.append(Mutant(entry["name"], entry["file"], entry["original"],
                              entry["replacement"], entry["description"], tuple(tests),
                              None if timeout is None else float(timeout)))
    return mutants


def select(mutants: Sequence[Mutant], names: Iterable[str] | None) -> list[Mutant]:
    """The mutants named in `names` (catalogue order), all of them for None."""
    if names is None:
        return list(mutants)
    wanted = list(names)
    known = {m.name for m in mutants}
    missing = [n for n in wanted if n not in known]
    if missing:
        raise CatalogueError(f"no mutant named {', '.join(missing)} in the catalogue")
    return [m for m in mutants if m.name in wanted]


def _test_file_and_function(test_id: str) -> tuple[str, str | None]:
    """("tests/hdl/test_x.py", "test_y") of "tests/hdl/test_x.py::test_y[param]"; None for a file."""
    path, _, rest = test_id.partition("::")
    func = rest.split("[", 1)[0].split("::")[-1]
    return path, func or None


def catalogue_problems(mutants: Sequence[Mutant], root: str | Path = ROOT) -> list[str]:
    """Every reason a mutant no longer applies to the tree at `root` (empty: all apply).

    A mutant applies when its original text occurs exactly once in its file and every test it
    names exists (the file, and a `def` of the test function)."""
    root = Path(root)
    problems = []
    for m in mutants:
        target = root / m.file
        if not target.is_file():
            problems.append(f"mutant {m.name}: file {m.file} does not exist")
        else:
            count = target.read_text().count(m.original)
            if count != 1:
                where = "not found" if count == 0 else f"found {count} times"
                problems.append(f"mutant {m.name}: original text {where} in {m.file} "
                                f"(it must occur exactly once; did the code move?)")
        for test_id in m.tests:
            path, func = _test_file_and_function(test_id)
            test_file = root / path
            if not test_file.is_file():
                problems.append(f"mutant {m.name}: test file {path} does not exist")
            elif func and f"def {func}(" not in test_file.read_text():
                problems.append(f"mutant {m.name}: no test {func} in {path}")
    return problems


def check_catalogue(mutants: Sequence[Mutant], root: str | Path = ROOT) -> None:
    """Raise `CatalogueError` listing every mutant that no longer applies to `root`."""
    problems = catalogue_problems(mutants, root)
    if problems:
        raise CatalogueError("\n".join(problems))


def apply_mutant(mutant: Mutant, root: str | Path) -> None:
    """Apply `mutant` to the tree at `root` in place (a copy!); loud when it does not apply."""
    target = Path(root) / mutant.file
    text = target.read_text()
    count = text.count(mutant.original)
    if count != 1:
        raise CatalogueError(f"mutant {mutant.name}: original text found {count} times in "
                             f"{mutant.file} (expected exactly once; did the code move?)")
    target.write_text(text.replace(mutant.original, mutant.replacement))


# -- copies of the tree ----------------------------------------------------------------------------

def tracked_files(root: str | Path) -> list[str]:
    """The files of the tree at `root` as git sees them: tracked ones that exist in the work
    tree (uncommitted edits included) and new ones not ignored (a test not committed yet)."""
    root = Path(root)
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=root, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CatalogueError(f"{root} is not a git work tree (git ls-files failed: {exc})") from None
    return [f for f in out.decode().split("\0") if f and (root / f).is_file()]


def copy_tree(root: str | Path, dest: str | Path) -> Path:
    """Copy the files of `root` (`tracked_files`), plus `COPIED_DIRS`, into `dest` (created)."""
    root, dest = Path(root), Path(dest)
    files = set(tracked_files(root))
    for d in COPIED_DIRS:
        files.update(str(p.relative_to(root)) for p in (root / d).rglob("*") if p.is_file())
    for rel in sorted(files):
        src, dst = root / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel.split("/", 1)[0] in COPIED_DIRS:
            try:            # the data set is read-only input: a hard link saves 11 MB per copy
                os.link(src, dst)
                continue
            except OSError:
                pass
        shutil.copy2(src, dst)
    return dest


#: The source folders the installed distribution maps under the `xbarflow` namespace.
PACKAGE_DIRS = ("flow", "hdl", "analog_models", "cocotb_tests")
SHIM = ".xbarflow-namespace"


def namespace_shim(copy: str | Path) -> Path:
    """A folder in `copy` holding `xbarflow/<folder>` links to the copy's source folders: with it
    first on PYTHONPATH, `import xbarflow.flow...` finds the copy's code, as the editable install
    finds the checkout's (a namespace package, so no __init__ is needed)."""
    ns = Path(copy) / SHIM / "xbarflow"
    ns.mkdir(parents=True, exist_ok=True)
    for name in PACKAGE_DIRS:
        link = ns / name
        if not link.exists():
            link.symlink_to(Path(copy).resolve() / name, target_is_directory=True)
    return ns.parent


def _env_for(copy: Path) -> dict[str, str]:
    """The environment of a test run in `copy`: its code, through the namespace shim, first on
    the path (the editable install would otherwise import the checkout's code)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(namespace_shim(copy))
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a pytest started in its own session, and everything it started (simulators)."""
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, KILL_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_tests(copy: str | Path, tests: Sequence[str], timeout_s: float, *,
              first_failure: bool = True) -> tuple[str, int | None, str]:
    """Run pytest on `tests` inside `copy`; return (status, exit code, output).

    status: "passed" (exit 0), "failed" (exit 1: a test failed), "timeout", or "error" (pytest
    could not run them: collection error, no such test, no test collected)."""
    copy = Path(copy)
    basetemp = copy / ".pytest-tmp"
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
           "-o", "addopts=", f"--basetemp={basetemp}", *(["-x"] if first_failure else []),
           *tests]
    proc = subprocess.Popen(cmd, cwd=copy, env=_env_for(copy), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out = proc.communicate()[0]
        return "timeout", None, out
    except BaseException:     # Ctrl-C: leave no pytest or simulator behind
        _kill_group(proc)
        raise
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    if proc.returncode == 0:
        return "passed", 0, out
    if proc.returncode == 1:
        return "failed", 1, out
    return "error", proc.returncode, out


def _first_failure(output: str) -> str | None:
    """The node id of the first FAILED/ERROR line of pytest's short test summary (only there:
    a simulator's log has ERROR lines of its own)."""
    in_summary = False
    for line in output.splitlines():
        if line.startswith("=") and "short test summary info" in line:
            in_summary = True
            continue
        head, _, rest = line.partition(" ")
        if in_summary and head in ("FAILED", "ERROR") and rest.startswith("tests/"):
            return rest.split(" - ", 1)[0].strip()
    return None


def _tail(output: str, lines: int = 15) -> str:
    return "\n".join(output.rstrip().splitlines()[-lines:])


# -- running mutants -------------------------------------------------------------------------------

def run_mutant(mutant: Mutant, root: str | Path = ROOT, *, timeout_s: float = DEFAULT_TIMEOUT_S,
               work_dir: str | Path | None = None, keep: bool = False) -> Outcome:
    """Copy `root`, apply `mutant`, run its tests there: the `Outcome` (never raises for a
    mutant's own failure; a catalogue error is an "error" outcome naming the mutant)."""
    t0 = time.perf_counter()
    limit = mutant.timeout_s or timeout_s
    tmp = Path(tempfile.mkdtemp(prefix=f"mutant-{mutant.name}-", dir=work_dir))
    try:
        copy = copy_tree(root, tmp / "tree")
        try:
            apply_mutant(mutant, copy)
        except CatalogueError as exc:
            return Outcome(mutant.name, "error", None, time.perf_counter() - t0, str(exc))
        status, code, out = run_tests(copy, mutant.tests, limit)
        seconds = time.perf_counter() - t0
        failing = _first_failure(out)
        if status == "failed" and failing:
            return Outcome(mutant.name, "killed", failing, seconds)
        if status == "passed":
            return Outcome(mutant.name, "survived", None, seconds,
                           "every selected test passed: a missing test")
        if status == "timeout":
            return Outcome(mutant.name, "timeout", None, seconds,
                           f"the tests did not finish within {limit:.0f} s (a hang is no kill)"
                           f"\n{_tail(out)}")
        return Outcome(mutant.name, "error", None, seconds,
                       f"pytest exit {code} without a failing test: the tests could not run"
                       f"\n{_tail(out)}")
    finally:
        if keep:
            print(f"xbarflow.flow.analysis.mutants: the copy of {mutant.name} is kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def baseline(mutants: Sequence[Mutant], root: str | Path = ROOT, *,
             timeout_s: float = DEFAULT_TIMEOUT_S, work_dir: str | Path | None = None
             ) -> tuple[bool, str]:
    """Run the union of the mutants' tests on an unmutated copy: (all passed, detail)."""
    tests = list(dict.fromkeys(t for m in mutants for t in m.tests))
    tmp = Path(tempfile.mkdtemp(prefix="mutant-baseline-", dir=work_dir))
    try:
        copy = copy_tree(root, tmp / "tree")
        status, code, out = run_tests(copy, tests, timeout_s * 2, first_failure=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if status == "passed":
        return True, f"the {len(tests)} selected test ids pass on the unmutated tree"
    return False, f"the unmutated tree does not pass the selected tests ({status}):\n{_tail(out, 30)}"


def _job(item: tuple) -> Outcome | tuple[bool, str]:
    kind, what, root, timeout_s, work_dir, keep = item
    if kind == "baseline":
        return baseline(what, root, timeout_s=timeout_s, work_dir=work_dir)
    return run_mutant(what, root, timeout_s=timeout_s, work_dir=work_dir, keep=keep)


def run_catalogue(mutants: Sequence[Mutant], root: str | Path = ROOT, *,
                  jobs: int = DEFAULT_JOBS, timeout_s: float = DEFAULT_TIMEOUT_S,
                  work_dir: str | Path | None = None, keep: bool = False,
                  with_baseline: bool = True,
                  progress: Callable[[int, int, Outcome], None] | None = None,
                  on_baseline: Callable[[bool, str], None] | None = None) -> Report:
    """Check that every mutant applies (raises `CatalogueError` before any test runs), then run
    the baseline and every mutant on `jobs` workers (the baseline first, beside the mutants: its
    verdict only decides whether the run counts)."""
    check_catalogue(mutants, root)
    t0 = time.perf_counter()
    common = (str(root), timeout_s, None if work_dir is None else str(work_dir), keep)
    items = ([("baseline", tuple(mutants), *common)] if with_baseline else []) + \
        [("mutant", m, *common) for m in mutants]
    done = [0]

    def report(index: int, result) -> None:
        if isinstance(result, Outcome):
            done[0] += 1
            if progress:
                progress(done[0], len(mutants), result)
        elif on_baseline:
            on_baseline(*result)

    results = map_jobs(_job, items, jobs=jobs, progress=report)
    ok, detail = results.pop(0) if with_baseline else (True, "baseline skipped")
    return Report(tuple(results), ok, detail, time.perf_counter() - t0)


# -- reporting ---------------------------------------------------------------------------------

def markdown_table(report: Report, mutants: Sequence[Mutant] | None = None, *,
                   timings: bool = True) -> str:
    """The results as a markdown table, then the score line. Without `timings` (the README's
    copy) no wall-clock figure appears: those change from run to run and machine to machine."""
    files = {m.name: m.file for m in mutants or ()}
    lines = (["| mutant | file | outcome | killed by | seconds |", "|---|---|---|---|---:|"] if timings
             else ["| mutant | file | outcome | killed by |", "|---|---|---|---|"])
    for o in report.outcomes:
        by = f"`{o.killed_by}`" if o.killed_by else "-"
        row = f"| `{o.name}` | {files.get(o.name, '')} | {o.status} | {by} |"
        lines.append(row + (f" {o.seconds:.1f} |" if timings else ""))
    score = f"Mutation score: {report.killed}/{len(report.outcomes)} killed ({100 * report.score:.1f} %)"
    lines += ["", score + (f", {report.seconds / 60:.1f} min wall time." if timings else ".")]
    return "\n".join(lines)


README_BEGIN = "<!-- mutants:begin (xbarflow mutants --readme README.md) -->"
README_END = "<!-- mutants:end -->"


def update_readme(path: Path, report: Report, mutants: Sequence[Mutant]) -> None:
    """Replace the text between the README markers by this run's table."""
    text = path.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise CatalogueError(f"{path} has no {README_BEGIN} ... {README_END} block")
    table = markdown_table(report, mutants, timings=False)
    path.write_text(text[:begin + len(README_BEGIN)] + "\n" + table + "\n" + text[end:])


def write_report(report: Report, mutants: Sequence[Mutant], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "mutants.md", out / "mutants.json"
    md.write_text(markdown_table(report, mutants) + "\n")
    js.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return md, js
