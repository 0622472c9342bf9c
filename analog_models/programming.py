"""Device programming model: how one tile's memristors move under program pulses.

A QMM-like memory state lambda in [0, 1] per cell (the quasi-static memdiode model's parameters
are linear in lambda, so is the read conductance here):

    G = g_off + (g_on - g_off) * lambda            pristine cells: lambda = 0 (HRS, G = g_off)

A program pulse of amplitude V moves the state by

    set   (V > 0):  lambda += k * (1 - lambda)
    reset (V < 0):  lambda -= k * lambda            then lambda is clipped to [0, 1]
    k = rate(|V|) * d2d[cell] * c2c
    rate(|V|) = rate_max / (1 + exp(-(|V| - v_half) / v_slope))   (v_half: set_v_half or reset_v_half)

* d2d: a per-cell rate multiplier exp(d2d_sigma * N(0, 1)) (lognormal, median 1, always
  positive), drawn once for the tile from `default_rng([seeds.device, TAG, 1])`.
* stuck-at faults: one uniform draw per cell from `default_rng([seeds.device, TAG, 2])`;
  u < stuck_on_rate -> stuck at g_on (lambda = 1), next stuck_off_rate -> stuck at g_off. A stuck
  cell never moves (it still counts the pulses it receives).
* a dead partition (`device.dead_partition` = p >= 0): every cell of row partition p is open,
  i.e. stuck at g_off whatever the draws above say (the other partitions keep their draws).
* c2c: each pulse's step is scaled by max(0, 1 + c2c_sigma * N(0, 1)) drawn from a generator
  keyed by the pulse itself, `default_rng([seeds.device, row, col, pulse_index])`, where
  pulse_index is how many pulses the cell received before. A draw is reproducible in isolation and
  in any order, so the cocotb bridge (one event at a time) and the golden replay (many cells at a
  time) draw the same numbers. TAG = 2**32 - 1 is a row no tile reaches: SeedSequence treats a
  short key as if padded with zeros, so [seed, TAG, 1] can never equal a c2c key [seed, row, ...].
* tiles: a chip of several tiles has one `DeviceArray` per tile (`tile` = its index in
  `ChipConfig.tiles`). Tile t > 0 appends t to every key above ([seed, TAG, 1, t], [seed, row,
  col, pulse_index, t]); tile 0 keeps the single-tile keys, so a one-tile chip draws as before.

Bit-exactness between the scalar methods (the bridge) and the vectorised ones (the replay): the
scalar methods ARE the vectorised ones called on one cell; the rate is a scalar `math.exp` per
distinct amplitude (a finite table in practice), and every other step is an elementwise IEEE
operation (+, -, *, compare, clip), which numpy rounds identically whatever the array length.

Writes through the array (analog_models/write_path.py, programming.bias != "ideal"): a program
event puts a voltage on every cell of the partitions it pulses, and `DeviceArray.expose` moves
every cell by the same law at the voltage its memristor actually sees (a negative voltage
resets). The rates are `logistic_rates`, the vectorised logistic built from
`memdiode.exp_deterministic` (correctly rounded operations only: the same bits for any array
shape). Every cell's c2c draw in such an event, the selected cells' and the disturbed ones', comes
from the event: one generator `default_rng([seeds.device, TAG, DISTURB_KEY, tile, event])` draws
a tile-shaped array, so a cell's draw is keyed by (seed, tile, event, cell) (one generator per
event instead of one per selected cell), and the bridge and the golden replay, which both call
`expose` with the whole tile, draw the same numbers. An exposure that moves a cell by at least DISTURB_EVENT_STEPS level
steps counts as a disturb event.

The verify read (sense amplifier against the per-cell reference of level code `ref`) has no
read noise: with G_t = level_conductance(ref) and tol = margin * step,
step = (0.9 g_on - g_off) / (weight_levels - 1):
    ok   = |G - G_t| <= tol
    high = not ok and G > G_t           (so exactly one of ok / high / low holds)
"""

from __future__ import annotations

import math

import numpy as np

from .mapping import level_conductance
from .memdiode import exp_deterministic
from xbarflow.flow.core.config import ChipConfig

__all__ = [
    "D2D_KEY", "DISTURB_EVENT_STEPS", "DISTURB_KEY", "DeviceArray", "STUCK_KEY", "TAG",
    "c2c_factor", "d2d_map", "disturb_c2c", "level_step", "logistic_rate", "logistic_rates",
    "stuck_maps", "tile_key", "verify_window",
]

TAG = 0xFFFF_FFFF     # first key word after the seed of the tile-wide (static) draws
D2D_KEY = 1
STUCK_KEY = 2
DISTURB_KEY = 3
DISTURB_EVENT_STEPS = 1e-3   # an exposure moving a cell by >= this many level steps is a disturb event


