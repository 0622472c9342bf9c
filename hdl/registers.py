"""The 32-bit register file behind READ_REG / WRITE_REG (map: `hdl.protocol.Reg`)."""

# No `from __future__ import annotations` here: wiring.Component reads the port annotations.
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import protocol
from .protocol import Reg


class RegisterFile(wiring.Component):
    """Register file: a combinational read mux over status inputs, SCRATCH, and CTRL pulses.

    Reads of CTRL (write-only, self-clearing) and of addresses >= ``protocol.NUM_REGS``
    return 0. Writes to anything but CTRL and SCRATCH are ignored here (the command layer
    already refuses them with NACK BAD_ADDR).

    Parameters
    ----------
    geometry : int
        The constant value of the GEOMETRY register, computed by the caller from the
        `ChipConfig` (layout in `protocol.Reg.GEOMETRY`).

    Attributes
    ----------
    addr : In(8)
        Register address (`protocol.Reg`).
    rdata : Out(32)
        Combinational read of ``addr``.
    wdata : In(32)
        Write data.
    we : In(1)
        Write strobe.
    busy : In(1)
        STATUS bit 0.
    done : In(1)
        STATUS bit 1 (result valid) and bit 2 (irq pending mirrors done).
    result : In(8)
        RESULT register (class index), zero-extended.
    cycles_total, cycles_drive, cycles_convert, cycles_argmax, inferences : In(32)
        Controller counters, read through the CYCLES_* and INFERENCES registers.
    frames_ok, err_crc, err_cmd, err_len, err_timeout : In(32)
        Command layer counters, read through FRAMES_OK and ERR_*.
    prog_busy : In(1)
        STATUS bit 3: a programming run is going on.
    write_ok : In(1)
        STATUS bit 4: the last programming run finished.
    prog_pulses, prog_failures, prog_cycles, prog_steps : In(32)
        Programmer counters, read through PROG_PULSES, PROG_FAILURES, PROG_CYCLES and
        PROG_STEPS.
    err_framing : In(32)
        UART framing errors, read through ERR_FRAMING (tie to 0 without a UART).
    start : Out(1)
        One-cycle pulse, registered (the clock after the write), when CTRL is written with
        bit 0 set.
    clear_errors : Out(1)
        One-cycle pulse, registered like ``start``, when CTRL is written with bit 1 set.
    requant_mult : Out(32)
        REQUANT_MULT, read/write: the ReLU requantiser multipliers for the controller.
    """

    addr: In(8)
    rdata: Out(32)
    wdata: In(32)
    we: In(1)
    busy: In(1)
    done: In(1)
    result: In(8)
    cycles_total: In(32)
    cycles_drive: In(32)
    cycles_convert: In(32)
    cycles_argmax: In(32)
    inferences: In(32)
    frames_ok: In(32)
    err_crc: In(32)
    err_cmd: In(32)
    err_len: In(32)
    err_timeout: In(32)
    prog_busy: In(1)
    write_ok: In(1)
    prog_pulses: In(32)
    prog_failures: In(32)
    prog_cycles: In(32)
    prog_steps: In(32)
    err_framing: In(32)
    start: Out(1)
    clear_errors: Out(1)
    requant_mult: Out(32)

    def __init__(self, geometry: int):
        if not 0 <= geometry < 1 << 32:
            raise ValueError(f"geometry must fit in 32 bits, got {geometry:#x}")
        self.geometry = geometry
        super().__init__()

    def elaborate(self, platform):
        m = Module()

        scratch = Signal(32)
        status = Signal(32)
        m.d.comb += status.eq(Mux(self.busy, protocol.STATUS_BUSY, 0) |
                              Mux(self.done, protocol.STATUS_DONE | protocol.STATUS_IRQ, 0) |
                              Mux(self.prog_busy, protocol.STATUS_PROG_BUSY, 0) |
                              Mux(self.write_ok, protocol.STATUS_WRITE_OK, 0))

        read_map = {
            Reg.ID: protocol.CHIP_ID,
            Reg.STATUS: status,
            Reg.RESULT: self.result,
            Reg.CYCLES_TOTAL: self.cycles_total,
            Reg.CYCLES_DRIVE: self.cycles_drive,
            Reg.CYCLES_CONVERT: self.cycles_convert,
            Reg.CYCLES_ARGMAX: self.cycles_argmax,
            Reg.INFERENCES: self.inferences,
            Reg.FRAMES_OK: self.frames_ok,
            Reg.ERR_CRC: self.err_crc,
            Reg.ERR_CMD: self.err_cmd,
            Reg.ERR_LEN: self.err_len,
            Reg.ERR_TIMEOUT: self.err_timeout,
            Reg.SCRATCH: scratch,
            Reg.GEOMETRY: self.geometry,
            Reg.PROG_PULSES: self.prog_pulses,
            Reg.PROG_FAILURES: self.prog_failures,
            Reg.PROG_CYCLES: self.prog_cycles,
            Reg.PROG_STEPS: self.prog_steps,
            Reg.ERR_FRAMING: self.err_framing,
            Reg.REQUANT_MULT: self.requant_mult,
        }
        with m.Switch(self.addr):
            for reg, value in read_map.items():
                with m.Case(reg):
                    m.d.comb += self.rdata.eq(value)
            # CTRL and unmapped addresses read as 0 (the comb default).

        ctrl_write = Signal()
        m.d.comb += ctrl_write.eq(self.we & (self.addr == Reg.CTRL))
        m.d.sync += [
            self.start.eq(ctrl_write & (self.wdata & protocol.CTRL_START).any()),
            self.clear_errors.eq(ctrl_write & (self.wdata & protocol.CTRL_CLEAR_ERRORS).any()),
        ]
        with m.If(self.we & (self.addr == Reg.SCRATCH)):
            m.d.sync += scratch.eq(self.wdata)
        with m.If(self.we & (self.addr == Reg.REQUANT_MULT)):
            m.d.sync += self.requant_mult.eq(self.wdata)

        return m
