# amaranth: UnusedElaboratable=no
"""Programmer (write-verify FSM) in amaranth.sim against a behavioural analog side.

Each behavioural cell sits at an integer level; a verify says whether it equals its target
(ok) or lies above it (high); a pulse moves it by the cell's step (SET up, RESET down) but
only from the cell's minimum amplitude level on. So some cells need a known number of
pulses, some need the amplitude ramp, some overshoot forever (step 2, odd distance) and some
never move (step 0): the last two hit the timeout. The bench checks every verify and pulse
on the boundary as it happens, and the whole pulse sequence against a Python replay of the
algorithm in `xbarflow.hdl.programmer`'s docstring on an identical copy of the cells.
"""

import copy
import random
from dataclasses import dataclass

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from xbarflow.flow.core.config import ChipConfig
from xbarflow.flow.host.driver import HostDriver, NackError
from xbarflow.hdl import protocol
from xbarflow.hdl.programmer import Programmer, level_bits
from xbarflow.hdl.protocol import Reg
from xbarflow.hdl.top import Top
from xbarflow.hdl.write_ack import WriteAck

from tests.support.sim_uart import SimUart, uart_tx_monitor

SMALL = {
    "network.input_size": 2, "network.layers": [2],
    "crossbar.tile_rows": 7, "crossbar.tile_cols": 4, "crossbar.partitions": 3,  # rows 3, 2, 2
    "quant.weight_levels": 8,
    "programming.timeout_pulses": 6, "programming.pulses_per_level": 2,
    "programming.amplitude_levels": 3,
    "programming.pulse_width_ns": 60.0,      # 3 clocks at 50 MHz
    "programming.sense_time_ns": 40.0,       # 2 clocks
}


def small_cfg(**extra):
    return ChipConfig().replace(**{**SMALL, **extra})


@dataclass
class Cell:
    level: int
    step: int = 1          # levels moved per effective pulse (0: stuck)
    min_level: int = 0     # smallest amplitude code that moves the cell

    def verify(self, target):
        return self.level == target, self.level > target

    def pulse(self, reset, amplitude):
        if amplitude >= self.min_level:
            self.level += -self.step if reset else self.step


