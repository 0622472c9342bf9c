"""The config TOML and weights file `xbarflow import` writes: the TOML reads back as the same
config, and the written pair loads through load_or_train as the layers that went in."""

import tomllib

import numpy as np
import pytest

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.interop.network import (
    ImportedNetwork,
    ModelImportError,
    config_toml,
    input_size_of,
    write_imported,
)
from xbarflow.flow.model.train import load_or_train
from xbarflow.flow.model.weights import load_reference


@pytest.mark.parametrize("name", ["slp", "mlp", "mlp_binary"])
def test_config_toml_reads_back_as_the_same_config(name):
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / f"{name}.toml")
    again = cfgmod.from_dict(tomllib.loads(config_toml(cfg, "a header\nof two lines")))
    assert again == cfg and again.digest() == cfg.digest()


def test_input_size():
    assert input_size_of(196, "x") == 14 and input_size_of(784, "x") == 28
    for bad in (195, 1, 900):
        with pytest.raises(ModelImportError, match="not an n x n image"):
            input_size_of(bad, "x")


def test_written_pair_loads_through_load_or_train(dataset, tmp_path):
    mlp = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml")
    ref = load_reference(mlp, dataset)
    net = ImportedNetwork(ref.layers, ("relu", "none"), 14, "test")
    files = write_imported(net, mlp, dataset, tmp_path / "out", "net")
    assert files.config == tmp_path / "out" / "net.toml"
    moved = tmp_path / "moved"
    (tmp_path / "out").rename(moved)   # the config finds its weights file wherever the folder is
    cfg = cfgmod.load(moved / "net.toml")
    assert cfg.train.weights == str((moved / "net-weights.npz").resolve())
    assert cfg.network == mlp.network and cfg.crossbar == mlp.crossbar and cfg.name == "net"
    got = load_or_train(cfg, dataset, tmp_path / "cache")
    assert not (tmp_path / "cache").exists(), "nothing trained or cached"
    assert all(np.array_equal(a, b) for a, b in zip(got.layers, ref.layers))
    assert got.requant_mult == ref.requant_mult, "calibrated as training calibrated them"
    assert got.meta["method"] == "imported" and "recalibrated" not in got.meta


def test_outputs_must_cover_the_classes(dataset, tmp_path):
    slp = cfgmod.load()
    net = ImportedNetwork((np.ones((196, 4)),), ("none",), 14, "four.onnx")
    with pytest.raises(ModelImportError, match="the last layer has 4 outputs, the data set has 10 classes"):
        write_imported(net, slp, dataset, tmp_path, "four")
