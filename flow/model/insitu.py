"""In-situ training with the Manhattan rule on the device programming model (train.method "manhattan").

The paper's in-situ option (Prezioso et al., Nature 521, 61 (2015); reviewed in Aguirre et al.
2024): the network is trained on the crossbar itself, and every weight update is the SIGN of its
gradient, written as one fixed-amplitude pulse per device of the differential pair, with no
write-verify. Here the crossbar is `xbarflow.analog_models.programming.DeviceArray`, the same QMM-like
device model the write-verify path programs (logistic set/reset rates, d2d spread, keyed c2c
draws, stuck-at faults and dead partitions, all from the config's seeds).

* Devices: one `DeviceArray` per tile of `cfg.tiles`, cut as `GoldenChip` cuts a layer (rows
  [row_start, row_stop), column 2k = G+ and 2k + 1 = G- of output k). Tile 0 is `DeviceArray(cfg)`
  itself (for the SLP: exactly the devices `xbarflow program` writes); `DeviceArray` keys its
  draws by seeds.device and the cell only, so tile t > 0 gets a seeds.device derived from
  (seeds.device, TAG, TILE_KEY, t), or all tiles would be the same devices.
* Start: pristine devices (every cell at g_off, so W = 0; stuck-on cells at g_on). A network with
  hidden layers cannot start there (all-zero weights give all-zero gradients), so hidden layers
  first get 0..train.manhattan_init_pulses set pulses per device, drawn from seeds.train (the
  last layer stays pristine, which is enough to break the symmetry); counted as `init_pulses`.
* Step (one minibatch of train.manhattan_batch images, reshuffled every epoch from seeds.train):
  the chip's forward pass (`xbarflow.flow.model.forward.ChipModel`, the arithmetic of
  flow/model/golden.py on an ideal crossbar) on the devices' own differential conductances in level units, (G+ - G-) / level
  step: DAC codes in, per-tile ADC rounding and saturation, integer sums, requantising ReLU;
  loss softmax cross-entropy of s_L / LOGIT_CODES; straight-through backward (stops at the ADC
  rails and the ReLU clip). Every pair whose |dL/dW| exceeds train.manhattan_threshold times
  its layer's largest |dL/dW| gets one pulse on each device: dL/dW < 0 -> set G+ (amplitude
  programming.v_set) and reset G- (-programming.v_reset); dL/dW > 0 -> reset G+, set G-.
  c2c is keyed by each cell's own pulse count, as on the write path. The ADC noise and the wire
  resistance are left out of the training forward pass (the noise is 0 in the shipped configs;
  1 ohm moves the column currents by ~1e-6); the golden evaluations below include the wire.
  A hidden layer's requantiser register (digital, written by the host) is recalibrated as in
  qat (calib_percentile of the positive sums -> dac_max) at the start of every epoch and at
  the end.

What the golden model infers with (two routes, both kept). `GoldenChip.from_weights` and everything
built on it (the weights cache, the demo, the write-verify targets, the RTL's programming path)
only express the paper's mapping: per pair one device at g_off and the other at one of
`weight_levels` targets, each layer normalised by its own max - min. A trained pair has both
devices above g_off and a continuous difference (up to g_on - g_off, ~34.6 level steps each way,
where the mapping's whole span is 31 steps), which that mapping cannot hold. So the returned
`Weights` carry both:

* `device_conductance` (+ `device_requant_mult`, calibrated on it): the trained devices' own
  conductances, saved in the weights file; `device_chip(cfg, weights)` is the golden chip on
  them (wire resistance and ADC of the config it is given). This is the in-situ figure,
  `meta["device_golden_test_accuracy"]`, re-evaluated by `xbarflow train` as
  device_golden_test_accuracy.
* `layers`: the trained differential conductances in level units, (G+ - G-) / level step, so
  `map_weights` / `from_weights` round them to the nearest levels of the span-normalised grid (a
  common scale change, which argmax ignores; the hidden requantiser register `requant_mult` is
  recalibrated for the mapped weights). `meta["mapped_golden_test_accuracy"]`, printed by
  `xbarflow train` as golden_test_accuracy: what the chip reaches if the in-situ result is
  written to fresh devices with write-verify.

Measured (full MNIST, 14x14, 4-bit DAC, golden on the 10k test set, wire resistance on;
README "In-situ Manhattan rule"; default knobs 5 epochs, batch 300, threshold 0.35):
    slp:                      device state 90.82 %, mapped to 32 levels 90.28 %; 1,000 steps,
                              252,620 pulses, ~5 s on 2 cores
    mlp, batch 100, 10 epochs: device state 94.92 %, mapped 94.82 %; 6,000 steps, 5.4 M pulses
                              (+ 0.4 M init), ~100 s
against 92.21 % / 97.72 % ex-situ. The limits are the pulse granularity (a v_set pulse from g_off
moves a device by ~1 level step; every selected weight moves by that much whatever its
gradient), the state-dependent, nonlinear steps (set ~ k_set (1 - lambda), reset
~ k_reset lambda: equal rates pull every weight towards 0, a weak reset lets both devices of a
pair drift up), and for the MLP the sparse updates (10-23 % of the devices ever pulsed); not the
c2c/d2d spread (0.1 each; setting both to 0 changes nothing measurable).

What the weights' training digest hashes for this recipe (and its version,
INSITU_RECIPE_VERSION) is in flow/model/weights.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from xbarflow.analog_models.programming import TAG, DeviceArray, level_step
from ..core.config import ChipConfig
from ..data import Dataset, to_dac_codes
from .forward import CALIB_IMAGES, ChipModel, analog_gain, calibrate_requant, training_set
from .golden import GoldenChip
from .weights import Weights, dataset_fingerprint, training_digest

__all__ = [
    "INIT_KEY", "InsituResult", "LOGIT_CODES", "PairCells", "PulsePlan", "TILE_KEY", "apply_plan",
    "device_chip", "differential_levels", "layer_conductances", "mapped_weights", "pair_cells",
    "pulse_plan", "random_init", "tile_config", "tile_devices", "train_devices", "train_manhattan",
]

TILE_KEY = 3           # SeedSequence key word of the per-tile device seeds (after TAG)
INIT_KEY = 0x1A17      # key word of the hidden layers' random initial pulses (after seeds.train)
LOGIT_CODES = 8.0      # ADC codes per logit unit in the training loss, softmax(s_L / LOGIT_CODES)


# -- the devices: one DeviceArray per tile ------------------------------------------------------

def tile_config(cfg: ChipConfig, tile: int) -> ChipConfig:
    """The config whose device draws (d2d, stuck-at, c2c) are tile `tile`'s.

    Tile 0 is `cfg` itself, so the SLP's in-situ devices are exactly `DeviceArray(cfg)`, the
    devices the write-verify path programs. `DeviceArray` keys its draws by seeds.device and the
    cell only, so the other tiles of a tiled network get their own seeds.device, derived from
    (seeds.device, TAG, TILE_KEY, tile); otherwise every tile would be the same devices."""
    if tile == 0:
        return cfg
    seed = int(np.random.SeedSequence([cfg.seeds.device, TAG, TILE_KEY, tile]).generate_state(1)[0])
    return cfg.replace(**{"seeds.device": seed})


def tile_devices(cfg: ChipConfig) -> list[DeviceArray]:
    """Pristine devices of every tile in `cfg.tiles` order (all at g_off but stuck-on cells)."""
    return [DeviceArray(tile_config(cfg, spec.index)) for spec in cfg.tiles]


def layer_conductances(cfg: ChipConfig, devices: list[DeviceArray]) -> list[np.ndarray]:
    """Per layer the (n_in, 2 n_out) conductances (S) the tiles hold, cut as GoldenChip cuts
    them: tile rows [row_start, row_stop), physical columns 2*out_start .. 2*out_stop - 1."""
    out = [np.empty((n_in, 2 * n_out)) for n_in, n_out in cfg.network.layer_shapes]
    for spec in cfg.tiles:
        g = devices[spec.index].conductance()
        out[spec.layer][spec.row_start:spec.row_stop, 2 * spec.out_start:2 * spec.out_stop] = \
            g[:spec.rows, :2 * spec.outputs]
    return out


def differential_levels(cfg: ChipConfig, conductances: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer (G+ - G-) / level step: the signed weight each pair realises, in level units
    (what `map_weights(...).signed_levels` is for ex-situ weights, here not rounded)."""
    step = level_step(cfg)
    return [(g[:, 0::2] - g[:, 1::2]) / step for g in conductances]


