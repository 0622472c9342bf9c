"""The chip's forward pass for training: the arithmetic of flow/model/golden.py on an ideal crossbar.

The forward pass is the chip's arithmetic (flow/model/golden.py) on an ideal crossbar:
  levels    lev_l = map_weights(clip(theta_l, -1, 1)).signed_levels   (normalised by max - min)
  per tile  a = clip(floor(unit * x[:, rows] @ lev_l[rows] + 1/2), adc_lo, adc_hi),
            unit = analog_gain / (dac_max * (levels - 1)): the config's real analog scale
  sum       s_l = sum of a over row tiles (integers)
  hidden    relu: clip(floor(s * mult_l / 2**shift), 0, dac_max);  binary: dac_max * (s > 0)
Wire resistance is left out (at these conductances it moves column currents by ~1e-6, see
analog_models/crossbar.py); the golden model includes it. The backward pass is straight-through:
gradients pass every rounding (level, ADC, requantiser) and stop where a value saturates (ADC
rails, clip at 0 / dac_max); the binary step passes dac_max / (2 w) for |s| < w, w the calibrated
spread of s. `calibrate_requant` sets the hidden layers' requantiser registers (the
calib_percentile of the positive sums maps to dac_max). Used by the quantisation-aware recipe
(flow/model/qat.py), the in-situ recipe (flow/model/insitu.py) and `software_scores`.

With `train.device_aware` (lbfgs and qat, read_model "qmm") a tile's ADC input is the QMM read
instead: z = sum_i D[x_i, lev_i] (flow/model/device_read.py: each pair's current at its input code
and programmed state, in ADC codes), and the backward pass uses the read model's derivatives
dD/dlev and dD/dx at the rounded levels and codes in place of x and lev. The float twin
(exact=False) stays the linear, unrounded crossbar. With device.read_noise_sigma > 0, a forward
pass with `noisy` adds the read noise to each tile's ADC input (DeviceRead.noise_std), drawn from
default_rng([seeds.train, TRAIN_NOISE_KEY]): noise injection for training, not the golden draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xbarflow.analog_models.adc import code_range, lsb as adc_lsb
from xbarflow.analog_models.mapping import map_weights
from ..core.config import ChipConfig
from ..data import Dataset, to_dac_codes
from .device_read import DeviceRead

__all__ = [
    "CALIB_IMAGES", "ChipModel", "EVAL_CHUNK", "TRAIN_NOISE_KEY", "analog_gain", "calibrate_requant",
    "sums_in_chunks", "training_set",
]

CALIB_IMAGES = 10000   # training images the requantiser registers are calibrated on
EVAL_CHUNK = 5000      # images per forward pass when evaluating many
TRAIN_NOISE_KEY = 0x54524e4f   # b"TRNO": the generator of training's injected read noise


def analog_gain(cfg: ChipConfig) -> float:
    """ADC codes per unit of sum_i (x_i / dac_max) * Wn_i on an ideal crossbar, Wn = W / span:
    tia_gain * v_read * (0.9 g_on - g_off) / adc_lsb (derivation: flow/analysis/report.py)."""
    d = cfg.device
    return cfg.sensing.tia_gain * cfg.crossbar.v_read * (0.9 * d.g_on - d.g_off) / adc_lsb(cfg)


class ChipModel:
    """The chip's forward pass in float64 (exact on integers) and its straight-through backward."""

    eval_chunk = EVAL_CHUNK   # images per forward pass when evaluating many

    def __init__(self, cfg: ChipConfig, shapes: Sequence[tuple[int, int]] | None = None,
                 acts: Sequence[str] | None = None) -> None:
        """shapes / acts: (n_in, n_out) and activation of every weight layer, by default the
        config's dense layers (a convolutional network passes its im2col shapes)."""
        self.cfg = cfg
        self.shapes = tuple(cfg.network.layer_shapes if shapes is None else shapes)
        self.acts = tuple(cfg.network.activations if acts is None else acts)
        tr = cfg.crossbar.tile_rows
        self.row_tiles = [[slice(r, min(r + tr, n_in)) for r in range(0, n_in, tr)]
                          for n_in, _ in self.shapes]
        self.top = cfg.quant.weight_levels - 1
        self.dac_max = cfg.quant.dac_max
        self.unit = analog_gain(cfg) / (self.dac_max * self.top)
        self.lo, self.hi = (float(v) for v in code_range(cfg.adc.bits))
        self.shift = 2.0 ** -cfg.network.requant_shift
        self.mult_max = (1 << cfg.network.requant_mult_bits) - 1
        self.read = DeviceRead(cfg) if cfg.train.device_aware else None
        self.noise = np.random.default_rng([cfg.seeds.train, TRAIN_NOISE_KEY])

    def levels(self, w: np.ndarray) -> np.ndarray:
        return map_weights(w, self.cfg).signed_levels.astype(np.float64)

    def forward(self, lev: list[np.ndarray], mult: list[int], width: list[float], x: np.ndarray,
                keep: bool = False, exact: bool = True,
                noisy: bool = False) -> tuple[list[np.ndarray], list[Any]]:
        """Sums of every layer for DAC codes x; with `keep`, what backward needs. exact=False is
        the float twin (unrounded levels passed in, no ADC / requantiser rounding or clipping);
        `noisy` adds the device's read noise (device-aware with read_noise_sigma > 0 only)."""
        x = np.asarray(x, dtype=np.float64)
        sums, cache = [], []
        last = len(self.shapes) - 1
        for layer in range(len(lev)):
            s, masks = self.vmm(layer, lev[layer], x, keep=keep, exact=exact, noisy=noisy)
            sums.append(s)
            entry: list[Any] = [x, masks, None, 0.0]
            if layer < last:
                x, act_mask, act_gain = self.activate(layer, s, mult, width, keep=keep, exact=exact)
                entry[2:] = [act_mask, act_gain]
            if keep:
                cache.append(entry)
        return sums, cache

    def vmm(self, layer: int, lev: np.ndarray, x: np.ndarray, keep: bool = False,
            exact: bool = True, noisy: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Weight layer `layer`'s digital sums (m, n_out) for input codes x (m, n_in): every row
        tile's rounded, saturated ADC codes added up; with `keep` each tile's not-saturated mask.
        A convolution passes its im2col rows (one row per image and output position)."""
        s = np.zeros((x.shape[0], lev.shape[1]))
        masks = []
        for sl in self.row_tiles[layer]:
            if exact and self.read is not None:
                z = self.read.sums(x[:, sl], lev[sl])
                if noisy and self.read.sigma > 0:
                    z += self.read.noise_std(x[:, sl], lev[sl]) * self.noise.standard_normal(z.shape)
            else:
                z = (x[:, sl] @ lev[sl]) * self.unit
            if exact:
                s += np.clip(np.floor(z + 0.5), self.lo, self.hi)
                if keep:
                    masks.append((z > self.lo - 0.5) & (z < self.hi + 0.5))
            else:
                s += z
                if keep:    # the float twin never saturates: its backward is its exact gradient
                    masks.append(np.ones(z.shape, dtype=bool))
        return s, masks

    def vmm_backward(self, layer: int, lev: np.ndarray, x: np.ndarray, masks: list[np.ndarray],
                     g: np.ndarray, inputs: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Straight-through gradients of `vmm` given dLoss/ds: (dLoss/dlev, dLoss/dx, or None
        without `inputs`)."""
        dlev = np.empty_like(lev)
        dx = np.empty_like(x) if inputs else None
        for sl, m in zip(self.row_tiles[layer], masks):
            if self.read is not None:
                dz = g * m
                dlev[sl] = self.read.grad_levels(x[:, sl], lev[sl], dz)
                if dx is not None:
                    dx[:, sl] = self.read.grad_inputs(x[:, sl], lev[sl], dz)
                continue
            dz = g * m * self.unit
            dlev[sl] = x[:, sl].T @ dz
            if dx is not None:
                dx[:, sl] = dz @ lev[sl].T
        return dlev, dx

    def activate(self, layer: int, s: np.ndarray, mult: list[int], width: list[float],
                 keep: bool = False, exact: bool = True) -> tuple[np.ndarray, Any, float]:
        """Hidden weight layer `layer`'s output codes from its sums, with (with `keep`) the
        straight-through mask and gain: dLoss/ds = dLoss/dy * mask * gain."""
        if self.acts[layer] == "relu":
            gain = mult[layer] * self.shift
            u = s * gain
            y = np.clip(np.floor(u) if exact else u, 0.0, self.dac_max)
            top = self.dac_max + 1 if exact else self.dac_max   # floor(u) < dac_max + 1 passes
            return y, ((u > 0) & (u < top)) if keep else None, gain
        y = np.where(s > 0, float(self.dac_max), 0.0)
        w = width[layer]
        return y, (np.abs(s) < w) if keep else None, self.dac_max / (2.0 * w)

    def backward(self, lev: list[np.ndarray], cache: list[Any], ds: np.ndarray) -> list[np.ndarray]:
        """Gradients w.r.t. every layer's signed levels, given dLoss/ds of the last layer's sums."""
        grads: list[np.ndarray] = [np.empty(0)] * len(lev)
        g = ds
        for layer in range(len(lev) - 1, -1, -1):
            x, masks = cache[layer][0], cache[layer][1]
            grads[layer], dx = self.vmm_backward(layer, lev[layer], x, masks, g, inputs=layer > 0)
            if dx is not None:
                act_mask, act_gain = cache[layer - 1][2], cache[layer - 1][3]
                g = dx * act_mask * act_gain
        return grads


def sums_in_chunks(model: ChipModel, lev, mult, width, codes, exact=True) -> list[np.ndarray]:
    """Every layer's sums for many images, model.eval_chunk images per forward pass."""
    chunk = model.eval_chunk
    parts = [model.forward(lev, mult, width, codes[i:i + chunk], exact=exact)[0]
             for i in range(0, len(codes), chunk)]
    return [np.concatenate([p[layer] for p in parts]) for layer in range(len(lev))]


def calibrate_requant(model: ChipModel, lev, mult, width, codes, percentile: float) -> None:
    """Set each hidden layer's mult (relu) or STE width (binary) from its sums, layer by layer."""
    shift = model.cfg.network.requant_shift
    for layer in range(len(lev) - 1):
        s = sums_in_chunks(model, lev[:layer + 1], mult, width, codes)[layer]
        if model.acts[layer] == "relu":
            pos = s[s > 0]
            p = float(np.percentile(pos, percentile)) if pos.size else 1.0
            mult[layer] = int(np.clip(np.rint(model.dac_max * 2.0 ** shift / max(p, 1.0)), 1,
                                      model.mult_max))
        else:
            width[layer] = max(float(np.std(s)), 1.0)


def training_set(cfg: ChipConfig, dataset: Dataset) -> tuple[ChipModel, np.ndarray, np.ndarray, np.ndarray]:
    """What every chip-forward training loop starts from: the model, the training images as
    float DAC codes, their labels, and the images the requantiser is calibrated on."""
    codes = to_dac_codes(dataset.x_train, cfg).astype(np.float64)
    return ChipModel(cfg), codes, dataset.y_train.astype(np.int64), codes[:CALIB_IMAGES]