def logistic_rate(amplitude_v: float, cfg: ChipConfig) -> float:
    """Per-pulse memory-state rate of a pulse of signed amplitude (V), before d2d and c2c."""
    d = cfg.device
    v = float(amplitude_v)
    if v == 0.0:
        raise ValueError("a program pulse needs a non-zero amplitude (> 0 set, < 0 reset)")
    v_half = d.set_v_half if v > 0 else d.reset_v_half
    z = (abs(v) - v_half) / d.v_slope
    if z >= 0:                       # numerically safe logistic for any |V|
        s = 1.0 / (1.0 + math.exp(-z))
    else:
        e = math.exp(z)
        s = e / (1.0 + e)
    return d.rate_max * s


def logistic_rates(volts: np.ndarray, cfg: ChipConfig) -> np.ndarray:
    """`logistic_rate` of every element of `volts` (0 where the voltage is 0), deterministic:
    sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) otherwise, e = exp(-|z|)."""
    d = cfg.device
    v = np.asarray(volts, dtype=np.float64)
    z = (np.abs(v) - np.where(v > 0, d.set_v_half, d.reset_v_half)) / d.v_slope
    e = exp_deterministic(-np.abs(z))
    s = np.where(z >= 0, 1.0, e) / (1.0 + e)
    return np.where(v == 0, 0.0, d.rate_max * s)


def disturb_c2c(cfg: ChipConfig, tile: int, event_index: int, cells: int | None = None
                ) -> np.ndarray:
    """(R, C) cycle-to-cycle factors of program event `event_index` for the cells it does not
    select: max(0, 1 + c2c_sigma N(0, 1)), keyed by (seed, tile, event) and the cell's place.
    `cells` = n: only the first n cells in row-major order, flat (the generator fills in order,
    so the same numbers as the first n of the whole tile's draw)."""
    shape = (cfg.crossbar.tile_rows, cfg.crossbar.tile_cols)
    if cells is not None:
        if not 0 <= cells <= shape[0] * shape[1]:
            raise ValueError(f"cells must be in 0..{shape[0] * shape[1]}, got {cells}")
        shape = (int(cells),)
    sigma = cfg.device.c2c_sigma
    if sigma == 0.0:
        return np.ones(shape)
    z = np.random.default_rng([cfg.seeds.device, TAG, DISTURB_KEY, int(tile), int(event_index)]
                              ).standard_normal(shape)
    return np.maximum(0.0, 1.0 + sigma * z)


def tile_key(tile: int) -> list[int]:
    """The key words that make a draw tile `tile`'s: none for tile 0, [tile] after."""
    if tile < 0:
        raise ValueError(f"tile must be >= 0, got {tile}")
    return [int(tile)] if tile else []


def c2c_factor(cfg: ChipConfig, row: int, col: int, pulse_index: int, tile: int = 0) -> float:
    """Cycle-to-cycle factor of pulse number `pulse_index` (0-based) of cell (row, col) of `tile`."""
    sigma = cfg.device.c2c_sigma
    if sigma == 0.0:
        return 1.0
    if pulse_index < 0 or row < 0 or col < 0:
        raise ValueError("row, col and pulse_index must be >= 0")
    key = [cfg.seeds.device, int(row), int(col), int(pulse_index), *tile_key(tile)]
    z = np.random.default_rng(key).standard_normal()
    return max(0.0, 1.0 + sigma * float(z))


def d2d_map(cfg: ChipConfig, tile: int = 0) -> np.ndarray:
    """(R, C) per-cell rate multipliers exp(d2d_sigma * N(0, 1)) of `tile`; all ones when
    d2d_sigma = 0."""
    shape = (cfg.crossbar.tile_rows, cfg.crossbar.tile_cols)
    z = np.random.default_rng([cfg.seeds.device, TAG, D2D_KEY, *tile_key(tile)]).standard_normal(shape)
    return np.exp(cfg.device.d2d_sigma * z)