def replay(cfg, targets, cells):
    """The algorithm, in plain Python: pulse events (i, j, enables, polarities, level)."""
    pr, C, NP = cfg.programming, cfg.crossbar.tile_cols, cfg.crossbar.partitions
    rows, starts = cfg.partition_rows, cfg.partition_start
    events, failures, total = [], 0, 0
    for i in range(max(rows)):
        for j in range(C):
            present = [i < n for n in rows]
            acked = [False] * NP
            pulses = 0
            while True:
                high = [False] * NP
                for p in range(NP):
                    if present[p]:
                        cell = (starts[p] + i, j)
                        ok, high[p] = cells[cell].verify(targets[cell])
                        acked[p] |= ok
                if all(a or not pres for a, pres in zip(acked, present)):
                    break
                if pulses == pr.timeout_pulses:
                    failures += sum(pres and not a for a, pres in zip(acked, present))
                    break
                en = [pres and not a for a, pres in zip(acked, present)]
                level = min(pulses // pr.pulses_per_level, pr.amplitude_levels - 1)
                events.append((i, j, mask(en), mask(h and e for h, e in zip(high, en)), level))
                for p in range(NP):
                    if en[p]:
                        cells[(starts[p] + i, j)].pulse(high[p], level)
                total += 1
                pulses += 1
    return events, failures, total


def mask(bits):
    return sum(1 << k for k, b in enumerate(bits) if b)


def random_cells(cfg, seed):
    rng = random.Random(seed)
    top = cfg.quant.weight_levels - 1
    targets, cells = {}, {}
    for r in range(cfg.crossbar.tile_rows):
        for c in range(cfg.crossbar.tile_cols):
            targets[(r, c)] = rng.randrange(top + 1)
            cells[(r, c)] = Cell(level=rng.randrange(top + 1), step=rng.choice([1, 1, 1, 2, 0]),
                                 min_level=rng.choice([0, 0, 0, 1, 2]))
    return targets, cells


def simulate(cfg, targets, cells, *, latency=None, runs=1, stray_done=False, host_bytes=None,
             tiles=None):
    """Write the targets, run the programmer `runs` times; returns what the bench saw.

    `tiles`: the tile input at each run's start (default all 0); the input then changes
    mid-run, which must not reach ``prog_tile_sel``. log["tiles"] holds the set of
    ``prog_tile_sel`` values seen at the verifies and pulses of each run."""
    tiles = [0] * runs if tiles is None else list(tiles)
    dut = Programmer(cfg)
    wa = dut.write_ack
    C, NP = cfg.crossbar.tile_cols, cfg.crossbar.partitions
    rows, starts = cfg.partition_rows, cfg.partition_start
    lb = level_bits(cfg)
    latency = cfg.sense_cycles if latency is None else latency
    top = cfg.quant.weight_levels - 1
    stored = {k: min(v, top) for k, v in targets.items()}
    if host_bytes is None:
        host_bytes = bytes(targets[(r, c)] for r in range(cfg.crossbar.tile_rows)
                           for c in range(C))
    log = {"events": [], "verifies": 0, "runs": [], "decisions": 0, "tiles": []}

    def local_of(rowsel):
        """Global row lines -> {partition: local row}."""
        found = {}
        for g in range(cfg.crossbar.tile_rows):
            if rowsel >> g & 1:
                p = max(q for q in range(NP) if starts[q] <= g)
                assert p not in found, "two rows selected in one partition"
                found[p] = g - starts[p]
        return found

    async def analog(ctx):
        done_in = None           # clocks until verify_done is driven
        answer = (0, 0)
        pulse = None             # the pulse in progress: (fields, width so far)
        step_ok = 0              # partitions that verified ok in this cell step
        step_cell = None
        stray_sent = False
        before = None            # the boundary buses in the previous clock
        async for _, _, vstart, ppulse, rowsel, colsel, pen, pol, lvl, ref, rw, decide, \
                all_acked, acked, present, tile_sel in ctx.tick().sample(
                    dut.verify_start, dut.prog_pulse, dut.prog_row_sel, dut.prog_col_sel,
                    dut.prog_partition_en, dut.prog_polarity, dut.prog_level, dut.verify_ref,
                    dut.rw_mode, wa.decide, wa.all_acked, wa.acked, wa.present,
                    dut.prog_tile_sel):
            if (vstart or ppulse) and log["tiles"]:
                log["tiles"][-1].add(tile_sel)
            ctx.set(dut.verify_done, 0)
            buses = (rowsel, colsel, pen, pol, lvl, ref)
            if vstart:
                assert before[:3] + before[5:] == buses[:3] + buses[5:], \
                    "verify lines set up one clock before verify_start"
            if ppulse and pulse is None:
                assert before[:5] == buses[:5], "pulse lines set up one clock before prog_pulse"
            if not ppulse and pulse is not None:
                assert pulse[0] == buses[:5], "pulse lines held one clock after prog_pulse"
            if before is not None and before[1] != colsel:
                assert before[2] == pen == 0, "the address moves only while deselected"
            before = buses
            if decide:
                # The decision must see the synchronised AND of this verify's flops.
                assert all_acked == int(all(acked >> p & 1 or not present >> p & 1
                                            for p in range(NP)))
                log["decisions"] += 1
            if not rw:
                assert rowsel == 0 and colsel == 0 and pen == 0
            if vstart:
                assert done_in is None and pulse is None
                assert colsel != 0 and colsel & (colsel - 1) == 0, "column select one-hot"
                j = colsel.bit_length() - 1
                locals_ = local_of(rowsel)
                assert len(set(locals_.values())) == 1, "one local row in every partition"
                i = next(iter(locals_.values()))
                present_mask = mask(i < n for n in rows)
                assert pen == present_mask and set(locals_) == {
                    p for p in range(NP) if present_mask >> p & 1}
                if (i, j) != step_cell:
                    step_cell, step_ok = (i, j), 0
                ok = high = 0
                for p in range(NP):
                    code = ref >> (p * lb) & ((1 << lb) - 1)
                    if present_mask >> p & 1:
                        cell = (starts[p] + i, j)
                        assert code == stored[cell], f"reference of {cell}"
                        o, h = cells[cell].verify(stored[cell])
                        ok |= o << p
                        high |= h << p
                    else:
                        assert code == 0
                # Bits of absent partitions are garbage on purpose: the chip must ignore them.
                answer = (ok | ~present_mask & ((1 << NP) - 1), high)
                step_ok |= ok
                done_in = latency
                log["verifies"] += 1
            if done_in is not None:
                done_in -= 1
                if done_in == 0:
                    done_in = None
                    ctx.set(dut.verify_ok, answer[0])
                    ctx.set(dut.verify_high, answer[1])
                    ctx.set(dut.verify_done, 1)
            if ppulse:
                fields = (rowsel, colsel, pen, pol, lvl)
                if pulse is None:
                    pulse = [fields, 0]
                    if stray_done and not stray_sent:
                        ctx.set(dut.verify_ok, (1 << NP) - 1)   # would ack everything
                        ctx.set(dut.verify_done, 1)
                        stray_sent = True
                assert pulse[0] == fields, "pulse fields must hold for the whole pulse"
                pulse[1] += 1
            elif pulse is not None:
                (rowsel, colsel, pen, pol, lvl), width = pulse
                pulse = None
                assert width == cfg.pulse_cycles
                assert pen and pen & step_ok == 0, "acknowledged partitions are not pulsed"
                assert pol & ~pen == 0
                j = colsel.bit_length() - 1
                locals_ = local_of(rowsel)
                assert set(locals_) == {p for p in range(NP) if pen >> p & 1}
                i = next(iter(locals_.values()))
                log["events"].append((i, j, pen, pol, lvl))
                for p in range(NP):
                    if pen >> p & 1:
                        cells[(starts[p] + i, j)].pulse(pol >> p & 1, lvl)

    async def host(ctx):
        for addr, byte in enumerate(host_bytes):
            ctx.set(dut.targets.addr, addr)
            ctx.set(dut.targets.data, byte)
            ctx.set(dut.targets.en, 1)
            await ctx.tick()
        ctx.set(dut.targets.en, 0)
        for tile in tiles:
            assert not ctx.get(dut.status.busy)
            log["tiles"].append(set())
            ctx.set(dut.tile, tile)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.tile, tile ^ 1)     # a later PROG_TILE write must not move the run
            assert ctx.get(dut.status.busy) and not ctx.get(dut.status.write_ok)
            # A start while busy is ignored (and a write to the target memory is not made).
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 2
            while ctx.get(dut.status.busy):
                await ctx.tick()
                cycles += 1
            assert ctx.get(dut.status.write_ok)
            log["runs"].append({
                "pulses": ctx.get(dut.status.pulses), "failures": ctx.get(dut.status.failures),
                "cycles": ctx.get(dut.status.cycles), "steps": ctx.get(dut.status.steps),
                "host_cycles": cycles,
            })
            await ctx.tick().repeat(3)
            assert ctx.get(dut.status.write_ok), "write_ok is sticky"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(analog, background=True)
    sim.add_testbench(host)
    sim.run()
    return log


