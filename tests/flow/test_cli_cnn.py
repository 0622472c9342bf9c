"""The golden evaluation path on a layered (CNN) config with weights given to it
(`train.weights`, as cnn-train's trained weights will be): `xbarflow classify` and
`Chip.accuracy`; images that do not fit a 28 x 28 config are one line and exit 2."""

import numpy as np
import pytest

from xbarflow.flow.api import Chip
from xbarflow.flow.cli import main
from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.data import image_to_codes
from xbarflow.flow.model.golden import GoldenChip
from xbarflow.flow.model.weights import Weights, dataset_fingerprint, save, training_digest

CNN = cfgmod.CONFIG_DIR / "cnn.toml"


@pytest.fixture(scope="module")
def cnn_with_weights(tmp_path_factory, dataset):
    """configs/cnn.toml naming hand-made weights (random layers, fixed requantisers)."""
    d = tmp_path_factory.mktemp("cnn")
    cfg = cfgmod.load(CNN)
    rng = np.random.default_rng(21)
    layers = tuple(rng.standard_normal(shape) for shape in cfg.network.layer_shapes)
    weights = Weights(w=layers[0], config_digest=training_digest(cfg), layers=layers,
                      requant_mult=(48, 64), meta={"dataset": dataset_fingerprint(dataset)})
    save(weights, d / "cnn_weights.npz")
    text = CNN.read_text().replace("[train]\n", '[train]\nweights = "cnn_weights.npz"\n', 1)
    assert text != CNN.read_text()
    (d / "cnn.toml").write_text(text)
    return d / "cnn.toml", weights


def test_classify_a_28x28_image_on_the_cnn(cnn_with_weights, dataset, tmp_path, capsys):
    path, weights = cnn_with_weights
    cfg = cfgmod.load(path)
    image = dataset.x_test[3]
    np.save(tmp_path / "img.npy", image)
    assert main(["classify", str(tmp_path / "img.npy"), "--config", str(path)]) == 0
    out = capsys.readouterr().out
    ref = GoldenChip.from_weights(cfg, weights).infer(image_to_codes(image, cfg)[None], 0)
    assert f"class {int(ref.classes[0])} (golden model, config cnn)" in out
    assert f"ADC codes {ref.adc_codes[0].tolist()}" in out


def test_golden_accuracy_of_the_cnn_with_given_weights(cnn_with_weights, dataset):
    path, weights = cnn_with_weights
    chip = Chip.from_config(path)
    assert chip.context.weights.layers[1].tobytes() == weights.layers[1].tobytes()
    images, labels = dataset.x_test[:40], dataset.y_test[:40]
    classes = chip.classify(images)
    assert chip.accuracy(images, labels) == float(np.mean(classes == labels))
    assert len(set(classes.tolist())) > 1, "random weights still separate some images"


@pytest.mark.parametrize("shape, needle", [((14, 14), "cannot resize 14x14 images to 28x28"),
                                           ((28, 27), "image is 28x27, need a square image"),
                                           ((2, 28, 28), "expected a 2-D image")])
def test_images_that_do_not_fit_the_28x28_config(shape, needle, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros(shape, np.uint8))
    code = main(["classify", str(tmp_path / "bad.npy"), "--config", str(CNN)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err and "Traceback" not in err, err


def test_a_larger_image_is_area_resized_to_28x28():
    cfg = cfgmod.load(CNN)
    big = np.kron(np.arange(28 * 28, dtype=np.int64).reshape(28, 28) % 256, np.ones((2, 2), np.int64))
    codes = image_to_codes(big.astype(np.uint8), cfg)
    assert codes.shape == (784,)
    np.testing.assert_array_equal(codes, image_to_codes((np.arange(784) % 256).reshape(28, 28).astype(np.uint8), cfg))
