"""Golden model: a bit-exact numpy twin of the whole chip, single- or multi-layer, tiled.

The analog part is the very same `AnalogArray` objects the cocotb bridge serves the RTL with,
and the digital part mirrors the RTL step by step, so the co-simulation must agree with it image
by image: same DAC codes in, same ADC codes, same sums and activations, same class.

Hardware arithmetic (fixed by the architecture; the RTL implements the same):

* Layer l maps n_in -> n_out with weights W_l (no bias). Layer 0 reads the image's DAC codes,
  layer l > 0 the activation codes of layer l - 1; all inputs are codes in [0, dac_max].
* Each layer is mapped on its own (`map_weights`: normalised by its own max - min) to
  (n_in, 2 n_out) conductances, column 2k = G+ and 2k + 1 = G- of output k.
* Tiling (`ChipConfig.tiles`): rows split into contiguous row tiles of `tile_rows`, outputs into
  column tiles of `tile_cols / 2`; tiles are numbered layer, column tile, row tile, which is the
  order the controller drives them and the value of `tile_sel`. Each tile is its own
  `AnalogArray` over its conductance block, with min(partitions, tile rows) row partitions.
* ADC noise of tile t for image i is keyed by (seeds.noise, tile t, event e) with
  e = i * total_tiles + t (i = the image's event index given to `infer`). For one tile this is
  the image index, as before tiling existed.
* Digital accumulation: s_l[k] = sum over row tiles of that tile's signed ADC code of output k.
* Hidden activation: relu   y = clip((s * mult_l) >> requant_shift, 0, dac_max), `>>` an
  arithmetic shift (floor division), mult_l an unsigned requant_mult_bits-bit register;
  binary y = dac_max if s > 0 else 0.
* Last layer: class = argmax of s_L, lowest index wins ties. `GoldenResult.adc_codes` holds
  s_L (for a one-tile layer these are the ADC codes themselves).

The layered form (conv, pool, flatten, dense; CNN_SPEC.md) runs the same tiles and digital
steps once per output position (flow/model/conv.py has the walk): a conv layer's tiles hold its
im2col matrix (K*K*C_in, C_out); each position's window is driven onto the layer's tiles in
`cfg.tiles` order, the sums over row tiles are activated into the layer's output map (HWC),
pooling works on codes, flatten moves nothing, dense layers read the map before them. VMM event
j of image i (execution order, `conv.vmm_events`) draws ADC noise with event index
e = i * events_per_image + j; for a dense network that is e = i * total_tiles + t, as above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xbarflow.analog_models.adc import event_indices
from xbarflow.analog_models.array import AnalogArray
from xbarflow.analog_models.mapping import Mapping, map_weights

from ..core.config import ChipConfig, TileSpec
from .conv import VmmEvent, im2col, layer_event_offsets, pool, vmm_events

__all__ = ["GoldenChip", "GoldenResult", "GoldenTrace", "Tile", "activate", "argmax_lowest",
           "binary_activation", "requantize_relu", "tile_event_indices"]

#: Rows (images x positions) of one batched tile read: bounds the memory of a conv layer's VMMs.
#: Results do not depend on it (every read is exact whatever the batch).
VMM_CHUNK_ROWS = 1 << 16
#: Images of a layered network run together when no trace is kept (memory only, as above).
IMAGE_CHUNK = 256


@dataclass(frozen=True)
class GoldenTrace:
    """Every intermediate result of a batch, in the order the chip produces them.

    Dense network: tile_events[:, t] is the noise event index of tile t for each image;
    tile_adc_codes[t] the (n, tile outputs) signed ADC codes of tile t; sums[l] the (n, n_out)
    digital sums of layer l; activations[l] the (n, n_out) codes of hidden layer l (inputs of
    layer l + 1).

    Layered network: every weight layer runs at P_l output positions, so tile_events is
    (n, events_per_image), the noise event index of VMM event j (`events[j]`); tile_adc_codes[t]
    is (n, P_l, tile outputs), sums[l] and activations[l] are (n, P_l, n_out) (position
    p = oy * W_out + ox); feature_maps[m] the (n, H, W, C) codes of map m of
    `cfg.network.feature_maps` (map 0 the image).

    Both forms: `events` lists every VMM event in execution order and windows[l] holds the
    (n, P_l, n_in) codes layer l drives (a dense layer: P_l = 1, its input codes); per event,
    `event_dac_codes(j)` and `event_adc_codes(j)` give what the RTL drives and the ADCs return.
    """
    tile_events: np.ndarray
    tile_adc_codes: tuple[np.ndarray, ...]
    sums: tuple[np.ndarray, ...]
    activations: tuple[np.ndarray, ...]
    tiles: tuple[TileSpec, ...]
    events: tuple[VmmEvent, ...] = ()
    windows: tuple[np.ndarray, ...] = ()
    feature_maps: tuple[np.ndarray, ...] = ()
    map_layers: tuple[int, ...] = ()   # per feature map: weight layers done when it is written
    tile_rows: int = 0

    def event_dac_codes(self, j: int) -> np.ndarray:
        """(n, tile_rows) DAC codes driven in VMM event j: the tile's slice of the window,
        zeros past the tile's last row."""
        ev = self.events[j]
        spec = self.tiles[ev.tile]
        part = self.windows[ev.layer][:, ev.position, spec.row_start:spec.row_stop]
        out = np.zeros((part.shape[0], self.tile_rows), dtype=np.int64)
        out[:, :spec.rows] = part
        return out

    def event_adc_codes(self, j: int) -> np.ndarray:
        """(n, tile outputs) signed ADC codes of VMM event j."""
        ev = self.events[j]
        codes = self.tile_adc_codes[ev.tile]
        return codes if codes.ndim == 2 else codes[:, ev.position]

    def steps(self, k: int) -> list[tuple[str, np.ndarray]]:
        """Image k's results in execution order, named "tile<t>", "sum<l>", "act<l>": compare a
        co-simulated run against it in order and the first mismatch is the first divergent step.
        Layered networks: "vmm<j>" (event j's ADC codes), "sum<l>" after each weight layer and
        "map<m>" for each feature map as it is written."""
        out: list[tuple[str, np.ndarray]] = []
        if self.feature_maps:
            return self._layered_steps(k)
        layers = len(self.sums)
        for layer in range(layers):
            for spec in self.tiles:
                if spec.layer == layer:
                    out.append((f"tile{spec.index}", self.tile_adc_codes[spec.index][k]))
            out.append((f"sum{layer}", self.sums[layer][k]))
            if layer < layers - 1:
                out.append((f"act{layer}", self.activations[layer][k]))
        return out

    def _layered_steps(self, k: int) -> list[tuple[str, np.ndarray]]:
        out: list[tuple[str, np.ndarray]] = [("map0", self.feature_maps[0][k])]
        for layer in range(len(self.sums)):
            for ev in self.events:
                if ev.layer == layer:
                    out.append((f"vmm{ev.index}", self.event_adc_codes(ev.index)[k]))
            out.append((f"sum{layer}", self.sums[layer][k]))
            out.extend((f"map{m}", self.feature_maps[m][k])
                       for m, done in enumerate(self.map_layers) if m and done == layer + 1)
        return out


