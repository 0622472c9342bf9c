"""Formal proof (SymbiYosys, tests/support/formal.py) of the write-acknowledge rules of the
programmer (hdl/programmer.py with its hdl/write_ack.py), on a tiny chip: 3 rows in 2
partitions (rows 2 and 1, so one partition is absent at the second row), 2 columns, a timeout
of 2 pulses, one-clock pulses. Every input is free (host target writes, start, verify_ok,
verify_high, stray verify_done); the one assumption is the analog side's: verify_done answers
verify_start within `VERIFY_LATENCY` clocks.

The harness keeps its own record of each cell step, from the pins only: the partitions present
at the row (row < rows of the partition), which of them a verify answered ok, the program
pulses (rising edges of prog_pulse), the step count. It asserts

- a cell step ends (status.steps counts, the address moves) only when every present partition
  was acknowledged or `timeout_pulses` pulses were issued, and never past the timeout;
- the failure counter moves only at the end of a step, by the present partitions still
  unacknowledged when the step ended by timeout, and by nothing otherwise;
- the cells are visited in row-major order and write_ok rises only after the last cell's step.

k-induction length: a cell step lasts at most `step_bound()` clocks under the assumption, and
the harness's record starts afresh at each step end, so an induction trace at least one step
long begins from a consistent record."""

import pytest
from amaranth.hdl import Assert, Assume, Cat, Module, Mux, Signal

from xbarflow.flow.core.config import ChipConfig
from xbarflow.hdl import programmer, write_ack
from xbarflow.hdl.write_ack import WriteAck, popcount
from tests.support.formal import mutated, prove

pytestmark = pytest.mark.formal

TINY = {
    "network.input_size": 2, "network.layers": [2],
    "crossbar.tile_rows": 3, "crossbar.tile_cols": 2, "crossbar.partitions": 2,   # rows 2, 1
    "quant.weight_levels": 4,
    "programming.timeout_pulses": 2, "programming.pulses_per_level": 1,
    "programming.amplitude_levels": 2,
    "programming.pulse_width_ns": 20.0,      # 1 clock at 50 MHz
}
VERIFY_LATENCY = 2


def tiny_cfg():
    return ChipConfig().replace(**TINY)


def step_bound(cfg):
    """Most clocks of one cell step: LOAD_REF, then per decision SELECT, VERIFY, the wait,
    SETTLE and DECIDE, a pulse between decisions, NEXT."""
    decisions = cfg.programming.timeout_pulses + 1
    per_decision = 1 + 1 + (VERIFY_LATENCY + 1) + (WriteAck.LATENCY - 1) + 1
    return (cfg.crossbar.partitions + 1) + decisions * per_decision \
        + (decisions - 1) * (cfg.pulse_cycles + 1) + 1


