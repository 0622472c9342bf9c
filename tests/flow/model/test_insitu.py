"""xbarflow.flow.model.insitu: in-situ Manhattan-rule training on the device programming model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xbarflow.analog_models.programming import logistic_rate
from xbarflow.flow.cli import main as xbarflow
from xbarflow.flow.core import config
from xbarflow.flow.model import insitu, train
from xbarflow.flow.model import weights as weights_mod
from xbarflow.flow.core.config import ConfigError
from xbarflow.flow.data import Dataset, to_dac_codes
from xbarflow.flow.model.golden import GoldenChip
from tests.support.synthetic_data import synthetic

CFG = config.load()
# 4x4 inputs (16 rows of the 196 x 20 tile), the SLP's devices, a short run
TINY = CFG.replace(**{"network.input_size": 4, "train.method": "manhattan",
                      "train.manhattan_epochs": 3, "train.manhattan_batch": 50})
# the same inputs through a 16-16-10 relu MLP on 8 x 8 tiles (8 + 6 tiles)
TINY_MLP = TINY.replace(**{"network.layers": [16, 10], "network.activations": ["relu", "none"],
                           "crossbar.tile_rows": 8, "crossbar.tile_cols": 8,
                           "crossbar.partitions": 2, "train.manhattan_epochs": 4})


DATA = synthetic(1200, 0)


@pytest.fixture(scope="module")
def slp_weights() -> weights_mod.Weights:
    return train.train(TINY, DATA)


def _accuracy(chip: GoldenChip, data: Dataset, cfg) -> float:
    return float(np.mean(chip.infer(to_dac_codes(data.x_test, cfg)).classes == data.y_test))


def test_slp_learns_from_pristine_devices(slp_weights):
    meta = slp_weights.meta
    assert meta["method"] == "manhattan" and meta["init_pulses"] == 0
    history = meta["train_loss_history"]
    assert history[0] > history[-1] and history[-1] < 0.5 * np.log(10)
    assert meta["device_golden_test_accuracy"] > 0.9        # chance: 0.1
    assert meta["mapped_golden_test_accuracy"] > 0.9
    assert meta["steps"] == 3 * 12 and meta["pulses_total"] == sum(meta["pulses_per_epoch"]) > 0
    # train() dispatches to it and the weights are what the golden model maps
    assert slp_weights.config_digest == weights_mod.training_digest(TINY)
    assert _accuracy(GoldenChip.from_weights(TINY, slp_weights), DATA, TINY) == \
        meta["mapped_golden_test_accuracy"]
    # the device state travels with the weights: the golden chip on the devices' conductances
    chip = insitu.device_chip(TINY, slp_weights)
    (g,) = slp_weights.device_conductance
    assert chip.layer_conductance[0] is g or np.array_equal(chip.layer_conductance[0], g)
    assert _accuracy(chip, DATA, TINY) == meta["device_golden_test_accuracy"]
    with pytest.raises(ValueError, match="no device state"):
        insitu.device_chip(TINY, weights_mod.Weights(w=slp_weights.w, config_digest="x"))


def test_mnist_subset_slp_learns(dataset):
    """60 pulse steps on 3000 MNIST images (default 14x14 SLP): well above chance."""
    sub = Dataset(dataset.x_train[:3000], dataset.y_train[:3000], dataset.x_test[:2000],
                  dataset.y_test[:2000])
    cfg = CFG.replace(**{"train.method": "manhattan", "train.manhattan_epochs": 2,
                         "train.manhattan_batch": 100})
    meta = train.train(cfg, sub).meta
    assert meta["train_loss_history"][0] > meta["train_loss_history"][1]
    assert meta["device_golden_test_accuracy"] > 0.7 and meta["mapped_golden_test_accuracy"] > 0.7


def test_devices_are_the_golden_chip_and_weights_their_differential():
    result = insitu.train_devices(TINY, DATA)
    (g,) = result.conductances
    dev = result.devices[0]
    assert np.array_equal(g, dev.conductance()[:16, :20])
    assert dev.pulse_count[16:].sum() == 0                  # unused rows never pulsed
    # both devices of a pair are pulsed together, at most once per step
    assert np.array_equal(dev.pulse_count[:, 0::2], dev.pulse_count[:, 1::2])
    assert dev.pulse_count.max() <= result.steps
    assert result.training_pulses[0].sum() == sum(result.pulses_per_epoch) and result.init_pulses == 0
    # with hidden layers the random init is counted apart from the training pulses
    mlp = insitu.train_devices(TINY_MLP.replace(**{"train.manhattan_epochs": 1}), DATA)
    total = sum(int(d.pulse_count.sum()) for d in mlp.devices)
    assert mlp.init_pulses > 0 and total == mlp.init_pulses + sum(mlp.pulses_per_epoch)
    assert sum(int(c.sum()) for c in mlp.training_pulses) == sum(mlp.pulses_per_epoch)
    (w,), _ = insitu.mapped_weights(TINY, result, to_dac_codes(DATA.x_train, TINY).astype(float))
    step = (0.9 * TINY.device.g_on - TINY.device.g_off) / (TINY.quant.weight_levels - 1)
    assert np.allclose(w * step, g[:, 0::2] - g[:, 1::2], rtol=0, atol=1e-22)


def test_mlp_learns_with_random_hidden_init(tmp_path):
    weights = train.train(TINY_MLP, DATA)
    meta = weights.meta
    assert [m.shape for m in weights.layers] == [(16, 16), (16, 10)]
    assert [g.shape for g in weights.device_conductance] == [(16, 32), (16, 20)]
    assert meta["init_pulses"] > 0 and len(weights.requant_mult) == 1
    assert len(weights.device_requant_mult) == 1
    assert meta["train_loss_history"][0] > meta["train_loss_history"][-1]
    assert meta["device_golden_test_accuracy"] > 0.8
    assert meta["mapped_golden_test_accuracy"] > 0.8
    weights_mod.save(weights, tmp_path / "mlp.npz")
    back = weights_mod.load(tmp_path / "mlp.npz", TINY_MLP)
    assert back.device_requant_mult == weights.device_requant_mult
    assert all(a.tobytes() == b.tobytes() for a, b in zip(back.device_conductance, weights.device_conductance))
    assert _accuracy(insitu.device_chip(TINY_MLP, back), DATA, TINY_MLP) == meta["device_golden_test_accuracy"]


def test_every_update_is_one_fixed_pulse_against_the_gradient_sign():
    cfg = CFG.replace(**{"network.input_size": 2, "network.layers": [2],
                         "device.c2c_sigma": 0.0, "device.d2d_sigma": 0.0})
    cells = insitu.pair_cells(cfg)
    g = np.array([[-3.0, 1.0],        # threshold 0.2 * 3 = 0.6: pairs (0,0), (0,1), (2,1) move
                  [0.5, -0.1],
                  [0.0, 2.0],
                  [-0.6, 0.0]])       # exactly at the threshold: not above it, no pulse
    plan = insitu.pulse_plan(cfg, cells, [g], 0.2)
    v_set, v_reset = cfg.programming.v_set, cfg.programming.v_reset
    got = sorted(zip(plan.row.tolist(), plan.col.tolist(), plan.amp.tolist()))
    assert got == sorted([(0, 0, v_set), (0, 1, -v_reset),     # dL/dW < 0: W up
                          (0, 2, -v_reset), (0, 3, v_set),     # dL/dW > 0: W down
                          (2, 2, -v_reset), (2, 3, v_set)])
    assert plan.pairs == (3,) and set(plan.tile.tolist()) == {0}
    # fired on devices at lambda = 0.5: each pulsed cell moves once, by the model's fixed step
    dev = insitu.tile_devices(cfg)
    dev[0].lam[:] = 0.5
    w_before = (lambda c: c[:, 0::2] - c[:, 1::2])(dev[0].conductance()[:4, :4])
    insitu.apply_plan(dev, plan)
    lam = dev[0].lam
    k_set, k_reset = logistic_rate(v_set, cfg), logistic_rate(-v_reset, cfg)
    for r, c, a in got:
        assert dev[0].pulse_count[r, c] == 1
        assert lam[r, c] == pytest.approx(0.5 + k_set * 0.5 if a > 0 else 0.5 - k_reset * 0.5, abs=1e-15)
    assert dev[0].pulse_count.sum() == 6
    w_after = (lambda c: c[:, 0::2] - c[:, 1::2])(dev[0].conductance()[:4, :4])
    moved = np.sign(w_after - w_before)
    assert np.array_equal(moved, np.array([[1, -1], [0, 0], [0, -1], [0, 0]]))
    # a zero gradient moves nothing
    assert insitu.pulse_plan(cfg, cells, [np.zeros((4, 2))], 0.2).amp.size == 0


def test_same_seeds_same_devices_other_seeds_other_devices():
    cfg = TINY.replace(**{"train.manhattan_epochs": 1})
    a, b = insitu.train_devices(cfg, DATA), insitu.train_devices(cfg, DATA)
    assert a.conductances[0].tobytes() == b.conductances[0].tobytes()
    assert a.pulses_per_epoch == b.pulses_per_epoch and a.loss_history == b.loss_history
    for change in ({"seeds.train": 7}, {"seeds.device": 7}):
        other = insitu.train_devices(cfg.replace(**change), DATA)
        assert other.conductances[0].tobytes() != a.conductances[0].tobytes(), change
    # tiles of a tiled network are different devices; tile 0 is DeviceArray(cfg) itself
    devs = insitu.tile_devices(TINY_MLP)
    assert devs[0].cfg is TINY_MLP and not np.array_equal(devs[0].d2d, devs[1].d2d)


def test_digest_cache_and_cli(tmp_path, slp_weights, capsys):
    base = weights_mod.training_digest(TINY)
    assert base != weights_mod.training_digest(TINY.replace(**{"train.method": "lbfgs"}))
    for change in ({"seeds.device": 9}, {"programming.v_set": 1.25}, {"device.c2c_sigma": 0.2},
                   {"train.manhattan_threshold": 0.5}, {"adc.bits": 6}):
        assert weights_mod.training_digest(TINY.replace(**change)) != base, change
    # in-situ training pulses with the ideal write: neither the bias nor the cell type enters
    for change in ({"crossbar.wire_r": 0.0}, {"seeds.noise": 9}, {"adc.noise_lsb": 0.5},
                   {"programming.bias": "v3"}, {"crossbar.cell": "1T1R"},
                   {"crossbar.selector_v_th": 0.5}):
        assert weights_mod.training_digest(TINY.replace(**change)) == base, change
    # the manhattan knobs leave the other methods' cached weights valid
    mlp = config.load(config.CONFIG_DIR / "mlp.toml")
    assert weights_mod.training_digest(mlp) == weights_mod.training_digest(mlp.replace(**{"train.manhattan_batch": 7}))
    assert weights_mod.training_digest(CFG) == weights_mod.training_digest(CFG.replace(**{"train.manhattan_epochs": 9}))

    weights_mod.save(slp_weights, tmp_path / "w.npz")
    back = weights_mod.load(tmp_path / "w.npz", TINY)
    assert back.w.tobytes() == slp_weights.w.tobytes() and back.meta == slp_weights.meta
    assert back.device_conductance[0].tobytes() == slp_weights.device_conductance[0].tobytes()
    assert back.device_requant_mult == () and back.requant_mult == ()

    data = tmp_path / "synthetic.npz"
    np.savez(data, x_train=DATA.x_train, y_train=DATA.y_train, x_test=DATA.x_test, y_test=DATA.y_test)
    args = ["--set", "network.input_size=4", "--set", "train.method=manhattan",
            "--set", "train.manhattan_epochs=3", "--set", "train.manhattan_batch=50",
            "--cache-dir", str(tmp_path / "cache"), "--data", str(data)]
    assert xbarflow(["train", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["training_digest"] == base
    assert out["golden_test_accuracy"] == slp_weights.meta["mapped_golden_test_accuracy"]
    assert out["device_golden_test_accuracy"] == slp_weights.meta["device_golden_test_accuracy"]
    assert out["pulses_total"] == slp_weights.meta["pulses_total"]
    # a hardware-only change reuses the trained devices and re-evaluates them under it
    assert xbarflow(["train", *args, "--set", "crossbar.wire_r=50.0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cached"] and out["wire_r"] == 50.0 and out["device_golden_test_accuracy"] > 0.9


@pytest.mark.parametrize("override, needle", [
    ({"train.method": "sgd"}, "train.method must be auto, lbfgs, qat or manhattan, got 'sgd'"),
    ({"train.manhattan_epochs": 0}, "train.manhattan_epochs must be in 1..1000"),
    ({"train.manhattan_batch": 0}, "train.manhattan_batch must be in 1..65536"),
    ({"train.manhattan_threshold": 1.0}, r"train.manhattan_threshold must be in \[0, 1\)"),
    ({"train.manhattan_threshold": -0.1}, r"train.manhattan_threshold must be in \[0, 1\)"),
    ({"train.manhattan_init_pulses": -1}, "train.manhattan_init_pulses must be in 0..1000"),
    ({"train.manhattan_batch": 1.5}, "expected an integer"),
])
def test_config_validation(override, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        CFG.replace(**override)
    assert "\n" not in str(info.value)


def test_method_is_accepted_for_any_depth_and_auto_is_unchanged():
    mlp = config.load(config.CONFIG_DIR / "mlp.toml")
    assert mlp.replace(**{"train.method": "manhattan"}).train.resolved_method(2) == "manhattan"
    assert CFG.train.resolved_method(1) == "lbfgs" and mlp.train.resolved_method(2) == "qat"
    with pytest.raises(ConfigError, match="lbfgs' trains single-layer networks only"):
        mlp.replace(**{"train.method": "lbfgs"})


def test_demo_cosimulates_the_trained_devices(tmp_path, slp_weights, capsys):
    """`xbarflow demo` on in-situ weights: the chip and its golden reference are the trained
    devices' own conductances (not their level mapping), co-simulated with parity."""
    from xbarflow.flow.cli import main

    data = tmp_path / "synthetic.npz"
    np.savez(data, x_train=DATA.x_train, y_train=DATA.y_train, x_test=DATA.x_test, y_test=DATA.y_test)
    sets = ["network.input_size=4", "train.method=manhattan", "train.manhattan_epochs=3",
            "train.manhattan_batch=50"]
    argv = ["demo", "--images", "10", "--data", str(data), "--out", str(tmp_path / "run")]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    assert "trained devices' own conductances" in capsys.readouterr().out
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["parity"] == 1.0 and report["images"] == 10
    device = _accuracy(insitu.device_chip(TINY, slp_weights), DATA, TINY)
    assert report["golden_accuracy_full_test_set"] == pytest.approx(device, abs=0)