@dataclass(frozen=True)
class GoldenResult:
    adc_codes: np.ndarray  # (n, classes) int64: the last layer's sums s_L (one tile: its ADC codes)
    classes: np.ndarray    # (n,) int64 winning class per image
    trace: GoldenTrace | None = None  # intermediate results when infer(..., trace=True)


@dataclass(frozen=True)
class Tile:
    """One tile of the chip: its place in the network and its analog model."""
    index: int            # global tile number = tile_sel value
    layer: int
    row_tile: int
    col_tile: int
    rows: range           # inputs of the layer driven onto this tile's rows
    outputs: range        # outputs of the layer on this tile; physical columns 2k, 2k + 1
    array: AnalogArray

    @property
    def row_slice(self) -> slice:
        return slice(self.rows.start, self.rows.stop)

    @property
    def out_slice(self) -> slice:
        return slice(self.outputs.start, self.outputs.stop)


# -- the digital steps (bit-exact twins of the RTL) ---------------------------------------------

def argmax_lowest(codes: np.ndarray) -> np.ndarray:
    """The RTL argmax: the first (lowest-index) maximum wins, as `xbarflow.hdl.argmax.Argmax` scans."""
    return np.argmax(np.asarray(codes), axis=-1).astype(np.int64)


def requantize_relu(sums: np.ndarray, mult: int, shift: int, dac_max: int) -> np.ndarray:
    """clip((s * mult) >> shift, 0, dac_max) in int64; `>>` floors (arithmetic shift)."""
    s = np.asarray(sums, dtype=np.int64)
    return np.clip((s * np.int64(mult)) >> np.int64(shift), 0, dac_max).astype(np.int64)


