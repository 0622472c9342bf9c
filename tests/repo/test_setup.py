"""`make setup`: every tool `make test` needs is checked by tools/ensure-*.sh, installed with
apt-get as root, and otherwise named with its install command and a failing exit status, so no
test runs (and quietly passes) without its tool. The scripts run here against a PATH of fakes:
`id` says who we are, `apt-get` records what it is asked and may provide the tools."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash")

# script, the commands it checks, the Debian packages that provide them
SCRIPTS = [
    ("ensure-icarus.sh", ["iverilog", "vvp"], "iverilog"),
    ("ensure-ngspice.sh", ["ngspice"], "ngspice"),
    ("ensure-synth.sh", ["yosys", "nextpnr-ice40", "icepack"], "yosys nextpnr-ice40 fpga-icestorm"),
]


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def _run(script: str, bin_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(ROOT / "tools" / script)], env={"PATH": str(bin_dir)},
                          capture_output=True, text=True, timeout=60)


def _bin(tmp_path: Path, uid: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "id", f"echo {uid}")
    return bin_dir


@pytest.mark.parametrize("script, tools, packages", SCRIPTS)
def test_missing_tool_without_root_fails_with_the_command(script, tools, packages, tmp_path):
    proc = _run(script, _bin(tmp_path, 1000))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and f"apt-get install {packages}'" in proc.stderr, proc.stderr


@pytest.mark.parametrize("script, tools, packages", SCRIPTS)
def test_missing_tool_as_root_is_installed_with_apt_get(script, tools, packages, tmp_path):
    bin_dir = _bin(tmp_path, 0)
    log = tmp_path / "apt.log"
    # apt-get install provides the tools (as Debian's packages do)
    made = "; ".join(f'printf "#!{BASH}\\n" > {bin_dir}/{t}; /bin/chmod +x {bin_dir}/{t}' for t in tools)
    _fake(bin_dir, "apt-get", f'echo "$*" >> {log}; if [ "$1" = install ]; then {made}; fi')
    proc = _run(script, bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == ["update -qq", f"install -y -qq {packages}"]
    assert proc.stdout == "" and "installing" in proc.stderr
    assert _run(script, bin_dir).returncode == 0 and log.read_text().count("install -y") == 1, \
        "installed tools are found: no second install"


@pytest.mark.parametrize("script, tools, packages", SCRIPTS)
def test_apt_get_that_provides_nothing_still_fails(script, tools, packages, tmp_path):
    bin_dir = _bin(tmp_path, 0)
    _fake(bin_dir, "apt-get", "exit 0")
    proc = _run(script, bin_dir)
    assert proc.returncode == 1 and f"apt-get install {packages}'" in proc.stderr, proc.stderr


@pytest.mark.parametrize("script, tools, packages", SCRIPTS)
def test_only_one_tool_missing_is_enough_to_fail(script, tools, packages, tmp_path):
    bin_dir = _bin(tmp_path, 1000)
    for t in tools[:-1]:
        _fake(bin_dir, t, "exit 0")
    assert _run(script, bin_dir).returncode == 1
    _fake(bin_dir, tools[-1], "exit 0")
    proc = _run(script, bin_dir)
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == ""


def test_make_test_sets_up_every_tool_first():
    make = shutil.which("make")
    assert make, "make is needed to build the Verilator models anyway"
    plan = subprocess.run([make, "-n", "test"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60).stdout.splitlines()
    ensured = [line.split("/")[-1] for line in plan if "tools/ensure-" in line]
    assert ensured == ["ensure-icarus.sh", "ensure-ngspice.sh", "ensure-synth.sh", "ensure-lz4.sh"]
    assert any("pytest" in line for line in plan[plan.index(next(
        line for line in plan if "ensure-lz4.sh" in line)):]), "the tests run after the setup"
