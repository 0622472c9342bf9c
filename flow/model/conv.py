"""The convolution walk of the chip, on DAC codes: im2col windows, pooling, and the order of
VMM events (CNN_SPEC.md section 2). The golden model runs these; training's forward pass can
too (the same orders, so the weights it learns mean on the chip what they meant in training).

Maps are int arrays shaped (n, H, W, C): element (y, x, c) of image k is maps[k, y, x, c], the
HWC order of the feature-map memory (address base + (y*W + x)*C + c).

* `im2col`: window row r = (ky*K + kx)*C_in + c of output position p = oy*W_out + ox reads input
  (oy*S - P + ky, ox*S - P + kx, c), code 0 outside the map (zero padding).
* `pool`: output (py, px, c) over inputs (py*S + dy, px*S + dx, c), no padding; max = the
  largest code, avg = floor(sum / size^2) = sum >> log2(size^2).
* `vmm_events`: event j of an image, in execution order: weight layers in order, a layer's
  positions in raster order (oy outer), per position the layer's tiles in `cfg.tiles` order.
  Its ADC noise event index is e = i * events_per_image + j.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.config import ChipConfig

__all__ = ["VmmEvent", "im2col", "layer_event_offsets", "pool", "vmm_events"]


def im2col(maps: np.ndarray, kernel: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """(n, H, W, C) codes -> (n, H_out * W_out, K*K*C) windows, positions in raster order."""
    x = np.asarray(maps)
    if x.ndim != 4:
        raise ValueError(f"maps must be shaped (n, H, W, C), got {x.shape}")
    n, h, w, c = x.shape
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho = (h + 2 * padding - kernel) // stride + 1
    wo = (w + 2 * padding - kernel) // stride + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kernel} does not fit a {h}x{w} map with padding {padding}")
    # (n, ho, wo, K, K, C): axes (ky, kx, c) give the row order; one strided copy per (ky, kx)
    out = np.empty((n, ho, wo, kernel, kernel, c), dtype=x.dtype)
    for ky in range(kernel):
        for kx in range(kernel):
            out[:, :, :, ky, kx, :] = x[:, ky:ky + stride * (ho - 1) + 1:stride,
                                        kx:kx + stride * (wo - 1) + 1:stride, :]
    return out.reshape(n, ho * wo, kernel * kernel * c)


def pool(maps: np.ndarray, mode: str, size: int, stride: int) -> np.ndarray:
    """(n, H, W, C) codes -> (n, H_out, W_out, C) int64: max, or avg as a floor shift."""
    x = np.asarray(maps, dtype=np.int64)
    if x.ndim != 4:
        raise ValueError(f"maps must be shaped (n, H, W, C), got {x.shape}")
    _, h, w, _ = x.shape
    ho, wo = (h - size) // stride + 1, (w - size) // stride + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"pool window {size} does not fit a {h}x{w} map")
    view = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))
    view = view[:, ::stride, ::stride][:, :ho, :wo]            # (n, ho, wo, C, size, size)
    if mode == "max":
        return view.max(axis=(4, 5))
    if mode == "avg":
        shift = (size * size).bit_length() - 1
        if 1 << shift != size * size:
            raise ValueError(f"avg pool needs size*size a power of two, got {size}x{size}")
        return view.sum(axis=(4, 5)) >> shift
    raise ValueError(f"pool mode must be max or avg, got '{mode}'")


@dataclass(frozen=True)
class VmmEvent:
    """One VMM of an inference: tile `tile` of weight layer `layer` at output position
    `position` (= oy * W_out + ox; 0 for a dense layer); `index` = j, its place in the image's
    execution order."""
    index: int
    tile: int
    layer: int
    position: int
    oy: int
    ox: int


def vmm_events(cfg: ChipConfig) -> tuple[VmmEvent, ...]:
    """Every VMM event of one inference in execution order (len = cfg.events_per_image)."""
    events: list[VmmEvent] = []
    for stage in cfg.network.weight_stages:
        layer = stage.weight_layer
        tiles = [t.index for t in cfg.tiles if t.layer == layer]
        wo = stage.out_shape[1]
        for p in range(stage.positions):
            for t in tiles:
                events.append(VmmEvent(len(events), t, layer, p, p // wo, p % wo))
    return tuple(events)


def layer_event_offsets(cfg: ChipConfig) -> tuple[int, ...]:
    """Index j of each weight layer's first VMM event (its positions x tiles follow)."""
    per_layer = [0] * len(cfg.network.layer_shapes)
    for t in cfg.tiles:
        per_layer[t.layer] += 1
    offsets, acc = [], 0
    for p, n in zip(cfg.network.positions, per_layer):
        offsets.append(acc)
        acc += p * n
    return tuple(offsets)
