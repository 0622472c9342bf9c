"""A PyTorch model -> `ImportedNetwork`: an `nn.Sequential` of Linear and ReLU (Flatten,
Identity, Dropout, and a final Softmax / LogSoftmax allowed), or a `state_dict` of Linear layers.

PyTorch is optional: `read_torch` imports it only to unpickle the file, and says in one line how
to install it when it is missing. The walk over the modules reads only each module's class name
and its `weight` / `bias` tensors (anything with `.detach()` or a numpy array), so it is tested
without PyTorch. A state_dict holds no activations: its hidden layers are taken as ReLU (noted).
A Linear's weight is (out, in): transposed to the chip's (n_in, n_out). Biases must be zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .network import ImportedNetwork, ModelImportError, input_size_of

__all__ = ["network_from_modules", "network_from_state_dict", "read_torch"]

_PASS = ("Dropout", "Flatten", "Identity")
_FINAL = ("LogSoftmax", "Softmax")


def _array(tensor: Any) -> np.ndarray:
    if hasattr(tensor, "detach"):
        tensor = tensor.detach().cpu().double().numpy()
    return np.asarray(tensor, dtype=np.float64)


def _bias_ok(label: str, bias: Any) -> None:
    if bias is None:
        return
    b = _array(bias)
    if np.any(b != 0):
        raise ModelImportError(f"{label}: nonzero bias (max |b| = {float(np.abs(b).max()):.4g}); the "
                               f"chip's crossbar has no bias row, retrain with bias=False")


def _finish(layers: list[np.ndarray], acts: list[str], source: str, notes: list[str]) -> ImportedNetwork:
    if not layers:
        raise ModelImportError(f"{source}: no Linear layer")
    for k in range(1, len(layers)):
        if layers[k].shape[0] != layers[k - 1].shape[1]:
            raise ModelImportError(f"{source}: layer {k} takes {layers[k].shape[0]} inputs, layer "
                                   f"{k - 1} gives {layers[k - 1].shape[1]}")
    return ImportedNetwork(tuple(layers), (*acts, "none"),
                           input_size_of(layers[0].shape[0], f"{source}: layer 0"), source, tuple(notes))


def network_from_modules(modules: Any, source: str) -> ImportedNetwork:
    """The network of a sequence of modules (an nn.Sequential iterates its children)."""
    layers: list[np.ndarray] = []
    acts: list[str] = []
    notes: list[str] = []
    state = "input"
    for index, module in enumerate(modules):
        kind = type(module).__name__
        label = f"module {index} ({kind})"
        if kind in _PASS:
            continue
        if state == "final":
            raise ModelImportError(f"{label}: nothing may follow the final Softmax")
        if kind == "Linear":
            if state == "linear":
                raise ModelImportError(f"{label}: follows a Linear with no activation between; the "
                                       f"chip activates (ReLU) between layers")
            w = _array(module.weight)
            if w.ndim != 2 or (layers and w.shape[1] != layers[-1].shape[1]):
                raise ModelImportError(f"{label}: weight of shape {w.shape} does not fit its input of "
                                       f"{layers[-1].shape[1] if layers else '?'} features")
            _bias_ok(label, getattr(module, "bias", None))
            layers.append(w.T)
            state = "linear"
        elif kind == "ReLU":
            if state != "linear":
                raise ModelImportError(f"{label}: a ReLU must follow a Linear layer")
            acts.append("relu")
            state = "activated"
        elif kind in _FINAL:
            if state != "linear":
                raise ModelImportError(f"{label}: a {kind} is only accepted on the last layer's sums")
            notes.append(f"{label} dropped: argmax of the sums is argmax of the {kind}")
            state = "final"
        else:
            raise ModelImportError(f"{label}: unsupported module; the chip runs Linear, ReLU, "
                                   f"Flatten, Identity, Dropout and a final Softmax")
    if state == "activated":
        raise ModelImportError(f"{source}: an activation after the last layer; the chip takes argmax "
                               f"of the last layer's sums")
    return _finish(layers, acts, source, notes)


def network_from_state_dict(state: Mapping[str, Any], source: str) -> ImportedNetwork:
    """The network of a state_dict: its 2-D `*.weight` entries in order, ReLU between them."""
    layers: list[np.ndarray] = []
    for key, value in state.items():
        if not key.endswith(".weight"):
            if not key.endswith(".bias"):
                raise ModelImportError(f"{source}: entry '{key}' is neither a Linear weight nor a bias")
            _bias_ok(f"entry '{key}'", value)
            continue
        w = _array(value)
        if w.ndim != 2:
            raise ModelImportError(f"entry '{key}': a weight of shape {w.shape} is not a Linear layer")
        layers.append(w.T)
    notes = ["a state_dict holds no activations: hidden layers taken as ReLU"] if len(layers) > 1 else []
    return _finish(layers, ["relu"] * (len(layers) - 1), source, notes)


def read_torch(path: str | Path) -> ImportedNetwork:
    """The network of a torch.save file: an nn.Sequential or a state_dict."""
    path = Path(path)
    try:
        import torch   # why: PyTorch is an optional extra (several GB), only to unpickle the file
    except ImportError:
        raise ModelImportError(f"{path}: reading a PyTorch file needs PyTorch (pip install torch); "
                               f"or export the model to ONNX") from None
    try:
        # an nn.Sequential is a pickled object: weights_only=False runs the file's pickle code,
        # so import only files you trust (as torch.load itself warns)
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:   # torch raises many kinds (pickle, zip, runtime) for a bad file
        raise ModelImportError(f"{path}: not a PyTorch model file ({' '.join(str(exc).split())[:120]})") from None
    source = f"{path.name} (PyTorch)"
    if isinstance(obj, Mapping):
        return network_from_state_dict(obj, source)
    if type(obj).__name__ == "Sequential":
        return network_from_modules(list(obj), source)
    raise ModelImportError(f"{path}: a {type(obj).__name__}, not an nn.Sequential or a state_dict")
