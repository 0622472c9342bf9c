"""Simulation stalls (cocotb_tests/watchdog.py in the inference bench): an analog side that never
answers adc_start (a test-only fault) must make the bench fail with a message naming the state
the controller stalled in, CONVERT; on a Verilator model that hides internal signals, the
message must say the state is not visible."""

import json

import numpy as np
import pytest


# -- watchdogs -----------------------------------------------------------------------------------

def _stalled_run(cfg, dataset, tmp_path, monkeypatch, transport="pins"):
    from xbarflow.flow.model.golden import GoldenChip
    from xbarflow.flow.sim.runner import SimulatorError, build, run

    monkeypatch.setenv("XBARFLOW_TEST_FAULT", "adc_never_answers")
    chip = GoldenChip.from_weights(cfg, np.random.default_rng(0).standard_normal((cfg.rows, cfg.outputs)))
    with pytest.raises(SimulatorError):
        run(build(cfg, "verilator", transport=transport), chip.array.conductance, dataset.x_test[:1],
            dataset.y_test[:1], np.arange(1), tmp_path, timeout_s=600)
    # The bench records why it stopped (under pytest the runner's own message is generic).
    return json.loads((tmp_path / "cosim.json").read_text())["error"]


def test_watchdog_names_the_state_the_controller_stalled_in(cfg, dataset, tmp_path, monkeypatch):
    message = _stalled_run(cfg, dataset, tmp_path, monkeypatch)
    assert "StallError" in message and "image 0" in message
    assert "controller stalled in CONVERT (ctrl_state=" in message, message
    # The code in the message is the sidecar's encoding of CONVERT.
    sidecar = json.loads(next(tmp_path.glob("job.json")).read_text())["sidecar"]
    fsms = json.loads(open(sidecar).read())["fsms"]
    code = {v: k for k, v in fsms["xbarflow_top.controller.ctrl_state"].items()}["CONVERT"]
    assert f"(ctrl_state={code})" in message


def test_watchdog_says_when_states_are_not_visible(cfg, dataset, tmp_path, monkeypatch):
    """The HDL-transactor harness is built with --public-depth 1: no internal signal visible."""
    message = _stalled_run(cfg, dataset, tmp_path, monkeypatch, transport="hdl")
    assert "StallError" in message and "not visible" in message, message
    assert "CONVERT" not in message
