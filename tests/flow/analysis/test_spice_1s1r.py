"""ngspice with a resistor and a behavioural selector per cell vs the model's 1S1R array solve
(analog_models/selector_crossbar.py), with linear memristors and with QMM memdiodes. Column currents must agree within 1e-6 relative. Needs
ngspice: without it these tests fail (SpiceError with the install command), they never skip."""

import dataclasses

import numpy as np
import pytest

from xbarflow.analog_models import memdiode, selector_memdiode
from xbarflow.flow.analysis import spice_1s1r
from xbarflow.flow.analysis.spice import results_file, run_ngspice
from xbarflow.flow.core.config import ChipConfig

from tests.support.cell_types import one_s_one_r

TOLERANCE = 1e-6
SELECTORS = {"threshold": {"selector": "threshold", "selector_v_th": 0.1, "selector_g_on": 1e-3,
                           "selector_g_leak": 1e-8},
             "exponential": {"selector": "exponential", "selector_i_s": 1e-6, "selector_v0": 0.05}}


def tile(kind, seed=0):
    x = dataclasses.replace(ChipConfig().crossbar, wire_r=1.0, partitions=2, **SELECTORS[kind])
    rng = np.random.default_rng(seed)
    g = rng.uniform(1e-6, 2e-5, (40, 10))          # uS cells: IR drops of ~1e-3 on 1-ohm wires
    v = rng.integers(0, 16, 40) * (0.2 / 15)       # a DAC vector, zeros and sub-threshold rows too
    return g, x, v


@pytest.mark.parametrize("kind", sorted(SELECTORS))
def test_ngspice_agrees_with_the_1s1r_solve(kind, tmp_path):
    g, x, v = tile(kind)
    check = spice_1s1r.cross_check(g, x, v, tmp_path)
    assert check.max_rel_error < TOLERANCE, check.max_rel_error
    assert check.ir_drop > 100 * TOLERANCE          # the wires are visible at that tolerance


def test_a_wrong_memristor_in_the_deck_fails_the_comparison(tmp_path):
    g, x, v = tile("exponential", 1)
    wrong = g.copy()
    wrong[5, 3] *= 1.01
    deck = spice_1s1r.netlist(wrong, x, v, results=results_file("wrong"))
    run = run_ngspice(deck, tmp_path, "wrong")
    model = spice_1s1r.model_currents(g, x, v)
    rel = np.abs(run.currents - model) / np.abs(model)
    assert rel[3] > 10 * TOLERANCE and np.delete(rel, 3).max() < TOLERANCE


def test_netlist_cells():
    g, x, v = tile("threshold")
    deck = spice_1s1r.netlist(g[:2, :2], x, v[:2])
    assert "Rm0_0 " in deck and "Bs1_1 s1_1 " in deck and "? " in deck and "sgn(" in deck
    with pytest.raises(ValueError):
        spice_1s1r.netlist(np.zeros((2, 2)), x, v[:2])


# QMM memdiodes behind the selector (selector_memdiode.QmmCells): the diode as a behavioural
# source, its Rs a resistor, the selector as above
def qmm_tile(kind, seed=0):
    cfg = one_s_one_r(kind, qmm=True, device__g_on=2e-5, device__g_off=1e-6,
                      crossbar__wire_r=1.0, crossbar__partitions=2,
                      **{"crossbar__" + k: v for k, v in SELECTORS[kind].items()})
    params = selector_memdiode.qmm_params(cfg)
    rng = np.random.default_rng(seed)
    cells = selector_memdiode.QmmCells(*memdiode.cell_params(params, rng.random((40, 10))), params.beta)
    return cells, cfg.crossbar, rng.integers(0, 16, 40) * (0.2 / 15)


@pytest.mark.parametrize("kind", sorted(SELECTORS))
def test_ngspice_agrees_with_the_1s1r_qmm_solve(kind, tmp_path):
    cells, x, v = qmm_tile(kind)
    check = spice_1s1r.cross_check(cells, x, v, tmp_path)
    assert check.max_rel_error < TOLERANCE, check.max_rel_error
    assert check.ir_drop > 100 * TOLERANCE
    deck = check.run.deck.read_text()
    assert "Bq0_0 m0_0 s0_0 I = " in deck and "Bs0_0 s0_0 " in deck and "Rs0_0 " in deck


def test_a_wrong_qmm_state_in_the_deck_fails_the_comparison(tmp_path):
    cells, x, v = qmm_tile("exponential", 1)
    i0 = cells.i0.copy()
    i0[5, 3] *= 1.01
    wrong = selector_memdiode.QmmCells(i0, cells.alpha, cells.rs, cells.beta)
    run = run_ngspice(spice_1s1r.netlist(wrong, x, v, results=results_file("wrong")), tmp_path, "wrong")
    model = spice_1s1r.model_currents(cells, x, v)
    rel = np.abs(run.currents - model) / np.abs(model)
    assert rel[3] > 10 * TOLERANCE and np.delete(rel, 3).max() < TOLERANCE