@pytest.mark.parametrize("seed, latency", [(1, None), (2, 1), (3, 5)])
def test_pulse_sequence_matches_the_algorithm(seed, latency):
    cfg = small_cfg()
    targets, cells = random_cells(cfg, seed)
    expected, failures, total = replay(cfg, targets, copy.deepcopy(cells))
    assert failures > 0 and total > 20, "the random cells exercise timeouts and ramps"
    assert any(e[4] == cfg.programming.amplitude_levels - 1 for e in expected)
    assert any(e[3] for e in expected) and any(e[2] & ~e[3] for e in expected)

    rtl_cells = copy.deepcopy(cells)
    log = simulate(cfg, targets, rtl_cells, latency=latency)
    assert log["events"] == expected
    run = log["runs"][0]
    assert (run["pulses"], run["failures"]) == (total, failures)
    assert run["steps"] == max(cfg.partition_rows) * cfg.crossbar.tile_cols
    assert run["cycles"] == run["host_cycles"] - 1     # START to DONE, inclusive of DONE
    assert log["decisions"] == log["verifies"]


def test_known_cells_pulse_counts_polarity_levels_and_timeout():
    cfg = small_cfg()
    C = cfg.crossbar.tile_cols
    targets = {(r, c): 3 for r in range(7) for c in range(C)}
    cells = {cell: Cell(level=3) for cell in targets}           # already on target
    cells[(0, 0)] = Cell(level=0)              # partition 0: 3 SET pulses
    cells[(3, 0)] = Cell(level=5)              # partition 1: 2 RESET pulses
    cells[(5, 0)] = Cell(level=0, step=0)      # partition 2: stuck, times out
    cells[(2, 1)] = Cell(level=1, min_level=2)  # needs level 2: 4 dead pulses, then 2
    cells[(6, 2)] = Cell(level=2, step=2)      # overshoots forever: SET, RESET, SET, ...
    log = simulate(cfg, targets, cells)
    ev = log["events"]
    step00 = [e for e in ev if e[:2] == (0, 0)]
    assert [e[2] for e in step00] == [0b111, 0b111, 0b101, 0b100, 0b100, 0b100]
    assert [e[3] for e in step00] == [0b010, 0b010, 0, 0, 0, 0]   # partition 1 RESET
    assert [e[4] for e in step00] == [0, 0, 1, 1, 2, 2]           # 2 pulses per level
    step21 = [e for e in ev if e[:2] == (2, 1)]
    assert [e[2] for e in step21] == [0b001] * 6 and [e[4] for e in step21] == [0, 0, 1, 1, 2, 2]
    step22 = [e for e in ev if e[:2] == (1, 2)]
    assert [e[3] for e in step22] == [0, 0b100, 0, 0b100, 0, 0b100]   # (6, 2) is partition 2, i=1
    assert len(ev) == 6 + 6 + 6
    run = log["runs"][0]
    # (5,0) and (6,2) time out; (2,1) reaches level 3 on its 6th pulse: verified in time.
    assert (run["pulses"], run["failures"]) == (18, 2)
    assert cells[(2, 1)].level == 3 and cells[(0, 0)].level == 3 and cells[(3, 0)].level == 3
    assert log["verifies"] == cfg.crossbar.tile_cols * max(cfg.partition_rows) + 18


