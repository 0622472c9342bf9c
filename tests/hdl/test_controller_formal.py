"""Formal proof (SymbiYosys, tests/support/formal.py) of the inference controller's timing, on a
tiny MLP: a 2x2 image (4 inputs), layers [2, 2] (ReLU, then the classes), 2-row tiles (layer 0 has two row
tiles, so sums accumulate), 2 outputs per tile on 1 shared ADC (two ADC groups per tile).
Every input is free (start at any time, the image, the multiplier, the ADC codes); the
assumptions are the analog side's: vmm_done answers vmm_start within `VMM_LATENCY` clocks and
adc_valid answers adc_start within the ADC's conversion time, and neither comes unasked.

It asserts that an inference, once started, is busy for at most `done_bound(cfg)` clocks (a
bound computed from the config's tiles, groups and layers) and then done; that START while busy
is refused (the run's cycle counter never restarts: it equals the harness's own count of the
run's clocks); and that done is low while busy.

k-induction length: the bound plus 4 (an induction trace longer than one inference contains the
start that ties the harness's count to the controller's)."""

import pytest
from amaranth.hdl import Assert, Assume, Module, Signal

from xbarflow.flow.core.config import load
from xbarflow.hdl import controller, tile_sequencer
from tests.support.formal import mutated, prove

pytestmark = pytest.mark.formal

VMM_LATENCY = 2


def tiny_cfg():
    return load("configs/mlp.toml").replace(**{
        "network.input_size": 2, "network.layers": [2, 2], "network.activations": ["relu", "none"],
        "crossbar.tile_rows": 2, "crossbar.tile_cols": 4, "crossbar.partitions": 1,
        "adc.adcs_per_tile": 1, "adc.bits": 4})


def done_bound(cfg):
    """Most clocks from the first busy clock to the last: per tile LOAD, DRIVE (the wait), per
    ADC group CONVERT (the wait) and ACCUMULATE (one clock per code), NEXT_TILE; ACTIVATE one
    clock per hidden neuron; ARGMAX (its start, one clock per class, its done); DONE."""
    adcs, conv = cfg.tile_adcs, cfg.adc.conversion_cycles
    clocks = 0
    for tile in cfg.tiles:
        clocks += 1 + (VMM_LATENCY + 1) + 1
        for g in range(-(-tile.outputs // adcs)):
            clocks += (conv + 1) + min(adcs, tile.outputs - g * adcs)
    clocks += sum(n_out for _, n_out in cfg.network.layer_shapes[:-1])
    clocks += cfg.network.classes + 3 + 1
    return clocks


def answered_within(m, ask, answer, latency, name):
    """Assume `answer` comes only for an `ask`, within `latency` clocks of it."""
    outstanding, waiting = Signal(name=f"{name}_outstanding"), Signal(range(latency + 2), name=f"{name}_wait")
    asked = ask | outstanding
    with m.If(asked & ~answer):
        m.d.sync += [outstanding.eq(1), waiting.eq(waiting + 1)]
        m.d.comb += Assume(waiting < latency)
    with m.Else():
        m.d.sync += [outstanding.eq(0), waiting.eq(0)]
    m.d.comb += Assume(~answer | asked)


def harness(cfg, module=controller):
    m = Module()
    m.submodules.dut = dut = module.Controller(cfg)
    st = dut.status
    start, vmm_done, adc_valid = Signal(), Signal(), Signal()
    image, mult, adc_codes = Signal(len(dut.buffer_codes)), Signal(32), Signal(len(dut.adc_codes))
    m.d.comb += [dut.start.eq(start), dut.vmm_done.eq(vmm_done), dut.adc_valid.eq(adc_valid),
                 dut.buffer_codes.eq(image), dut.requant_mult.eq(mult), dut.adc_codes.eq(adc_codes)]
    answered_within(m, dut.vmm_start, vmm_done, VMM_LATENCY, "vmm")
    answered_within(m, dut.adc_start, adc_valid, cfg.adc.conversion_cycles, "adc")

    bound = done_bound(cfg)
    elapsed = Signal(range(bound + 2))       # busy clocks of this run, counted here
    with m.If(st.busy):
        m.d.sync += elapsed.eq(elapsed + 1)
        m.d.comb += [Assert(elapsed < bound), Assert(~st.done),
                     Assert(st.cycles_total == elapsed)]            # never restarted by a START
    with m.Else():
        m.d.sync += elapsed.eq(0)
    return m, [start, vmm_done, adc_valid, image, mult, adc_codes]


def test_an_inference_is_done_within_its_bound_and_start_while_busy_is_refused(tmp_path):
    cfg = tiny_cfg()
    result = prove(*harness(cfg), tmp_path, depth=done_bound(cfg) + 4, name="controller")
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


@pytest.mark.parametrize("old, new", [
    # CONVERT also waits for vmm_done, which never comes again: a trap
    ("with m.If(ctrl.adc_valid):", "with m.If(ctrl.adc_valid & ctrl.vmm_done):"),
    # START while busy restarts the run from the first tile
    ('with m.State("NEXT_TILE"):\n            m.d.sync += k.eq(0)\n',
     'with m.State("NEXT_TILE"):\n            m.d.sync += k.eq(0)\n'
     '            with m.If(ctrl.start):\n'
     '                m.d.sync += [tile.eq(0), status.cycles_total.eq(0)]\n'),
])
def test_a_broken_controller_fails_the_proof(old, new, tmp_path, monkeypatch):
    # the states are the tile sequencer's: the controller runs a broken copy of it
    monkeypatch.setattr(controller, "TileSequencer", mutated(tile_sequencer, old, new).TileSequencer)
    cfg = tiny_cfg()
    result = prove(*harness(cfg), tmp_path, depth=done_bound(cfg) + 4, name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]
