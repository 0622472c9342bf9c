"""The 1S1R cell with a QMM memdiode (crossbar.cell = "1S1R", device.read_model = "qmm").

The cell is the QMM branch of memdiode.py (diode I = I0 s(x) behind its series resistance Rs)
in series with the selector of selector.py ("threshold" or "exponential"), one current I through
all three: at terminal voltage V,

    V = x + Rs I + V_sel(I),   I = I0 s(x),

with V_sel the selector's voltage at current I (its inverse I-V, odd: threshold in closed form,
exponential v0 asinh(I / i_s)). The right side is strictly increasing in the diode voltage x, and
its root lies in [min(0, V), max(0, V)] (every term has the sign of x), so `series_current` finds
x by BISECT halvings of that bracket: a fixed count, elementwise, from correctly rounded
operations only (memdiode.expm1_deterministic and `log_deterministic` below, never numpy's exp or
log, whose SIMD and scalar paths may differ): the same bits for any array shape or batch.

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

import math
from dataclasses import dataclass

import numpy as np

from . import memdiode
from .memdiode import QmmParams
from xbarflow.flow.core.config import ChipConfig, ConfigError, CrossbarConfig

__all__ = ["BISECT", "QmmCells", "log_deterministic", "qmm_params", "selector_voltage", "series_current",
           "state_for_chord"]

BISECT = 64            # halvings of the diode-voltage bracket (and of [0, 1] for the state)
_LN2_HI = 6.93147180369123816490e-01   # ln 2 split (fdlibm): k * _LN2_HI is exact for |k| < 2**20
_LN2_LO = 1.90821492927058770002e-10
_ATANH_TERMS = 12                       # z**25 / 25 < 1e-20 for |z| <= 0.172


def log_deterministic(y: np.ndarray) -> np.ndarray:
    """ln(y) for y > 0 to a few ulp, from correctly rounded operations only: y = m 2**e with
    m in [sqrt(1/2), sqrt(2)) (frexp, exact), ln m = 2 atanh(z), z = (m - 1) / (m + 1), by its
    odd series (|z| <= 0.172), plus e ln 2 in two parts."""
    y = np.asarray(y, dtype=np.float64)
    m, e = np.frexp(y)                              # m in [0.5, 1)
    low = m < math.sqrt(0.5)
    m = np.where(low, 2.0 * m, m)
    e = np.where(low, e - 1, e).astype(np.float64)
    z = (m - 1.0) / (m + 1.0)
    z2 = z * z
    p = np.full(z.shape, 1.0 / (2 * _ATANH_TERMS - 1))
    for k in range(_ATANH_TERMS - 2, -1, -1):       # Horner in z**2: sum z**(2k) / (2k + 1)
        p = p * z2 + 1.0 / (2 * k + 1)
    return (e * _LN2_HI + (2.0 * z * p + e * _LN2_LO))


def selector_voltage(i: np.ndarray, x: CrossbarConfig) -> np.ndarray:
    """The selector's voltage at current i (odd in i): the inverse of its I-V (selector.py)."""
    i = np.asarray(i, dtype=np.float64)
    a = np.abs(i)
    if x.selector == "threshold":
        gl, gon, vth = x.selector_g_leak, x.selector_g_on, x.selector_v_th
        v = np.where(a <= gl * vth, a / gl, vth + (a - gl * vth) / gon)
    else:
        u = a / x.selector_i_s                       # asinh(u) = ln(u + sqrt(u**2 + 1))
        v = x.selector_v0 * log_deterministic(u + np.sqrt(u * u + 1.0))
    return np.where(i < 0, -v, v)


def series_current(i0: np.ndarray, alpha: np.ndarray, rs: np.ndarray, beta: float, v: np.ndarray,
                   x: CrossbarConfig) -> tuple[np.ndarray, np.ndarray]:
    """(current, memdiode voltage) of QMM cells (I0, alpha, Rs; broadcast with v) in series with
    the selector of `x` at terminal voltages v (module docstring). I0 = 0: no cell, 0 A."""
    v = np.asarray(v, dtype=np.float64)
    i0, alpha, rs = (np.broadcast_to(np.asarray(a, dtype=np.float64), v.shape) for a in (i0, alpha, rs))
    lo, hi = np.minimum(v, 0.0), np.maximum(v, 0.0)
    for _ in range(BISECT):
        mid = 0.5 * (lo + hi)
        i = memdiode.diode_current(mid, i0, alpha, beta)
        above = mid + rs * i + selector_voltage(i, x) > v
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    xd = 0.5 * (lo + hi)
    i = memdiode.diode_current(xd, i0, alpha, beta)
    return i, xd + rs * i


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
