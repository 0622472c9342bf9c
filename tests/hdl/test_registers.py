"""RegisterFile in amaranth.sim: every register of protocol.Reg, CTRL pulses, SCRATCH."""

from amaranth.sim import Simulator

from xbarflow.hdl import protocol
from xbarflow.hdl.protocol import Reg
from xbarflow.hdl.registers import RegisterFile

GEOMETRY = 0x7A0A00C4

# Distinct values for every 32-bit input, so a wrong mux entry shows.
COUNTER_INPUTS = {
    "inference.cycles_total": (Reg.CYCLES_TOTAL, 0x11111111),
    "inference.cycles_drive": (Reg.CYCLES_DRIVE, 0x22222222),
    "inference.cycles_convert": (Reg.CYCLES_CONVERT, 0x33333333),
    "inference.cycles_argmax": (Reg.CYCLES_ARGMAX, 0x44444444),
    "inference.inferences": (Reg.INFERENCES, 0x55555555),
    "counters.frames_ok": (Reg.FRAMES_OK, 0x66666666),
    "counters.err_crc": (Reg.ERR_CRC, 0x77777777),
    "counters.err_cmd": (Reg.ERR_CMD, 0x88888888),
    "counters.err_len": (Reg.ERR_LEN, 0x99999999),
    "counters.err_timeout": (Reg.ERR_TIMEOUT, 0xAAAAAAAA),
    "programming.pulses": (Reg.PROG_PULSES, 0xBBBBBBBB),
    "programming.failures": (Reg.PROG_FAILURES, 0xCCCCCCCC),
    "programming.cycles": (Reg.PROG_CYCLES, 0xDDDDDDDD),
    "programming.steps": (Reg.PROG_STEPS, 0xEEEEEEEE),
}


def port(dut, path):
    """The signal at a dotted path of the register file's ports, e.g. 'inference.result'."""
    for part in path.split("."):
        dut = getattr(dut, part)
    return dut


def run(bench, tiles=1, layered=False):
    dut = RegisterFile(GEOMETRY, tiles=tiles, layered=layered)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def main(ctx):
        await bench(ctx, dut)

    sim.add_testbench(main)
    sim.run()


def read(ctx, dut, reg):
    ctx.set(dut.bus.addr, int(reg))
    return ctx.get(dut.bus.r_data)      # combinational: no clock needed


async def write(ctx, dut, reg, value):
    """One bus write; returns the (start, clear_errors) pulses seen on the next 3 clocks."""
    ctx.set(dut.bus.addr, int(reg))
    ctx.set(dut.bus.w_data, value)
    ctx.set(dut.bus.w_stb, 1)
    await ctx.tick()
    ctx.set(dut.bus.w_stb, 0)
    pulses = []
    for _ in range(3):
        pulses.append((ctx.get(dut.start), ctx.get(dut.clear_errors)))
        await ctx.tick()
    return pulses


def test_every_read_only_register():
    async def bench(ctx, dut):
        for name, (_, value) in COUNTER_INPUTS.items():
            ctx.set(port(dut, name), value)
        ctx.set(dut.inference.result, 0xC7)
        assert read(ctx, dut, Reg.ID) == protocol.CHIP_ID
        assert read(ctx, dut, Reg.GEOMETRY) == GEOMETRY
        assert read(ctx, dut, Reg.RESULT) == 0xC7
        assert read(ctx, dut, Reg.CTRL) == 0          # write-only
        for name, (reg, value) in COUNTER_INPUTS.items():
            assert read(ctx, dut, reg) == value, name
        for addr in (protocol.NUM_REGS, 0x7F, 0xFF):  # unmapped
            assert read(ctx, dut, addr) == 0

    run(bench)


def test_status_bits():
    async def bench(ctx, dut):
        for bits in range(16):
            busy, done, prog_busy, write_ok = (bits >> k & 1 for k in range(4))
            ctx.set(dut.inference.busy, busy)
            ctx.set(dut.inference.done, done)
            ctx.set(dut.programming.busy, prog_busy)
            ctx.set(dut.programming.write_ok, write_ok)
            expected = (busy * protocol.STATUS_BUSY | done * protocol.STATUS_DONE
                        | done * protocol.STATUS_IRQ | prog_busy * protocol.STATUS_PROG_BUSY
                        | write_ok * protocol.STATUS_WRITE_OK)
            assert read(ctx, dut, Reg.STATUS) == expected, (busy, done, prog_busy, write_ok)
        assert (protocol.STATUS_PROG_BUSY, protocol.STATUS_WRITE_OK) == (1 << 3, 1 << 4)

    run(bench)


def test_scratch_is_read_write_and_read_only_registers_ignore_writes():
    async def bench(ctx, dut):
        assert read(ctx, dut, Reg.SCRATCH) == 0
        await write(ctx, dut, Reg.SCRATCH, 0xDEADBEEF)
        assert read(ctx, dut, Reg.SCRATCH) == 0xDEADBEEF
        await write(ctx, dut, Reg.SCRATCH, 0x00000001)
        assert read(ctx, dut, Reg.SCRATCH) == 0x00000001
        for reg in (Reg.ID, Reg.STATUS, Reg.RESULT, Reg.GEOMETRY, Reg.ERR_CRC, Reg.PROG_PULSES,
                    Reg.PROG_STEPS):
            before = read(ctx, dut, reg)
            pulses = await write(ctx, dut, reg, 0x12345673)
            assert read(ctx, dut, reg) == before, reg.name
            assert pulses == [(0, 0)] * 3
        assert read(ctx, dut, Reg.SCRATCH) == 0x00000001
        # Without w_stb nothing is written.
        ctx.set(dut.bus.addr, Reg.SCRATCH)
        ctx.set(dut.bus.w_data, 0xFFFFFFFF)
        await ctx.tick().repeat(2)
        assert ctx.get(dut.bus.r_data) == 0x00000001

    run(bench)


