"""ONNX models built with onnx.helper: what the reader accepts (the layers come back as the
matrices that went in), and one line naming the node for each thing the chip cannot run."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.support.onnx_models import chain_model, save
from xbarflow.flow.interop.network import ModelImportError
from xbarflow.flow.interop.onnx_reader import read_onnx

RNG = np.random.default_rng(5)
W0 = RNG.normal(size=(16, 8))   # 4 x 4 inputs
W1 = RNG.normal(size=(8, 3))


def read(tmp_path, model):
    return read_onnx(save(model, tmp_path / "m.onnx"))


@pytest.mark.parametrize("act, chip_act", [("relu", "relu"), ("sign_relu", "binary"),
                                           ("greater_cast", "binary")])
def test_chain_reads_back_its_matrices(tmp_path, act, chip_act):
    net = read(tmp_path, chain_model([W0, W1], (act,)))
    assert net.input_size == 4 and net.activations == (chip_act, "none")
    assert len(net.layers) == 2
    assert np.array_equal(net.layers[0], W0.astype(np.float32).astype(np.float64))
    assert np.array_equal(net.layers[1], W1.astype(np.float32).astype(np.float64)), "Gemm transB undone"


def test_double_weights_and_flat_input_and_final_softmax(tmp_path):
    net = read(tmp_path, chain_model([W0, W1], ("relu",), flatten=False, dtype=np.float64,
                                     extra_nodes=[("Softmax", {"axis": 1})]))
    assert np.array_equal(net.layers[0], W0) and np.array_equal(net.layers[1], W1)
    assert any("Softmax" in note for note in net.notes)


def test_gemm_alpha_folds_into_the_matrix(tmp_path):
    model = chain_model([W0, W1], ("relu",), dtype=np.float64)
    model.graph.node[-1].attribute.append(helper.make_attribute("alpha", 0.5))
    net = read(tmp_path, model)
    assert np.array_equal(net.layers[1], 0.5 * W1)


def test_reshape_of_the_input(tmp_path):
    model = chain_model([W0, W1], ("relu",), flatten=False, input_shape=["N", 4, 4])
    shape = numpy_helper.from_array(np.array([-1, 16], np.int64), "shape")
    model.graph.initializer.append(shape)
    model.graph.node.insert(0, helper.make_node("Reshape", ["x", "shape"], ["xr"], name="reshape"))
    model.graph.node[1].input[0] = "xr"
    assert read(tmp_path, model).input_size == 4


def rejection(tmp_path, model) -> str:
    with pytest.raises(ModelImportError) as err:
        read(tmp_path, model)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_nonzero_gemm_bias_is_rejected_naming_the_node(tmp_path):
    msg = rejection(tmp_path, chain_model([W0, W1], ("relu",), bias=[0.0, 0.25, 0.0]))
    assert msg.startswith("node 'fc1' (Gemm): nonzero bias (max |b| = 0.25)"), msg
    # a zero bias is fine (the control)
    read(tmp_path, chain_model([W0, W1], ("relu",), bias=[0.0, 0.0, 0.0]))


def test_nonzero_add_bias_is_rejected(tmp_path):
    model = chain_model([W0, W1], ("relu",), gemm_last=False)
    model.graph.initializer.append(numpy_helper.from_array(np.full(3, 0.5, np.float32), "b"))
    model.graph.node.append(helper.make_node("Add", ["s1", "b"], ["y"], name="bias_add"))
    model.graph.output[0].name = "y"
    assert rejection(tmp_path, model).startswith("node 'bias_add' (Add): nonzero bias")


def test_unsupported_operator(tmp_path):
    msg = rejection(tmp_path, chain_model([W0, W1], ("relu",), extra_nodes=[("Tanh", {})]))
    assert msg.startswith("node 'extra0' (Tanh): unsupported operator"), msg


def test_weight_that_does_not_fit_the_input(tmp_path):
    model = chain_model([W0, W1], ("relu",), flatten=False, input_shape=["N", 25])
    msg = rejection(tmp_path, model)
    assert msg == "node 'fc0' (MatMul): weight of shape (16, 8) does not fit its input of 25 features"


def test_input_that_is_not_a_square_image(tmp_path):
    w = RNG.normal(size=(20, 3))
    msg = rejection(tmp_path, chain_model([w], (), flatten=False))
    assert msg.startswith("input 'x': 20 input features are not an n x n image"), msg


def test_bare_sign_and_missing_activation_and_final_relu(tmp_path):
    assert "a bare Sign gives -1" in rejection(tmp_path, chain_model([W0, W1], ("sign",)))
    assert rejection(tmp_path, chain_model([W0, W1], ("none",))).startswith(
        "node 'fc1' (Gemm): follows node 'fc0' (MatMul) with no activation between")
    assert rejection(tmp_path, chain_model([W0, W1], ("relu",), extra_nodes=[("Relu", {})])).startswith(
        "node 'extra0' (Relu): an activation after the last layer")


def test_files_that_are_not_models(tmp_path):
    (tmp_path / "text.onnx").write_text("this is not a model\n")
    with pytest.raises(ModelImportError, match=r"text.onnx: not a valid ONNX model"):
        read_onnx(tmp_path / "text.onnx")
    empty = helper.make_model(helper.make_graph([], "g", [], []))
    onnx.save(empty, str(tmp_path / "empty.onnx"))
    with pytest.raises(ModelImportError, match="not a valid ONNX model"):
        read_onnx(tmp_path / "empty.onnx")


def test_two_inputs(tmp_path):
    model = chain_model([W0, W1], ("relu",))
    model.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["N", 2]))
    assert "the model has 2 inputs" in rejection(tmp_path, model)
