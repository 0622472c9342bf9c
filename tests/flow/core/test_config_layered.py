"""The layered form of network.layers (conv, pool, flatten, dense): geometry, feature-map
allocation and every one-line ConfigError of CNN_SPEC.md section 1.

Expected shapes and addresses are worked out by hand here from the spec's rules
(out = floor((H + 2P - K) / S) + 1, maps alternating between regions B and C)."""

import pytest

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.core.config import ConfigError, FeatureMapSpec, LayerSpec

CONV = '{ kind = "conv", out_channels = 4, kernel = 3, activation = "relu" }'
POOL = '{ kind = "pool", mode = "max", size = 2 }'
FLAT = '{ kind = "flatten" }'
OUT = '{ kind = "dense", outputs = 10, activation = "none" }'


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def network(tmp_path, *entries, extra=""):
    body = ",\n  ".join(entries)
    return cfgmod.load(write(tmp_path, f"[network]\ninput_size = 8\n{extra}layers = [\n  {body},\n]\n"))


def test_shipped_cnn_geometry_from_first_principles():
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "cnn.toml")
    n = cfg.network
    assert n.layered and n.inputs == 784 and cfg.rows == 784 and cfg.input_bytes == 392
    assert [s.kind for s in n.stages] == ["conv", "pool", "conv", "pool", "flatten", "dense"]
    # 28 - 5 + 1 = 24, /2 = 12, 12 - 5 + 1 = 8, /2 = 4; 4 * 4 * 16 = 256
    assert [s.out_shape for s in n.stages] == [(24, 24, 8), (12, 12, 8), (8, 8, 16), (4, 4, 16),
                                               (1, 1, 256), (1, 1, 10)]
    assert [s.in_shape for s in n.stages][1:] == [s.out_shape for s in n.stages][:-1]
    assert [s.weight_layer for s in n.stages] == [0, None, 1, None, None, 2]
    assert n.layer_shapes == ((25, 8), (200, 16), (256, 10))
    assert n.layers == (8, 16, 10) and n.activations == ("relu", "relu", "none") and n.classes == 10
    assert n.positions == (576, 64, 1)
    # 128 x 32 tiles (16 outputs): 25 rows -> 1, 200 -> 2, 256 -> 2 row tiles, one column tile each
    assert [(t.layer, t.row_start, t.row_stop) for t in cfg.tiles] == [
        (0, 0, 25), (1, 0, 128), (1, 128, 200), (2, 0, 128), (2, 128, 256)]
    assert cfg.events_per_image == 576 * 1 + 64 * 2 + 1 * 2
    # map 0 the image; odd maps at 784, even maps at 784 + 4608 (conv1's map is the largest odd one)
    assert n.feature_maps == (
        FeatureMapSpec(0, (28, 28, 1), -1), FeatureMapSpec(784, (24, 24, 8), 0),
        FeatureMapSpec(784 + 4608, (12, 12, 8), 1), FeatureMapSpec(784, (8, 8, 16), 2),
        FeatureMapSpec(784 + 4608, (4, 4, 16), 3))
    assert [m.size for m in n.feature_maps] == [784, 4608, 1152, 1024, 256]
    assert n.feature_map_codes == 784 + 4608 + 1152
    assert n.stage_maps == ((0, 1), (1, 2), (2, 3), (3, 4), (4, 4), (4, -1))


def test_stride_padding_avg_and_hidden_dense(tmp_path):
    cfg = network(tmp_path,
                  '{ kind = "conv", out_channels = 3, kernel = 3, stride = 2, padding = 1, activation = "binary" }',
                  '{ kind = "pool", mode = "avg", size = 2, stride = 1 }',
                  FLAT, '{ kind = "dense", outputs = 6, activation = "relu" }', OUT,
                  extra="input_channels = 2\n")
    n = cfg.network
    # (8 + 2 - 3) // 2 + 1 = 4; pool (4 - 2) // 1 + 1 = 3
    assert n.stages[0] == LayerSpec("conv", (8, 8, 2), (4, 4, 3), 3, 2, 1, 3, "", "binary", 0)
    assert n.stages[1] == LayerSpec("pool", (4, 4, 3), (3, 3, 3), 2, 1, 0, 3, "avg", "", None)
    assert n.layer_shapes == ((18, 3), (27, 6), (6, 10)) and n.inputs == 128
    assert n.positions == (16, 1, 1)
    # maps: image 128, conv 48 (B), pool 27 (C), hidden dense 6 (B); C starts after the largest odd
    assert [(m.base, m.size) for m in n.feature_maps] == [(0, 128), (128, 48), (176, 27), (128, 6)]
    assert n.feature_map_codes == 128 + 48 + 27
    assert n.stage_maps == ((0, 1), (1, 2), (2, 2), (2, 3), (3, -1))


