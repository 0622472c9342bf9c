"""Writes through the array (analog_models/write_path.py): program events and verify reads solved
on the partition networks, checked against the bias levels from first principles, an independent
dense nodal analysis written here, and the device's disturb law."""

import hashlib
import math

import numpy as np
import pytest

from xbarflow.analog_models.programming import (
    DeviceArray, disturb_c2c, logistic_rate, logistic_rates,
)
from xbarflow.analog_models.write_path import GMIN, WritePath
from xbarflow.flow.core.config import ChipConfig
from xbarflow.flow.model.programming import program_array, program_array_stepwise

from tests.support.cell_types import selector_current

# 8 rows in 2 partitions of 4, 6 columns; uS cells against 2-ohm wires make the drops visible
SMALL = {"network.input_size": 2, "network.layers": [2], "crossbar.tile_rows": 8,
         "crossbar.tile_cols": 6, "crossbar.partitions": 2}
BIG_CELLS = {"device.g_on": 1e-4, "device.g_off": 1e-6, "crossbar.wire_r": 2.0}


def small(**overrides):
    return ChipConfig().replace(**{**SMALL, **overrides})


def states(cfg, seed=0):
    return np.random.default_rng(seed).random((cfg.crossbar.tile_rows, cfg.crossbar.tile_cols))


def dense_partition(cfg, lam, rows, row_v, col_v, gate):
    """Cell terminal voltages of one partition by dense nodal analysis (np.linalg.solve), linear
    1R / 1T1R cells: the independent reference. row_v, col_v: drives, NaN = floating."""
    x, d = cfg.crossbar, cfg.device
    n, c = len(rows), x.tile_cols
    g = d.g_off + (d.g_on - d.g_off) * lam[rows]
    if x.cell == "1T1R":
        g = np.where(np.asarray(gate)[:, None], g / (1 + g * x.access_r_on), 0.0)
    gw = 1.0 / x.wire_r
    size = 2 * n * c
    A, b = np.zeros((size, size)), np.zeros(size)

    def node(kind, k, j):
        return (0 if kind == "r" else n * c) + k * c + j

    def link(p, q, y):
        A[p, p] += y
        A[q, q] += y
        A[p, q] -= y
        A[q, p] -= y

    for k in range(n):
        for j in range(c):
            if j + 1 < c:
                link(node("r", k, j), node("r", k, j + 1), gw)
            if k + 1 < n:
                link(node("c", k, j), node("c", k + 1, j), gw)
            link(node("r", k, j), node("c", k, j), g[k, j])
    for k in range(n):
        if not math.isnan(row_v[k]):
            A[node("r", k, 0), node("r", k, 0)] += gw
            b[node("r", k, 0)] += gw * row_v[k]
    for j in range(c):
        if not math.isnan(col_v[j]):
            A[node("c", n - 1, j), node("c", n - 1, j)] += gw
            b[node("c", n - 1, j)] += gw * col_v[j]
    A += np.eye(size) * GMIN
    v = np.linalg.solve(A, b)
    return v[:n * c].reshape(n, c) - v[n * c:].reshape(n, c)


@pytest.mark.parametrize("bias, half, other", [("v2", 0.5, 0.0), ("v3", 1 / 3, -1 / 3)])
def test_without_wire_resistance_the_cells_see_the_bias_levels(bias, half, other):
    cfg = small(**{"programming.bias": bias, "crossbar.wire_r": 0.0})
    path, lam = WritePath(cfg), states(cfg)
    v = 1.3
    ev = path.pulse_voltages(lam, [1], 2, [v])
    tile = ev.v_mem
    assert tile[1, 2] == v and ev.v_selected[0] == v
    row_half = np.delete(tile[1, :], 2)
    col_half = np.delete(tile[:4, 2], 1)
    np.testing.assert_allclose(row_half, half * v, rtol=1e-15)
    np.testing.assert_allclose(col_half, half * v, rtol=1e-15)
    rest = np.delete(np.delete(tile[:4], 1, axis=0), 2, axis=1)
    np.testing.assert_allclose(rest, other * v, rtol=1e-15, atol=1e-16)
    assert np.all(tile[4:] == 0)                         # the other partition is not pulsed
    assert math.isclose(ev.v_disturb_max[0], max(half, abs(other)) * v, rel_tol=1e-15)


