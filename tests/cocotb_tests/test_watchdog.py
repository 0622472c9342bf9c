"""The watchdog's stall report (cocotb_tests/watchdog.py) on fake dut handles, without a
simulator: which FSMs are stalled, which are only listed (host-paced), which are not visible."""


def test_watchdog_report_names_internal_fsms_not_host_paced_ones():
    """Without a simulator: fake dut handles. A non-idle controller is 'stalled'; the command
    parser half-way through a frame is only listed (the host paces it); hidden states say so."""
    from xbarflow.cocotb_tests.watchdog import Watchdog

    class H:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    fsms = {"xbarflow_top.command.parser_state": {"2": "ADDR_LO", "6": "HUNT"},
            "xbarflow_top.controller.ctrl_state": {"0": "IDLE", "3": "CONVERT"},
            "xbarflow_top.controller.argmax.argmax_state": {"0": "IDLE", "1": "SCAN"},
            "xbarflow_top.programmer.prog_state": {"0": "IDLE"}}
    dut = H(command=H(parser_state=H(value=2)),
            controller=H(ctrl_state=H(value=3), argmax=H(argmax_state=H(value=0))))
    report = Watchdog(dut, fsms, 20.0).report(500)
    assert report.startswith("controller stalled in CONVERT (ctrl_state=3) after 500 cycles")
    assert "command parser in ADDR_LO (parser_state=2)" in report and "parser stalled" not in report
    assert "programmer state not visible (prog_state)" in report
    dut.controller.ctrl_state.value = 0
    assert Watchdog(dut, fsms, 20.0).report().startswith("no internal FSM busy")
    hidden = Watchdog(H(), fsms, 20.0).report()
    assert hidden.startswith("FSM states not visible") and "CONVERT" not in hidden
    # The HDL-transactor harness holds the chip as instance `chip`.
    dut.controller.ctrl_state.value = 3
    assert "stalled in CONVERT" in Watchdog(H(chip=dut), fsms, 20.0).report()


def test_watchdog_names_the_command_layer_fsms_by_their_modules():
    """The command layer's receiver, executor and transmitter read as 'command receiver' etc.;
    all three are host-paced, so a frame half-received is listed, never 'stalled'."""
    from xbarflow.cocotb_tests.watchdog import Watchdog

    class H:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    fsms = {"xbarflow_top.command.receiver.receiver_state": {"0": "HUNT", "3": "ADDR_LO"},
            "xbarflow_top.command.executor.executor_state": {"0": "IDLE", "1": "RESPOND"},
            "xbarflow_top.command.transmitter.transmitter_state": {"0": "IDLE", "3": "PAYLOAD"},
            "xbarflow_top.controller.argmax.argmax_state": {"0": "IDLE", "1": "SCAN"}}
    dut = H(command=H(receiver=H(receiver_state=H(value=3)),
                      executor=H(executor_state=H(value=1)),
                      transmitter=H(transmitter_state=H(value=3))),
            controller=H(argmax=H(argmax_state=H(value=0))))
    assert Watchdog(dut, fsms, 20.0).report(7) == (
        "no internal FSM busy after 7 cycles (the chip waits for the host); other FSMs: "
        "command receiver in ADDR_LO (receiver_state=3), command executor in RESPOND "
        "(executor_state=1), command transmitter in PAYLOAD (transmitter_state=3), "
        "controller argmax in IDLE (argmax_state=0)")
