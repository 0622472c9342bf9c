"""An imported network co-simulated: the ONNX 196-256-10 ReLU model made from the MLP's reference
weights (onnx.helper), imported with `xbarflow import`, then run through the written config on
Icarus and Verilator; 20 images at parity with the golden model of the imported chip (RESULT
class, read-back sums, DAC codes driven on every tile)."""

import numpy as np
import pytest

from tests.support.onnx_models import chain_model, save
from xbarflow.flow.cli import main
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.data import to_dac_codes
from xbarflow.flow.model.context import RunContext
from xbarflow.flow.model.weights import load_reference
from xbarflow.flow.sim import parity
from xbarflow.flow.sim.runner import build, run

IMAGES = 20


@pytest.fixture(scope="module")
def imported(dataset, tmp_path_factory):
    mlp = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml")
    ref = load_reference(mlp, dataset)
    folder = tmp_path_factory.mktemp("imported")
    model = save(chain_model(list(ref.layers), ("relu",)), folder / "onnx_mlp.onnx")
    assert main(["import", str(model), "--out", str(folder), "--base",
                 str(cfgmod.CONFIG_DIR / "mlp.toml")]) == 0
    return RunContext.build(cfgmod.load(folder / "onnx_mlp.toml"), dataset)


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_imported_mlp_cosimulates_at_parity(imported, sim, dataset, tmp_path):
    cfg, chip = imported.cfg, imported.golden
    assert cfg.name == "onnx_mlp" and len(cfg.tiles) == 10 and imported.weights.meta["method"] == "imported"
    indices = np.linspace(0, len(dataset.y_test) - 1, IMAGES).astype(np.int64)
    result = run(build(cfg, sim), chip.layer_conductance, dataset.x_test[indices],
                 dataset.y_test[indices], indices, tmp_path, timeout_s=900,
                 requant_mult=chip.requant_mult)
    codes = to_dac_codes(dataset.x_test[indices], cfg)
    golden = chip.infer(codes, indices, trace=True)
    assert result.mismatches == []
    verdict = parity.check(result, golden, codes)
    assert verdict.same.all() and float(verdict.same.mean()) == 1.0
    assert np.array_equal(result.sums, golden.adc_codes)
    assert np.array_equal(result.classes, golden.classes)
    assert golden.trace.activations[0].any(), "the hidden layer's codes were driven"
