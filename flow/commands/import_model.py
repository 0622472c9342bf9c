"""`xbarflow import MODEL --out DIR [--base C]`: a network trained elsewhere (ONNX, or PyTorch
when installed) -> a config TOML and a weights file that demo, sim, program, cost, sweep accept.

The readers and the writer are xbarflow.flow.interop (model_file, onnx_reader, torch_reader,
network); the requantisers are calibrated as quantisation-aware training calibrates them
(xbarflow.flow.model.imported). Prints the golden accuracy of the imported chip on the test set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..interop.model_file import read_model
from ..interop.network import ModelImportError, write_imported
from ..model.context import RunContext
from .common import UsageError, dataset_or_usage, load_config, writable_dir

__all__ = ["add_arguments", "run"]


def add_arguments(parser) -> None:
    parser.description = ("Import a network trained elsewhere: an ONNX model (MatMul/Gemm without "
                          "bias, Relu, a step, Flatten, Reshape) or a PyTorch nn.Sequential / "
                          "state_dict of Linear and ReLU (needs PyTorch).")
    parser.add_argument("model", type=Path, help="the model file (.onnx, or .pt/.pth)")
    parser.add_argument("--out", type=Path, required=True, help="folder for <name>.toml and <name>-weights.npz")
    parser.add_argument("--base", "--config", dest="base", type=Path, default=None,
                        help="config whose device, crossbar, ADC, host, ... sections the chip keeps "
                             "(default configs/slp.toml)")
    parser.add_argument("--name", default=None, help="config name (default: the model file's stem)")
    parser.add_argument("--data", type=Path, default=None,
                        help="data set to calibrate and score on (default: shipped MNIST)")


def run(args) -> int:
    base = load_config(args.base)
    try:
        net = read_model(args.model)
    except ModelImportError as exc:
        raise UsageError(str(exc)) from None
    name = args.name or re.sub(r"[^A-Za-z0-9_.-]", "_", args.model.stem) or "imported"
    out = writable_dir(args.out)
    dataset = dataset_or_usage(args.data)
    try:
        files = write_imported(net, base, dataset, out, name)
    except ModelImportError as exc:
        raise UsageError(str(exc)) from None
    context = RunContext.build(files.cfg, dataset, weights=files.weights)
    golden = float(np.mean(context.golden.infer(context.test_codes).classes == context.labels))
    sizes = "-".join(str(n) for n in (files.cfg.network.inputs, *files.cfg.network.layers))
    print(f"[xbarflow] imported {net.source}: {sizes}, activations {', '.join(net.activations)}, "
          f"{len(files.cfg.tiles)} tile(s), requant_mult {list(files.weights.requant_mult)}")
    for note in net.notes:
        print(f"[xbarflow] note: {note}")
    print(f"[xbarflow] wrote {files.config} and {files.weights_file}")
    print(json.dumps({"config": str(files.config), "weights": str(files.weights_file),
                      "software_accuracy": files.weights.meta["software_test_accuracy"],
                      "golden_accuracy": golden}))
    return 0
