"""The tests mirror the source tree (tests/README.md): every test file is
tests/<path>/test_<name>[_<aspect>].py for a source module <path>/<name>.py or package
<path>/<name>/ (tests/cosim/, tests/repo/ and tests/support/ have their own rules), and every
source module has a test file, or a test file of its package, or a reason in UNTESTED."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("flow", "hdl", "analog_models", "cocotb_tests")
#: folders of tests/ that do not mirror a source folder: co-simulations (named for what they
#: co-simulate), repository-wide checks, shared helpers, the mutant catalogue
OWN_RULES = ("cosim", "repo", "support", "mutants")

_COMMAND = "a subcommand, run by tests/flow/test_cli_errors.py (every one) and tests/flow/test_cli.py"
_MARKER = "package marker"
UNTESTED = {
    "analog_models/__init__.py": _MARKER,
    "cocotb_tests/__init__.py": _MARKER,
    "flow/__init__.py": _MARKER,
    "flow/analysis/__init__.py": _MARKER,
    "flow/commands/__init__.py": "the subcommand registry: tests/flow/test_cli_errors.py",
    "flow/core/__init__.py": _MARKER,
    "flow/host/__init__.py": _MARKER,
    "flow/interop/__init__.py": _MARKER,
    "flow/model/__init__.py": _MARKER,
    "flow/sim/__init__.py": _MARKER,
    "hdl/__init__.py": _MARKER,
    "cocotb_tests/analog_bridge.py": "the analog side of the benches: tests/cosim/test_inference*.py",
    "cocotb_tests/fuzz_links.py": "the fuzz bench's pin drivers: tests/cosim/test_fuzz.py",
    "cocotb_tests/programming.py": "the programming bench: tests/cosim/test_programming.py",
    "cocotb_tests/programming_bridge.py": "its devices: tests/cosim/test_programming.py",
    "cocotb_tests/sabotage.py": "the scoreboards' self-tests: tests/cosim/",
    "cocotb_tests/spi_master.py": "the bit-banged SPI BFM: tests/cosim/test_inference.py",
    "cocotb_tests/spi_transactor.py": "the HDL SPI transport: tests/cosim/test_spi_transactor.py",
    "cocotb_tests/test_fuzz.py": "a cocotb bench: tests/cosim/test_fuzz.py",
    "cocotb_tests/test_inference.py": "a cocotb bench: tests/cosim/test_inference*.py",
    "cocotb_tests/transports.py": "the benches' transport factory: tests/cosim/",
    "cocotb_tests/uart_host.py": "the benches' UART host: tests/cosim/test_fuzz.py",
    "flow/analysis/figure_cases.py": "the figures' cases: tests/flow/analysis/test_figures.py",
    "flow/analysis/plots.py": "report and sweep plots: tests/flow/analysis/test_report.py",
    "flow/commands/bench.py": _COMMAND,
    "flow/commands/classify.py": _COMMAND,
    "flow/commands/common.py": "what the subcommands share: " + _COMMAND,
    "flow/commands/figures.py": _COMMAND,
    "flow/commands/fuzz.py": _COMMAND,
    "flow/commands/mutants.py": "tests/flow/analysis/test_mutants.py runs it; " + _COMMAND,
    "flow/commands/program.py": _COMMAND,
    "flow/commands/train.py": "tests/flow/model/test_weights_reference.py runs it; " + _COMMAND,
    "flow/commands/verilog.py": _COMMAND,
    "flow/commands/waves.py": "run on a co-simulated VCD: tests/flow/analysis/test_waves.py",
    "flow/core/errors.py": "the error classes: every usage-error test",
    "flow/core/hold.py": "the SIGINT tests' hook: tests/flow/commands/test_sim.py, test_sweep.py",
    "flow/core/overrides.py": "--set, through the subcommands: tests/flow/test_cli_errors.py",
    "flow/model/context.py": "the subcommands' setup chain: tests/flow/commands/",
    "flow/sim/schema.py": "every co-simulation's job and result: tests/cosim/",
    "hdl/command_executor.py": "a stage of the command layer: tests/hdl/test_command.py",
    "hdl/frame_receiver.py": "a stage of the command layer: tests/hdl/test_command.py",
    "hdl/frame_transmitter.py": "a stage of the command layer: tests/hdl/test_command.py",
    "hdl/ports.py": "the port signatures every block uses: tests/hdl/",
    "hdl/tile_sequencer.py": "the tile walk both controllers share: tests/hdl/test_controller.py, "
                             "test_layered_controller.py",
}


def source_modules(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for d in SOURCE_DIRS for p in (root / d).rglob("*.py")
            if "__pycache__" not in p.parts}


def subject(root: Path, test_file: Path) -> str | None:
    """The source module (`<path>/<name>.py`) or package (`<path>/<name>/`) that
    tests/<path>/test_<name>[_<aspect>].py tests, the longest <name> that exists; None if none."""
    rel = test_file.relative_to(root / "tests")
    words = rel.stem.removeprefix("test_").split("_")
    folder = root.joinpath(*rel.parts[:-1])
    for n in range(len(words), 0, -1):
        name = "_".join(words[:n])
        if (folder / f"{name}.py").is_file():
            return (folder / f"{name}.py").relative_to(root).as_posix()
        if (folder / name / "__init__.py").is_file():
            return (folder / name).relative_to(root).as_posix() + "/"
    return None


def layout_problems(root: Path) -> list[str]:
    problems, subjects = [], set()
    for path in sorted((root / "tests").rglob("*.py")):
        rel = path.relative_to(root / "tests")
        if "__pycache__" in rel.parts or path.name in ("__init__.py", "conftest.py"):
            continue
        shown = f"tests/{rel.as_posix()}"
        if rel.parts[0] == "support":
            if path.name.startswith("test_"):
                problems.append(f"{shown}: tests/support/ holds helpers, not test files")
            continue
        if not path.name.startswith("test_"):
            problems.append(f"{shown}: a helper module belongs in tests/support/")
            continue
        if rel.parts[0] in OWN_RULES:
            continue
        if len(rel.parts) == 1 or rel.parts[0] not in SOURCE_DIRS:
            problems.append(f"{shown}: not under a source folder's mirror (tests/<"
                            f"{'|'.join(SOURCE_DIRS)}>/..., or tests/<{'|'.join(OWN_RULES[:3])}>/)")
            continue
        found = subject(root, path)
        if found is None:
            folder = "/".join(rel.parts[:-1])
            problems.append(f"{shown}: no source module or package {folder}/"
                            f"{rel.stem.removeprefix('test_')}[.py] "
                            f"(tests/<path>/test_<name>[_<aspect>].py tests <path>/<name>)")
        else:
            subjects.add(found)
    for module in sorted(source_modules(root)):
        tested = module in subjects or any(s.endswith("/") and module.startswith(s) for s in subjects)
        if tested and module in UNTESTED:
            problems.append(f"{module}: has a test file now; drop it from UNTESTED")
        elif not tested and module not in UNTESTED:
            problems.append(f"{module}: no test file tests/{module[:-3].rsplit('/', 1)[0]}/test_"
                            f"{module[:-3].rsplit('/', 1)[-1]}.py (add one, or a reason to UNTESTED)")
    problems += [f"{m}: listed in UNTESTED but not a source module"
                 for m in sorted(set(UNTESTED) - source_modules(root))]
    return problems


def test_the_tests_mirror_the_source_tree():
    assert layout_problems(ROOT) == []


def _skeleton(dest: Path) -> Path:
    """The checkout's source and test file names, as empty files (enough for the layout)."""
    for d in (*SOURCE_DIRS, "tests"):
        for p in (ROOT / d).rglob("*.py"):
            if "__pycache__" not in p.parts:
                target = dest / p.relative_to(ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
    return dest


def test_misplaced_and_unmatched_files_are_named(tmp_path):
    tree = _skeleton(tmp_path)
    assert layout_problems(tree) == []
    (tree / "tests" / "test_uart.py").touch()                         # flat, as before the move
    (tree / "tests" / "hdl" / "test_nosuch.py").touch()               # no hdl/nosuch.py
    (tree / "tests" / "flow" / "core" / "test_data.py").touch()       # data.py is flow/data.py
    (tree / "tests" / "hdl" / "helpers.py").touch()                   # a helper outside support/
    (tree / "tests" / "support" / "test_helpers.py").touch()
    shutil.move(tree / "tests" / "hdl" / "test_decoder.py", tree / "tests" / "cosim")
    (tree / "hdl" / "dac_driver.py").touch()                          # a new module without a test
    (tree / "tests" / "flow" / "model" / "test_context.py").touch()   # now tested: stale UNTESTED entry
    assert layout_problems(tree) == [
        "tests/flow/core/test_data.py: no source module or package flow/core/data[.py] "
        "(tests/<path>/test_<name>[_<aspect>].py tests <path>/<name>)",
        "tests/hdl/helpers.py: a helper module belongs in tests/support/",
        "tests/hdl/test_nosuch.py: no source module or package hdl/nosuch[.py] "
        "(tests/<path>/test_<name>[_<aspect>].py tests <path>/<name>)",
        "tests/support/test_helpers.py: tests/support/ holds helpers, not test files",
        "tests/test_uart.py: not under a source folder's mirror "
        "(tests/<flow|hdl|analog_models|cocotb_tests>/..., or tests/<cosim|repo|support>/)",
        "flow/model/context.py: has a test file now; drop it from UNTESTED",
        "hdl/dac_driver.py: no test file tests/hdl/test_dac_driver.py (add one, or a reason to UNTESTED)",
        "hdl/decoder.py: no test file tests/hdl/test_decoder.py (add one, or a reason to UNTESTED)",
    ]
