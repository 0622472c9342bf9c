"""The quasi-static memdiode model (QMM) read I-V, parameters linear in the memory state.

    I = I0 [exp(beta alpha V_D) - exp(-(1 - beta) alpha V_D)],   V_D = V - I Rs
    I0, alpha, Rs = (1 - lam) * HRS value + lam * LRS value      lam in [0, 1], 0 = HRS, 1 = LRS

(Aguirre et al. 2024; the fitted parameters are in configs/devices/presets.toml.) I is implicit in itself
through Rs, and solved as such: `current` finds the diode voltage V_D, the root of the strictly
increasing f(x) = x + Rs I0 s(x) - V with s(x) = expm1(beta alpha x) - expm1(-(1 - beta) alpha x),
by Newton's method kept inside the bracket [min(0, V), max(0, V)] (the root lies there because
s(x) has the sign of x). Each element iterates until its Newton step is below 2 ulp of V_D, then
stops on its own (so an element's result does not depend on the other elements of the call), and
I = I0 s(V_D) is returned: converged to machine precision. With Rs = 0, V_D = V directly.

I0 is not a free parameter: `QmmParams.from_config` derives I0 at HRS and LRS so that the chord
conductance I(V_read) / V_read is g_off and g_on, so the level conductances of a config are what
its cells read at full input. `state_for_conductance` inverts the chord conductance for any level
in between (bisection to the last bit; the chord conductance is checked to be monotone in lam).

Determinism by construction: the exponentials are `expm1_deterministic`, built only from IEEE
operations that are correctly rounded (+, -, *, rint, ldexp), which numpy computes identically in
its SIMD and scalar loops whatever the array's length, alignment or stride. numpy's own exp and
expm1 may take a SIMD or a libm path depending on the array, so they are not used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xbarflow.flow.core.config import ChipConfig, ConfigError

__all__ = ["QmmParams", "branch_slope", "cell_params", "chord_conductance", "current",
           "diode_current", "diode_slope", "diode_voltage", "exp_deterministic", "expm1_deterministic",
           "state_for_conductance", "state_slope"]

_LN2_HI = 6.93147180369123816490e-01   # ln 2 split (fdlibm): k * _LN2_HI is exact for |k| < 2**20
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
# Taylor coefficients 1/n! of expm1 on |r| <= ln(2)/2: the degree-14 remainder is < 4e-18
_TAYLOR = [1.0 / math.factorial(n) for n in range(1, 15)]
_MAX_ARG = 700.0                       # exp(700) ~ 1e304: keeps ldexp finite


def expm1_deterministic(y: np.ndarray) -> np.ndarray:
    """exp(y) - 1 to a few ulp, from correctly rounded operations only (see the module docstring).

    Range reduction y = k ln2 + r with |r| <= ln(2)/2 (Cody-Waite), expm1(r) by a degree-14
    Horner polynomial, then expm1(y) = 2**k expm1(r) + (2**k - 1); no cancellation near 0 (k = 0).
    """
    y = np.minimum(np.maximum(np.asarray(y, dtype=np.float64), -_MAX_ARG), _MAX_ARG)  # = np.clip
    k = np.rint(y * _INV_LN2)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = r * _TAYLOR[-1]                         # (in place below: the same operations)
    for c in reversed(_TAYLOR[:-1]):
        p += c
        p *= r
    two_k = np.ldexp(1.0, k.astype(np.int64))
    p *= two_k
    two_k -= 1.0
    p += two_k
    return p


def exp_deterministic(y: np.ndarray) -> np.ndarray:
    """exp(y) to a few ulp (also far below 1, where 1 + expm1(y) would cancel), from the same
    correctly rounded operations as `expm1_deterministic`: 2**k (1 + expm1(r))."""
    y = np.clip(np.asarray(y, dtype=np.float64), -_MAX_ARG, _MAX_ARG)
    k = np.rint(y * _INV_LN2)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    return np.ldexp(expm1_deterministic(r) + 1.0, k.astype(np.int64))


@dataclass(frozen=True)
class QmmParams:
    """QMM read parameters at HRS (lam = 0) and LRS (lam = 1)."""
    i0_hrs: float     # A
    i0_lrs: float     # A
    alpha_hrs: float  # 1/V
    alpha_lrs: float  # 1/V
    beta: float
    rs_hrs: float     # ohm
    rs_lrs: float     # ohm

    @classmethod
    def from_config(cls, cfg: ChipConfig) -> "QmmParams":
        """alpha, beta, Rs from [device]; I0 so that I(V_read) / V_read = g_off (HRS), g_on (LRS).

        Raises ConfigError when the chord conductance at V_read is not strictly increasing in the
        memory state (then a conductance would not name one state).
        """
        d, v = cfg.device, cfg.crossbar.v_read
        params = cls(i0_hrs=_i0_for_chord(d.g_off, v, d.qmm_alpha_hrs, d.qmm_beta, d.qmm_rs_hrs),
                     i0_lrs=_i0_for_chord(d.g_on, v, d.qmm_alpha_lrs, d.qmm_beta, d.qmm_rs_lrs),
                     alpha_hrs=d.qmm_alpha_hrs, alpha_lrs=d.qmm_alpha_lrs, beta=d.qmm_beta,
                     rs_hrs=d.qmm_rs_hrs, rs_lrs=d.qmm_rs_lrs)
        chord = chord_conductance(np.linspace(0.0, 1.0, 1025), v, params)
        if not np.all(np.diff(chord) > 0):
            raise ConfigError("device: the QMM chord conductance at crossbar.v_read is not "
                              "increasing in the memory state; make qmm_alpha_hrs and "
                              "qmm_alpha_lrs closer or the on/off ratio larger")
        return params


def _i0_for_chord(g: float, v: float, alpha: float, beta: float, rs: float) -> float:
    """I0 with I(v) = g v: the diode sees v_d = v - g v Rs, so I0 = g v / s(v_d) (closed form)."""
    v_d = v * (1.0 - g * rs)
    s = math.expm1(beta * alpha * v_d) - math.expm1(-(1.0 - beta) * alpha * v_d)
    return g * v / s


def cell_params(params: QmmParams, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(I0, alpha, Rs) arrays of memory states lam (0 = HRS, 1 = LRS), each linear in lam."""
    lam = np.asarray(lam, dtype=np.float64)
    if lam.size and not (lam.min() >= 0.0 and lam.max() <= 1.0):
        raise ValueError("memory states must be in [0, 1]")
    i0 = params.i0_hrs + (params.i0_lrs - params.i0_hrs) * lam
    alpha = params.alpha_hrs + (params.alpha_lrs - params.alpha_hrs) * lam
    rs = params.rs_hrs + (params.rs_lrs - params.rs_hrs) * lam
    return i0, alpha, rs