def test_saturated_codes_stray_done_and_second_run():
    cfg = small_cfg()
    C, top = cfg.crossbar.tile_cols, cfg.quant.weight_levels - 1
    targets = {(r, c): top for r in range(7) for c in range(C)}
    host_bytes = bytes([0xFF] * (7 * C))                        # saturates to `top`
    cells = {cell: Cell(level=top) for cell in targets}
    cells[(1, 3)] = Cell(level=top - 2)
    log = simulate(cfg, targets, cells, runs=2, stray_done=True, host_bytes=host_bytes)
    # The stray verify_done during the first pulse acknowledged nothing: 2 pulses were needed.
    assert log["events"] == [(1, 3, 0b001, 0, 0), (1, 3, 0b001, 0, 0)]
    first, second = log["runs"]
    assert (first["pulses"], first["failures"]) == (2, 0)
    assert (second["pulses"], second["failures"]) == (0, 0)     # counters restart per run
    assert second["cycles"] < first["cycles"]


def test_tile_select_is_latched_at_start_for_the_whole_run():
    """A 4-tile chip (16 inputs, 4 outputs, on 8 x 4 tiles: 2 row tiles x 2 column tiles),
    programmed as tile 2, then 1, then 3: every verify and pulse of a run addresses the tile
    given at its start, although the tile input changes right after the start (the PROG_TILE
    register may be rewritten during a run); the pulse sequence of each run is the algorithm's."""
    cfg = small_cfg(**{"network.input_size": 4, "network.layers": [4],
                       "crossbar.tile_rows": 8, "crossbar.tile_cols": 4})
    assert len(cfg.tiles) == 4 and len(Programmer(cfg).prog_tile_sel) == 2
    C = cfg.crossbar.tile_cols
    targets = {(r, c): 3 for r in range(8) for c in range(C)}
    cells = {cell: Cell(level=3) for cell in targets}
    cells[(0, 1)] = Cell(level=1)             # 2 SET pulses in the first run, none after
    log = simulate(cfg, targets, cells, runs=3, tiles=[2, 1, 3])
    assert log["tiles"] == [{2}, {1}, {3}]
    assert log["events"] == [(0, 1, 0b001, 0, 0), (0, 1, 0b001, 0, 0)]
    assert [r["pulses"] for r in log["runs"]] == [2, 0, 0]


