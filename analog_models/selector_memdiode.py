"""The 1S1R cell with a QMM memdiode (crossbar.cell = "1S1R", device.read_model = "qmm").

The cell is the QMM branch of memdiode.py (diode I = I0 s(x) behind its series resistance Rs)
in series with the selector of selector.py ("threshold" or "exponential"), one current I through
all three: at terminal voltage V,

    V = x + Rs I + V_sel(I),   I = I0 s(x),

with V_sel the selector's voltage at current I (its inverse I-V, odd: threshold in closed form,
exponential v0 asinh(I / i_s)). The right side is strictly increasing in the diode voltage x, and
its root lies in [min(0, V), max(0, V)] (every term has the sign of x), so `series_current` finds
x by Newton's method kept inside that bracket (the bracket shrinks with the sign of each residual;
a step that would leave it bisects it, so the threshold selector's kink cannot trap it), each
element until its step is below 2 ulp of x, then frozen (its result does not depend on the other
elements of the call), from correctly rounded operations only (memdiode.expm1_deterministic and
selector.log_deterministic, never numpy's exp or log, whose SIMD and scalar paths may differ):
the same bits for any array shape or batch.
`series_slope` is the cell's dI/dV there (for the write path's Newton solve, write_path.py).

Mapping (as for the linear 1S1R cell and the QMM cell alone). A conductance g in the flow is the
whole cell's chord conductance at V_read, selector included. `qmm_params` derives I0 at HRS and
LRS so that the states 0 and 1 read g_off and g_on with the selector in series (closed form: at
V_read the current is g V_read, so the selector's voltage, then the diode's, are known); alpha,
beta and Rs are the device's. `state_for_chord` finds each cell's state lam in [0, 1] the same
way: the current and the selector's voltage at V_read are known, so lam is the state whose memdiode
carries g V_read at V_read - V_sel (64 halvings of [0, 1], elementwise, the memdiode's own
bracketed Newton per evaluation). A selector that takes so much of V_read that the diode would be
reverse biased is a ConfigError (selector.check_read refuses most of those first).

`QmmCells` holds the per-cell parameters of an array of such cells for the 1S1R read solve
(selector_crossbar.SelectorCrossbar): padded to its layout, the cell law, and the bound on every
cell's slope dI/dV at |V| <= v_max that sets the fixed point's contraction (the diode's own slope
at v_max: Rs and the selector in series only lower it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import memdiode
from .memdiode import QmmParams
from .selector import selector_resistance, selector_voltage
from xbarflow.flow.core.config import ChipConfig, ConfigError, CrossbarConfig

__all__ = ["BISECT", "NEWTON_MAX", "QmmCells", "qmm_params", "series_current", "series_slope", "state_for_chord"]

BISECT = 64            # halvings of [0, 1] for the state of a chord
NEWTON_MAX = 200       # bracketed Newton steps of the cell law (~10 are taken)


def series_current(i0: np.ndarray, alpha: np.ndarray, rs: np.ndarray, beta: float, v: np.ndarray,
                   x: CrossbarConfig) -> tuple[np.ndarray, np.ndarray]:
    """(current, memdiode voltage) of QMM cells (I0, alpha, Rs; broadcast with v) in series with
    the selector of `x` at terminal voltages v (module docstring). I0 = 0: no cell, 0 A."""
    v = np.asarray(v, dtype=np.float64)
    i0, alpha, rs = (np.broadcast_to(np.asarray(a, dtype=np.float64), v.shape) for a in (i0, alpha, rs))
    lo, hi = np.minimum(v, 0.0), np.maximum(v, 0.0)
    xd = v.copy()
    active = np.ones(v.shape, dtype=bool)
    for _ in range(NEWTON_MAX):
        # the diode's current and slope at xd, sharing their two exponentials
        ax = alpha * xd
        e1 = memdiode.expm1_deterministic(beta * ax)
        e2 = memdiode.expm1_deterministic(-(1.0 - beta) * ax)
        i = i0 * (e1 - e2)
        d = i0 * alpha * (beta * (e1 + 1.0) + (1.0 - beta) * (e2 + 1.0))
        f = xd + rs * i + selector_voltage(i, x) - v
        lo, hi = np.where(f < 0, xd, lo), np.where(f > 0, xd, hi)
        new = xd - f / (1.0 + (rs + selector_resistance(i, x)) * d)
        new = np.where((new > lo) & (new < hi), new, 0.5 * (lo + hi))   # a step out: bisect
        new = np.where(f == 0, xd, new)
        moved = np.abs(new - xd)
        xd = np.where(active, new, xd)
        active &= moved > 2.0 * np.spacing(np.maximum(np.abs(xd), np.abs(v)))   # f rounds at ulp(v)
        if not active.any():
            break
    else:
        raise ArithmeticError("the 1S1R QMM cell law did not converge")
    i = memdiode.diode_current(xd, i0, alpha, beta)
    return i, xd + rs * i


def series_slope(i: np.ndarray, v_mem: np.ndarray, i0: np.ndarray, alpha: np.ndarray, rs: np.ndarray,
                 beta: float, x: CrossbarConfig) -> np.ndarray:
    """dI/dV of the cells of `series_current` at its (current, memdiode voltage): the diode, Rs
    and the selector in series, 1 / (1 / d + Rs + dV_sel/dI) with d the diode's slope at its
    voltage v_mem - Rs I (0 where I0 = 0: no cell)."""
    d = memdiode.diode_slope(v_mem - rs * i, i0, alpha, beta)
    return d / (1.0 + d * (rs + selector_resistance(i, x)))


def _diode_at_read(g: np.ndarray, x: CrossbarConfig, rs: np.ndarray) -> np.ndarray:
    """Memdiode terminal voltage of cells of chord g at V_read (V_read - V_sel(g V_read))."""
    v_mem = x.v_read - selector_voltage(g * x.v_read, x)
    if np.any(v_mem - rs * g * x.v_read <= 0):
        raise ConfigError(
            f"crossbar.cell = '1S1R' with QMM cells: the {x.selector} selector takes all of "
            f"crossbar.v_read = {x.v_read} V at the cell current of a level conductance; lower "
            f"selector_v_th or raise selector_g_on / selector_i_s")
    return v_mem


def qmm_params(cfg: ChipConfig) -> QmmParams:
    """The device's QMM parameters with I0 at HRS and LRS such that the whole 1S1R cell (selector
    included) reads g_off and g_on at V_read (module docstring)."""
    d, x = cfg.device, cfg.crossbar
    i0 = []
    for g, alpha, rs in ((d.g_off, d.qmm_alpha_hrs, d.qmm_rs_hrs), (d.g_on, d.qmm_alpha_lrs, d.qmm_rs_lrs)):
        i = g * x.v_read
        xd = float(_diode_at_read(np.array(g), x, np.array(rs))) - rs * i
        s = float(memdiode.diode_current(np.array(xd), np.array(1.0), np.array(alpha), d.qmm_beta))
        i0.append(i / s)
    return QmmParams(i0_hrs=i0[0], i0_lrs=i0[1], alpha_hrs=d.qmm_alpha_hrs, alpha_lrs=d.qmm_alpha_lrs,
                     beta=d.qmm_beta, rs_hrs=d.qmm_rs_hrs, rs_lrs=d.qmm_rs_lrs)


def state_for_chord(g: np.ndarray, x: CrossbarConfig, params: QmmParams) -> np.ndarray:
    """State lam in [0, 1] of cells whose whole-cell chord conductance at V_read is g (within the
    range of states 0 .. 1 up to 1e-9 relative), elementwise (module docstring)."""
    g = np.asarray(g, dtype=np.float64)
    ends = series_current(*memdiode.cell_params(params, np.array([0.0, 1.0])), params.beta,
                          np.full(2, x.v_read), x)[0] / x.v_read
    if g.size and (g.min() < ends[0] * (1 - 1e-9) or g.max() > ends[1] * (1 + 1e-9)):
        raise ValueError(f"conductances must lie in the 1S1R QMM range [{ends[0]:.6g}, {ends[1]:.6g}] "
                         f"S at V_read = {x.v_read} V, got {g.min():.6g} .. {g.max():.6g}")
    i = g * x.v_read
    v_mem = x.v_read - selector_voltage(i, x)        # the same for every state: I is fixed
    lo, hi = np.zeros(g.shape), np.ones(g.shape)
    for _ in range(BISECT):
        mid = 0.5 * (lo + hi)
        i0, alpha, rs = memdiode.cell_params(params, mid)
        xd = memdiode.diode_voltage(v_mem, i0, alpha, params.beta, rs)
        below = memdiode.diode_current(xd, i0, alpha, params.beta) < i
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class QmmCells:
    """QMM parameters (I0, alpha, Rs: equal shapes; beta shared) of 1S1R cells, each in series
    with the selector (module docstring). I0 = 0: no cell."""
    i0: np.ndarray
    alpha: np.ndarray
    rs: np.ndarray
    beta: float

    def __post_init__(self) -> None:
        i0, alpha, rs = (np.asarray(a, dtype=np.float64) for a in (self.i0, self.alpha, self.rs))
        if alpha.shape != i0.shape or rs.shape != i0.shape:
            raise ValueError(f"QMM cell parameters must have equal shapes, got {i0.shape}, "
                             f"{alpha.shape}, {rs.shape}")
        if not (np.all(np.isfinite(i0)) and np.all(i0 >= 0) and np.all(alpha > 0) and np.all(rs >= 0)):
            raise ValueError("need finite I0 >= 0, alpha > 0 and Rs >= 0 for every cell")
        object.__setattr__(self, "i0", i0)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "rs", rs)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.i0.shape

    def padded(self, take: np.ndarray, real: np.ndarray) -> "QmmCells":
        """The cells gathered by row index `take` (P, D), no cell where `real` is False, with a
        trailing batch axis: (P, D, cols, 1)."""
        keep = real[:, :, None]
        return QmmCells(np.where(keep, self.i0[take], 0.0)[..., None],
                        np.where(keep, self.alpha[take], 1.0)[..., None],
                        np.where(keep, self.rs[take], 0.0)[..., None], self.beta)

    def current(self, v: np.ndarray, x: CrossbarConfig) -> np.ndarray:
        """Cell currents at terminal voltages v (broadcast with the parameters)."""
        return series_current(self.i0, self.alpha, self.rs, self.beta, v, x)[0]

    def slope_max(self, v_max: float) -> float:
        """Largest dI/dV of any cell at |V| <= v_max (module docstring)."""
        if self.i0.size == 0:
            return 0.0
        v = np.full(self.i0.shape, float(v_max))
        return float(np.maximum(memdiode.diode_slope(v, self.i0, self.alpha, self.beta),
                                memdiode.diode_slope(-v, self.i0, self.alpha, self.beta)).max())
