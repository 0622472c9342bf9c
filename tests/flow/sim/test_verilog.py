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


def test_fsm_transitions_are_every_next_of_each_state():
    """A small FSM whose transitions are written down here: each `m.next` in a state's body,
    however deeply nested in If/Switch, and no self-loop (staying is not a transition)."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In

    from xbarflow.flow.sim.verilog import fsm_transitions, prepared_design

    class Small(wiring.Component):
        go: In(1)
        mode: In(2)

        def elaborate(self, platform):
            m = Module()
            with m.FSM(name="small"):
                with m.State("IDLE"):
                    with m.If(self.go):
                        m.next = "RUN"
                with m.State("RUN"):
                    with m.Switch(self.mode):
                        with m.Case(0):
                            m.next = "RUN"            # a self-loop: left out
                        with m.Case(1):
                            with m.If(self.go):
                                m.next = "DONE"
                        with m.Default():
                            m.next = "IDLE"
                with m.State("DONE"):
                    m.next = "IDLE"
            return m

    found = fsm_transitions(prepared_design(Small(), "small_top"), "small_top")
    assert found == {"small_top.small_state": [["DONE", "IDLE"], ["IDLE", "RUN"], ["RUN", "DONE"],
                                               ["RUN", "IDLE"]]}


def test_sidecar_transitions_cover_every_fsm(cfg, tmp_path):
    side = json.loads(generate(cfg, tmp_path).sidecar.read_text())
    assert set(side["fsm_transitions"]) == set(side["fsms"])
    ctrl = {tuple(t) for t in side["fsm_transitions"]["xbarflow_top.controller.ctrl_state"]}
    assert ("IDLE", "LOAD") in ctrl and ("ARGMAX", "DONE") in ctrl and ("DONE", "IDLE") in ctrl
    for path, moves in side["fsm_transitions"].items():
        names = set(side["fsms"][path].values())
        assert all(a in names and b in names and a != b for a, b in moves), path