def test_codes_above_the_top_level_are_stored_saturated():
    # weight_levels 8: a 3-bit memory. Codes 8, 9, 17, 0x81, 0xFE, 0xFF are stored as 7 (the
    # bench checks every verify_ref against min(code, 7)); truncated to 3 bits they would be
    # 0, 1, 1, 1, 6, 7, and codes up to 7 are stored as they are.
    cfg = small_cfg()
    C, top = cfg.crossbar.tile_cols, cfg.quant.weight_levels - 1
    assert top == 7
    codes = [8, 9, 17, 0x81, 0xFE, 0xFF, 7, 3, 0]
    targets = {(r, c): codes[(r * C + c) % len(codes)] for r in range(7) for c in range(C)}
    cells = {cell: Cell(level=min(code, top)) for cell, code in targets.items()}
    log = simulate(cfg, targets, cells)
    assert log["events"] == [], "every cell already sits at its saturated target"
    assert log["verifies"] == C * max(cfg.partition_rows)


def test_default_chip_geometry_builds():
    cfg = ChipConfig()
    dut = Programmer(cfg)
    assert len(dut.prog_row_sel) == cfg.crossbar.tile_rows
    assert len(dut.prog_col_sel) == cfg.crossbar.tile_cols
    assert len(dut.verify_ref) == cfg.crossbar.partitions * 5     # 32 levels -> 5 bits
    assert len(dut.prog_level) == 3                               # 8 amplitude levels
    assert WriteAck.LATENCY == 3
    rtlil.convert(dut)       # elaborates without errors


# -- the whole Top over the UART pins: WRITE_TARGETS, START_PROGRAM, mutual exclusion --------

