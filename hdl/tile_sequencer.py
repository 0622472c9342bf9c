"""Tile sequencer: the part of an inference that the dense and the layered controller share.

Both controllers (`xbarflow.hdl.controller.Controller`, `xbarflow.hdl.layered_controller.
LayeredController`) run a layer as the same walk over its crossbar tiles: drive the DAC codes,
convert each ADC group, add the codes into the neurons' sums, go to the next tile; after the
last layer they scan the sums with `Argmax`. `TileSequencer` makes the signals, constant tables
and submodules of that walk and emits its FSM states (and IDLE) into the caller's ``m.FSM``;
the caller keeps its own LOAD and ACTIVATE (how inputs reach the DAC register and where
activation codes go) and any states of its own between them. The per-tile tables' widths and
the order of every statement are those the controllers had before, so their Verilog is
unchanged.
"""

from amaranth import *
from amaranth.lib import wiring

from .activation import Activation
from .argmax import Argmax

__all__ = ["TileSequencer", "flags", "table"]


def table(values, *, spare=0):
    """Constants indexed by a counter, each of shape ``range(max(values) + 1 + spare)``
    (``spare=1`` keeps an all-zero table from being zero-width nets)."""
    return Array(Const(v, range(max(values) + 1 + spare)) for v in values)


def flags(values):
    """One-bit constants indexed by a counter, so ``~`` is a logical not."""
    return Array(Const(int(v), 1) for v in values)