@dataclass(frozen=True)
class PairCells:
    """Where weight (i, k) of a layer lives: tile index, local row, local column of G+ (G- is
    the next column), each an (n_in, n_out) int array."""
    tile: np.ndarray
    row: np.ndarray
    col: np.ndarray


def pair_cells(cfg: ChipConfig) -> list[PairCells]:
    out = []
    for layer, (n_in, n_out) in enumerate(cfg.network.layer_shapes):
        tile, row, col = (np.zeros((n_in, n_out), dtype=np.int64) for _ in range(3))
        for spec in cfg.tiles:
            if spec.layer != layer:
                continue
            block = (slice(spec.row_start, spec.row_stop), slice(spec.out_start, spec.out_stop))
            tile[block] = spec.index
            row[block] = np.arange(spec.rows)[:, None]
            col[block] = 2 * np.arange(spec.outputs)[None, :]
        out.append(PairCells(tile, row, col))
    return out


# -- the Manhattan update ------------------------------------------------------------------------

@dataclass(frozen=True)
class PulsePlan:
    """One step's pulses: cell k is (tile[k], row[k], col[k]) and gets one pulse of amplitude
    amp[k] (V, > 0 set, < 0 reset). `pairs[l]` is the number of layer l's pairs pulsed."""
    tile: np.ndarray
    row: np.ndarray
    col: np.ndarray
    amp: np.ndarray
    pairs: tuple[int, ...]