def test_top_programs_over_uart_and_excludes_inference():
    # The HostDriver's coroutines run inside the amaranth testbench: SimUart's awaits are
    # amaranth triggers.
    cfg = small_cfg(**{"host.interface": "uart", "host.uart_divider": 4})
    top = Top(cfg)
    assert not hasattr(top, "spi_sclk") and hasattr(top, "uart_rx")
    spi_top = Top(small_cfg())
    assert hasattr(spi_top, "spi_sclk") and not hasattr(spi_top, "uart_rx")
    targets, cells = random_cells(cfg, 7)
    expected, failures, total = replay(cfg, targets, copy.deepcopy(cells))
    C, NP = cfg.crossbar.tile_cols, cfg.crossbar.partitions
    starts, lb = cfg.partition_start, level_bits(cfg)
    received = []
    hold = {"verify": False, "vmm": False}

    def local_row(rowsel, p):
        return (rowsel >> starts[p] & (1 << cfg.partition_rows[p]) - 1).bit_length() - 1

    seen = {"vmm": 0, "pulses": 0}

    async def uart_rx_monitor(ctx):
        await uart_tx_monitor(ctx, top, cfg.host.uart_divider, received)

    async def analog(ctx):
        done_in, answer, was_pulse, vmm_pending = None, (0, 0), 0, False
        async for _, _, vstart, ppulse, rowsel, colsel, pen, pol, lvl, ref, vmm, adc in \
                ctx.tick().sample(top.verify_start, top.prog_pulse, top.prog_row_sel,
                                  top.prog_col_sel, top.prog_partition_en, top.prog_polarity,
                                  top.prog_level, top.verify_ref, top.vmm_start, top.adc_start):
            ctx.set(top.verify_done, 0)
            ctx.set(top.vmm_done, 0)
            ctx.set(top.adc_valid, 0)
            if vmm:
                seen["vmm"] += 1
                vmm_pending = True
            if vmm_pending and not hold["vmm"]:
                vmm_pending = False
                ctx.set(top.vmm_done, 1)
            if adc:
                ctx.set(top.adc_valid, 1)
            if vstart:
                j = colsel.bit_length() - 1
                ok = high = 0
                for p in range(NP):
                    if pen >> p & 1:
                        i = local_row(rowsel, p)
                        cell = (starts[p] + i, j)
                        assert ref >> (p * lb) & ((1 << lb) - 1) == targets[cell]
                        o, h = cells[cell].verify(targets[cell])
                        ok, high = ok | o << p, high | h << p
                answer, done_in = (ok, high), cfg.sense_cycles
            if done_in is not None:
                done_in -= 1
                if done_in == 0 and not hold["verify"]:
                    done_in = None
                    ctx.set(top.verify_ok, answer[0])
                    ctx.set(top.verify_high, answer[1])
                    ctx.set(top.verify_done, 1)
                elif done_in == 0:
                    done_in = 1          # keep the answer back while the test holds it
            if ppulse and not was_pulse:
                seen["pulses"] += 1
                j = colsel.bit_length() - 1
                for p in range(NP):
                    if pen >> p & 1:
                        i = local_row(rowsel, p)
                        cells[(starts[p] + i, j)].pulse(pol >> p & 1, lvl)
            was_pulse = ppulse

    async def host(ctx):
        ctx.set(top.uart_rx, 1)
        await ctx.tick().repeat(10)
        drv = HostDriver(SimUart(ctx, top, cfg.host.uart_divider, received), cfg)
        await drv.check_identity()
        await drv.write_targets(bytes(targets[(r, c)] for r in range(cfg.crossbar.tile_rows)
                                      for c in range(C)))
        # Programming stalls in its first verify while the analog side holds the answer.
        hold["verify"] = True
        await drv.start_program()
        assert await drv.read_reg(Reg.STATUS) == protocol.STATUS_PROG_BUSY
        for call in (drv.start(), drv.start_program(), drv.write_targets(b"\x00"),
                     drv.write_input(b"\x00")):
            try:
                await call
                raise AssertionError("expected NACK BUSY")
            except NackError as exc:
                assert exc.error == protocol.Error.BUSY
        await drv.write_reg(Reg.CTRL, protocol.CTRL_START)    # ignored while programming
        assert seen["vmm"] == 0
        hold["verify"] = False
        status = 0
        while not status & protocol.STATUS_WRITE_OK:
            status = await drv.read_reg(Reg.STATUS)
        assert status == protocol.STATUS_WRITE_OK
        assert await drv.read_reg(Reg.PROG_PULSES) == total == seen["pulses"]
        assert await drv.read_reg(Reg.PROG_FAILURES) == failures
        assert await drv.read_reg(Reg.PROG_STEPS) == max(cfg.partition_rows) * C
        assert await drv.read_reg(Reg.PROG_CYCLES) > 0
        # And the other way round: no programming while an inference runs.
        hold["vmm"] = True
        await drv.start()
        try:
            await drv.start_program()
            raise AssertionError("expected NACK BUSY")
        except NackError as exc:
            assert exc.error == protocol.Error.BUSY
        hold["vmm"] = False
        status = 0
        while not status & protocol.STATUS_DONE:
            status, _ = await drv.read_result()
        assert status == (protocol.STATUS_DONE | protocol.STATUS_IRQ | protocol.STATUS_WRITE_OK)
        assert seen["vmm"] == 1

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(uart_rx_monitor, background=True)
    sim.add_testbench(analog, background=True)
    sim.add_testbench(host)
    sim.run()
