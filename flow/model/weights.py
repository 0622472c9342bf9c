"""Trained weights as a value and as a file: `Weights`, the training digest that says which config
they fit, the weights file (save / load / cache path) and the shipped reference weights.

A weights file is valid for a config when it was trained for the config's training digest: a
hash of only what training depends on (per recipe, below), so changing e.g. wire resistance
reuses the weights. The recipes themselves live in flow/model/lbfgs.py (the SLP),
flow/model/qat.py (quantisation-aware, multi-layer) and flow/model/insitu.py (Manhattan rule);
each recipe's version constant is here, next to the digest it enters: bump it when the recipe
changes so cached weights from an older recipe are not reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core import paths
from ..core.config import CELL_FIELDS, READ_MODEL_FIELDS, ChipConfig
from ..data import DataError, Dataset
from .forward import analog_gain

__all__ = ["INSITU_RECIPE_VERSION", "QAT_RECIPE_VERSION", "RECIPE_VERSION", "REFERENCE_MANIFEST",
           "Weights", "WeightsError", "cache_path", "dataset_fingerprint", "file_sha256", "load",
           "load_reference", "reference_manifest", "reference_name", "reference_path", "save",
           "training_digest", "weights_path", "write_reference"]

# Bump when a recipe changes so cached weights from an older recipe are not reused.
RECIPE_VERSION = 1          # lbfgs (flow/model/lbfgs.py)
QAT_RECIPE_VERSION = 1      # qat (flow/model/qat.py)
INSITU_RECIPE_VERSION = 1   # manhattan (flow/model/insitu.py)


class WeightsError(DataError):
    """A weights file that cannot be used with this config; one line for the user."""


@dataclass
class Weights:
    """Trained weights of every layer; map_weights(layer) gives its programmed levels.

    `w` is the first layer's matrix (for the SLP: the network). `layers` holds every layer's
    (n_in, n_out) float64 matrix (filled with (w,) when not given), `requant_mult` one unsigned
    register value per hidden layer (0 for a binary layer; empty for the SLP).

    In-situ training (train.method "manhattan", flow/model/insitu.py) also keeps the trained devices'
    own state: `device_conductance` per layer (n_in, 2 n_out) in S and `device_requant_mult`
    calibrated on it (`xbarflow.flow.model.insitu.device_chip` infers with them); empty otherwise.
    """
    w: np.ndarray
    config_digest: str   # training_digest of the config it was trained for
    meta: dict[str, Any] = field(default_factory=dict)
    layers: tuple[np.ndarray, ...] = ()
    requant_mult: tuple[int, ...] = ()
    device_conductance: tuple[np.ndarray, ...] = ()
    device_requant_mult: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.layers:
            self.layers = (self.w,)
        self.layers = tuple(self.layers)
        self.requant_mult = tuple(int(m) for m in self.requant_mult)
        self.device_conductance = tuple(self.device_conductance)
        self.device_requant_mult = tuple(int(m) for m in self.device_requant_mult)



def training_digest(cfg: ChipConfig) -> str:
    """Hash of only what training depends on, so changing e.g. wire resistance reuses weights.

    The SLP recipe (lbfgs) hashes exactly the fields it always did, so its cached weights stay
    valid as the config grows. Quantisation-aware training also depends on the analog scale
    (ADC codes per unit of weighted input), the ADC range and the row tiling (ADC saturation is
    per tile), so those are part of its digest. With `train.device_aware` (both recipes) the
    read model it trains through is too (`_device_read_blob`); the key is absent when false, so
    the digests of linear training are what they always were.
    """
    method = cfg.train.resolved_method(len(cfg.network.layers))
    if method == "manhattan":
        return hashlib.sha256(json.dumps(_insitu_blob(cfg), sort_keys=True).encode()).hexdigest()[:12]
    if method == "lbfgs":
        n, t = cfg.network, cfg.train
        blob = {
            "network": {"input_size": n.input_size, "layers": list(n.layers),
                        "activations": list(n.activations)},
            "quant": cfg.to_dict()["quant"],
            "train": {"l2": t.l2, "maxiter": t.maxiter},
            "seed": cfg.seeds.train,
            "recipe": RECIPE_VERSION,
        }
    else:
        blob = {
            "network": cfg.to_dict()["network"],
            "quant": cfg.to_dict()["quant"],
            # the manhattan_* knobs do not touch qat: leaving them out keeps cached weights valid
            "train": {k: v for k, v in cfg.to_dict()["train"].items()
                      if not k.startswith("manhattan_") and k not in ("device_aware", "weights")},
            "seed": cfg.seeds.train,
            "recipe": QAT_RECIPE_VERSION,
            "analog": {"codes_per_unit": repr(analog_gain(cfg)), "adc_bits": cfg.adc.bits,
                       "tile_rows": cfg.crossbar.tile_rows},
        }
    if cfg.train.device_aware:
        blob["device_aware"] = _device_read_blob(cfg)
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:12]


def dataset_fingerprint(dataset: Dataset) -> str:
    h = hashlib.sha256()
    for a in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


def _device_read_blob(cfg: ChipConfig) -> dict[str, Any]:
    """What device-aware training reads through (flow/model/device_read.py): the QMM parameters
    (the preset only through the qmm_* values it fills in), the level conductances, V_read and
    the analog scale, and the read noise it injects. Not drift or wire resistance: training
    neglects them."""
    d = cfg.to_dict()["device"]
    return {
        "device": {k: d[k] for k in ("read_model", "g_on", "g_off", "qmm_alpha_hrs",
                                     "qmm_alpha_lrs", "qmm_beta", "qmm_rs_hrs", "qmm_rs_lrs",
                                     "read_noise_sigma")},
        "v_read": cfg.crossbar.v_read,
        "codes_per_unit": repr(analog_gain(cfg)),
    }


def _insitu_blob(cfg: ChipConfig) -> dict[str, Any]:
    """What in-situ training depends on: the network, quantisation, training knobs and seed, and
    the physics the devices and the forward pass see (device model and seed, pulse amplitudes,
    tile geometry, the analog scale and ADC). Wire resistance, the cell type and selector, ADC
    noise and their seeds are not: training runs on the ideal crossbar."""
    d = cfg.to_dict()
    return {
        "network": d["network"], "quant": d["quant"],
        # device_aware (lbfgs / qat only) is left out: in-situ digests stay what they were
        "train": {k: v for k, v in d["train"].items() if k not in ("device_aware", "weights")},
        "seed": cfg.seeds.train, "device_seed": cfg.seeds.device,
        # the read model is not seen by in-situ training (ideal linear crossbar)
        "device": {k: v for k, v in d["device"].items() if k not in READ_MODEL_FIELDS},
        "programming": {"v_set": cfg.programming.v_set, "v_reset": cfg.programming.v_reset},
        # the cell type is not seen either (the ideal write): digests stay what they were
        "crossbar": {k: v for k, v in d["crossbar"].items() if k != "wire_r" and k not in CELL_FIELDS},
        "analog": {"codes_per_unit": repr(analog_gain(cfg)), "adc_bits": cfg.adc.bits},
        "recipe": f"insitu-{INSITU_RECIPE_VERSION}",
    }


# -- persistence --------------------------------------------------------------------------------

def _arrays(weights: Weights) -> dict[str, np.ndarray]:
    """What a weights file holds, by array name."""
    arrays: dict[str, np.ndarray] = {
        "config_digest": np.array(weights.config_digest),
        "meta": np.array(json.dumps(weights.meta, sort_keys=True))}
    if len(weights.layers) > 1:   # w is layer_0 then: stored once
        arrays.update({f"layer_{k}": w for k, w in enumerate(weights.layers)})
        arrays["requant_mult"] = np.array(weights.requant_mult, dtype=np.int64)
    if weights.device_conductance:
        arrays.update({f"device_g_{k}": g for k, g in enumerate(weights.device_conductance)})
        arrays["device_requant_mult"] = np.array(weights.device_requant_mult, dtype=np.int64)
    if len(weights.layers) == 1:
        arrays["w"] = weights.w
    return arrays


def _write_npz_fixed(f: Any, arrays: dict[str, np.ndarray]) -> None:
    """An npz whose bytes depend only on the arrays (np.savez stamps every member with the
    current time): sorted members, a fixed date, deflate."""
    with zipfile.ZipFile(f, "w") as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(arrays[name]), allow_pickle=False)


def save(weights: Weights, path: str | Path, *, fixed: bool = False) -> None:
    """Write an npz (w, config digest, meta as JSON; for several layers also layer_<l> and
    requant_mult; for in-situ weights device_g_<l> and device_requant_mult) atomically, so
    readers never see half a file. `fixed`: compressed, and the same bytes for the same weights
    (the shipped reference weights, whose SHA-256 is recorded)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    arrays = _arrays(weights)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if fixed:
                _write_npz_fixed(f, arrays)
            else:
                np.savez(f, **arrays)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path, cfg: ChipConfig) -> Weights:
    """Read weights saved by `save`; WeightsError if unreadable or trained for another config."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            w = np.array(z["w" if "w" in z.files else "layer_0"], dtype=np.float64)
            digest = str(z["config_digest"])
            meta = json.loads(str(z["meta"]))
            n_layers = sum(1 for k in z.files if k.startswith("layer_"))
            layers = tuple(np.array(z[f"layer_{k}"], dtype=np.float64) for k in range(n_layers))
            mult = tuple(int(m) for m in z["requant_mult"]) if n_layers else ()
            n_dev = sum(1 for k in z.files if k.startswith("device_g_"))
            dev_g = tuple(np.array(z[f"device_g_{k}"], dtype=np.float64) for k in range(n_dev))
            dev_mult = tuple(int(m) for m in z["device_requant_mult"]) if n_dev else ()
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise WeightsError(f"{p}: not a readable weights file ({' '.join(str(exc).split())})") from None
    expected = training_digest(cfg)
    if digest != expected:
        raise WeightsError(f"{p}: trained for a different config (digest {digest}, this config "
                           f"needs {expected}); retrain")
    layers = layers or (w,)
    shapes = cfg.network.layer_shapes
    if len(layers) != len(shapes) or len(mult) != len(shapes) - 1:
        raise WeightsError(f"{p}: holds {len(layers)} layers, the config has {len(shapes)}")
    for layer, (m, shape) in enumerate(zip(layers, shapes)):
        if m.shape != shape or not np.isfinite(m).all():
            raise WeightsError(f"{p}: weights of shape {m.shape} do not fit a "
                               f"{shape[0]}x{shape[1]} layer or are not finite")
    if dev_g and (len(dev_g) != len(shapes) or len(dev_mult) != len(shapes) - 1 or any(
            g.shape != (n_in, 2 * n_out) or not np.isfinite(g).all()
            for g, (n_in, n_out) in zip(dev_g, shapes))):
        raise WeightsError(f"{p}: its device conductances do not fit the config's layers")
    return Weights(w=w, config_digest=digest, meta=meta, layers=layers, requant_mult=mult,
                   device_conductance=dev_g, device_requant_mult=dev_mult)


def cache_path(cfg: ChipConfig, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / f"weights-{cfg.name}-{training_digest(cfg)}.npz"


def weights_path(cfg: ChipConfig, cache_dir: str | Path, dataset: Dataset | None = None) -> Path:
    """Where `load_or_train` finds cfg's weights: the shipped reference weights if they apply,
    else the cache file (which may not exist yet)."""
    return reference_path(cfg, dataset) or cache_path(cfg, cache_dir)



# -- reference weights --------------------------------------------------------------------------
#
# Training is deterministic from the config's seeds on one machine, but not across machines:
# L-BFGS and Adam run on BLAS matmuls whose last bits depend on the BLAS kernel (CPU) and its
# thread count, and after a few hundred iterations the weights differ enough to move the test
# accuracy by a few hundredths of a point (and every figure downstream: programming pulses,
# fault figures). So the weights of the shipped configs are shipped too: data/weights/<config>-
# <method>.npz, their SHA-256 in data/weights/manifest.json, and `load_or_train` uses them
# whenever a config's training digest (and the dataset) is the one they were trained for.
# Everything computed from them (the golden model on its integer grid, the programming replay,
# `float_scores` in a fixed order) is then the same bits everywhere. Regenerate with
# `xbarflow train CONFIG [--set ...] --reference` (`make reference-weights`); a test
# retrains each one and requires the retrained golden accuracy within 0.3 points.

REFERENCE_MANIFEST = "manifest.json"


def reference_name(cfg: ChipConfig) -> str:
    """File stem of a config's reference weights: <config name>-<training method>."""
    return f"{cfg.name}-{cfg.train.resolved_method(len(cfg.network.layers))}"


