"""Formal proof (SymbiYosys, tests/support/formal.py) of the layered controller's timing, on a
tiny CNN: a 3 x 3 x 1 image, conv 2 x 2 (one output channel, stride 1: the second window of
each output row slides on), max pool 2, flatten, dense 2 (the classes); 4-row tiles (one tile
per layer), 1 shared flash ADC (the dense tile's two outputs are two ADC groups). Every step
kind and every FSM state is on its path. (2-row tiles and a 4-bit SAR ADC make the bound 161
clocks: its base case did not reach step 61 of 165 in 18 minutes here; this config's bound is
89.)

Every input is free (start at any time, the feature-map read data, the multiplier, the ADC
codes); the assumptions are the analog side's, as in tests/hdl/test_controller_formal.py:
vmm_done answers vmm_start within `VMM_LATENCY` clocks and adc_valid answers adc_start within
the ADC's conversion time, and neither comes unasked.

It asserts that an inference, once started, is busy for at most `done_bound(cfg)` clocks (a
bound computed from the config's steps, positions, window sizes, tiles, ADC groups and the
pooling geometry) and then done, so no reachable state is a trap; that START while busy is
refused (the run's cycle counter equals the harness's own count of the run's clocks, so it never
restarts); that done is low while busy; and that the phase counters CYCLES_LOAD_WINDOW (LOAD_WINDOW,
LOAD_WINDOW_END, SLIDE_WINDOW), CYCLES_ACCUMULATE, CYCLES_ACTIVATE and CYCLES_POOL (and DRIVE,
CONVERT, ARGMAX) equal, at every clock, the harness's count of the clocks the FSM spent in their
states since the run's START. They do not saturate (they add 1): they cannot wrap, since each
is at most the run's busy clocks, below `done_bound` < 2^32.

To close the induction, the units the controller starts are idle outside their step: a weight
step's window generator is busy only while that step runs, the pooling unit (and its window
generator) only in POOL of its step, the argmax scan only in ARGMAX.

k-induction length: the bound plus 4 (an induction trace longer than one inference contains the
start that ties the harness's counts to the controller's)."""

import pytest
from amaranth.hdl import Assert, Cat, Module, Signal

from xbarflow.flow.core.config import load
from xbarflow.hdl import layered_controller, tile_sequencer
from xbarflow.hdl.layered_controller import steps
from tests.hdl.test_controller_formal import VMM_LATENCY, answered_within
from tests.support.formal import Elaborated, mutated, prove

pytestmark = pytest.mark.formal


def tiny_cnn():
    return load().replace(**{
        "network.input_size": 3,
        "network.layers": [
            {"kind": "conv", "out_channels": 1, "kernel": 2, "padding": 0, "activation": "relu"},
            {"kind": "pool", "mode": "max", "size": 2},
            {"kind": "flatten"},
            {"kind": "dense", "outputs": 2, "activation": "none"}],
        "crossbar.tile_rows": 4, "crossbar.tile_cols": 4, "crossbar.partitions": 1,
        "adc.kind": "flash", "adc.bits": 4, "adc.adcs_per_tile": 1})


