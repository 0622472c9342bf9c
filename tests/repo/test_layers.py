"""The layering of the source tree: imports go downward only (the import-linter contract in
pyproject.toml), the installed distribution adds no generic top-level module, and the contract
can fail (an upward import added to a copy of the tree breaks it)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("flow", "hdl", "analog_models", "cocotb_tests")
TOP_DIR = "top"   # the `xbarflow` package itself: the Python API (xbarflow.flow.api)
DATA_DIRS = ("configs", "data")   # shipped as package data: xbarflow.configs, xbarflow.data
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path) -> subprocess.CompletedProcess:
    """import-linter on `tree`, imported through a namespace shim (as the editable install maps
    the folders) so that the tree's own code is what is analysed."""
    shim = tree / ".ns" / "xbarflow"
    shim.mkdir(parents=True, exist_ok=True)
    for name in PACKAGE_DIRS:
        if not (shim / name).exists():
            (shim / name).symlink_to(tree / name, target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(shim.parent)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree / ".ns", env=env, capture_output=True, text=True, timeout=300)


def copy_sources(dest: Path) -> Path:
    for name in (*PACKAGE_DIRS, TOP_DIR):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_imports_go_downward_only(tmp_path):
    result = lint(copy_sources(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    tree = copy_sources(tmp_path)
    config = tree / "flow" / "core" / "config.py"
    config.write_text(config.read_text() + "\nfrom xbarflow.flow.model import golden  # upward\n")
    result = lint(tree)
    assert result.returncode != 0
    assert "xbarflow.flow.core.config -> xbarflow.flow.model.golden" in result.stdout


def test_the_distribution_installs_under_one_namespace():
    """pyproject maps every source folder under `xbarflow.`: no generic `flow` or `hdl` lands in
    site-packages (so `import flow` fails where only xbarflow is installed)."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p.startswith("xbarflow.") for p in setuptools["packages"] if p != "xbarflow")
    assert setuptools["package-dir"] == {"xbarflow": TOP_DIR,
                                         **{f"xbarflow.{d}": d for d in (*PACKAGE_DIRS, *DATA_DIRS)}}
    packages = {str(d.relative_to(ROOT)).replace(os.sep, ".") for top in PACKAGE_DIRS
                for d in [ROOT / top, *(ROOT / top).rglob("*")]
                if d.is_dir() and (d / "__init__.py").exists()}
    data = {str(d.relative_to(ROOT)).replace(os.sep, ".") for top in DATA_DIRS
            for d in [ROOT / top, *(ROOT / top).rglob("*")] if d.is_dir() and "__pycache__" not in d.parts}
    assert {"xbarflow", *(f"xbarflow.{p}" for p in packages | data)} == set(setuptools["packages"]), \
        "every package folder is listed (a missing one would be left out of the wheel)"
    # The installed code is found under the namespace, not as a top-level module.
    probe = subprocess.run([sys.executable, "-c", "import xbarflow.flow.cli, importlib.util; "
                            "print(importlib.util.find_spec('flow') is None)"],
                           cwd="/", capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert probe.stdout.strip() == "True", probe.stdout + probe.stderr