def diode_current(x: np.ndarray, i0: np.ndarray, alpha: np.ndarray, beta: float) -> np.ndarray:
    """I0 s(x) = I0 [exp(beta alpha x) - exp(-(1 - beta) alpha x)] at diode voltage x."""
    ax = alpha * x
    return i0 * (expm1_deterministic(beta * ax) - expm1_deterministic(-(1.0 - beta) * ax))


def diode_slope(x: np.ndarray, i0: np.ndarray, alpha: np.ndarray, beta: float) -> np.ndarray:
    """d/dx of `diode_current` (> 0)."""
    ax = alpha * x
    return i0 * alpha * (beta * (expm1_deterministic(beta * ax) + 1.0)
                         + (1.0 - beta) * (expm1_deterministic(-(1.0 - beta) * ax) + 1.0))


def branch_slope(x: np.ndarray, i0: np.ndarray, alpha: np.ndarray, beta: float,
                 rs: np.ndarray) -> np.ndarray:
    """dI/dV of the whole cell (diode and Rs in series) at diode voltage x: d / (1 + Rs d)."""
    d = diode_slope(x, i0, alpha, beta)
    return d / (1.0 + rs * d)


def diode_voltage(v: np.ndarray, i0: np.ndarray, alpha: np.ndarray, beta: float,
                  rs: np.ndarray, max_iter: int = 200) -> np.ndarray:
    """V_D solving V_D + Rs I0 s(V_D) = V elementwise (module docstring: bracketed Newton)."""
    v, i0, alpha, rs = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                             for a in (v, i0, alpha, rs)))
    x = v.copy()
    if not np.any(rs > 0):
        return x
    lo, hi = np.minimum(v, 0.0), np.maximum(v, 0.0)
    active = np.ones(x.shape, dtype=bool)
    for _ in range(max_iter):
        # diode_current and diode_slope at x, sharing their two exponentials (the same bits)
        ax = alpha * x
        e1 = expm1_deterministic(beta * ax)
        e2 = expm1_deterministic(-(1.0 - beta) * ax)
        f = x + rs * (i0 * (e1 - e2)) - v
        slope = i0 * alpha * (beta * (e1 + 1.0) + (1.0 - beta) * (e2 + 1.0))
        new = np.clip(x - f / (1.0 + rs * slope), lo, hi)
        moved = np.abs(new - x)
        x = np.where(active, new, x)
        active &= moved > 2.0 * np.spacing(np.abs(x))
        if not active.any():
            return x
    raise ArithmeticError("QMM diode voltage did not converge (Rs * I0 too large?)")


