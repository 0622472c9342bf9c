"""Top level of the chip's digital periphery: host interface, command layer, registers,
input buffer (or feature-map memory) and output buffer, controller and programmer, joined by
the port groups of `xbarflow.hdl.ports`, with the analog boundary as top-level ports."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from xbarflow.flow.core.config import ChipConfig

from . import protocol
from .command import CommandLayer
from . import controller, programmer
from .controller import Controller
from .feature_map import FeatureMap
from .input_buffer import InputBuffer
from .layered_controller import LayeredController
from .output_buffer import OutputBuffer
from .programmer import Programmer
from .registers import RegisterFile
from .spi import SPISlave
from .uart import UART

__all__ = ["TOP_NAME", "Top"]

TOP_NAME = "xbarflow_top"


class Top(wiring.Component):
    """The whole digital chip for one `ChipConfig`.

    Host pins and the analog boundary of shared/ARCHITECTURE.md are the ports; the cocotb
    analog bridge serves the boundary, the host BFM drives the pins. The host interface is
    ``cfg.host.interface``: only the selected interface's pins exist.

    A dense network has the input buffer and `Controller`; a layered one (conv, pool, flatten,
    dense stages) has the feature-map memory instead, WRITE_BUF writing the image into its map
    0, and `LayeredController`.

    The controller (inference) and the programmer never run at once: the command layer
    answers START / START_PROGRAM with NACK BUSY while either runs, and a CTRL start is
    ignored while programming.

    Attributes
    ----------
    spi_sclk, spi_cs_n, spi_mosi : In(1)
        SPI pins from the host (interface "spi", mode 0).
    spi_miso : Out(1)
        SPI data to the host (interface "spi").
    uart_rx : In(1)
        UART receive pin, idles high (interface "uart", 8N1, ``cfg.host.uart_divider``
        clocks per bit).
    uart_tx : Out(1)
        UART transmit pin, idles high (interface "uart").
    irq : Out(1)
        High when a result is ready (mirrors STATUS.done).
    tile_sel : Out(range(tiles))
        Crossbar tile being driven, in `ChipConfig.tiles` order (layer, column tile, row tile).
    dac_codes : Out(tile_rows * dac_bits)
        Row DAC codes of the driven tile, code ``i`` at bits ``[i*dac_bits, (i+1)*dac_bits)``;
        rows past the tile's last input are 0.
    vmm_start : Out(1)
        Pulse: the analog side applies ``dac_codes``.
    vmm_done : In(1)
        Pulse from the analog side: currents settled.
    adc_start : Out(1)
        Pulse: the analog side converts.
    adc_col_sel : Out(range(groups))
        Only with shared ADCs (``adc.adcs_per_tile``): the ADC group (column multiplexer
        setting) to convert; group ``g`` holds the tile's outputs ``g*adcs ..``.
    adc_codes : In(adcs * adc_bits)
        Signed codes of the converted outputs, code ``k`` at bits ``[k*adc_bits, (k+1)*adc_bits)``.
    adc_valid : In(1)
        Pulse from the analog side: ``adc_codes`` valid.
    prog_row_sel : Out(tile_rows)
        Programming: global row select lines (see `xbarflow.hdl.selector.Selector` for the biasing).
    prog_col_sel : Out(tile_cols)
        Programming: column select, one-hot while programming.
    prog_partition_en : Out(partitions)
        Partitions taking part in the current verify (present) or pulse (present, not acked).
    prog_pulse : Out(1)
        Program pulse, high for exactly ``cfg.pulse_cycles`` clocks per pulse.
    prog_polarity : Out(partitions)
        Per partition during a pulse: 1 RESET, 0 SET.
    prog_level : Out(bits for amplitude_levels - 1)
        Pulse amplitude code.
    verify_start : Out(1)
        One-clock strobe: verify the selected cells against ``verify_ref``.
    verify_ref : Out(partitions * level_bits)
        Reference level code of partition ``p`` at bits ``[p*level_bits, (p+1)*level_bits)``.
    verify_ok, verify_high : In(partitions)
        Verify answer per partition, sampled in the clock where ``verify_done`` is high.
    verify_done : In(1)
        One-clock strobe from the analog side answering ``verify_start``.
    rw_mode : Out(1)
        1 while programming (rows to the write drivers), 0 for inference (rows to the DACs).
    prog_tile_sel : Out(range(tiles))
        Programming: the tile the write path addresses (PROG_TILE latched at START_PROGRAM),
        in `ChipConfig.tiles` order like ``tile_sel``; stable for the whole run.

    The handshake timing is documented in `xbarflow.hdl.programmer`.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        if cfg.host.interface == "spi":
            host_pins = {
                "spi_sclk": In(1),
                "spi_cs_n": In(1, init=1),
                "spi_mosi": In(1),
                "spi_miso": Out(1),
            }
        elif cfg.host.interface == "uart":
            host_pins = {
                "uart_rx": In(1, init=1),
                "uart_tx": Out(1, init=1),
            }
        else:
            raise ValueError(f"unknown host interface '{cfg.host.interface}'")
        super().__init__({
            **host_pins,
            "irq": Out(1),
            **controller.analog_members(cfg, column_select=cfg.adc_groups > 1),
            **programmer.analog_members(cfg),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()

        m.submodules.command = command = CommandLayer(
            input_bytes=cfg.input_bytes, output_bytes=2 * cfg.outputs,
            target_bytes=cfg.target_bytes)
        layered = cfg.network.layered
        m.submodules.registers = regs = RegisterFile(geometry=protocol.geometry_word(cfg),
                                                    tiles=len(cfg.tiles), layered=layered)
        if layered:
            m.submodules.feature_map = buffer = FeatureMap(cfg.network.feature_map_codes,
                                                           cfg.quant.dac_bits)
            m.submodules.controller = ctrl = LayeredController(cfg)
        else:
            m.submodules.input_buffer = buffer = InputBuffer(cfg.rows * cfg.quant.dac_bits)
            m.submodules.controller = ctrl = Controller(cfg)
        m.submodules.output_buffer = outputs = OutputBuffer(cfg.outputs, ctrl.sum_bits)
        m.submodules.programmer = prog = Programmer(cfg)

        # Host pins -> SPI slave or UART -> command layer (same byte streams).
        if cfg.host.interface == "spi":
            m.submodules.spi = link = SPISlave()
            m.d.comb += [
                link.sclk.eq(self.spi_sclk),
                link.cs_n.eq(self.spi_cs_n),
                link.mosi.eq(self.spi_mosi),
                self.spi_miso.eq(link.miso),
                command.abort.eq(link.deselect),
            ]
        else:
            # A UART has no chip select: partial frames are only dropped by the frame timeout.
            m.submodules.uart = link = UART(cfg.host.uart_divider)
            m.d.comb += [
                link.rxd.eq(self.uart_rx),
                self.uart_tx.eq(link.txd),
                command.abort.eq(0),
                # Framing errors are read through ERR_FRAMING and cleared with the ERR_* counters.
                regs.err_framing.eq(link.framing_errors),
                link.clear.eq(regs.clear_errors),
            ]
        connect(m, link.rx, command.rx)
        connect(m, command.tx, link.tx)

        # Command layer -> registers and buffers; every block's state and counters -> registers.
        connect(m, command.registers, regs.bus)
        connect(m, command.input_buffer, buffer.write)   # the image, by WRITE_BUF
        if layered:
            connect(m, ctrl.feature_read, buffer.code_read)
            connect(m, ctrl.feature_write, buffer.code_write)
            m.d.comb += [regs.phases.load_window.eq(ctrl.cycles_load_window),
                         regs.phases.accumulate.eq(ctrl.cycles_accumulate),
                         regs.phases.activate.eq(ctrl.cycles_activate),
                         regs.phases.pool.eq(ctrl.cycles_pool)]
        connect(m, command.targets, prog.targets)
        connect(m, command.output_buffer, outputs.read)
        connect(m, command.counters, regs.counters)
        connect(m, ctrl.status, regs.inference)
        connect(m, prog.status, regs.programming)
        m.d.comb += [
            command.busy.eq(ctrl.status.busy | prog.status.busy),
            command.clear_errors.eq(regs.clear_errors),
            # Inference and programming exclude each other (the command layer NACKs a
            # START_PROGRAM or START while busy; a CTRL start during programming is ignored).
            ctrl.start.eq((command.start | regs.start) & ~prog.status.busy),
            *([] if layered else [ctrl.buffer_codes.eq(buffer.codes)]),
            ctrl.requant_mult.eq(regs.requant_mult),
            prog.start.eq(command.start_program & ~ctrl.status.busy),
            prog.tile.eq(regs.prog_tile),
            outputs.codes.eq(ctrl.output_codes),
        ]

        # Analog boundary: the top-level ports keep their names (benches and sidecar use them),
        # each wired to the same port of the controller or the programmer.
        m.d.comb += self.irq.eq(ctrl.status.done)
        shared_adcs = cfg.adc_groups > 1
        for block, members in ((ctrl, controller.analog_members(cfg, column_select=shared_adcs)),
                               (prog, programmer.analog_members(cfg))):
            for name, member in members.items():
                pin, port = getattr(self, name), getattr(block, name)
                m.d.comb += port.eq(pin) if member.flow == In else pin.eq(port)
        return m
