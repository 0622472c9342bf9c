"""ONNX fixtures built with onnx.helper (no PyTorch): a chain of layers from numpy matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["chain_model", "save"]


def chain_model(layers, acts=("relu",), *, input_shape=None, flatten=True, gemm_last=True,
                bias=None, extra_nodes=(), dtype=np.float32) -> onnx.ModelProto:
    """x -> [Flatten] -> layer 0 -> act 0 -> ... -> last layer (a Gemm with transB and a bias
    input when gemm_last, as torch.onnx exports Linear; MatMul otherwise). `acts` per hidden
    layer: "relu", "sign_relu" (Relu(Sign)), "greater_cast" (Cast(Greater(s, 0))), "sign",
    "none" (no activation). `extra_nodes`: (op, attrs) appended after the last layer."""
    n_in = layers[0].shape[0]
    side = int(round(np.sqrt(n_in)))
    shape = input_shape or (["N", 1, side, side] if flatten else ["N", n_in])
    nodes, inits = [], []
    cur = "x"
    if flatten:
        nodes.append(helper.make_node("Flatten", [cur], ["flat"], name="flatten"))
        cur = "flat"
    inits.append(numpy_helper.from_array(np.zeros(1, np.float32), "zero"))
    last = len(layers) - 1
    for k, w in enumerate(layers):
        out = f"s{k}"
        if k == last and gemm_last:
            inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T).astype(dtype), f"W{k}"))
            b = np.zeros(w.shape[1]) if bias is None else bias
            inits.append(numpy_helper.from_array(np.asarray(b, dtype=dtype), f"b{k}"))
            nodes.append(helper.make_node("Gemm", [cur, f"W{k}", f"b{k}"], [out], name=f"fc{k}",
                                          transB=1))
        else:
            inits.append(numpy_helper.from_array(np.asarray(w, dtype=dtype), f"W{k}"))
            nodes.append(helper.make_node("MatMul", [cur, f"W{k}"], [out], name=f"fc{k}"))
        cur = out
        if k < last:
            act = acts[k]
            if act == "relu":
                nodes.append(helper.make_node("Relu", [cur], [f"a{k}"], name=f"relu{k}"))
            elif act == "sign_relu":
                nodes.append(helper.make_node("Sign", [cur], [f"g{k}"], name=f"sign{k}"))
                nodes.append(helper.make_node("Relu", [f"g{k}"], [f"a{k}"], name=f"step{k}"))
            elif act == "greater_cast":
                nodes.append(helper.make_node("Greater", [cur, "zero"], [f"g{k}"], name=f"gt{k}"))
                nodes.append(helper.make_node("Cast", [f"g{k}"], [f"a{k}"], name=f"cast{k}",
                                              to=TensorProto.FLOAT))
            elif act == "sign":
                nodes.append(helper.make_node("Sign", [cur], [f"a{k}"], name=f"sign{k}"))
            else:
                continue
            cur = f"a{k}"
    for j, (op, attrs) in enumerate(extra_nodes):
        nodes.append(helper.make_node(op, [cur], [f"e{j}"], name=f"extra{j}", **attrs))
        cur = f"e{j}"
    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info(cur, elem, ["N", int(layers[-1].shape[1])])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path
