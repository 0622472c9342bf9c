"""An ONNX model -> `ImportedNetwork`: MatMul / Gemm layers, Relu, a step as binary activation,
Flatten and Reshape of the input, nothing else.

Accepted, node by node in graph order (ONNX stores nodes topologically sorted):
* MatMul(x, W) and Gemm(x, B, C) with transA = 0 (alpha and transB folded into the matrix);
  the chip has no bias: a Gemm's C, or an Add of a constant right after a layer, must be all
  zeros, else the node is rejected;
* Relu after a layer: the chip's requantising ReLU (its register calibrated at import);
* a step after a layer, the chip's binary activation dac_max * (s > 0): Relu(Sign(s)), or
  Cast(Greater(s, 0)) to a float type. A bare Sign is rejected: it gives -1 below zero where
  the chip gives 0, which the next layer could only absorb with a bias;
* Flatten (axis 1) and Reshape of the input (batch dimension kept), Identity, Dropout
  (inference: identity), Constant; Softmax / LogSoftmax after the last layer (argmax ignores
  them; dropped with a note).
Anything else, a layer that does not fit its input, two layers without an activation between
them or an activation after the last layer: `ModelImportError`, one line naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .network import ImportedNetwork, ModelImportError, input_size_of

__all__ = ["SUPPORTED_OPS", "read_onnx"]

SUPPORTED_OPS = ("Add", "Cast", "Constant", "Dropout", "Flatten", "Gemm", "Greater", "Identity",
                 "LogSoftmax", "MatMul", "Relu", "Reshape", "Sign", "Softmax")


@dataclass
class _Stream:
    """The one activation tensor flowing through the chain, and what it is at this point."""
    shape: tuple[int | None, ...]   # dimensions after the batch dimension
    state: str = "input"            # input | linear | activated | sign | greater | final
    owner: str = ""                 # the node that made it (for messages)


@dataclass
class _Chain:
    layers: list[np.ndarray] = field(default_factory=list)
    activations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _node_label(node, index: int) -> str:
    name = f"'{node.name}'" if node.name else f"#{index} (output '{node.output[0]}')" if node.output else f"#{index}"
    return f"node {name} ({node.op_type})"


def _attrs(node) -> dict:
    from onnx import helper   # why: onnx is only needed when importing an ONNX model

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _load(path: Path):
    try:
        import onnx   # why: an optional heavy dependency, only for `xbarflow import`
    except ImportError:
        raise ModelImportError("reading ONNX models needs the 'onnx' package (pip install onnx)") from None
    from google.protobuf.message import DecodeError   # why: onnx's parse error, with onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, ValueError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelImportError(f"{path}: not a valid ONNX model ({reason})") from None
    if not model.graph.node:
        raise ModelImportError(f"{path}: not a valid ONNX model (its graph has no nodes)")
    return model


def _dims(value_info) -> tuple[int | None, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def read_onnx(path: str | Path) -> ImportedNetwork:
    """The network of an ONNX file; ModelImportError (one line) if the chip cannot run it."""
    from onnx import numpy_helper   # why: see _load

    path = Path(path)
    model = _load(path)
    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ModelImportError(f"{path}: the model has {len(inputs)} inputs; the chip takes one image")
    if len(graph.output) != 1:
        raise ModelImportError(f"{path}: the model has {len(graph.output)} outputs; the chip gives one class")
    dims = _dims(inputs[0])
    if not dims:
        raise ModelImportError(f"input '{inputs[0].name}': a scalar input is not an image")
    streams = {inputs[0].name: _Stream(dims[1:], owner=f"input '{inputs[0].name}'")}
    chain = _Chain()

    for index, node in enumerate(graph.node):
        label = _node_label(node, index)
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
            continue
        if node.op_type not in SUPPORTED_OPS:
            raise ModelImportError(f"{label}: unsupported operator; the chip runs "
                                   f"{', '.join(sorted(set(SUPPORTED_OPS) - {'Constant'}))}")
        live = [n for n in node.input if n in streams]
        if len(live) != 1 or node.input[0] != live[0]:
            raise ModelImportError(f"{label}: its first input must be the network's activations "
                                   f"and the others constants (initializers)")
        x = streams.pop(live[0])
        others = []
        for name in node.input[1:]:
            if name and name not in consts:
                raise ModelImportError(f"{label}: input '{name}' is not a constant")
            others.append(consts.get(name) if name else None)
        streams[node.output[0]] = _apply(node, label, x, others, chain)

    out_name, out = next(iter(streams.items())) if len(streams) == 1 else (None, None)
    if out is None or out_name != graph.output[0].name:
        raise ModelImportError(f"{path}: the graph output '{graph.output[0].name}' is not the end "
                               f"of the chain of layers")
    if not chain.layers:
        raise ModelImportError(f"{path}: no MatMul or Gemm layer")
    if out.state not in ("linear", "final"):
        raise ModelImportError(f"{out.owner}: an activation after the last layer; the chip takes "
                               f"argmax of the last layer's sums")
    return ImportedNetwork(
        layers=tuple(chain.layers), activations=(*chain.activations, "none"),
        input_size=input_size_of(chain.layers[0].shape[0], f"input '{inputs[0].name}'"),
        source=f"{path.name} (ONNX, opset {model.opset_import[0].version if model.opset_import else '?'})",
        notes=tuple(chain.notes))


def _features(shape: tuple[int | None, ...]) -> int | None:
    return None if any(d is None for d in shape) else int(np.prod(shape, dtype=np.int64))


def _apply(node, label: str, x: _Stream, others: list, chain: _Chain) -> _Stream:
    op, attrs = node.op_type, _attrs(node)
    if op in ("Identity", "Dropout"):
        return x
    if op == "Flatten":
        if attrs.get("axis", 1) != 1:
            raise ModelImportError(f"{label}: Flatten axis {attrs.get('axis')}: the chip keeps the "
                                   f"batch dimension (axis 1)")
        return _Stream((_features(x.shape),), x.state, label)
    if op == "Reshape":
        shape = [int(v) for v in np.asarray(others[0]).ravel()] if others and others[0] is not None else []
        if not shape or shape[0] not in (0, -1, 1):
            raise ModelImportError(f"{label}: a reshape must keep the batch dimension (0 or -1 first)")
        rest = shape[1:]
        total = _features(x.shape)
        if -1 in rest:
            known = int(np.prod([d for d in rest if d != -1], dtype=np.int64))
            if total is None or known == 0 or total % known:
                raise ModelImportError(f"{label}: cannot resolve -1 in shape {shape} for {total} features")
            rest = [total // known if d == -1 else d for d in rest]
        if total is not None and int(np.prod(rest, dtype=np.int64)) != total:
            raise ModelImportError(f"{label}: shape {shape} does not hold the {total} features of its input")
        return _Stream(tuple(rest), x.state, label)
    if op in ("MatMul", "Gemm"):
        return _layer(node, label, attrs, x, others, chain)
    if op == "Add":
        if x.state != "linear":
            raise ModelImportError(f"{label}: an Add that is not a layer's bias; the chip has no adder")
        _check_bias(label, others[0], chain.layers[-1].shape[1])
        return x
    if op == "Relu":
        if x.state == "sign":          # Relu(Sign(s)): the step dac_max * (s > 0)
            chain.activations.append("binary")
            return _Stream(x.shape, "activated", label)
        if x.state != "linear":
            raise ModelImportError(f"{label}: a Relu must follow a MatMul or Gemm layer")
        chain.activations.append("relu")
        return _Stream(x.shape, "activated", label)
    if op == "Sign":
        if x.state != "linear":
            raise ModelImportError(f"{label}: a Sign must follow a MatMul or Gemm layer")
        return _Stream(x.shape, "sign", label)
    if op == "Greater":
        threshold = np.asarray(others[0]) if others and others[0] is not None else None
        if x.state != "linear" or threshold is None or np.any(threshold != 0):
            raise ModelImportError(f"{label}: only Greater(layer, 0) is a step the chip realises")
        return _Stream(x.shape, "greater", label)
    if op == "Cast":
        from onnx import TensorProto   # why: see _load

        if x.state != "greater" or attrs.get("to") not in (TensorProto.FLOAT, TensorProto.DOUBLE,
                                                            TensorProto.FLOAT16):
            raise ModelImportError(f"{label}: only a Cast of Greater(layer, 0) to a float type "
                                   f"(a step) is supported")
        chain.activations.append("binary")
        return _Stream(x.shape, "activated", label)
    # Softmax / LogSoftmax
    if x.state != "linear":
        raise ModelImportError(f"{label}: a {op} is only accepted on the last layer's sums")
    chain.notes.append(f"{label} dropped: argmax of the sums is argmax of the {op}")
    return _Stream(x.shape, "final", label)


def _check_bias(label: str, bias, n_out: int) -> None:
    if bias is None:
        return
    b = np.asarray(bias, dtype=np.float64)
    if b.size not in (1, n_out):
        raise ModelImportError(f"{label}: bias of shape {b.shape} does not fit {n_out} outputs")
    if np.any(b != 0):
        raise ModelImportError(f"{label}: nonzero bias (max |b| = {float(np.abs(b).max()):.4g}); the "
                               f"chip's crossbar has no bias row, retrain without bias")


def _layer(node, label: str, attrs: dict, x: _Stream, others: list, chain: _Chain) -> _Stream:
    if x.state == "linear":
        raise ModelImportError(f"{label}: follows {x.owner} with no activation between; the chip "
                               f"activates (ReLU or step) between layers")
    if x.state in ("sign", "greater"):
        raise ModelImportError(f"{label}: follows {x.owner}: a bare Sign gives -1 below zero where the "
                               f"chip's binary activation gives 0 (use Relu(Sign(s)) or "
                               f"Cast(Greater(s, 0)))")
    if x.state == "final":
        raise ModelImportError(f"{label}: a layer after {x.owner}")
    w = np.asarray(others[0], dtype=np.float64) if others and others[0] is not None else None
    if w is None or w.ndim != 2:
        raise ModelImportError(f"{label}: the weight must be a 2-D constant")
    if node.op_type == "Gemm":
        if attrs.get("transA", 0):
            raise ModelImportError(f"{label}: transA = 1 is not a layer of the chip")
        if attrs.get("transB", 0):
            w = w.T
        w = float(attrs.get("alpha", 1.0)) * w
        bias = others[1] if len(others) > 1 else None
        if bias is not None:
            bias = float(attrs.get("beta", 1.0)) * np.asarray(bias, dtype=np.float64)
        _check_bias(label, bias, w.shape[1])
    if len(x.shape) != 1:
        raise ModelImportError(f"{label}: its input has shape {x.shape} after the batch dimension; "
                               f"flatten it to one vector first")
    features = x.shape[0]
    if features is not None and features != w.shape[0]:
        raise ModelImportError(f"{label}: weight of shape {w.shape} does not fit its input of "
                               f"{features} features")
    if not np.isfinite(w).all():
        raise ModelImportError(f"{label}: the weight is not finite")
    chain.layers.append(w)
    return _Stream((w.shape[1],), "linear", label)
