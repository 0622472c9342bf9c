"""The QMM read model as training sees it: one differential pair's ADC-code contribution per
(input code, signed level), with its derivatives, factorised for matrix products.

With `train.device_aware` the chip's forward pass (flow/model/forward.py) reads every cell as a
QMM memdiode (analog_models/memdiode.py) instead of I = G V. A pair of signed level s driven by
DAC code c contributes

    D[c, s] = (I(V_c, lam_{max(s, 0)}) - I(V_c, lam_{max(-s, 0)})) * tia_gain / adc_lsb   ADC codes,

V_c = c v_read / dac_max, lam_L the memory state whose chord conductance at V_read is the level's
conductance (`state_for_conductance` of `level_conductance`, as AnalogArray maps them), so a
tile's ADC input is sum_i D[x_i, s_ik] (before rounding), exactly what the golden model's qmm path
sums when the wire resistance is neglected. That is neglected here: at the shipped tiles (nS
cells, 1 ohm segments) the IR drop moves column currents by ~1e-6 relative, ~1e-4 LSB.

Gradients, for the straight-through backward passes of the recipes:
  d_level[c, s] = dD/ds, s continuous: the level conductance is linear in s, so
                  dD/ds = (dI/dlam)(V_c, lam) * (dG/dL) / (dChord/dlam)(lam) at the pair's
                  programmed device (analytic, memdiode.state_slope);
  d_code[c, s]  = dD/dc: the cells' small-signal slopes dI/dV (memdiode.branch_slope) * dV/dc.

Factorised: D = A @ B by a truncated SVD (D has numerical rank 3-6: I is a smooth function of V
and lam), singular values below RANK_TOL of the largest dropped, so each entry of D is off by at
most `truncation` (the first dropped singular value, ~1e-12 of the table) and a sum over a tile's
rows by rows * truncation ADC codes. A tile's sums are then r matrix products of gathered tables,
A[x, j] @ B[j, s], instead of one product per input code. d_level and d_code are projected on the
same bases (B_level = A^+ d_level, A_code = d_code B^T).

Read noise (device.read_noise_sigma > 0): the golden read scales each cell's I0 by 1 + sigma N(0, 1)
per read (analog_models/read_variation.py), and with Rs I0 negligible (nS cells, 1 ohm) the
cell's current scales with it, so a tile's ADC input gets Gaussian noise of standard deviation
sigma sqrt(sum_i (I+_i^2 + I-_i^2)) codes: `noise_std`, from the table of squared currents
(factorised like D). Training adds it as a constant offset (no gradient through it), drawn from
its own generator (forward.py, lbfgs.py), never the golden model's keyed draws.
"""

from __future__ import annotations

import numpy as np

from xbarflow.analog_models import memdiode
from xbarflow.analog_models.adc import lsb as adc_lsb
from xbarflow.analog_models.dac import dac_voltages
from xbarflow.analog_models.mapping import level_conductance
from ..core.config import ChipConfig

__all__ = ["DeviceRead", "RANK_TOL"]

RANK_TOL = 1e-12   # singular values below this fraction of the largest are dropped