@pytest.mark.parametrize("cells", [{}, BIG_CELLS])
@pytest.mark.parametrize("bias", ["v2", "v3", "float"])
@pytest.mark.parametrize("cell", ["1R", "1T1R"])
def test_event_voltages_equal_dense_nodal_analysis(cells, bias, cell):
    cfg = small(**{"programming.bias": bias, "crossbar.cell": cell, **cells})
    path, lam = WritePath(cfg), states(cfg, 1)
    newton = WritePath(cfg)
    newton.iterations = -1                    # the Newton path on driven lines too
    assert path.iterations >= 1               # driven lines: the fixed point (kappa < 0.05)
    rows, col, amps = [2, 5], 4, [1.25, -1.15]
    _, parts, _, row_v, col_v, gate = path.pulse_drives(rows, col, amps)
    # a floating line is a wire island of 1 S segments held by nS cells: its potential is
    # determined to eps * (wire / cell conductance) ~ 1e-7 in any double-precision solve
    tol = 1e-9 if bias != "float" else 2e-7 * (1e-9 / cfg.device.g_off)
    for solver in (path, newton):
        sol = solver.pulse_solution(lam, rows, col, amps)
        for n, p in enumerate(parts):
            keep = path.real[p]
            want = dense_partition(cfg, lam, path.index[p][keep], row_v[n][keep], col_v[n],
                                   gate[n][keep])
            np.testing.assert_allclose(sol.v[n][keep], want, rtol=0, atol=tol * 1.25)


def test_wire_drop_is_visible_with_big_cells_and_tiny_with_nS_cells():
    for cells, lo, hi in (({}, 1e-9, 1e-5), (BIG_CELLS, 1e-3, 0.2)):
        cfg = small(**cells)
        ev = WritePath(cfg).pulse_voltages(states(cfg, 2), [3], 5, [1.3])
        drop = 1 - ev.v_selected[0] / 1.3
        assert lo < drop < hi


def test_1t1r_has_no_half_select_and_no_sneak():
    for bias in ("v2", "v3", "float"):
        cfg = small(**{"programming.bias": bias, "crossbar.cell": "1T1R", **BIG_CELLS})
        path, lam = WritePath(cfg), states(cfg, 3)
        ev = path.pulse_voltages(lam, [1], 2, [1.3])
        others = ev.v_mem.copy()
        others[1, 2] = 0
        # no V/2 or V/3 anywhere: the selected row's other cells see the wire drops only
        # (< 1 mV with uS cells on 2-ohm wires), the gated-off rows nothing
        assert np.abs(others).max() < 1e-3 and ev.v_selected[0] > 1.1   # (r_on 1 kohm: up to 10 %)
        assert np.all(others[4:] == 0) and np.all(np.delete(others[:4], 1, axis=0) == 0)
        # verify: the selected column carries the selected cell's current alone
        d, x = cfg.device, cfg.crossbar
        g = d.g_off + (d.g_on - d.g_off) * lam[1, 2]
        lone = x.v_read * g / (1 + g * x.access_r_on)
        got = path.read_currents(lam, [1], 2)[0]
        assert abs(got - lone) / lone < 0.02          # wire drop only (uS cells, 2 ohm)


def test_floating_lines_add_sneak_currents_that_a_selector_suppresses():
    lone_g = 5e-9
    base = {"programming.bias": "float", "device.g_on": 2e-8, "device.g_off": 1e-9}
    lam = np.full((8, 6), 0.8)
    lam[1, 2] = (lone_g - 1e-9) / (2e-8 - 1e-9)
    sneak_1r = WritePath(small(**base)).read_currents(lam, [1], 2)[0] / 0.2
    assert sneak_1r > 3 * lone_g                  # three-cell sneak paths through floating lines
    held = WritePath(small(**{**base, "programming.bias": "v2"})).read_currents(lam, [1], 2)[0] / 0.2
    assert abs(held - lone_g) / lone_g < 1e-5      # held lines: the lone cell (wire drops only)
    sel = small(**{**base, "crossbar.cell": "1S1R", "crossbar.selector_v_th": 0.1,
                   "crossbar.selector_g_on": 1e-6})
    sneak_1s1r = WritePath(sel).read_currents(lam, [1], 2)[0]
    lone = lone_g * 0.2              # a 1S1R state's conductance is the cell's chord at V_read
    assert lone < sneak_1s1r < 1.5 * lone          # the selector blocks the sub-threshold paths


