"""One crossbar tile seen from the analog boundary: DAC codes in, ADC codes out.

`AnalogArray` solves the crossbar's wire network once (crossbar.effective_matrix) and then
answers inference events. The cocotb bridge calls it one image at a time, the golden model with a
whole test set at once, and both must get bit-identical ADC codes. A float matmul does not give
that (batched and single-vector BLAS paths sum in different orders, and a value on an ADC
threshold then rounds differently), so the VMM is made exact by construction:

  * M is quantised once onto a power-of-two grid q: M_int = rint(M / q), with q the smallest
    power of two such that max|M_int| <= 2**40 and rows * dac_max * max|D_int| < 2**53
    (relative resolution ~1e-12 of the largest entry: physically irrelevant);
  * the differential pair is subtracted in integers, D_int = M_int[:, 0::2] - M_int[:, 1::2],
    and kept as float64 holding integers;
  * DAC codes are small integers, so `codes @ D_int` in float64 is an exact integer computation
    (every product and partial sum is an integer below 2**53) whatever the summation order;
  * one elementwise scalar multiply turns it into TIA volts (v_read / dac_max * q * tia_gain),
    then the ADC rounds elementwise, with noise keyed by event index.

With `device.read_model = "qmm"` the cells are QMM memdiodes (memdiode.py) and the array is a
nonlinear network: the conductances are mapped once to memory states (the state whose chord
conductance at V_read is the cell's conductance), and every input vector is solved by
nonlinear_crossbar.NonlinearCrossbar, which returns column currents on an exact integer grid
and is bit-identical whatever the batch by construction; the pair is subtracted in integers and
scaled to volts as above. Residual criterion: every TIA output within QMM_TOL_LSB ADC LSB of the
exact network solution (the solver's bound; its column-current tolerance is half of that).

With `crossbar.cell = "1S1R"` every cell is its memristor in series with the selector
(selector.py): a conductance is the whole cell's chord conductance at V_read, so each is mapped
once to the memristor behind it, and every input vector is solved by
selector_crossbar.SelectorCrossbar, on the same exact integer grid and with the same tolerance
as the QMM solve (1T1R: the access transistor's on-resistance in series, all word lines on).
With both (1S1R and qmm) each cell is a QMM memdiode in series with the selector
(selector_memdiode.py): its state is the one whose whole-cell chord conductance at V_read is the
cell's conductance, and the same SelectorCrossbar solves the array on those cells.

Drift and read noise (read_variation.py): drift scales the conductances the array is read with
(linear) or each cell's I0 (qmm) once per array; read noise (qmm only) scales each cell's I0 per
read, drawn per event from a generator keyed by (seeds.noise, tile, event), so one-at-a-time and
batched reads see the same factors.
"""

from __future__ import annotations

import math

import numpy as np

from . import adc, crossbar, memdiode, read_variation, selector, selector_memdiode, sensing
from .dac import dac_voltages, validate_codes
from .nonlinear_crossbar import NonlinearCrossbar
from .selector_crossbar import SelectorCrossbar
from xbarflow.flow.core.config import ChipConfig

__all__ = ["AnalogArray"]

_EXACT = 1 << 53          # float64 represents every integer below this exactly
_GRID_MAX = 1 << 40       # largest |M_int| of the quantised effective matrix
QMM_TOL_LSB = 1e-3        # qmm: bound on each TIA output's solver error, in ADC LSB
_NOISE_CHUNK = 512        # qmm read noise: events whose draws are held at once (memory only)


