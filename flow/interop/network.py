"""A network trained elsewhere, as the chip can run it: float layers (n_in, n_out), no bias, an
activation per layer, an input size; and the config TOML + weights file `xbarflow import`
writes for it.

What the chip realises (flow/model/forward.py, flow/model/golden.py): layer after layer, a
crossbar product of the previous layer's DAC codes, digital sums, then a requantising ReLU or a
step (binary) on hidden layers and argmax on the last. So a readable model is a chain
linear -> activation -> linear ... -> linear with no bias anywhere (the chip has no bias row)
and nothing else but reshapes of the input. The readers (onnx_reader.py, torch_reader.py) turn
a file into an `ImportedNetwork` or raise `ModelImportError`, one line naming the node.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import ChipConfig, ConfigError, from_dict
from ..core.errors import XbarflowError
from ..data import Dataset
from ..model.imported import calibrate
from ..model.weights import Weights, save

__all__ = ["ImportedFiles", "ImportedNetwork", "ModelImportError", "config_toml", "imported_config",
           "input_size_of", "write_imported"]

MAX_INPUT_SIZE = 28   # network.input_size range of ChipConfig (2..28)


class ModelImportError(XbarflowError, ValueError):
    """A model the chip cannot run: one line naming the node (or file) and the reason."""


@dataclass(frozen=True)
class ImportedNetwork:
    layers: tuple[np.ndarray, ...]       # (n_in, n_out) float64 per layer
    activations: tuple[str, ...]         # relu | binary per hidden layer, "none" last
    input_size: int                      # images n x n, n * n = layers[0].shape[0]
    source: str                          # what it was read from (file name, format)
    notes: tuple[str, ...] = ()          # what the reader dropped or assumed, for the user


def input_size_of(features: int, where: str) -> int:
    """n for an n x n input of `features` values; ModelImportError if none in 2..28."""
    n = math.isqrt(max(features, 0))
    if n * n != features or not 2 <= n <= MAX_INPUT_SIZE:
        raise ModelImportError(f"{where}: {features} input features are not an n x n image with n "
                               f"in 2..{MAX_INPUT_SIZE} (the chip's input size)")
    return n


def imported_config(net: ImportedNetwork, base: ChipConfig, name: str, weights_file: str) -> ChipConfig:
    """`base` with the network of `net` (device, crossbar, ADC, host, ... from base) and
    train.weights naming the weights file."""
    data = base.to_dict()
    data["name"] = name
    data["network"].update(input_size=net.input_size, layers=[int(w.shape[1]) for w in net.layers],
                           activations=list(net.activations))
    data["train"]["weights"] = weights_file
    try:
        return from_dict(data, source=f"imported {net.source}")
    except ConfigError as exc:
        raise ModelImportError(str(exc)) from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def config_toml(cfg: ChipConfig, header: str = "") -> str:
    """The whole config as TOML (every key written out: the file does not depend on defaults)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    data = cfg.to_dict()
    lines.append(f"name = {_toml_value(data.pop('name'))}")
    for section, table in data.items():
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ImportedFiles:
    config: Path
    weights_file: Path
    weights: Weights
    cfg: ChipConfig


def write_imported(net: ImportedNetwork, base: ChipConfig, dataset: Dataset, out_dir: str | Path,
                   name: str) -> ImportedFiles:
    """Write <out_dir>/<name>.toml and <name>-weights.npz (requantisers calibrated on the
    training images); the config names the weights file relative to itself."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ModelImportError(f"name '{name}': use letters, digits, '_', '-' and '.' only")
    if int(dataset.y_train.max()) >= int(net.layers[-1].shape[1]):
        raise ModelImportError(f"{net.source}: the last layer has {net.layers[-1].shape[1]} outputs, "
                               f"the data set has {int(dataset.y_train.max()) + 1} classes")
    out = Path(out_dir)
    weights_path = out / f"{name}-weights.npz"
    # calibrated for the config as it will load (train.weights absolute, outside every digest)
    cfg = imported_config(net, base, name, str(weights_path.resolve()))
    weights = calibrate(cfg, dataset, net.layers, {"imported_from": net.source,
                                                   "import_notes": list(net.notes)})
    save(weights, weights_path)
    text = config_toml(imported_config(net, base, name, weights_path.name),
                       f"Imported by `xbarflow import` from {net.source}; base config {base.name}.\n"
                       "The network is the model's; every other section is the base config's.")
    config_path = out / f"{name}.toml"
    config_path.write_text(text)
    return ImportedFiles(config_path, weights_path, weights, cfg)