def current(v: np.ndarray, lam: np.ndarray, params: QmmParams) -> np.ndarray:
    """QMM read current (A) of cells in state lam at terminal voltage v (broadcast together)."""
    i0, alpha, rs = np.broadcast_arrays(*cell_params(params, lam), np.asarray(v))[:3]
    x = diode_voltage(v, i0, alpha, params.beta, rs)
    return diode_current(x, i0, alpha, params.beta)


def state_slope(v: np.ndarray, lam: np.ndarray, params: QmmParams) -> np.ndarray:
    """dI/dlam (A per unit of state) of cells in state lam at terminal voltage v, analytic.

    Implicit differentiation of I = I0 s(x), x = V - Rs I, with I0, alpha, Rs linear in lam:
    dI/dlam = [I0' s + d (x alpha' / alpha - Rs' I)] / (1 + Rs d), d = I0 ds/dx (diode_slope),
    ' = LRS value - HRS value, using ds/dalpha = (x / alpha) ds/dx.
    """
    i0, alpha, rs = np.broadcast_arrays(*cell_params(params, lam), np.asarray(v))[:3]
    x = diode_voltage(v, i0, alpha, params.beta, rs)
    s = diode_current(x, np.ones_like(i0), alpha, params.beta)
    d = diode_slope(x, i0, alpha, params.beta)
    num = ((params.i0_lrs - params.i0_hrs) * s
           + d * (x * (params.alpha_lrs - params.alpha_hrs) / alpha
                  - (params.rs_lrs - params.rs_hrs) * i0 * s))
    return num / (1.0 + rs * d)


def chord_conductance(lam: np.ndarray, v_read: float, params: QmmParams) -> np.ndarray:
    """I(v_read) / v_read of cells in state lam."""
    return current(np.full(np.shape(lam), float(v_read)), lam, params) / float(v_read)


def state_for_conductance(g: np.ndarray, v_read: float, params: QmmParams) -> np.ndarray:
    """Memory state lam in [0, 1] whose chord conductance I(v_read) / v_read is g (elementwise).

    g must lie within [chord(0), chord(1)] up to 1e-9 relative (values just outside, from
    rounding, map to 0 or 1). Bisection on the monotone chord conductance, 64 halvings: lam to the
    last bit of [0, 1], a fixed count, so the result is the same for any array shape.
    """
    g = np.asarray(g, dtype=np.float64)
    lo_g, hi_g = chord_conductance(np.array([0.0, 1.0]), v_read, params)
    if g.size and (g.min() < lo_g * (1 - 1e-9) or g.max() > hi_g * (1 + 1e-9)):
        raise ValueError(f"conductances must lie in the QMM range [{lo_g:.6g}, {hi_g:.6g}] S at "
                         f"V_read = {v_read} V, got {g.min():.6g} .. {g.max():.6g}")
    lo, hi = np.zeros(g.shape), np.ones(g.shape)
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        below = chord_conductance(mid, v_read, params) < g
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    # the nearer end of the final bracket
    c_lo, c_hi = chord_conductance(lo, v_read, params), chord_conductance(hi, v_read, params)
    return np.where(np.abs(c_lo - g) <= np.abs(c_hi - g), lo, hi)
