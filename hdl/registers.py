"""The 32-bit register file behind READ_REG / WRITE_REG (map: `xbarflow.hdl.protocol.Reg`)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import protocol
from .ports import (
    FrameCountersSignature,
    InferenceStatusSignature,
    PhaseCountersSignature,
    ProgrammingStatusSignature,
    RegisterSignature,
)
from .protocol import Reg

__all__ = ["RegisterFile"]


class RegisterFile(wiring.Component):
    """Register file: a combinational read mux over status inputs, SCRATCH, and CTRL pulses.

    Reads of CTRL (write-only, self-clearing) and of addresses >= ``protocol.NUM_REGS``
    return 0. Writes to anything but CTRL, SCRATCH, REQUANT_MULT and PROG_TILE are ignored here
    (the command layer already refuses them with NACK BAD_ADDR); a PROG_TILE write of an index
    >= ``tiles`` is ignored too, so ``prog_tile`` always names a tile of the chip.

    Parameters
    ----------
    geometry : int
        The constant value of the GEOMETRY register, computed by the caller from the
        `ChipConfig` (layout in `protocol.Reg.GEOMETRY`).
    tiles : int
        Crossbar tiles of the chip (``len(ChipConfig.tiles)``): the range of PROG_TILE.
    layered : bool
        A layered network's chip: adds ``phases`` (CYCLES_LOAD_WINDOW .. CYCLES_POOL). Without
        it those registers read 0 and the register file is the dense chip's, port for port.

    Attributes
    ----------
    bus : In(RegisterSignature())
        The command layer's register port: ``bus.r_data`` is the combinational read of
        ``bus.addr``; ``bus.w_stb`` writes ``bus.w_data``.
    counters : In(FrameCountersSignature())
        Command layer counters, read through FRAMES_OK and ERR_*.
    inference : In(InferenceStatusSignature())
        The controller: STATUS bit 0 (busy), bits 1 and 2 (done: result valid, and irq
        pending mirrors it), RESULT (zero-extended), CYCLES_* and INFERENCES.
    programming : In(ProgrammingStatusSignature())
        The programmer: STATUS bit 3 (busy), bit 4 (write_ok), PROG_PULSES, PROG_FAILURES,
        PROG_CYCLES and PROG_STEPS.
    phases : In(PhaseCountersSignature())
        Layered chips only: the layered controller's per-phase clocks, read through
        CYCLES_LOAD_WINDOW, CYCLES_ACCUMULATE, CYCLES_ACTIVATE and CYCLES_POOL.
    err_framing : In(32)
        UART framing errors, read through ERR_FRAMING (tie to 0 without a UART).
    start : Out(1)
        One-cycle pulse, registered (the clock after the write), when CTRL is written with
        bit 0 set.
    clear_errors : Out(1)
        One-cycle pulse, registered like ``start``, when CTRL is written with bit 1 set.
    requant_mult : Out(32)
        REQUANT_MULT, read/write: the ReLU requantiser multipliers for the controller.
    prog_tile : Out(range(max(2, tiles)))
        PROG_TILE, read/write (reset 0): the tile the programmer programs at its next start.
    """

    def __init__(self, geometry: int, tiles: int = 1, layered: bool = False):
        if not 0 <= geometry < 1 << 32:
            raise ValueError(f"geometry must fit in 32 bits, got {geometry:#x}")
        if not 1 <= tiles <= 256:
            raise ValueError(f"tiles must be in 1..256, got {tiles}")
        self.geometry = geometry
        self.tiles = tiles
        self.layered = bool(layered)
        super().__init__({
            **({"phases": In(PhaseCountersSignature())} if self.layered else {}),
            "bus": In(RegisterSignature()),
            "counters": In(FrameCountersSignature()),
            "inference": In(InferenceStatusSignature()),
            "programming": In(ProgrammingStatusSignature()),
            "err_framing": In(32),
            "start": Out(1),
            "clear_errors": Out(1),
            "requant_mult": Out(32),
            "prog_tile": Out(range(max(2, tiles))),   # as the controller's tile_sel
        })

    def elaborate(self, platform):
        m = Module()
        bus, ctrl, prog, frames = self.bus, self.inference, self.programming, self.counters

        scratch = Signal(32)
        status = Signal(32)
        m.d.comb += status.eq(Mux(ctrl.busy, protocol.STATUS_BUSY, 0) |
                              Mux(ctrl.done, protocol.STATUS_DONE | protocol.STATUS_IRQ, 0) |
                              Mux(prog.busy, protocol.STATUS_PROG_BUSY, 0) |
                              Mux(prog.write_ok, protocol.STATUS_WRITE_OK, 0))

        read_map = {
            Reg.ID: protocol.CHIP_ID,
            Reg.STATUS: status,
            Reg.RESULT: ctrl.result,
            Reg.CYCLES_TOTAL: ctrl.cycles_total,
            Reg.CYCLES_DRIVE: ctrl.cycles_drive,
            Reg.CYCLES_CONVERT: ctrl.cycles_convert,
            Reg.CYCLES_ARGMAX: ctrl.cycles_argmax,
            Reg.INFERENCES: ctrl.inferences,
            Reg.FRAMES_OK: frames.frames_ok,
            Reg.ERR_CRC: frames.err_crc,
            Reg.ERR_CMD: frames.err_cmd,
            Reg.ERR_LEN: frames.err_len,
            Reg.ERR_TIMEOUT: frames.err_timeout,
            Reg.SCRATCH: scratch,
            Reg.GEOMETRY: self.geometry,
            Reg.PROG_PULSES: prog.pulses,
            Reg.PROG_FAILURES: prog.failures,
            Reg.PROG_CYCLES: prog.cycles,
            Reg.PROG_STEPS: prog.steps,
            Reg.ERR_FRAMING: self.err_framing,
            Reg.REQUANT_MULT: self.requant_mult,
            Reg.PROG_TILE: self.prog_tile,
        }
        if self.layered:
            read_map.update({Reg.CYCLES_LOAD_WINDOW: self.phases.load_window,
                             Reg.CYCLES_ACCUMULATE: self.phases.accumulate,
                             Reg.CYCLES_ACTIVATE: self.phases.activate,
                             Reg.CYCLES_POOL: self.phases.pool})
        with m.Switch(bus.addr):
            for reg, value in read_map.items():
                with m.Case(reg):
                    m.d.comb += bus.r_data.eq(value)
            # CTRL and unmapped addresses read as 0 (the comb default).

        ctrl_write = Signal()
        m.d.comb += ctrl_write.eq(bus.w_stb & (bus.addr == Reg.CTRL))
        m.d.sync += [
            self.start.eq(ctrl_write & (bus.w_data & protocol.CTRL_START).any()),
            self.clear_errors.eq(ctrl_write & (bus.w_data & protocol.CTRL_CLEAR_ERRORS).any()),
        ]
        with m.If(bus.w_stb & (bus.addr == Reg.SCRATCH)):
            m.d.sync += scratch.eq(bus.w_data)
        with m.If(bus.w_stb & (bus.addr == Reg.REQUANT_MULT)):
            m.d.sync += self.requant_mult.eq(bus.w_data)
        with m.If(bus.w_stb & (bus.addr == Reg.PROG_TILE) & (bus.w_data < self.tiles)):
            m.d.sync += self.prog_tile.eq(bus.w_data)

        return m