def reference_manifest(directory: str | Path | None = None) -> dict[str, Any]:
    """The manifest of the shipped reference weights ({"weights": {stem: entry}}); empty when
    there is none."""
    p = Path(directory if directory is not None else paths.REFERENCE_WEIGHTS) / REFERENCE_MANIFEST
    if not p.is_file():
        return {"weights": {}}
    try:
        manifest = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{p}: not a readable manifest ({' '.join(str(exc).split())})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("weights"), dict):
        raise WeightsError(f"{p}: not a reference weights manifest (no 'weights' table)")
    return manifest


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reference_path(cfg: ChipConfig, dataset: Dataset | None = None,
                   directory: str | Path | None = None) -> Path | None:
    """The shipped reference weights file trained for cfg's training digest (and `dataset`, if
    given), after checking its SHA-256 against the manifest; None if none applies. A file that
    does not match its recorded digest is not used (one line on stderr)."""
    folder = Path(directory if directory is not None else paths.REFERENCE_WEIGHTS)
    digest = training_digest(cfg)
    fingerprint = dataset_fingerprint(dataset) if dataset is not None else None
    for entry in reference_manifest(folder)["weights"].values():
        if entry.get("training_digest") != digest:
            continue
        if fingerprint is not None and entry.get("dataset") != fingerprint:
            continue
        p = folder / str(entry.get("file"))
        if not p.is_file() or file_sha256(p) != entry.get("sha256"):
            print(f"xbarflow.flow.model.train: warning: reference weights {p} are missing or do not match their "
                  f"SHA-256 in {folder / REFERENCE_MANIFEST}; not using them", file=sys.stderr)
            continue
        return p
    return None


