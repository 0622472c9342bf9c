"""ngspice cross-check of one program event (flow/analysis/spice_write.py): the deck is the
partition network analog_models/write_path.py solves, so the selected and half-selected cell
voltages agree within 1 % (measured: ~1e-11 driven, ~1e-7 with floating lines), for linear and
QMM cells (1R, 1T1R, 1S1R; QMM: 1R and 1S1R). Needs ngspice
(`make setup`); without it these tests fail with the install command."""

import numpy as np
import pytest

from xbarflow.flow.analysis.spice_write import cross_check_write, write_event_deck
from xbarflow.flow.core.config import ChipConfig

# 40 rows in 4 partitions of 10, 10 columns
TILE = {"network.input_size": 2, "network.layers": [2], "crossbar.tile_rows": 40,
        "crossbar.tile_cols": 10, "crossbar.partitions": 4}
BIG_CELLS = {"device.g_on": 1e-4, "device.g_off": 1e-6, "crossbar.wire_r": 2.0}


@pytest.mark.parametrize("cells", [{}, BIG_CELLS], ids=["nS", "uS"])
@pytest.mark.parametrize("bias", ["v2", "v3", "float"])
@pytest.mark.parametrize("cell", ["1R", "1T1R"])
def test_ngspice_cell_voltages_match_the_write_solve(cells, bias, cell, tmp_path):
    cfg = ChipConfig().replace(**{**TILE, **cells, "programming.bias": bias, "crossbar.cell": cell})
    lam = np.random.default_rng(7).random((40, 10))
    check = cross_check_write(cfg, lam, 23, 6, 1.3, tmp_path)
    assert check.selected == (3, 6) and list(check.rows) == list(range(20, 30))
    assert check.rel_error(check.selected_mask) < 0.01
    assert check.rel_error(check.half_selected) < 0.01
    if cells:
        # the wire drop is visible: the selected cell sees clearly less than the pulse
        assert 1.3 - check.spice[check.selected] > 1e-3
    if bias == "v2" and cell == "1R" and not cells:
        np.testing.assert_allclose(np.abs(check.spice[check.half_selected]), 0.65, rtol=1e-5)


def test_deck_topology_follows_the_bias_and_the_cell():
    cfg = ChipConfig().replace(**{**TILE, "programming.bias": "float", "crossbar.cell": "1T1R"})
    deck = write_event_deck(cfg, np.zeros((40, 10)), 23, 6, 1.3, results="r.txt")
    assert "Vr3 dr3 0 DC 1.3" in deck and "Vc6 dc6 0 DC 0" in deck
    assert "Vr0 " not in deck and "Vc0 " not in deck          # floating lines: no driver
    assert "Rm3_0 " in deck and "Rm2_0 " not in deck           # only the word-line row conducts
    v2 = write_event_deck(cfg.replace(**{"programming.bias": "v2", "crossbar.cell": "1R"}),
                          np.zeros((40, 10)), 23, 6, 1.3, results="r.txt")
    assert "Vr0 dr0 0 DC 0.65" in v2 and "Vc0 dc0 0 DC 0.65" in v2



# 1S1R: the memristor behind each cell's chord conductance, the selector in series (selector.py)
SELECTORS = {"threshold": {"crossbar.selector": "threshold"},
             "exponential": {"crossbar.selector": "exponential", "crossbar.selector_i_s": 1e-6}}


# uS cells: the memristor's own conductance sets a visible part of the selector / memristor split
# (nS cells leave nearly all of it to the selector's law); selectors strong enough to read g_on
BIG_1S1R = {"threshold": {**BIG_CELLS, "crossbar.selector_g_on": 1e-3},
            "exponential": {**BIG_CELLS, "crossbar.selector_i_s": 1e-4}}