def binary_activation(sums: np.ndarray, dac_max: int) -> np.ndarray:
    """dac_max where s > 0, else 0 (int64)."""
    return np.where(np.asarray(sums) > 0, dac_max, 0).astype(np.int64)


def activate(cfg: ChipConfig, layer: int, sums: np.ndarray, mult: int) -> np.ndarray:
    """Hidden layer `layer`'s activation codes of its sums (relu uses `mult`, binary ignores it)."""
    kind, dac_max = cfg.network.activations[layer], cfg.quant.dac_max
    if kind == "relu":
        return requantize_relu(sums, mult, cfg.network.requant_shift, dac_max)
    if kind == "binary":
        return binary_activation(sums, dac_max)
    raise ValueError(f"layer {layer} has activation '{kind}', not a hidden activation")


def tile_event_indices(image_events: np.ndarray, total_tiles: int, tile: int) -> np.ndarray:
    """Noise event index of `tile` for images with event indices `image_events`."""
    return np.asarray(image_events, dtype=np.int64) * total_tiles + tile


def _layer_list(cfg: ChipConfig, data: Any, what: str) -> list[np.ndarray]:
    """One 2-D array (single-layer network) or a sequence of them -> list, count checked."""
    if isinstance(data, np.ndarray) and data.ndim == 2:
        items = [data]
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        items = [np.asarray(d, dtype=np.float64) for d in data]
    else:
        raise ValueError(f"{what} must be a 2-D array or a sequence of them, one per layer")
    n = len(cfg.network.layers)
    if len(items) != n:
        raise ValueError(f"config '{cfg.name}' has {n} layers, got {len(items)} {what} matrices")
    return items