class TileSequencer:
    """Signals, tables and submodules of the tile walk of `ctrl`, added to module `m`.

    The states it emits: IDLE waits for ``start``; DRIVE pulses ``vmm_start`` and waits for
    ``vmm_done``; CONVERT selects an ADC group (``adc_col_sel``), pulses ``adc_start`` and
    waits for ``adc_valid``; ACCUMULATE adds the group's codes into the neurons' sums, one per
    clock (a tile's first row tile starts them from zero), then converts the next group or goes
    to NEXT_TILE, which goes to the caller's LOAD (next tile of the layer), ACTIVATE (end of a
    hidden layer) or ARGMAX (end of the last layer). ARGMAX waits for `Argmax`; DONE latches
    the result.

    Parameters
    ----------
    m : Module
        The caller's module.
    ctrl : wiring.Component
        The controller: its ``cfg``, ``sum_bits``, ``adcs``, ``groups``, ``start``, ``status``,
        ``requant_mult``, ``output_codes`` and analog-boundary ports.
    spare : int
        `table`'s ``spare`` for the per-tile tables.

    Attributes
    ----------
    tile, group, k, layer : Signal
        Tile counter, ADC group of the tile, element counter (of a group in ACCUMULATE, of a
        layer's outputs in the caller's ACTIVATE) and the tile's weight layer.
    t_layer, t_row_tile, t_out_start, t_outputs, t_first, t_last_of_layer : Array
        Per-tile constants indexed by ``tile``.
    sums : Array
        The neurons' accumulated sums (signed, ``sum_bits``).
    activation_codes : Array
        Activation code of ``sums[k]`` by each hidden layer's `Activation` unit.
    argmax : Argmax
        Scans ``output_codes``.
    """

    def __init__(self, m: Module, ctrl: wiring.Component, *, spare: int = 0):
        self.ctrl = ctrl
        cfg, tiles = ctrl.cfg, ctrl.cfg.tiles
        layers = cfg.network.layer_shapes
        dac_bits, adc_bits, sb, adcs = cfg.quant.dac_bits, cfg.adc.bits, ctrl.sum_bits, ctrl.adcs
        self.n_layers, n_tiles, self.classes = len(layers), len(tiles), layers[-1][1]
        max_out = max(n_out for _, n_out in layers)

        # Per-tile geometry as small constant tables indexed by the tile counter.
        self.t_layer = table([t.layer for t in tiles], spare=spare)
        self.t_row_tile = table([t.row_tile for t in tiles], spare=spare)
        self.t_out_start = table([t.out_start for t in tiles], spare=spare)
        self.t_outputs = table([t.outputs for t in tiles], spare=spare)
        self.t_first = flags([t.row_tile == 0 for t in tiles])
        self.t_last_of_layer = flags([k + 1 == n_tiles or tiles[k + 1].layer != t.layer
                                      for k, t in enumerate(tiles)])

        self.sums = Array(Signal(signed(sb), name=f"sum{k}") for k in range(max_out))
        self.adc_latched = Signal(adcs * adc_bits)
        self.codes = Array(self.adc_latched[k * adc_bits:(k + 1) * adc_bits].as_signed()
                           for k in range(adcs))

        self.tile = Signal(range(n_tiles + 1))
        self.group = Signal(range(ctrl.groups + 1))
        self.k = Signal(range(max(max_out, adcs) + 1))
        self.layer = Signal(range(self.n_layers))
        m.d.comb += self.layer.eq(self.t_layer[self.tile])

        # Codes of the current group: the tile's outputs from group * adcs, at most adcs of them.
        self.group_base = Signal(range(max_out + 1))
        self.group_count = Signal(range(adcs + 1))
        self.remaining = Signal(signed(16))
        m.d.comb += [
            self.group_base.eq(self.t_out_start[self.tile] + self.group * adcs),
            self.remaining.eq(self.t_outputs[self.tile] - self.group * adcs),
            self.group_count.eq(Mux(self.remaining > adcs, adcs, self.remaining)),
        ]

        # One activation unit per hidden layer (each layer has its own kind and multiplier).
        self.activation_codes = Array(Signal(dac_bits, name=f"act_code{l}")
                                      for l in range(max(1, self.n_layers - 1)))
        for l in range(self.n_layers - 1):
            unit = Activation(cfg.network.activations[l], sum_bits=sb, dac_bits=dac_bits,
                              mult_bits=cfg.network.requant_mult_bits, shift=cfg.network.requant_shift)
            m.submodules[f"activation{l}"] = unit
            m.d.comb += [unit.sum.eq(self.sums[self.k]),
                         unit.mult.eq(ctrl.requant_mult[8 * l:8 * l + 8]),
                         self.activation_codes[l].eq(unit.code)]

        m.submodules.argmax = self.argmax = Argmax(self.classes, sb)
        m.d.comb += self.argmax.codes.eq(ctrl.output_codes)

    def clear_strobes(self, m: Module):
        """Strobes are high for exactly the cycle after the state that raises them."""
        m.d.sync += [self.ctrl.vmm_start.eq(0), self.ctrl.adc_start.eq(0), self.argmax.start.eq(0)]

    def idle_state(self, m: Module, *, first: Signal, counters=(), then: str):
        """IDLE, the first state of the caller's ``m.FSM``: on ``start`` clear ``done`` and the
        clock counters (the status's, then `counters`), zero the caller's `first` counter and
        go to state `then`."""
        status = self.ctrl.status
        with m.State("IDLE"):
            with m.If(self.ctrl.start):
                m.d.sync += [
                    status.done.eq(0), first.eq(0),
                    status.cycles_total.eq(0), status.cycles_drive.eq(0),
                    status.cycles_convert.eq(0), status.cycles_argmax.eq(0),
                    *(counter.eq(0) for counter in counters),
                ]
                m.next = then

    def tile_states(self, m: Module, *, accumulate_cycles: Signal | None = None):
        """DRIVE, CONVERT, ACCUMULATE and NEXT_TILE, inside the caller's ``m.FSM``;
        `accumulate_cycles` (if given) counts the clocks in ACCUMULATE."""
        ctrl, status = self.ctrl, self.ctrl.status
        sums, k, tile, group = self.sums, self.k, self.tile, self.group
        with m.State("DRIVE"):
            m.d.sync += status.cycles_drive.eq(status.cycles_drive + 1)
            with m.If(ctrl.vmm_done):
                m.d.sync += [ctrl.adc_col_sel.eq(0), ctrl.adc_start.eq(1)]
                m.next = "CONVERT"
        with m.State("CONVERT"):
            m.d.sync += status.cycles_convert.eq(status.cycles_convert + 1)
            with m.If(ctrl.adc_valid):
                m.d.sync += [self.adc_latched.eq(ctrl.adc_codes), k.eq(0)]
                m.next = "ACCUMULATE"
        with m.State("ACCUMULATE"):
            # A tile's first row tile starts its neurons' sums; later row tiles add to them.
            if accumulate_cycles is not None:
                m.d.sync += accumulate_cycles.eq(accumulate_cycles + 1)
            base = Mux(self.t_first[tile], 0, sums[self.group_base + k])
            m.d.sync += [sums[self.group_base + k].eq(base + self.codes[k]), k.eq(k + 1)]
            with m.If(k + 1 == self.group_count):
                with m.If(self.group_base + self.group_count
                          < self.t_out_start[tile] + self.t_outputs[tile]):
                    m.d.sync += [group.eq(group + 1), ctrl.adc_col_sel.eq(group + 1),
                                 ctrl.adc_start.eq(1)]
                    m.next = "CONVERT"
                with m.Else():
                    m.next = "NEXT_TILE"
        with m.State("NEXT_TILE"):
            m.d.sync += k.eq(0)
            with m.If(~self.t_last_of_layer[tile]):
                m.d.sync += tile.eq(tile + 1)
                m.next = "LOAD"
            with m.Elif(self.layer == self.n_layers - 1):
                m.d.sync += [ctrl.output_codes.eq(Cat(sums[n] for n in range(self.classes))),
                             self.argmax.start.eq(1)]
                m.next = "ARGMAX"
            with m.Else():
                m.next = "ACTIVATE"

    def result_states(self, m: Module):
        """ARGMAX and DONE, inside the caller's ``m.FSM``."""
        status = self.ctrl.status
        with m.State("ARGMAX"):
            m.d.sync += status.cycles_argmax.eq(status.cycles_argmax + 1)
            with m.If(self.argmax.done):
                m.d.sync += status.result.eq(self.argmax.index)
                m.next = "DONE"
        with m.State("DONE"):
            m.d.sync += [status.done.eq(1), status.inferences.eq(status.inferences + 1)]
            m.next = "IDLE"

    def count_busy(self, m: Module, fsm):
        """``busy`` and ``cycles_total``: every clock outside IDLE, after the caller's FSM."""
        status = self.ctrl.status
        m.d.comb += status.busy.eq(~fsm.ongoing("IDLE"))
        with m.If(~fsm.ongoing("IDLE")):
            m.d.sync += status.cycles_total.eq(status.cycles_total + 1)