def test_1s1r_states_read_their_conductance_at_v_read_through_the_memristor_behind_it():
    for sel in ({}, {"crossbar.selector": "exponential"}):
        cfg = small(**{"crossbar.cell": "1S1R", "crossbar.wire_r": 0.0, **sel})
        wp, d = WritePath(cfg), cfg.device
        lam = np.linspace(0, 1, 48).reshape(8, 6)
        got = wp.read_currents(lam, [1, 6], 3)
        want = (d.g_off + (d.g_on - d.g_off) * lam[[1, 6], 3]) * 0.2
        np.testing.assert_allclose(got, want, rtol=1e-12)
        # the verify's replica cells read the window edges exactly
        low, high = wp.reference_currents([0, 31])
        gt = d.g_off + np.array([0, 31]) / 31 * (0.9 * d.g_on - d.g_off)
        np.testing.assert_allclose(low, (gt - wp.window) * 0.2, rtol=1e-12)
        np.testing.assert_allclose(high, (gt + wp.window) * 0.2, rtol=1e-12)


def test_qmm_loads_fixed_point_equals_newton():
    cfg = small(**{"device.read_model": "qmm", "programming.bias": "v2"})
    lam = states(cfg, 4)
    fast = WritePath(cfg)
    assert fast.iterations >= 1
    slow = WritePath(cfg)
    slow.iterations = -1
    a = fast.pulse_solution(lam, [0, 6], 1, [1.3, 1.2])
    b = slow.pulse_solution(lam, [0, 6], 1, [1.3, 1.2])
    np.testing.assert_allclose(a.v, b.v, rtol=0, atol=1e-9 * 1.3)
    np.testing.assert_allclose(a.i, b.i, rtol=1e-7, atol=1e-20)


def test_vectorised_rates_equal_the_scalar_logistic():
    cfg = ChipConfig()
    v = np.array([1.2, -1.1, 0.65, -0.4, 1.55, 2.0, -3.0])
    want = [logistic_rate(a, cfg) for a in v]
    np.testing.assert_allclose(logistic_rates(v, cfg), want, rtol=1e-13)
    assert logistic_rates(np.zeros(3), cfg).tolist() == [0.0, 0.0, 0.0]


def test_expose_moves_every_cell_by_the_device_law_with_keyed_draws():
    cfg = small(**{"device.set_v_half": 0.8, "device.reset_v_half": 0.8, "device.v_slope": 0.1})
    dev = DeviceArray(cfg)
    dev.lam[:] = 0.5
    v = np.zeros(dev.shape)
    v[:4] = 0.6                   # partition 0 half-selected at +0.6 V
    v[1, 2] = 1.2
    v[0, 0] = -0.6
    before = dev.lam.copy()
    change = dev.expose(v, [1], [2], event_index=7)
    k = logistic_rates(v, cfg) * dev.d2d * disturb_c2c(cfg, 0, 7)
    assert math.isclose(logistic_rates(v, cfg)[1, 2], logistic_rate(1.2, cfg), rel_tol=1e-13)
    want = np.where(v > 0, 0.5 + k * 0.5, 0.5 - k * 0.5)
    want[v == 0] = 0.5
    np.testing.assert_allclose(dev.lam, want, rtol=1e-13)
    np.testing.assert_array_equal(change, dev.lam - before)
    assert dev.pulse_count[1, 2] == 1 and dev.pulse_count.sum() == 1
    assert dev.disturb_events[1, 2] == 0 and dev.disturb_events[:4].sum() == 4 * 6 - 1
    assert dev.disturb_events[4:].sum() == 0 and np.all(dev.lam[4:] == 0.5)
    assert dev.v_selected_min[1, 2] == 1.2 and dev.v_disturb_max[0, 0] == 0.6
    # the draws depend on (seed, tile, event) only: another tile or event draws differently
    assert not np.array_equal(disturb_c2c(cfg, 0, 7), disturb_c2c(cfg, 1, 7))
    assert not np.array_equal(disturb_c2c(cfg, 0, 7), disturb_c2c(cfg, 0, 8))
    np.testing.assert_array_equal(disturb_c2c(cfg, 0, 7), disturb_c2c(cfg, 0, 7))