class GoldenChip:
    """The chip for one config, one set of programmed conductances and requantiser registers."""

    def __init__(self, cfg: ChipConfig, conductance: np.ndarray | Sequence[np.ndarray],
                 requant_mult: Sequence[int] | None = None):
        """`conductance`: per layer (n_in, 2 n_out) in S (a single array for one layer); tiles
        are cut out of it. `requant_mult`: one register value per hidden layer (relu layers; a
        binary layer's entry is ignored, store 0)."""
        self.cfg = cfg
        layers = _layer_list(cfg, conductance, "conductance")
        for layer, (g, (n_in, n_out)) in enumerate(zip(layers, cfg.network.layer_shapes)):
            if g.shape != (n_in, 2 * n_out):
                raise ValueError(f"layer {layer} conductance must be ({n_in}, {2 * n_out}), got {g.shape}")
        self.requant_mult = self._check_mult(cfg, requant_mult)
        self.layer_conductance = tuple(layers)   # per layer (n_in, 2 n_out), what the tiles cut
        tiles = []
        for spec in cfg.tiles:
            block = layers[spec.layer][spec.row_start:spec.row_stop, 2 * spec.out_start:2 * spec.out_stop]
            parts = min(cfg.crossbar.partitions, spec.rows)
            tcfg = cfg if parts == cfg.crossbar.partitions else cfg.replace(**{"crossbar.partitions": parts})
            tiles.append(Tile(spec.index, spec.layer, spec.row_tile, spec.col_tile,
                              range(spec.row_start, spec.row_stop), range(spec.out_start, spec.out_stop),
                              AnalogArray(tcfg, block, tile=spec.index)))
        self.tiles: list[Tile] = tiles

    @staticmethod
    def _check_mult(cfg: ChipConfig, mult: Sequence[int] | None) -> tuple[int, ...]:
        hidden = cfg.network.activations[:-1]
        if mult is None:
            if "relu" in hidden:
                raise ValueError("a network with relu layers needs requant_mult (one per hidden layer)")
            mult = [0] * len(hidden)
        mult = tuple(int(m) for m in mult)
        if len(mult) != len(hidden):
            raise ValueError(f"need {len(hidden)} requant_mult values (one per hidden layer), got {len(mult)}")
        top = (1 << cfg.network.requant_mult_bits) - 1
        for layer, (m, act) in enumerate(zip(mult, hidden)):
            if act == "relu" and not 0 <= m <= top:
                raise ValueError(f"requant_mult[{layer}] = {m} does not fit "
                                 f"{cfg.network.requant_mult_bits} unsigned bits")
        return mult

    @classmethod
    def from_weights(cls, cfg: ChipConfig, weights: Any,
                     requant_mult: Sequence[int] | None = None) -> "GoldenChip":
        """Ideal programming: every device sits exactly at its mapped target conductance.

        `weights`: a `xbarflow.flow.model.weights.Weights` (its layers and requant_mult), a (rows, outputs) array
        for a single-layer network, or a sequence of per-layer arrays (then pass requant_mult)."""
        if hasattr(weights, "layers"):
            if requant_mult is None:
                requant_mult = getattr(weights, "requant_mult", None) or None
            weights = list(weights.layers)
        layers = _layer_list(cfg, weights, "weight")
        return cls(cfg, [m.conductance for m in cls.mappings(cfg, layers)], requant_mult)

    @staticmethod
    def mapping(cfg: ChipConfig, weights: np.ndarray) -> Mapping:
        """Mapping of one layer's weight matrix."""
        return map_weights(weights, cfg)

    @staticmethod
    def mappings(cfg: ChipConfig, weights: Any) -> list[Mapping]:
        """Mapping of every layer (each normalised by its own max - min)."""
        if hasattr(weights, "layers"):
            weights = list(weights.layers)
        return [map_weights(w, cfg) for w in _layer_list(cfg, weights, "weight")]

    @property
    def array(self) -> AnalogArray:
        """The single tile's array (the SLP); a tiled chip has `.tiles` instead."""
        if len(self.tiles) != 1:
            raise AttributeError(f"this chip has {len(self.tiles)} tiles; use GoldenChip.tiles")
        return self.tiles[0].array

    def infer(self, dac_codes: np.ndarray, event_index: int | np.ndarray | None = None, *,
              trace: bool = False) -> GoldenResult:
        """Classify a batch of DAC-code vectors (n, inputs).

        `event_index`: the images' event indices (the index in the test set, as the bench uses),
        an array of n or the first one of a consecutive run; default 0, 1, ... Tile t of image i
        draws its ADC noise with event index i * len(tiles) + t. With `trace`, the result carries
        every intermediate step (`GoldenTrace`)."""
        cfg = self.cfg
        x = np.atleast_2d(np.asarray(dac_codes))
        images = event_indices(0 if event_index is None else event_index, x.shape[0])
        if cfg.network.layered:
            return self._infer_layered(x, images, trace)
        total = len(self.tiles)
        n_layers = len(cfg.network.layers)
        tile_codes: list[np.ndarray] = [np.empty(0)] * total
        sums: list[np.ndarray] = []
        acts: list[np.ndarray] = []
        for layer, (_, n_out) in enumerate(cfg.network.layer_shapes):
            s = np.zeros((x.shape[0], n_out), dtype=np.int64)
            for tile in self.tiles:
                if tile.layer != layer:
                    continue
                codes = tile.array.adc_codes(x[:, tile.row_slice],
                                             tile_event_indices(images, total, tile.index))
                tile_codes[tile.index] = codes
                s[:, tile.out_slice] += codes
            sums.append(s)
            if layer < n_layers - 1:
                x = activate(cfg, layer, s, self.requant_mult[layer])
                acts.append(x)
        result_trace = None
        if trace:
            events = np.stack([tile_event_indices(images, total, t) for t in range(total)], axis=1)
            inputs = [np.atleast_2d(np.asarray(dac_codes)), *acts]
            result_trace = GoldenTrace(events, tuple(tile_codes), tuple(sums), tuple(acts), cfg.tiles,
                                       events=vmm_events(cfg),
                                       windows=tuple(v[:, None, :] for v in inputs),
                                       tile_rows=cfg.crossbar.tile_rows)
        return GoldenResult(adc_codes=sums[-1], classes=argmax_lowest(sums[-1]), trace=result_trace)

    def _infer_layered(self, x: np.ndarray, images: np.ndarray, trace: bool) -> GoldenResult:
        """The layered network (conv, pool, flatten, dense), stage by stage on (n, H, W, C) maps."""
        cfg, net = self.cfg, self.cfg.network
        if x.ndim != 2 or x.shape[1] != net.inputs:
            raise ValueError(f"DAC codes must be shaped (n, {net.inputs}) for config "
                             f"'{cfg.name}', got {x.shape}")
        n = x.shape[0]
        if not trace and n > IMAGE_CHUNK:   # memory: a conv layer's windows are P x K*K*C codes
            parts = [self._infer_layered(x[a:a + IMAGE_CHUNK], images[a:a + IMAGE_CHUNK], False)
                     for a in range(0, n, IMAGE_CHUNK)]
            final = np.concatenate([r.adc_codes for r in parts])
            return GoldenResult(adc_codes=final, classes=np.concatenate([r.classes for r in parts]))
        current = x.astype(np.int64).reshape(n, net.input_size, net.input_size, net.input_channels)
        maps, map_layers = [current], [0]
        offsets = layer_event_offsets(cfg)
        per_event = cfg.events_per_image
        tile_codes: list[np.ndarray] = [np.empty(0)] * len(self.tiles)
        sums: list[np.ndarray] = []
        acts: list[np.ndarray] = []
        windows: list[np.ndarray] = []
        last = len(net.stages) - 1
        for i, stage in enumerate(net.stages):
            if stage.kind == "pool":
                current = pool(current, stage.mode, stage.kernel, stage.stride)
                maps.append(current)
                map_layers.append(len(sums))
                continue
            if stage.kind == "flatten":
                continue   # HWC order is already the dense layer's input order
            layer = stage.weight_layer
            win = (im2col(current, stage.kernel, stage.stride, stage.padding) if stage.kind == "conv"
                   else current.reshape(n, 1, -1))
            windows.append(win)
            s = self._layer_sums(layer, win, images * per_event + offsets[layer], tile_codes)
            sums.append(s)
            if i == last:
                break
            y = activate(cfg, layer, s, self.requant_mult[layer])
            acts.append(y)
            current = y.reshape(n, *stage.out_shape)
            maps.append(current)
            map_layers.append(len(sums))
        final = sums[-1][:, 0, :]
        result_trace = None
        if trace:
            events = vmm_events(cfg)
            ev_index = images[:, None] * per_event + np.arange(per_event, dtype=np.int64)
            result_trace = GoldenTrace(ev_index, tuple(tile_codes), tuple(sums), tuple(acts),
                                       cfg.tiles, events=events, windows=tuple(windows),
                                       feature_maps=tuple(maps), map_layers=tuple(map_layers),
                                       tile_rows=cfg.crossbar.tile_rows)
        return GoldenResult(adc_codes=final, classes=argmax_lowest(final), trace=result_trace)

    def _layer_sums(self, layer: int, windows: np.ndarray, first_events: np.ndarray,
                    tile_codes: list[np.ndarray]) -> np.ndarray:
        """(n, P, n_out) sums of weight layer `layer` over its windows (n, P, n_in): position p's
        k-th tile of the layer is VMM event first + p * tiles + k of each image (`first_events`:
        each image's event index of the layer's first VMM). Fills tile_codes[t] (n, P, outs)."""
        n, positions, _ = windows.shape
        layer_tiles = [t for t in self.tiles if t.layer == layer]
        n_out = self.cfg.network.layer_shapes[layer][1]
        sums = np.zeros((n, positions, n_out), dtype=np.int64)
        p_events = np.arange(positions, dtype=np.int64) * len(layer_tiles)
        for k, tile in enumerate(layer_tiles):
            events = (first_events[:, None] + p_events[None, :] + k).reshape(-1)
            rows = windows[:, :, tile.row_slice].reshape(n * positions, -1)
            codes = np.empty((n * positions, len(tile.outputs)), dtype=np.int64)
            for a in range(0, rows.shape[0], VMM_CHUNK_ROWS):
                b = a + VMM_CHUNK_ROWS
                codes[a:b] = tile.array.adc_codes(rows[a:b], events[a:b])
            codes = codes.reshape(n, positions, -1)
            tile_codes[tile.index] = codes
            sums[:, :, tile.out_slice] += codes
        return sums
