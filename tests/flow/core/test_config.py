"""ChipConfig loading and validation: every bad config is one clear ConfigError."""

import pytest

from xbarflow.flow.core import config as cfgmod
from xbarflow.flow.core.config import ConfigError


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_default_is_the_papers_slp():
    cfg = cfgmod.load()
    assert (cfg.rows, cfg.outputs, cfg.cols) == (196, 10, 20)
    assert cfg.crossbar.partitions == 8 and cfg.crossbar.wire_r == 1.0
    assert cfg.input_bytes == 98
    assert cfg.digest() == cfgmod.load().digest()
    assert cfg.adc.conversion_cycles == cfg.adc.bits + 1


def test_write_path_defaults_and_the_low_threshold_preset():
    cfg = cfgmod.load()
    assert (cfg.programming.bias, cfg.crossbar.cell) == ("v2", "1R")
    low = cfg.replace(**{"device.preset": "low_threshold"})
    assert (low.device.set_v_half, low.device.reset_v_half, low.device.v_slope, low.device.rate_max) == \
        (0.9, 0.95, 0.07, 0.03)
    back = low.replace(**{"device.preset": "hfo2_aguirre2024"})
    assert back.device.set_v_half == cfg.device.set_v_half and back.digest() == cfg.digest()


def test_replace_is_validated_and_changes_digest():
    cfg = cfgmod.load()
    ideal = cfg.replace(**{"crossbar.wire_r": 0.0})
    assert ideal.crossbar.wire_r == 0.0 and ideal.digest() != cfg.digest()
    with pytest.raises(ConfigError, match="adc.bits"):
        cfg.replace(**{"adc.bits": 40})


@pytest.mark.parametrize("text, needle", [
    ("[adc]\nbitz = 8\n", "did you mean 'bits'"),
    ("[crossbarr]\nwire_r = 1\n", "did you mean 'crossbar'"),
    ("[adc]\nbits = 'eight'\n", "expected an integer"),
    ("[adc]\nbits = 1\n", "adc.bits must be in 2..16"),
    ("[device]\ng_on = 1e-9\ng_off = 1e-7\n", "g_off < device.g_on"),
    ("[host]\ninterface = 'i2c'\n", "spi or uart"),
    ("[network]\ninput_size = 14\nlayers = [10]\nactivations = ['relu']\n", "last layer"),
    ("[crossbar]\ntile_cols = 5\n", "tile_cols must be even"),  # layers larger than a tile are tiled
    ("[programming]\nbias = 'v4'\n", "programming.bias must be v2, v3, float or ideal, got 'v4'"),
    ("[programming]\nbias = 'float'\n[crossbar]\nwire_r = 0.0\n", "'float' needs crossbar.wire_r > 0"),
    ("[crossbar]\ncell = '2T2R'\n", "crossbar.cell must be 1R, 1T1R or 1S1R, got '2T2R'"),
    ("[crossbar]\nselector = 'ovonic'\n", "selector must be threshold or exponential"),
    ("[crossbar]\ncell = '1S1R'\n[device]\nread_model = 'qmm'\n[train]\nmethod = 'lbfgs'\n"
     "device_aware = true\n", "train.device_aware is not modelled"),
    ("[device]\npreset = 'low_threshold'\n[crossbar]\nselector_g_leak = 1e-3\n",
     "0 < selector_g_leak < selector_g_on"),
    ("[adc\nbits = 8\n", "malformed TOML"),
    ("adc = 3\n", "must be a table"),
])
def test_bad_configs_name_the_problem(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        cfgmod.load(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        cfgmod.load(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="directory"):
        cfgmod.load(tmp_path)


def test_partial_config_takes_defaults(tmp_path):
    cfg = cfgmod.load(write(tmp_path, "name = 'x'\n[adc]\nbits = 6\n"))
    assert cfg.name == "x" and cfg.adc.bits == 6 and cfg.crossbar.partitions == 8