def test_sim_cosimulates_the_trained_devices(tmp_path, slp_weights, monkeypatch):
    """`xbarflow sim` on in-situ weights takes the demo's chain (xbarflow.flow.model.context):
    the chip and its golden reference are the trained devices, not their level mapping."""
    from xbarflow.flow.cli import main
    from xbarflow.flow.commands import sim as sim_command
    from xbarflow.flow.sim.parity import readback_digest

    # the tiny in-situ config and its data set in place of configs/slp.toml and the shipped MNIST
    monkeypatch.setattr(sim_command, "load_config", lambda path: TINY)
    monkeypatch.setattr(sim_command, "dataset_or_usage", lambda path=None: DATA)
    assert main(["sim", "--images", "10", "--jobs", "1", "--out", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["parity"] == 1.0 and report["images"] == 10

    codes = to_dac_codes(DATA.x_test[:10], TINY)
    device = insitu.device_chip(TINY, slp_weights).infer(codes)
    mapped = GoldenChip.from_weights(TINY, slp_weights).infer(codes)
    digest = lambda ref: readback_digest(np.arange(10), ref.classes, ref.adc_codes)  # noqa: E731
    assert digest(device) != digest(mapped), "the two chips must differ for this test to tell them apart"
    assert report["golden_readback_sha256"] == digest(device)
    assert report["readback_sha256"] == digest(device)