def harness(cfg, module=programmer):
    m = Module()
    m.submodules.dut = dut = module.Programmer(cfg)
    st = dut.status
    C, NP, timeout = cfg.crossbar.tile_cols, cfg.crossbar.partitions, cfg.programming.timeout_pulses
    rows = cfg.partition_rows
    total = max(rows) * C

    start, ok, high, done = Signal(), Signal(NP), Signal(NP), Signal()
    t_addr, t_data, t_en = Signal(16), Signal(8), Signal()
    m.d.comb += [dut.start.eq(start), dut.verify_ok.eq(ok), dut.verify_high.eq(high),
                 dut.verify_done.eq(done), dut.targets.addr.eq(t_addr),
                 dut.targets.data.eq(t_data), dut.targets.en.eq(t_en)]

    # The analog side answers within VERIFY_LATENCY clocks (verify_start's own clock counts 0).
    waiting = Signal(range(VERIFY_LATENCY + 2))
    outstanding = Signal()
    asked = Signal()
    m.d.comb += asked.eq(dut.verify_start | outstanding)
    with m.If(asked & ~done):
        m.d.sync += [outstanding.eq(1), waiting.eq(waiting + 1)]
        m.d.comb += Assume(waiting < VERIFY_LATENCY)
    with m.Else():
        m.d.sync += [outstanding.eq(0), waiting.eq(0)]
    m.d.comb += Assert(~dut.verify_start | ~outstanding)   # never a verify before the last one's answer
    m.d.comb += Assume(~done | asked)                      # no stray verify_done (tests/hdl/test_programmer.py has them)
    # prog_pulse is high for exactly pulse_cycles clocks
    pulse_run = Signal(range(cfg.pulse_cycles + 2))
    m.d.sync += pulse_run.eq(Mux(dut.prog_pulse, pulse_run + 1, 0))
    m.d.comb += Assert(pulse_run <= cfg.pulse_cycles)

    # The harness's record of the current cell step, from the pins.
    present = Signal(NP)
    m.d.comb += present.eq(Cat(dut.row < n for n in rows))
    acked, pulses, pulse_prev = Signal(NP), Signal(range(4 * timeout + 2)), Signal()
    steps, failures_base = Signal(range(total + 2)), Signal(32)
    prev = {name: Signal.like(sig, name=f"prev_{name}") for name, sig in
            dict(busy=st.busy, write_ok=st.write_ok, steps=st.steps, failures=st.failures,
                 row=dut.row, col=dut.col, present=present).items()}
    m.d.sync += [prev["busy"].eq(st.busy), prev["write_ok"].eq(st.write_ok),
                 prev["steps"].eq(st.steps), prev["failures"].eq(st.failures),
                 prev["row"].eq(dut.row), prev["col"].eq(dut.col), prev["present"].eq(present),
                 pulse_prev.eq(dut.prog_pulse)]
    step_end = Signal()
    m.d.comb += step_end.eq(prev["busy"] & (st.steps != prev["steps"]))
    failures_moved = Signal()
    m.d.sync += failures_moved.eq(prev["busy"] & (st.failures != prev["failures"]))

    fresh = start & ~st.busy
    with m.If(fresh | step_end):
        m.d.sync += [acked.eq(0), pulses.eq(0), failures_base.eq(unless(fresh, st.failures))]
    with m.Else():
        with m.If(done & asked):
            m.d.sync += acked.eq(acked | (ok & present))
        with m.If(dut.prog_pulse & ~pulse_prev):
            m.d.sync += pulses.eq(pulses + 1)
    with m.If(fresh):
        m.d.sync += steps.eq(0)
    with m.Elif(step_end):
        m.d.sync += steps.eq(steps + 1)

    # Strengthening invariants (they make the k-induction go through): the write-ack flops
    # equal the harness's record, and its pulse counter the pulses decided in this step.
    wa = dut.write_ack
    step_begin, decided = Signal(), Signal(range(timeout + 2))
    m.d.comb += step_begin.eq(st.busy & (~prev["busy"] | (st.steps != prev["steps"])))
    with m.If(step_begin):
        m.d.sync += decided.eq(0)
    with m.Elif(wa.pulse):
        m.d.sync += decided.eq(decided + 1)
    with m.If(st.busy & ~step_begin):
        m.d.comb += [Assert(wa.acked == acked), Assert(wa.pulses == decided),
                     Assert((decided == pulses) | (decided == pulses + 1)),
                     # a run fails at most every partition of every cell: the counter never wraps
                     Assert(st.failures <= (st.steps + 1) * NP), Assert(failures_base <= steps * NP)]

    all_acked = Signal()
    m.d.comb += all_acked.eq((acked | ~prev["present"]).all())
    with m.If(asked):
        m.d.comb += Assert(dut.prog_partition_en == present)      # a verify reads every present cell
    m.d.comb += Assert(pulses <= timeout)
    with m.If(step_end):
        m.d.comb += [
            Assert(st.steps == prev["steps"] + 1),
            Assert(all_acked | (pulses == timeout)),
            Assert(st.failures == failures_base +
                   unless(all_acked, popcount(prev["present"] & ~acked))),
            Assert(prev["row"] * C + prev["col"] == steps),            # row-major order
        ]
    with m.Else():
        m.d.comb += Assert(~prev["busy"] | ~st.busy | ((dut.row == prev["row"]) & (dut.col == prev["col"])))
    with m.If(failures_moved):
        m.d.comb += Assert(step_end)
    with m.If(st.write_ok & ~prev["write_ok"]):
        m.d.comb += Assert(steps == total)
    with m.If(st.busy):
        m.d.comb += [Assert(~st.write_ok), Assert(st.steps <= total), Assert(st.steps == steps + step_end)]
    return m, [start, ok, high, done, t_addr, t_data, t_en]


def test_a_cell_step_ends_only_on_all_acks_or_the_timeout_and_failures_count_timeouts(tmp_path):
    cfg = tiny_cfg()
    result = prove(*harness(cfg), tmp_path, depth=step_bound(cfg) + 4, name="programmer")
    assert result.passed, result.summary() + "\n" + result.log[-4000:]


def unless(cond, value):
    """value where cond is low, else 0."""
    return Mux(cond, 0, value)


@pytest.mark.parametrize("where, old, new", [
    # advance on the first acknowledgement, not on all of them
    (write_ack, "self.decide & (self.all_acked | self.timed_out)", "self.decide & (self.acked.any() | self.timed_out)"),
    # the timeout one pulse early
    (write_ack, "self.pulses == self.timeout_pulses)", "self.pulses == self.timeout_pulses - 1)"),
    # the failure counter counts timed-out steps, not the cells that failed
    (programmer, "status.failures + wa.failed", "status.failures + wa.forced"),
    # DONE after the first row: write_ok before the last cell
    (programmer, "with m.If(self.row == self.max_rows - 1):", "with m.If(self.row == 0):"),
])
def test_a_broken_programmer_fails_the_proof(where, old, new, tmp_path, monkeypatch):
    broken = mutated(where, old, new)
    if where is write_ack:
        monkeypatch.setattr(programmer, "WriteAck", broken.WriteAck)
        module = programmer
    else:
        module = broken
    cfg = tiny_cfg()
    result = prove(*harness(cfg, module), tmp_path, depth=step_bound(cfg) + 4, name="mutant")
    assert result.status == "FAIL", result.summary() + "\n" + result.log[-4000:]