def stuck_maps(cfg: ChipConfig, tile: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(stuck_on, stuck_off) boolean (R, C) maps of `tile`, disjoint, at the configured rates."""
    d = cfg.device
    shape = (cfg.crossbar.tile_rows, cfg.crossbar.tile_cols)
    u = np.random.default_rng([cfg.seeds.device, TAG, STUCK_KEY, *tile_key(tile)]).random(shape)
    on = u < d.stuck_on_rate
    off = ~on & (u < d.stuck_on_rate + d.stuck_off_rate)
    dead = getattr(d, "dead_partition", -1)
    if dead >= 0:
        rows = slice(cfg.partition_start[dead], cfg.partition_start[dead] + cfg.partition_rows[dead])
        on[rows], off[rows] = False, True
    return on, off


def level_step(cfg: ChipConfig) -> float:
    """Conductance step between adjacent level codes (S)."""
    d = cfg.device
    return (0.9 * d.g_on - d.g_off) / (cfg.quant.weight_levels - 1)


def verify_window(cfg: ChipConfig) -> float:
    """Half-width of the verify window (S): margin * level step."""
    return cfg.programming.margin * level_step(cfg)


class DeviceArray:
    """Memory states of one whole tile (tile_rows x tile_cols), deterministic from the config
    and the tile's index `tile` (its own d2d, stuck-at and c2c draws)."""

    def __init__(self, cfg: ChipConfig, tile: int = 0) -> None:
        self.cfg = cfg
        self.tile = int(tile)
        self.shape = (cfg.crossbar.tile_rows, cfg.crossbar.tile_cols)
        self.d2d = d2d_map(cfg, self.tile)
        self.stuck_on, self.stuck_off = stuck_maps(cfg, self.tile)
        self.stuck = self.stuck_on | self.stuck_off
        self.lam = np.zeros(self.shape)
        self.lam[self.stuck_on] = 1.0
        self.pulse_count = np.zeros(self.shape, dtype=np.int64)   # pulses each cell received
        # writes through the array (`expose`): disturb record and write margins per cell
        self.disturb_events = np.zeros(self.shape, dtype=np.int64)  # exposures that moved it
        self.disturb_change = np.zeros(self.shape)     # signed state change from disturb
        self.v_selected_min = np.full(self.shape, np.inf)  # smallest |V| it saw when selected
        self.v_disturb_max = np.zeros(self.shape)      # largest |V| it saw when not selected
        self._rates: dict[float, float] = {}

    _RECORDS = ("lam", "pulse_count", "disturb_events", "disturb_change", "v_selected_min",
                "v_disturb_max")

    def copy(self) -> "DeviceArray":
        new = object.__new__(DeviceArray)
        new.__dict__.update(self.__dict__)
        for name in self._RECORDS:
            setattr(new, name, getattr(self, name).copy())
        new._rates = dict(self._rates)
        return new

    def expose(self, volts: np.ndarray, rows, cols, event_index: int, tile: int = 0) -> np.ndarray:
        """One program event through the array: every cell moves at its memristor voltage
        `volts` (R, C) (0 where the event puts none); (rows, cols) are the selected cells (one
        pulse each: their pulse count advances), every other cell is disturbed; the c2c draws of
        all of them are the event's (`disturb_c2c`). Returns the state change (R, C)."""
        v = np.asarray(volts, dtype=np.float64)
        if v.shape != self.shape:
            raise ValueError(f"volts must be shaped {self.shape}, got {v.shape}")
        r, c = self._cells(rows, cols)
        # flat indices into the (R, C) records throughout (much cheaper than (row, col) pairs)
        v = v.reshape(-1)
        sel = r * self.shape[1] + c
        live = v != 0
        live[sel] = True
        at = np.flatnonzero(live)                      # the cells the event reaches
        vl = v.take(at)
        k = logistic_rates(vl, self.cfg)
        k *= self.d2d.reshape(-1).take(at)
        # the draws up to the last cell the event reaches (a prefix of the tile's draw)
        k *= disturb_c2c(self.cfg, tile, event_index, int(at[-1]) + 1 if at.size else 0).take(at)
        lam_all = self._flat("lam")
        lam = lam_all.take(at)
        new = np.clip(np.where(vl > 0, lam + k * (1.0 - lam), lam - k * lam), 0.0, 1.0)
        new = np.where(self.stuck.reshape(-1).take(at) | (vl == 0), lam, new)
        moved_by = new - lam
        change = np.zeros(self.shape)
        change.reshape(-1)[at] = moved_by
        lam_all[at] = new
        self.pulse_count[r, c] += 1
        self.v_selected_min[r, c] = np.minimum(self.v_selected_min[r, c], np.abs(v.take(sel)))
        # the other cells the event reaches (each place once)
        selected = np.zeros(v.size, dtype=bool)
        selected[sel] = True
        o = ~selected.take(at)
        ao, step = at[o], moved_by[o]
        vmax = self._flat("v_disturb_max")
        vmax[ao] = np.maximum(vmax.take(ao), np.abs(vl[o]))
        d = self.cfg.device
        self._flat("disturb_events")[ao] += (np.abs(step) * (d.g_on - d.g_off)
                                                >= DISTURB_EVENT_STEPS * level_step(self.cfg))
        self._flat("disturb_change")[ao] += step
        return change

    def _flat(self, name: str) -> np.ndarray:
        """A flat view of record `name` (made C-contiguous first, so that writes reach it)."""
        a = getattr(self, name)
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
            setattr(self, name, a)
        return a.reshape(-1)

    # -- physics --------------------------------------------------------------------------------
    def rate(self, amplitude_v: float) -> float:
        """logistic_rate, memoised per amplitude (the chip uses a small table of amplitudes)."""
        a = float(amplitude_v)
        r = self._rates.get(a)
        if r is None:
            r = self._rates[a] = logistic_rate(a, self.cfg)
        return r

    def _cells(self, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        r = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        c = np.atleast_1d(np.asarray(cols, dtype=np.int64))
        if r.shape != c.shape or r.ndim != 1:
            raise ValueError(f"rows and cols must be matching 1-D index lists, got {r.shape}, {c.shape}")
        if r.size and (r.min() < 0 or r.max() >= self.shape[0] or c.min() < 0 or c.max() >= self.shape[1]):
            raise IndexError(f"cell outside the {self.shape[0]} x {self.shape[1]} tile")
        return r, c

    def pulse_cells(self, rows, cols, amplitudes, pulse_indices=None) -> None:
        """Apply one pulse to each listed cell (distinct cells); the vectorised `pulse`.

        `amplitudes`: one signed amplitude (V) or one per cell. `pulse_indices` keys the c2c draws;
        by default each cell's own pulse count (the pulses it received before).
        """
        r, c = self._cells(rows, cols)
        if r.size == 0:
            return
        flat = r * self.shape[1] + c
        if np.unique(flat).size != flat.size:
            raise ValueError("pulse_cells needs distinct cells (one pulse per cell per call)")
        amp = np.broadcast_to(np.asarray(amplitudes, dtype=np.float64), r.shape)
        if pulse_indices is None:
            idx = self.pulse_count[r, c]
        else:
            idx = np.broadcast_to(np.asarray(pulse_indices, dtype=np.int64), r.shape)
        move = ~self.stuck[r, c]
        rate = np.array([self.rate(a) for a in amp])        # raises on a zero amplitude
        c2c = np.ones(r.shape)
        if self.cfg.device.c2c_sigma != 0.0:
            for n in np.flatnonzero(move):
                c2c[n] = c2c_factor(self.cfg, int(r[n]), int(c[n]), int(idx[n]), self.tile)
        k = rate * self.d2d[r, c] * c2c
        lam = self.lam[r, c]
        new = np.where(amp > 0, lam + k * (1.0 - lam), lam - k * lam)
        new = np.clip(new, 0.0, 1.0)
        self.lam[r[move], c[move]] = new[move]
        self.pulse_count[r, c] += 1

    def pulse(self, row: int, col: int, amplitude_v: float, pulse_index: int | None = None) -> float:
        """One program pulse on cell (row, col); returns its new conductance.

        `pulse_index` (pulses the cell received before) keys the c2c draw; default: the cell's own
        count. The bridge passes its monitor's count; both agree in a normal run.
        """
        self.pulse_cells([row], [col], amplitude_v, None if pulse_index is None else [pulse_index])
        return self.read(row, col)

    # -- reads ----------------------------------------------------------------------------------
    def conductance(self) -> np.ndarray:
        """(R, C) conductances in S."""
        d = self.cfg.device
        return d.g_off + (d.g_on - d.g_off) * self.lam

    def conductance_cells(self, rows, cols) -> np.ndarray:
        r, c = self._cells(rows, cols)
        d = self.cfg.device
        return d.g_off + (d.g_on - d.g_off) * self.lam[r, c]

    def read(self, row: int, col: int) -> float:
        return float(self.conductance_cells([row], [col])[0])

    def verify_cells(self, rows, cols, ref_levels, cfg: ChipConfig | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Sense-amplifier decisions (ok, high) of many cells against their reference levels."""
        cfg = cfg or self.cfg
        r, c = self._cells(rows, cols)
        ref = np.broadcast_to(np.asarray(ref_levels, dtype=np.int64), r.shape)
        if ref.size and (ref.min() < 0 or ref.max() >= cfg.quant.weight_levels):
            raise ValueError(f"reference level outside 0..{cfg.quant.weight_levels - 1}")
        g = self.conductance_cells(r, c)
        gt = level_conductance(ref, cfg)
        ok = np.abs(g - gt) <= verify_window(cfg)
        high = ~ok & (g > gt)
        return ok, high

    def verify(self, row: int, col: int, ref_level: int, cfg: ChipConfig | None = None
               ) -> tuple[bool, bool]:
        """(ok, high) of one cell against the target conductance of level code `ref_level`."""
        ok, high = self.verify_cells([row], [col], [ref_level], cfg)
        return bool(ok[0]), bool(high[0])
