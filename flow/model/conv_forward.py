"""The chip's forward pass for training a layered (convolutional) network, and its straight-through
backward: the golden model's arithmetic for conv, pool, flatten and dense stages (CNN_SPEC.md).

Every map is a (n, H, W, C) array of codes (HWC, channel fastest, as the feature-map memory).
  conv      the golden model's im2col windows (flow/model/conv.py: row r = (ky*K + kx)*C_in + c,
            code 0 in the padding, positions in raster order); the rows of every image and
            position go through `ChipModel.vmm` (the same per-tile ADC rounding and saturation
            as a dense layer), then `ChipModel.activate`.
  pool      on codes, no padding: max = the largest code, avg = floor(sum / size^2).
  flatten   moves nothing: a dense layer's input index is the map's HWC offset.
  dense     as in flow/model/forward.py.
Gradients pass straight through every rounding (ADC, requantiser, the average's floor) and stop
where a value saturates, as for dense layers; a max pool passes its gradient to the first
largest code of each window (raster order); the float twin (exact=False) drops every rounding.
`chip_model(cfg)` is the training model of any config: this one for the layered form
(`NetworkConfig.layered`), else the dense `ChipModel`. The pooling here keeps, beside the value
(conv.pool's on codes), which input each max came from, and has a float twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.config import ChipConfig, LayerSpec
from .conv import im2col
from .forward import ChipModel

__all__ = ["CONV_EVAL_CHUNK", "ConvChipModel", "chip_model", "col2im", "im2col_rows",
           "pool_backward", "pool_forward"]

CONV_EVAL_CHUNK = 250   # images per evaluation pass: a 28 x 28 conv's im2col rows are ~600 per image


def _out_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def im2col_rows(maps: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """(n, H, W, C) maps -> (n * H_out * W_out, K*K*C) window rows (conv.im2col, one row per
    image and position), the rows `ChipModel.vmm` takes."""
    windows = im2col(maps, kernel, stride, padding)
    return windows.reshape(-1, windows.shape[2])


def _windows(maps: np.ndarray, size: int, stride: int, ho: int, wo: int) -> np.ndarray:
    """A read-only (n, H_out, W_out, size, size, C) view of every window of a contiguous map."""
    sn, sy, sx, sc = maps.strides
    return np.lib.stride_tricks.as_strided(
        maps, (maps.shape[0], ho, wo, size, size, maps.shape[3]),
        (sn, sy * stride, sx * stride, sy, sx, sc), writeable=False)


def col2im(rows: np.ndarray, in_shape: tuple[int, int, int, int], kernel: int, stride: int,
           padding: int) -> np.ndarray:
    """The adjoint of `im2col_rows`: window-row gradients summed back onto the (n, H, W, C) map."""
    n, h, w, c = in_shape
    ho, wo = _out_size(h, kernel, stride, padding), _out_size(w, kernel, stride, padding)
    taps = rows.reshape(n, ho, wo, kernel * kernel, c)
    padded = np.zeros((n, h + 2 * padding, w + 2 * padding, c))
    span_y, span_x = stride * (ho - 1) + 1, stride * (wo - 1) + 1
    for k in range(kernel * kernel):
        ky, kx = divmod(k, kernel)
        padded[:, ky:ky + span_y:stride, kx:kx + span_x:stride, :] += taps[:, :, :, k, :]
    return padded[:, padding:padding + h, padding:padding + w, :]


def pool_forward(maps: np.ndarray, mode: str, size: int, stride: int,
         exact: bool = True) -> tuple[np.ndarray, Any]:
    """(n, H, W, C) -> pooled (n, H_out, W_out, C) and what `pool_backward` needs. max: the largest
    value of each window; avg: floor(sum / size^2) on codes (unrounded with exact=False). On
    codes the value is conv.pool's."""
    n, h, w, c = maps.shape
    ho, wo = _out_size(h, size, stride), _out_size(w, size, stride)
    taps = _windows(np.ascontiguousarray(maps), size, stride, ho, wo).reshape(
        n, ho, wo, size * size, c)     # window element k = dy*size + dx
    geometry = (maps.shape, mode, size, stride)
    if mode == "max":
        first = taps.argmax(axis=3)     # the first largest code in raster order takes the gradient
        return taps.max(axis=3), (geometry, first)
    mean = taps.sum(axis=3) / (size * size)
    return (np.floor(mean) if exact else mean), (geometry, None)


