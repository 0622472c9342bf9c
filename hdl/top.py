"""Top level of the chip's digital periphery: host interface, command layer, registers,
input buffer and controller, with the analog boundary as top-level ports."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from flow.config import ChipConfig

from . import protocol
from .command import CommandLayer
from .controller import Controller
from .input_buffer import InputBuffer
from .registers import RegisterFile
from .spi import SPISlave

TOP_NAME = "xbarflow_top"


class Top(wiring.Component):
    """The whole digital chip for one `ChipConfig`.

    Host pins (SPI mode 0) and the analog boundary of shared/ARCHITECTURE.md are the ports;
    the cocotb analog bridge serves the boundary, the host BFM drives the pins.

    Attributes
    ----------
    spi_sclk, spi_cs_n, spi_mosi : In(1)
        SPI pins from the host.
    spi_miso : Out(1)
        SPI data to the host.
    irq : Out(1)
        High when a result is ready (mirrors STATUS.done).
    tile_sel : Out(1)
        Crossbar tile being driven.
    dac_codes : Out(rows * dac_bits)
        Row DAC codes, code ``i`` at bits ``[i*dac_bits, (i+1)*dac_bits)``.
    vmm_start : Out(1)
        Pulse: the analog side applies ``dac_codes``.
    vmm_done : In(1)
        Pulse from the analog side: currents settled.
    adc_start : Out(1)
        Pulse: the analog side converts.
    adc_codes : In(outputs * adc_bits)
        Signed codes, code ``k`` at bits ``[k*adc_bits, (k+1)*adc_bits)``.
    adc_valid : In(1)
        Pulse from the analog side: ``adc_codes`` valid.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        code_bits = cfg.rows * cfg.quant.dac_bits
        super().__init__({
            "spi_sclk": In(1),
            "spi_cs_n": In(1, init=1),
            "spi_mosi": In(1),
            "spi_miso": Out(1),
            "irq": Out(1),
            "tile_sel": Out(1),
            "dac_codes": Out(code_bits),
            "vmm_start": Out(1),
            "vmm_done": In(1),
            "adc_start": Out(1),
            "adc_codes": In(cfg.outputs * cfg.adc.bits),
            "adc_valid": In(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        adc_bits, outputs = cfg.adc.bits, cfg.outputs

        m.submodules.spi = spi = SPISlave()
        m.submodules.command = command = CommandLayer(
            input_bytes=cfg.input_bytes, output_bytes=2 * outputs)
        m.submodules.registers = regs = RegisterFile(geometry=protocol.geometry_word(cfg))
        m.submodules.input_buffer = buffer = InputBuffer(cfg.rows * cfg.quant.dac_bits)
        m.submodules.controller = ctrl = Controller(
            rows=cfg.rows, dac_bits=cfg.quant.dac_bits, outputs=outputs, adc_bits=adc_bits)

        # Host pins -> SPI slave -> command layer.
        m.d.comb += [
            spi.sclk.eq(self.spi_sclk),
            spi.cs_n.eq(self.spi_cs_n),
            spi.mosi.eq(self.spi_mosi),
            self.spi_miso.eq(spi.miso),
            command.abort.eq(spi.deselect),
        ]
        wiring.connect(m, spi.rx, command.rx)
        wiring.connect(m, command.tx, spi.tx)

        # Command layer <-> registers, buffer, controller.
        m.d.comb += [
            regs.addr.eq(command.reg_addr),
            regs.wdata.eq(command.reg_wdata),
            regs.we.eq(command.reg_we),
            command.reg_rdata.eq(regs.rdata),
            buffer.write_addr.eq(command.buf_addr),
            buffer.write_data.eq(command.buf_wdata),
            buffer.write_en.eq(command.buf_we),
            command.busy.eq(ctrl.busy),
            command.clear_errors.eq(regs.clear_errors),
            ctrl.start.eq(command.start | regs.start),
            ctrl.buffer_codes.eq(buffer.codes),
        ]
        for name in ("busy", "done", "result", "cycles_total", "cycles_drive", "cycles_convert",
                     "cycles_argmax", "inferences"):
            m.d.comb += getattr(regs, name).eq(getattr(ctrl, name))
        for name in ("frames_ok", "err_crc", "err_cmd", "err_len", "err_timeout"):
            m.d.comb += getattr(regs, name).eq(getattr(command, name))

        # Output buffer: code k as 2 bytes, big endian, sign-extended to 16 bits.
        out_bytes = []
        for k in range(outputs):
            wide = Signal(16, name=f"output_code_{k}")
            m.d.comb += wide.eq(ctrl.output_codes[k * adc_bits:(k + 1) * adc_bits].as_signed())
            out_bytes += [wide[8:16], wide[0:8]]
        with m.Switch(command.out_addr):
            for addr, byte in enumerate(out_bytes):
                with m.Case(addr):
                    m.d.comb += command.out_rdata.eq(byte)

        # Analog boundary.
        m.d.comb += [
            self.tile_sel.eq(ctrl.tile_sel),
            self.dac_codes.eq(ctrl.dac_codes),
            self.vmm_start.eq(ctrl.vmm_start),
            ctrl.vmm_done.eq(self.vmm_done),
            self.adc_start.eq(ctrl.adc_start),
            ctrl.adc_codes.eq(self.adc_codes),
            ctrl.adc_valid.eq(self.adc_valid),
            self.irq.eq(ctrl.done),
        ]
        return m