def pulse_plan(cfg: ChipConfig, cells: list[PairCells], grads: list[np.ndarray],
               threshold: float) -> PulsePlan:
    """The Manhattan rule: every pair (i, k) of layer l with |g| > threshold * max |g_l| moves
    one step against its gradient: dL/dW < 0 -> set G+ (programming.v_set) and reset G-
    (-programming.v_reset); dL/dW > 0 -> reset G+ and set G-. Only the sign of g is used; one
    fixed-amplitude pulse per device, no verify."""
    v_set = cfg.programming.amplitude(0, True)
    v_reset = cfg.programming.amplitude(0, False)
    parts: list[tuple[np.ndarray, ...]] = []
    pairs = []
    for pc, g in zip(cells, grads):
        a = np.abs(g)
        top = float(a.max()) if a.size else 0.0
        sel = a > threshold * top if top > 0 else np.zeros(g.shape, dtype=bool)
        up = g[sel] < 0
        t, r, c = pc.tile[sel], pc.row[sel], pc.col[sel]
        parts.append((np.concatenate([t, t]), np.concatenate([r, r]), np.concatenate([c, c + 1]),
                      np.concatenate([np.where(up, v_set, v_reset), np.where(up, v_reset, v_set)])))
        pairs.append(int(sel.sum()))
    tile, row, col, amp = (np.concatenate([p[k] for p in parts]) for k in range(4))
    return PulsePlan(tile, row, col, amp, tuple(pairs))


def apply_plan(devices: list[DeviceArray], plan: PulsePlan) -> None:
    """Fire a plan: one `DeviceArray.pulse_cells` per tile (each cell at most once per step)."""
    for t in np.unique(plan.tile):
        m = plan.tile == t
        devices[int(t)].pulse_cells(plan.row[m], plan.col[m], plan.amp[m])


def random_init(cfg: ChipConfig, devices: list[DeviceArray]) -> int:
    """Hidden layers: every used device gets a random 0..manhattan_init_pulses set pulses
    (seeds.train), so the hidden units differ; the last layer stays pristine (at g_off, W = 0),
    which is enough to break the symmetry. Returns the number of pulses."""
    n_max = cfg.train.manhattan_init_pulses
    last = len(cfg.network.layers) - 1
    if n_max == 0 or last == 0:
        return 0
    rng = np.random.default_rng([cfg.seeds.train, INIT_KEY])
    v_set = cfg.programming.amplitude(0, True)
    total = 0
    for spec in cfg.tiles:
        if spec.layer == last:
            continue
        n = rng.integers(0, n_max + 1, size=(spec.rows, 2 * spec.outputs))
        for j in range(n_max):
            r, c = np.nonzero(n > j)
            devices[spec.index].pulse_cells(r, c, v_set)
            total += r.size
    return total


# -- training ----------------------------------------------------------------------------------

@dataclass
class InsituResult:
    """The trained devices and what it took."""
    devices: list[DeviceArray]
    conductances: list[np.ndarray]     # per layer (n_in, 2 n_out), S: what the chip infers with
    requant_mult: tuple[int, ...]      # calibrated on the device state (one per hidden layer)
    init_pulses: int
    pulses_per_epoch: list[int]        # training pulses (device events) per epoch
    training_pulses: list[np.ndarray]  # per tile (R, C): pulses each cell got in training (no init)
    steps: int
    loss_history: list[float]          # mean training loss per epoch (before each step's pulses)
    seconds: float


def _loss_and_ds(s_last: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = s_last / LOGIT_CODES
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(len(y)), y] + 1e-300).sum())
    p[np.arange(len(y)), y] -= 1.0
    return loss, p / (len(y) * LOGIT_CODES)