def done_bound(cfg):
    """Most clocks from the first busy clock to the last. Per step START_STEP. A weight step,
    per output position: the window (K*K*C codes and LOAD_WINDOW_END; a window that slides on:
    SLIDE_WINDOW, its K*S*C new codes and LOAD_WINDOW_END), per tile of the layer LOAD, DRIVE
    (the wait), per ADC group CONVERT (the wait) and ACCUMULATE (a clock per code), NEXT_TILE;
    then ACTIVATE (a clock per output channel) and NEXT_POSITION, except after the last layer.
    A pool step: POOL while the unit starts its window generator, reads each window
    (C*size^2), lets the last code land and writes C codes, and a clock to see it idle. NEXT_STEP between steps; ARGMAX (its start, a
    clock per class, its done); DONE."""
    adcs, conv = cfg.tile_adcs, cfg.adc.conversion_cycles
    program = steps(cfg)
    clocks = 0
    for s in program:
        clocks += 1
        h_out = (s.height + 2 * s.padding - s.kernel) // s.stride + 1
        w_out = (s.width + 2 * s.padding - s.kernel) // s.stride + 1
        if s.kind == "pool":
            clocks += h_out * w_out * (s.channels * s.kernel ** 2 + 1 + s.channels) + 2
            continue
        full = s.kernel * s.kernel * s.channels + 1
        slid = 1 + s.kernel * s.stride * s.channels + 1 if s.stride < s.kernel else full
        clocks += h_out * (full + (w_out - 1) * slid)
        per_position = 0
        for tile in (t for t in cfg.tiles if t.layer == s.layer):
            per_position += 1 + (VMM_LATENCY + 1) + 1
            for g in range(-(-tile.outputs // adcs)):
                per_position += (conv + 1) + min(adcs, tile.outputs - g * adcs)
        if s is not program[-1]:
            per_position += cfg.network.layer_shapes[s.layer][1] + 1
        clocks += h_out * w_out * per_position
    clocks += len(program) - 1
    clocks += cfg.network.classes + 2 + 1
    return clocks


PHASES = {
    "cycles_load_window": ("LOAD_WINDOW", "LOAD_WINDOW_END", "SLIDE_WINDOW"),
    "cycles_accumulate": ("ACCUMULATE",),
    "cycles_activate": ("ACTIVATE",),
    "cycles_pool": ("POOL",),
    "status.cycles_drive": ("DRIVE",),
    "status.cycles_convert": ("CONVERT",),
    "status.cycles_argmax": ("ARGMAX",),
}


def harness(cfg):
    m = Module()
    dut = Elaborated(layered_controller.LayeredController(cfg))
    m.submodules.dut = dut.fragment
    ctrl = dut.component
    st = ctrl.status
    start, vmm_done, adc_valid = Signal(name="start"), Signal(name="vmm_done"), Signal(name="adc_valid")
    read_data = Signal(len(ctrl.feature_read.data), name="read_data")
    mult, adc_codes = Signal(32, name="mult"), Signal(len(ctrl.adc_codes), name="adc_codes_in")
    m.d.comb += [ctrl.start.eq(start), ctrl.vmm_done.eq(vmm_done), ctrl.adc_valid.eq(adc_valid),
                 ctrl.feature_read.data.eq(read_data), ctrl.requant_mult.eq(mult),
                 ctrl.adc_codes.eq(adc_codes)]
    answered_within(m, ctrl.vmm_start, vmm_done, VMM_LATENCY, "vmm")
    answered_within(m, ctrl.adc_start, adc_valid, cfg.adc.conversion_cycles, "adc")

    def state(*names):
        return Cat(*(dut.state("ctrl", n) for n in names)).any()

    bound = done_bound(cfg)
    elapsed = Signal(range(bound + 2), name="elapsed")      # busy clocks of this run
    with m.If(st.busy):
        m.d.sync += elapsed.eq(elapsed + 1)
        m.d.comb += [Assert(elapsed < bound), Assert(~st.done), Assert(st.cycles_total == elapsed)]
    with m.Else():
        m.d.sync += elapsed.eq(0)

    fresh = state("IDLE") & start
    for counter, names in PHASES.items():
        owner, _, attr = counter.rpartition(".")
        actual = getattr(st if owner else ctrl, attr)
        count = Signal(range(bound + 2), name=f"count_{attr}")
        with m.If(fresh):
            m.d.sync += count.eq(0)
        with m.Elif(state(*names)):
            m.d.sync += count.eq(count + 1)
        m.d.comb += Assert(actual == count)

    # The units are idle outside their step (strengthening invariants for the induction).
    step = dut.signal("step")
    for i, s in enumerate(steps(cfg)):
        if s.kind == "weights":
            gen = dut.sub(f"window{s.layer}").component
            m.d.comb += Assert(~gen.busy | ((step == i) & st.busy))
        else:
            pool = dut.sub(f"pool{s.stage}")
            pool_window = pool.sub("window")
            with m.If(~pool.state("pool", "IDLE")):
                m.d.comb += Assert((step == i) & state("POOL"))
            with m.Else():
                m.d.comb += [Assert(~pool_window.component.busy),
                             Assert(~pool_window.component.start)]
    with m.If(dut.sub("argmax").state("argmax", "SCAN")):
        m.d.comb += Assert(state("ARGMAX"))
    return m, [start, vmm_done, adc_valid, read_data, mult, adc_codes]


def run(cfg, folder, name):
    return prove(*harness(cfg), folder, depth=done_bound(cfg) + 4, name=name, timeout=3000)


@pytest.mark.slow
def test_a_cnn_inference_is_done_within_its_bound_and_start_while_busy_is_refused(tmp_path):
    result = run(tiny_cnn(), tmp_path, "layered_controller")
    assert result.passed, result.summary() + "\n" + result.log[-3000:]


def one_position_cnn():
    """The smallest layered network: a 2 x 2 image, conv 2 x 2 (one position), flatten, dense
    2: a short run (36 clocks), so a broken copy's trap shows within a short bounded check."""
    return tiny_cnn().replace(**{"network.input_size": 2, "network.layers": [
        {"kind": "conv", "out_channels": 1, "kernel": 2, "padding": 0, "activation": "relu"},
        {"kind": "flatten"},
        {"kind": "dense", "outputs": 2, "activation": "none"}]})


# A broken copy fails in a bounded check from reset (BMC): a real trace, as deep as needed for
# its first wrong clock (the bound itself for a trap).
BROKEN = [
    # START while busy restarts the program from its first step (the run outlasts its bound)
    pytest.param(layered_controller, "m.d.sync += step.eq(step + 1)",
                 "m.d.sync += step.eq(Mux(self.start, 0, step + 1))",
                 one_position_cnn, None, id="start_restarts", marks=pytest.mark.slow),
    # SLIDE_WINDOW not counted in CYCLES_LOAD_WINDOW (fails at the first window that slides on)
    pytest.param(layered_controller,
                 "m.d.sync += self.cycles_load_window.eq(self.cycles_load_window + 1)\n"
                 "                m.d.comb += sliding.eq(1)",
                 "m.d.comb += sliding.eq(1)", tiny_cnn, 40, id="slide_uncounted"),
    # CONVERT also waits for vmm_done, which never comes again: a trap (fails at the bound)
    pytest.param(tile_sequencer, "with m.If(ctrl.adc_valid):", "with m.If(ctrl.adc_valid & ctrl.vmm_done):",
                 one_position_cnn, None, id="convert_trap"),
]


@pytest.mark.parametrize("where, old, new, config, depth", BROKEN)
def test_a_broken_layered_controller_fails_the_proof(where, old, new, config, depth, tmp_path, monkeypatch):
    broken = mutated(where, old, new)
    if where is tile_sequencer:
        monkeypatch.setattr(layered_controller, "TileSequencer", broken.TileSequencer)
    else:
        monkeypatch.setattr(layered_controller, "LayeredController", broken.LayeredController)
    cfg = config()
    result = prove(*harness(cfg), tmp_path, mode="bmc", depth=depth or done_bound(cfg) + 4,
                   name="mutant", timeout=3000)
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-3000:]