class AnalogArray:
    """Effective-matrix model of one tile; `conductance` is (rows, 2 * outputs) in S."""

    def __init__(self, cfg: ChipConfig, conductance: np.ndarray, *, tile: int = 0) -> None:
        g = crossbar.ideal_matrix(conductance)
        if g.shape[1] % 2:
            raise ValueError(f"conductance needs an even column count (G+, G- pairs), got {g.shape[1]}")
        if tile < 0:
            raise ValueError(f"tile index must be >= 0, got {tile}")
        self.cfg = cfg
        self.tile = tile
        self.conductance = g
        # drift: the conductances (linear) or I0 (qmm) the array is read with, at read_time_s
        self.drift = read_variation.drift_factor(cfg, tile, g.shape)
        read_g = g if self.drift is None or cfg.device.read_model == "qmm" else g * self.drift
        # 1T1R: every word line is on while the array is read, the access transistor's
        # on-resistance in series with each cell (1S1R: the selector in series, solved below)
        r_on = cfg.crossbar.access_r_on if cfg.crossbar.cell == "1T1R" else 0.0
        if r_on and cfg.device.read_model == "linear":
            read_g = read_g / (1.0 + read_g * r_on)
        self.matrix = crossbar.effective_matrix(read_g, cfg.crossbar.wire_r, cfg.crossbar.partitions)
        rows, dac_max = g.shape[0], cfg.quant.dac_max
        budget = min(_GRID_MAX, (_EXACT // 2 - 1) // (rows * dac_max))
        peak = float(np.abs(self.matrix).max())
        self.grid = math.ldexp(1.0, math.frexp(peak / budget)[1]) if peak > 0 else 1.0
        m_int = np.rint(self.matrix / self.grid)
        self._d_int = m_int[:, 0::2] - m_int[:, 1::2]
        if rows * dac_max * int(np.abs(self._d_int).max()) >= _EXACT:
            raise ArithmeticError("quantised effective matrix too large for an exact float64 VMM")
        self._volts_per_unit = cfg.crossbar.v_read / dac_max * self.grid * cfg.sensing.tia_gain
        self.read_model = cfg.device.read_model
        self.states: np.ndarray | None = None      # qmm: memory state of every cell
        self.solver: NonlinearCrossbar | SelectorCrossbar | None = None
        self.memristor: np.ndarray | None = None   # 1S1R: each cell's memristor conductance
        if cfg.crossbar.cell == "1S1R":
            selector.check_read(cfg)
            if self.read_model == "qmm":
                # QMM memdiodes in series with the selector, in the states whose whole-cell
                # chord conductance at V_read is g (selector_memdiode.py)
                params = selector_memdiode.qmm_params(cfg)
                self.states = selector_memdiode.state_for_chord(g, cfg.crossbar, params)
                i0, alpha, rs = memdiode.cell_params(params, self.states)
                if self.drift is not None:
                    i0 = i0 * self.drift
                cells = selector_memdiode.QmmCells(i0, alpha, rs, params.beta)
            else:
                self.memristor = selector.memristor_for_chord(g, cfg.crossbar)
                if self.drift is not None:
                    self.memristor = self.memristor * self.drift   # the memristor drifts
                cells = selector.MemristorCells(self.memristor)
            tol = QMM_TOL_LSB * adc.lsb(cfg) / cfg.sensing.tia_gain / 2
            self.solver = SelectorCrossbar(cells, cfg.crossbar,
                                           dac_voltages(np.arange(dac_max + 1), cfg), tol,
                                           scale_max=read_variation.read_noise_max(cfg)
                                           if self.read_model == "qmm" else 1.0)
            self._qmm_volts_per_unit = self.solver.grid * cfg.sensing.tia_gain
        elif self.read_model == "qmm":
            params = memdiode.QmmParams.from_config(cfg)
            self.states = memdiode.state_for_conductance(g, cfg.crossbar.v_read, params)
            i0, alpha, rs = memdiode.cell_params(params, self.states)
            rs = rs + r_on
            if self.drift is not None:
                i0 = i0 * self.drift
            levels = dac_voltages(np.arange(dac_max + 1), cfg)
            tol = QMM_TOL_LSB * adc.lsb(cfg) / cfg.sensing.tia_gain / 2
            self.solver = NonlinearCrossbar(i0, alpha, rs, params.beta, cfg.crossbar.wire_r,
                                            cfg.crossbar.partitions, levels, tol,
                                            scale_max=read_variation.read_noise_max(cfg))
            self._qmm_volts_per_unit = self.solver.grid * cfg.sensing.tia_gain

    @property
    def rows(self) -> int:
        return self.conductance.shape[0]

    @property
    def outputs(self) -> int:
        return self.conductance.shape[1] // 2

    def _codes(self, dac_codes: np.ndarray) -> np.ndarray:
        codes = validate_codes(dac_codes, self.cfg.quant.dac_bits)
        if codes.ndim not in (1, 2) or codes.shape[-1] != self.rows:
            raise ValueError(f"DAC codes must be shaped ({self.rows},) or (n, {self.rows}), "
                             f"got {codes.shape}")
        return codes

    def scores_volts(self, dac_codes: np.ndarray, event_index: int | np.ndarray = 0) -> np.ndarray:
        """Differential TIA voltages before the ADC, (outputs,) or (n, outputs); exact VMM.

        `event_index` (as for `adc_codes`) keys the read noise (qmm with read_noise_sigma > 0)."""
        codes = self._codes(dac_codes)
        if self.solver is None:
            return (codes.astype(np.float64) @ self._d_int) * self._volts_per_unit
        flat = codes.reshape(-1, self.rows)
        if self.cfg.device.read_noise_sigma > 0:
            events = adc.event_indices(event_index, flat.shape[0])
            cur = np.empty((flat.shape[0], self.conductance.shape[1]), dtype=np.int64)
            for s in range(0, flat.shape[0], _NOISE_CHUNK):   # the draws of a chunk at a time
                scale = read_variation.read_noise_factors(self.cfg, self.tile, events[s:s + _NOISE_CHUNK],
                                                          self.conductance.shape)
                cur[s:s + _NOISE_CHUNK] = self.solver.column_currents_grid(flat[s:s + _NOISE_CHUNK], scale)
        else:
            cur = self.solver.column_currents_grid(flat)
        volts = (cur[:, 0::2] - cur[:, 1::2]).astype(np.float64) * self._qmm_volts_per_unit
        return volts.reshape(codes.shape[:-1] + (self.outputs,))

    def adc_codes(self, dac_codes: np.ndarray, event_index: int | np.ndarray = 0) -> np.ndarray:
        """ADC codes (int64) for DAC codes shaped (rows,) -> (outputs,) or (n, rows) -> (n, outputs).

        `event_index` keys the ADC noise (and the read noise): the event's index for one vector;
        for a batch either the first event's index (rows are events e0, e0+1, ...) or an array of
        n indices.
        """
        return adc.convert(self.scores_volts(dac_codes, event_index), self.cfg, tile=self.tile,
                           event_index=event_index)

    def ideal_scores_volts(self, dac_codes: np.ndarray) -> np.ndarray:
        """TIA voltages of the ideal crossbar (no wire resistance, float math), for reports."""
        volts = dac_voltages(self._codes(dac_codes), self.cfg)
        return sensing.differential_voltage(volts @ self.conductance, self.cfg)

    def distortion(self) -> crossbar.Distortion:
        """IR-drop deviation of the column currents at full-scale input."""
        return crossbar.distortion(self.matrix, self.conductance)

    def latency_cycles(self) -> tuple[int, int]:
        """(TIA settling, ADC conversion) in system clock cycles."""
        return sensing.settling_cycles(self.cfg), self.cfg.adc.conversion_cycles
