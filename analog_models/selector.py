"""The 1S1R cell (crossbar.cell = "1S1R"): a linear memristor G in series with a selector.

One element law for the write path (write_path.py) and the inference read (selector_crossbar.py):
`series_current` gives the cell current I at terminal voltage V, with the selector

* "threshold": leaking `selector_g_leak` below `selector_v_th` and conducting `selector_g_on`
  (incremental) above it, continuous at the threshold; in series with G the cell is piecewise
  linear, so I is closed form;
* "exponential": I = selector_i_s sinh(V_s / selector_v0); the selector voltage V_s solves
  i_s sinh(V_s / v0) = G (|V| - V_s) in [0, |V|], found by 60 halvings of that bracket (to the
  last bit of |V|, a fixed count, elementwise: the same bits for any array shape).

Mapping (what a level conductance means). As for the QMM memdiode (memdiode.state_for_conductance),
a cell's conductance g in the flow (level_conductance, the DeviceArray's g_off .. g_on, the
training's weights) is the whole cell's chord conductance at the read voltage, I(V_read) / V_read,
selector included: at full-scale input every level reads exactly what the mapping meant, and the
selector shows where it physically acts (below V_read: lower input codes, wire drops, the half-
and unselected cells of a write). The memristor itself then has the conductance G that gives
chord g (`memristor_conductance`), larger than g by the selector's share. That needs a selector
that passes more than g_on at V_read (a threshold below V_read; an exponential selector with
i_s sinh(V_read / v0) / V_read above g_on): `check_read` raises a ConfigError otherwise.

G of a chord g (`memristor_for_chord`) is closed form: at V_read the cell current g V_read is
known, so is the selector's voltage (`selector_voltage`, the selector's inverse I-V), and G takes
the rest; elementwise from deterministic operations only (memdiode.expm1_deterministic and
`log_deterministic`, never numpy's exp or log, whose SIMD and scalar paths may differ): the read
path maps each cell with it, the write path every loaded cell of every event and the verify's
replica cells, so both see the same memristors.

The selector alone (`selector_current`, its inverse `selector_voltage`, its incremental
resistance `selector_resistance`) is written here once, for every cell that puts it in series:
this module's linear memristor and selector_memdiode's QMM memdiode.

`MemristorCells` holds an array of such cells for the 1S1R read solve (selector_crossbar.py), as
selector_memdiode.QmmCells holds QMM ones: padded to the solver's layout, the cell law, and the
bound on every cell's slope dI/dV (its memristor's G: the selector in series only lowers it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import memdiode
from xbarflow.flow.core.config import ChipConfig, ConfigError, CrossbarConfig

__all__ = ["BISECT", "MemristorCells", "asinh_deterministic", "check_read", "log_deterministic", "memristor_for_chord",
           "selector_chord_limit", "selector_current", "selector_resistance", "selector_voltage",
           "series_current"]

BISECT = 60           # halvings of the exponential selector's voltage bracket
_LN2_HI = 6.93147180369123816490e-01   # ln 2 split (fdlibm): k * _LN2_HI is exact for |k| < 2**20
_LN2_LO = 1.90821492927058770002e-10
_ATANH_TERMS = 12                       # z**25 / 25 < 1e-20 for |z| <= 0.172
_ASINH_SMALL = 0.4                      # below: w / (2 + w) <= 0.166, the atanh series directly


def _atanh_series(z: np.ndarray) -> np.ndarray:
    """2 atanh(z) for |z| <= 0.172 by its odd series (Horner in z**2), correctly rounded ops."""
    z2 = z * z
    p = np.full(z.shape, 1.0 / (2 * _ATANH_TERMS - 1))
    for k in range(_ATANH_TERMS - 2, -1, -1):       # sum z**(2k) / (2k + 1)
        p = p * z2 + 1.0 / (2 * k + 1)
    return 2.0 * z * p


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
    return (e * _LN2_HI + (_atanh_series(z) + e * _LN2_LO))


def asinh_deterministic(u: np.ndarray) -> np.ndarray:
    """asinh(u) for u >= 0 to a few ulp, also for tiny u (where ln(u + sqrt(u**2 + 1)) would lose
    the digits of u in 1 + u): asinh u = ln(1 + w), w = u + u**2 / (1 + sqrt(1 + u**2)) formed
    without the 1, = 2 atanh(w / (2 + w)) by the series while |w / (2 + w)| <= 0.172 (u < 0.4)."""
    u = np.asarray(u, dtype=np.float64)
    r = np.sqrt(u * u + 1.0)
    small = u < _ASINH_SMALL
    w = np.where(small, u + u * u / (1.0 + r), 0.0)
    return np.where(small, _atanh_series(w / (2.0 + w)), log_deterministic(u + r))


# -- the selector alone: its I-V, its inverse and its incremental resistance, written once for
# every cell that has one in series (this module's linear memristor, selector_memdiode's QMM)
def selector_current(vs: np.ndarray, x: CrossbarConfig) -> np.ndarray:
    """The selector's current at its own voltage vs (odd in vs)."""
    vs = np.asarray(vs, dtype=np.float64)
    if x.selector == "threshold":
        gl, gon, vth = x.selector_g_leak, x.selector_g_on, x.selector_v_th
        a = np.abs(vs)
        i = np.where(a <= vth, gl * a, gl * vth + gon * (a - vth))
        return np.where(vs < 0, -i, i)
    i_s, v0 = x.selector_i_s, x.selector_v0
    return i_s * (memdiode.expm1_deterministic(vs / v0) - memdiode.expm1_deterministic(-vs / v0)) / 2.0