def test_event_by_event_calls_as_the_bridge_makes_them_equal_the_golden_replay():
    """The cocotb bridge calls WritePath.verify / .pulse once per bus event with the cells the
    select lines name and its own event count; replaying the golden trace that way on a fresh
    device gives the same final states and disturb record bit for bit (a device that disturbs
    strongly, so that an off-by-one event index or cell order would show)."""
    cfg = small(**{"device.set_v_half": 1.0, "device.reset_v_half": 1.05, "device.v_slope": 0.12,
                   "device.rate_max": 0.08})
    targets = np.random.default_rng(5).integers(0, cfg.quant.weight_levels, (8, 6))
    trace = []
    golden = program_array_stepwise(cfg, targets, trace=trace)
    fast = program_array(cfg, targets)
    np.testing.assert_array_equal(fast.lam, golden.lam)
    assert golden.disturb_events.sum() > 0
    dev, path, events = DeviceArray(cfg), WritePath(cfg), 0
    starts, prog = np.asarray(cfg.partition_start), cfg.programming
    for e in trace:
        if e[0] == "verify":
            _, i, j, refs, ok_mask, high_mask = e
            rows = [int(starts[p] + i) for p in range(cfg.crossbar.partitions) if i < cfg.partition_rows[p]]
            ok, high = path.verify(dev, rows, j, [refs[path.partition_of(r)[0]] for r in rows])
            assert sum(int(b) << int(path.partition_of(r)[0]) for r, b in zip(rows, ok)) == ok_mask
            continue
        _, i, j, level, enable, polarity = e
        parts = [p for p in range(cfg.crossbar.partitions) if enable >> p & 1]
        amps = [prog.amplitude(level, not (polarity >> p & 1)) for p in parts]
        path.pulse(dev, [int(starts[p] + i) for p in parts], j, amps, events)
        events += 1
    np.testing.assert_array_equal(dev.lam, golden.lam)
    np.testing.assert_array_equal(dev.disturb_events, golden.disturb_events)
    assert events == golden.total_pulses


