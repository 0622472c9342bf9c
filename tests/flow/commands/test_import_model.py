"""`xbarflow import`: ONNX models made from the reference weights (with onnx.helper), the MLP's
196-256-10 ReLU among them, reach exactly the golden accuracy of those weights; every rejection
is one line on stderr and exit 2."""

import json

import numpy as np
import pytest

from tests.support.onnx_models import chain_model, save
from xbarflow.flow.cli import main
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.weights import load_reference


def golden_accuracy(cfg, weights, dataset) -> float:
    classes = GoldenChip.from_weights(cfg, weights).infer(to_dac_codes(dataset.x_test, cfg)).classes
    return float(np.mean(classes == dataset.y_test))


@pytest.mark.parametrize("base, acts", [("mlp", ("relu",)), ("mlp_binary", ("greater_cast",)),
                                        ("slp", ())])
def test_imported_model_reaches_the_golden_accuracy_of_the_same_weights(base, acts, dataset, tmp_path,
                                                                        capsys):
    """The config's reference weights as an ONNX model (the MLP: 196-256-10 ReLU; its binary twin
    with Cast(Greater(s, 0)) as the step; the SLP as one Gemm), imported onto the same base."""
    path = cfgmod.CONFIG_DIR / f"{base}.toml"
    cfg = cfgmod.load(path)
    ref = load_reference(cfg, dataset)
    model = save(chain_model(list(ref.layers), acts), tmp_path / "model196.onnx")
    assert main(["import", str(model), "--out", str(tmp_path / "out"), "--base", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    expected = golden_accuracy(cfg, ref, dataset)
    assert summary["golden_accuracy"] == expected
    assert expected > (0.97 if base == "mlp" else 0.92)
    imported = cfgmod.load(tmp_path / "out" / "model196.toml")
    assert imported.network == cfg.network
    # and `train` on the written config reports the imported weights, same golden accuracy
    assert main(["train", str(tmp_path / "out" / "model196.toml")]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["weights"] == "imported" and line["golden_test_accuracy"] == expected
    assert line["requant_mult"] == list(ref.requant_mult)


def one_line_exit_2(argv, capsys) -> str:
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    return captured.err


def test_rejections_exit_2_naming_the_node(tmp_path, capsys):
    rng = np.random.default_rng(3)
    w0, w1 = rng.normal(size=(196, 32)), rng.normal(size=(32, 10))
    cases = {
        "unsupported": (chain_model([w0, w1], ("relu",), extra_nodes=[("Tanh", {})]),
                        "node 'extra0' (Tanh): unsupported operator"),
        "bias": (chain_model([w0, w1], ("relu",), bias=np.linspace(0, 1, 10)),
                 "node 'fc1' (Gemm): nonzero bias (max |b| = 1)"),
        "shape": (chain_model([w0, w1], ("relu",), flatten=False, input_shape=["N", 144]),
                  "node 'fc0' (MatMul): weight of shape (196, 32) does not fit its input of 144 features"),
    }
    for name, (model, needle) in cases.items():
        path = save(model, tmp_path / f"{name}.onnx")
        err = one_line_exit_2(["import", path, "--out", tmp_path / "out"], capsys)
        assert needle in err, (name, err)
    (tmp_path / "notes.txt").write_text("not a model\n")
    err = one_line_exit_2(["import", tmp_path / "notes.txt", "--out", tmp_path / "out"], capsys)
    assert "notes.txt: not a valid ONNX model" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir()), "nothing written"