class DeviceRead:
    """Tables D, dD/ds, dD/dc over (input code 0..dac_max, signed level -top..top) in ADC codes."""

    def __init__(self, cfg: ChipConfig) -> None:
        d, v_read = cfg.device, cfg.crossbar.v_read
        self.top = cfg.quant.weight_levels - 1
        params = memdiode.QmmParams.from_config(cfg)
        lam = memdiode.state_for_conductance(level_conductance(np.arange(self.top + 1), cfg),
                                             v_read, params)
        self.states = lam                                             # per level
        volts = dac_voltages(np.arange(cfg.quant.dac_max + 1), cfg)[:, None]
        cur = memdiode.current(volts, lam[None, :], params)            # (codes, levels) A
        dchord = memdiode.state_slope(np.full(lam.shape, v_read), lam, params) / v_read
        dlam_dlevel = (0.9 * d.g_on - d.g_off) / self.top / dchord
        dcur_dlevel = memdiode.state_slope(volts, lam[None, :], params) * dlam_dlevel
        i0, alpha, rs = np.broadcast_arrays(*memdiode.cell_params(params, lam[None, :]), volts)[:3]
        x = memdiode.diode_voltage(np.broadcast_to(volts, i0.shape), i0, alpha, params.beta, rs)
        dcur_dcode = memdiode.branch_slope(x, i0, alpha, params.beta, rs) * (v_read / cfg.quant.dac_max)

        codes_per_amp = cfg.sensing.tia_gain / adc_lsb(cfg)
        signed = np.arange(-self.top, self.top + 1)
        pos, neg = np.maximum(signed, 0), np.maximum(-signed, 0)
        self.table = (cur[:, pos] - cur[:, neg]) * codes_per_amp
        # s > 0 moves the + device up, s < 0 the - device down: both raise D
        self.d_level = np.where(signed >= 0, dcur_dlevel[:, pos], dcur_dlevel[:, neg]) * codes_per_amp
        self.d_code = (dcur_dcode[:, pos] - dcur_dcode[:, neg]) * codes_per_amp

        u, sv, vt = np.linalg.svd(self.table, full_matrices=False)
        rank = int(np.sum(sv > RANK_TOL * sv[0]))
        self.rank = rank
        self.truncation = float(sv[rank]) if rank < len(sv) else 0.0
        self.a = u[:, :rank] * sv[:rank]                              # (codes, r)
        self.b = vt[:rank]                                            # (r, signed levels)
        self.b_level = (u[:, :rank].T @ self.d_level) / sv[:rank, None]
        self.a_code = self.d_code @ vt[:rank].T
        self.sigma = d.read_noise_sigma
        squares = (cur[:, pos] ** 2 + cur[:, neg] ** 2) * codes_per_amp ** 2
        u2, sv2, vt2 = np.linalg.svd(squares, full_matrices=False)
        rank2 = int(np.sum(sv2 > RANK_TOL * sv2[0]))
        self.a_sq, self.b_sq = u2[:, :rank2] * sv2[:rank2], vt2[:rank2]

    def _index(self, x: np.ndarray, lev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(x).astype(np.intp), np.asarray(lev).astype(np.intp) + self.top

    def sums(self, x: np.ndarray, lev: np.ndarray) -> np.ndarray:
        """ADC-code inputs (n, outs) = sum_i D[x_ni, lev_ik]: codes x (n, rows), levels (rows, outs)."""
        xi, li = self._index(x, lev)
        z = np.zeros((xi.shape[0], li.shape[1]))
        for j in range(self.rank):
            z += self.a[xi, j] @ self.b[j][li]
        return z

    def noise_std(self, x: np.ndarray, lev: np.ndarray) -> np.ndarray:
        """(n, outs) standard deviation, in ADC codes, of the read noise of a tile's ADC inputs."""
        xi, li = self._index(x, lev)
        var = np.zeros((xi.shape[0], li.shape[1]))
        for j in range(self.a_sq.shape[1]):
            var += self.a_sq[xi, j] @ self.b_sq[j][li]
        return self.sigma * np.sqrt(np.maximum(var, 0.0))

    def grad_levels(self, x: np.ndarray, lev: np.ndarray, g: np.ndarray) -> np.ndarray:
        """(rows, outs) sum_n g_nk dD/ds (x_ni, lev_ik), g = dLoss/d(sums) (n, outs)."""
        xi, li = self._index(x, lev)
        out = np.zeros(li.shape)
        for j in range(self.rank):
            out += (self.a[xi, j].T @ g) * self.b_level[j][li]
        return out

    def grad_inputs(self, x: np.ndarray, lev: np.ndarray, g: np.ndarray) -> np.ndarray:
        """(n, rows) sum_k g_nk dD/dc (x_ni, lev_ik)."""
        xi, li = self._index(x, lev)
        out = np.zeros(xi.shape)
        for j in range(self.rank):
            out += self.a_code[xi, j] * (g @ self.b[j][li].T)
        return out