def test_pool_stride_defaults_to_its_size_and_conv_stride_to_one(tmp_path):
    n = network(tmp_path, CONV, POOL, FLAT, OUT).network
    assert (n.stages[0].stride, n.stages[0].padding, n.stages[0].out_shape) == (1, 0, (6, 6, 4))
    assert (n.stages[1].stride, n.stages[1].out_shape) == (2, (3, 3, 4))


def test_a_layered_mlp_needs_only_flatten(tmp_path):
    n = network(tmp_path, FLAT, '{ kind = "dense", outputs = 5, activation = "relu" }', OUT).network
    assert n.layer_shapes == ((64, 5), (5, 10)) and n.positions == (1, 1)


def test_round_trip_and_replace_keep_the_layered_network(tmp_path):
    cfg = cfgmod.load(cfgmod.CONFIG_DIR / "cnn.toml")
    again = cfgmod.from_dict(cfg.to_dict())
    assert again == cfg and again.digest() == cfg.digest()
    assert cfg.replace(**{"adc.bits": 7}).network == cfg.network
    assert "activations" not in cfg.to_dict()["network"]
    smaller = cfg.replace(**{"network.input_size": 20})
    assert smaller.network.stages[0].out_shape == (16, 16, 8)   # memory re-sized, not kept
    bigger = network(tmp_path, CONV, POOL, FLAT, OUT, extra="feature_map_codes = 4096\n")
    assert bigger.network.feature_map_codes == 4096
    assert cfgmod.from_dict(bigger.to_dict()).network.feature_map_codes == 4096


def test_a_dense_network_keeps_its_form_and_stages():
    mlp = cfgmod.load(cfgmod.CONFIG_DIR / "mlp.toml")
    # what the digests hash: exactly the keys the dense [network] always had
    assert set(mlp.to_dict()["network"]) == {"input_size", "layers", "activations",
                                             "requant_shift", "requant_mult_bits"}
    assert not mlp.network.layered and mlp.network.feature_maps == () and mlp.network.stage_maps == ()
    assert mlp.network.stages == (
        LayerSpec("dense", (1, 1, 196), (1, 1, 256), channels_out=256, activation="relu", weight_layer=0),
        LayerSpec("dense", (1, 1, 256), (1, 1, 10), channels_out=10, activation="none", weight_layer=1))
    assert mlp.network.positions == (1, 1) and mlp.events_per_image == len(mlp.tiles) == 10
    assert mlp.network.feature_map_codes == 0


def test_layered_override_on_a_dense_config_drops_its_activations():
    slp = cfgmod.load()
    cnn = slp.replace(**{"network.layers": [
        {"kind": "conv", "out_channels": 2, "kernel": 3, "activation": "relu"},
        {"kind": "flatten"}, {"kind": "dense", "outputs": 10, "activation": "none"}]})
    assert cnn.network.layer_shapes == ((9, 2), (288, 10))