def pool_backward(g: np.ndarray, cache: Any) -> np.ndarray:
    """Gradient w.r.t. the pool's input map, given the gradient w.r.t. its output."""
    (shape, mode, size, stride), first = cache
    ho, wo = g.shape[1], g.shape[2]
    span_y, span_x = stride * (ho - 1) + 1, stride * (wo - 1) + 1
    out = np.zeros(shape)
    for k in range(size * size):
        dy, dx = divmod(k, size)
        share = g * (first == k) if mode == "max" else g / (size * size)
        out[:, dy:dy + span_y:stride, dx:dx + span_x:stride, :] += share
    return out


class ConvChipModel(ChipModel):
    """`ChipModel` for a network of conv / pool / flatten / dense stages (`NetworkConfig.stages`,
    or other `LayerSpec`s). forward / backward keep ChipModel's signatures, so the
    quantisation-aware loop, `sums_in_chunks` and `calibrate_requant` drive it unchanged; the sums
    of a conv are (n, H_out, W_out, C_out)."""

    eval_chunk = CONV_EVAL_CHUNK

    def __init__(self, cfg: ChipConfig, stages: Sequence[LayerSpec] | None = None) -> None:
        self.stages = tuple(cfg.network.stages if stages is None else stages)
        weighted = [s for s in self.stages if s.weight_layer is not None]
        super().__init__(cfg, [s.weight_shape for s in weighted], [s.activation for s in weighted])

    def forward(self, lev: list[np.ndarray], mult: list[int], width: list[float], x: np.ndarray,
                keep: bool = False, exact: bool = True,
                noisy: bool = False) -> tuple[list[np.ndarray], list[Any]]:
        """Sums of every weight layer up to len(lev) for image codes x (n, H*W*C_in) in HWC
        order; with `keep`, what backward needs."""
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0]
        maps = x.reshape(n, *self.stages[0].in_shape)
        last = len(self.shapes) - 1
        sums: list[np.ndarray] = []
        cache: list[Any] = []
        for stage in self.stages:
            if stage.kind == "pool":
                maps, pooled = pool_forward(maps, stage.mode, stage.kernel, stage.stride, exact)
                cache.append((stage, pooled))
                continue
            if stage.kind == "flatten":
                cache.append((stage, None))
                continue
            layer = stage.weight_layer
            if layer >= len(lev):
                break
            rows = (im2col_rows(maps, stage.kernel, stage.stride, stage.padding) if stage.kind == "conv"
                    else maps.reshape(n, -1))
            s, masks = self.vmm(layer, lev[layer], rows, keep=keep, exact=exact, noisy=noisy)
            act_mask, act_gain = None, 0.0
            if layer < last:
                y, act_mask, act_gain = self.activate(layer, s, mult, width, keep=keep, exact=exact)
                maps = y.reshape(n, *stage.out_shape)
            sums.append(s.reshape(n, *stage.out_shape) if stage.kind == "conv" else s)
            if keep:
                cache.append((stage, (rows, masks, act_mask, act_gain)))
        if not keep:
            cache = []
        return sums, cache

    def backward(self, lev: list[np.ndarray], cache: list[Any], ds: np.ndarray) -> list[np.ndarray]:
        """Gradients w.r.t. every weight layer's signed levels, given dLoss/ds of the last
        layer's sums (a full forward pass with keep=True)."""
        grads: list[np.ndarray] = [np.empty(0)] * len(lev)
        last = len(self.shapes) - 1
        g = ds
        for stage, entry in reversed(cache):
            if stage.kind == "pool":
                g = pool_backward(g, entry)
                continue
            if stage.kind == "flatten":
                g = g.reshape(g.shape[0], *stage.in_shape)
                continue
            layer = stage.weight_layer
            rows, masks, act_mask, act_gain = entry
            n = g.shape[0]
            g = g.reshape(rows.shape[0], -1)
            if layer < last:
                g = g * act_mask * act_gain
            first = stage is self.stages[0]
            grads[layer], drows = self.vmm_backward(layer, lev[layer], rows, masks, g,
                                                    inputs=not first)
            if drows is None:
                break
            if stage.kind == "conv":
                g = col2im(drows, (n, *stage.in_shape), stage.kernel, stage.stride, stage.padding)
            else:
                g = drows.reshape(n, *stage.in_shape)
        return grads


def chip_model(cfg: ChipConfig) -> ChipModel:
    """The training forward pass of cfg's network: ConvChipModel for the layered form, the dense
    ChipModel otherwise (bit for bit today's)."""
    return ConvChipModel(cfg) if cfg.network.layered else ChipModel(cfg)