# Every bit of a small tile's replay through the array, recorded from the code before the solves
# were made faster (the speed work must not move a single bit: the golden replay and the cocotb
# bridge call the same pulse / verify). A low-threshold device so that half-select disturb moves
# cells, stuck-on cells for the timeout path. (event count, disturb events, failures) in comments.
# The two 1S1R pins were re-recorded once after, when a 1S1R state's conductance became the cell's
# chord conductance at V_read (analog_models/selector.py): a change of meaning, not of speed. The
# exponential one once more when the selector's inverse I-V was written once (selector_voltage:
# v0 asinh(I / i_s) closed form, accurate at small I, instead of a bisection): the same counts,
# states within 1.2e-16.
PINNED_LOW = {"device.set_v_half": 0.75, "device.reset_v_half": 0.8, "device.stuck_on_rate": 0.05}
PINNED = {
    "v2": ({"programming.bias": "v2"}, "fc7dfabdb4894226e76d38f4fac75ff1"),          # 584, 5626, 1
    "v3": ({"programming.bias": "v3"}, "67a6f2971910324e7078af69e3705363"),          # 734, 15266, 1
    "float": ({"programming.bias": "float"}, "1181a81daebcb0791b00cef2fb2555fd"),    # 1534, 7385, 8
    "1T1R": ({"programming.bias": "v2", "crossbar.cell": "1T1R"},
             "ec633c5af86233eba4b795d6dbda57eb"),                                     # 682, 0, 1
    "1S1R-threshold": ({"programming.bias": "float", "crossbar.cell": "1S1R",
                        "crossbar.selector_v_th": 0.1, "crossbar.selector_g_on": 1e-6},
                       "73e93d476a3fa0bb763c64b071ef92ea"),                           # 521, 3733, 0
    "1S1R-exponential": ({"programming.bias": "v2", "crossbar.cell": "1S1R",
                          "crossbar.selector": "exponential", "crossbar.selector_i_s": 1e-9},
                         "7d649e6973c8862a51f0ca3e782216ab"),                         # 488, 5058, 0
    "qmm": ({"programming.bias": "v3", "device.read_model": "qmm"},
            "1257db951888cf6fb2d27de6a70de277"),                                      # 734, 15266, 1
    "big-cells": ({"programming.bias": "v2", **BIG_CELLS}, "cc5376d4631bc524efefebd9fe191f18"),  # 749, 7082, 1
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_replay_through_the_array_is_pinned_to_the_last_bit(case):
    overrides, want = PINNED[case]
    cfg = small(**{**PINNED_LOW, **overrides})
    targets = np.random.default_rng(7).integers(0, cfg.quant.weight_levels, (8, 6))
    r = program_array(cfg, targets)
    h = hashlib.sha256()
    for a in (r.lam, r.pulses_per_cell, r.failed, r.disturb_events, r.disturb_change,
              r.v_selected_min, r.v_disturb_max):
        h.update(np.ascontiguousarray(a).tobytes())
    assert h.hexdigest()[:32] == want


@pytest.mark.parametrize("case", ["v2", "v3", "1T1R", "1S1R-exponential", "qmm", "big-cells",
                                  "1S1R-qmm"])
def test_verify_current_of_the_selected_column_is_the_whole_solves_to_the_bit(case):
    """A verify read computes only what the selected column's current needs; it equals that
    column of the whole partitions' solve bit for bit, for every column and set of rows (the
    big cells need several fixed-point iterations; tiles of 24 columns, more than numpy's
    8-term pairwise block, so that a change of summation order would show)."""
    overrides = PINNED[case][0] if case in PINNED else {
        "programming.bias": "v2", "crossbar.cell": "1S1R", "crossbar.selector": "exponential",
        "device.read_model": "qmm"}
    wider = {"crossbar.tile_cols": 24, "network.layers": [12]}
    if case == "big-cells":     # wire_r halved: the fixed point's kappa stays below 0.05
        wider["crossbar.wire_r"] = 1.0
    cfg = small(**{**overrides, **wider})
    path = WritePath(cfg)
    assert path.iterations >= (2 if case == "big-cells" else 1)
    rng = np.random.default_rng(3)
    for trial in range(3):
        lam = rng.random((cfg.crossbar.tile_rows, cfg.crossbar.tile_cols)) ** (1 + 3 * trial)
        for rows in ([1, 5], [3], [6]):
            for col in range(cfg.crossbar.tile_cols):
                got = path.read_currents(lam, rows, col)
                r, parts, _, row_v, col_v, gate = path._drive_memo[("read", np.asarray(rows).tobytes(), col)]
                whole = path.solve(lam, parts, row_v, col_v, gate, full=False).column_current[:, col]
                assert np.array_equal(got.view(np.int64), whole.view(np.int64)), (rows, col)


# -- 1S1R cells with QMM memdiodes (selector_memdiode.py) as the loads of the write network ----
def dense_partition_1s1r_qmm(cfg, prm, beta, row_v, col_v):
    """Cell terminal and memdiode voltages of one partition of 1S1R QMM cells (per-cell I0, alpha,
    Rs in prm, (n, cols) each) by dense nodal analysis with scipy's root: every cell spelt out as
    three branches, row node -> Rs -> m -> diode I0 (exp(beta alpha V) - exp(-(1 - beta) alpha V))
    -> s -> selector -> column node, so the unknowns are the row, column, m and s node voltages
    (the model instead solves one cell current per cell by bisection). NaN drive: floating."""
    from scipy.optimize import brentq, root

    x = cfg.crossbar
    i0, alpha, rs = (np.asarray(prm[k]) for k in ("i0", "alpha", "rs"))
    n, c = i0.shape
    gw = 1.0 / x.wire_r
    driven_r, driven_c = ~np.isnan(row_v), ~np.isnan(col_v)

    def split(u):
        return (u[a * n * c:(a + 1) * n * c].reshape(n, c) for a in range(4))

    def wires(line, axis, drive, driven, at_start):
        """Wire currents leaving each node of the lines along `axis`, the driver at one end."""
        out = np.zeros_like(line)
        d = np.diff(line, axis=axis) * gw              # current from node j+1 into node j
        if axis == 1:
            out[:, :-1] -= d
            out[:, 1:] += d
            end = (slice(None), 0) if at_start else (slice(None), -1)
        else:
            out[:-1, :] -= d
            out[1:, :] += d
            end = (0, slice(None)) if at_start else (-1, slice(None))
        out[end] += np.where(driven, (line[end] - np.nan_to_num(drive)) * gw, 0.0)
        return out + GMIN * line

    def residual(u):
        r, m, s, cn = split(u)
        i_rs = (r - m) / rs
        vd = m - s
        i_d = i0 * (np.exp(beta * alpha * vd) - np.exp(-(1 - beta) * alpha * vd))
        i_sel = selector_current(x, s - cn)
        f_r = wires(r, 1, row_v, driven_r, True) + i_rs
        f_c = wires(cn, 0, col_v, driven_c, False) - i_sel
        scale = cfg.device.g_on          # the internal nodes carry cell currents only
        return np.concatenate([f_r.ravel(), ((i_d - i_rs) / scale).ravel(),
                               ((i_sel - i_d) / scale).ravel(), f_c.ravel()])

    # start: every cell alone at its drive levels (no wire drops), its selector voltage by brentq
    r0 = np.repeat(np.nan_to_num(row_v)[:, None], c, axis=1)
    c0 = np.repeat(np.nan_to_num(col_v)[None, :], n, axis=0)
    s0, m0 = c0.copy(), r0.copy()
    for k in range(n):
        for j in range(c):
            v = r0[k, j] - c0[k, j]
            if v == 0:
                continue

            def diode(vd, k=k, j=j):
                return i0[k, j] * (math.exp(beta * alpha[k, j] * vd) - math.exp(-(1 - beta) * alpha[k, j] * vd))

            def branch(vm, k=k, j=j):        # the memdiode (Rs and diode) at its voltage vm
                vd = brentq(lambda t: t + rs[k, j] * diode(t) - vm, min(0, vm), max(0, vm), xtol=1e-300)
                return diode(vd)

            vs = brentq(lambda t: float(selector_current(x, np.array(t))) - branch(v - t),
                        min(0, v), max(0, v), xtol=1e-300)
            s0[k, j] = c0[k, j] + vs
            m0[k, j] = r0[k, j] - rs[k, j] * float(selector_current(x, np.array(vs)))
    u0 = np.concatenate([r0.ravel(), m0.ravel(), s0.ravel(), c0.ravel()])
    sol = root(residual, u0, method="hybr", options={"xtol": 1e-15, "maxfev": 200000})
    r, m, s, cn = split(sol.x)
    # converged to the rounding floor of the 1-ohm Rs branches ((r - m) / Rs: ~1e-16 A)
    assert np.abs(residual(sol.x)).max() < 1e-6, sol.message
    return r - cn, r - s


@pytest.mark.parametrize("cells", [{}, BIG_CELLS], ids=["nS", "uS"])
@pytest.mark.parametrize("bias", ["v2", "v3"])
@pytest.mark.parametrize("kind", ["threshold", "exponential"])
def test_1s1r_qmm_event_voltages_equal_dense_nodal_analysis(kind, bias, cells):
    big = {"crossbar.selector_g_on": 1e-3, "crossbar.selector_i_s": 1e-4} if cells else {}
    cfg = small(**{"programming.bias": bias, "crossbar.cell": "1S1R", "crossbar.selector": kind,
                   "device.read_model": "qmm", **cells, **big})
    path, lam = WritePath(cfg), states(cfg, 1)
    newton = WritePath(cfg)
    newton.iterations = -1
    rows, col, amps = [2, 5], 4, [1.25, -1.15]
    _, parts, _, row_v, col_v, gate = path.pulse_drives(rows, col, amps)
    for solver in (path, newton):
        sol = solver.pulse_solution(lam, rows, col, amps)
        for n, p in enumerate(parts):
            keep = path.real[p]
            prm = path.cell_params(lam[path.index[p][keep]])
            v, v_mem = dense_partition_1s1r_qmm(cfg, prm, path.params.beta, row_v[n][keep], col_v[n])
            np.testing.assert_allclose(sol.v[n][keep], v, rtol=0, atol=1e-9 * 1.25)
            np.testing.assert_allclose(sol.v_mem[n][keep], v_mem, rtol=0, atol=1e-9 * 1.25)
            # the selector holds a share of every half-selected cell's voltage far above the
            # agreement (0.5 mV for the exponential selector on uS cells, more elsewhere)
            assert np.abs(v - v_mem)[np.abs(v) > 0.3].min() > 1e-4


@pytest.mark.parametrize("kind", ["threshold", "exponential"])
def test_1s1r_qmm_states_read_their_conductance_at_v_read(kind):
    """A state's conductance is the whole 1S1R QMM cell's chord at V_read (selector included),
    as the read path maps it; the verify's replica cells read the window edges. To the 4097-point
    state table's interpolation (below 1e-6 relative)."""
    cfg = small(**{"crossbar.cell": "1S1R", "crossbar.selector": kind, "device.read_model": "qmm",
                   "crossbar.wire_r": 0.0})
    wp, d = WritePath(cfg), cfg.device
    lam = np.linspace(0, 1, 48).reshape(8, 6)
    got = wp.read_currents(lam, [1, 6], 3)
    want = (d.g_off + (d.g_on - d.g_off) * lam[[1, 6], 3]) * 0.2
    np.testing.assert_allclose(got, want, rtol=1e-6)
    low, high = wp.reference_currents([0, 31])
    gt = d.g_off + np.array([0, 31]) / 31 * (0.9 * d.g_on - d.g_off)
    np.testing.assert_allclose(low, np.maximum(gt - wp.window, d.g_off) * 0.2, rtol=1e-6)
    np.testing.assert_allclose(high, (gt + wp.window) * 0.2, rtol=1e-6)


def test_1s1r_qmm_batched_events_equal_one_at_a_time_and_fixed_point_equals_newton():
    """Two partitions pulsed in one event solve to the same bits as each alone (every law is
    elementwise, every partition its own network); the fixed point and Newton agree."""
    cfg = small(**{"crossbar.cell": "1S1R", "crossbar.selector": "exponential",
                   "device.read_model": "qmm", "programming.bias": "v2"})
    path, lam = WritePath(cfg), states(cfg, 4)
    both = path.pulse_voltages(lam, [0, 6], 1, [1.3, -1.2])
    alone = [path.pulse_voltages(lam, [r], 1, [a]) for r, a in ((0, 1.3), (6, -1.2))]
    np.testing.assert_array_equal(both.v_mem, alone[0].v_mem + alone[1].v_mem)
    np.testing.assert_array_equal(both.v_selected, [alone[0].v_selected[0], alone[1].v_selected[0]])
    slow = WritePath(cfg)
    slow.iterations = -1
    a = path.pulse_solution(lam, [0, 6], 1, [1.3, -1.2])
    b = slow.pulse_solution(lam, [0, 6], 1, [1.3, -1.2])
    np.testing.assert_allclose(a.v_mem, b.v_mem, rtol=0, atol=1e-9 * 1.3)
    ok = path.read_currents(lam, [0, 6], 1)
    np.testing.assert_array_equal(ok, [path.read_currents(lam, [r], 1)[0] for r in (0, 6)])
