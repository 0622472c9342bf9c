"""Which reader a file gets, and files that are no model at all."""

import pytest

from tests.support.onnx_models import chain_model, save
from xbarflow.flow.interop.model_file import read_model
from xbarflow.flow.interop.network import ModelImportError
import numpy as np


def test_onnx_by_content_whatever_the_suffix(tmp_path):
    w = np.eye(4)[:, :2]
    net = read_model(save(chain_model([w], (), flatten=False), tmp_path / "model.bin"))
    assert net.input_size == 2 and net.source.startswith("model.bin (ONNX")


@pytest.mark.parametrize("name, content, needle", [
    ("missing.onnx", None, "model file not found"),
    ("empty.onnx", b"", "empty file, not a model"),
    ("weights.npz", b"\x93NUMPY garbage", "not a valid ONNX model"),
    ("model.pt", b"PK\x03\x04", "PyTorch"),
])
def test_not_a_model(tmp_path, name, content, needle):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelImportError, match=needle) as err:
        read_model(path)
    assert "\n" not in str(err.value)
