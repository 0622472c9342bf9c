"""Where the flow keeps its files: the checkout, the build cache and the run folders.

One place resolves them, so a test session (or a user) can move every generated file away
from the checkout:

* `BUILD` (default `<checkout>/build`, `~/.cache/xbarflow` when installed from a wheel, or
  `$XBARFLOW_BUILD_DIR`): caches the flow may rebuild
  at will: trained weights (`WEIGHTS`), simulator models (`SIM_BUILD`), synthesis (`SYNTH`);
* `RUNS` (default `<checkout>/runs`, `./runs` when installed, or `$XBARFLOW_RUNS_DIR`): default run folders of the
  commands (demo, program, sim, classify, sweep, fuzz) when no `--out` is given;
* `REFERENCE_WEIGHTS` (`<checkout>/data/weights`): the shipped reference weights, in git;
* `DEFAULT_DATASET` (`<checkout>/data/mnist.npz`): the shipped MNIST.

The environment is read once, at import: tests/conftest.py sets both variables to a session
temporary folder before anything imports flow, and simulator subprocesses inherit them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BUILD", "BUILD_ENV", "CHECKOUT", "CONFIGS", "DATA", "DEFAULT_DATASET", "REFERENCE_WEIGHTS", "ROOT", "RUNS",
           "RUNS_ENV", "SIM_BUILD", "SYNTH", "WEIGHTS"]

BUILD_ENV = "XBARFLOW_BUILD_DIR"
RUNS_ENV = "XBARFLOW_RUNS_DIR"

ROOT = Path(__file__).resolve().parents[2]


def _from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


#: a source checkout keeps build/ and runs/ in it; an installed package (ROOT is then
#: site-packages/xbarflow, with its configs/ and data/) keeps its caches in the user's cache
#: folder and its run folders under the current folder
CHECKOUT = (ROOT / "pyproject.toml").is_file()
_USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache") / "xbarflow"
BUILD = _from_env(BUILD_ENV, ROOT / "build" if CHECKOUT else _USER_CACHE)
RUNS = _from_env(RUNS_ENV, ROOT / "runs" if CHECKOUT else Path.cwd() / "runs")
WEIGHTS = BUILD / "weights"
SIM_BUILD = BUILD / "sim"
SYNTH = BUILD / "synth"
CONFIGS = ROOT / "configs"
DATA = ROOT / "data"
REFERENCE_WEIGHTS = DATA / "weights"
DEFAULT_DATASET = DATA / "mnist.npz"   # the shipped MNIST