@pytest.mark.parametrize("size", ["nS", "uS"])
@pytest.mark.parametrize("bias", ["v2", "v3", "float"])
@pytest.mark.parametrize("kind", sorted(SELECTORS))
def test_ngspice_1s1r_cell_and_memristor_voltages_match_the_write_solve(kind, bias, size, tmp_path):
    cells = BIG_1S1R[kind] if size == "uS" else {}
    cfg = ChipConfig().replace(**{**TILE, **SELECTORS[kind], **cells, "programming.bias": bias,
                                  "crossbar.cell": "1S1R"})
    lam = np.random.default_rng(7).random((40, 10))
    check = cross_check_write(cfg, lam, 23, 6, 1.3, tmp_path)
    assert check.selected == (3, 6)
    for memristor in (False, True):
        # the 1 % of issue 15, and what is measured (~1e-12 driven, ~1e-7 floating)
        for mask in (check.selected_mask, check.half_selected):
            assert check.rel_error(mask, memristor) < 1e-6
    if cells:
        assert 1.3 - check.spice[check.selected] > 1e-3        # the wire drop is visible
    # the selector takes its share of the pulse (far above the 1e-12 agreement): above its
    # threshold a threshold selector holds about v_th = 0.1 V, an exponential one v0 asinh(I / i_s)
    share = np.abs(check.spice) - np.abs(check.spice_mem)
    if kind == "threshold":
        assert np.all(share[check.half_selected | check.selected_mask] > 0.09)
    else:
        assert share[check.selected] > 1e-4


def test_1s1r_deck_puts_the_selector_behind_the_memristor():
    cfg = ChipConfig().replace(**{**TILE, "programming.bias": "v2", "crossbar.cell": "1S1R"})
    deck = write_event_deck(cfg, np.zeros((40, 10)), 23, 6, 1.3, results="r.txt")
    assert "Rm3_6 r3_6 s3_6 " in deck and "Bs3_6 s3_6 c3_6 I = abs(V(s3_6,c3_6)) <= 0.1 ?" in deck
    assert "v(s9_9)" in deck and ".options gmin=" in deck
    with pytest.raises(ValueError, match="QMM cells for 1R and 1S1R only"):
        write_event_deck(cfg.replace(**{"crossbar.cell": "1T1R", "device.read_model": "qmm"}),
                         np.zeros((40, 10)), 23, 6, 1.3, results="r.txt")


# QMM memdiodes (device.read_model = "qmm"): alone (1R) or behind the selector (1S1R)
@pytest.mark.parametrize("size", ["nS", "uS"])
@pytest.mark.parametrize("bias", ["v2", "v3", "float"])
@pytest.mark.parametrize("kind", ["1R"] + sorted(SELECTORS))
def test_ngspice_qmm_cell_and_memdiode_voltages_match_the_write_solve(kind, bias, size, tmp_path):
    s1r = kind != "1R"
    cells = (BIG_1S1R[kind] if s1r else BIG_CELLS) if size == "uS" else {}
    cfg = ChipConfig().replace(**{**TILE, **(SELECTORS[kind] if s1r else {}), **cells,
                                  "programming.bias": bias, "device.read_model": "qmm",
                                  "crossbar.cell": "1S1R" if s1r else "1R"})
    lam = np.random.default_rng(7).random((40, 10))
    check = cross_check_write(cfg, lam, 23, 6, 1.3, tmp_path)
    assert check.selected == (3, 6)
    deck = check.deck.read_text()
    assert "Bq3_6 m3_6 " in deck and ("Bs3_6 s3_6 c3_6" in deck) == s1r
    # the 1 % of issue 15, and what is measured (~1e-12 driven, ~1e-7 floating)
    for memristor in (False, True) if s1r else (False,):
        for mask in (check.selected_mask, check.half_selected):
            assert check.rel_error(mask, memristor) < 1e-6
    if cells:
        assert 1.3 - check.spice[check.selected] > 1e-3        # the wire drop is visible
    if s1r:     # the selector takes a share of the selected cell's pulse far above the agreement
        share = np.abs(check.spice) - np.abs(check.spice_mem)
        assert share[check.selected] > 1e-4
