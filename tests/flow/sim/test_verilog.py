"""Verilog generation: deterministic text, the analog boundary in the port map, FSM names."""

import json

from xbarflow.flow.sim.verilog import generate


def test_generation_is_deterministic_and_documents_the_boundary(cfg, tmp_path):
    a = generate(cfg, tmp_path / "a")
    b = generate(cfg, tmp_path / "b")
    text = a.verilog.read_text()
    assert text == b.verilog.read_text()
    assert "module xbarflow_top(" in text
    assert str(tmp_path) not in text, "no absolute source paths in the output"

    side = json.loads(a.sidecar.read_text())
    ports = {p["name"]: (p["dir"], p["width"]) for p in side["ports"]}
    assert ports["dac_codes"] == ("out", cfg.rows * cfg.quant.dac_bits)
    assert ports["adc_codes"] == ("in", cfg.outputs * cfg.adc.bits)
    for name, direction in [("vmm_start", "out"), ("vmm_done", "in"), ("adc_start", "out"),
                            ("adc_valid", "in"), ("spi_miso", "out"), ("spi_sclk", "in")]:
        assert ports[name] == (direction, 1)
    for name in ports:
        assert f"{name}" in text
    ctrl = side["fsms"]["xbarflow_top.controller.ctrl_state"]
    assert ctrl["0"] == "IDLE"
    assert set(ctrl.values()) == {"IDLE", "LOAD", "DRIVE", "CONVERT", "ACCUMULATE", "NEXT_TILE",
                                  "ACTIVATE", "ARGMAX", "DONE"}
    assert side["config_digest"] == cfg.digest()


def test_sidecar_lists_the_command_layer_fsms(cfg, tmp_path):
    """The receiver, executor and transmitter FSMs, by hierarchical state register, with every
    state name (the watchdog and `xbarflow waves` read them from here)."""
    fsms = json.loads(generate(cfg, tmp_path).sidecar.read_text())["fsms"]
    command = {path: set(states.values()) for path, states in fsms.items() if ".command." in path}
    assert command == {
        "xbarflow_top.command.receiver.receiver_state":
            {"HUNT", "CMD", "ADDR_HI", "ADDR_LO", "LEN", "PAYLOAD", "CRC", "DELIVER"},
        "xbarflow_top.command.executor.executor_state": {"IDLE", "EXECUTE", "COMMIT", "RESPOND"},
        "xbarflow_top.command.transmitter.transmitter_state":
            {"IDLE", "STATUS", "LEN", "PAYLOAD", "CRC"},
    }
    for path in command:                       # the reset state is encoded 0
        assert fsms[path]["0"] in ("HUNT", "IDLE")