def selector_voltage(i: np.ndarray, x: CrossbarConfig) -> np.ndarray:
    """The selector's voltage at current i (odd in i): the inverse of `selector_current`,
    closed form (threshold: linear on each side; exponential: v0 asinh(i / i_s))."""
    i = np.asarray(i, dtype=np.float64)
    a = np.abs(i)
    if x.selector == "threshold":
        gl, gon, vth = x.selector_g_leak, x.selector_g_on, x.selector_v_th
        v = np.where(a <= gl * vth, a / gl, vth * (1.0 - gl / gon) + a / gon)
    else:
        v = x.selector_v0 * asinh_deterministic(a / x.selector_i_s)
    return np.where(i < 0, -v, v)


def selector_resistance(i: np.ndarray, x: CrossbarConfig) -> np.ndarray:
    """dV_s / dI of the selector at current i (> 0): 1 / g_leak or 1 / g_on (threshold),
    v0 / sqrt(i**2 + i_s**2) (exponential)."""
    a = np.abs(np.asarray(i, dtype=np.float64))
    if x.selector == "threshold":
        return np.where(a <= x.selector_g_leak * x.selector_v_th, 1.0 / x.selector_g_leak,
                        1.0 / x.selector_g_on)
    return x.selector_v0 / np.sqrt(a * a + x.selector_i_s * x.selector_i_s)


def series_current(g: np.ndarray, v: np.ndarray, x: CrossbarConfig, slope: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(current, memristor voltage, dI/dV or None) of memristors G in series with the selector
    of `x` at terminal voltages v (broadcast; G = 0: no cell, all three 0)."""
    v = np.asarray(v, dtype=np.float64)
    g0 = np.broadcast_to(g, v.shape)
    cell = g0 > 0                                   # padding rows have no cell
    g = np.where(cell, g0, 1.0)
    mag, sign = np.abs(v), np.where(cell, np.sign(v), 0.0)
    if x.selector == "threshold":
        gl, gon, vth = x.selector_g_leak, x.selector_g_on, x.selector_v_th
        below = mag <= vth * (1.0 + gl / g)
        i_low = mag * g * gl / (g + gl)
        i_high = (mag - vth * (1.0 - gl / gon)) / (1.0 / gon + 1.0 / g)
        i = np.where(below, i_low, i_high)
        d = np.where(below, g * gl / (g + gl), 1.0 / (1.0 / gon + 1.0 / g))
    else:
        lo, hi = np.zeros(v.shape), mag.copy()       # selector voltage in [0, |V|]
        for _ in range(BISECT):
            mid = 0.5 * (lo + hi)
            above = selector_current(mid, x) > g * (mag - mid)
            lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
        vs = 0.5 * (lo + hi)
        i = g * (mag - vs)
        if slope:
            d = 1.0 / (1.0 / g + selector_resistance(i, x))
    return sign * i, sign * i / g, np.where(cell, d, 0.0) if slope else None


def selector_chord_limit(x: CrossbarConfig) -> float:
    """The selector's own chord conductance at V_read: what a 1S1R cell reads at most (G -> inf)."""
    v = x.v_read
    return float(selector_current(np.array(v), x)) / v


def check_read(cfg: ChipConfig) -> None:
    """ConfigError unless the selector lets a cell read g_on at V_read (module docstring), with
    a factor 2 to spare (the memristor then takes at least half of V_read)."""
    x, d = cfg.crossbar, cfg.device
    limit = selector_chord_limit(x)
    if not limit >= 2.0 * d.g_on:
        raise ConfigError(
            f"crossbar.cell = '1S1R': the {x.selector} selector passes only {limit:.3g} S at "
            f"crossbar.v_read = {x.v_read} V, a cell must read device.g_on = {d.g_on:.3g} S there "
            f"(with a factor 2 to spare): lower selector_v_th below v_read or raise selector_i_s")


def memristor_for_chord(g: np.ndarray, x: CrossbarConfig) -> np.ndarray:
    """Memristor G of cells whose chord conductance at V_read is g (> 0, below the selector's
    limit), elementwise from deterministic operations: closed form for the threshold selector
    (above its threshold), 60 halvings of the selector voltage for the exponential one."""
    g = np.asarray(g, dtype=np.float64)
    v = x.v_read
    i = g * v                                       # the cell current at V_read
    return i / (v - selector_voltage(i, x))


@dataclass(frozen=True)
class MemristorCells:
    """Memristor conductances G (S; 0: no cell) of 1S1R cells, each in series with the selector."""
    g: np.ndarray

    def __post_init__(self) -> None:
        g = np.asarray(self.g, dtype=np.float64)
        if not (np.all(np.isfinite(g)) and np.all(g >= 0)):
            raise ValueError("memristor conductances must be finite and >= 0 S (0: no cell)")
        object.__setattr__(self, "g", g)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.g.shape

    def padded(self, take: np.ndarray, real: np.ndarray) -> "MemristorCells":
        """The cells gathered by row index `take` (P, D), no cell where `real` is False, with a
        trailing batch axis: (P, D, cols, 1)."""
        return MemristorCells(np.where(real[:, :, None], self.g[take], 0.0)[..., None])

    def current(self, v: np.ndarray, x: CrossbarConfig) -> np.ndarray:
        """Cell currents at terminal voltages v (broadcast with G)."""
        return series_current(self.g, v, x, slope=False)[0]

    def slope_max(self, v_max: float) -> float:
        """Largest dI/dV of any cell (its memristor's G, whatever the voltage)."""
        return float(self.g.max()) if self.g.size else 0.0