def train_devices(cfg: ChipConfig, dataset: Dataset) -> InsituResult:
    """Manhattan-rule training of fresh devices; deterministic from seeds.train and seeds.device."""
    t0 = time.perf_counter()
    tc = cfg.train
    model, codes, labels, calib = training_set(cfg, dataset)
    n = len(labels)
    hidden = len(cfg.network.layers) - 1
    mult, width = [0] * hidden, [1.0] * hidden
    devices = tile_devices(cfg)
    cells = pair_cells(cfg)
    init_pulses = random_init(cfg, devices)
    init_counts = [d.pulse_count.copy() for d in devices]
    rng = np.random.default_rng(cfg.seeds.train)

    def lev_now() -> list[np.ndarray]:
        return differential_levels(cfg, layer_conductances(cfg, devices))

    pulses_per_epoch, history = [], []
    steps = 0
    for _ in range(tc.manhattan_epochs):
        calibrate_requant(model, lev_now(), mult, width, calib, tc.calib_percentile)
        order = rng.permutation(n)
        loss_sum, pulses = 0.0, 0
        for start in range(0, n, tc.manhattan_batch):
            idx = order[start:start + tc.manhattan_batch]
            lev = lev_now()
            sums, cache = model.forward(lev, mult, width, codes[idx], keep=True)
            loss, ds = _loss_and_ds(sums[-1], labels[idx])
            loss_sum += loss
            plan = pulse_plan(cfg, cells, model.backward(lev, cache, ds), tc.manhattan_threshold)
            apply_plan(devices, plan)
            pulses += plan.amp.size
            steps += 1
        pulses_per_epoch.append(pulses)
        history.append(round(loss_sum / n, 5))
    calibrate_requant(model, lev_now(), mult, width, calib, tc.calib_percentile)
    return InsituResult(devices=devices, conductances=layer_conductances(cfg, devices),
                        requant_mult=tuple(mult), init_pulses=init_pulses,
                        pulses_per_epoch=pulses_per_epoch,
                        training_pulses=[d.pulse_count - c for d, c in zip(devices, init_counts)],
                        steps=steps, loss_history=history,
                        seconds=time.perf_counter() - t0)


def device_chip(cfg: ChipConfig, weights: Weights):
    """The golden chip on the trained devices' own conductances (`weights.device_conductance`,
    with the registers calibrated on them), under cfg's wire resistance and ADC."""
    if not weights.device_conductance:
        raise ValueError("these weights carry no device state (not trained in situ)")
    return GoldenChip(cfg, list(weights.device_conductance),
                      weights.device_requant_mult if len(weights.device_conductance) > 1 else None)


def mapped_weights(cfg: ChipConfig, result: InsituResult, calib: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[int, ...]]:
    """The device state as `Weights` layers (differential conductance in level units) and the
    requantiser registers recalibrated for their level mapping."""
    model = ChipModel(cfg)
    layers = tuple(differential_levels(cfg, result.conductances))
    hidden = len(layers) - 1
    mult, width = [0] * hidden, [1.0] * hidden
    calibrate_requant(model, [model.levels(w) for w in layers], mult, width, calib,
               cfg.train.calib_percentile)
    return layers, tuple(mult)


def train_manhattan(cfg: ChipConfig, dataset: Dataset) -> Weights:
    """In-situ Manhattan-rule training; Weights whose level mapping is the nearest-level image of
    the trained device state (see the module docstring), figures in meta."""
    result = train_devices(cfg, dataset)
    codes = to_dac_codes(dataset.x_train[:CALIB_IMAGES], cfg).astype(np.float64)
    layers, mult = mapped_weights(cfg, result, codes)
    test_codes = to_dac_codes(dataset.x_test, cfg)
    y_test = np.asarray(dataset.y_test)
    weights = Weights(w=layers[0], config_digest=training_digest(cfg), layers=layers,
                      requant_mult=mult, device_conductance=tuple(result.conductances),
                      device_requant_mult=result.requant_mult)
    device_acc = float(np.mean(device_chip(cfg, weights).infer(test_codes).classes == y_test))
    mapped_acc = float(np.mean(GoldenChip.from_weights(cfg, weights).infer(test_codes).classes == y_test))
    # training pulses of every used device (the init pulses are counted in init_pulses)
    used = np.concatenate([c[:spec.rows, :2 * spec.outputs].ravel()
                           for c, spec in zip(result.training_pulses, cfg.tiles)])
    total = sum(result.pulses_per_epoch)
    weights.meta = {
        "method": "manhattan",
        "seconds": round(result.seconds, 3),
        "train_images": int(len(dataset.y_train)),
        "dataset": dataset_fingerprint(dataset),
        "epochs": cfg.train.manhattan_epochs,
        "batch": cfg.train.manhattan_batch,
        "threshold": cfg.train.manhattan_threshold,
        "steps": result.steps,
        "train_loss_history": result.loss_history,
        "init_pulses": result.init_pulses,
        "pulses_per_epoch": result.pulses_per_epoch,
        "pulses_total": total,
        "pulses_per_step": round(total / max(result.steps, 1), 1),
        "pulses_per_device_mean": round(float(used.mean()), 2),
        "pulses_per_device_max": int(used.max()),
        "devices_pulsed_fraction": round(float(np.mean(used > 0)), 4),
        "device_requant_mult": list(result.requant_mult),
        "requant_mult": list(mult),
        "analog_codes_per_unit": analog_gain(cfg),
        "device_golden_test_accuracy": device_acc,
        "mapped_golden_test_accuracy": mapped_acc,
    }
    return weights
