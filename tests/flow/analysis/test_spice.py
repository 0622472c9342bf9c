"""ngspice cross-check of the crossbar model: the exported netlist is the network that
xbarflow.analog_models.crossbar solves, so its column currents agree within 0.1 % (measured: ~1e-12). The `spice` command:
tests/flow/commands/test_spice.py.

Needs ngspice (`make setup` installs it through tools/ensure-ngspice.sh); without it these tests
fail with the install command."""

import re

import numpy as np
import pytest

from xbarflow.analog_models.crossbar import effective_matrix
from xbarflow.flow.analysis import spice

# (rows, cols, wire_r ohm, partitions): small arrays with cells of 10-100 uS, where 1-5 ohm
# wires move the column currents by whole percents.
ARRAYS = [(32, 8, 1.0, 1), (24, 6, 5.0, 3), (40, 10, 2.0, 4)]


@pytest.mark.parametrize("rows, cols, wire_r, partitions", ARRAYS)
def test_ngspice_matches_the_model(rows, cols, wire_r, partitions, tmp_path):
    rng = np.random.default_rng(rows * cols)
    g = rng.uniform(1e-5, 1e-4, (rows, cols))
    v = rng.uniform(0.0, 0.2, rows)
    check = spice.cross_check(g, v, wire_r, partitions, tmp_path, f"a{rows}x{cols}")
    assert check.ir_drop > 0.01, "the IR drop must be visible for this to test anything"
    assert check.max_rel_error < 1e-3, f"SPICE vs model: {check.max_rel_error:.2e}"
    # the same deck without wire resistance would be far off: the test discriminates
    assert np.max(np.abs(check.spice - check.ideal) / check.ideal) > 0.01
    np.testing.assert_allclose(check.model, v @ effective_matrix(g, wire_r, partitions))


def test_no_wire_resistance_is_the_ideal_product(tmp_path):
    rng = np.random.default_rng(1)
    g = rng.uniform(1e-6, 1e-4, (12, 4))
    v = rng.uniform(0.0, 0.3, 12)
    check = spice.cross_check(g, v, 0.0, 2, tmp_path, "ideal")
    np.testing.assert_allclose(check.spice, v @ g, rtol=1e-9)
    assert "Rd" not in check.run.deck.read_text(), "no wire segments at wire_r = 0"


def test_netlist_topology():
    rows, cols, parts = 7, 3, 2          # partitions of 4 and 3 rows, like np.array_split
    deck = spice.netlist(np.full((rows, cols), 1e-6), np.full(rows, 0.2), 1.0, parts)
    lines = deck.splitlines()
    count = lambda prefix: sum(1 for ln in lines if ln.startswith(prefix + " ") or re.match(rf"{prefix}\d", ln))
    assert count("Vin") == rows and count("Vtia") == cols
    assert count("Rd") == rows                          # DAC into row node (i, 0)
    assert count("Rr") == rows * (cols - 1)             # row segments
    assert count("Rc") == (4 - 1) * cols + (3 - 1) * cols   # column segments inside partitions
    assert count("Rt") == parts * cols                  # last row of each partition into the TIA
    assert count("Rx") == rows * cols                   # cells
    assert "Rt3_0 c3_0 t0 1" in deck and "Rt6_2 c6_2 t2 1" in deck
    assert ".options gmin=1e-18" in deck and "wrdata currents.txt i(vtia0) i(vtia1) i(vtia2)" in deck
