"""The shipped reference weights (data/weights): current for the shipped configs, verified by
their SHA-256, used by load_or_train only for their training digest and data set, written with
fixed bytes, and reproducible: retraining lands within 0.3 points of them."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from xbarflow.flow.cli import main as xbarflow
from xbarflow.flow.core import config
from xbarflow.flow.model import train
from xbarflow.flow.model import weights as weights_mod
from xbarflow.flow.data import Dataset, to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.core.paths import REFERENCE_WEIGHTS
from tests.support.synthetic_data import synthetic

#: every shipped config, and the in-situ SLP whose figures the README shows
SHIPPED = {
    "slp-lbfgs": ("slp.toml", {}),
    "slp-manhattan": ("slp.toml", {"train.method": "manhattan"}),
    "mlp-qat": ("mlp.toml", {}),
    "mlp_binary-qat": ("mlp_binary.toml", {}),
    "mlp28-qat": ("mlp28.toml", {}),
    "cnn-qat": ("cnn.toml", {}),
}
#: bytes a reference file may take: float64 as trained (784-256-128-10: 235k weights, ~1.9 MB)
MAX_BYTES = {"mlp28-qat": 2_000_000}


def shipped_config(name: str) -> config.ChipConfig:
    path, overrides = SHIPPED[name]
    cfg = config.load(config.CONFIG_DIR / path)
    return cfg.replace(**overrides) if overrides else cfg


def manifest() -> dict:
    return json.loads((REFERENCE_WEIGHTS / "manifest.json").read_text())["weights"]


def golden_accuracy(chip: GoldenChip, cfg, dataset) -> float:
    return float(np.mean(chip.infer(to_dac_codes(dataset.x_test, cfg)).classes == dataset.y_test))


def test_every_shipped_config_has_reference_weights_for_its_current_digest(dataset):
    assert {weights_mod.reference_name(config.load(p)) for p in config.CONFIG_DIR.glob("*.toml")} \
        <= set(SHIPPED), "a new shipped config needs reference weights (make reference-weights)"
    entries = manifest()
    assert set(entries) == set(SHIPPED)
    for name, entry in entries.items():
        cfg = shipped_config(name)
        f = REFERENCE_WEIGHTS / entry["file"]
        assert hashlib.sha256(f.read_bytes()).hexdigest() == entry["sha256"], name
        assert f.stat().st_size == entry["bytes"] < MAX_BYTES.get(name, 500_000), name
        assert entry["training_digest"] == weights_mod.training_digest(cfg), \
            f"{name}: the config changed since its reference weights were made; make reference-weights"
        assert weights_mod.reference_path(cfg, dataset) == f
        with np.load(f) as z:
            assert all(z[k].dtype == np.float64 for k in z.files if k.startswith(("w", "layer_", "device_g_")))


def test_load_or_train_takes_the_reference_weights_and_writes_no_cache(cfg, dataset, tmp_path, monkeypatch):
    def no_training(*_):
        raise AssertionError("trained although reference weights apply")

    monkeypatch.setattr(train, "train", no_training)
    w = train.load_or_train(cfg, dataset, tmp_path / "cache")
    with np.load(REFERENCE_WEIGHTS / "slp-lbfgs.npz") as z:
        assert w.w.tobytes() == z["w"].tobytes()
    assert w.meta["reference"] == "slp-lbfgs" and "seconds" not in w.meta
    assert not (tmp_path / "cache").exists()
    # hardware-only changes keep the training digest, so they keep the reference weights too
    wide = train.load_or_train(cfg.replace(**{"crossbar.wire_r": 20.0, "adc.bits": 6}), dataset, tmp_path)
    assert wide.w.tobytes() == w.w.tobytes()


def test_reference_weights_apply_only_to_their_digest_data_set_and_bytes(cfg, dataset, tmp_path, capsys):
    folder = tmp_path / "weights"
    shutil.copytree(REFERENCE_WEIGHTS, folder)
    assert weights_mod.reference_path(cfg, dataset, folder) == folder / "slp-lbfgs.npz"
    assert weights_mod.reference_path(cfg.replace(**{"train.l2": 1e-4}), dataset, folder) is None
    subset = Dataset(dataset.x_train[:100], dataset.y_train[:100], dataset.x_test, dataset.y_test)
    assert weights_mod.reference_path(cfg, subset, folder) is None
    assert capsys.readouterr().err == ""
    data = bytearray((folder / "slp-lbfgs.npz").read_bytes())
    data[len(data) // 2] ^= 1
    (folder / "slp-lbfgs.npz").write_bytes(bytes(data))
    assert weights_mod.reference_path(cfg, dataset, folder) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "do not match their SHA-256" in err
    (folder / "slp-lbfgs.npz").unlink()
    assert weights_mod.reference_path(cfg, dataset, folder) is None
    assert "missing" in capsys.readouterr().err


def test_write_reference_gives_fixed_bytes_and_a_manifest_entry(tmp_path):
    cfg = config.load().replace(**{"network.input_size": 4, "train.maxiter": 30})
    data = synthetic(400, 3)
    weights = train.train(cfg, data)
    path = weights_mod.write_reference(cfg, weights, data, "the command", tmp_path)
    first = path.read_bytes()
    again = weights_mod.write_reference(cfg, train.train(cfg, data), data, "the command", tmp_path)
    assert again == path and path.read_bytes() == first, "the same weights must give the same bytes"
    (entry,) = json.loads((tmp_path / "manifest.json").read_text())["weights"].values()
    assert entry == {"file": path.name, "bytes": len(first), "sha256": hashlib.sha256(first).hexdigest(),
                     "config": cfg.name, "method": "lbfgs", "training_digest": weights_mod.training_digest(cfg),
                     "dataset": weights_mod.dataset_fingerprint(data), "dtype": "float64", "command": "the command"}
    back = weights_mod.load_reference(cfg, data, tmp_path)
    assert back.w.tobytes() == weights.w.tobytes()
    assert {k: v for k, v in back.meta.items() if k != "reference"} == \
        {k: v for k, v in weights.meta.items() if k != "seconds"}
    with pytest.raises(weights_mod.WeightsError, match="trained for digest"):
        weights_mod.write_reference(cfg.replace(**{"train.l2": 0.1}), weights, data, "x", tmp_path)


def test_the_training_command_writes_reference_weights(tmp_path, capsys):
    data = synthetic(400, 4)
    npz = tmp_path / "data.npz"
    np.savez(npz, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
    argv = ["--set", "network.input_size=4", "--set", "train.maxiter=20", "--data", str(npz),
            "--cache-dir", str(tmp_path / "cache"), "--reference-dir", str(tmp_path / "ref")]
    assert xbarflow(["train", *argv, "--reference"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["weights"] == "trained" and made["reference_weights"] == str(tmp_path / "ref" / "slp-lbfgs.npz")
    entry = json.loads((tmp_path / "ref" / "manifest.json").read_text())["weights"]["slp-lbfgs"]
    assert entry["command"] == ("xbarflow train configs/slp.toml --set network.input_size=4 "
                                "--set train.maxiter=20 --reference")
    assert xbarflow(["train", *argv]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["weights"] == "reference" and again["golden_test_accuracy"] == made["golden_test_accuracy"]
    assert not (tmp_path / "cache").exists()


@pytest.mark.retrain
@pytest.mark.parametrize("name", [
    "slp-lbfgs", "slp-manhattan",
    # ~20-35 s each on 2 idle cores, 15+ min on a busy machine: `make retrain-check`
    pytest.param("mlp-qat", marks=pytest.mark.slow), pytest.param("mlp_binary-qat", marks=pytest.mark.slow),
    pytest.param("mlp28-qat", marks=pytest.mark.slow), pytest.param("cnn-qat", marks=pytest.mark.slow)])
def test_retraining_lands_within_0_3_points_of_the_reference_weights(name, dataset):
    """Training on another machine (BLAS kernel, thread count) moves the last bits; the result
    must still be the same model to within 0.3 points of golden accuracy on the 10k test set."""
    cfg = shipped_config(name)
    reference = weights_mod.load_reference(cfg, dataset)
    retrained = train.train(cfg, dataset)
    pairs = [(golden_accuracy(GoldenChip.from_weights(cfg, w), cfg, dataset) for w in (reference, retrained))]
    if cfg.train.method == "manhattan":
        from xbarflow.flow.model.insitu import device_chip
        pairs.append(golden_accuracy(device_chip(cfg, w), cfg, dataset) for w in (reference, retrained))
    for ref_acc, new_acc in (tuple(p) for p in pairs):
        assert abs(new_acc - ref_acc) <= 0.003, f"{name}: retrained {new_acc:.4f}, reference {ref_acc:.4f}"