def test_ctrl_pulses():
    async def bench(ctx, dut):
        # Registered one-cycle pulses, on the clock after the write.
        assert await write(ctx, dut, Reg.CTRL, protocol.CTRL_START) == [(1, 0), (0, 0), (0, 0)]
        assert await write(ctx, dut, Reg.CTRL, protocol.CTRL_CLEAR_ERRORS) == \
            [(0, 1), (0, 0), (0, 0)]
        assert await write(ctx, dut, Reg.CTRL, protocol.CTRL_START | protocol.CTRL_CLEAR_ERRORS) \
            == [(1, 1), (0, 0), (0, 0)]
        assert await write(ctx, dut, Reg.CTRL, 0xFFFFFFFC) == [(0, 0)] * 3
        # Bit 0 written to another register is no start.
        assert await write(ctx, dut, Reg.SCRATCH, 0x3) == [(0, 0)] * 3
        assert read(ctx, dut, Reg.CTRL) == 0

    run(bench)


def test_register_map_is_append_only():
    # Existing addresses never move; the programming registers follow GEOMETRY.
    assert [(r.name, int(r)) for r in Reg][:16] == [
        ("ID", 0), ("CTRL", 1), ("STATUS", 2), ("RESULT", 3), ("CYCLES_TOTAL", 4),
        ("CYCLES_DRIVE", 5), ("CYCLES_CONVERT", 6), ("CYCLES_ARGMAX", 7), ("INFERENCES", 8),
        ("FRAMES_OK", 9), ("ERR_CRC", 10), ("ERR_CMD", 11), ("ERR_LEN", 12),
        ("ERR_TIMEOUT", 13), ("SCRATCH", 14), ("GEOMETRY", 15)]
    assert (Reg.PROG_PULSES, Reg.PROG_FAILURES, Reg.PROG_CYCLES, Reg.PROG_STEPS) == (16, 17, 18, 19)
    assert Reg.ERR_FRAMING == 20          # UART framing errors (Robustness)
    assert Reg.REQUANT_MULT == 21         # ReLU requantiser multipliers (multi-layer networks)
    assert Reg.PROG_TILE == 22            # tile select of the programming path (multi-tile chips)
    assert (Reg.CYCLES_LOAD_WINDOW, Reg.CYCLES_ACCUMULATE, Reg.CYCLES_ACTIVATE,
            Reg.CYCLES_POOL) == (23, 24, 25, 26)   # the layered controller's phases
    assert protocol.NUM_REGS == 27


def test_requant_mult_is_read_write():
    dut = RegisterFile(geometry=0)

    async def bench(ctx):
        ctx.set(dut.bus.addr, Reg.REQUANT_MULT)
        ctx.set(dut.bus.w_data, 0x00_00_19_2A)
        ctx.set(dut.bus.w_stb, 1)
        await ctx.tick()
        ctx.set(dut.bus.w_stb, 0)
        assert ctx.get(dut.requant_mult) == 0x192A
        assert ctx.get(dut.bus.r_data) == 0x192A

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_prog_tile_keeps_only_indices_of_existing_tiles():
    """PROG_TILE of a 10-tile chip: every index 0..9 is stored and read back, on the
    register and on the programmer's port; 10, 11, 255 and a high bit are ignored (the
    register keeps the last good tile), so the programmer can never address a tile the
    chip does not have. A single-tile chip keeps 0."""
    async def bench(ctx, dut):
        assert read(ctx, dut, Reg.PROG_TILE) == 0 and ctx.get(dut.prog_tile) == 0
        for tile in (3, 9, 0, 7):
            await write(ctx, dut, Reg.PROG_TILE, tile)
            assert read(ctx, dut, Reg.PROG_TILE) == tile
            assert ctx.get(dut.prog_tile) == tile
        for bad in (10, 11, 255, 1 << 31 | 2):
            await write(ctx, dut, Reg.PROG_TILE, bad)
            assert read(ctx, dut, Reg.PROG_TILE) == 7, f"PROG_TILE took {bad}"
            assert ctx.get(dut.prog_tile) == 7
    run(bench, tiles=10)

    async def single(ctx, dut):
        for bad in (1, 2, 0xFFFFFFFF):
            await write(ctx, dut, Reg.PROG_TILE, bad)
            assert read(ctx, dut, Reg.PROG_TILE) == 0
    run(single, tiles=1)


PHASE_INPUTS = {"phases.load_window": (Reg.CYCLES_LOAD_WINDOW, 0x12345678),
                "phases.accumulate": (Reg.CYCLES_ACCUMULATE, 0x23456789),
                "phases.activate": (Reg.CYCLES_ACTIVATE, 0x3456789A),
                "phases.pool": (Reg.CYCLES_POOL, 0x456789AB)}


def test_layered_phase_counters_are_registers():
    async def bench(ctx, dut):
        for name, (_, value) in {**COUNTER_INPUTS, **PHASE_INPUTS}.items():
            ctx.set(port(dut, name), value)
        for name, (reg, value) in {**COUNTER_INPUTS, **PHASE_INPUTS}.items():
            assert read(ctx, dut, reg) == value, name
    run(bench, layered=True)


def test_a_dense_chip_has_no_phase_ports_and_reads_them_as_zero():
    assert not hasattr(RegisterFile(GEOMETRY), "phases")

    async def bench(ctx, dut):
        for name, (_, value) in COUNTER_INPUTS.items():
            ctx.set(port(dut, name), value)
        for reg, _ in PHASE_INPUTS.values():
            assert read(ctx, dut, reg) == 0, reg.name
    run(bench)
