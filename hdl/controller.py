"""Controller FSM: sequences one inference across the analog boundary."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .argmax import Argmax


class Controller(wiring.Component):
    """IDLE -> LOAD -> DRIVE -> CONVERT -> ARGMAX -> DONE, one inference per ``start``.

    LOAD latches the input buffer into the DAC register, so the host may refill the buffer for
    the next image without disturbing the array. DRIVE pulses ``vmm_start`` and waits for the
    analog side to report ``vmm_done`` (settled column currents); CONVERT pulses ``adc_start``
    and waits for ``adc_valid``; ARGMAX scans the latched codes. The analog side decides both
    waits (RC settling, ADC conversion), so their cycle counts come from the models.

    Parameters
    ----------
    rows, dac_bits, outputs, adc_bits : int
        Geometry from `ChipConfig`.

    Attributes
    ----------
    start : In(1)
        One-cycle pulse: begin an inference (ignored unless idle).
    busy : Out(1)
        An inference is running.
    done : Out(1)
        ``result`` is valid; cleared by the next ``start``.
    result : Out(8)
        Winning class of the last inference.
    buffer_codes : In(rows * dac_bits)
        Packed DAC codes from the input buffer.
    tile_sel : Out(1)
        Crossbar tile being driven (single tile for now).
    dac_codes : Out(rows * dac_bits)
        DAC register driving the rows; stable from ``vmm_start`` to ``adc_valid``.
    vmm_start : Out(1)
        One-cycle pulse: apply ``dac_codes`` to the tile.
    vmm_done : In(1)
        Pulse from the analog side: column currents settled.
    adc_start : Out(1)
        One-cycle pulse: convert the sensed outputs.
    adc_codes : In(outputs * adc_bits)
        Signed ADC codes, valid with ``adc_valid``.
    adc_valid : In(1)
        Pulse from the analog side: ``adc_codes`` valid.
    output_codes : Out(outputs * adc_bits)
        ADC codes latched at the end of CONVERT (the chip's output buffer).
    cycles_total, cycles_drive, cycles_convert, cycles_argmax : Out(32)
        Clocks spent in the last inference, in all and per phase.
    inferences : Out(32)
        Inferences completed since reset.
    """

    def __init__(self, *, rows: int, dac_bits: int, outputs: int, adc_bits: int):
        self._outputs, self._adc_bits = outputs, adc_bits
        code_bits = rows * dac_bits
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "result": Out(8),
            "buffer_codes": In(code_bits),
            "tile_sel": Out(1),
            "dac_codes": Out(code_bits),
            "vmm_start": Out(1),
            "vmm_done": In(1),
            "adc_start": Out(1),
            "adc_codes": In(outputs * adc_bits),
            "adc_valid": In(1),
            "output_codes": Out(outputs * adc_bits),
            "cycles_total": Out(32),
            "cycles_drive": Out(32),
            "cycles_convert": Out(32),
            "cycles_argmax": Out(32),
            "inferences": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.argmax = argmax = Argmax(self._outputs, self._adc_bits)
        m.d.comb += argmax.codes.eq(self.output_codes)

        # Strobes are high for exactly the cycle after the state that raises them.
        m.d.sync += [self.vmm_start.eq(0), self.adc_start.eq(0), argmax.start.eq(0)]

        with m.FSM(name="ctrl") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [
                        self.done.eq(0),
                        self.cycles_total.eq(0),
                        self.cycles_drive.eq(0),
                        self.cycles_convert.eq(0),
                        self.cycles_argmax.eq(0),
                    ]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [self.dac_codes.eq(self.buffer_codes), self.vmm_start.eq(1)]
                m.next = "DRIVE"
            with m.State("DRIVE"):
                m.d.sync += self.cycles_drive.eq(self.cycles_drive + 1)
                with m.If(self.vmm_done):
                    m.d.sync += self.adc_start.eq(1)
                    m.next = "CONVERT"
            with m.State("CONVERT"):
                m.d.sync += self.cycles_convert.eq(self.cycles_convert + 1)
                with m.If(self.adc_valid):
                    m.d.sync += [self.output_codes.eq(self.adc_codes), argmax.start.eq(1)]
                    m.next = "ARGMAX"
            with m.State("ARGMAX"):
                m.d.sync += self.cycles_argmax.eq(self.cycles_argmax + 1)
                with m.If(argmax.done):
                    m.d.sync += self.result.eq(argmax.index)
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.sync += [self.done.eq(1), self.inferences.eq(self.inferences + 1)]
                m.next = "IDLE"

        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        with m.If(~fsm.ongoing("IDLE")):
            m.d.sync += self.cycles_total.eq(self.cycles_total + 1)
        return m