def load_reference(cfg: ChipConfig, dataset: Dataset | None = None,
                   directory: str | Path | None = None) -> Weights | None:
    """The shipped reference weights for cfg (see `reference_path`), or None."""
    p = reference_path(cfg, dataset, directory)
    return load(p, cfg) if p is not None else None


def write_reference(cfg: ChipConfig, weights: Weights, dataset: Dataset, command: str,
                    directory: str | Path | None = None) -> Path:
    """Ship `weights` as cfg's reference weights: <directory>/<reference_name>.npz (fixed bytes,
    no wall-clock figures in meta) and its manifest entry (SHA-256, size, training digest,
    dataset fingerprint, the command that made it)."""
    folder = Path(directory if directory is not None else paths.REFERENCE_WEIGHTS)
    if weights.config_digest != training_digest(cfg):
        raise WeightsError(f"weights trained for digest {weights.config_digest}, not for this "
                           f"config ({training_digest(cfg)})")
    name = reference_name(cfg)
    meta = {k: v for k, v in weights.meta.items() if k != "seconds"}
    meta["reference"] = name
    shipped = Weights(w=weights.w, config_digest=weights.config_digest, meta=meta,
                      layers=weights.layers, requant_mult=weights.requant_mult,
                      device_conductance=weights.device_conductance,
                      device_requant_mult=weights.device_requant_mult)
    path = folder / f"{name}.npz"
    save(shipped, path, fixed=True)
    path.chmod(0o644)   # a file of the checkout, not a private cache file
    manifest = reference_manifest(folder)
    manifest["weights"][name] = {
        "file": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path),
        "config": cfg.name, "method": cfg.train.resolved_method(len(cfg.network.layers)),
        "training_digest": training_digest(cfg), "dataset": dataset_fingerprint(dataset),
        "dtype": str(np.asarray(weights.w).dtype), "command": command,
    }
    manifest["weights"] = dict(sorted(manifest["weights"].items()))
    manifest["about"] = ("Reference weights of the shipped configs: load_or_train uses a file "
                         "when a config's training digest and the dataset match its entry and "
                         "the file matches its sha256. Regenerate: make reference-weights.")
    (folder / REFERENCE_MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path
