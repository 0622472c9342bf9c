"""Bad user input on every `xbarflow` subcommand: each case must end with exactly one line on
stderr and exit status 2, never a traceback.

Covered for every subcommand of `xbarflow --help` that reads a config (all but NO_CONFIG):
config files that are missing, a folder, undecodable, malformed TOML, with an unknown key or
section (the nearest name is suggested), a value out of range or of the wrong type; then each
subcommand's own inputs (data sets, run folders, VCDs, weights, images of the wrong shape or
dtype, option values out of range, unknown simulators, output folders that cannot be created)
and simulators that are not installed (PATH without them, in a subprocess).

Unreadable files: a folder where a file is expected, bytes that are not UTF-8, and a chmod 000
file (chmod 000 does not stop root, so that case runs the CLI without the capabilities that
override file modes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xbarflow.flow.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


# -- fixtures: one folder of bad (and a few good) inputs ------------------------------------------

@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "folder.toml").mkdir()
    (d / "folder.npy").mkdir()
    (d / "blocker").write_text("a regular file, so nothing can be created under it")
    (d / "malformed.toml").write_text("[adc\nbits =")
    (d / "undecodable.toml").write_bytes(b"\xff\xfe[adc]\n")
    (d / "unknown_key.toml").write_text("[adc]\nbitz = 3\n")
    (d / "unknown_section.toml").write_text("[adcc]\nbits = 3\n")
    (d / "range.toml").write_text("[adc]\nbits = 99\n")
    (d / "type.toml").write_text('[adc]\nbits = "eight"\n')
    (d / "missing_weights.toml").write_text('[train]\nweights = "gone.npz"\n')   # an imported network's
    # Images.
    good = np.zeros((28, 28), np.uint8)
    good[8:20, 12:16] = 255
    np.save(d / "good.npy", good)
    # Programming targets made for the other shipped config.
    np.savez(d / "slp_targets.npz", targets=np.zeros((1, 196, 20), np.int64))
    np.savez(d / "mlp_targets.npz", targets=np.zeros((10, 128, 128), np.int64))
    # ... as `xbarflow program` writes them (config named): mlp_binary has mlp's tiles
    np.savez(d / "mlp_named_targets.npz", targets=np.zeros((10, 128, 128), np.int64), config="mlp")
    np.savez(d / "level_range_targets.npz", targets=np.full((1, 196, 20), 99, np.int64))
    np.savez(d / "float_targets.npz", targets=np.zeros((1, 196, 20)))
    np.save(d / "three_d.npy", np.zeros((2, 28, 28), np.uint8))
    np.save(d / "not_square.npy", np.zeros((28, 20), np.uint8))
    np.save(d / "int32.npy", np.zeros((28, 28), np.int32))
    np.save(d / "float_range.npy", np.full((28, 28), 2.0))
    np.save(d / "nan.npy", np.full((28, 28), np.nan))
    np.save(d / "too_small.npy", np.zeros((5, 5), np.uint8))
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (d / "corrupt.npy").write_bytes(b"\x93NUMPY this is not an array")
    (d / "ascii.pgm").write_bytes(b"P2 28 28 255\n0 0 0\n")
    (d / "truncated.pgm").write_bytes(b"P5 28 28 255\n" + bytes(10))
    (d / "image.png").write_bytes(b"\x89PNG")
    # Data sets, weights, reports.
    (d / "not_a_zip.npz").write_bytes(b"not a zip file")
    np.savez(d / "wrong_arrays.npz", x=np.zeros(3))
    (d / "garbage.json").write_text("{not json")
    (d / "garbage.vcd").write_text("garbage\n")
    # A small valid VCD with UART pins (waves needs a config for the UART divider).
    (d / "uart.vcd").write_text(
        "$timescale 1ps $end\n$scope module xbarflow_top $end\n$var wire 1 ! clk $end\n"
        "$var wire 1 # uart_rx $end\n$var wire 1 $ uart_tx $end\n$upscope $end\n"
        "$enddefinitions $end\n#0\n0!\n1#\n1$\n#10000\n1!\n#20000\n0!\n#30000\n1!\n")
    # Run folders for `report`: empty, bad JSON, no predictions, and a valid one without a
    # logit scale (so the config is read for it).
    (d / "run_empty").mkdir()
    (d / "run_badjson").mkdir()
    (d / "run_badjson" / "report.json").write_text("{not json")
    (d / "run_nopred").mkdir()
    (d / "run_nopred" / "report.json").write_text('{"config": "slp"}')
    run = d / "run_ok"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({"config": "slp", "simulator": "verilator"}))
    rng = np.random.default_rng(0)
    np.savez(run / "predictions.npz", indices=np.arange(20), labels=rng.integers(0, 10, 20),
             classes=rng.integers(0, 10, 20), adc_codes=rng.integers(-100, 100, (20, 10)))
    return d


def one_line_exit_2(argv, capsys) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, f"{argv}: exit {code}, stderr {err!r}"
    assert err.count("\n") == 1 and err.strip(), f"{argv}: not one line: {err!r}"
    assert "Traceback" not in err
    return err


def run_cli(argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "xbarflow.flow.cli", *map(str, argv)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env)


# -- config files, on every subcommand that reads one -----------------------------------------------

CONFIG_CASES = {
    "missing.toml": "config file not found",
    "folder.toml": "is a directory",
    "malformed.toml": "malformed TOML",
    "undecodable.toml": "cannot read config",
    "unknown_key.toml": "unknown key 'bitz'; did you mean 'bits'?",
    "unknown_section.toml": "unknown key 'adcc'; did you mean 'adc'?",
    "range.toml": "adc.bits must be in 2..16, got 99",
    "type.toml": "adc.bits: expected an integer",
    "missing_weights.toml": "gone.npz, which is not a file",
}


def config_commands(d: Path, out: Path) -> dict[str, list]:
    """Each subcommand with otherwise valid arguments, so the config is what is wrong."""
    return {
        "demo": ["demo", "--out", out],
        "program": ["program", "--out", out],
        "verilog": ["verilog", "--out", out],
        "report": ["report", d / "run_ok"],
        "waves": ["waves", d / "uart.vcd", "--uart"],
        "spice": ["spice", "--out", out, "--no-run"],
        "cost": ["cost"],
        "sweep": ["sweep", "--param", "adc.bits=4", "--out", out],
        "sim": ["sim", "--images", "2", "--out", out],
        "classify": ["classify", d / "good.npy"],
        "train": ["train", "--data", d / "missing.npz"],
        "fuzz": ["fuzz", "--out", out],
        "lint": ["lint"],
        "import": ["import", d / "missing.onnx", "--out", out],
        "export": ["export", "--out", out],
    }


#: Subcommands without a --config: they work on the shipped configs or none.
NO_CONFIG = {"bench", "coverage", "figures", "mutants"}


@pytest.mark.parametrize("config_file", list(CONFIG_CASES))
@pytest.mark.parametrize("command", list(config_commands(Path("."), Path("."))))
def test_bad_config_on_every_subcommand(command, config_file, bad, tmp_path, capsys):
    argv = config_commands(bad, tmp_path / "out")[command] + ["--config", bad / config_file]
    err = one_line_exit_2(argv, capsys)
    assert CONFIG_CASES[config_file] in err, err
    assert not (tmp_path / "out").exists(), "output created before the config was checked"


# -- each subcommand's own inputs -------------------------------------------------------------------

def cases(d: Path, t: Path) -> list[tuple[list, str]]:
    blocked = d / "blocker" / "sub"
    img = d / "good.npy"
    mlp = ROOT / "configs" / "mlp.toml"
    mlp_binary = ROOT / "configs" / "mlp_binary.toml"
    return [
        # top level
        ([], "required"),
        (["frobnicate"], "invalid choice"),
        # demo
        (["demo", "--data", d / "missing.npz", "--out", t], "dataset not found"),
        (["demo", "--data", d / "folder.npy", "--out", t], "missing IDX files"),
        (["demo", "--data", d / "not_a_zip.npz", "--out", t], "not a readable npz file"),
        (["demo", "--data", d / "wrong_arrays.npz", "--out", t], "missing arrays"),
        (["demo", "--out", blocked], "not writable"),
        (["demo", "--sim", "modelsim"], "invalid choice: 'modelsim'"),
        (["demo", "--images", "0"], "positive integer"),
        (["demo", "--images", "100000", "--out", t], "exceeds the 10000 test images"),
        (["demo", "--set", "adc.bitz=3", "--out", t], "did you mean 'bits'"),
        (["demo", "--set", "adc.bits=99", "--out", t], "adc.bits must be in 2..16"),
        (["demo", "--set", "nosection", "--out", t], "expected section.key=value"),
        # program
        (["program", "--host", "i2c"], "invalid choice: 'i2c'"),
        (["program", "--set", "device.dead_partition=8", "--out", t], "device.dead_partition must be"),
        (["program", "--set", "device.stuck_on_rate=1.5", "--out", t], "stuck_on_rate"),
        (["program", "--out", blocked], "not writable"),
        (["program", "--config", mlp, "--tile", "10", "--out", t],
         "--tile 10 out of range: config mlp has tiles 0..9"),
        (["program", "--tile", "1", "--out", t], "--tile 1 out of range: config slp has tiles 0..0"),
        (["program", "--config", mlp, "--tile", "-1", "--out", t], "--tile -1 out of range"),
        (["program", "--config", mlp, "--targets", d / "slp_targets.npz", "--out", t],
         "are not for config 'mlp': it needs 10 tiles of 128 x 128"),
        (["program", "--targets", d / "mlp_targets.npz", "--out", t],
         "are not for config 'slp': it needs 1 tiles of 196 x 20"),
        (["program", "--config", mlp_binary, "--targets", d / "mlp_named_targets.npz", "--out", t],
         "made for config 'mlp', not 'mlp_binary'"),
        (["program", "--targets", d / "level_range_targets.npz", "--out", t],
         "target levels must be in 0..31 for config 'slp', got 99..99"),
        (["program", "--targets", d / "float_targets.npz", "--out", t], "integer level codes"),
        (["program", "--targets", d / "not_a_zip.npz", "--out", t], "not a targets .npz"),
        (["program", "--targets", d / "missing.npz", "--out", t], "not a targets .npz"),
        (["program", "--set", "programming.bias=v4", "--out", t], "programming.bias must be v2, v3"),
        (["program", "--set", "crossbar.cell=2T2R", "--out", t], "crossbar.cell must be 1R, 1T1R"),
        (["program", "--set", "crossbar.cell=1S1R", "--set", "crossbar.selector_v_th=0.3", "--out", t],
         "the threshold selector passes only 1e-12 S at crossbar.v_read = 0.2 V"),
        # verilog
        (["verilog"], "--out"),
        (["verilog", "--out", blocked], "not writable"),
        # report
        (["report"], "run_dir"),
        (["report", d / "missing_run"], "run folder not found"),
        (["report", d / "run_empty"], "report.json not found"),
        (["report", d / "run_badjson"], "not readable JSON"),
        (["report", d / "run_nopred"], "predictions.npz not found"),
        (["report", d / "run_ok", "--scale", "-1"], "--scale must be a positive number"),
        (["report", d / "run_ok", "--scale", "many"], "invalid float value"),
        # waves
        (["waves", d / "missing.vcd"], "VCD file not found"),
        (["waves", d / "folder.npy"], "VCD file not found"),
        (["waves", d / "garbage.vcd"], "not a VCD file"),
        (["waves", d / "uart.vcd", "--cycles", "1-2"], "bad cycle range"),
        (["waves", d / "uart.vcd", "--start", "soon"], "bad time 'soon'"),
        (["waves", d / "uart.vcd", "--sidecar", d / "missing.json", "--fsm"], "sidecar not found"),
        (["waves", d / "uart.vcd", "--sidecar", d / "garbage.json", "--fsm"], "not a readable sidecar"),
        (["waves", d / "uart.vcd", "-s", "nosuch"], "no signal matches 'nosuch'"),
        (["waves", d / "uart.vcd", "--max-rows", "0"], "--max-rows must be >= 1"),
        (["waves", d / "uart.vcd", "--spi"], "no SPI pins"),
        (["waves", d / "uart.vcd", "--gtkw", d / "blocker" / "x.gtkw"], "cannot write"),
        # spice
        (["spice"], "--out"),
        (["spice", "--out", blocked], "not writable"),
        (["spice", "--out", t, "--no-run", "--weights", d / "missing.npz"], "weights file not found"),
        (["spice", "--out", t, "--no-run", "--weights", d / "not_a_zip.npz"], "not a readable weights file"),
        (["spice", "--out", t, "--no-run", "--data", d / "missing.npz"], "dataset not found"),
        (["spice", "--out", t, "--no-run", "--image", "10000"], "outside the 10000 test images"),
        (["spice", "--out", t, "--no-run", "--image", "first"], "invalid int value"),
        # cost
        (["cost", "--data", d / "missing.npz"], "dataset not found"),
        (["cost", "--report", d / "missing.json"], "not a co-simulation report"),
        (["cost", "--report", d / "garbage.json"], "not a co-simulation report"),
        (["cost", "--json", d / "blocker" / "x.json"], "not writable"),
        (["cost", "--json", d / "folder.npy"], "is a folder"),
        # sweep
        (["sweep"], "--param"),
        (["sweep", "--param", "adc.bits"], "use KEY=V1,V2"),
        (["sweep", "--param", "adc.bitz=4,6"], "did you mean 'bits'"),
        (["sweep", "--param", "adc.bits=4,99"], "adc.bits must be in 2..16"),
        (["sweep", "--param", "adc.bits=4", "--jobs", "0", "--out", t], "--jobs must be >= 1"),
        (["sweep", "--param", "adc.bits=4", "--out", blocked], "not writable"),
        (["sweep", "--param", "adc.bits=4", "--data", d / "missing.npz", "--out", t], "dataset not found"),
        # sim
        (["sim"], "--images"),
        (["sim", "--images", "0"], "expected 'all' or a positive integer"),
        (["sim", "--images", "some"], "expected 'all' or a positive integer"),
        (["sim", "--images", "2", "--sim", "xsim"], "invalid choice: 'xsim'"),
        (["sim", "--images", "2", "--jobs", "0", "--out", t], "positive integer"),
        (["sim", "--images", "2", "--shard-size", "0", "--out", t], "positive integer"),
        (["sim", "--images", "2", "--out", blocked], "not writable"),
        (["sim", "--images", "2", "--dask", "no-port-here", "--out", t], "cannot connect to the Dask scheduler"),
        # classify: images of the wrong kind, shape or dtype
        (["classify"], "image"),
        (["classify", d / "missing.npy"], "image file not found"),
        (["classify", d / "folder.npy"], "image file not found"),
        (["classify", d / "three_d.npy"], "expected a 2-D image, got shape (2, 28, 28)"),
        (["classify", d / "not_square.npy"], "need a square image"),
        (["classify", d / "int32.npy"], "pixel dtype int32 not supported"),
        (["classify", d / "float_range.npy"], "float pixels must lie in [0, 1]"),
        (["classify", d / "nan.npy"], "NaN"),
        (["classify", d / "too_small.npy"], "cannot resize 5x5 images to 14x14"),
        (["classify", d / "objects.npy"], "not a readable .npy file"),
        (["classify", d / "corrupt.npy"], "not a readable .npy file"),
        (["classify", d / "ascii.pgm"], "not a binary PGM"),
        (["classify", d / "truncated.pgm"], "truncated PGM data"),
        (["classify", d / "image.png"], "unsupported image format '.png'"),
        (["classify", img, "--sim", "questa"], "invalid choice: 'questa'"),
        (["classify", img, "--sim", "verilator", "--out", blocked], "not writable"),
        (["classify", img, "--data", d / "missing.npz"], "dataset not found"),
        # train
        (["train", "--set", "nosection"], "expected section.key=value, got 'nosection'"),
        (["train", "--set", "adc.bits=99"], "adc.bits must be in 2..16"),
        (["train", "--set", "adc.bitz=3"], "did you mean 'bits'"),
        (["train", "--data", d / "missing.npz"], "dataset not found"),
        (["train", d / "missing.toml"], "config file not found"),
        (["train", "configs/slp.toml", "--config", "configs/slp.toml"], "give the config once"),
        # figures
        (["figures", "--only", "nope"], "invalid choice: 'nope'"),
        (["figures", "--check", "--out", d / "garbage.json"], "not a readable figures JSON"),
        (["figures", "--readme-only", "--readme", d / "missing.md"], "README not found"),
        # bench
        (["bench", "--phase", "nope"], "invalid choice: 'nope'"),
        (["bench", "--phase", "golden", "--params", "{x"], "--params is not JSON"),
        (["bench", "--quick", "extra"], "unrecognized arguments: extra"),
        (["bench", "--only", "nope"], "invalid choice: 'nope'"),
        # fuzz
        (["fuzz", "--frames", "0", "--out", t], "positive integer"),
        (["fuzz", "--frames", "many", "--out", t], "positive integer"),
        (["fuzz", "--host", "i2c", "--out", t], "invalid choice: 'i2c'"),
        (["fuzz", "--sim", "xsim", "--out", t], "invalid choice: 'xsim'"),
        (["fuzz", "--seed", "one", "--out", t], "invalid int value"),
        (["fuzz", "--out", blocked], "not writable"),
        # mutants
        (["mutants", "--jobs", "0"], "positive integer"),
        (["mutants", "--timeout", "-1"], "positive number"),
        (["mutants", "--timeout", "soon"], "positive number"),
        (["mutants", "--only", "nope", "--check"], "no mutant named nope"),
        (["mutants", "--catalogue", d / "missing.toml", "--check"], "cannot read the mutant catalogue"),
        (["mutants", "--catalogue", d / "malformed.toml", "--check"], "malformed.toml"),
        (["mutants", "--check", "--readme", d / "garbage.json"], "has no <!-- mutants:begin"),
        # lint
        (["lint", "--set", "adc.bits=4"], "--set needs --config"),
        (["lint", "--config", "configs/slp.toml", "--set", "adc.bitz=3"], "did you mean 'bits'"),
        (["lint", "--waivers", d / "missing.vlt"], "waiver file"),
        (["lint", "--keep", blocked], "not writable"),
        # coverage
        (["coverage", "--waivers", d / "missing.toml"], "waiver file"),
        (["coverage", "--reuse", "--out", t], "run without --reuse first"),
        (["coverage", "--only", "nope"], "invalid choice: 'nope'"),
        # import (the model's own rejections: tests/flow/commands/test_import_model.py)
        (["import", "--out", t], "model"),
        (["import", d / "missing.onnx", "--out", t], "model file not found"),
        (["import", d / "folder.npy", "--out", t], "is a folder, not a model file"),
        (["import", d / "garbage.vcd", "--out", t], "not a valid ONNX model"),
        # export
        (["export"], "--out"),
        (["export", "--out", blocked], "not writable"),
        (["export", "--set", "adc.bitz=3", "--out", t], "did you mean 'bits'"),
        (["export", "--data", d / "missing.npz", "--out", t], "dataset not found"),
    ]


def _case_ids():
    return [f"{argv[0] if argv else 'none'}:{needle[:28]}" for argv, needle in cases(Path("D"), Path("T"))]


@pytest.mark.parametrize("index", range(len(cases(Path("D"), Path("T")))), ids=_case_ids())
def test_bad_input_exits_2_with_one_line(index, bad, tmp_path, capsys):
    argv, needle = cases(bad, tmp_path / "out")[index]
    err = one_line_exit_2(argv, capsys)
    assert needle in err, f"{argv}: {err!r}"


def test_every_subcommand_is_covered(bad, tmp_path):
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    commands = set(sub.choices)
    assert {"demo", "program", "verilog", *COMMANDS} <= commands
    covered = {argv[0] for argv, _ in cases(bad, tmp_path) if argv}
    assert commands <= covered, f"subcommands without bad-input cases: {commands - covered}"
    assert set(config_commands(bad, tmp_path)) == commands - NO_CONFIG, \
        "every subcommand but those of NO_CONFIG reads a config"


def test_good_image_classifies(bad, capsys):
    """The control: the same command with a good image works (exit 0, class printed)."""
    assert main(["classify", str(bad / "good.npy")]) == 0
    out = capsys.readouterr().out
    assert "class " in out and "ADC codes [" in out


def test_classify_cosimulates_one_image_with_parity(bad, tmp_path, capsys):
    """classify --sim: the same image through the chip (Verilator) gives the golden class and
    the golden sums, read back from the chip; the .pgm form of the image gives the same answer
    as the .npy form."""
    img = np.load(bad / "good.npy")
    pgm = tmp_path / "good.pgm"
    pgm.write_bytes(b"P5\n28 28\n255\n" + img.tobytes())
    assert main(["classify", str(pgm), "--sim", "verilator", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out.splitlines()
    golden, cosim = out[0], out[1]
    codes = golden.split("ADC codes ")[1]
    assert "parity with the golden model" in cosim and cosim.split("sums read back ")[1].startswith(codes)
    assert golden.split("class ")[1][0] == cosim.split("class ")[1][0]
    assert main(["classify", str(bad / "good.npy")]) == 0
    assert capsys.readouterr().out.split("ADC codes ")[1].strip() == codes


def _without_file_permission_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    capability bounding set, so even root obeys file modes (prctl PR_CAPBSET_DROP)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_file_without_permission(tmp_path):
    """A chmod 000 config (root reads such files anyway, so the CLI runs without that power)."""
    f = tmp_path / "secret.toml"
    f.write_text("[adc]\nbits = 8\n")
    f.chmod(0)
    proc = subprocess.run([PYTHON, "-m", "xbarflow.flow.cli", "verilog", "--out", str(tmp_path / "o"),
                           "--config", str(f)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT,
                          preexec_fn=_without_file_permission_override if os.geteuid() == 0 else None)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot read config" in proc.stderr and "Permission denied" in proc.stderr, proc.stderr


# -- simulators that are not installed (a PATH without them) -------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["demo", "--sim", "icarus"], "apt-get install iverilog"),
    (["demo", "--sim", "verilator"], "Verilator needs 'g++'"),
    (["program", "--sim", "icarus"], "apt-get install iverilog"),
    (["sim", "--sim", "icarus", "--images", "2"], "apt-get install iverilog"),
    (["sim", "--sim", "verilator", "--images", "2"], "apt-get install g++"),
    (["classify", "GOOD", "--sim", "icarus"], "apt-get install iverilog"),
    (["classify", "GOOD", "--sim", "verilator"], "apt-get install g++"),
    (["spice"], "apt-get install ngspice"),
])
def test_simulator_not_installed_says_how_to_install(argv, needle, bad, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    argv = [bad / "good.npy" if a == "GOOD" else a for a in argv] + ["--out", tmp_path / "o"]
    proc = run_cli(argv, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in proc.stderr


def test_python_m_flow_cli_plugin_errors_are_one_line(bad):
    """`python -m xbarflow.flow.cli` runs the module as __main__; plugin usage errors (raised as
    xbarflow.flow.cli.UsageError) used to escape as tracebacks that way."""
    for argv in (["cost", "--config", bad / "missing.toml"], ["classify", bad / "int32.npy"],
                 ["report", bad / "run_empty"]):
        proc = run_cli(argv)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("layers, needle", [
    ('[{ kind = "conv", out_channels = 4, kernel = 30, activation = "relu" }, { kind = "flatten" }, '
     '{ kind = "dense", outputs = 10, activation = "none" }]', "kernel 30 is larger than its padded input map"),
    ('[{ kind = "pool", mode = "avg", size = 3 }, { kind = "flatten" }, '
     '{ kind = "dense", outputs = 10, activation = "none" }]', "avg pool needs size*size a power of two"),
    ('[{ kind = "conv", out_channels = 4, kernel = 3, activation = "relu" }, '
     '{ kind = "dense", outputs = 10, activation = "none" }]', "dense before flatten"),
])
@pytest.mark.parametrize("command", ["cost", "classify", "verilog"])
def test_bad_layered_network_exits_2(command, layers, needle, bad, tmp_path, capsys):
    """A network description that does not fit is one line and exit 2 (CNN_SPEC.md section 1)."""
    cfg = tmp_path / "cnn_bad.toml"
    cfg.write_text(f"[network]\ninput_size = 28\nlayers = {layers}\n")
    argv = config_commands(bad, tmp_path / "out")[command] + ["--config", cfg]
    err = one_line_exit_2(argv, capsys)
    assert needle in err, err
    assert not (tmp_path / "out").exists()