@pytest.mark.parametrize("entries, extra, needle", [
    ((CONV, '{ kind = "conv2d" }', FLAT, OUT), "", "network.layers[1]: unknown kind 'conv2d'"),
    (('{ out_channels = 4 }', FLAT, OUT), "", "network.layers[0]: unknown kind None"),
    (('{ kind = "conv", out_channels = 4, kernel = 3, activation = "relu", strde = 2 }', FLAT, OUT),
     "", "unknown key 'strde'; did you mean 'stride'?"),
    (('{ kind = "flatten", size = 2 }', OUT), "", "(flatten): unknown key 'size'"),
    (('{ kind = "conv", kernel = 3, activation = "relu" }', FLAT, OUT), "", "missing field 'out_channels'"),
    (('{ kind = "pool", size = 2 }', FLAT, OUT), "", "(pool): missing field 'mode'"),
    (('{ kind = "conv", out_channels = 4, kernel = "3", activation = "relu" }', FLAT, OUT), "",
     "kernel: expected an integer"),
    (('{ kind = "conv", out_channels = 4, kernel = 9, activation = "relu" }', FLAT, OUT), "",
     "kernel 9 is larger than its padded input map 8x8"),
    (('{ kind = "conv", out_channels = 4, kernel = 7, padding = 2, activation = "relu" }',
      '{ kind = "conv", out_channels = 4, kernel = 11, padding = 1, activation = "relu" }', FLAT, OUT), "",
     "network.layers[1] (conv): kernel 11 is larger than its padded input map 8x8"),
    ((CONV, '{ kind = "pool", mode = "max", size = 7 }', FLAT, OUT), "",
     "(pool): window 7 is larger than its input map 6x6"),
    (('{ kind = "conv", out_channels = 4, kernel = 3, stride = 0, activation = "relu" }', FLAT, OUT), "",
     "(conv): stride must be >= 1, got 0"),
    ((CONV, '{ kind = "pool", mode = "max", size = 2, stride = 0 }', FLAT, OUT), "",
     "(pool): stride must be >= 1, got 0"),
    (('{ kind = "conv", out_channels = 4, kernel = 3, padding = 3, activation = "relu" }', FLAT, OUT), "",
     "padding must be in 0..kernel-1 = 2, got 3"),
    (('{ kind = "conv", out_channels = 4, kernel = 3, padding = -1, activation = "relu" }', FLAT, OUT), "",
     "padding must be in 0..kernel-1 = 2, got -1"),
    ((CONV, '{ kind = "pool", mode = "avg", size = 3 }', FLAT, OUT), "",
     "avg pool needs size*size a power of two (the average is a shift), got 3x3"),
    ((CONV, '{ kind = "pool", mode = "median", size = 2 }', FLAT, OUT), "", "mode must be max or avg"),
    ((FLAT, CONV, OUT), "", "network.layers[1] (conv): a conv layer after flatten"),
    ((CONV, FLAT, POOL, OUT), "", "network.layers[2] (pool): a pool layer after flatten"),
    ((CONV, OUT), "", "network.layers[1] (dense): dense before flatten on a 6x6x4 map"),
    ((OUT,), "", "network.layers[0] (dense): dense before flatten on a 8x8x1 map"),
    ((CONV, FLAT, FLAT, OUT), "", "network.layers[2]: a second flatten"),
    ((CONV, FLAT), "", "network.layers must end with a dense layer"),
    ((CONV, FLAT, '{ kind = "dense", outputs = 10, activation = "relu" }'), "",
     "network.layers[2]: the last layer's activation must be 'none'"),
    (('{ kind = "conv", out_channels = 4, kernel = 3, activation = "none" }', FLAT, OUT), "",
     "network.layers[0] (conv): activation must be relu or binary ('none' only on the last layer)"),
    (('{ kind = "conv", out_channels = 4, kernel = 3, activation = "tanh" }', FLAT, OUT), "",
     "activation must be relu or binary"),
    ((CONV, FLAT, '{ kind = "dense", outputs = 1, activation = "none" }'), "",
     "network.layers must end with at least 2 classes"),
    ((CONV, FLAT, '{ kind = "dense", outputs = 0, activation = "none" }'), "", "outputs must be in 1..1024"),
    (('{ kind = "conv", out_channels = 0, kernel = 3, activation = "relu" }', FLAT, OUT), "",
     "out_channels must be in 1..1024"),
    ((CONV, FLAT, OUT), "feature_map_codes = 100\n",
     "feature map memory of 100 codes is too small: needs 208"),     # 64 + 144 (6x6x4)
    ((CONV, FLAT, OUT), "activations = ['relu', 'none']\n", "network.activations must be absent"),
    ((CONV, FLAT, OUT), "input_channels = 0\n", "network.input_channels must be in 1..64"),
    (('{ kind = "conv", out_channels = 2, kernel = 1, activation = "relu" }',) * 5 + (FLAT, OUT), "",
     "network.layers: 5 activated layers, at most 4 fit the REQUANT_MULT register"),
    (("10", FLAT, OUT), "", "network.layers[0]: expected a table"),
])
def test_bad_layered_networks_are_one_line_errors(tmp_path, entries, extra, needle):
    with pytest.raises(ConfigError) as info:
        network(tmp_path, *entries, extra=extra)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg and msg.startswith(str(tmp_path)), msg


@pytest.mark.parametrize("text, needle", [
    ("[network]\ninput_size = 8\ninput_channels = 3\nlayers = [10]\nactivations = ['none']\n",
     "network.input_channels needs the layered form"),
    ("[network]\nfeature_map_codes = 3\n", "network.feature_map_codes needs the layered form"),
    ("[network]\nstage_specs = 3\n", "[network]: unknown key 'stage_specs'"),
])
def test_layered_only_keys_in_a_dense_network(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=None) as info:
        cfgmod.load(write(tmp_path, text))
    assert needle in str(info.value) and "\n" not in str(info.value)
