"""The PyTorch path without PyTorch: the module walk on stand-in modules (classes named as
torch.nn's, numpy weights), and the one-line message when PyTorch is missing."""

import sys
from collections import OrderedDict

import numpy as np
import pytest

from xbarflow.flow.interop.network import ModelImportError
from xbarflow.flow.interop.torch_reader import network_from_modules, network_from_state_dict, read_torch

RNG = np.random.default_rng(9)
W0 = RNG.normal(size=(8, 16))   # torch's Linear weight: (out, in)
W1 = RNG.normal(size=(3, 8))


class Linear:
    def __init__(self, weight, bias=None):
        self.weight, self.bias = weight, bias


class ReLU:
    pass


class Flatten:
    pass


class Tanh:
    pass


def test_sequential_of_linear_and_relu():
    net = network_from_modules([Flatten(), Linear(W0, np.zeros(8)), ReLU(), Linear(W1)], "m")
    assert net.input_size == 4 and net.activations == ("relu", "none")
    assert np.array_equal(net.layers[0], W0.T) and np.array_equal(net.layers[1], W1.T)


def test_sequential_rejections_name_the_module():
    with pytest.raises(ModelImportError, match=r"^module 1 \(Linear\): nonzero bias"):
        network_from_modules([Flatten(), Linear(W0, np.full(8, 0.1)), ReLU(), Linear(W1)], "m")
    with pytest.raises(ModelImportError, match=r"^module 1 \(Tanh\): unsupported module"):
        network_from_modules([Linear(W0), Tanh(), Linear(W1)], "m")
    with pytest.raises(ModelImportError, match=r"^module 1 \(Linear\): follows a Linear with no activation"):
        network_from_modules([Linear(W0), Linear(W1)], "m")
    with pytest.raises(ModelImportError, match=r"^module 2 \(Linear\): weight of shape \(3, 5\) does not fit"):
        network_from_modules([Linear(W0), ReLU(), Linear(RNG.normal(size=(3, 5)))], "m")


def test_state_dict_takes_relu_between_layers():
    net = network_from_state_dict(OrderedDict([("0.weight", W0), ("0.bias", np.zeros(8)),
                                               ("2.weight", W1)]), "sd")
    assert net.activations == ("relu", "none") and np.array_equal(net.layers[1], W1.T)
    assert net.notes and "ReLU" in net.notes[0]
    with pytest.raises(ModelImportError, match=r"^entry '2.bias': nonzero bias"):
        network_from_state_dict({"0.weight": W0, "2.weight": W1, "2.bias": np.ones(3)}, "sd")


def test_missing_torch_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # `import torch` fails, installed or not
    path = tmp_path / "model.pt"
    path.write_bytes(b"PK\x03\x04 a torch.save zip")
    with pytest.raises(ModelImportError) as err:
        read_torch(path)
    assert str(err.value) == (f"{path}: reading a PyTorch file needs PyTorch (pip install torch); "
                              f"or export the model to ONNX")
